"""Validate: the rules of an index that need no git history and no keys.

`check_plugin` looks at one plugin on its own (its result can be cached with the
plugin's content hash); the rules across plugins are in `builder.index.dependencies`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Set
from pathlib import Path
from urllib.parse import urlsplit

from builder.common.errors import Problem, SourceError
from builder.format import strict_yaml
from builder.format.load import (
    LoadedPlugin,
    LoadedVersion,
    SchemaProblemsError,
    parse_model,
    read_file,
    shown,
)
from builder.format.models import RegistryConfig, VersionManifest
from builder.format.paths import PLUGIN_FILE, VERSIONS_DIR
from builder.format.requirements import VersionKey
from builder.format.schema_errors import field_name
from builder.format.strict_yaml import Path_
from builder.index.facts import VersionFacts, local_artifact_path


def problem_at(index: Path, rel: str, loc: Path_, message: str) -> Problem:
    """Return a problem for field `loc` of a source file, with the field's line."""
    where = shown(index, rel)
    try:
        line: int | None = strict_yaml.load(index / rel, where, track_lines=True).line_of(loc)
    except SourceError:
        line = None
    return Problem(where, line, field_name(loc), message)


def check_plugin(
    index: Path,
    registry: RegistryConfig,
    plugin: LoadedPlugin,
    digests: Mapping[str, str],
    sizes: Mapping[str, int],
    *,
    left_out: Set[str] = frozenset(),
) -> list[Problem]:
    """Check one plugin's own rules; `digests`/`sizes` describe its folder's files.

    `left_out` are version files a build leaves out: their artifacts are not strays.
    """
    problems: list[Problem] = []
    manifest = plugin.manifest
    folder_rel = f"plugins/{plugin.folder}"
    manifest_rel = f"{folder_rel}/{PLUGIN_FILE}"
    policy = registry.policy

    def at(rel: str, loc: Path_, message: str) -> None:
        problems.append(problem_at(index, rel, loc, message))

    if manifest.name != plugin.folder:
        at(
            manifest_rel,
            ("name",),
            f"does not match the folder name (expected {plugin.folder!r}, got {manifest.name!r})",
        )
    if manifest.name in policy.reserved_names:
        at(
            manifest_rel,
            ("name",),
            f"{manifest.name!r} is reserved by the registry "
            f"(see policy.reserved_names in registry.yaml)",
        )
    known = {c.slug for c in registry.categories}
    for i, slug in enumerate(manifest.categories):
        if slug not in known:
            at(
                manifest_rel,
                ("categories", i),
                f"unknown category (expected one of: {', '.join(sorted(known))}; got {slug!r})",
            )
    if manifest.readme and f"{folder_rel}/{manifest.readme}" not in digests:
        at(manifest_rel, ("readme",), f"file not found (expected {folder_rel}/{manifest.readme})")
    problems.extend(_check_replacement(index, plugin))
    seen: dict[VersionKey, str] = {}
    for loaded in plugin.versions:
        version = loaded.manifest
        rel = loaded.file
        expected_file = f"{folder_rel}/versions/{version.version}.yaml"
        if rel != expected_file:
            at(
                rel,
                ("version",),
                f"does not match the file name (expected "
                f"{rel.rsplit('/', 1)[-1].removesuffix('.yaml')!r}, got {version.version!r})",
            )
        base = loaded.key
        if base in seen:
            at(
                rel,
                ("version",),
                f"has the same precedence as {seen[base]} (versions may "
                f"not differ only in build metadata)",
            )
        seen[base] = version.version
        if version.artifact.size > policy.max_artifact_size:
            at(
                rel,
                ("artifact", "size"),
                f"artifact is too large (expected at most "
                f"{policy.max_artifact_size} bytes, got {version.artifact.size})",
            )
        problems.extend(_check_artifact_source(index, registry, loaded, digests, sizes))
        if manifest.name in version.dependencies:
            at(rel, ("dependencies", manifest.name), "a plugin cannot depend on itself")
    version_files = {r for r in sizes if r.startswith(f"{folder_rel}/{VERSIONS_DIR}/")}
    referenced = _artifacts_of(index, left_out)
    if version_files == {v.file for v in plugin.versions} and referenced is not None:
        # With a version that did not load, its artifact would look unreferenced.
        problems.extend(_check_other_files(index, registry, plugin, sizes, referenced))
    return problems


def _check_replacement(index: Path, plugin: LoadedPlugin) -> list[Problem]:
    """Refuse a deprecation whose replacement is the plugin itself or not in the index."""
    manifest = plugin.manifest
    rel = f"plugins/{plugin.folder}/{PLUGIN_FILE}"
    replacement = manifest.deprecated.replacement if manifest.deprecated else None
    loc: Path_ = ("deprecated", "replacement")
    if replacement == manifest.name:
        message = f"names {manifest.name} itself (expected another plugin of the index, or none)"
    elif replacement is not None and not (index / "plugins" / replacement / PLUGIN_FILE).is_file():
        # Plugins are never deleted (PX113), so a replacement found once stays there.
        message = (
            f"no plugin {replacement!r} in the index (expected plugins/{replacement}/"
            f"{PLUGIN_FILE}); name a plugin users can install instead"
        )
    else:
        return []
    return [problem_at(index, rel, loc, message)]


