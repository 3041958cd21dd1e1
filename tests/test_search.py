"""Search: the build's Whoosh index and shards, and `plugindex search` over a verified copy."""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from builder.cli.main import cli
from builder.client import search as client
from builder.common import whoosh_adapter as engine
from builder.common import whoosh_reader as reader
from builder.index.build import build
from builder.search.planning import WHOOSH_MANIFEST
from builder.search.shard_tree import Doc, ShardTree
from builder.search.shards import ShardLimits, dumps
from builder.search.stage import SearchStage

EPOCH = {"SOURCE_DATE_EPOCH": "1736899200"}
# These registries are built without signed metadata (TUF is tested on its own).
UNSIGNED = {"PLUGINDEX_INSECURE_NO_TUF": "1"}


def build_search(index: Path, out: Path) -> SearchStage:
    """Build `index` into `out` with the search stage; return the stage (for its report)."""
    stage = SearchStage()
    build(index, out, environ=EPOCH, stages=[stage])
    return stage


def search(registry: Path | str, cache: Path, *args: str) -> Result:
    """Run `plugindex search` against a registry folder or URL with its own cache."""
    env = {
        "PLUGINDEX_CONFIG_DIR": str(cache / "config"),
        "PLUGINDEX_HOST_VERSION": "",
        **UNSIGNED,
    }
    return CliRunner().invoke(
        cli,
        ["search", "--registry", str(registry), "--cache-dir", str(cache), *args],
        env=env,
    )


def names(result: Result) -> list[str]:
    """Return the plugin names a text search printed, in order."""
    return re.findall(
        r"^([a-z][a-z0-9-]+) \S+(?: \((?:yanked|deprecated[^)]*)\))*  \[",
        result.stdout,
        flags=re.MULTILINE,
    )


