"""Deprecated plugins in search: ranked below plugins that match as well, in the CLI and
in the browser shards, and each result says it is deprecated and what replaces it.

Over builds of a copy of the demo index before and after its owners deprecated
auth-basic (for auth-jwt) and template-crypto (no replacement), with the function
`plugindex deprecate` calls.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.client import search as client
from builder.common import whoosh_adapter as engine
from builder.search.shards import ROOT as SHARDS
from tests.conftest import copy_demo_index
from tests.test_client_deprecated import BASIC, CRYPTO, deprecate_demo
from tests.test_search import _open, _record, as_json, build_search, names, search


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Return (before, after): builds of the demo index before and after the deprecations."""
    tmp = tmp_path_factory.mktemp("deprecated")
    index = copy_demo_index(tmp)
    before, after = tmp / "before", tmp / "after"
    build_search(index, before)
    deprecate_demo(index)
    build_search(index, after)
    return before, after


# --- the CLI ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "deprecated", "peer"),
    [("auth", "auth-basic", "auth-jwt"), ("template", "template-crypto", "template-faker")],
    ids=["with-replacement", "without-replacement"],
)
def test_cli_ranks_a_deprecated_plugin_below_a_peer(
    builds: tuple[Path, Path], tmp_path: Path, query: str, deprecated: str, peer: str
) -> None:
    """First before its deprecation, below a plugin matching the same words after it."""
    before, after = builds
    assert names(search(before, tmp_path / "before", query)) == [deprecated, peer]
    assert names(search(after, tmp_path / "after", query)) == [peer, deprecated]


def test_cli_result_says_deprecated_and_names_the_replacement(
    builds: tuple[Path, Path], tmp_path: Path
) -> None:
    result = search(builds[1], tmp_path, "auth")
    assert result.exit_code == 0, result.output
    assert re.search(
        r"^auth-basic \S+ \(deprecated, use auth-jwt instead\)  \[auth\]$",
        result.stdout,
        flags=re.MULTILINE,
    ), result.stdout
    assert re.search(r"^auth-jwt \S+  \[auth\]$", result.stdout, flags=re.MULTILINE)
    crypto = search(builds[1], tmp_path, "template-crypto")
    assert re.search(r"^template-crypto \S+ \(deprecated\)  \[", crypto.stdout, flags=re.M)


def test_cli_json_carries_the_deprecation(builds: tuple[Path, Path], tmp_path: Path) -> None:
    found = {r["name"]: r for r in as_json(search(builds[1], tmp_path, "--json"))["results"]}
    assert found["auth-basic"]["deprecated"] == {"message": BASIC, "replacement": "auth-jwt"}
    assert found["template-crypto"]["deprecated"] == {"message": CRYPTO, "replacement": None}
    assert found["auth-jwt"]["deprecated"] is None


def _deprecated(record: dict[str, Any], replacement: str | None = None) -> dict[str, Any]:
    return {**record, "deprecated": {"message": "Gone.", "replacement": replacement}}


def test_a_query_naming_a_deprecated_plugin_exactly_finds_it_first(tmp_path: Path) -> None:
    """Its exact name is not lowered: the user asked for it (and is told it is deprecated);
    a word of its name alone finds the plugins that are not deprecated first."""
    records = [
        _deprecated(_record("csv-reader"), "csv-reader-ng"),
        _record("csv-reader-ng"),
        _record("csv-reader-plus"),
    ]
    engine.update_index(tmp_path, records, [], fresh=True)
    index = _open(tmp_path)
    exact = client.query(index, "csv-reader", client.Filters()).results
    assert exact[0]["name"] == "csv-reader"
    assert exact[0]["deprecated"] == {"message": "Gone.", "replacement": "csv-reader-ng"}
    assert [r["name"] for r in client.query(index, "reader", client.Filters()).results] == [
        "csv-reader-ng",
        "csv-reader-plus",
        "csv-reader",
    ]


# --- the browser shards ------------------------------------------------------------------


def _shard_of(out: Path, word: str) -> dict[str, Any]:
    """Return the shard a browser fetches for `word` (the longest key that starts it)."""
    manifest = json.loads((out / SHARDS / "manifest.json").read_text(encoding="utf-8"))
    root = word[0]
    keys = json.loads(
        gzip.decompress((out / SHARDS / f"k/{root}.{manifest['roots'][root]}.json.gz").read_bytes())
    )
    key = max((k for k in keys if word.startswith(k)), key=len)
    shard: dict[str, Any] = json.loads(
        gzip.decompress((out / SHARDS / f"t/{key}.{keys[key]}.json.gz").read_bytes())
    )
    return shard


