"""A plugin's version rows are kept packed; what whole-index work needs is kept beside them.

A build holds the facts of every plugin, but unpacks the version rows only of the
few plugins it checks again, and encodes the listing entry only of those it reads
again. The fields derived from the rows (remote artifacts, number of versions,
release dates and months) must say what the rows say, the listings put together from the
entries must be the listings encoded whole, and the work that reads these fields
instead of the rows must come to what reading the rows gave.
"""

from __future__ import annotations

import heapq
import json
import marshal
import random
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from builder import FORMAT_VERSION
from builder.common import layout
from builder.index import mirror
from builder.index.analyse import analyse
from builder.index.encoding import encode
from builder.index.facts import PluginFacts, facts_of_document, pack_rows
from builder.index.render import listing_files
from builder.site.context import RELEASE_ENTRIES, row_of, stats_context
from builder.site.feeds import global_feeds

BUNDLED = Path(__file__).resolve().parent.parent / "registry-index"


def document(name: str, versions: list[dict[str, Any]]) -> bytes:
    """Return a per-plugin document as a build publishes it, with these versions."""
    return json.dumps(
        {
            "name": name,
            "display_name": name.title(),
            "description": f"The {name} plugin, ünïcode included.",
            "categories": [],
            "keywords": [],
            "versions": versions,
        }
    ).encode()


def version(number: str, released: str, *, url: str, sha256: str, yanked: bool = False) -> Any:
    return {
        "version": number,
        "released": released,
        "yanked": "broken" if yanked else None,
        "engine": "wasm",
        "dependencies": [],
        "artifact": {"url": url, "sha256": sha256, "size": 10, "filename": f"p-{number}.tgz"},
    }


def facts(name: str, versions: list[dict[str, Any]]) -> PluginFacts:
    made = facts_of_document(document(name, versions), name)
    assert made is not None
    return made


def test_the_derived_fields_say_what_the_rows_say() -> None:
    analysis = analyse(BUNDLED)
    assert analysis.facts
    for plugin in analysis.facts.values():
        rows = plugin.version_rows
        assert plugin.versions_blob == pack_rows(rows)
        assert plugin.version_count == len(rows) == len(plugin.versions())
        dates = [r[2] for r in rows]
        kept = [r[2] for r in rows if not r[3]]
        assert plugin.released == (min(dates), max(dates), max(kept, default=""))
        assert plugin.months_released() == tuple(sorted(Counter(d[:7] for d in dates).items()))
        remote = [(a[0], a[1], a[2]) for a in (r[6] for r in rows) if a[4] is None]
        assert list(plugin.remote_artifacts) == remote
        local = [(a[0], a[1], a[2], a[4]) for a in (r[6] for r in rows) if a[4]]
        assert list(plugin.local_artifacts) == local


def test_release_dates_and_remote_artifacts_of_a_document() -> None:
    made = facts(
        "dates",
        [
            version("1.0.0", "2024-01-05", url="https://example.org/a", sha256="a" * 64),
            version("1.1.0", "2024-03-01", url="files/b.tgz", sha256="b" * 64),
            version(
                "2.0.0", "2024-06-30", url="https://example.org/c", sha256="c" * 64, yanked=True
            ),
        ],
    )
    assert made.released == ("2024-01-05", "2024-06-30", "2024-03-01")
    assert made.months_released() == (("2024-01", 1), ("2024-03", 1), ("2024-06", 1))
    assert made.version_count == 3
    assert made.remote_artifacts == (("a" * 64, 10, "p-1.0.0.tgz"), ("c" * 64, 10, "p-2.0.0.tgz"))
    assert made.local_artifacts == (("b" * 64, 10, "p-1.1.0.tgz", "plugins/dates/files/b.tgz"),)
    every_version_yanked = facts(
        "yanked",
        [version("1.0.0", "2024-01-05", url="https://x.org/a", sha256="a" * 64, yanked=True)],
    )
    assert every_version_yanked.released == ("2024-01-05", "2024-01-05", "")
    assert every_version_yanked.local_artifacts == ()


