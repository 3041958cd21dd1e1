"""The HTML site: well-formed, inert, deterministic, incremental, and shipped in the wheel."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import html5lib
import pytest

from builder.index import output as output_module
from builder.index.analyse import analyse
from builder.index.build import BuildResult, build
from builder.site import context as site_context
from builder.site import feeds as site_feeds
from builder.site import listings as site_listings
from builder.site import planning as site_planning
from builder.site import workers as site_workers
from builder.site.context import plugin_context
from builder.site.readme import EXTERNAL_REL, Readme, load_readme, render_markdown, shown
from builder.site.stage import SiteStage
from tests.conftest import BUNDLED_INDEX, ROOT, sign_as_owner
from tests.site_browser import HOSTILE_NAME, write_hostile_index

EPOCH = {"SOURCE_DATE_EPOCH": "1736899200"}


def build_with_site(index: Path, out: Path) -> tuple[BuildResult, SiteStage]:
    """Build `index` into `out` with the site stage; return the result and the stage."""
    stage = SiteStage()
    result = build(index, out, environ=EPOCH, stages=[stage])
    return result, stage


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a build of the bundled index with its site (built once for this module)."""
    out = tmp_path_factory.mktemp("site") / "out"
    build_with_site(BUNDLED_INDEX, out)
    return out


def pages(out: Path) -> list[Path]:
    """Return every HTML page of a build."""
    return sorted(out.rglob("*.html"))