def shard_ranking(out: Path, word: str) -> list[str]:
    """Return the plugins the browser ranks for one word typed whole, best first: its
    postings' scores (search.js adds nothing else for a single exact word)."""
    shard = _shard_of(out, word)
    postings = shard["terms"][word][1]
    scored = [(-postings[i + 1], shard["docs"][postings[i]][0]) for i in range(0, len(postings), 2)]
    return [name for _, name in sorted(scored)]


@pytest.mark.parametrize(
    ("query", "deprecated", "peer"),
    [("auth", "auth-basic", "auth-jwt"), ("template", "template-crypto", "template-faker")],
    ids=["with-replacement", "without-replacement"],
)
def test_browser_shards_rank_a_deprecated_plugin_below_a_peer(
    builds: tuple[Path, Path], query: str, deprecated: str, peer: str
) -> None:
    before, after = builds
    assert shard_ranking(before, query) == [deprecated, peer]
    assert shard_ranking(after, query) == [peer, deprecated]


def test_browser_short_records_name_the_replacement(builds: tuple[Path, Path]) -> None:
    """A deprecated plugin's short record has a seventh item (its replacement, or ""); every
    other plugin's record is as it was, so its shards keep their bytes."""
    before_docs = {d[0]: d for d in _shard_of(builds[0], "auth")["docs"]}
    docs = {d[0]: d for d in _shard_of(builds[1], "auth")["docs"]}
    assert docs["auth-basic"][6:] == ["auth-jwt"]
    assert docs["auth-jwt"] == before_docs["auth-jwt"]
    assert len(docs["auth-jwt"]) == 6
    crypto = {d[0]: d for d in _shard_of(builds[1], "template")["docs"]}
    assert crypto["template-crypto"][6:] == [""]


@pytest.fixture
def deprecated_site(tmp_path: Path) -> Iterator[str]:
    """Serve a site build of the demo index after the deprecations; yield its URL."""
    from tests.site_browser import build_site, served

    index = copy_demo_index(tmp_path)
    deprecate_demo(index)
    build_site(index, tmp_path / "out")
    with served(tmp_path / "out") as base:
        yield base


def test_browser_shows_the_deprecation_below_its_peer(deprecated_site: str) -> None:
    """In Chromium: `auth` lists auth-jwt first, then auth-basic marked deprecated."""
    playwright = pytest.importorskip("playwright.sync_api")
    from tests.site_browser import LAUNCH_ARGS, ensure_chromium

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(ensure_chromium()), args=LAUNCH_ARGS)
        page = browser.new_page()
        page.goto(deprecated_site + "search/?q=auth")
        page.wait_for_function("() => document.querySelectorAll('[role=option]').length >= 2")
        rows = page.locator("[role=option]").all_inner_texts()
        browser.close()
    assert rows[0].startswith("auth-jwt")
    assert rows[1].startswith("auth-basic")
    assert "deprecated, use auth-jwt instead" in rows[1]
    assert "deprecated" not in rows[0]


def test_an_index_from_before_deprecations_still_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry built before the `deprecated` column existed: searched as before."""
    make_schema, fields_of = engine.make_schema, engine.fields_of

    def old_schema() -> Any:
        schema = make_schema()
        schema.remove("deprecated")
        return schema

    def old_fields(record: Any, texts: Any = None) -> dict[str, Any]:
        return {k: v for k, v in fields_of(record, texts).items() if k != "deprecated"}

    monkeypatch.setattr(engine, "make_schema", old_schema)
    monkeypatch.setattr(engine, "fields_of", old_fields)
    engine.update_index(tmp_path, [_record("csv-reader"), _record("csv-writer")], [], fresh=True)
    monkeypatch.undo()
    found = client.query(_open(tmp_path), "csv", client.Filters()).results
    assert [r["name"] for r in found] == ["csv-reader", "csv-writer"]


def test_result_lines_escape_what_the_registry_wrote(capsys: pytest.CaptureFixture[str]) -> None:
    """A description or category holding ESC or a bidi override reaches the terminal
    escaped (the format refuses them; a registry that serves them anyway is not trusted)."""
    from builder.cli.search import _print

    row = {
        **dict.fromkeys(("engine", "released", "downloads", "rating", "license")),
        "name": "csv-reader",
        "version": "1.0.0",
        "yanked": False,
        "categories": ["tools\x1b]0;owned\x07"],
        "description": "Reads \x1b[31mred\u202e csv",
        "deprecated": {"message": "Gone.", "replacement": "csv-reader-ng"},
    }
    _print(client.Results(1, 1, 1, [row], ["csv"]), "csv", 20)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert out.splitlines() == [
        "csv-reader 1.0.0 (deprecated, use csv-reader-ng instead)  [tools\\x1b]0;owned\\x07]",
        "    Reads \\x1b[31mred\\u202e csv",
    ]