def as_json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a build of the bundled index with its search index (shared, read-only)."""
    from tests.conftest import BUNDLED_INDEX

    out = tmp_path_factory.mktemp("search") / "out"
    build_search(BUNDLED_INDEX, out)
    return out


# --- the CLI over the bundled index ---------------------------------------------------


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("auth-jwt", "auth-jwt"),
        ("datasource-postgres", "datasource-postgres"),
        ("datasource postgres", "datasource-postgres"),
        ("csv", "datasource-csv"),
        ("auth-j", "auth-jwt"),
        ("grpc", "protocol-grpc"),
        ("postgress", "datasource-postgres"),
        ("tmplate crypto", "template-crypto"),
        ("opentelemetry", "observability-otel"),
        ("jwt auth", "auth-jwt"),
        ("htpasswd", "auth-basic"),
    ],
    ids=[
        "exact-name",
        "exact-long-name",
        "name-as-two-words",
        "name-part",
        "name-prefix",
        "keyword",
        "typo-extra-letter",
        "typo-missing-letter",
        "keyword-long",
        "two-words",
        "format-and-keyword",
    ],
)
def test_search_finds_the_expected_plugin_first(
    built: Path, tmp_path: Path, query: str, first: str
) -> None:
    """Exact names, name prefixes, words of any field and typos find the right plugin first."""
    result = search(built, tmp_path, query)
    assert result.exit_code == 0, result.output
    assert names(result)[0] == first, result.stdout


def test_prefix_matches_names_only(built: Path, tmp_path: Path) -> None:
    """A prefix finds names that start with it (both template plugins for `templ`)."""
    result = search(built, tmp_path, "templ")
    assert sorted(names(result)) == ["template-crypto", "template-faker"]


def test_filters_narrow_the_results(built: Path, tmp_path: Path) -> None:
    """Category, engine, format, licence and host-version filters each narrow the results."""
    data = as_json(search(built, tmp_path, "--category", "auth", "--json"))
    assert [r["name"] for r in data["results"]] == ["auth-basic", "auth-jwt"]
    data = as_json(
        search(
            built,
            tmp_path,
            "jwt auth",
            "--category",
            "auth",
            "--engine",
            "wasm",
            "--format",
            ".jwt",
            "--host-version",
            "0.4",
            "--json",
        )
    )
    assert [r["name"] for r in data["results"]] == ["auth-jwt"]
    assert data["results"][0]["version"] == "1.2.0"  # the newest release, not 2.0.0-rc.1
    data = as_json(search(built, tmp_path, "--engine", "lua", "--json"))
    assert {r["name"] for r in data["results"]} == {"auth-basic", "template-faker"}
    data = as_json(search(built, tmp_path, "--license", "mit", "--json"))
    assert "auth-basic" in {r["name"] for r in data["results"]}
    assert "auth-jwt" not in {r["name"] for r in data["results"]}
    result = search(built, tmp_path, "auth", "--host-version", "0.6")
    assert result.exit_code == 0
    assert "no plugin matches" in result.stdout


def test_sorts_and_pages(built: Path, tmp_path: Path) -> None:
    """--sort name and recent order every match; --limit and --page cut them into pages."""
    data = as_json(search(built, tmp_path, "--sort", "name", "--json"))
    ordered = [r["name"] for r in data["results"]]
    assert ordered == sorted(ordered) and data["total"] == 8
    data = as_json(search(built, tmp_path, "--sort", "recent", "--json"))
    released = [r["released"] for r in data["results"]]
    assert released == sorted(released, reverse=True)
    assert data["results"][0]["name"] == "protocol-grpc"  # 0.9.0 of 2024-11-12
    data = as_json(
        search(built, tmp_path, "--sort", "name", "--limit", "3", "--page", "3", "--json")
    )
    assert [r["name"] for r in data["results"]] == ["template-crypto", "template-faker"]
    assert (data["page"], data["pages"], data["total"]) == (3, 3, 8)


def test_json_gives_every_field_and_the_total(built: Path, tmp_path: Path) -> None:
    """--json prints the total and, per result, the fields a script needs."""
    data = as_json(search(built, tmp_path, "auth-jwt", "--json"))
    assert data["total"] >= 1 and data["index_built_at"] == "2025-01-15T00:00:00Z"
    first = data["results"][0]
    assert first["name"] == "auth-jwt" and first["version"] == "1.2.0"
    for field in (
        "display_name",
        "description",
        "categories",
        "keywords",
        "license",
        "owners",
        "engine",
        "formats",
        "released",
        "yanked",
        "downloads",
        "rating",
        "score",
    ):
        assert field in first


def test_text_output_is_one_line_per_description(built: Path, tmp_path: Path) -> None:
    """Each result prints name, version, categories, then one cut line of description."""
    result = search(built, tmp_path, "datasource-postgres")
    lines = result.stdout.splitlines()
    assert lines[0] == "datasource-postgres 0.3.0  [data-sources]"
    assert lines[1].startswith("    Back mock endpoints") and len(lines[1]) <= 100
    assert "1-1 of 1 plugins" in result.stderr


def test_offline_searches_the_cache_and_says_how_old_it_is(built: Path, tmp_path: Path) -> None:
    """--offline answers from the last sync and notes the index's age; no cache is an error."""
    empty = search(built, tmp_path / "empty", "auth", "--offline")
    assert empty.exit_code == 3
    assert "no search index in the cache" in empty.stderr
    assert search(built, tmp_path, "auth").exit_code == 0
    moved = tmp_path / "gone"
    shutil.copytree(built, moved)
    offline = CliRunner().invoke(
        cli,
        ["search", "--registry", str(built), "--cache-dir", str(tmp_path), "auth", "--offline"],
        env={"PLUGINDEX_CONFIG_DIR": str(tmp_path / "config"), **UNSIGNED},
    )
    assert offline.exit_code == 0, offline.output
    assert names(offline)[:2] == ["auth-basic", "auth-jwt"]
    assert re.search(r"offline: the cached search index, built \d+ days ago", offline.stderr)


def test_no_registry_is_a_clear_error(tmp_path: Path) -> None:
    """Without a registry the command says where one can be given."""
    result = CliRunner().invoke(
        cli,
        ["search", "auth", "--cache-dir", str(tmp_path)],
        env={
            "PLUGINDEX_CONFIG_DIR": str(tmp_path / "config"),
            "PLUGINDEX_REGISTRY": "",
            **UNSIGNED,
        },
    )
    assert result.exit_code == 3
    assert "no registry given" in result.stderr


