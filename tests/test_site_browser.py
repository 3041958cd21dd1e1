"""The site in a real browser: Debian's chromium, driven by Playwright, over `plugindex serve`.

One browser for the whole module; the bundled index and a hostile one are each built
once and served on a free port of 127.0.0.1. Screenshots land in tests/.screenshots/.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urldefrag, urljoin

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import BUNDLED_INDEX
from tests.site_browser import (
    HOSTILE_NAME,
    LAUNCH_ARGS,
    SCREENSHOTS,
    build_site,
    ensure_axe,
    ensure_chromium,
    ignored_folder,
    served,
    write_hostile_index,
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Start Debian's chromium once for the module (installed first if missing)."""
    chromium = ensure_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=LAUNCH_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve a build of the bundled index; return its base URL."""
    out = tmp_path_factory.mktemp("browser-site") / "out"
    build_site(BUNDLED_INDEX, out)
    with served(out) as base:
        yield base


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve a build of an index holding one hostile plugin; return its base URL."""
    root = tmp_path_factory.mktemp("hostile-site")
    index = write_hostile_index(root / "index")
    build_site(index, root / "out")
    with served(root / "out") as base:
        yield base


@dataclass
class Watch:
    """What went wrong on a page: console errors, uncaught errors, failed requests."""

    base: str
    problems: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)  # requests to another origin
    dialogs: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> Page:
        """Record everything a page does wrong from now on."""
        page.on(
            "console",
            lambda m: (
                self.problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        page.on(
            "response",
            lambda r: (
                self.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None
            ),
        )
        page.on(
            "request",
            lambda r: None if r.url.startswith(self.base) else self.foreign.append(r.url),
        )

        def dismiss(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", dismiss)
        return page


def test_home_to_category_to_plugin_and_copy_the_install_command(
    browser: Browser, site: str
) -> None:
    """A person finds a plugin by links alone and copies its install command."""
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    watch = Watch(site)
    page = watch.attach(context.new_page())
    page.goto(site)
    assert page.locator("h1").inner_text() == "plugindex demo registry"
    page.get_by_role("link", name="Authentication").first.click()
    page.wait_for_url(site + "categories/auth/")
    page.get_by_role("link", name="auth-jwt").click()
    page.wait_for_url(site + "plugins/auth-jwt/")
    assert "JWT Authentication" in page.locator("h1").inner_text()
    copy = page.locator(".install button.copy")
    assert copy.is_visible()
    copy.click()
    page.wait_for_function(
        "document.querySelector('.install button.copy').textContent === 'Copied'"
    )
    assert page.evaluate("navigator.clipboard.readText()") == "plugindex install auth-jwt"
    assert watch.problems == [] and watch.foreign == []
    context.close()


def test_a_yanked_version_is_marked_with_its_reason_and_no_install_command(
    browser: Browser, site: str
) -> None:
    """The yanked row says so, shows the reason, and offers nothing to install."""
    page = browser.new_page()
    page.goto(site + "plugins/datasource-csv/")
    row = page.locator("tr#v-1\\.0\\.1")
    assert "yanked" in (row.get_attribute("class") or "")
    row.locator("summary").click()
    assert row.locator(".badge.yanked").is_visible()
    assert "Quoted fields containing a newline" in row.locator(".reason").inner_text()
    assert row.locator("details dl").is_visible()
    assert row.locator("button.copy").count() == 0
    assert "plugindex install" not in row.inner_text()
    good = page.locator("tr#v-1\\.0\\.2")
    assert "plugindex install datasource-csv@=1.0.2" in good.inner_text()
    page.close()


def test_dependency_and_reverse_dependency_links(browser: Browser, site: str) -> None:
    """A dependency leads to its page, and that page's "used by" leads back."""
    page = browser.new_page()
    page.goto(site + "plugins/datasource-csv/")
    page.locator("tr#v-1\\.0\\.2 .deps a", has_text="template-faker").click()
    page.wait_for_url(site + "plugins/template-faker/")
    page.locator("#used-by a", has_text="datasource-csv").click()
    page.wait_for_url(site + "plugins/datasource-csv/")
    page.close()


def test_the_feed_and_the_sitemap_open(browser: Browser, site: str) -> None:
    """The releases feed and the sitemap load as XML that lists the plugins."""
    page = browser.new_page()
    for path, needle in [
        ("feeds/releases.xml", "auth-jwt 1.2.0"),
        ("plugins/auth-jwt/feed.xml", "auth-jwt 2.0.0-rc.1"),
        ("sitemap.xml", "plugins/auth-jwt/"),
    ]:
        response = page.goto(site + path)
        assert response is not None and response.status == 200
        assert "xml" in response.headers["content-type"]
        body = response.text()
        ET.fromstring(body)
        assert needle in body
    page.close()


def _links(page: Page) -> list[str]:
    found: list[str] = page.eval_on_selector_all(
        "a[href], link[href], script[src], img[src]",
        "els => els.map(e => e.href || e.src)",
    )
    return found


def test_every_page_loads_clean_and_every_internal_link_resolves(
    browser: Browser, site: str
) -> None:
    """A crawler from the home page: no console errors, no failed requests, no dead link."""
    watch = Watch(site)
    page = watch.attach(browser.new_page())
    seen: set[str] = set()
    queue = [site]
    pages = 0
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        if url.endswith("/") or url.endswith(".html"):
            response = page.goto(url)
            pages += 1
            assert response is not None and response.status == 200, url
            for link in _links(page):
                target = urldefrag(urljoin(url, link))[0]
                if target.startswith(site) and target not in seen:
                    queue.append(target)
        else:
            fetched = page.request.get(url)
            assert fetched.status == 200, url
    assert pages > 60, pages
    assert watch.problems == [], watch.problems[:10]
    assert watch.foreign == []


AXE_PAGES = [
    "",
    "plugins/auth-jwt/",
    "plugins/datasource-csv/",
    "categories/",
    "categories/auth/",
    "keywords/jwt/",
    "browse/",
    "browse/a/",
    "stats/",
    "search/",
    "404.html",
]


# Dark mode on the pages with the most colours (badges, yanked rows, links, bars).
AXE_CASES = [("light", p) for p in AXE_PAGES] + [
    ("dark", p) for p in ["", "plugins/datasource-csv/", "stats/", "search/"]
]


@pytest.mark.parametrize(
    ("scheme", "path"), AXE_CASES, ids=[f"{s}-{p or 'home'}" for s, p in AXE_CASES]
)
def test_axe_finds_no_serious_accessibility_problem(
    browser: Browser, site: str, path: str, scheme: str
) -> None:
    """axe-core (from npm) reports no serious or critical violation on each page type."""
    axe = ensure_axe()
    # axe is injected as an inline script, which the page's own CSP rightly refuses.
    context = browser.new_context(bypass_csp=True, color_scheme=scheme)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(site + path)
    page.add_script_tag(path=str(axe))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []
    context.close()


def test_keyboard_reaches_the_search_box_and_the_copy_button(browser: Browser, site: str) -> None:
    """Tab alone moves focus to the search box and then to the copy button."""
    page = browser.new_page()
    page.goto(site + "plugins/auth-jwt/")
    reached: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "(() => { const e = document.activeElement;"
            " return e.id || e.className || e.tagName; })()"
        )
        reached.append(focused)
        if focused == "copy":
            break
    assert "q" in reached
    assert reached[-1] == "copy", reached
    assert reached.index("q") < reached.index("copy")
    page.close()


def test_the_hostile_plugin_renders_inert_and_readable(browser: Browser, hostile_site: str) -> None:
    """No dialog fires, no request leaves for another origin, the text is shown as text."""
    watch = Watch(hostile_site)
    page = watch.attach(browser.new_page())
    page.goto(hostile_site + f"plugins/{HOSTILE_NAME}/")
    page.wait_for_load_state("networkidle")
    assert watch.dialogs == []
    assert watch.foreign == []
    assert watch.problems == [], watch.problems
    heading = page.locator("h1").inner_text()
    assert heading.startswith("<script>alert('display')</script>Evil")
    readme = page.locator(".readme").inner_text()
    assert "<script>alert('readme')</script>" in readme
    assert "[U+202E]" in readme
    assert page.locator(".readme img").count() == 1  # only the local raster image
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
    page.close()


def test_an_unknown_path_gets_the_404_page(browser: Browser, site: str) -> None:
    """`plugindex serve` (like the bucket) answers unknown paths with 404.html, status 404."""
    page = browser.new_page()
    response = page.goto(site + "plugins/no-such-plugin/")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "Not found"
    # Its links start from the site's path, so they work at any depth.
    page.get_by_role("link", name="All plugins, A\u2013Z").click()
    page.wait_for_url(site + "browse/")
    page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_of_home_and_plugin_page(browser: Browser, site: str, scheme: str) -> None:
    """Write screenshots (desktop and a 360 px phone) for a person to look at."""
    folder = ignored_folder(SCREENSHOTS)
    for width, suffix in [(1280, ""), (360, "-phone")]:
        context = browser.new_context(
            color_scheme=scheme,  # type: ignore[arg-type]
            viewport={"width": width, "height": 900},
        )
        page = context.new_page()
        for name, path in [("home", ""), ("plugin", "plugins/auth-jwt/")]:
            page.goto(site + path)
            target = folder / f"{name}-{scheme}{suffix}.png"
            page.screenshot(path=str(target), full_page=True)
            assert target.stat().st_size > 10_000
            if width == 360:  # readable on a phone: nothing wider than the screen
                assert page.evaluate("document.documentElement.scrollWidth") <= 360
        context.close()
