"""The chat widget and document pages in headless Chromium (Debian's package), driven by Playwright.

Without Chromium these tests skip locally with the reason, and fail when CI is set: CI installs it
(`make sysdeps`). Screenshots are kept in test-artifacts/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright

from api.app import create_app
from api.settings import Settings
from index.search import SearchIndex
from index.settings import IndexSettings
from tests.api.conftest import FakeChatService, FakeEvent, ServeApp, free_port, make_settings

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUESTION = "Theo Kết luận 183-KL/TW, Đảng ủy Chính phủ được giao làm những việc gì?"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}


def chromium_path() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    return found


def require_chromium() -> str:
    """Chromium's path; without it a skip with the reason, or a failure when CI is set (CI installs it)."""
    executable = chromium_path()
    if executable is None:
        reason = "Chromium is not installed (Debian package `chromium`; `make sysdeps` installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the browser tests")
        pytest.skip(reason)
    return executable


@pytest.mark.parametrize(("ci", "outcome"), [("1", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_chromium_fails_in_ci_and_skips_locally(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "chromium_path", lambda: None)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="Chromium is not installed"):
        require_chromium()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture()
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=DESKTOP, reduced_motion="reduce", locale="vi-VN")
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture()
def page(context: BrowserContext) -> Iterator[Page]:
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    assert errors == [], f"JavaScript errors on the page: {errors}"


def sse(*events: tuple[str, Any]) -> str:
    return "".join(
        f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n" for name, data in events
    )


def open_widget(page: Page) -> None:
    page.get_by_role("button", name="Mở hộp hỏi đáp về các Kết luận").click()
    expect(page.get_by_role("dialog", name="Hỏi đáp Kết luận")).to_be_visible()


def ask(page: Page, question: str, label: str = "Câu hỏi của bạn") -> None:
    box = page.get_by_label(label)
    box.fill(question)
    box.press("Enter")


def shadow_count(page: Page, selector: str) -> int:
    script = "s => document.querySelector('ketluan-chat').shadowRoot.querySelectorAll(s).length"
    return int(page.evaluate(script, selector))


# --- the real service ---------------------------------------------------------------------------------
def test_answer_with_citation_chip_opens_the_highlighted_paragraph(
    page: Page, context: BrowserContext, live_server: str
) -> None:
    page.goto(live_server + "/")
    open_widget(page)
    with page.expect_response(f"{live_server}/v1/chat/stream") as streamed:
        ask(page, QUESTION)
    assert streamed.value.headers["content-type"].startswith("text/event-stream")
    expect(page.locator(".msg.user")).to_have_text(re.compile(re.escape(QUESTION)))
    answer = page.locator(".msg.bot").last
    expect(answer.get_by_role("button", name="Câu trả lời hữu ích")).to_be_visible()
    chip = answer.locator(".answer a.chip").first
    expect(chip).to_be_visible()
    expect(answer.locator(".sources li")).not_to_have_count(0)

    # click: a sheet in the panel with the citation label and the quoted paragraph
    label = (chip.get_attribute("aria-label") or "").split(": ", 1)[1]
    assert label.startswith("Kết luận 183-KL/TW"), label
    chip.click()
    sheet = page.get_by_role("dialog", name=label)
    expect(sheet).to_be_visible()
    sheet_text = " ".join(sheet.inner_text().split())

    # "Mở văn bản" in a new tab (ctrl-click): the document page, scrolled to the paragraph and highlighted
    opener = sheet.get_by_role("link", name="Mở văn bản")
    href = opener.get_attribute("href") or ""
    match = re.fullmatch(re.escape(live_server) + r"/documents/([^#?]+)(?:\?hl=\d+-\d+)?#(.+)", href)
    assert match, href
    with context.expect_page() as opened:
        opener.click(modifiers=["Control"])
    doc = opened.value
    doc.wait_for_load_state()
    passage = doc.locator(f'[id="{match.group(2)}"]')
    expect(passage).to_have_class(re.compile(r"\bis-highlighted\b"))
    expect(passage).to_be_in_viewport()
    quote = " ".join(passage.locator(".passage-text").inner_text().split())
    assert quote[:60] in sheet_text, (quote, sheet_text)
    background = passage.evaluate("el => getComputedStyle(el).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent"), background
    doc.close()
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()

    # feedback, then a reload keeps the conversation, then a new conversation clears it
    with page.expect_response(f"{live_server}/v1/feedback") as sent:
        answer.get_by_role("button", name="Câu trả lời hữu ích").click()
    assert sent.value.status == 204
    expect(answer.get_by_role("button", name="Câu trả lời hữu ích")).to_have_attribute("aria-pressed", "true")
    stored = json.loads(page.evaluate(f"localStorage.getItem('ketluan-widget:{live_server}')"))
    assert stored["conversation_id"]
    page.reload()
    expect(page.locator(".msg.user")).to_have_text(re.compile(re.escape(QUESTION)))
    expect(page.locator(".msg.bot .answer a.chip").first).to_be_visible()
    expect(page.get_by_role("button", name="Câu trả lời hữu ích")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Cuộc trò chuyện mới").click()
    expect(page.locator(".msg.user")).to_have_count(0)
    expect(page.locator(".suggestion").first).to_be_visible()
    assert (
        json.loads(page.evaluate(f"localStorage.getItem('ketluan-widget:{live_server}')"))["conversation_id"]
        is None
    )


class GatedService(FakeChatService):
    """Sends the first word, then waits for the test to open the gate before sending the rest."""

    def __init__(self, index: SearchIndex, gate: threading.Event) -> None:
        super().__init__(index)
        self.gate = gate

    async def stream(
        self, message: str, conversation_id: str | None = None, filters: Any = None
    ) -> AsyncIterator[FakeEvent]:
        response = self.answer(message, conversation_id, filters)
        first, rest = response.answer.split(" ", 1)
        yield FakeEvent("token", {"text": first + " "})
        await asyncio.to_thread(self.gate.wait, 20)
        yield FakeEvent("token", {"text": rest})
        yield FakeEvent("citations", [c.model_dump(mode="json") for c in response.citations])
        yield FakeEvent("done", response.model_dump(mode="json"))


def test_answer_text_appears_while_it_streams(
    page: Page, serve_app: ServeApp, api_settings: Settings, kl_index: SearchIndex
) -> None:
    gate = threading.Event()
    app = create_app(
        api_settings, index=kl_index, service_factory=lambda index, store, llm: GatedService(index, gate)
    )
    with serve_app(app) as base:
        try:
            page.goto(base + "/")
            open_widget(page)
            ask(page, QUESTION)
            answer = page.locator(".msg.bot").last
            expect(answer).to_have_attribute("aria-busy", "true")
            expect(answer.locator(".answer")).to_have_text(re.compile(r"^“\S+"))
            expect(answer.locator(".fb")).to_have_count(0)
        finally:
            gate.set()
        expect(answer.locator(".fb")).to_have_count(4)  # thumbs up, down, copy, share
        expect(answer).not_to_have_attribute("aria-busy", "true")
        expect(answer.locator(".answer a.chip")).to_have_count(1)


# --- what the server sends is text, never markup ------------------------------------------------------------
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def test_html_in_question_and_answer_is_shown_as_text(
    page: Page, live_server: str, kl_index: SearchIndex
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    passage = kl_index.passages_of("kl183-621b55")[3].model_dump(mode="json")
    citation = {
        **passage,
        "n": 1,
        "label": f"Nhãn {HOSTILE}",
        "text": f"Trích <b>đậm</b> {HOSTILE}",
        "url": "javascript:window.__pwned=3",
    }
    answer = (
        f"Mở đầu {HOSTILE} [1]\ndòng hai\ndòng ba\n- ý một [1]\n- ý <i>hai</i>\n1. bước một\n2. bước hai [7]"
    )
    done = {
        "conversation_id": "c1",
        "message_id": "m1",
        "answer": answer,
        "answered": True,
        "citations": [citation],
        "mode": "extractive",
        "latency_ms": 1.0,
    }
    body = sse(
        ("token", {"text": answer[:20]}),
        ("token", {"text": answer[20:]}),
        ("citations", [citation]),
        ("done", done),
    )
    page.route(
        "**/v1/chat/stream",
        lambda route: route.fulfill(status=200, body=body, headers={"Content-Type": "text/event-stream"}),
    )
    page.goto(live_server + "/")
    open_widget(page)
    question = f"Câu hỏi {HOSTILE} <a href='javascript:alert(1)'>x</a>"
    ask(page, question)
    bot = page.locator(".msg.bot").last
    expect(bot.locator(".fb")).to_have_count(4)
    expect(page.locator(".msg.user")).to_contain_text(question)
    expect(bot.locator(".answer")).to_contain_text(f"Mở đầu {HOSTILE}")
    expect(bot.locator(".answer")).to_contain_text("ý <i>hai</i>")
    # lists and line breaks render; the marker [7] has no citation and is dropped
    expect(bot.locator(".answer ul li")).to_have_count(2)
    expect(bot.locator(".answer ol li")).to_have_count(2)
    expect(bot.locator(".answer p br")).to_have_count(1)
    expect(bot.locator(".answer p.lead")).to_contain_text(f"Mở đầu {HOSTILE}")  # the first line, in full
    expect(bot.locator(".answer a.chip")).to_have_count(2)
    assert "[7]" not in bot.locator(".answer").inner_text()
    chip = bot.locator(".answer a.chip").first
    assert (chip.get_attribute("href") or "").startswith(f"{live_server}/documents/kl183-621b55#")
    chip.click()
    expect(page.get_by_role("dialog", name=f"Nhãn {HOSTILE}")).to_contain_text("Trích <b>đậm</b>")
    for selector in ("img", "script", "i", "b", "iframe", "a[href^=javascript]"):
        assert shadow_count(page, selector) == 0, selector
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []


# --- failures the user must understand ---------------------------------------------------------------------
@contextlib.contextmanager
def host_page(serve_app: ServeApp, live_server: str, api: str, **options: str) -> Iterator[str]:
    """A page on another origin (its own loopback server) that embeds the widget, with hostile CSS."""
    attrs = " ".join(f'data-{k.replace("_", "-")}="{v}"' for k, v in options.items())
    html = f"""<!doctype html><html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Xã Mẫu</title>
<style>* {{ font-family: serif !important; color: lime !important; font-size: 40px !important; }}
button {{ display: none !important; }} div {{ border: 5px dotted red !important; }}
ketluan-chat {{ display: none !important; transform: scale(.2) !important; }}</style></head>
<body><h1>Trang của một xã</h1>
<script src="{live_server}/widget.js" data-api="{api}" {attrs} defer></script></body></html>"""
    app = FastAPI()
    app.add_api_route("/", lambda: HTMLResponse(html), methods=["GET"])
    with serve_app(app) as base:
        yield base.replace("127.0.0.1", "localhost") + "/"


def test_unreachable_server_shows_a_retry_that_works(
    page: Page, live_server: str, serve_app: ServeApp
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with host_page(serve_app, live_server, closed) as url:
        page.goto(url)
        open_widget(page)
        ask(page, QUESTION)
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("Không kết nối được tới máy chủ hỏi đáp")
        retry = alert.get_by_role("button", name="Thử lại")
        expect(retry).to_be_enabled()

        def answer(route: Route) -> None:
            cors = {
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Headers": "content-type, authorization",
                "Access-Control-Allow-Methods": "POST",
            }
            if route.request.method == "OPTIONS":
                route.fulfill(status=204, headers=cors)
                return
            done = {
                "conversation_id": "c9",
                "message_id": "m9",
                "answer": "Đã kết nối lại.",
                "answered": True,
                "citations": [],
                "mode": "extractive",
                "latency_ms": 1.0,
            }
            body = sse(("token", {"text": "Đã kết nối lại."}), ("citations", []), ("done", done))
            route.fulfill(status=200, body=body, headers={**cors, "Content-Type": "text/event-stream"})

        page.route(f"{closed}/v1/chat/stream", answer)
        retry.click()
        expect(page.get_by_role("alert")).to_have_count(0)
        expect(page.locator(".msg.bot").last).to_contain_text("Đã kết nối lại.")
        expect(page.locator(".msg.user")).to_have_count(1)


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"Retry-After": "30"}, "Vui lòng thử lại sau 30 giây"),
        (503, {}, "Hệ thống đang khởi động"),
    ],
)
def test_rate_limited_and_starting_server(
    page: Page, live_server: str, status: int, headers: dict[str, str], expected: str
) -> None:
    body = json.dumps({"error": {"code": "x", "message": "ignored"}})
    page.route(
        "**/v1/chat/stream",
        lambda route: route.fulfill(
            status=status, body=body, headers={**headers, "Content-Type": "application/json"}
        ),
    )
    page.goto(live_server + "/")
    open_widget(page)
    ask(page, QUESTION)
    expect(page.locator(".msg.bot").last).to_contain_text(expected)
    retry = page.locator(".msg.bot").last.locator(".retry")
    if status == 429:
        expect(retry).to_be_disabled()
        expect(retry).to_contain_text(re.compile(r"Thử lại \(\d+ giây\)"))
    else:
        expect(retry).to_be_enabled()