def test_local_artifacts_are_every_version_with_a_path_inside_its_folder() -> None:
    """A URL that leaves the plugin's folder is neither remote nor local: it is no
    local artifact (the rules refuse it), nor does it count as remote."""
    made = facts(
        "mixed",
        [
            version("1.0.0", "2024-01-05", url="files/a.tgz", sha256="a" * 64),
            version("1.1.0", "2024-01-06", url="../escape/b.tgz", sha256="b" * 64),
            version("1.2.0", "2024-01-07", url="https://example.org/c", sha256="c" * 64),
            version("1.3.0", "2024-01-08", url="files/a.tgz", sha256="a" * 64),
        ],
    )
    path = "plugins/mixed/files/a.tgz"
    assert made.local_artifacts == (
        ("a" * 64, 10, "p-1.0.0.tgz", path),
        ("a" * 64, 10, "p-1.3.0.tgz", path),
    )
    assert made.remote_artifacts == (("c" * 64, 10, "p-1.2.0.tgz"),)
    escaping_only = facts(
        "escaping", [version("1.0.0", "2024-01-05", url="../x/a.tgz", sha256="a" * 64)]
    )
    assert escaping_only.local_artifacts == ()
    assert escaping_only.remote_artifacts == ()


def test_packed_rows_are_the_same_bytes_for_the_same_rows() -> None:
    """The cache compares parts by value: equal facts must pack to equal bytes."""
    versions = [version("1.0.0", "2024-01-05", url="https://example.org/a", sha256="a" * 64)]
    assert facts("same", versions).versions_blob == facts("same", versions).versions_blob