@pytest.mark.parametrize(
    "query",
    [
        "*",
        "?",
        "auth*",
        "OR",
        "auth OR jwt",
        '"auth',
        '"jwt auth"',
        "name:auth-jwt",
        "field:value",
        "a" * 10_000,
        "auth " * 2_000,
        "\x00auth\x07\x1b[31m",
        "((((auth",
        "-",
        "é ü 漢字",
        "\\",
    ],
    ids=[
        "star",
        "question",
        "trailing-star",
        "bare-or",
        "or",
        "open-quote",
        "quoted",
        "field-name",
        "field-value",
        "10k-chars",
        "2k-words",
        "control-chars",
        "parentheses",
        "hyphen",
        "unicode",
        "backslash",
    ],
)
def test_hostile_queries_are_answered_sensibly(built: Path, tmp_path: Path, query: str) -> None:
    """Query syntax is plain text: no parser error, no wildcard expansion.

    What keeps a hostile query fast is that the words searched are bounded (below);
    `benchmarks/bench_search.py` measures the latency, which a test on a shared
    machine cannot.
    """
    data = as_json(search(built, tmp_path, "--json", "--", query))
    words = reader.query_words(query)
    assert len(words) <= 8 and all(len(word) <= 256 for word in words)
    if not words:  # nothing to search for: nothing listed, rather than every plugin
        assert (data["answer"], data["total"], data["results"]) == ("no-words", 0, [])
    if "auth" in words:
        assert data["results"][0]["name"].startswith("auth")


def test_query_words_are_bounded() -> None:
    """A query is cut to 256 characters and 8 distinct words; control characters are gaps."""
    assert reader.query_words("auth\x00jwt") == ["auth", "jwt"]
    assert len(reader.query_words(" ".join(f"w{i}" for i in range(100)))) == 8
    assert reader.query_words("a" * 10_000) == ["a" * 256]


@pytest.mark.parametrize("query", ["*", "?", "OR", "the or and", '"" :'])
def test_a_query_without_words_says_so_and_lists_nothing(
    built: Path, tmp_path: Path, query: str
) -> None:
    """Symbols and stop words alone are not a search for every plugin: the answer says so."""
    result = search(built, tmp_path, "--", query)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"no search words in {query!r}")
    assert names(result) == []


def test_no_query_lists_every_plugin_by_name_and_says_so(built: Path, tmp_path: Path) -> None:
    """With no query at all the plugins are listed (by name unless asked), labelled as such."""
    result = search(built, tmp_path)
    assert result.exit_code == 0, result.output
    assert "no search words: listing every plugin by name" in result.stderr
    assert names(result) == sorted(names(result)) and len(names(result)) == 8
    data = as_json(search(built, tmp_path, "--json"))
    assert (data["answer"], data["sort"], data["words"]) == ("listing", "name", [])
    data = as_json(search(built, tmp_path, "csv", "--json"))
    assert (data["answer"], data["sort"], data["words"]) == ("search", "relevance", ["csv"])


# --- ranking details the bundled index cannot show ------------------------------------


def _record(
    name: str, *, yanked_only: bool = False, hosts: tuple[str, ...] = (">=1.0",)
) -> dict[str, Any]:
    versions = [
        {
            "version": f"1.{i}.0",
            "released": f"2024-0{i + 1}-01",
            "engine": "python",
            "formats": [".csv"],
            "host": host,
            "yanked": yanked_only,
        }
        for i, host in reversed(list(enumerate(hosts)))
    ]
    return {
        "format": 1,
        "name": name,
        "display_name": name,
        "description": f"Reads csv files ({name}).",
        "categories": ["tools"],
        "keywords": ["csv"],
        "license": "MIT",
        "owners": ["ada"],
        "latest": None if yanked_only else versions[0]["version"],
        "released": versions[0]["released"],
        "yanked_only": yanked_only,
        "downloads": None,
        "rating": None,
        "versions": versions,
    }


def _open(folder: Path) -> reader.VerifiedIndex:
    return reader.VerifiedIndex({n: (folder / n).read_bytes() for n in engine.index_files(folder)})


