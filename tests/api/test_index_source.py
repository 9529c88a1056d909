"""A host with KETLUAN_INDEX_SOURCE serves the bundle it pulled and follows newer ones without a restart."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from index.publish import publish
from index.settings import IndexSettings
from tests.api.conftest import make_settings
from tests.index.test_publish import CORPUS, _build, _served, published  # noqa: F401 (fixture)


def test_a_replica_with_an_index_source_serves_the_pulled_bundle_and_follows_new_ones(
    published: tuple[IndexSettings, Path, Path],  # noqa: F811
) -> None:
    builder, shared, replica = published
    settings = make_settings(IndexSettings(data_dir=replica.parent, embedding_model="hashing-64",
                                           index_source=str(shared), index_poll_seconds=0.05))  # fmt: skip
    app = create_app(settings, load_before_serving=True)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        holder = app.state.index_holder
        assert holder.current().index.version == _served(builder.index_dir)
        _build(builder, CORPUS[3])
        new = publish(builder.index_dir, shared)
        deadline = threading.Event()
        for _ in range(400):  # the poller pulls, the holder notices `current` and swaps
            if holder.current().index.version == new.version:
                break
            deadline.wait(0.025)
        assert holder.current().index.version == new.version
        assert client.post("/v1/search", json={"query": "sắp xếp tổ chức bộ máy", "k": 1}).status_code == 200


@pytest.mark.parametrize(("source", "builds"), [(None, 1), ("shared", 0)])
def test_serve_builds_its_own_index_only_without_an_index_source(
    source: str | None, builds: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.server
    from api import cli, cli_chat

    built: list[object] = []
    monkeypatch.setattr(cli_chat, "_ensure_index", built.append)
    monkeypatch.setattr(api.server, "serve", lambda *a, **k: None)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    if source:
        monkeypatch.setenv("KETLUAN_INDEX_SOURCE", str(tmp_path / source))
    else:
        monkeypatch.delenv("KETLUAN_INDEX_SOURCE", raising=False)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["serve", "--data-dir", str(tmp_path)])
    assert exit_.value.code == 0
    assert len(built) == builds
