"""The browser search (site/search.js) in Debian's Chromium over a served build of the site."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import BUNDLED_INDEX
from tests.site_browser import LAUNCH_ARGS, build_site, ensure_chromium, served

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve a build of the bundled index (site and search) and yield its base URL."""
    out = tmp_path_factory.mktemp("search-site") / "out"
    build_site(BUNDLED_INDEX, out)
    assert (out / "search" / "v1" / "manifest.json").is_file()
    with served(out) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Launch headless Chromium (Debian's, never a downloaded one)."""
    executable = ensure_chromium()
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


class Page:
    """A page that records the bytes of every response and every script error."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_page()
        self.fetched: list[tuple[str, int]] = []
        self.errors: list[str] = []
        self.page.on("requestfinished", self._finished)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def _finished(self, request: Any) -> None:
        self.fetched.append((request.url, request.sizes()["responseBodySize"]))

    def search_bytes(self) -> int:
        """Return the bytes of search data (manifest and shards) fetched so far."""
        return sum(size for url, size in self.fetched if "/search/v1/" in url)

    def ready(self, before: str | None = None) -> None:
        """Wait until the script has shown the answer to the latest query."""
        self.page.wait_for_function(
            "b => document.documentElement.getAttribute('data-search-ready') !== b",
            arg=before,
        )

    def results(self) -> list[str]:
        return [str(t).strip() for t in self.page.locator("[role=option] a").all_inner_texts()]


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    recorded = Page(browser)
    yield recorded
    assert recorded.errors == []
    recorded.page.close()


def test_search_page_answers_the_query_in_the_url(site: str, page: Page) -> None:
    """search/?q= shows the results (a typo still finds the plugin) with few bytes."""
    page.page.goto(site + "search/?q=postgress")
    page.ready()
    assert page.results()[0] == "datasource-postgres"
    assert "1 plugin matches" in page.page.inner_text("#search-results")
    assert 0 < page.search_bytes() <= 20_000
    shards = [url for url, _ in page.fetched if "/search/v1/t/" in url]
    assert len(shards) == 1  # one word, one shard
    key_lists = [url for url, _ in page.fetched if "/search/v1/k/" in url]
    assert len(key_lists) == 1 and "/k/p." in key_lists[0]  # the keys starting with "p"


def test_typing_shows_results_and_arrow_keys_follow_one(site: str, page: Page) -> None:
    """On any page, typing shows results under the box; arrows move; Enter opens the plugin."""
    page.page.goto(site + "plugins/auth-basic/")
    box = page.page.locator("#q")
    box.click()
    box.press_sequentially("auth", delay=30)
    page.page.wait_for_selector("#search-listbox [role=option]")
    page.page.wait_for_function("() => document.querySelectorAll('#search-listbox a').length >= 2")
    assert page.results()[:2] == ["auth-basic", "auth-jwt"]
    assert box.get_attribute("aria-expanded") == "true"
    box.press("ArrowDown")
    box.press("ArrowDown")
    active = box.get_attribute("aria-activedescendant")
    assert active == "search-option-1"
    assert page.page.get_attribute(f"#{active}", "aria-selected") == "true"
    box.press("ArrowUp")
    assert box.get_attribute("aria-activedescendant") == "search-option-0"
    box.press("ArrowDown")
    box.press("Enter")
    page.page.wait_for_url("**/plugins/auth-jwt/")
    assert "JWT" in page.page.title()


def test_clicking_a_result_opens_its_page(site: str, page: Page) -> None:
    """Results are links to the plugin pages, relative to the site root."""
    page.page.goto(site + "search/?q=grpc")
    page.ready()
    page.page.locator("[role=option] a").first.click()
    page.page.wait_for_url("**/plugins/protocol-grpc/")


def test_filters_narrow_the_results(site: str, page: Page) -> None:
    """The category and engine selects filter the results without a reload."""
    page.page.goto(site + "search/?q=template")
    page.ready()
    assert sorted(page.results()) == ["template-crypto", "template-faker"]
    before = page.page.get_attribute("html", "data-search-ready")
    page.page.select_option("#search-engine", "lua")
    page.ready(before)
    assert page.results() == ["template-faker"]
    before = page.page.get_attribute("html", "data-search-ready")
    page.page.select_option("#search-engine", "")
    page.ready(before)
    before = page.page.get_attribute("html", "data-search-ready")
    page.page.select_option("#search-category", "auth")
    page.ready(before)
    assert page.results() == []
    assert "No plugin matches" in page.page.inner_text("#search-results")


def test_search_page_form_answers_in_place_and_updates_the_url(site: str, page: Page) -> None:
    """Typing on the search page updates the results and the address (?q=)."""
    page.page.goto(site + "search/")
    box = page.page.locator("#q")
    box.fill("jwt auth")
    page.page.wait_for_function("() => location.search.includes('jwt')")
    page.ready()
    assert page.results()[0] == "auth-jwt"
    box.press("Enter")  # submitting stays on the page
    page.page.wait_for_timeout(200)
    assert page.page.url.startswith(site + "search/")


def test_same_ranking_as_the_cli_for_the_top_result(site: str, page: Page) -> None:
    """The browser and the CLI agree on the first result of typical queries."""
    page.page.goto(site + "search/")
    expected = {
        "auth-jwt": "auth-jwt",
        "csv": "datasource-csv",
        "postgress": "datasource-postgres",
        "auth-j": "auth-jwt",
        "opentelemetry": "observability-otel",
        "htpasswd": "auth-basic",
    }
    for query, first in expected.items():
        found = page.page.evaluate("q => window.plugindexSearch(q)", query)
        assert found and found[0] == first, (query, found)


@pytest.mark.parametrize("query", ["%2A", "OR", "the%20%3F"], ids=["star", "or", "stop-words"])
def test_a_query_without_words_says_so_and_fetches_nothing(
    site: str, page: Page, query: str
) -> None:
    """Symbols and stop words alone list no plugin, say why, and cost no search bytes."""
    page.page.goto(site + "search/?q=" + query)
    page.ready()
    assert page.results() == []
    assert "No search words in" in page.page.inner_text("#search-results")
    assert page.search_bytes() == 0


def test_hostile_text_is_shown_as_text(site: str, page: Page) -> None:
    """A query with markup is never parsed as HTML (textContent only)."""
    page.page.goto(site + "search/?q=" + "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    page.ready()
    assert page.page.locator("#search-results img").count() == 0
    assert "<img" in page.page.inner_text("#search-results")