def site_files(out: Path) -> dict[str, bytes]:
    """Return every published file of a build by path (builder state left out)."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.relative_to(out).as_posix().startswith(".plugindex/")
    }


# --- pages -----------------------------------------------------------------------------


def test_every_page_is_well_formed_html5(bundled: Path) -> None:
    """A real HTML5 parser reads every page of the bundled build without one error."""
    found = pages(bundled)
    assert len(found) > 40
    problems: list[str] = []
    for page in found:
        parser = html5lib.HTMLParser(strict=False)
        parser.parse(page.read_bytes())
        problems.extend(f"{page.relative_to(bundled)}: {e}" for e in parser.errors)
    assert problems == []


def test_the_html5_check_can_fail() -> None:
    """The parser used above does report a broken page."""
    parser = html5lib.HTMLParser(strict=False)
    parser.parse(b"<p><b>unclosed</p></i>")
    assert parser.errors


def test_the_pages_the_issue_names_exist(bundled: Path) -> None:
    """Home, plugin, category, keyword, A-Z, stats, search, 404, feeds and crawler files."""
    for path in [
        "index.html",
        "plugins/auth-jwt/index.html",
        "plugins/auth-jwt/feed.xml",
        "plugins/auth-jwt/README.md",
        "categories/index.html",
        "categories/auth/index.html",
        "keywords/index.html",
        "keywords/jwt/index.html",
        "browse/index.html",
        "browse/a/index.html",
        "stats/index.html",
        "search/index.html",
        "404.html",
        "feeds/new.xml",
        "feeds/releases.xml",
        "sitemap.xml",
        "robots.txt",
    ]:
        assert (bundled / path).is_file(), path
    readme = (BUNDLED_INDEX / "plugins/auth-jwt/README.md").read_bytes()
    assert (bundled / "plugins/auth-jwt/README.md").read_bytes() == readme


_LINK = re.compile(r'\s(?:href|src)="([^"]*)"')


def _internal_links(out: Path, page: Path) -> Iterator[tuple[str, str]]:
    """Yield (link, path in the build it points at) for each same-site link of a page."""
    rel = page.relative_to(out).as_posix()
    for raw in _LINK.findall(page.read_text(encoding="utf-8")):
        link = raw.replace("&amp;", "&")
        if urlsplit(link).scheme or link.startswith("//"):
            continue
        if rel == "404.html":
            target = urlsplit(link).path.lstrip("/")
        else:
            target = urlsplit(urljoin("http://site/" + rel, link)).path.lstrip("/")
        target = unquote(target)
        if target == "" or target.endswith("/"):
            target += "index.html"
        yield link, target


def test_every_internal_link_resolves_in_the_build(bundled: Path) -> None:
    """Each relative link and asset of every page names a file the build holds."""
    broken = [
        f"{page.relative_to(bundled)}: {link}"
        for page in pages(bundled)
        for link, target in _internal_links(bundled, page)
        if not (bundled / target).is_file()
    ]
    assert broken == []


def test_links_are_relative_and_absolute_only_for_crawlers(bundled: Path) -> None:
    """No page links to the base URL (the site may live under a bucket prefix)."""
    text = (bundled / "plugins/auth-jwt/index.html").read_text(encoding="utf-8")
    base = "http://127.0.0.1:8000/"
    lines = [line for line in text.splitlines() if base in line]
    assert lines and all(
        'rel="canonical"' in line or 'property="og:url"' in line or "registry add" in line
        for line in lines
    ), lines


def test_every_page_has_a_csp_and_no_inline_script_or_style(bundled: Path) -> None:
    """Content-Security-Policy in a meta tag; scripts only by src; no style attributes."""
    for page in pages(bundled):
        text = page.read_text(encoding="utf-8")
        assert 'http-equiv="Content-Security-Policy"' in text, page
        assert "script-src 'self'" in text and "unsafe-inline" not in text, page
        for script in re.findall(r"<script[^>]*>", text):
            assert " src=" in script and " defer" in script, (page, script)
        assert "<script>" not in text and " style=" not in text and "<style" not in text, page


def test_plugin_page_shows_what_a_user_needs(bundled: Path) -> None:
    """Install command, owners, versions newest first, yanked reason, deps and used-by."""
    text = (bundled / "plugins/datasource-csv/index.html").read_text(encoding="utf-8")
    assert "plugindex install datasource-csv<" in text
    assert text.index('id="v-1.0.2"') < text.index('id="v-1.0.1"') < text.index('id="v-1.0.0"')
    yanked = text[text.index('id="v-1.0.1"') : text.index('id="v-1.0.0"')]
    assert 'class="yanked"' in yanked and "Quoted fields containing a newline" in yanked
    assert "plugindex install" not in yanked
    assert 'href="../template-faker/"' in text  # a dependency
    assert 'href="../datasource-postgres/"' in text  # used by
    assert "theo-lemaire" in text and "ffeb2ab645ed1b2c" in text
    jwt = (bundled / "plugins/auth-jwt/index.html").read_text(encoding="utf-8")
    assert 'badge pre">prerelease' in jwt
    assert 'href="../../index/au/th/auth-jwt.json"' in jwt


def test_search_page_has_the_hooks_the_search_script_uses(bundled: Path) -> None:
    """A results region, the two filters, the root on <html> and a search form everywhere."""
    text = (bundled / "search/index.html").read_text(encoding="utf-8")
    assert '<div id="search-results" aria-live="polite"></div>' in text
    assert '<select id="search-category"' in text and '<select id="search-engine"' in text
    assert '<html lang="en" data-root="../">' in text
    assert 'href="../browse/a/"' in text
    for page in pages(bundled):
        body = page.read_text(encoding="utf-8")
        assert re.search(r'<form role="search" action="[^"]*search/" method="get">', body), page
        assert '<input id="q" name="q" type="search"' in body, page


def test_search_script_is_loaded_when_the_site_has_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """site/search.js, when present, is published hashed and loaded with defer."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "site", site)
    (site / "search.js").write_text("// search\n", encoding="utf-8")
    templates = ROOT / "templates"
    monkeypatch.setattr(
        site_planning, "resource_dir", lambda folder: site if folder == "site" else templates
    )
    out = tmp_path / "out"
    build_with_site(BUNDLED_INDEX, out)
    script = re.search(
        r'<script defer src="\./(static/search\.[0-9a-f]{16}\.js)"',
        (out / "index.html").read_text(),
    )
    assert script is not None
    assert (out / script[1]).read_text(encoding="utf-8") == "// search\n"