def _artifacts_of(index: Path, version_files: Set[str]) -> set[str] | None:
    """Return the local artifacts version files name, or None if one does not parse."""
    found = set()
    for rel in version_files:
        try:
            version = parse_model(VersionManifest, read_file(index, rel), index, rel)
        except (SourceError, SchemaProblemsError):
            return None
        local = local_artifact_path(rel.rsplit("/", 2)[0], version.artifact.url)
        if local:
            found.add(local)
    return found


# Images a README may show, by extension, with the bytes each kind of file starts with.
IMAGE_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".gif": (b"GIF87a", b"GIF89a"),
    ".webp": (b"RIFF",),  # then four bytes of size, then WEBP (checked below)
}


def _check_other_files(
    index: Path,
    registry: RegistryConfig,
    plugin: LoadedPlugin,
    sizes: Mapping[str, int],
    referenced: Set[str],
) -> list[Problem]:
    """Refuse files a plugin folder has no use for: anything not referenced or an image.

    A plugin folder holds plugin.yaml, its version files, the README plugin.yaml
    names, the repository-local artifacts its versions name (where the policy allows
    them) and README images under the policy's size cap: nothing else is merged.
    """
    folder_rel = f"plugins/{plugin.folder}"
    policy = registry.policy
    expected = {f"{folder_rel}/{PLUGIN_FILE}", *referenced}
    if plugin.manifest.readme:
        expected.add(f"{folder_rel}/{plugin.manifest.readme}")
    if policy.allow_local_artifacts:
        for loaded in plugin.versions:
            local = local_artifact_path(folder_rel, loaded.manifest.artifact.url)
            if local:
                expected.add(local)
    problems = []
    for rel in sorted(sizes):
        if rel in expected or rel.startswith(f"{folder_rel}/{VERSIONS_DIR}/"):
            continue  # version files: the loader reports anything unexpected there
        suffix = posixpath.splitext(rel)[1].lower()
        where = shown(index, rel)
        if suffix not in IMAGE_SIGNATURES:
            problems.append(
                Problem(
                    where,
                    None,
                    "",
                    "unexpected file (a plugin folder holds plugin.yaml, versions/, the "
                    "README plugin.yaml names, the artifacts its versions name and README "
                    "images: png, jpeg, gif or webp)",
                )
            )
        elif sizes[rel] > policy.max_image_size:
            problems.append(
                Problem(
                    where,
                    None,
                    "",
                    f"image too large (expected at most {policy.max_image_size} bytes, "
                    f"see policy.max_image_size; got {sizes[rel]})",
                )
            )
        elif not _is_image(index / rel, suffix):
            problems.append(
                Problem(
                    where,
                    None,
                    "",
                    f"not a {suffix[1:]} image (its first bytes say otherwise; only png, "
                    f"jpeg, gif and webp images may sit beside a plugin)",
                )
            )
    return problems


def _is_image(path: Path, suffix: str) -> bool:
    """Tell whether a file starts as an image of its extension's kind."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
    except OSError:
        return False
    if not head.startswith(IMAGE_SIGNATURES[suffix]):
        return False
    return suffix != ".webp" or head[8:12] == b"WEBP"


def _check_artifact_source(
    index: Path,
    registry: RegistryConfig,
    loaded: LoadedVersion,
    digests: Mapping[str, str],
    sizes: Mapping[str, int],
) -> list[Problem]:
    """Check an artifact's URL against policy, and a local artifact's bytes."""
    rel = loaded.file
    folder_rel = rel.rsplit("/", 2)[0]
    url, sha256, size = (
        loaded.manifest.artifact.url,
        loaded.manifest.artifact.sha256,
        loaded.manifest.artifact.size,
    )
    loc: Path_ = ("artifact", "url")
    policy = registry.policy
    local = local_artifact_path(folder_rel, url)
    if local is None:
        scheme = urlsplit(url).scheme
        if scheme not in policy.allowed_url_schemes or not urlsplit(url).netloc:
            return [
                problem_at(
                    index,
                    rel,
                    loc,
                    f"URL scheme not allowed (expected "
                    f"{' or '.join(s + '://' for s in policy.allowed_url_schemes)}"
                    f", got {url!r})",
                )
            ]
        return []
    if not policy.allow_local_artifacts:
        return [
            problem_at(
                index,
                rel,
                loc,
                f"repository-local artifacts are not allowed in "
                f"this registry (expected an https:// URL, got {url!r})",
            )
        ]
    if not local:
        return [
            problem_at(
                index,
                rel,
                loc,
                f"path leaves the plugin folder (expected a path "
                f"inside {folder_rel}/, got {url!r})",
            )
        ]
    if local not in digests:
        return [problem_at(index, rel, loc, f"artifact file not found (expected {local})")]
    problems = []
    if sizes[local] != size:
        problems.append(
            problem_at(
                index,
                rel,
                ("artifact", "size"),
                f"does not match the artifact file (expected {sizes[local]}, got {size})",
            )
        )
    if digests[local] != sha256:
        problems.append(
            problem_at(
                index,
                rel,
                ("artifact", "sha256"),
                f"does not match the artifact file (expected {digests[local]}, got {sha256})",
            )
        )
    return problems


def check_release_dates(
    index: Path, versions: Iterable[VersionFacts], latest: str, why: str
) -> list[Problem]:
    """Refuse versions released after `latest` (YYYY-MM-DD); `why` says where that came from.

    A date in the future would keep a version at the top of "recent" for good.
    """
    return [
        problem_at(
            index,
            version.file,
            ("released",),
            f"release date in the future (expected {latest} or earlier, {why}; "
            f"got {version.released})",
        )
        for version in versions
        if version.released > latest
    ]
