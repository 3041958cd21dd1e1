"""Mirror remote artifacts into a build: fetch each once, verify it, keep it by content.

Every per-plugin document points clients at `artifacts/<sha256>/<filename>`, so the
build must hold that file. Repository-local artifacts are copied by the build
itself; this module provides the remote ones. An artifact already in the output
(recorded by the build cache, or on disk with the right bytes) or left in the
download folder by an earlier, failed build is never fetched again.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Mapping, Set
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.common import layout
from builder.common.build_folder import STATE_DIR
from builder.common.errors import InvalidIndexError, Problem
from builder.common.files import sha256_of_file
from builder.index.facts import ArtifactFacts, PluginFacts, VersionFacts
from builder.index.output import Planned

if TYPE_CHECKING:  # a no-op build warns from here without loading the models
    from builder.format.models import Policy

log = logging.getLogger(__name__)

DOWNLOADS = "downloads"  # under <out>/.plugindex/: fetched, verified, not yet in place


def _sha256_of(path: Path) -> str | None:
    """Return a file's sha256, or None when it cannot be read."""
    try:
        return sha256_of_file(path)[0]
    except OSError:
        return None


def _in_output(
    out: Path, path: str, version: VersionFacts, on_disk: Mapping[str, int]
) -> Planned | None:
    """Return the plan of an artifact the output holds, unrecorded but with the right bytes."""
    sha256, size = version.artifact.sha256, version.artifact.size
    if on_disk.get(path) == size and _sha256_of(out / path) == sha256:
        return Planned(sha256, size, out / path)
    return None


def _downloaded(out: Path, version: VersionFacts, left: Set[str]) -> Planned | None:
    """Return the plan of an artifact an earlier, failed build downloaded and verified.

    `left` names the files of the download folder: most builds find it empty, and a
    stat per remote artifact (100,000 of them) was most of a no-op build.
    """
    sha256, size = version.artifact.sha256, version.artifact.size
    if sha256 not in left:
        return None
    kept = out / STATE_DIR / DOWNLOADS / sha256
    if kept.is_file() and kept.stat().st_size == size and _sha256_of(kept) == sha256:
        return Planned(sha256, size, kept)
    return None


def _left_downloads(out: Path) -> frozenset[str]:
    """Return the names of the files an earlier build left in the download folder."""
    try:
        return frozenset(os.listdir(out / STATE_DIR / DOWNLOADS))  # noqa: PTH208 - names only
    except OSError:  # none (the usual case), or unreadable: nothing to take from it
        return frozenset()


def _sort_out(
    out: Path,
    plugins: Iterable[PluginFacts],
    recorded: Mapping[str, str],
    on_disk: Mapping[str, int],
    *,
    live: Mapping[str, str] | None,
    borrowed: list[str],
) -> tuple[dict[str, Planned], dict[str, tuple[Any, ...]], dict[str, list[str]]]:
    """Plan the remote artifacts at hand; return them, the missing rows by sha256, their paths."""
    plan: dict[str, Planned] = {}
    missing: dict[str, tuple[Any, ...]] = {}  # version rows by sha256: one fetch per content
    paths_of: dict[str, list[str]] = {}
    seen: set[str] = set()
    left = _left_downloads(out)
    # Every build passes here for every remote artifact: the facts list them apart,
    # and only a plugin with an artifact the record does not vouch for has its version
    # rows unpacked (each such artifact then becomes a VersionFacts).
    for plugin in plugins:
        rows: dict[tuple[str, str], tuple[Any, ...]] | None = None
        for sha256, size, filename in plugin.remote_artifacts:
            path = layout.artifact_path(sha256, filename)
            if path in seen:
                continue  # the first version that names it stands for all
            seen.add(path)
            if recorded.get(path) == sha256 and on_disk.get(path) == size:
                plan[path] = Planned(sha256, size, None)  # in place, as the cache says
                continue
            rows = rows if rows is not None else _remote_rows(plugin)
            row = rows[sha256, filename]
            if path not in on_disk and sha256 not in left:  # no object made on this path
                if live is not None and live.get(path) == sha256:
                    borrowed.append(path)
                else:
                    missing.setdefault(sha256, row)
                    paths_of.setdefault(sha256, []).append(path)
                continue
            version = _version_of(row)
            found = None if path not in on_disk else _in_output(out, path, version, on_disk)
            if found is None and live is not None and live.get(path) == sha256:
                borrowed.append(path)
                continue
            found = found or _downloaded(out, version, left)
            if found is not None:
                plan[path] = found
                continue
            missing.setdefault(sha256, row)
            paths_of.setdefault(sha256, []).append(path)
    return plan, missing, paths_of