def test_feeds_and_sitemap_are_valid_xml_with_absolute_urls(bundled: Path) -> None:
    """Atom feeds and the sitemap parse, and point at base_url."""
    atom = "{http://www.w3.org/2005/Atom}"
    for feed in ["feeds/new.xml", "feeds/releases.xml", "plugins/auth-jwt/feed.xml"]:
        root = ET.parse(bundled / feed).getroot()
        assert root.tag == f"{atom}feed"
        entries = root.findall(f"{atom}entry")
        assert entries, feed
        for entry in entries:
            link = entry.find(f"{atom}link")
            assert link is not None and link.get("href", "").startswith("http://127.0.0.1:8000/")
    releases = ET.parse(bundled / "feeds/releases.xml").getroot()
    titles = [e.findtext(f"{atom}title") for e in releases.findall(f"{atom}entry")]
    assert "datasource-csv 1.0.1 (yanked)" in titles
    urls = [
        loc.text
        for loc in ET.parse(bundled / "sitemap.xml")
        .getroot()
        .iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")
    ]
    assert "http://127.0.0.1:8000/plugins/auth-jwt/" in urls
    assert "http://127.0.0.1:8000/" in urls
    assert not any(u and u.endswith(("404.html", "search/")) for u in urls)
    assert "Sitemap: http://127.0.0.1:8000/sitemap.xml" in (bundled / "robots.txt").read_text()


def test_sitemap_splits_into_an_index_past_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the per-file URL limit, sitemap.xml is a sitemap index of smaller files."""
    monkeypatch.setattr(site_planning, "SITEMAP_LIMIT", 20)
    out = tmp_path / "out"
    build_with_site(BUNDLED_INDEX, out)
    root = ET.parse(out / "sitemap.xml").getroot()
    assert root.tag == "{http://www.sitemaps.org/schemas/sitemap/0.9}sitemapindex"
    parts = sorted((out / "sitemaps").glob("sitemap-*.xml"))
    assert len(parts) >= 3
    assert all(len(ET.parse(p).getroot()) <= 20 for p in parts)


def test_page_weights_stay_small(bundled: Path) -> None:
    """A plugin page without README plus CSS under 30 KB; the home page under 50 KB."""
    css = sum(p.stat().st_size for p in (bundled / "static").glob("style.*.css"))
    plugin = (bundled / "plugins/protocol-grpc/index.html").stat().st_size
    assert plugin + css <= 30 * 1024
    assert (bundled / "index.html").stat().st_size + css <= 50 * 1024


# --- what authors write ----------------------------------------------------------------

HOSTILE_CASES = {
    "script tag": ("<script>alert(1)</script>", "<script"),
    "event handler": ('<img src=x onerror="alert(1)">', "<img src"),
    "javascript link": ("[x](javascript:alert(1))", 'href="javascript'),
    "raw javascript link": ('<a href="javascript:alert(1)">x</a>', "<a href"),
    "data link": ("[x](data:text/html,hi)", 'href="data'),
    "data image": ("![x](data:image/png;base64,iVBORw0KGgo=)", 'src="data'),
    "svg with script": ("<svg><script>alert(1)</script></svg>", "<svg"),
    "inline svg image": ("![x](evil.svg)", "<img"),
    "iframe": ('<iframe src="https://evil.example/"></iframe>', "<iframe"),
    "form": ('<form action="https://evil.example/"><input></form>', "<form"),
    "style": ("<style>body{display:none}</style>", "<style"),
    "html comment": ("<!-- hidden -->", "<!--"),
    "remote image": ("![t](https://evil.example/t.png)", "<img"),
    "escaping image": ("![t](../other/x.png)", "<img"),
}


@pytest.mark.parametrize(
    ("markdown", "forbidden"), list(HOSTILE_CASES.values()), ids=list(HOSTILE_CASES)
)
def test_readme_markup_from_authors_never_survives(
    tmp_path: Path, markdown: str, forbidden: str
) -> None:
    """Raw HTML shows as text; dangerous links and images are dropped or made links."""
    (tmp_path / "evil.svg").write_text("<svg><script>alert(1)</script></svg>", encoding="utf-8")
    html = render_markdown(markdown + "\n", tmp_path, "README.md").html
    assert forbidden not in html.lower()


def test_readme_links_and_images(tmp_path: Path) -> None:
    """External links get rel; local images are published; others are dropped."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "shot.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "README.md").write_text(
        "[site](https://example.org/) ![shot](docs/shot.png) ![gone](missing.png) "
        "[me](README.md) [other](LICENSE) [up](#usage)\n",
        encoding="utf-8",
    )
    readme, files = load_readme(tmp_path, "README.md")
    assert f'<a href="https://example.org/" rel="{EXTERNAL_REL}">site</a>' in readme.html
    assert '<img src="docs/shot.png" alt="shot"' in readme.html
    assert "gone" in readme.html and "missing.png" not in readme.html
    assert 'href="README.md"' in readme.html and 'href="LICENSE"' not in readme.html
    assert 'href="#usage"' in readme.html
    assert set(files) == {"README.md", "docs/shot.png"}