def test_yanked_only_plugins_rank_last_and_say_so(tmp_path: Path) -> None:
    """A plugin whose every version is yanked comes after every other match, marked yanked."""
    engine.update_index(
        tmp_path,
        [_record("csv", yanked_only=True), _record("csv-reader"), _record("csv-writer")],
        [],
        fresh=True,
    )
    found = client.query(_open(tmp_path), "csv", client.Filters())
    assert [r["name"] for r in found.results] == ["csv-reader", "csv-writer", "csv"]
    assert found.results[-1]["yanked"] is True


def test_host_version_picks_the_newest_compatible_version(tmp_path: Path) -> None:
    """With --host-version the shown version is the newest one compatible with that host."""
    engine.update_index(
        tmp_path, [_record("csv-reader", hosts=("^1.0", "^2.0", "^3.0"))], [], fresh=True
    )
    index = _open(tmp_path)
    shown = client.query(index, "csv", client.Filters(host="2.5.0")).results
    assert [(r["name"], r["version"]) for r in shown] == [("csv-reader", "1.1.0")]
    assert client.query(index, "csv", client.Filters()).results[0]["version"] == "1.2.0"
    assert client.query(index, "csv", client.Filters(host="9.0.0")).total == 0


def _token(step: int) -> str:
    """Return a word unlike any other step's (no typo distance between them)."""
    return "k" + hashlib.sha256(str(step).encode()).hexdigest()[:12]


def test_segments_stay_bounded_over_many_one_plugin_updates(tmp_path: Path) -> None:
    """Each update adds one small segment; compaction keeps them at most 8, documents intact."""
    records = [_record(f"plugin-{i:03d}") for i in range(200)]
    engine.update_index(tmp_path, records, [], fresh=True)
    counts = []
    for step in range(40):
        changed = _record(f"plugin-{step % 20:03d}")
        changed["description"] = f"Now with {_token(step)}."
        engine.update_index(tmp_path, [changed], [])
        counts.append(len(engine.index_files(tmp_path)) - 1)
    assert max(counts) <= 8
    assert counts[0] == 2  # the big segment and one small one
    index = _open(tmp_path)
    assert index.doc_count() == 200
    assert [index.record(h.docnum)["name"] for h in index.search(_token(39), {})] == ["plugin-019"]
    assert index.search(_token(0), {}) == []  # plugin-000 was updated again at step 20
    # No file of an older generation is left behind in the folder.
    assert sorted(p.name for p in tmp_path.glob("*.seg")) == engine.index_files(tmp_path)[:-1]


# --- the build ------------------------------------------------------------------------


def _search_files(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((out / "search").rglob("*"))
        if p.is_file()
    }


def test_cold_builds_give_the_same_bytes(built: Path, index: Path, tmp_path: Path) -> None:
    """The same index built twice from nothing gives byte-identical search files."""
    # A copy without git: a build of the repository's own folder names its latest
    # commit, which may move between two builds.
    build_search(index, tmp_path / "one")
    build_search(index, tmp_path / "again")
    assert _search_files(tmp_path / "again") == _search_files(tmp_path / "one")
    manifest = json.loads((built / WHOOSH_MANIFEST).read_bytes())
    for item in manifest["files"]:
        ext = item["name"].rsplit(".", 1)[1]
        data = (built / "search" / "whoosh" / f"{item['sha256']}.{ext}").read_bytes()
        assert hashlib.sha256(data).hexdigest() == item["sha256"] and len(data) == item["size"]


def _edit_description(index: Path, name: str, text: str) -> None:
    manifest = index / "plugins" / name / "plugin.yaml"
    content = manifest.read_text(encoding="utf-8")
    content = re.sub(r"description: >-\n(  .*\n)+", f"description: {text}\n", content)
    manifest.write_text(content, encoding="utf-8")


