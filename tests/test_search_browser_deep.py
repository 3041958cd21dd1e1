"""The browser search (site/search.js) over deep shards, as 100,000 plugins make them.

The bundled index is built with tiny shard limits, so its keys split as deep as a big
registry's do and each word keeps one posting: a typo before the end of a word's key
sends that word to another shard than the one holding the word meant, and a word's
postings no longer name every plugin that has it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.index.build import build
from builder.search.shards import ShardLimits
from builder.search.stage import SearchStage
from tests.conftest import BUNDLED_INDEX
from tests.site_browser import LAUNCH_ARGS, ensure_chromium, served

playwright = pytest.importorskip("playwright.sync_api")

SEARCH_JS = Path(__file__).resolve().parents[1] / "site" / "search.js"
PAGE = """<!doctype html><html data-root="../"><head><meta charset="utf-8">
<script defer src="search.js"></script></head><body>
<form action="."><input id="q" name="q" type="search"></form></body></html>"""


@pytest.fixture(scope="module")
def deep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """Serve a build of the bundled index with deep shards and a bare search page."""
    out = tmp_path_factory.mktemp("deep") / "out"
    limits = ShardLimits(max_bytes=200, top=1, more=1)
    build(
        BUNDLED_INDEX,
        out,
        environ={"SOURCE_DATE_EPOCH": "1736899200"},
        stages=[SearchStage(limits)],
    )
    (out / "try").mkdir()
    (out / "try" / "index.html").write_text(PAGE, encoding="utf-8")
    shutil.copy(SEARCH_JS, out / "try" / "search.js")
    with served(out) as base:
        yield out, base


@pytest.fixture(scope="module")
def ask(deep: tuple[Path, str]) -> Iterator[Any]:
    """Yield a function that runs one query in a fresh page: (names, search bytes)."""
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(ensure_chromium()), args=LAUNCH_ARGS)

        def run(query: str) -> tuple[list[str], int]:
            page = browser.new_page()
            sizes: list[int] = []
            page.on(
                "requestfinished",
                lambda r: (
                    sizes.append(r.sizes()["responseBodySize"]) if "/search/v1/" in r.url else None
                ),
            )
            page.goto(deep[1] + "try/")
            found = page.evaluate("q => window.plugindexSearch(q)", query)
            page.close()
            return [str(n) for n in found], sum(sizes)

        yield run
        browser.close()


def test_the_shards_are_deep(deep: tuple[Path, str]) -> None:
    """The build split keys past the words' first letters (else this file tests nothing)."""
    keys = [p.name.split(".")[0] for p in (deep[0] / "search" / "v1" / "t").glob("*")]
    assert "p" in keys and any(k.startswith("pos") for k in keys)


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("pstgres", "datasource-postgres"),  # a letter missing before the key's end
        ("tmplate", "template-crypto"),
        ("opentelmetry", "observability-otel"),
    ],
    ids=["missing-letter", "missing-second-letter", "keyword"],
)
def test_a_typo_early_in_a_word_still_finds_the_plugin(ask: Any, query: str, first: str) -> None:
    """The word's own shard holds nothing like it: the shards one typo away are fetched."""
    found, fetched = ask(query)
    assert found[:1] == [first], found
    assert fetched < 20_000


def test_a_name_prefix_finds_the_plugin_its_words_postings_left_out(ask: Any) -> None:
    """`datasource p`: each word keeps one posting (datasource-csv, protocol-grpc), yet
    the name starting with `datasource-p` has both words and is the one shown."""
    found, _ = ask("datasource p")
    assert found == ["datasource-postgres"], found


def test_words_that_match_fetch_no_extra_shard(ask: Any, deep: tuple[Path, str]) -> None:
    """A query whose words match in their own shards costs no typo shards."""
    found, fetched = ask("postgres")
    assert found[:1] == ["datasource-postgres"]
    _, typo_fetched = ask("pstgres")
    assert fetched < typo_fetched


@pytest.mark.parametrize(
    ("query", "first"),
    [("aut-jwt", "auth-jwt"), ("templat-faker", "template-faker")],
    ids=["first-word", "first-word-long"],
)
def test_a_name_one_typo_away_comes_first(ask: Any, query: str, first: str) -> None:
    """A plugin whose whole name is one typo from the query comes before plugins that
    share its words (next to an exact name)."""
    found, _ = ask(query)
    assert found[:1] == [first], found
