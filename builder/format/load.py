"""Load: find the source files of an index and parse them into models.

Paths inside the index are POSIX strings relative to the index root
(`plugins/auth-jwt/versions/1.0.0.yaml`); problems show them joined to the index
path the user gave, so they are clickable and match GitHub's annotation paths.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from builder.common.errors import Problem, SourceError
from builder.format import strict_yaml
from builder.format.models import PluginManifest, RegistryConfig, VersionManifest
from builder.format.paths import (
    PLUGIN_FILE,
    PLUGINS_DIR,
    REGISTRY_FILE,
    TUF_DIR,
    VERSIONS_DIR,
    FileStat,
)
from builder.format.requirements import VersionKey, key_of
from builder.format.schema_errors import describe, to_problems

# Top-level entries an index may hold besides its plugins.
_TOP_LEVEL = frozenset({REGISTRY_FILE, PLUGINS_DIR, TUF_DIR, "README.md"})
# Levels of folders a plugin folder may hold (`versions/` is one; a README's images
# may sit a few deeper).
MAX_DEPTH = 8

Model = TypeVar("Model", bound=BaseModel)


@dataclass
class PluginFolder:
    """The files found in one `plugins/<folder>/` (index-relative path → stat)."""

    folder: str
    files: dict[str, FileStat] = field(default_factory=dict)


@dataclass
class Scan:
    """Every source file of an index, grouped by plugin folder."""

    registry: FileStat | None
    plugins: dict[str, PluginFolder]
    problems: list[Problem]


@dataclass(frozen=True)
class LoadedVersion:
    file: str
    manifest: VersionManifest
    key: VersionKey


@dataclass(frozen=True)
class LoadedPlugin:
    folder: str
    manifest: PluginManifest
    versions: tuple[LoadedVersion, ...]  # oldest first


def shown(index: Path, rel: str) -> Path:
    """Return the path to show a person for an index-relative path."""
    return index / rel


def _stat_of(entry: os.DirEntry[str]) -> FileStat:
    info = entry.stat(follow_symlinks=False)
    return (info.st_mtime_ns, info.st_size, info.st_ino, info.st_ctime_ns)


def scan_index(index: Path, only: AbstractSet[str] | None = None) -> Scan:
    """List the index's source files; refuse links, special files and strays.

    With `only`, list just those plugin folders (a pull-request check looks at the
    plugins it touches and their dependencies, not at the whole index).
    """
    problems: list[Problem] = []
    registry: FileStat | None = None
    plugins: dict[str, PluginFolder] = {}
    if not index.is_dir():
        problems.append(
            Problem(
                index,
                None,
                "",
                "index folder not found (expected a folder holding registry.yaml and plugins/)",
            )
        )
        return Scan(None, plugins, problems)
    for entry in sorted(os.scandir(index), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.name not in _TOP_LEVEL:
            problems.append(
                Problem(
                    shown(index, entry.name),
                    None,
                    "",
                    "unexpected entry (expected only registry.yaml, plugins/, tuf/ and README.md)",
                )
            )
        elif entry.is_symlink() or not (
            entry.is_dir() if entry.name in (PLUGINS_DIR, TUF_DIR) else entry.is_file()
        ):
            kind = "folder" if entry.name in (PLUGINS_DIR, TUF_DIR) else "regular file"
            problems.append(
                Problem(
                    shown(index, entry.name),
                    None,
                    "",
                    f"not a {kind} (links and special files are not allowed in an index)",
                )
            )
        elif entry.name == REGISTRY_FILE:
            registry = _stat_of(entry)
    if registry is None and not any(p.file == shown(index, REGISTRY_FILE) for p in problems):
        problems.append(Problem(shown(index, REGISTRY_FILE), None, "", "file not found"))
    plugins_dir = index / PLUGINS_DIR
    if plugins_dir.is_symlink() or not plugins_dir.is_dir():
        return Scan(registry, plugins, problems)
    for name, is_folder in _plugin_entries(plugins_dir, only):
        rel = f"{PLUGINS_DIR}/{name}"
        if name.startswith("."):
            # Not skipped: a hidden folder would otherwise be merged unchecked.
            problems.append(
                Problem(
                    shown(index, rel),
                    None,
                    "",
                    "unexpected entry (a name starting with '.' is not a plugin folder; "
                    "expected one folder per plugin under plugins/)",
                )
            )
            continue
        if not is_folder:
            problems.append(
                Problem(
                    shown(index, rel),
                    None,
                    "",
                    "unexpected entry (expected one folder per plugin under plugins/)",
                )
            )
            continue
        plugins[name] = PluginFolder(name)
    _walk_all(index, plugins, problems)
    return Scan(registry, plugins, problems)


# Up to this many named folders, each is looked up on its own rather than found by
# listing plugins/: a build that checks one plugin again (a held-back version, a
# dependency broken by a merge) in an index of 150,000 listed them all each time.
_LOOKED_UP = 1000


def _plugin_entries(plugins_dir: Path, only: AbstractSet[str] | None) -> list[tuple[str, bool]]:
    """Return plugins/'s entries as (name, whether a folder, not a link), by name.

    With `only`, just the entries of those names that exist.
    """
    if only is None or len(only) > _LOOKED_UP:
        return [
            (entry.name, entry.is_dir(follow_symlinks=False))
            for entry in sorted(os.scandir(plugins_dir), key=lambda e: e.name)
            if only is None or entry.name in only
        ]
    found = []
    for name in sorted(only):
        if not name or "/" in name or name in (".", ".."):
            continue  # never an entry of a folder listing
        try:
            info = os.lstat(plugins_dir / name)
        except (OSError, ValueError):  # not there (or a name no path can hold)
            continue
        found.append((name, stat.S_ISDIR(info.st_mode)))
    return found


# Above this many plugin folders, threads walk them: a walk is mostly waiting for the
# file system (stat calls, inodes not in memory), which threads overlap.
FOLDERS_BEFORE_THREADS = 500
_WALKERS = 4
_FOLDERS_PER_TASK = 100


def _walk_all(index: Path, plugins: dict[str, PluginFolder], problems: list[Problem]) -> None:
    """Walk every plugin folder; problems are added in the folders' order."""
    folders = list(plugins.values())

    def walk(chunk: list[PluginFolder]) -> list[Problem]:
        found: list[Problem] = []
        for folder in chunk:
            _walk(index, f"{PLUGINS_DIR}/{folder.folder}", folder, found)
        return found

    if len(folders) < FOLDERS_BEFORE_THREADS:
        problems.extend(walk(folders))
        return
    chunks = [folders[i : i + _FOLDERS_PER_TASK] for i in range(0, len(folders), _FOLDERS_PER_TASK)]
    with ThreadPoolExecutor(_WALKERS) as pool:
        for found in pool.map(walk, chunks):
            problems.extend(found)