@pytest.mark.parametrize("seed", range(6))
def test_the_releases_feed_is_the_newest_releases_of_every_plugin(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only plugins with a release new enough are unpacked, and the feed is unchanged:
    the newest releases of all versions, ties (same day) in name order, then version."""
    chance = random.Random(seed)
    # One version each makes the oldest release in the feed the floor itself (ties at
    # the floor count); many versions each make the floor far below it.
    counts = [1] if seed % 2 else [1, 1, 2, 3, 8, 40]
    every: dict[str, PluginFacts] = {}
    for i in range(RELEASE_ENTRIES * 2 + chance.randrange(50)):
        name = f"plugin-{i:04d}"
        days = sorted(chance.randrange(1, 29) for _ in range(chance.choice(counts)))
        every[name] = facts(
            name,
            [
                version(
                    f"1.{n}.0",
                    f"2024-0{chance.randrange(1, 4)}-{day:02d}",
                    url=f"https://example.org/{name}/{n}",
                    sha256=f"{i:04d}{n:04d}".ljust(64, "0"),
                    yanked=chance.random() < 0.1,
                )
                for n, day in enumerate(days)
            ],
        )
    expected = heapq.nlargest(
        RELEASE_ENTRIES,
        ((name, v) for name in sorted(every) for v in every[name].version_rows),
        key=lambda item: item[1][2],
    )
    floor = sorted((p.released[1] for p in every.values()), reverse=True)[RELEASE_ENTRIES - 1]
    registry = analyse(BUNDLED).registry
    assert registry is not None
    rows = {name: row_of(plugin) for name, plugin in every.items()}
    unpacked: set[str] = set()

    def counted(plugin: PluginFacts) -> Any:
        unpacked.add(plugin.name)
        assert isinstance(plugin.versions_blob, bytes)  # facts made here, not cached
        return marshal.loads(zlib.decompress(plugin.versions_blob))

    monkeypatch.setattr(PluginFacts, "version_rows", property(counted))
    feed = global_feeds(registry, every, rows)["feeds/releases.xml"]
    titles = [e.title for e in feed["entries"]]
    assert titles == [f"{name} {v[0]}" + (" (yanked)" if v[3] else "") for name, v in expected]
    assert unpacked == {name for name, p in every.items() if p.released[1] >= floor}


def test_the_stats_count_releases_by_month_without_unpacking_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every version counts in the month it was released, yanked ones too."""
    every = {
        "one": facts(
            "one",
            [
                version("1.0.0", "2024-01-05", url="https://x.org/a", sha256="a" * 64),
                version("1.1.0", "2024-01-31", url="https://x.org/b", sha256="b" * 64),
                version("2.0.0", "2024-03-01", url="https://x.org/c", sha256="c" * 64, yanked=True),
            ],
        ),
        "two": facts(
            "two", [version("0.1.0", "2024-03-09", url="https://x.org/d", sha256="d" * 64)]
        ),
    }
    registry = analyse(BUNDLED).registry
    assert registry is not None

    def unpacked(plugin: PluginFacts) -> Any:
        raise AssertionError(f"{plugin.name}: rows unpacked")

    monkeypatch.setattr(PluginFacts, "version_rows", property(unpacked))
    stats = stats_context(registry, every, {})
    assert stats["months"]["rows"] == [("2024-03", 2), ("2024-01", 2)]
    assert stats["versions"] == 4


def test_an_artifact_named_by_two_versions_is_fetched_from_the_first(tmp_path: Path) -> None:
    """Two versions with the same bytes at two URLs: the oldest version's URL is used."""
    sha256 = "d" * 64
    versions = [
        version("1.0.0", "2024-01-05", url="https://one.example/a", sha256=sha256),
        version("1.0.1", "2024-01-06", url="https://two.example/a", sha256=sha256),
    ]
    for v in versions:
        v["artifact"]["filename"] = "p.tgz"
    plugin = facts("twice", versions)
    plan, missing, paths_of = mirror._sort_out(tmp_path, [plugin], {}, {}, live=None, borrowed=[])
    assert plan == {}
    assert missing[sha256][6][3] == "https://one.example/a"
    assert paths_of == {sha256: [layout.artifact_path(sha256, "p.tgz")]}


def reference_listings(registry: Any, plugins: dict[str, PluginFacts]) -> dict[str, bytes]:
    """The listings as whole documents encoded at once: what the pages must be."""
    ordered = sorted(plugins.values(), key=lambda p: p.name)
    summaries = [
        {
            "name": p.name,
            "display_name": p.display_name,
            "description": p.description,
            "latest": p.latest[0] if p.latest else None,
            "released": p.latest[1] if p.latest else None,
            "categories": list(p.categories),
            "keywords": list(p.keywords),
            "engine": p.latest[2] if p.latest else None,
        }
        for p in ordered
    ]
    recent = sorted(summaries, key=lambda s: s["released"] or "", reverse=True)
    pages = max(1, -(-len(ordered) // layout.PAGE_SIZE))
    files = {}
    for order, items in (("name", summaries), ("recent", recent)):
        for page in range(1, pages + 1):
            files[layout.page_path(order, page)] = encode(
                {
                    "format": FORMAT_VERSION,
                    "sort": order,
                    "page": page,
                    "pages": pages,
                    "per_page": layout.PAGE_SIZE,
                    "total": len(ordered),
                    "plugins": items[(page - 1) * layout.PAGE_SIZE : page * layout.PAGE_SIZE],
                }
            )
    return files


@pytest.mark.parametrize("count", [0, 1, 99, 100, 101, 250])
def test_listing_pages_put_together_from_entries_are_the_pages_encoded_whole(count: int) -> None:
    chance = random.Random(count)
    awkward = ['"quoted"', "back\\slash", "ünïcode ✓", "tab\there", '"plugins":[]', "</script>"]
    every: dict[str, PluginFacts] = {}
    for i in range(count):
        name = f"plugin-{i:04d}"
        made = facts_of_document(
            json.dumps(
                {
                    "name": name,
                    "display_name": chance.choice(awkward),
                    "description": chance.choice(awkward),
                    "categories": chance.sample(["auth", "data", "template"], chance.randrange(3)),
                    "keywords": chance.sample(awkward, chance.randrange(3)),
                    "versions": [
                        version(
                            "1.0.0",
                            f"2024-01-{chance.randrange(1, 29):02d}",
                            url="https://example.org/a",
                            sha256="a" * 64,
                            yanked=chance.random() < 0.2,
                        )
                    ],
                }
            ).encode(),
            name,
        )
        assert made is not None
        every[name] = made
    registry = analyse(BUNDLED).registry
    assert registry is not None
    files = dict(listing_files(registry, every))
    pages = {path: data for path, data in files.items() if path.startswith("api/")}
    assert pages == reference_listings(registry, every)
    assert set(files) == {layout.NAMES, layout.CATEGORIES, *pages}
    for data in pages.values():
        json.loads(data)  # well-formed, whatever the strings held
    names = {name: p.latest[0] if p.latest else None for name, p in sorted(every.items())}
    assert files[layout.NAMES] == encode(
        {"format": FORMAT_VERSION, "count": count, "plugins": names}
    )