# --- the host page, options, keyboard and phone ----------------------------------------------------------------
def test_host_css_cannot_break_it_and_options_apply(
    page: Page, live_server: str, serve_app: ServeApp, kl_settings: IndexSettings, kl_index: SearchIndex
) -> None:
    """A host page on one origin, the widget script from a second and an API that wants a key on a third."""
    api = create_app(
        make_settings(kl_settings, api_keys="k-1"),
        index=kl_index,
        service_factory=lambda index, store, llm: FakeChatService(index),
    )
    options = {
        "lang": "en",
        "title": "Hỏi đáp xã Mẫu",
        "position": "bottom-left",
        "accent": "#0b5cad",
        "welcome": "Chào bà con!",
    }
    with (
        serve_app(api) as api_url,
        host_page(serve_app, live_server, api_url, api_key="k-1", **options) as url,
    ):
        page.goto(url)
        launcher = page.get_by_role("button", name="Open the Kết luận question box")
        expect(launcher).to_be_visible()
        box = launcher.bounding_box()
        assert box is not None and box["x"] < 100 and box["height"] < 80, box
        style = launcher.evaluate(
            "el => [getComputedStyle(el).fontFamily, getComputedStyle(el).color, "
            "getComputedStyle(el).fontSize, getComputedStyle(el).backgroundColor]"
        )
        assert style[0] != "serif" and style[1] != "rgb(0, 255, 0)" and style[2] == "15px", style
        assert style[3] == "rgb(11, 92, 173)", style
        launcher.click()
        expect(page.get_by_role("dialog", name="Hỏi đáp xã Mẫu")).to_be_visible()
        expect(page.locator(".msg.bot.welcome")).to_have_text("Chào bà con!")
        with page.expect_request(f"{api_url}/v1/chat/stream") as sent:
            ask(page, QUESTION, label="Your question")
        assert sent.value.all_headers().get("authorization") == "Bearer k-1"
        expect(page.get_by_role("button", name="Helpful answer", exact=True)).to_be_visible()
        expect(page.locator(".msg.bot .answer a.chip")).to_have_count(1)
        page.get_by_role("button", name="New conversation").click()
        expect(page.locator(".msg.user")).to_have_count(0)
        # the widget's CSS does not leak out either
        assert page.evaluate("getComputedStyle(document.querySelector('h1')).color") == "rgb(0, 255, 0)"


