"""Mirror remote artifacts into a build: fetch each once, verify it, keep it by content.

Every per-plugin document points clients at `artifacts/<sha256>/<filename>`, so the
build must hold that file. Repository-local artifacts are copied by the build
itself; this module provides the remote ones. An artifact already in the output
(recorded by the build cache, or on disk with the right bytes) or left in the
download folder by an earlier, failed build is never fetched again.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from builder.common import layout
from builder.common.build_folder import STATE_DIR
from builder.common.errors import InvalidIndexError, Problem
from builder.format.models import Policy
from builder.index.artifacts import check_download
from builder.index.facts import ArtifactFacts, PluginFacts, VersionFacts
from builder.index.output import Planned

log = logging.getLogger(__name__)

DOWNLOADS = "downloads"  # under <out>/.plugindex/: fetched, verified, not yet in place
# Under <out>/.plugindex/: artifacts the build left out because the registry it will be
# published to already holds them (`build --live`); `publish` checks they still do.
_PARALLEL_DOWNLOADS = 8


def _sha256_of(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _remote_versions(plugins: Iterable[PluginFacts]) -> dict[str, VersionFacts]:
    """Return one version per remote artifact path (the first that names it)."""
    found: dict[str, VersionFacts] = {}
    for plugin in plugins:
        for row in plugin.version_rows:
            artifact = row[6]  # (sha256, size, filename, url, local)
            if artifact[4] is not None:
                continue
            path = layout.artifact_path(artifact[0], artifact[2])
            if path not in found:
                # Dependencies are not needed here; unpacking them costs time per row.
                found[path] = VersionFacts(
                    row[0], row[1], row[2], row[3], row[4], (), ArtifactFacts(*artifact)
                )
    return found


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
) -> dict[str, Planned]:
    """Return the planned file of every remote artifact, fetching what the output lacks.

    `known` is the last build's path → sha256, `on_disk` the output's path → size.
    `live` is what the target registry holds (path → sha256): an artifact it holds
    is neither fetched nor put in the build; its path is appended to `borrowed`.
    Raises InvalidIndexError naming the version file when a download fails or its
    bytes differ from the manifest; the output is then left as it was. With
    `fetch=False` missing artifacts are left out (the build is then incomplete).
    """
    recorded = known if known is not None else {}
    downloads = out / STATE_DIR / DOWNLOADS
    plan: dict[str, Planned] = {}
    missing: dict[str, VersionFacts] = {}  # by sha256: one fetch per content
    paths_of: dict[str, list[str]] = {}
    for path, version in _remote_versions(plugins).items():
        sha256, size = version.artifact.sha256, version.artifact.size
        if recorded.get(path) == sha256 and on_disk.get(path) == size:
            plan[path] = Planned(sha256, size, None)  # in place, as the cache says
            continue
        if on_disk.get(path) == size and _sha256_of(out / path) == sha256:
            plan[path] = Planned(sha256, size, out / path)
            continue
        if live is not None and live.get(path) == sha256:
            if borrowed is not None:
                borrowed.append(path)
            continue
        kept = downloads / sha256
        if kept.is_file() and kept.stat().st_size == size and _sha256_of(kept) == sha256:
            plan[path] = Planned(sha256, size, kept)
            continue
        missing.setdefault(sha256, version)
        paths_of.setdefault(sha256, []).append(path)
    if not missing:
        return plan
    if not fetch:
        log.warning(
            "%d remote artifact(s) not mirrored (fetching disabled): this build is "
            "incomplete and cannot be published",
            len(missing),
        )
        return plan
    downloads.mkdir(parents=True, exist_ok=True)

    def download(version: VersionFacts) -> list[Problem]:
        target = downloads / version.artifact.sha256
        partial = target.with_suffix(".part")
        with partial.open("wb") as sink:
            problems = check_download(index, version, policy, sink)
        if problems:
            partial.unlink(missing_ok=True)
        else:
            partial.replace(target)
        return problems

    log.info("mirroring %d remote artifact(s)", len(missing))
    with ThreadPoolExecutor(_PARALLEL_DOWNLOADS) as pool:
        problems = [p for found in pool.map(download, missing.values()) for p in found]
    if problems:
        raise InvalidIndexError(sorted(problems, key=Problem.sort_key))
    for sha256, version in missing.items():
        for path in paths_of[sha256]:
            plan[path] = Planned(sha256, version.artifact.size, downloads / sha256)
    return plan


def forget_downloads(out: Path) -> None:
    """Remove fetched artifacts once the build has moved them into place."""
    shutil.rmtree(out / STATE_DIR / DOWNLOADS, ignore_errors=True)
