"""Reading a message once: intent, Kết luận, agencies, window and referenced documents (table-driven)."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.question import AttestedPhrases, Lexicon, Reader, analyze, ket_luan_numbers, spoken_agencies

TEXTS = [
    "Giao Bộ Tư pháp chủ trì rà soát văn bản; Bộ Nội vụ phối hợp.",
    "Đảng ủy Chính phủ lãnh đạo, chỉ đạo Bộ Y tế sắp xếp trạm y tế cấp xã trước ngày 31/12/2025.",
    "Kế hoạch số 12-KH/BCĐ ngày 4/7/2025 của Ban Chỉ đạo.",
]
LEXICON = Lexicon(
    AttestedPhrases(TEXTS),
    ket_luan=frozenset({"300-KL/TW", "301-KL/TW"}),
    referenced=frozenset({"12-kh/bcd", "250-kl/tw"}),
    today=lambda: dt.date(2025, 10, 15),
)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("chào bot", "greeting"),
        ("bộ tư pháp phải làm những gì vậy", "task"),
        ("bo noi vu dc giao nv j", "task"),
        ("đảng ủy CP phải mần gì theo kl 300", "task"),
        ("trạm y tế xã tui chừng nào phải sáp nhập xong hả chị?", "deadline"),
        ("tom tat kl 301", "summary"),
        ("trích yếu của kl 301", "summary"),
        ("khái quát kl 301 giúp", "summary"),
        ("tháng 11/2025 những việc nào phải xong, tôi cần lập sổ theo dõi", "window"),
        ("kl 301 tên đầy đủ là kết luận về cái gì", "summary"),
        ("kl 300 va 301 khac nhau cho nao", "compare"),
        ("Các kết luận nói gì, tóm tắt giúp", "series"),
        ("những việc nào đã trễ hạn rồi", "window"),
        ("có việc gì sắp tới hạn không anh", "window"),
        ("vài bữa tới xã phường phải làm xong những việc gì", "window"),
        ("các nhiệm vụ phải xong trong tháng 11/2025", "window"),
        ("ai là người ký kl 300", "signer"),
        ("mỗi kết luận báo cáo căn cứ là báo cáo nào", "report"),
        ("kế hoạch 12-KH/BCĐ ban hành bữa nào", "reference"),
        ("kết luận số 250 ra đời hồi nào", "reference"),
    ],
)
def test_intents(message: str, kind: str) -> None:
    assert analyze(message, LEXICON).kind == kind


def test_slots_are_read_once() -> None:
    q = analyze("bo tu phap phai xong truoc ngay 30/9/2025 theo kl 300 khong", LEXICON)
    assert q.ket_luan == ("300-KL/TW",)
    assert q.agencies == ("bo tu phap",)
    assert q.mentions == ("Bộ Tư pháp",)
    assert q.window == (None, dt.date(2025, 9, 30))


def test_overdue_and_upcoming_are_statuses_of_a_window() -> None:
    assert analyze("việc nào quá hạn", LEXICON).intent == "overdue"
    assert analyze("việc nào sắp đến hạn", LEXICON).intent == "upcoming"


@pytest.mark.parametrize(
    "message",
    [
        "mấy bữa nữa có việc gì tới hạn không",
        "trong vài tuần tới có nhiệm vụ nào",
        "mấy ngày tới có hạn gì gấp",
    ],
)
def test_a_few_days_ahead_is_upcoming(message: str) -> None:
    question = analyze(message, LEXICON)
    assert (question.intent, question.window) == ("upcoming", None)


def test_relative_windows_are_read_on_the_day_asked() -> None:
    asked = dt.date(2025, 8, 15)
    question = Reader(LEXICON).read("những việc phải xong trong tuần tới", asked)
    assert question.window == (dt.date(2025, 8, 18), dt.date(2025, 8, 24))
    assert analyze("những việc phải xong trong tuần tới", LEXICON).window == (
        dt.date(2025, 10, 20),
        dt.date(2025, 10, 26),
    )


@pytest.mark.parametrize(
    ("folded", "numbers"),
    [
        ("ket luan 300 va 301", ["300-KL/TW", "301-KL/TW"]),
        ("so sanh kl 300 voi kl 301", ["300-KL/TW", "301-KL/TW"]),
        ("ket luan so 300-kl/tw ngay 31/12/2025", ["300-KL/TW"]),
        ("ket luan 300 va 2 bo", ["300-KL/TW"]),
        ("300-kl/tw", ["300-KL/TW"]),
    ],
)
def test_ket_luan_numbers(folded: str, numbers: list[str]) -> None:
    assert ket_luan_numbers(folded) == numbers


def test_search_query_filters_on_a_named_ket_luan_and_drops_the_name() -> None:
    query = Reader(LEXICON).search_query("kết luận 300 giao bộ tư pháp việc gì")
    assert query.filters is not None and query.filters.ket_luan == ["300-KL/TW"]
    assert "300" not in query.text
    # a number the corpus does not hold is no filter: the search still finds passages
    assert Reader(LEXICON).search_query("kết luận 999 về trạm y tế").filters is None


def test_a_question_typed_without_diacritics_gets_them_back_for_retrieval() -> None:
    lexicon = Lexicon(LEXICON.attested, restore=lambda text: text.replace("tram y te", "trạm y tế"))
    assert "trạm y tế" in analyze("tram y te cap xa", lexicon).topic


def test_everyday_words_are_weighed_by_the_documents_words_added_for_them() -> None:
    question = analyze("kết luận 300 có kêu bớt họp hành không", LEXICON)
    assert {"keu", "bot"} <= question.everyday
    assert "giam" in question.content and not {"keu", "bot"} & set(question.content)


@pytest.mark.parametrize(
    ("folded", "agency"),
    [("roi ben tu phap thi sao", "Bộ Tư pháp"), ("con phia ban to chuc thi sao", "Ban Tổ chức Trung ương")],
)
def test_an_agency_by_its_short_name_after_a_follow_up_word(folded: str, agency: str) -> None:
    assert spoken_agencies(folded) == [agency]


def test_what_ngoai_sets_aside_is_not_what_is_asked() -> None:
    question = analyze("Ngoài việc rà soát thể chế, Bộ Tư pháp còn phải làm gì?", LEXICON)
    assert {"soat", "che"} <= set(question.besides)
    assert "thể chế" not in question.text and "Bộ Tư pháp" in question.text
    plain = analyze(
        "Ngoài ra Bộ Tư pháp còn phải làm gì?", LEXICON
    )  # "ngoài ra": "moreover", sets nothing aside
    assert plain.besides == () and plain.text.startswith("Ngoài ra")


def test_ngoai_x_ra_sets_x_aside() -> None:
    question = analyze("ngoài rà soát thể chế ra thì Bộ Tư pháp phải làm gì", LEXICON)
    assert {"soat", "che"} <= set(question.besides)


def test_a_third_turn_keeps_the_subject_of_the_first() -> None:
    from bot.followup import resolve
    from bot.models import Turn

    history = [
        Turn(
            message_id="1",
            question="việc sắp xếp trạm y tế cấp xã do kết luận nào yêu cầu",
            answer="",
            answered=True,
        ),
        Turn(message_id="2", question="ai chịu trách nhiệm chính", answer="", answered=True),
    ]
    question = resolve("còn phối hợp với những bộ nào nữa", history, lambda m: analyze(m, LEXICON))
    assert "trạm y tế" in question.topic


@pytest.mark.parametrize(
    "message",
    ["mấy cái kết luận về chính quyền 2 cấp, mỗi cái nói chuyện gì vậy", "tóm tắt các kết luận giúp mình"],
)
def test_what_each_ket_luan_says_is_the_series(message: str) -> None:
    assert analyze(message, LEXICON).kind == "series"


def test_a_summary_asked_in_passing_words() -> None:
    assert analyze("tóm gọn kết luận 300 giúp mình với, dài quá đọc không nổi", LEXICON).kind == "summary"


@pytest.mark.parametrize(
    "message",
    ["báo cáo phản ánh tình hình sắp xếp đến ngày nào", "bao cao tinh hinh tu ngay 18 den ngay nao"],
)
def test_the_end_of_a_reported_period_is_no_task_deadline(message: str) -> None:
    assert analyze(message, LEXICON).kind != "deadline"


@pytest.mark.parametrize("message", ["kl 300 yc j", "Kết luận 300 yêu cầu gì?"])
def test_what_a_ket_luan_asks_with_nothing_more_is_its_summary(message: str) -> None:
    assert analyze(message, LEXICON).kind == "summary"


@pytest.mark.parametrize(
    ("message", "content"),
    [
        # the syllables of the asking phrases ("nhiệm vụ", "hoàn thành") still count inside the topic's words
        ("bộ tư pháp có nhiệm vụ gì về dịch vụ công", ("dich", "vu", "cong")),
        ("phải hoàn thành giải quyết thủ tục hành chính tồn đọng khi nào",
         ("giai", "quyet", "thu", "tuc", "hanh", "chinh", "ton", "dong")),
        ("chính quyền cấp xã phải làm gì", ("chinh", "quyen", "cap", "xa")),
        ("nội dung chủ yếu của kl 300 là gì", ()),
    ],
)  # fmt: skip
def test_content_keeps_topic_words_that_share_syllables_with_asking_words(
    message: str, content: tuple[str, ...]
) -> None:
    assert analyze(message, LEXICON).content == content


@pytest.mark.parametrize(
    "message",
    ["bộ tư pháp phải ra những văn bản gì theo kl 300", "bộ tư pháp phải ban hành mấy cái hướng dẫn gì vậy"],
)
def test_must_do_what_asks_for_an_agencys_tasks(message: str) -> None:
    assert analyze(message, LEXICON).kind == "task"


@pytest.mark.parametrize("message", ["bộ phận một cửa ở xã cần những gì", "bạn bè tôi hỏi bản sao hồ sơ"])
def test_everyday_compounds_that_begin_like_an_agency_name_none(message: str) -> None:
    lexicon = Lexicon(
        AttestedPhrases(["Bộ phận một cửa cấp xã tiếp nhận bản sao hồ sơ.", "Giao Bộ Tư pháp rà soát."]),
        ket_luan=frozenset({"300-KL/TW"}),
        referenced=frozenset(),
        today=lambda: dt.date(2025, 10, 15),
    )
    assert analyze(message, lexicon).agencies == ()


@pytest.mark.parametrize(
    ("message", "agencies"),
    [
        (
            "hồ sơ của Bộ Tư pháp gửi lên thì khi nào phải xong",
            (),
        ),  # it owns the file, it is not asked to act
        ("nhiệm vụ của Bộ Tư pháp phải xong khi nào", ("bo tu phap",)),
        ("việc của Bộ Tư pháp là gì", ("bo tu phap",)),
    ],
)
def test_an_agency_that_owns_what_is_asked_about_is_not_who_acts(
    message: str, agencies: tuple[str, ...]
) -> None:
    assert analyze(message, LEXICON).agencies == agencies


def test_an_agency_name_as_people_shorten_it_is_no_unknown_agency() -> None:
    lexicon = Lexicon(AttestedPhrases(["Ủy ban nhân dân các tỉnh, thành phố khẩn trương ban hành quy định."]),
                      ket_luan=frozenset({"300-KL/TW"}), referenced=frozenset(), today=lambda: dt.date(2025, 10, 15))  # fmt: skip
    q = analyze("ủy ban tỉnh phải làm gì theo kl 300", lexicon)
    assert q.unknown_agencies == () and q.canonical == ("Ủy ban nhân dân cấp tỉnh",)


def test_an_agency_name_ends_where_what_it_does_begins() -> None:
    lexicon = Lexicon(AttestedPhrases(["Đảng ủy Chính phủ chỉ đạo Bộ Y tế sắp xếp trạm y tế."]),
                      ket_luan=frozenset({"300-KL/TW"}), referenced=frozenset(), today=lambda: dt.date(2025, 10, 15))  # fmt: skip
    q = analyze("Đảng ủy Chính phủ chỉ đạo Bộ Y tế làm gì theo kl 300", lexicon)
    assert "dang uy chinh phu" in q.agencies
    assert not any("chi dao" in a for a in q.agencies)


def test_the_words_an_agency_is_written_with_are_no_topic() -> None:
    q = analyze("còn TU/TP ủy thì sao", LEXICON)
    assert q.canonical == ("Các tỉnh ủy, thành ủy",)
    assert q.content == ()


def test_bodies_in_general_are_no_unknown_agency() -> None:
    assert analyze("kl 300 làm việc với các đảng ủy tháo gỡ vướng mắc", LEXICON).unknown_agencies == ()
    assert analyze("Đảng ủy Khối Doanh nghiệp phải làm gì", LEXICON).unknown_agencies != ()


def test_a_few_words_with_nothing_of_their_own_continue_the_conversation() -> None:
    from bot.followup import resolve
    from bot.models import Turn

    history = [Turn(message_id="1", question="bộ tư pháp phải làm gì theo kl 300", answer="…", answered=True)]
    q = resolve("có được mấy cái", history, lambda m: analyze(m, LEXICON))
    assert q.followup and q.ket_luan == ("300-KL/TW",) and "bo tu phap" in q.agencies
    assert not analyze("có được mấy cái", LEXICON).ket_luan  # alone, it names nothing