def test_one_plugin_change_updates_a_few_small_files(index: Path, tmp_path: Path) -> None:
    """A one-plugin change re-indexes that plugin only: one new segment, a new table of
    contents, both manifests and a few shards change; the client downloads two files."""
    out = tmp_path / "out"
    build_search(index, out)
    before = _search_files(out)
    cache = tmp_path / "cache"
    assert search(out, cache, "auth").exit_code == 0
    _edit_description(index, "datasource-csv", "Serve mock responses from spreadsheets.")
    stage = build_search(index, out)
    after = _search_files(out)
    assert stage.report["changed"] == 1 and stage.report["fresh"] is False
    added = sorted(set(after) - set(before))
    whoosh_added = [p for p in added if p.startswith("search/whoosh/")]
    assert len(whoosh_added) == 2  # one segment, one table of contents
    assert sum(1 for p in whoosh_added if p.endswith(".seg")) == 1
    assert after["search/whoosh/manifest.json"] != before["search/whoosh/manifest.json"]
    shards_changed = [p for p in added if p.startswith("search/v1/t/")]
    assert 0 < len(shards_changed) < len([p for p in after if p.startswith("search/v1/t/")])
    result = search(out, cache, "spreadsheets")
    assert names(result) == ["datasource-csv"]
    assert "2 file(s)" in result.stderr  # only the new segment and table of contents
    assert "csv" in json.loads(search(out, cache, "csv", "--json").stdout)["results"][0]["name"]


def test_incremental_and_cold_builds_answer_alike(index: Path, tmp_path: Path) -> None:
    """After a change, the incremental index answers as a cold build of the same input."""
    out = tmp_path / "out"
    build_search(index, out)
    _edit_description(index, "auth-basic", "Passwords from an htpasswd file, checked fast.")
    shutil.rmtree(index / "plugins" / "datasource-postgres")
    build_search(index, out)
    cold = tmp_path / "cold"
    build_search(index, cold)
    for query in ("passwords", "postgres", "auth", "template", "datasource", "csv"):
        warm_names = names(search(out, tmp_path / "c1", query))
        cold_names = names(search(cold, tmp_path / "c2", query))
        assert warm_names == cold_names, query
    assert names(search(out, tmp_path / "c1", "postgres")) == []
    # The browser's files are the same bytes whichever way they were made.
    browser = {p: h for p, h in _search_files(out).items() if p.startswith("search/v1/")}
    assert browser == {p: h for p, h in _search_files(cold).items() if p.startswith("search/v1/")}


def test_an_unreadable_shard_state_means_a_cold_search_stage(index: Path, tmp_path: Path) -> None:
    """A damaged state file is not an error: the next build makes the shards from nothing."""
    out = tmp_path / "out"
    build_search(index, out)
    before = _search_files(out)
    (out / ".plugindex" / "search" / "shards.sqlite").write_bytes(b"not a database" * 100)
    stage = build_search(index, out)
    assert stage.report["fresh"] is True
    assert _search_files(out) == before


def _doc(rng: random.Random, name: str, vocabulary: list[str]) -> Doc:
    terms = {name: 60}
    for word in rng.sample(vocabulary, rng.randint(1, 6)):
        terms[word] = terms.get(word, 0) + rng.choice([1, 3, 5, 10])
    return Doc(name, dumps([name, "1.0.0", "x" * rng.randint(0, 60), [], [], 0]), terms)


def _cold_shards(folder: Path, docs: dict[str, Doc], limits: ShardLimits) -> dict[str, bytes]:
    tree = ShardTree.create(folder / "cold.sqlite", limits)
    shards = tree.settle(tree.load_all(docs.values()))
    tree.close()
    return {key: content for key, content in shards.items() if content is not None}