def _remote_rows(plugin: PluginFacts) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Return a plugin's version rows with a remote artifact, by (sha256, filename);
    the first (oldest) version naming an artifact stands for all that do."""
    rows: dict[tuple[str, str], tuple[Any, ...]] = {}
    for row in plugin.version_rows:
        sha256, _, filename, _, local = row[6]
        if local is None:
            rows.setdefault((sha256, filename), row)
    return rows


def _version_of(row: tuple[Any, ...]) -> VersionFacts:
    """Return the facts of a version row that a fetch or a check needs (no dependencies)."""
    sha256, size, filename, url, local = row[6]
    artifact = ArtifactFacts(sha256, size, filename, url, local)
    return VersionFacts(row[0], row[1], row[2], row[3], row[4], (), artifact)


def mirror_remote(
    index: Path,
    out: Path,
    plugins: Iterable[PluginFacts],
    policy: Policy,
    *,
    known: Mapping[str, str] | None,
    on_disk: Mapping[str, int],
    fetch: bool = True,
    live: Mapping[str, str] | None = None,
    borrowed: list[str] | None = None,
    failures: dict[str, list[Problem]] | None = None,
    unmirrored: set[str] | None = None,
) -> dict[str, Planned]:
    """Return the planned file of every remote artifact, fetching what the output lacks.

    `known` is the last build's path → sha256, `on_disk` the output's path → size.
    `live` is what the target registry holds (path → sha256): an artifact it holds
    is neither fetched nor put in the build; its path is appended to `borrowed`.
    A download that fails or whose bytes differ from the manifest is a problem on
    the version file: with `failures`, recorded there by artifact path (and the
    artifact left out of the plan, for the build to hold its versions back);
    without, raised as InvalidIndexError (the output is then left as it was). With
    `fetch=False` missing artifacts are left out (the build is then incomplete), and
    their sha256 added to `unmirrored`.
    """
    recorded = known if known is not None else {}
    downloads = out / STATE_DIR / DOWNLOADS
    plan, missing, paths_of = _sort_out(
        out, plugins, recorded, on_disk, live=live, borrowed=[] if borrowed is None else borrowed
    )
    if not missing:
        return plan
    if not fetch:
        warn_unmirrored(len(missing))
        if unmirrored is not None:
            unmirrored.update(missing)
        return plan
    # Imported only to download: the HTTP client is a tenth of a no-op build's start-up.
    from builder.index.artifacts import (
        PARALLEL_DOWNLOADS,
        artifact_client,
        check_download,
    )

    downloads.mkdir(parents=True, exist_ok=True)
    client = artifact_client(policy)

    def download(version: VersionFacts) -> list[Problem]:
        target = downloads / version.artifact.sha256
        partial = target.with_suffix(".part")
        with partial.open("wb") as sink:
            problems = check_download(index, version, client, sink)
        if problems:
            partial.unlink(missing_ok=True)
        else:
            partial.replace(target)
        return problems

    log.info("mirroring %d remote artifact(s)", len(missing))
    with ThreadPoolExecutor(PARALLEL_DOWNLOADS) as pool:
        wanted = [_version_of(row) for row in missing.values()]
        results = dict(zip(missing, pool.map(download, wanted), strict=True))
    problems = [p for listed in results.values() for p in listed]
    if problems and failures is None:
        raise InvalidIndexError(sorted(problems, key=Problem.sort_key))
    for sha256, version in zip(missing, wanted, strict=True):
        for path in paths_of[sha256]:
            if results[sha256]:
                assert failures is not None
                failures[path] = results[sha256]
            else:
                plan[path] = Planned(sha256, version.artifact.size, downloads / sha256)
    return plan


def warn_unmirrored(count: int) -> None:
    """Say that a build left remote artifacts out (fetching disabled)."""
    log.warning(
        "%d remote artifact(s) not mirrored (fetching disabled): this build is "
        "incomplete and cannot be published",
        count,
    )


def forget_downloads(out: Path) -> None:
    """Remove fetched artifacts once the build has moved them into place."""
    shutil.rmtree(out / STATE_DIR / DOWNLOADS, ignore_errors=True)
