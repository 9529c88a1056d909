"""`ketluan directives` (api/cli_tasks.py) over a build whose directives.jsonl holds hand-written tasks."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from icalendar import Calendar

from api.cli import main
from tests.task_fixtures import CAPACITY, DIRECTIVES, REFERENCES, REPORT, SCHOOLS, TRAINING, write_tasks


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir whose `index/current` build holds the sample tasks (nothing else is read)."""
    build = tmp_path / "index" / "builds" / "b1"
    build.mkdir(parents=True)
    write_tasks(build, DIRECTIVES, REFERENCES)
    (tmp_path / "index" / "current").symlink_to(build)
    monkeypatch.setenv("KETLUAN_PUBLIC_URL", "https://ketluan.example.vn")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(["directives", *args])
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_json_with_filters(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--data-dir", str(data_dir), "--agency", "bo noi vu", "--ket-luan", "221",
                       "--due-before", "2025-12-31", "--json")  # fmt: skip
    assert code == 0
    assert [d["directive_id"] for d in json.loads(out)["directives"]] == [SCHOOLS.directive_id]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--status", "overdue", "--as-of", "2025-09-01"], [TRAINING]),
        (["--status", "no_deadline"], [CAPACITY]),
        (["--due-after", "2025-08-01", "--due-before", "2025-08-31"], [REPORT, TRAINING]),
        (["--q", "trạm y tế"], [SCHOOLS]),
    ],
)
def test_filters(data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: list) -> None:
    code, out, _ = run(capsys, "--data-dir", str(data_dir), *args, "--json")
    assert code == 0
    assert [d["directive_id"] for d in json.loads(out)["directives"]] == [d.directive_id for d in expected]


def test_default_output_is_a_vietnamese_table(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--data-dir", str(data_dir), "--as-of", "2025-09-01")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["Hạn", "hoàn", "thành"] and "Cơ quan chủ trì" in lines[0]
    assert "31/08/2025" in out and "Quá hạn" in out and "Không có hạn" in out
    assert "https://ketluan.example.vn" + TRAINING.url in out
    assert out.index(TRAINING.action[:30]) < out.index(SCHOOLS.action[:30])  # by deadline
    assert lines[-1] == "6 nhiệm vụ · tình trạng tính đến ngày 01/09/2025"


def test_csv_and_ics(data_dir: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    with pytest.raises(SystemExit):
        main(["directives", "--data-dir", str(data_dir), "--agency", "BNV", "--csv"])
    body = capsysbinary.readouterr().out
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [r["Mã nhiệm vụ"] for r in rows] == [TRAINING.directive_id, SCHOOLS.directive_id]
    assert rows[0]["Liên kết đến điều khoản"] == "https://ketluan.example.vn" + TRAINING.url
    with pytest.raises(SystemExit):
        main(["directives", "--data-dir", str(data_dir), "--ics"])
    cal = Calendar.from_ical(capsysbinary.readouterr().out)
    assert len(cal.events) == sum(1 for d in DIRECTIVES if d.deadline)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agency", "Bo Noi"], 'Không tìm thấy cơ quan "Bo Noi". Có phải bạn muốn tìm: Bộ Nội vụ'),
        (["--due-after", "31/12/2025"], 'Ngày "31/12/2025" ở trường --due-after không hợp lệ'),
        (["--as-of", "2025-02-30"], 'Ngày "2025-02-30" ở trường --as-of không hợp lệ'),
        (["--status", "late"], 'Giá trị "late" ở trường --status không hợp lệ'),
        (["--ket-luan", "KL"], 'Số Kết luận "KL" không hợp lệ'),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "--data-dir", str(data_dir), *args)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and err.startswith("ketluan directives: " + message), err


def test_no_index_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--data-dir", str(tmp_path))
    assert code != 0 and err.count("\n") == 1 and "ketluan index" in err


def test_build_without_tasks_prints_that_there_are_none(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tasks(data_dir / "index" / "current", [])  # a build whose corpus assigns no task
    code, out, _ = run(capsys, "--data-dir", str(data_dir))
    assert code == 0 and out.strip() == "Không có nhiệm vụ nào khớp bộ lọc."
    code, out, _ = run(capsys, "--data-dir", str(data_dir), "--json")
    assert json.loads(out) == {"directives": []}
