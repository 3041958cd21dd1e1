"""A plugin with hundreds of versions: a light plugin page and paginated versions pages."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import html5lib
import pytest

from builder.site import context as site_context
from tests.conftest import copy_demo_index, sign_as_owner
from tests.test_site import _add_version, _internal_links, build_with_site, pages

NAME = "template-faker"  # a bundled plugin, given 600 more versions (1.0.0 to 1.59.9)
YANKED = "1.59.7"  # among the newest: shown on the plugin page, with its reason
PRERELEASE = "1.0.0-rc.1"  # older than every shown release: shown as the latest prerelease
REASON = "Drops every second row of a fake table."
MINORS, PATCHES = 60, 10
_ROW = re.compile(r'<tr id="v-([^"]+)"')


def _yank(index: Path, version: str) -> None:
    target = index / "plugins" / NAME / "versions" / f"{version}.yaml"
    text = target.read_text(encoding="utf-8")
    target.write_text(text + f"yanked:\n  reason: {REASON}\n  serial: 1\n", encoding="utf-8")
    sign_as_owner(target, yank=True)


def _many_versions(parent: Path) -> Path:
    """Return a copy of the bundled index whose NAME has 600 more versions."""
    index = copy_demo_index(parent)
    _add_version(index, NAME, PRERELEASE)
    for minor in range(MINORS):
        for patch in range(PATCHES):
            _add_version(index, NAME, f"1.{minor}.{patch}")
    _yank(index, YANKED)
    return index


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Return (index, build) of the bundled index with one plugin of ~600 versions."""
    parent = tmp_path_factory.mktemp("many")
    index = _many_versions(parent)
    build_with_site(index, parent / "out")
    return index, parent / "out"


def _read(out: Path, path: str) -> str:
    return (out / path).read_text(encoding="utf-8")


def _versions_in_order(out: Path) -> list[str]:
    found: list[str] = []
    page = 1
    while (out / site_context.versions_path(NAME, page)).is_file():
        found += _ROW.findall(_read(out, site_context.versions_path(NAME, page)))
        page += 1
    return found


def test_the_plugin_page_stays_under_30_kb_with_its_css(many: tuple[Path, Path]) -> None:
    """The issue's page weight holds for a plugin of 600 versions (it was 680 KiB)."""
    _, out = many
    css = sum(p.stat().st_size for p in (out / "static").glob("style.*.css"))
    assert (out / "plugins" / NAME / "index.html").stat().st_size + css <= 30 * 1024


def test_the_plugin_page_shows_the_newest_and_links_to_all(many: tuple[Path, Path]) -> None:
    """The newest releases, the yanked among them, the latest prerelease, and a link."""
    _, out = many
    text = _read(out, f"plugins/{NAME}/index.html")
    shown = _ROW.findall(text)
    everything = _versions_in_order(out)
    newest = [v for v in everything if v != PRERELEASE][: site_context.VERSIONS_SHOWN + 1]
    assert shown == [*newest, PRERELEASE]  # ten releases, the yanked one, the prerelease
    assert f'<a href="versions/">all {len(everything)} versions</a>' in text
    assert 'badge latest">latest' in text[text.index('id="v-1.59.9"') :]
    yanked = text[text.index(f'id="v-{YANKED}"') : text.index('id="v-1.59.6"')]
    assert 'class="yanked"' in yanked and REASON in yanked
    assert "plugindex install" not in yanked
    prerelease = text[text.index(f'id="v-{PRERELEASE}"') :]
    assert 'badge pre">prerelease' in prerelease


def test_the_versions_pages_hold_every_version_once_newest_first(
    many: tuple[Path, Path],
) -> None:
    """100 a page, in the document's order reversed, with previous/next links."""
    _, out = many
    everything = _versions_in_order(out)
    assert len(everything) == len(set(everything)) == MINORS * PATCHES + 1 + 2  # + its 2 bundled
    assert everything[0] == "1.59.9" and everything[-1] == "0.4.0"
    first = _read(out, site_context.versions_path(NAME, 1))
    assert first.count("<tr id=") == site_context.VERSIONS_PER_PAGE
    assert 'rel="next" href="../../../plugins/template-faker/versions/2/"' in first
    last = _read(out, site_context.versions_path(NAME, 7))
    assert 'rel="prev" href="../../../../plugins/template-faker/versions/6/"' in last
    assert not (out / site_context.versions_path(NAME, 8)).exists()
    yanked = first[first.index(f'id="v-{YANKED}"') : first.index('id="v-1.59.6"')]
    assert REASON in yanked and "plugindex install" not in yanked


def test_every_link_resolves_and_every_page_parses(many: tuple[Path, Path]) -> None:
    """The crawler over the whole build, with the versions pages; each is valid HTML5."""
    _, out = many
    broken = [
        f"{page.relative_to(out)}: {link}"
        for page in pages(out)
        for link, target in _internal_links(out, page)
        if not (out / target).is_file()
    ]
    assert broken == []
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    for page in sorted((out / "plugins" / NAME / "versions").rglob("*.html")):
        parser.parse(page.read_bytes())


def test_the_sitemap_lists_the_versions_pages(many: tuple[Path, Path]) -> None:
    """Every versions page is in sitemap.xml."""
    _, out = many
    urls = {e.text for e in ET.parse(out / "sitemap.xml").getroot().iter() if e.text}
    listed = {u for u in urls if f"/plugins/{NAME}/versions/" in u}
    assert len(listed) == len(list((out / "plugins" / NAME / "versions").rglob("*.html"))) == 7


def test_versions_pages_follow_their_plugin_only(tmp_path: Path) -> None:
    """Another plugin's release renders none of them; one of its own renders them all;
    losing versions removes the pages past the last."""
    index = _many_versions(tmp_path)
    out = tmp_path / "out"
    build_with_site(index, out)
    _add_version(index, "auth-jwt", "9.0.0")
    _, stage = build_with_site(index, out)
    assert [p for p in stage.rendered if "/versions/" in p] == []
    _add_version(index, NAME, "2.0.0")
    _, stage = build_with_site(index, out)
    assert {p for p in stage.rendered if "/versions/" in p} == {
        site_context.versions_path(NAME, page) for page in range(1, 8)
    }
    for path in (index / "plugins" / NAME / "versions").glob("1.[1-5]?.*.yaml"):
        path.unlink()
    result, _ = build_with_site(index, out)
    assert result.report is not None
    assert (out / site_context.versions_path(NAME, 2)).is_file()
    assert not (out / site_context.versions_path(NAME, 3)).exists()
