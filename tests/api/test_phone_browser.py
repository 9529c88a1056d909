"""The widget and the pages as a commune official meets them on a phone (390×844, touch) and on a desktop,
in headless Debian Chromium driven by Playwright: the answer's start on screen, touch target and input
sizes, a citation opened in place, axe-core (vendored under tests/vendor/) with no serious or critical
violation, and screenshots compared with the approved baselines in tests/api/baselines/.

The chat service is a fake with a fixed long answer over the shipped corpus, so the screens do not move when
the answering code changes. Screenshots are written to test-artifacts/phone/; `UPDATE_BASELINES=1` copies
them over the baselines (review the images before committing them).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from api import deps, routes_tasks
from api.app import create_app
from api.settings import Settings
from bot.models import ChatResponse, Citation
from bot.stores import sqlite_stores
from index.models import Passage
from index.search import SearchIndex
from tests.api import test_widget_browser
from tests.api.conftest import FakeChatService, FakeEvent, make_settings, run_server
from tests.api.test_widget_browser import ARTIFACTS, DESKTOP
from tests.task_fixtures import sample_book

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
BASELINES = HERE / "baselines"
SHOTS = ARTIFACTS / "phone"
AXE = HERE.parent / "vendor" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
QUESTION = "Đảng ủy Chính phủ được giao những nhiệm vụ gì theo Kết luận 183-KL/TW?"
FOLLOW_UPS = ["Hạn chót của các nhiệm vụ này?", "Còn Bộ Nội vụ thì sao?", "Tóm tắt Kết luận 183-KL/TW"]
# a pixel differs when a channel moves by more than this; a screen differs when more than TOLERANCE of its
# pixels do (anti-aliasing noise stays far below it, a moved block or a wrapped line does not)
PIXEL_DELTA = 24
TOLERANCE = 0.004


def long_answer(passages: list[Passage]) -> tuple[str, list[Citation]]:
    """A direct first sentence, a second line, then one list item per cited paragraph with a long quote."""
    lines = [
        "Đảng ủy Chính phủ được giao 6 nhiệm vụ theo Kết luận 183-KL/TW, nhiều nhất ở mục 3 [1].",
        "Hạn gần nhất: trước ngày 31/8/2025 [1].",
    ]
    citations = []
    for n, p in enumerate(passages, start=1):
        cut = p.text[:130].rsplit(" ", 1)[0]
        lines.append(
            f"- {p.label.split(', ', 1)[-1]}: “{cut} …” — chủ trì; Kết luận 183-KL/TW (1/8/2025) [{n}]"
        )
        citations.append(Citation(**p.model_dump(), n=n))
    return "\n".join(lines), citations


class PhoneService(FakeChatService):
    """Always the same long answer over six paragraphs of 183-KL/TW, streamed a few words at a time; with a
    gate, the rest of the answer waits after its first words until the test opens it."""

    def __init__(self, index: SearchIndex, gate: threading.Event | None = None) -> None:
        super().__init__(index)
        self.gate = gate
        chosen = [p for p in index.passages_of("kl183-621b55") if p.kind in ("paragraph", "item")][2:8]
        self.text, self.citations = long_answer(chosen)

    def answer(self, message: str, conversation_id: str | None = None, filters: Any = None) -> ChatResponse:
        base = super().answer(message, conversation_id, filters)
        return base.model_copy(update={"answer": self.text, "answered": True, "citations": self.citations,
                                       "suggestions": FOLLOW_UPS, "latency_ms": 12.0})  # fmt: skip

    async def stream(self, message: str, conversation_id: str | None = None, filters: Any = None
                     ) -> AsyncIterator[FakeEvent]:  # fmt: skip
        response = self.answer(message, conversation_id, filters)
        words = response.answer.split(" ")
        for i in range(0, len(words), 8):
            yield FakeEvent("token", {"text": " ".join(words[i : i + 8]) + " "})
            if i == 0 and self.gate is not None:
                await asyncio.to_thread(self.gate.wait, 20)
        yield FakeEvent("citations", [c.model_dump(mode="json") for c in response.citations])
        yield FakeEvent("done", response.model_dump(mode="json"))


def phone_app(settings: Settings, index: SearchIndex, gate: threading.Event | None = None) -> Any:
    app = create_app(settings, index=index, stores=sqlite_stores(":memory:"),
                     service_factory=lambda index, store, llm: PhoneService(index, gate))  # fmt: skip
    book = sample_book()
    app.dependency_overrides[routes_tasks.page_tasks] = lambda: book
    app.dependency_overrides[deps.get_tasks] = lambda: book
    return app


browser = test_widget_browser.browser  # the one module-scoped Chromium fixture of the browser suites


@pytest.fixture(scope="module")
def site(kl_settings: Any, kl_index: SearchIndex) -> Iterator[str]:
    settings = make_settings(kl_settings, operator_name="Văn phòng Tỉnh ủy Mẫu",
                             operator_contact="hoidap@tinhuy-mau.example.vn")  # fmt: skip
    with run_server(phone_app(settings, kl_index)) as base_url:
        yield base_url


def new_context(browser: Browser, phone: bool) -> BrowserContext:
    size = PHONE if phone else DESKTOP
    ctx = browser.new_context(viewport=size, is_mobile=phone, has_touch=phone, device_scale_factor=1,
                              reduced_motion="reduce", locale="vi-VN", bypass_csp=True)  # fmt: skip
    ctx.set_default_timeout(15_000)
    return ctx


@pytest.fixture()
def phone(browser: Browser) -> Iterator[Page]:
    ctx = new_context(browser, phone=True)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    ctx.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def widget(page: Page, selector: str) -> Locator:
    return page.locator("ketluan-chat").locator(selector)  # Playwright's CSS pierces the open shadow root


def open_and_ask(page: Page, question: str = QUESTION, *, tap: bool = True) -> Locator:
    launcher = page.get_by_role("button", name="Mở hộp hỏi đáp về các Kết luận")
    launcher.tap() if tap else launcher.click()
    box = page.get_by_label("Câu hỏi của bạn")
    box.fill(question)
    box.press("Enter")
    answer = widget(page, ".msg.bot").last
    expect(answer.get_by_role("button", name="Câu trả lời hữu ích")).to_be_visible()
    return answer


def on_screen(page: Page, element: Locator) -> bool:
    """Its top inside the viewport and in the upper half of the conversation's visible part, where the eye
    lands (not squeezed at the bottom above the text box)."""
    return bool(
        element.evaluate(
            """el => { const r = el.getBoundingClientRect(), log = el.closest('.log').getBoundingClientRect();
                 return r.top >= log.top - 1 && r.top < log.top + log.height / 2 && r.top >= 0; }"""
        )
    )


# --- measured on the phone -----------------------------------------------------------------------------------
def test_answer_start_stays_on_screen_while_streaming_and_after(
    browser: Browser, kl_settings: Any, kl_index: SearchIndex
) -> None:
    gate = threading.Event()
    settings = make_settings(kl_settings)
    with run_server(phone_app(settings, kl_index, gate)) as base:
        ctx = new_context(browser, phone=True)
        try:
            page = ctx.new_page()
            page.goto(base + "/")
            gate.set()
            first = open_and_ask(page)
            # a long answer: the conversation is taller than the screen, yet it shows the answer's first line
            assert widget(page, ".log").evaluate("el => el.scrollHeight > 2 * el.clientHeight")
            assert on_screen(page, first.locator(".answer .lead")), "first answer's start is off screen"
            gate.clear()
            box = page.get_by_label("Câu hỏi của bạn")
            box.fill("Còn Bộ Nội vụ thì sao?")
            box.press("Enter")
            second = widget(page, ".msg.bot").last
            expect(second.locator(".answer .lead")).to_be_visible()
            expect(second).to_have_attribute("aria-busy", "true")  # still streaming
            assert on_screen(page, second.locator(".answer .lead")), "start is off screen while streaming"
            gate.set()
            expect(second.get_by_role("button", name="Câu trả lời hữu ích")).to_be_visible()
            assert on_screen(page, second.locator(".answer .lead")), "start is off screen after the answer"
            assert on_screen(page, widget(page, ".msg.user").last), "the question above the answer is hidden"
        finally:
            gate.set()
            ctx.close()


TARGETS = """(root) => [...root.querySelectorAll('button, a[href], textarea, input, select')]
  .filter(el => el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden')
  .map(el => { const r = el.getBoundingClientRect();
               return {what: (el.className || el.tagName) + ' ' + (el.textContent || '').trim().slice(0, 30),
                       chip: el.matches('.answer a.chip'), x: r.x, y: r.y, w: r.width, h: r.height}; })"""


def test_touch_targets_input_font_and_labels(phone: Page, site: str) -> None:
    phone.goto(site + "/")
    answer = open_and_ask(phone)
    answer.get_by_role("button", name="Xem trích dẫn (6)").tap()
    targets = phone.locator("ketluan-chat").evaluate(f"host => ({TARGETS})(host.shadowRoot)")
    small = [t for t in targets if not t["chip"] and (t["w"] < 44 or t["h"] < 44)]
    assert small == [], small
    chips = [t for t in targets if t["chip"]]
    assert len(chips) >= 7
    assert all(t["w"] >= 24 and t["h"] >= 24 for t in chips), chips
    for a, b in itertools.pairwise(chips):  # on one line, chips never touch
        if abs(a["y"] - b["y"]) < 4:
            assert b["x"] - (a["x"] + a["w"]) >= 4 or a["x"] - (b["x"] + b["w"]) >= 4, (a, b)
    size = widget(phone, "textarea").evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    assert size >= 16
    expect(widget(phone, ".head").get_by_role("button", name="Cuộc trò chuyện mới")).to_have_text(
        "Cuộc trò chuyện mới"
    )
    user = widget(phone, ".msg.user").first.evaluate(
        "el => [getComputedStyle(el).backgroundColor, getComputedStyle(el.closest('.log')).backgroundColor]"
    )
    assert user[0] != user[1] and user[0] == "rgb(122, 15, 18)", user
    # the pages: their controls too (links inside running text are exempt, as WCAG 2.5.8 says)
    for path in ("/documents", "/nhiem-vu?as_of=2025-09-01"):
        phone.goto(site + path)
        page_targets = phone.evaluate(
            f"""() => ({TARGETS})(document).filter(t => !/passage-label|skip|hit-text/.test(t.what))"""
        )
        inline = phone.evaluate(
            """() => [...document.querySelectorAll('main p a, footer a, td a, .coverage a, .hit-titles a')]
                     .map(a => (a.className || a.tagName) + ' ' + a.textContent.trim().slice(0, 30))"""
        )
        small = [t for t in page_targets if (t["w"] < 44 or t["h"] < 44) and t["what"] not in inline]
        assert small == [], (path, small)
        fonts = phone.evaluate(
            "() => [...document.querySelectorAll('input, select, textarea')]"
            ".map(el => parseFloat(getComputedStyle(el).fontSize))"
        )
        assert fonts and min(fonts) >= 16, (path, fonts)


def test_a_citation_opens_in_place_then_its_page_and_back(phone: Page, site: str) -> None:
    phone.goto(site + "/")
    answer = open_and_ask(phone)
    assert len(phone.context.pages) == 1
    chip = answer.locator(".answer a.chip").nth(2)
    chip.tap()
    sheet = phone.get_by_role("dialog", name="Kết luận 183-KL/TW")
    expect(sheet).to_be_visible()
    assert phone.url == site + "/" and len(phone.context.pages) == 1, "a citation must not navigate"
    expect(sheet).to_contain_text("Ngày ban hành: 01/08/2025")
    mark = sheet.locator("mark")
    expect(mark).to_be_visible()
    quoted = mark.inner_text()
    assert len(quoted) > 40
    expect(sheet.get_by_role("button", name="Đóng trích dẫn")).to_be_focused()
    opener = sheet.get_by_role("link", name="Mở văn bản")
    box = opener.bounding_box()
    assert box is not None and box["height"] >= 44 and box["y"] + box["height"] <= PHONE["height"], box
    opener.tap()
    phone.wait_for_url("**/documents/kl183-621b55?hl=*")
    marked = phone.locator("mark.quoted")
    expect(marked).to_be_in_viewport()
    assert " ".join(marked.inner_text().split()) == " ".join(quoted.split())
    bar = phone.locator(".doc-bar")
    expect(bar).to_be_in_viewport()  # the way back stays on screen while the page scrolls to the sentence
    # the widget is on the document page too, closed, with the same conversation behind its launcher
    launcher = phone.get_by_role("button", name="Mở hộp hỏi đáp về các Kết luận")
    expect(launcher).to_be_visible()
    bar.get_by_role("link", name="Quay lại").tap()
    phone.wait_for_url(site + "/")
    launcher.tap()
    expect(widget(phone, ".msg.user")).to_have_text("Bạn hỏi: " + QUESTION)


def test_follow_ups_copy_and_a_shared_link_that_asks_again(browser: Browser, site: str) -> None:
    ctx = new_context(browser, phone=False)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=site)
    try:
        page = ctx.new_page()
        page.goto(site + "/")
        answer = open_and_ask(page, tap=False)
        follow = answer.get_by_role("group", name="Hỏi tiếp:").get_by_role("button")
        expect(follow).to_have_text(FOLLOW_UPS)
        answer.get_by_role("button", name="Sao chép").click()
        expect(answer.get_by_role("status")).to_have_text("Đã sao chép câu trả lời.")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.startswith("Đảng ủy Chính phủ được giao") and "Nguồn trích dẫn:" in copied
        answer.get_by_role("button", name="Chia sẻ").click()
        expect(answer.get_by_role("status")).to_have_text("Đã sao chép liên kết đến câu hỏi này.")
        link = page.evaluate("navigator.clipboard.readText()")
        assert link == site + "/#hoi=" + quote(QUESTION, safe="")
        follow.nth(1).click()
        expect(widget(page, ".msg.user")).to_have_count(2)
        expect(widget(page, ".followups")).to_have_count(1)  # only under the newest answer
        # the shared link, opened in a fresh browser, asks the same question
        other = new_context(browser, phone=True)
        try:
            fresh = other.new_page()
            fresh.goto(link)
            expect(widget(fresh, ".msg.user")).to_have_text("Bạn hỏi: " + QUESTION)
            expect(widget(fresh, ".msg.bot .fb.up")).to_be_visible()
            assert "#hoi=" not in fresh.url  # a reload does not ask again
        finally:
            other.close()
    finally:
        ctx.close()


def test_print_shows_the_document_without_navigation_or_widget(phone: Page, site: str) -> None:
    phone.goto(site + "/documents/kl-221")
    expect(phone.get_by_role("button", name="Mở hộp hỏi đáp về các Kết luận")).to_be_visible()
    phone.emulate_media(media="print")
    for selector in ("header.site nav", ".doc-bar", ".skip"):
        assert phone.locator(selector).evaluate("el => getComputedStyle(el).display") == "none", selector
    expect(phone.get_by_role("button", name="Mở hộp hỏi đáp về các Kết luận")).to_be_hidden()
    expect(phone.get_by_role("heading", level=1)).to_be_visible()
    assert phone.locator(".passage").count() > 5


# --- axe-core and the screenshots ------------------------------------------------------------------------------
def axe_violations(page: Page) -> list[str]:
    """Serious and critical axe-core violations on the page, the widget's open shadow root included."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:4]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def differs(shot: Path, baseline: Path) -> str | None:
    """Why `shot` does not match `baseline`, or None when it does (within the tolerance)."""
    got = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    want = np.asarray(Image.open(baseline).convert("RGB"), dtype=np.int16)
    if got.shape != want.shape:
        return f"size {got.shape[1]}×{got.shape[0]}, baseline {want.shape[1]}×{want.shape[0]}"
    changed = float((np.abs(got - want).max(axis=2) > PIXEL_DELTA).mean())
    return f"{changed:.2%} of the pixels changed (tolerance {TOLERANCE:.1%})" if changed > TOLERANCE else None


def check_screen(page: Page, name: str, problems: list[str], mask: list[Locator]) -> None:
    """axe-core over the screen, then its screenshot against the approved baseline; problems are collected
    so one run reports every screen (and keeps every screenshot)."""
    problems.extend(f"{name}: axe {violation}" for violation in axe_violations(page))
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"{name}.png"
    page.screenshot(path=str(shot), animations="disabled", caret="hide", mask=mask, mask_color="#888888")
    baseline = BASELINES / f"{name}.png"
    if os.environ.get("UPDATE_BASELINES"):
        BASELINES.mkdir(exist_ok=True)
        shutil.copyfile(shot, baseline)
    elif not baseline.exists():
        problems.append(f"{name}: no approved baseline (run with UPDATE_BASELINES=1, review, commit)")
    elif (why := differs(shot, baseline)) is not None:
        problems.append(f"{name}: {why}; see {shot}")


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_screens_match_their_baselines_and_pass_axe(browser: Browser, site: str, device: str) -> None:
    ctx = new_context(browser, phone=device == "phone")
    problems: list[str] = []
    try:
        page = ctx.new_page()
        dates = [page.locator(".updated time"), page.locator(".doc-facts .updated-date")]  # the build's day
        page.goto(site + "/")
        page.wait_for_function("document.querySelector('ketluan-chat')")
        check_screen(page, f"{device}-home", problems, dates)
        answer = open_and_ask(page, tap=device == "phone")
        check_screen(page, f"{device}-answer", problems, dates)
        answer.locator(".answer a.chip").nth(2).click()
        sheet = page.get_by_role("dialog", name="Kết luận 183-KL/TW")
        expect(sheet).to_be_visible()
        check_screen(page, f"{device}-source", problems, dates)
        href = sheet.get_by_role("link", name="Mở văn bản").get_attribute("href") or ""
        assert "?hl=" in href, href
        page.keyboard.press("Escape")  # the sheet
        page.keyboard.press("Escape")  # the panel: the pages below are seen as they are
        page.goto(site + "/documents")
        check_screen(page, f"{device}-documents", problems, dates)
        page.goto(site + "/documents?q=tr%E1%BA%A1m%20y%20t%E1%BA%BF")
        expect(page.locator(".hit mark").first).to_be_visible()
        check_screen(page, f"{device}-search", problems, dates)
        page.goto(href)
        expect(page.locator("mark.quoted")).to_be_in_viewport()
        check_screen(page, f"{device}-document", problems, dates)
        page.goto(site + "/nhiem-vu?as_of=2025-09-01")
        check_screen(page, f"{device}-tasks", problems, dates)
    finally:
        ctx.close()
    assert problems == [], "\n".join(problems)