def test_hidden_characters_are_shown_escaped() -> None:
    """Bidi controls and zero-width characters become visible [U+XXXX] marks."""
    assert shown("a\u202eb\u200bc\u2066d\x07") == "a[U+202E]b[U+200B]c[U+2066]d[U+0007]"
    assert shown("plain é text") == "plain é text"


def test_every_author_field_of_a_plugin_page_is_escaped(bundled: Path) -> None:
    """A document carrying controls shows them escaped in every author-written field."""
    document = json.loads((bundled / "index/da/ta/datasource-csv.json").read_bytes())
    rlo = "\u202e"
    document["display_name"] += rlo
    document["description"] += rlo
    document["license"] += rlo
    document["authors"][0]["name"] += rlo
    document["versions"][1]["yanked"]["reason"] += rlo
    registry = analyse(BUNDLED_INDEX).registry
    assert registry is not None
    context = plugin_context(document, Readme(""), None, (), registry)
    flat = json.dumps(context, ensure_ascii=False)
    assert rlo not in flat
    assert flat.count("[U+202E]") == 5


def test_hostile_plugin_builds_into_inert_pages(tmp_path: Path) -> None:
    """The hostile plugin's page holds none of its markup, and only raster images."""
    index = write_hostile_index(tmp_path / "index")
    out = tmp_path / "out"
    build_with_site(index, out)
    page = (out / "plugins" / HOSTILE_NAME / "index.html").read_text(encoding="utf-8")
    tree = html5lib.parse(page, namespaceHTMLElements=False)
    main = tree.find(".//main")
    assert main is not None
    tags = {element.tag for element in main.iter()}
    assert not tags & {"script", "svg", "iframe", "form", "style", "object", "embed"}, tags
    for element in tree.iter():
        for attribute, value in element.attrib.items():
            assert not attribute.lower().startswith("on"), (element.tag, attribute)
            if attribute in ("href", "src"):
                assert not value.lower().startswith(("javascript:", "data:", "vbscript:")), value
    scripts = [e.get("src", "") for e in tree.iter("script")]
    assert scripts and all(src.startswith("../../static/") for src in scripts)
    assert "\u202e" not in page and "[U+202E]" in page
    heading = main.find(".//h1")
    assert heading is not None and "".join(heading.itertext()).startswith(
        "<script>alert('display')</script>Evil"
    )
    assert not (out / "plugins" / HOSTILE_NAME / "evil.svg").exists()
    assert (out / "plugins" / HOSTILE_NAME / "pixel.png").is_file()


# --- deterministic and incremental -----------------------------------------------------


def test_two_builds_give_the_same_bytes(bundled: Path, tmp_path: Path) -> None:
    """The same source and time give byte-identical sites."""
    out = tmp_path / "again"
    build_with_site(BUNDLED_INDEX, out)
    assert site_files(out) == site_files(bundled)


def test_a_noop_rebuild_renders_and_writes_nothing(tmp_path: Path, index: Path) -> None:
    """Building again with no change renders no page and rewrites no file."""
    out = tmp_path / "out"
    build_with_site(index, out)
    result, stage = build_with_site(index, out)
    assert stage.rendered == ()
    assert result.report.written == []


def test_a_noop_rebuild_keeps_the_site_without_making_a_context(
    tmp_path: Path, index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no plugin changed, the last build's pages are kept as they are, unread."""
    out = tmp_path / "out"
    build_with_site(index, out)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a no-op rebuild made a page context")

    for module, name in (
        (site_context, "row_of"),
        (site_context, "used_by"),
        (site_context, "plugin_context"),
        (site_listings, "listing_contexts"),
        (site_feeds, "plugin_feed"),
        (site_feeds, "global_feeds"),
    ):
        monkeypatch.setattr(module, name, refuse)
    result, stage = build_with_site(index, out)
    assert stage.rendered == ()
    assert result.report.written == []


def test_a_plugin_read_again_with_the_same_document_keeps_its_page(
    tmp_path: Path, index: Path
) -> None:
    """A comment added to plugin.yaml re-reads the plugin but renders nothing of it."""
    out = tmp_path / "out"
    build_with_site(index, out)
    manifest = index / "plugins/auth-jwt/plugin.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8") + "# a comment\n", encoding="utf-8")
    result, stage = build_with_site(index, out)
    assert "auth-jwt" in result.reparsed
    assert [p for p in stage.rendered if p.startswith("plugins/")] == []
    assert result.report.written == []