def _walk(index: Path, rel: str, folder: PluginFolder, problems: list[Problem]) -> None:
    # Iterative, and no deeper than MAX_DEPTH: a pull request can nest folders far
    # beyond Python's recursion limit. String paths and each directory entry's own
    # file type, because this runs for every file of the index on every build, where
    # a Path or an extra stat per file adds up.
    pending = [(rel, 0)]
    while pending:
        folder_rel, depth = pending.pop()
        try:
            entries = list(os.scandir(f"{index}/{folder_rel}"))  # order irrelevant: keys sort
        except OSError as e:
            problems.append(
                Problem(shown(index, folder_rel), None, "", f"cannot read folder ({e.strerror})")
            )
            continue
        for entry in entries:
            child = f"{folder_rel}/{entry.name}"
            if entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                folder.files[child] = (
                    info.st_mtime_ns,
                    info.st_size,
                    info.st_ino,
                    info.st_ctime_ns,
                )
            elif entry.is_dir(follow_symlinks=False):
                if depth + 1 > MAX_DEPTH:
                    problems.append(
                        Problem(
                            shown(index, child),
                            None,
                            "",
                            f"folder nested too deeply (expected at most {MAX_DEPTH} "
                            f"levels of folders inside a plugin folder)",
                        )
                    )
                    continue
                pending.append((child, depth + 1))
            else:
                problems.append(
                    Problem(
                        shown(index, child),
                        None,
                        "",
                        "not a regular file (links and special files are not allowed in an index)",
                    )
                )


