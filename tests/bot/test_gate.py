"""ChatService applies the citation gate to every answer it finishes: one that breaks the contract is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.models import Citation
from bot.service import ChatService
from bot.settings import BotSettings
from bot.stores import sqlite_stores
from index.build import build_index
from index.embedding import HashingEmbedder
from index.search import open_index
from index.settings import IndexSettings
from tests.contract import assert_contract
from tests.handmade import LINES, citation, read_source

CORPUS_FILE = Path(__file__).resolve().parents[2] / "data" / "corpus" / "000_5d30afc99b18f1f4.txt"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> ChatService:
    data = tmp_path_factory.mktemp("gate")
    (data / "corpus").mkdir()
    shutil.copy(CORPUS_FILE, data / "corpus")
    settings = IndexSettings(data_dir=data, embedding_model="hashing-64")
    build_index(
        [data / "corpus"], settings.index_dir, HashingEmbedder(64), progress=False, log=lambda _: None
    )
    chat = ChatService(
        open_index(settings), sqlite_stores(":memory:"), BotSettings(llm_base_url=None, redis_url=None)
    )
    chat._source_text = read_source  # type: ignore[method-assign]  # the handmade source stands in
    return chat


GOOD = ("Bộ Tài chính chủ trì [1]. Các tỉnh ủy rà soát [2].", [citation(1, 1), citation(2, 2)])


def test_an_answer_that_keeps_the_contract_is_shown(service: ChatService) -> None:
    response = service._finish(service.prepare("Quỹ đất công do ai quản lý?"), *GOOD, True, "llm")
    assert response.answered and response.answer == GOOD[0] and response.citations == GOOD[1]
    assert response.mode == "llm"
    assert_contract(response, read_source)


@pytest.mark.parametrize(
    ("answer", "citations"),
    [
        (
            "Bộ Tài chính chủ trì [1].",
            [citation(1, 1).model_copy(update={"text": LINES[1][:-1]})],
        ),  # not verbatim
        ("Bộ Tài chính chủ trì [1].", [citation(1, 1), citation(2, 2)]),  # a citation not used
        ("Bộ Tài chính chủ trì [1] [2].", [citation(1, 1)]),  # a marker without citation
        ("Bộ Tài chính chủ trì [2].", [citation(1, 2)]),  # not numbered from 1
        ("Bộ Tài chính chủ trì.", []),  # nothing cited
    ],
)
def test_an_answer_that_breaks_the_contract_is_refused(
    service: ChatService, answer: str, citations: list[Citation]
) -> None:
    response = service._finish(service.prepare("Quỹ đất công do ai quản lý?"), answer, citations, True, "llm")
    assert not response.answered and response.citations == []
    assert "Bộ Tài chính" not in response.answer
    assert_contract(response, read_source)


def test_a_reply_that_answers_nothing_but_cites_is_refused(service: ChatService) -> None:
    answer, citations = "Bộ Tài chính chủ trì [1].", [citation(1, 1)]
    response = service._finish(
        service.prepare("Quỹ đất công do ai quản lý?"), answer, citations, False, "extractive"
    )
    assert not response.answered and response.citations == []
    assert "Bộ Tài chính" not in response.answer
    assert_contract(response, read_source)


def test_a_reply_that_answers_nothing_and_cites_nothing_is_shown(service: ChatService) -> None:
    text = "Chưa có thông tin về việc này."
    response = service._finish(service.prepare("Quỹ đất công do ai quản lý?"), text, [], False, "extractive")
    assert not response.answered and response.answer == text and response.citations == []
    assert_contract(response, read_source)
