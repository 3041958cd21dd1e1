"""The artifact cache stays bounded: pruned by age and size, never what is installed.

Unit tests drive `artifact_cache` on a folder of files named by their sha256; the
end-to-end ones install from a local build of the bundled index through the Python
API, with a real cache folder.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from builder.client.artifact_cache import DAY, CacheBounds, open_cached, prune
from builder.client.downloads import ARTIFACT_CACHE
from builder.client.install import Request, install, uninstall
from builder.client.lockfile import read_lockfile
from builder.client.registry import Registry
from builder.client.resolve import Options
from builder.common.fetch import LocalFetcher

HOST = Options(host="0.4.0")
NOW = time.time()  # the mtimes are set relative to the real clock: a read sets it too
GRACE = 600.0


def cached(folder: Path, content: bytes, *, age: float) -> str:
    """Put `content` in the cache folder, last used `age` seconds before NOW; return its name."""
    sha256 = hashlib.sha256(content).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / sha256).write_bytes(content)
    os.utime(folder / sha256, (NOW - age, NOW - age))
    return sha256


def left(folder: Path) -> set[str]:
    """Return the names still in the folder."""
    return {path.name for path in folder.iterdir()}


def test_artifacts_unused_past_the_age_bound_are_dropped(tmp_path: Path) -> None:
    old = cached(tmp_path, b"old", age=40 * DAY)
    recent = cached(tmp_path, b"recent", age=2 * DAY)
    pruned = prune(tmp_path, keep=(), bounds=CacheBounds(max_age=30 * DAY), now=NOW)
    assert left(tmp_path) == {recent}
    assert old not in left(tmp_path)
    assert (pruned.removed, pruned.freed, pruned.kept) == (1, 3, 6)


def test_past_the_size_bound_the_least_recently_used_go_first(tmp_path: Path) -> None:
    oldest = cached(tmp_path, b"a" * 100, age=3 * DAY)
    middle = cached(tmp_path, b"b" * 100, age=2 * DAY)
    newest = cached(tmp_path, b"c" * 100, age=1 * DAY)
    pruned = prune(tmp_path, keep=(), bounds=CacheBounds(max_bytes=150), now=NOW)
    assert left(tmp_path) == {newest}
    assert {oldest, middle}.isdisjoint(left(tmp_path))
    assert (pruned.removed, pruned.kept) == (2, 100)


def test_what_the_installed_plugins_reference_is_never_pruned(tmp_path: Path) -> None:
    """Referenced: kept past both bounds; the unreferenced one goes instead."""
    installed = cached(tmp_path, b"installed" * 50, age=400 * DAY)
    stray = cached(tmp_path, b"stray", age=400 * DAY)
    bounds = CacheBounds(max_bytes=1, max_age=1)
    pruned = prune(tmp_path, keep={installed}, bounds=bounds, now=NOW)
    assert left(tmp_path) == {installed}
    assert stray not in left(tmp_path)
    assert pruned.kept == 450


def test_an_artifact_used_within_the_grace_period_is_never_pruned(tmp_path: Path) -> None:
    """Another process may have just picked it: kept even past the size bound."""
    just_used = cached(tmp_path, b"picked", age=GRACE / 2)
    bounds = CacheBounds(max_bytes=0, max_age=0, grace=GRACE)
    prune(tmp_path, keep=(), bounds=bounds, now=NOW)
    assert left(tmp_path) == {just_used}


def test_reading_an_artifact_makes_it_the_last_to_go(tmp_path: Path) -> None:
    read = cached(tmp_path, b"read", age=3 * DAY)
    unread = cached(tmp_path, b"unread", age=2 * DAY)
    stream = open_cached(tmp_path, read)
    assert stream is not None
    with stream:
        assert stream.read() == b"read"
    prune(tmp_path, keep=(), bounds=CacheBounds(max_bytes=4, grace=0), now=time.time() + 1)
    assert left(tmp_path) == {read}
    assert unread not in left(tmp_path)


def test_an_artifact_pruned_while_open_is_still_read_whole(tmp_path: Path) -> None:
    """An open cache file survives a concurrent prune; a missing one is a miss."""
    name = cached(tmp_path, b"x" * 5000, age=40 * DAY)
    stream = open_cached(tmp_path, name)
    assert stream is not None
    (tmp_path / name).unlink()  # what another process's prune does
    with stream:
        assert stream.read() == b"x" * 5000
    assert open_cached(tmp_path, name) is None


def test_temp_files_are_left_unless_stale_and_foreign_files_always(tmp_path: Path) -> None:
    cached(tmp_path, b"entry", age=40 * DAY)
    writing = tmp_path / f".{'a' * 64}.tmp1"
    stale = tmp_path / f".{'b' * 64}.tmp2"
    foreign = tmp_path / "README"
    for path, age in ((writing, 60.0), (stale, 2 * DAY), (foreign, 400 * DAY)):
        path.write_bytes(b"...")
        os.utime(path, (NOW - age, NOW - age))
    prune(tmp_path, keep=(), bounds=CacheBounds(max_bytes=0, max_age=0), now=NOW)
    assert left(tmp_path) == {writing.name, foreign.name}


def test_a_missing_cache_folder_prunes_nothing(tmp_path: Path) -> None:
    pruned = prune(tmp_path / "absent", keep=())
    assert (pruned.removed, pruned.freed, pruned.kept) == (0, 0, 0)


# --- through install ---------------------------------------------------------------


def age_everything(folder: Path, days: float) -> None:
    """Make every cached artifact look unused for `days` days."""
    then = time.time() - days * DAY
    for path in folder.iterdir():
        os.utime(path, (then, then))


def test_install_prunes_old_artifacts_but_keeps_the_installed_ones(
    built: Path, tmp_path: Path
) -> None:
    """An uninstalled plugin's artifact, unused for 40 days, goes; installed ones stay."""
    registry, plugins, cache = Registry(LocalFetcher(built)), tmp_path / "plugins", tmp_path / "c"
    install(registry, plugins, [Request("auth-jwt")], options=HOST, cache_dir=cache)
    install(registry, plugins, [Request("datasource-csv")], options=HOST, cache_dir=cache)
    csv = read_lockfile(plugins).plugins["datasource-csv"].sha256
    uninstall(plugins, "datasource-csv")
    artifacts = cache / ARTIFACT_CACHE
    installed = {p.sha256 for p in read_lockfile(plugins).plugins.values()}
    assert csv in left(artifacts) and installed <= left(artifacts)
    age_everything(artifacts, 40)
    install(registry, plugins, [Request("template-faker")], options=HOST, cache_dir=cache)
    now_installed = {p.sha256 for p in read_lockfile(plugins).plugins.values()}
    assert csv not in left(artifacts)
    assert installed < now_installed
    assert left(artifacts) == now_installed