@pytest.mark.parametrize("seed", range(12))
def test_incremental_shards_equal_cold_ones_through_splits_and_merges(
    tmp_path: Path, seed: int
) -> None:
    """Over random changes (plugins added, changed, removed) with small limits, so keys
    split and merge back, the kept tree gives exactly the shards a cold build gives."""
    rng = random.Random(seed)
    limits = ShardLimits(
        max_bytes=rng.choice([300, 600, 1200]),
        top=rng.choice([2, 4, 48]),
        more=3,
        max_depth=rng.choice([2, 3, 12]),
    )
    letters = "abc"
    vocabulary = sorted(
        {"".join(rng.choice(letters) for _ in range(rng.randint(1, 5))) for _ in range(60)}
    )
    docs = {f"p{i}": _doc(rng, f"p{i}", vocabulary) for i in range(rng.randint(5, 30))}
    path = tmp_path / "state.sqlite"
    tree = ShardTree.create(path, limits)
    shards = {k: v for k, v in tree.settle(tree.load_all(docs.values())).items() if v}
    tree.commit(1)
    keys_seen, merged = set(shards), False
    for generation in range(2, 25):
        opened = ShardTree.open(path, limits, generation - 1)
        assert opened is not None
        changed: dict[str, Doc] = {}
        removed: set[str] = set()
        for _ in range(rng.randint(1, 6)):
            name = f"p{rng.randint(0, 40)}"
            if rng.random() < 0.4 and name in docs:
                del docs[name]
                changed.pop(name, None)
                removed.add(name)
            else:
                docs[name] = changed[name] = _doc(rng, name, vocabulary)
                removed.discard(name)
        for key, content in opened.settle(opened.update(changed.values(), removed)).items():
            if content is None:
                merged |= key in shards
                shards.pop(key, None)
            else:
                shards[key] = content
        opened.commit(generation)
        keys_seen |= set(shards)
        assert shards == _cold_shards(tmp_path, docs, limits), generation
    assert any(len(k) > 1 for k in keys_seen)  # keys were split
    assert merged  # and keys went away


def test_a_state_from_another_generation_is_not_trusted(tmp_path: Path) -> None:
    """The shard state is used only by the build that follows the one that committed it."""
    tree = ShardTree.create(tmp_path / "state.sqlite", ShardLimits())
    tree.settle(tree.load_all([Doc("csv", dumps(["csv", "1.0.0", "", [], [], 0]), {"csv": 60})]))
    tree.commit(4)
    assert ShardTree.open(tmp_path / "state.sqlite", ShardLimits(), 5) is None
    reopened = ShardTree.open(tmp_path / "state.sqlite", ShardLimits(), 4)
    assert reopened is not None and sorted(reopened.nodes) == ["c"]
    reopened.close()
    uncommitted = ShardTree.create(tmp_path / "again.sqlite", ShardLimits())
    uncommitted.close()  # a build that failed before committing
    assert ShardTree.open(tmp_path / "again.sqlite", ShardLimits(), -1) is None


# --- verification ---------------------------------------------------------------------


def _copy(built: Path, tmp_path: Path) -> Path:
    out = tmp_path / "registry"
    shutil.copytree(built, out)
    return out


def _segment(out: Path) -> Path:
    manifest = json.loads((out / WHOOSH_MANIFEST).read_bytes())
    item = next(i for i in manifest["files"] if i["name"].endswith(".seg"))
    return out / "search" / "whoosh" / f"{item['sha256']}.seg"


def test_tampered_segment_is_refused_and_the_cache_stays_usable(
    built: Path, index: Path, tmp_path: Path
) -> None:
    """A published file that does not match the manifest is refused (exit 5) before Whoosh
    reads it; the last good index in the cache still answers offline."""
    out = tmp_path / "out"
    build_search(index, out)
    cache = tmp_path / "cache"
    assert names(search(out, cache, "auth-jwt"))[0] == "auth-jwt"
    _edit_description(index, "auth-jwt", "Tokens, tokens, tokens.")
    build_search(index, out)
    manifest = json.loads((out / WHOOSH_MANIFEST).read_bytes())
    newest = max(
        (i for i in manifest["files"] if i["name"].endswith(".seg")), key=lambda i: i["name"]
    )
    target = out / "search" / "whoosh" / f"{newest['sha256']}.seg"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    refused = search(out, cache, "auth")
    assert refused.exit_code == 5, refused.output
    assert "does not match its manifest" in refused.stderr
    assert newest["sha256"] in refused.stderr
    assert "Traceback" not in refused.output
    offline = search(out, cache, "auth-jwt", "--offline")
    assert offline.exit_code == 0, offline.output
    assert names(offline)[0] == "auth-jwt"


