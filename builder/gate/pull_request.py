"""The pull-request gate: every rule that compares a PR's tree with its base in git.

`validate --base REF` first checks the PR's scope (PX140: only files under
`plugins/<name>/`; PX141: one plugin per PR), then, for the plugin it touches, runs
the build's foundation rules (with the plugins it depends on loaded) and the gate's
own: ownership, immutability, yanks, names, and optionally the published registry.
The base is read straight from git objects (`git ls-tree`, `git cat-file`), never
checked out, so the working tree is the PR exactly as CI has it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from builder.common.errors import Problem
from builder.common.fetch import Fetcher
from builder.format.load import MAX_DEPTH, load_registry
from builder.format.models import PluginManifest, VersionManifest
from builder.format.paths import PLUGINS_DIR
from builder.format.shapes import manifest_fields
from builder.gate.context import GateError, PluginContext
from builder.gate.git import Change, Git
from builder.gate.immutability import check_plugin_kept, check_version_files
from builder.gate.names import check_new_name
from builder.gate.ownership import check_author, check_manifest_change
from builder.gate.published import check_published
from builder.index.analyse import analyse
from builder.index.artifacts import artifact_client, check_download
from builder.index.holdback import latest_release_date_now
from builder.index.rules import check_release_dates
from builder.trust.signing import owner_keys

__all__ = ["GateError", "GateResult", "check_pull_request"]

MAX_NAME_BYTES = 255  # the longest file or folder name most file systems hold


@dataclass
class GateResult:
    problems: list[Problem] = field(default_factory=list)
    plugins: list[str] = field(default_factory=list)  # plugins the PR touches
    changes: list[Change] = field(default_factory=list)
    versions_added: list[str] = field(default_factory=list)  # index-relative files


def check_pull_request(
    index: Path,
    base: str,
    *,
    author: str | None = None,
    fetch: bool = True,
    published: Fetcher | None = None,
) -> GateResult:
    """Check the working tree of `index` as a pull request against git ref `base`.

    With `published` (the live registry), immutability is also checked against what
    it serves, which outlives any rewrite of the git history.
    """
    if not index.is_dir():
        raise GateError(f"{index}: index folder not found")
    git = Git.of(index)
    try:
        index_rel = index.resolve().relative_to(git.root).as_posix()
    except ValueError as e:
        raise GateError(f"{index}: not inside the git repository {git.root}") from e
    base_commit = git.resolve(base)
    result = GateResult(changes=git.changes_since(git.merge_base(base_commit)))
    prefix = f"{index_rel}/{PLUGINS_DIR}/" if index_rel != "." else f"{PLUGINS_DIR}/"
    touched: dict[str, list[Change]] = {}
    unreadable: set[str] = set()
    for change in result.changes:
        if change.path.startswith(prefix):
            name = change.path[len(prefix) :].split("/", 1)[0]
            touched.setdefault(name, []).append(change)
            problem = _path_problem(git.root, change, prefix)
            if problem is not None:
                result.problems.append(problem)
                unreadable.add(name)
        else:
            result.problems.append(_scope_problem(git.root, change))
    result.plugins = sorted(touched)
    if len(touched) > 1:
        result.problems.extend(_one_plugin_problems(git.root, touched))
    if not touched:
        return result
    registry, _, problems = load_registry(index)
    if registry is None:
        result.problems.extend(problems)
        return result
    for name in result.plugins:
        if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            continue  # no such folder can exist here: PX142 says why
        context = PluginContext.open(
            index, registry, git, base_commit, index_rel, name, touched[name]
        )
        result.problems.extend(
            check_plugin(context, author=author, fetch=fetch, published=published)
        )
        result.versions_added.extend(context.added_versions)
    result.problems.sort(key=Problem.sort_key)
    return result


def _shown(root: Path, path: str) -> Path:
    """Return a repository path as shown to people: relative to where they are."""
    return Path(os.path.relpath(root / path))


def _path_problem(root: Path, change: Change, prefix: str) -> Problem | None:
    """Refuse a path no build could read: a name over 255 bytes, or folders too deep (PX142)."""
    parts = change.path[len(prefix) :].split("/")
    too_long = [p for p in parts if len(p.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES]
    if too_long:
        what = f"a name of {len(too_long[0].encode('utf-8', 'surrogateescape'))} bytes"
    elif len(parts) > MAX_DEPTH + 2:  # the plugin's folder, MAX_DEPTH folders, a file
        what = f"{len(parts) - 2} levels of folders inside the plugin's folder"
    else:
        return None
    shown = change.path if len(change.path) <= 200 else f"{change.path[:200]}…"
    return Problem(
        _shown(root, shown),
        None,
        "",
        f"{change.verb} with {what} (expected names of at most {MAX_NAME_BYTES} bytes and "
        f"at most {MAX_DEPTH} levels of folders in a plugin folder)",
        rule="PX142",
    )


def _scope_problem(root: Path, change: Change) -> Problem:
    return Problem(
        _shown(root, change.path),
        None,
        "",
        f"{change.verb} outside plugins/<name>/ (expected a plugin pull request to change "
        f"only its own plugin's folder)",
        rule="PX140",
    )


def _one_plugin_problems(root: Path, touched: dict[str, list[Change]]) -> list[Problem]:
    """Report a pull request touching several plugins, once per plugin (PX141)."""
    names = sorted(touched)
    return [
        Problem(
            _shown(root, touched[name][0].path),
            None,
            "",
            f"this pull request touches {len(touched)} plugins ({', '.join(names)}); expected one",
            rule="PX141",
        )
        for name in names
    ]


def check_plugin(
    context: PluginContext, *, author: str | None, fetch: bool, published: Fetcher | None
) -> list[Problem]:
    """Run every rule on one plugin the pull request touches; return the problems."""
    base_manifest = context.base_model(PluginManifest, context.manifest_rel)
    if not check_plugin_kept(context):
        return context.problems
    foundation = _foundation(context, fetch)
    new_plugin = base_manifest is None
    if new_plugin:
        check_new_name(context)
    current = context.current_model(PluginManifest, context.manifest_rel)
    if current is None:
        return foundation + context.problems
    # Owners as the base lists them: a PR cannot make itself an owner and sign.
    owners = base_manifest if base_manifest is not None else current
    allowed = owner_keys(owners.owners, retired=False)
    check_author(context, owners, author)
    if base_manifest is not None and manifest_fields(base_manifest) != manifest_fields(current):
        check_manifest_change(context, base_manifest, current, allowed)
    check_version_files(context, allowed)
    if published is not None:
        check_published(context, published, new_plugin=new_plugin)
    # The gate's own finding on a signature says more than the build's generic one.
    judged = {(p.file, p.field) for p in context.problems}
    foundation = [p for p in foundation if (p.file, p.field) not in judged]
    return foundation + context.problems


# --- the foundation rules, on this plugin and what it depends on ---------------------


def _foundation(context: PluginContext, fetch: bool) -> list[Problem]:
    """Run the format rules on this plugin, with the plugins it depends on loaded.

    The base is valid (its own checks passed), so only this plugin's dependencies
    matter: direct ones for satisfiability, and the transitive closure only when a
    new version adds a dependency none of the plugin's merged versions had (a
    cycle needs such a new edge; a brand-new plugin has no dependents at all).
    """
    index, name = context.index, context.name
    folders = {name}
    analysis = analyse(index, folders=folders, focus={name})
    facts = analysis.facts.get(name)
    if facts is not None:
        folders |= _existing(index, facts.depends_on)
        analysis = analyse(index, folders=folders, focus={name})
        if set(facts.depends_on) - _base_dependencies(context):
            while True:
                wanted = {dep for f in analysis.facts.values() for dep in f.depends_on}
                grown = folders | _existing(index, wanted)
                if grown == folders:
                    break
                folders = grown
                analysis = analyse(index, folders=folders, focus={name})
    own = index / PLUGINS_DIR / name
    # The folder itself too: a file, a link or a hidden folder where a plugin belongs.
    problems = [p for p in analysis.problems if own == Path(p.file) or own in Path(p.file).parents]
    added = {context.rel(c.path) for c in context.changes if c.status != "D"}
    context.added_versions = sorted(r for r in added if r.startswith(context.versions_prefix))
    if facts is None:
        return problems
    # New version files only: a yank or un-yank of a merged version never needs its
    # artifact (the registry mirrored it at merge), so a dead URL cannot block it.
    new = [v for v in facts.versions() if v.file in added and v.file not in context.base_files]
    latest = latest_release_date_now()
    why = "today's date (UTC) plus a day for time zones"
    problems.extend(
        dataclasses.replace(p, rule="PX116") for p in check_release_dates(index, new, latest, why)
    )
    if fetch:
        client = artifact_client(context.registry.policy)
        for version in new:
            if version.artifact.local is None:
                problems.extend(check_download(index, version, client))
    return problems


def _existing(index: Path, names: Iterable[str]) -> set[str]:
    return {n for n in names if (index / PLUGINS_DIR / n).is_dir()}


def _base_dependencies(context: PluginContext) -> set[str]:
    """Return every plugin some merged version of this plugin depends on."""
    names: set[str] = set()
    for rel in context.base_files:
        if rel.startswith(context.versions_prefix) and rel.endswith(".yaml"):
            base = context.base_model(VersionManifest, rel)
            if base is not None:
                names.update(base.dependencies)
    return names