def test_a_worker_process_renders_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages shared with a worker process come out byte for byte as rendered in one."""
    monkeypatch.setattr(site_workers, "JOBS_BEFORE_WORKER", 1)
    monkeypatch.setattr(site_workers, "CHUNK", 1)  # both processes get some of the pages
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # also on a one-core runner
    serial, shared = tmp_path / "serial", tmp_path / "shared"
    build(BUNDLED_INDEX, serial, environ=EPOCH, stages=[SiteStage(worker=False)])
    stage = SiteStage()
    build(BUNDLED_INDEX, shared, environ=EPOCH, stages=[stage])
    assert 0 < stage.shared < len(stage.rendered)
    assert site_files(shared) == site_files(serial)
    state = ".plugindex/" + site_planning.STATE_FILE
    assert (shared / state).read_bytes() == (serial / state).read_bytes()


def test_pages_not_written_ahead_are_written_by_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page whose write ahead fails (a full disk, say) is written when the build commits."""
    reference, out = tmp_path / "reference", tmp_path / "out"
    build(BUNDLED_INDEX, reference, environ=EPOCH, stages=[SiteStage(worker=False)])
    refused: list[str] = []
    real = output_module.prestage

    def every_other(root: str, path: str, sha256: str, content: bytes | Path) -> bool:
        if len(refused) % 2 == 0 and path.endswith(".html"):
            refused.append(path)
            return False
        refused.append("")
        return real(root, path, sha256, content)

    monkeypatch.setattr(site_workers, "prestage", every_other)
    build(BUNDLED_INDEX, out, environ=EPOCH, stages=[SiteStage(worker=False)])
    assert any(refused) and "" in refused
    assert site_files(out) == site_files(reference)


def _add_version(index: Path, name: str, version: str, dependencies: str = "") -> None:
    """Add a signed release of `name` copied from its newest version file."""
    versions = sorted((index / "plugins" / name / "versions").glob("*.yaml"))
    text = versions[-1].read_text(encoding="utf-8")
    text = re.sub(r"(?m)^version: .*$", f"version: {version}", text)
    text = re.sub(r"(?m)^released: .*$", "released: 2025-01-20", text)
    text = re.sub(r"(?ms)^signature:.*\Z", "", text)
    if dependencies:
        text = re.sub(r"(?ms)^dependencies:.*?(?=^\S)", "", text)
        text += dependencies
    target = index / "plugins" / name / "versions" / f"{version}.yaml"
    target.write_text(text, encoding="utf-8")
    sign_as_owner(target)


def test_one_plugin_change_rewrites_only_the_pages_that_show_it(
    tmp_path: Path, index: Path
) -> None:
    """Its page and feed, its listings, home, feeds, stats; no other plugin's page."""
    out = tmp_path / "out"
    build_with_site(index, out)
    _add_version(index, "template-faker", "0.6.0")
    result, stage = build_with_site(index, out)
    written = {p for p in result.report.written if p.endswith((".html", ".xml"))}
    # Rendered, not only written: a page rendered again with equal bytes costs time too.
    assert set(stage.rendered) == written
    assert {
        "plugins/template-faker/index.html",
        "plugins/template-faker/feed.xml",
        "index.html",
        "browse/t/index.html",
        "categories/templating/index.html",
        "feeds/releases.xml",
        "stats/index.html",
    } <= written
    other_plugins = {p for p in written if p.startswith("plugins/") and "template-faker" not in p}
    assert other_plugins == set()
    assert "categories/auth/index.html" not in written
    assert "browse/a/index.html" not in written
    assert len(written) < 20


def test_a_new_dependency_rewrites_the_used_by_page(tmp_path: Path, index: Path) -> None:
    """A plugin that starts using another re-renders that other plugin's page too."""
    out = tmp_path / "out"
    build_with_site(index, out)
    _add_version(
        index,
        "protocol-grpc",
        "0.10.0",
        'dependencies:\n  template-faker:\n    version: "^0.5"\n',
    )
    result, _ = build_with_site(index, out)
    written = set(result.report.written)
    assert "plugins/template-faker/index.html" in written
    assert "plugins/auth-jwt/index.html" not in written
    faker = (out / "plugins/template-faker/index.html").read_text(encoding="utf-8")
    assert 'href="../protocol-grpc/"' in faker