def test_tampered_manifest_hash_is_refused(built: Path, tmp_path: Path) -> None:
    """A manifest naming a hash the file does not have is refused: nothing is opened."""
    out = _copy(built, tmp_path)
    manifest = json.loads((out / WHOOSH_MANIFEST).read_bytes())
    segment = next(i for i in manifest["files"] if i["name"].endswith(".seg"))
    original = out / "search" / "whoosh" / f"{segment['sha256']}.seg"
    forged = "0" * 64
    shutil.copy(original, out / "search" / "whoosh" / f"{forged}.seg")
    segment["sha256"] = forged
    (out / WHOOSH_MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    result = search(out, tmp_path / "cache", "auth")
    assert result.exit_code == 5, result.output
    assert "does not match its manifest" in result.stderr


def test_tampered_cached_file_is_refused_at_open(built: Path, tmp_path: Path) -> None:
    """A file changed in the cache after its sync is refused when the index is opened."""
    cache = tmp_path / "cache"
    assert search(built, cache, "auth").exit_code == 0
    blob = _segment(built).name.split(".")[0]
    cached = next(cache.glob(f"search/*/blobs/{blob}"))
    data = bytearray(cached.read_bytes())
    data[100] ^= 0x01
    cached.write_bytes(bytes(data))
    result = search(built, cache, "auth", "--offline")
    assert result.exit_code == 5
    assert "refused, not opened" in result.stderr


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["files"][0].update(name="../../etc/passwd"), "expected a Whoosh file name"),
        (lambda m: m["files"].append(dict(m["files"][-1], name="_MAIN_99.toc")), "one table"),
        (lambda m: m["files"][0].update(sha256="F" * 64), "64 lower-case hex"),
        (lambda m: m["files"][0].update(size=-1), "expected a size"),
        (lambda m: m.update(format=2), "format 1"),
        (lambda m: m.update(files=[]), "non-empty list"),
    ],
    ids=["path-escape", "two-tocs", "upper-hex", "negative-size", "format", "no-files"],
)
def test_malformed_manifest_is_refused(
    built: Path, tmp_path: Path, edit: Any, message: str
) -> None:
    """A manifest of the wrong shape is refused with what was expected; the cache is kept."""
    out = _copy(built, tmp_path)
    cache = tmp_path / "cache"
    assert search(out, cache, "auth").exit_code == 0
    manifest = json.loads((out / WHOOSH_MANIFEST).read_bytes())
    edit(manifest)
    (out / WHOOSH_MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    result = search(out, cache, "auth")
    assert result.exit_code == 3, result.output
    assert "not a search index manifest" in result.stderr and message in result.stderr
    assert search(out, cache, "auth", "--offline").exit_code == 0


def test_not_json_manifest_is_refused(built: Path, tmp_path: Path) -> None:
    """A manifest that is not JSON names the file and what was expected."""
    out = _copy(built, tmp_path)
    (out / WHOOSH_MANIFEST).write_bytes(b"\x80not json")
    result = search(out, tmp_path / "cache", "auth")
    assert result.exit_code == 3
    assert "manifest.json: not a search index manifest (expected JSON" in result.stderr


def test_registry_without_search_index(built: Path, tmp_path: Path) -> None:
    """A registry built without the search stage says so."""
    out = _copy(built, tmp_path)
    shutil.rmtree(out / "search" / "whoosh")
    result = search(out, tmp_path / "cache", "auth")
    assert result.exit_code == 3
    assert "publishes no search index" in result.stderr


# --- over HTTP ------------------------------------------------------------------------


def test_sync_over_http_downloads_only_what_it_lacks(
    index: Path, tmp_path: Path, serve_dir: Any
) -> None:
    """The first search downloads the index; the next revalidates the manifest only; after
    a one-plugin change only the new files come down."""
    out = tmp_path / "out"
    build_search(index, out)
    url = serve_dir(out)
    cache = tmp_path / "cache"
    first = search(url, cache, "auth")
    assert first.exit_code == 0, first.output
    assert re.search(r"search index: 2 file\(s\), \d+ bytes downloaded", first.stderr)
    again = search(url, cache, "auth")
    assert again.exit_code == 0 and "downloaded" not in again.stderr
    _edit_description(index, "protocol-grpc", "Mock gRPC services, now with websockets.")
    build_search(index, out)
    third = search(url, cache, "websockets")
    assert names(third) == ["protocol-grpc"]
    assert "2 file(s)" in third.stderr