def test_keyboard_alone(page: Page, live_server: str) -> None:
    page.goto(live_server + "/")
    launcher = page.get_by_role("button", name="Mở hộp hỏi đáp về các Kết luận")
    launcher.focus()
    page.keyboard.press("Enter")
    focused = "() => document.querySelector('ketluan-chat').shadowRoot.activeElement?.id"
    assert page.evaluate(focused) == "kl-input"
    expect(page.get_by_role("dialog")).to_have_attribute(
        "aria-modal", "false"
    )  # beside the page, not over it
    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Câu trả lời hữu ích")).to_be_visible()
    chip = page.locator(".msg.bot .answer a.chip").first
    chip.focus()  # as reached by Tab; the chips are ordinary links in the tab order
    assert chip.evaluate("el => el.tabIndex") == 0
    page.keyboard.press("Enter")
    sheet = page.get_by_role("dialog", name=re.compile("^Kết luận"))
    expect(sheet).to_be_visible()
    expect(sheet.get_by_role("button", name="Đóng trích dẫn")).to_be_focused()
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()
    assert chip.evaluate("el => el.getRootNode().activeElement === el")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert launcher.evaluate("el => el.getRootNode().activeElement === el")


def test_phone_360(browser: Browser, live_server: str) -> None:
    ctx = browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2, reduced_motion="reduce"
    )
    try:
        page = ctx.new_page()
        page.goto(live_server + "/")
        page.get_by_role("button", name="Mở hộp hỏi đáp về các Kết luận").tap()
        panel = page.get_by_role("dialog", name="Hỏi đáp Kết luận")
        expect(panel).to_be_visible()
        ask(page, QUESTION)
        expect(page.get_by_role("button", name="Câu trả lời hữu ích")).to_be_visible()
        box = panel.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, box
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        # a tap shows the quote in a sheet, it does not navigate
        chip = page.locator(".msg.bot .answer a.chip").first
        chip.tap()
        tip = page.get_by_role("dialog", name=re.compile("^Kết luận"))
        expect(tip).to_be_visible()
        tip_box = tip.bounding_box()
        assert tip_box is not None and tip_box["x"] >= 0 and tip_box["x"] + tip_box["width"] <= 360, tip_box
        assert page.url.rstrip("/") == live_server
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "widget-phone-360.png"))
        assert (ARTIFACTS / "widget-phone-360.png").stat().st_size > 10_000
        # full screen, the panel is modal: Tab and Shift+Tab cycle inside it, never into the page behind
        expect(panel).to_have_attribute("aria-modal", "true")
        page.keyboard.press("Escape")  # the sheet first
        expect(tip).to_be_hidden()
        inside = ("() => document.activeElement === document.querySelector('ketluan-chat') && "
                  "document.querySelector('ketluan-chat').shadowRoot.querySelector('.panel')"
                  ".contains(document.querySelector('ketluan-chat').shadowRoot.activeElement)")  # fmt: skip
        seen = set()
        for key in ["Tab"] * 25 + ["Shift+Tab"] * 25:
            page.keyboard.press(key)
            assert page.evaluate(inside), key
            seen.add(
                page.evaluate(
                    "() => document.querySelector('ketluan-chat').shadowRoot.activeElement.outerHTML"
                )
            )
        assert len(seen) >= 4  # it moves through the panel's controls, it is not stuck on one
    finally:
        ctx.close()