def test_a_readme_change_rewrites_its_page(tmp_path: Path, index: Path) -> None:
    """A README edit (plugin.yaml unchanged) re-renders the page and republishes the file."""
    out = tmp_path / "out"
    build_with_site(index, out)
    readme = index / "plugins/auth-jwt/README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\nA new line.\n", encoding="utf-8")
    result, _ = build_with_site(index, out)
    assert {"plugins/auth-jwt/index.html", "plugins/auth-jwt/README.md"} <= set(
        result.report.written
    )
    assert "A new line." in (out / "plugins/auth-jwt/index.html").read_text(encoding="utf-8")


def test_a_deleted_page_is_written_again(tmp_path: Path, index: Path) -> None:
    """A page missing from the output is rendered again, even though its inputs are the same."""
    out = tmp_path / "out"
    build_with_site(index, out)
    before = (out / "plugins/auth-basic/index.html").read_bytes()
    (out / "plugins/auth-basic/index.html").unlink()
    build_with_site(index, out)
    assert (out / "plugins/auth-basic/index.html").read_bytes() == before


# --- packaging -------------------------------------------------------------------------


def test_an_installed_wheel_builds_the_site(tmp_path: Path) -> None:
    """`pip install plugindex` (not -e) finds templates/ and site/ and builds a site."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(ROOT)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    prefix = tmp_path / "prefix"
    wheel = next(wheels.glob("plugindex-*.whl"))
    subprocess.run(
        # --ignore-installed: leave this environment's own plugindex (often -e) alone.
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed",
         "--prefix", str(prefix), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    site_packages = next(prefix.glob("lib/python*/site-packages"))
    # Dependencies come from this environment, behind the installed wheel.
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir())
    env = {**os.environ, "PYTHONPATH": f"{site_packages}{os.pathsep}{deps}", **EPOCH}
    code = (
        "import sys, builder.site.resources as r\n"
        "print(r.__file__); print(r.resource_dir('templates'))\n"
        "from pathlib import Path\n"
        "from builder.index.build import build\n"
        "from builder.site.stage import SiteStage\n"
        "build(Path(sys.argv[1]), Path(sys.argv[2]), stages=[SiteStage()])\n"
    )
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", code, str(BUNDLED_INDEX), str(out)],
        check=False, capture_output=True, text=True, cwd=tmp_path,
        env={k: v for k, v in env.items() if k != "PYTHONSAFEPATH"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    module, templates = done.stdout.splitlines()[:2]
    assert module.startswith(str(site_packages))
    assert "share/plugindex/templates" in templates and not templates.startswith(str(ROOT))
    assert (out / "plugins/auth-jwt/index.html").is_file()
    assert list((out / "static").glob("style.*.css"))


def test_a_long_used_by_list_moves_to_its_own_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the cap, the plugin page names a few users and links to a page of all."""
    monkeypatch.setattr(site_context, "USED_BY_SHOWN", 0)
    out = tmp_path / "out"
    build_with_site(BUNDLED_INDEX, out)
    page = (out / "plugins/template-faker/index.html").read_text(encoding="utf-8")
    assert re.search(r'<a href="used-by/">\d+ plugins</a>', page)
    assert "no plugin in this registry" not in page
    users = (out / "plugins/template-faker/used-by/index.html").read_text(encoding="utf-8")
    assert 'href="../../../plugins/datasource-csv/"' in users
    broken = [
        link
        for link, target in _internal_links(out, out / "plugins/template-faker/used-by/index.html")
        if not (out / target).is_file()
    ]
    assert broken == []
    assert not (out / "plugins/auth-basic/used-by").exists()  # auth-basic: no users


def test_a_page_edited_in_the_output_is_written_again(tmp_path: Path, index: Path) -> None:
    """A page changed on disk since the last build is not kept as it is."""
    out = tmp_path / "out"
    build_with_site(index, out)
    page = out / "stats" / "index.html"
    expected = page.read_bytes()
    page.write_text("<p>defaced</p>\n")
    result, _ = build_with_site(index, out)
    assert "stats/index.html" in result.report.written
    assert page.read_bytes() == expected