def parse_model(model: type[Model], data: bytes, index: Path, rel: str) -> Model:
    """Parse YAML bytes strictly into `model`; raise SourceError or a problem list."""
    where = f"{index}/{rel}"  # a plain string: a Path per file costs a second per 100k
    text = strict_yaml.decode(data, where)
    document = strict_yaml.parse(text, where)
    if type(document.value) is not dict:
        found = "an empty file" if document.value is None else describe(document.value)
        raise SourceError(Problem(Path(where), 1, "", f"expected a mapping of fields, got {found}"))
    try:
        return model.model_validate(document.value)
    except ValidationError as e:
        # Parse again keeping lines: cheap, and only on the failure path.
        located = strict_yaml.parse(text, where, track_lines=True)
        raise SchemaProblemsError(to_problems(e, model, located, Path(where))) from None


class SchemaProblemsError(Exception):
    """Schema problems of one file (internal: collected, never shown as is)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


def read_file(index: Path, rel: str) -> bytes:
    """Read a source file, refusing files over the source size cap."""
    return strict_yaml.read_capped(f"{index}/{rel}", f"{index}/{rel}")


def load_registry(index: Path) -> tuple[RegistryConfig | None, bytes, list[Problem]]:
    """Load registry.yaml; return the config (None if invalid), its bytes and problems."""
    try:
        data = read_file(index, REGISTRY_FILE)
        return parse_model(RegistryConfig, data, index, REGISTRY_FILE), data, []
    except SourceError as e:
        return None, b"", [e.problem]
    except SchemaProblemsError as e:
        return None, b"", e.problems


def load_plugin(
    index: Path, folder: str, files: Collection[str], contents: dict[str, bytes]
) -> tuple[LoadedPlugin | None, list[Problem]]:
    """Parse a plugin folder's manifests; file-level problems are returned, not raised.

    `files` are the folder's files (index-relative), `contents` the manifests' bytes.
    """
    problems: list[Problem] = []
    prefix = f"{PLUGINS_DIR}/{folder}/"
    manifest_rel = prefix + PLUGIN_FILE
    manifest: PluginManifest | None = None
    if manifest_rel not in files:
        problems.append(
            Problem(
                shown(index, manifest_rel),
                None,
                "",
                "file not found (every plugin folder holds a plugin.yaml)",
            )
        )
    else:
        try:
            manifest = parse_model(PluginManifest, contents[manifest_rel], index, manifest_rel)
        except SourceError as e:
            problems.append(e.problem)
        except SchemaProblemsError as e:
            problems.extend(e.problems)
    versions: list[LoadedVersion] = []
    version_prefix = prefix + VERSIONS_DIR + "/"
    if not any(rel.startswith(version_prefix) for rel in files):
        problems.append(
            Problem(
                shown(index, manifest_rel),
                None,
                "",
                "plugin has no versions (expected at least one versions/<version>.yaml)",
            )
        )
    for rel in files:
        if not rel.startswith(version_prefix):
            continue
        if not rel.endswith(".yaml") or "/" in rel[len(version_prefix) :]:
            problems.append(
                Problem(
                    shown(index, rel),
                    None,
                    "",
                    "unexpected file (expected versions/<version>.yaml)",
                )
            )
            continue
        try:
            parsed = parse_model(VersionManifest, contents[rel], index, rel)
        except SourceError as e:
            problems.append(e.problem)
            continue
        except SchemaProblemsError as e:
            problems.extend(e.problems)
            continue
        versions.append(LoadedVersion(rel, parsed, key_of(parsed.version)))
    if manifest is None:
        return None, problems
    versions.sort(key=lambda v: v.key)
    return LoadedPlugin(folder, manifest, tuple(versions)), problems
