"""The task tracker page /nhiem-vu in headless Chromium (Debian's package), driven by Playwright, on a desktop
and at 390×844 with touch. The tasks are hand-written (tests/task_fixtures.py); the documents they link to are
the shipped corpus, so a clause link opens its highlighted paragraph. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from api import deps, routes_tasks
from api.app import create_app
from api.settings import Settings
from bot.stores import sqlite_stores
from index.search import SearchIndex
from tests.api import test_widget_browser
from tests.api.conftest import FakeChatService, run_server
from tests.api.test_widget_browser import ARTIFACTS, DESKTOP
from tests.task_fixtures import DIRECTIVES, SCHOOLS, TRAINING, sample_book

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


browser = test_widget_browser.browser  # the one module-scoped Chromium fixture of the browser suites


@pytest.fixture(scope="module")
def site(api_settings: Settings, kl_index: SearchIndex) -> Iterator[str]:
    """The whole app over the shipped corpus, its task book replaced by the sample tasks."""
    app = create_app(api_settings, index=kl_index, stores=sqlite_stores(":memory:"),
                     service_factory=lambda index, store, llm: FakeChatService(index))  # fmt: skip
    book = sample_book()
    app.dependency_overrides[routes_tasks.page_tasks] = lambda: book
    app.dependency_overrides[deps.get_tasks] = lambda: book
    with run_server(app) as base_url:
        yield base_url


def _page(context: BrowserContext) -> tuple[Page, list[str]]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(15_000)
    return page, errors


@pytest.fixture()
def desktop(browser: Browser) -> Iterator[Page]:
    ctx = browser.new_context(
        viewport=DESKTOP, reduced_motion="reduce", locale="vi-VN", accept_downloads=True
    )
    page, errors = _page(ctx)
    yield page
    ctx.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture()
def phone(browser: Browser) -> Iterator[Page]:
    ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2,
                              reduced_motion="reduce", locale="vi-VN")  # fmt: skip
    page, errors = _page(ctx)
    yield page
    ctx.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def rows(page: Page) -> list[str]:
    ids = page.locator("tr.task").evaluate_all("rows => rows.map(r => r.id)")
    return [i.removeprefix("task-") for i in ids]


def export_query(page: Page, name: str) -> dict[str, list[str]]:
    href = page.get_by_role("link", name=name).get_attribute("href") or ""
    return parse_qs(urlsplit(href).query)


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    assert (ARTIFACTS / name).stat().st_size > 10_000


def test_desktop_filter_by_agency_as_you_type(desktop: Page, site: str) -> None:
    page = desktop
    page.goto(site + "/nhiem-vu")
    expect(page.get_by_role("heading", level=1)).to_have_text("Nhiệm vụ theo các Kết luận")
    expect(page.locator("tr.task")).to_have_count(len(DIRECTIVES))
    expect(page.get_by_role("columnheader", name="Hạn")).to_be_visible()
    options = page.locator("#agency-list option").evaluate_all("os => os.map(o => o.value)")
    assert "Bộ Nội vụ" in options and "Các tỉnh ủy, thành ủy" in options

    page.get_by_label("Cơ quan", exact=True).fill("Bộ Nội vụ")  # a suggestion: filters at once
    expect(page.locator("tr.task")).to_have_count(2)
    assert rows(page) == [TRAINING.directive_id, SCHOOLS.directive_id]
    assert parse_qs(urlsplit(page.url).query) == {"agency": ["Bộ Nội vụ"]}  # the address can be shared
    assert export_query(page, "Tải lịch (.ics)") == {"agency": ["Bộ Nội vụ"]}
    assert export_query(page, "Tải CSV") == {"agency": ["Bộ Nội vụ"]}

    page.get_by_label("Kết luận", exact=True).select_option("221-KL/TW")
    expect(page.locator("tr.task")).to_have_count(1)
    assert export_query(page, "Tải CSV") == {"agency": ["Bộ Nội vụ"], "ket_luan": ["221-KL/TW"]}
    with page.expect_download() as download:
        page.get_by_role("link", name="Tải CSV").click()
    assert download.value.suggested_filename == "nhiem-vu.csv"
    body = open(download.value.path(), "rb").read()  # noqa: SIM115
    assert body.startswith(b"\xef\xbb\xbf") and SCHOOLS.action.encode() in body
    screenshot(page, "tasks-desktop.png")

    page.get_by_role("link", name=SCHOOLS.label).click()  # the clause, highlighted in its document
    path, fragment = SCHOOLS.url.split("#")
    marked = f"{path}?hl={SCHOOLS.source.start}-{SCHOOLS.source.end}#{fragment}"
    expect(page).to_have_url(re.compile(re.escape(marked) + "$"))
    passage = page.locator(f"[id='{SCHOOLS.passage_id}']")
    expect(passage).to_have_class(re.compile("is-highlighted"))


def test_desktop_dates_status_and_unknown_agency(desktop: Page, site: str) -> None:
    page = desktop
    page.goto(site + "/nhiem-vu?as_of=2025-09-01")
    page.get_by_label("Tình trạng").select_option("overdue")
    expect(page.locator("tr.task")).to_have_count(1)
    assert rows(page) == [TRAINING.directive_id]
    expect(page.locator("tr.task .badge")).to_have_text("Quá hạn")
    assert export_query(page, "Tải lịch (.ics)") == {"status": ["overdue"], "as_of": ["2025-09-01"]}

    page.get_by_label("Tình trạng").select_option("")
    page.get_by_label("Hạn từ ngày").fill("2025-09-01")
    page.get_by_label("đến ngày").fill("2025-12-31")
    page.get_by_label("đến ngày").dispatch_event("change")
    expect(page.locator("tr.task")).to_have_count(2)

    box = page.get_by_label("Cơ quan", exact=True)
    box.fill("Bo Noi")  # not a name: nothing happens until Enter
    expect(page.locator("tr.task")).to_have_count(2)
    box.press("Enter")
    expect(page.get_by_role("status")).to_contain_text('Không tìm thấy cơ quan "Bo Noi"')
    expect(page.locator("tr.task")).to_have_count(0)
    page.locator(".suggestions").get_by_role("link", name="Bộ Nội vụ").click()
    expect(page.locator("tr.task")).to_have_count(1)  # SCHOOLS: Bộ Nội vụ partners, due 31/12/2025


def test_keyboard_focus_is_visible(desktop: Page, site: str) -> None:
    page = desktop
    page.goto(site + "/nhiem-vu")
    page.get_by_label("Cơ quan", exact=True).focus()
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert page.evaluate("document.activeElement.id") == "f-ket-luan" and outline != "none"


def test_phone_rows_become_cards(phone: Page, site: str) -> None:
    page = phone
    page.goto(site + "/nhiem-vu")
    expect(page.locator("tr.task")).to_have_count(len(DIRECTIVES))
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
    card = page.locator("tr.task").first.bounding_box()
    assert card is not None and card["width"] <= PHONE["width"] and card["x"] >= 0
    assert page.locator("tr.task").first.evaluate("r => getComputedStyle(r).display") == "block"
    font = page.get_by_label("Cơ quan", exact=True).evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert font >= 16  # iOS does not zoom into the box
    for target in [page.get_by_role("button", name="Lọc"), page.get_by_role("link", name="Tải CSV"),
                   page.get_by_role("link", name="Tải lịch (.ics)"), page.get_by_label("Tình trạng"),
                   page.get_by_role("link", name=TRAINING.label)]:  # fmt: skip
        box = target.bounding_box()
        assert box is not None and box["height"] >= 44, target

    page.get_by_label("Tình trạng").select_option("no_deadline")
    expect(page.locator("tr.task")).to_have_count(1)
    assert export_query(page, "Tải lịch (.ics)") == {"status": ["no_deadline"]}
    page.get_by_label("Tình trạng").select_option("")
    page.get_by_label("Cơ quan", exact=True).fill("Bộ Nội vụ")
    expect(page.locator("tr.task")).to_have_count(2)
    screenshot(page, "tasks-phone-390.png")


def test_without_javascript_the_form_still_filters(browser: Browser, site: str) -> None:
    ctx = browser.new_context(viewport=PHONE, java_script_enabled=False, locale="vi-VN")
    try:
        page = ctx.new_page()
        page.goto(site + "/nhiem-vu")
        expect(page.locator("tr.task")).to_have_count(len(DIRECTIVES))
        page.get_by_label("Cơ quan", exact=True).fill("bo noi vu")
        page.get_by_role("button", name="Lọc").click()
        expect(page.locator("tr.task")).to_have_count(2)
        assert parse_qs(urlsplit(page.url).query)["agency"] == ["bo noi vu"]
        assert export_query(page, "Tải CSV") == {"agency": ["bo noi vu"]}
    finally:
        ctx.close()
