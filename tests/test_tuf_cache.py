"""The client's cache of verified documents stays bounded: one copy per path still signed.

Documents are kept by target path (`builder.client.target_cache`): a new version
replaces the old one atomically, a path the signed targets no longer list is
dropped when next asked for, and the unbounded cache by sha256 of earlier versions
is removed. Against a small signed registry served on 127.0.0.1.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.client.signed import SignedFetcher
from builder.client.target_cache import FOLDER, TargetCache, targets_cache
from builder.common.fetch import NotFoundError
from tests.fault_server import Recorder, serve_recorded
from tests.test_tuf import Signed, client_for, doc, make_registry, reopen


@pytest.fixture
def signed(tmp_path: Path) -> Signed:
    return make_registry(tmp_path)


@pytest.fixture
def served(signed: Signed) -> Iterator[tuple[str, Recorder]]:
    with serve_recorded(signed.out) as found:
        yield found


def cached_files(home: Path) -> dict[str, bytes]:
    """Return every file of the verified-document cache, by path under it."""
    folder = home / "cache" / FOLDER
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_new_version_of_a_document_replaces_the_old_one(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """Ten releases later the cache holds one copy of the document: the current one."""
    url, _ = served
    home = tmp_path / "home"
    first = client_for(url, signed, home).verified_target(doc("alpha"))
    assert cached_files(home) == {f"test/{doc('alpha')}": first}
    for number in range(1, 11):
        signed.release("alpha", f"1.{number}.0")
        signed.build()
        reopen(url, home).verified_target(doc("alpha"))
    current = (signed.out / doc("alpha")).read_bytes()
    assert cached_files(home) == {f"test/{doc('alpha')}": current}


def test_a_cached_document_is_used_while_its_signed_hash_is_unchanged(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """A new build that did not touch beta: its document comes from the cache, no request."""
    url, recorder = served
    home = tmp_path / "home"
    client_for(url, signed, home).verified_target(doc("beta"))
    signed.release("alpha", "1.1.0")
    signed.build()
    recorder.hits.clear()
    reopen(url, home).verified_target(doc("beta"))
    assert not [p for p in recorder.paths() if p.startswith("/index/")], recorder.paths()


def test_a_document_no_longer_signed_is_dropped_when_asked_for(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """beta removed from the registry: 'not found', and its cached copy is deleted."""
    url, _ = served
    home = tmp_path / "home"
    client_for(url, signed, home).verified_target(doc("beta"))
    assert f"test/{doc('beta')}" in cached_files(home)
    shutil.rmtree(signed.index / "plugins" / "beta")
    signed.build()
    fetcher = SignedFetcher(reopen(url, home))
    with pytest.raises(NotFoundError, match="signed targets do not list it"):
        fetcher.document(doc("beta"))
    assert f"test/{doc('beta')}" not in cached_files(home)


def test_the_cache_by_sha256_of_earlier_versions_is_removed(tmp_path: Path) -> None:
    """It only grew: opening the new cache deletes it."""
    legacy = tmp_path / "tuf-targets" / "ab"
    legacy.mkdir(parents=True)
    (legacy / ("ab" + "0" * 62)).write_bytes(b"an old document")
    cache = targets_cache(tmp_path, "demo")
    assert cache is not None and cache.folder == tmp_path / FOLDER / "demo"
    assert not (tmp_path / "tuf-targets").exists()
    assert targets_cache(None, "demo") is None


@pytest.mark.parametrize(
    "path", ["../escape.json", "index/../../escape.json", "/abs.json", "a//b.json", "a\\b.json"]
)
def test_a_path_that_would_leave_the_cache_folder_is_not_kept(tmp_path: Path, path: str) -> None:
    """Whatever a registry signs, nothing is written outside its cache folder."""
    cache = TargetCache(tmp_path / "cache" / "demo")
    cache.keep(path, b"data")
    assert cache.get(path, "0" * 64) is None
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
