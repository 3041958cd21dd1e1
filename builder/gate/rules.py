"""The pull-request gate: every rule that compares a PR's tree with its base in git.

`validate --base REF` runs the foundation rules on the plugins a PR touches (and the
plugins they depend on), then the rules below: scope, ownership, immutability, and
names. The base is read straight from git objects (`git ls-tree`, `git cat-file`),
never checked out, so the working tree is the PR exactly as CI has it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from builder.common import layout
from builder.common.errors import FetchError, PlugindexError, Problem, SourceError
from builder.common.fetch import Fetcher, NotFoundError
from builder.format.load import (
    PLUGIN_FILE,
    PLUGINS_DIR,
    VERSIONS_DIR,
    SchemaProblemsError,
    load_registry,
    parse_model,
)
from builder.format.models import PluginManifest, RegistryConfig, Signature, VersionManifest
from builder.format.names import resembled_name
from builder.format.requirements import RequirementError, key_of
from builder.format.shapes import manifest_fields, version_entry
from builder.format.strict_yaml import Path_
from builder.gate.git import Change, Git
from builder.index.analyse import analyse
from builder.index.artifacts import check_download
from builder.index.rules import problem_at
from builder.index.signatures import yank_jobs
from builder.trust import statements
from builder.trust.signing import Check, Verdict, owner_keys, verify_statement

log = logging.getLogger(__name__)
M = TypeVar("M", PluginManifest, VersionManifest)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    fix: str


# Stable ids: never renumber; docs/rules.md lists them with the same one-line fixes.
RULES = {
    rule.id: rule
    for rule in (
        Rule(
            "PX010",
            "a signature does not verify against the plugin's owner keys",
            "sign the file again with an owner's key: `plugindex sign FILE --key KEY`",
        ),
        Rule(
            "PX101",
            "signed with a key that is not an active key of an owner in the base plugin.yaml",
            "sign with your own key as listed in the base plugin.yaml, or have an owner sign",
        ),
        Rule(
            "PX102",
            "the pull request's author is not an owner of the plugin",
            "ask an owner to open the PR, or to add you as an owner first (a signed change)",
        ),
        Rule(
            "PX103",
            "a signature does not verify over this file's statement",
            "the file changed after signing, or the signature was copied: sign it again",
        ),
        Rule(
            "PX104",
            "a statement that must be signed is not",
            "sign it: `plugindex sign FILE --key KEY` (add `--yank` for a yank or un-yank)",
        ),
        Rule(
            "PX105",
            "plugin.yaml changed without raising `revision` by exactly one",
            "set `revision:` to the base's revision plus one, then sign plugin.yaml again",
        ),
        Rule(
            "PX110",
            "a merged version file changed outside its `yanked:`/`unyanked:` section",
            "publish a new version instead; a merged version never changes",
        ),
        Rule(
            "PX111",
            "a merged version's artifact URL, sha256 or size changed",
            "publish a new version with the new artifact; the old one stays as it was",
        ),
        Rule(
            "PX112",
            "a merged version file was deleted",
            "restore the file; to withdraw a version, yank it (owner-signed `yanked:`)",
        ),
        Rule(
            "PX113",
            "a plugin's plugin.yaml or whole folder was deleted",
            "restore it; plugins are withdrawn by yanking their versions",
        ),
        Rule(
            "PX114",
            "a version number that was used before is used again",
            "pick a new version number; published numbers are never re-used",
        ),
        Rule(
            "PX115",
            "a plugin or version differs from what the registry has published",
            "the published registry is the record: restore the published version "
            "file, or pick another name",
        ),
        Rule(
            "PX120",
            "a yank or un-yank does not raise `serial` above the base's",
            "set `serial:` to one more than the last yank or un-yank, then sign with --yank",
        ),
        Rule(
            "PX121",
            "a yank was taken back without a signed `unyanked:` section",
            "replace `yanked:` by `unyanked: {serial: N}` and sign it with --yank",
        ),
        Rule(
            "PX122",
            "a yank leaves another plugin's version with no version of this one it accepts",
            "release a fixed version that those requirements accept, then yank",
        ),
        Rule(
            "PX130",
            "a new plugin's name is an existing name after normalisation",
            "choose another name; case, `_` and `.` do not make a name different",
        ),
        Rule(
            "PX131",
            "a new plugin's name can be mistaken for an existing one",
            "choose a clearly different name, or ask maintainers to approve it in "
            "registry.yaml (policy.approved_similar_names)",
        ),
        Rule(
            "PX140",
            "a plugin pull request changes a file outside plugins/<name>/",
            "move the change to its own pull request for the maintainers",
        ),
        Rule(
            "PX141",
            "a pull request touches more than one plugin",
            "open one pull request per plugin",
        ),
    )
}


class GateError(PlugindexError):
    """The gate cannot run (not a git repository, unknown base ref)."""


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
    for change in result.changes:
        if change.path.startswith(prefix):
            name = change.path[len(prefix) :].split("/", 1)[0]
            touched.setdefault(name, []).append(change)
        else:
            result.problems.append(_scope_problem(git.root, change))
    result.plugins = sorted(touched)
    if len(touched) > 1:
        for name in result.plugins:
            first = touched[name][0]
            result.problems.append(
                Problem(
                    _shown(git.root, first.path),
                    None,
                    "",
                    f"this pull request touches {len(touched)} plugins "
                    f"({', '.join(result.plugins)}); expected one",
                    rule="PX141",
                )
            )
    if not touched:
        return result
    registry, _, problems = load_registry(index)
    if registry is None:
        result.problems.extend(problems)
        return result
    for name in result.plugins:
        check = _PluginCheck(index, registry, git, base_commit, index_rel, name, touched[name])
        result.problems.extend(check.run(author=author, fetch=fetch, published=published))
        result.versions_added.extend(check.added_versions)
    result.problems.sort(key=Problem.sort_key)
    return result


def _shown(root: Path, path: str) -> Path:
    """Return a repository path as shown to people: relative to where they are."""
    return Path(os.path.relpath(root / path))


def _scope_problem(root: Path, change: Change) -> Problem:
    return Problem(
        _shown(root, change.path),
        None,
        "",
        f"{change.verb} outside plugins/<name>/ (expected a plugin pull request to change "
        f"only its own plugin's folder)",
        rule="PX140",
    )


@dataclass
class _PluginCheck:
    """The gate's rules for one plugin touched by the pull request."""

    index: Path
    registry: RegistryConfig
    git: Git
    base: str  # commit id
    index_rel: str
    name: str
    changes: list[Change]
    problems: list[Problem] = field(default_factory=list)
    added_versions: list[str] = field(default_factory=list)

    def rel(self, repo_path: str) -> str:
        """Return the index-relative form of a repository path."""
        return repo_path if self.index_rel == "." else repo_path[len(self.index_rel) + 1 :]

    def repo_path(self, rel: str) -> str:
        """Return the repository path of an index-relative path."""
        return rel if self.index_rel == "." else f"{self.index_rel}/{rel}"

    def add(self, rel: str, loc: Path_, message: str, rule: str) -> None:
        """Record a problem at field `loc` of the working-tree file `rel`."""
        problem = problem_at(self.index, rel, loc, message) if loc else None
        if problem is None:
            problem = Problem(self.index / rel, None, "", message)
        self.problems.append(dataclasses.replace(problem, rule=rule))

    def run(
        self, *, author: str | None, fetch: bool, published: Fetcher | None = None
    ) -> list[Problem]:
        """Run every rule; return the problems found."""
        folder = f"{PLUGINS_DIR}/{self.name}"
        manifest_rel = f"{folder}/{PLUGIN_FILE}"
        base_files = self.git.list_files(self.base, self.repo_path(folder))
        base_rels = {self.rel(p): blob for p, blob in base_files.items()}
        base_manifest = self._base_model(PluginManifest, base_rels, manifest_rel)
        if base_rels and not (self.index / manifest_rel).is_file():
            self.add(
                manifest_rel,
                (),
                f"{self.name} exists in the base and its plugin.yaml is gone",
                "PX113",
            )
            return self.problems
        foundation = self._foundation(fetch, base_rels)
        new_plugin = base_manifest is None
        if new_plugin:
            self._check_name(manifest_rel)
        current = self._current_model(PluginManifest, manifest_rel)
        if current is None:
            return foundation + self.problems
        owners = base_manifest if base_manifest is not None else current
        allowed = owner_keys(owners.owners, retired=False)
        if author is not None and author not in {o.github for o in owners.owners}:
            self.add(
                manifest_rel,
                ("owners",),
                f"the pull request's author {author!r} is not an owner of {self.name} "
                f"(owners: {', '.join(o.github for o in owners.owners)})",
                "PX102",
            )
        if base_manifest is not None and manifest_fields(base_manifest) != manifest_fields(current):
            self._check_manifest_change(manifest_rel, base_manifest, current, allowed)
        self._check_versions(base_rels, allowed)
        if published is not None:
            self._check_published(published, manifest_rel, new_plugin=new_plugin)
        # The gate's own finding on a signature says more than the build's generic one.
        judged = {(p.file, p.field) for p in self.problems}
        foundation = [p for p in foundation if (p.file, p.field) not in judged]
        return foundation + self.problems

    # --- the foundation rules, on this plugin and what it depends on -----------------

    def _foundation(self, fetch: bool, base_rels: Mapping[str, str]) -> list[Problem]:
        """Run the format rules on this plugin, with the plugins it depends on loaded.

        The base is valid (its own checks passed), so only this plugin's dependencies
        matter: direct ones for satisfiability, and the transitive closure only when a
        new version adds a dependency none of the plugin's merged versions had (a
        cycle needs such a new edge; a brand-new plugin has no dependents at all).
        """
        folders = {self.name}
        analysis = analyse(self.index, folders=folders, focus={self.name})
        facts = analysis.facts.get(self.name)
        if facts is not None:
            folders |= self._existing(facts.depends_on)
            analysis = analyse(self.index, folders=folders, focus={self.name})
            if set(facts.depends_on) - self._base_dependencies(base_rels):
                while True:
                    wanted = {dep for f in analysis.facts.values() for dep in f.depends_on}
                    grown = folders | self._existing(wanted)
                    if grown == folders:
                        break
                    folders = grown
                    analysis = analyse(self.index, folders=folders, focus={self.name})
        own = self.index / PLUGINS_DIR / self.name
        problems = [p for p in analysis.problems if own in Path(p.file).parents]
        added = {self.rel(c.path) for c in self.changes if c.status != "D"}
        self.added_versions = sorted(
            r for r in added if r.startswith(f"{PLUGINS_DIR}/{self.name}/{VERSIONS_DIR}/")
        )
        if fetch and facts is not None:
            for version in facts.versions():
                if version.file in added and version.artifact.local is None:
                    problems.extend(check_download(self.index, version, self.registry.policy))
        return problems

    def _existing(self, names: Iterable[str]) -> set[str]:
        return {n for n in names if (self.index / PLUGINS_DIR / n).is_dir()}

    def _base_dependencies(self, base_rels: Mapping[str, str]) -> set[str]:
        """Return every plugin some merged version of this plugin depends on."""
        prefix = f"{PLUGINS_DIR}/{self.name}/{VERSIONS_DIR}/"
        names: set[str] = set()
        for rel in base_rels:
            if rel.startswith(prefix) and rel.endswith(".yaml"):
                base = self._base_model(VersionManifest, base_rels, rel)
                if base is not None:
                    names.update(base.dependencies)
        return names

    # --- plugin.yaml ----------------------------------------------------------------

    def _check_name(self, manifest_rel: str) -> None:
        policy = self.registry.policy
        if self.name in policy.approved_similar_names:
            return
        existing = self.git.list_dirs(self.base, self.repo_path(PLUGINS_DIR))
        found = resembled_name(self.name, existing)
        if found is None:
            return
        other, how = found
        rule = "PX130" if "normalisation" in how else "PX131"
        self.add(
            manifest_rel,
            ("name",),
            f"{self.name!r} resembles the existing plugin {other!r}: {how}",
            rule,
        )

    def _check_manifest_change(
        self,
        rel: str,
        base: PluginManifest,
        current: PluginManifest,
        allowed: Mapping[str, str],
    ) -> None:
        if current.revision != base.revision + 1:
            self.add(
                rel,
                ("revision",),
                f"plugin.yaml changed, so its revision must be {base.revision + 1} "
                f"(the base's plus one); got {current.revision}",
                "PX105",
            )
        statement = statements.manifest_statement(self.registry.name, manifest_fields(current))
        self._judge(rel, ("signature",), current.signature, statement, allowed, "change")

    # --- version files ----------------------------------------------------------------

    def _check_versions(self, base_rels: Mapping[str, str], allowed: Mapping[str, str]) -> None:
        version_prefix = f"{PLUGINS_DIR}/{self.name}/{VERSIONS_DIR}/"
        used = self._versions_ever_used(version_prefix, base_rels)
        for change in self.changes:
            rel = self.rel(change.path)
            if not rel.startswith(version_prefix) or not rel.endswith(".yaml"):
                continue
            if change.status == "D" and rel in base_rels:
                self.problems.append(
                    Problem(
                        self.index / rel,
                        None,
                        "",
                        f"version file deleted ({rel.rsplit('/', 1)[-1]} was merged "
                        f"and is immutable)",
                        rule="PX112",
                    )
                )
                continue
            current = self._current_model(VersionManifest, rel)
            if current is None:
                continue
            base = self._base_model(VersionManifest, base_rels, rel)
            if base is None:
                self._check_added(rel, current, used, allowed)
            else:
                self._check_modified(rel, base, current, allowed)

    def _versions_ever_used(
        self, version_prefix: str, base_rels: Mapping[str, str]
    ) -> dict[tuple[object, ...], str]:
        """Return every version the plugin has had in the base's history, by precedence."""
        names = {r.rsplit("/", 1)[-1] for r in base_rels if r.startswith(version_prefix)}
        names |= {
            p.rsplit("/", 1)[-1]
            for p in self.git.deleted_paths(self.base, self.repo_path(version_prefix))
        }
        used: dict[tuple[object, ...], str] = {}
        for file_name in names:
            version = file_name.removesuffix(".yaml")
            try:
                used[key_of(version)] = version
            except RequirementError:
                continue
        return used

    def _check_added(
        self,
        rel: str,
        current: VersionManifest,
        used: Mapping[tuple[object, ...], str],
        allowed: Mapping[str, str],
    ) -> None:
        try:
            previous = used.get(key_of(current.version))
        except RequirementError:
            previous = None
        if previous is not None:
            self.add(
                rel,
                ("version",),
                f"version {current.version} re-uses {previous}, which this plugin "
                f"published before (in the base or its history)",
                "PX114",
            )
        statement = statements.release_statement(
            self.registry.name, self.name, version_entry(current)
        )
        self._judge(rel, ("signature",), current.signature, statement, allowed, "release")
        for job in yank_jobs(self.registry.name, self.name, rel, current):
            check = verify_statement(job.signature, job.statement, allowed)
            self._report_check(rel, job.loc, check, job.what)

    def _check_modified(
        self,
        rel: str,
        base: VersionManifest,
        current: VersionManifest,
        allowed: Mapping[str, str],
    ) -> None:
        yank_fields = {"yanked", "unyanked"}
        before = base.model_dump(exclude=yank_fields)
        after = current.model_dump(exclude=yank_fields)
        if before != after:
            for key in ("url", "sha256", "size"):
                if before["artifact"][key] != after["artifact"][key]:
                    self.add(
                        rel,
                        ("artifact", key),
                        f"changed in a merged version (was {before['artifact'][key]!r}, "
                        f"now {after['artifact'][key]!r})",
                        "PX111",
                    )
            changed = sorted(k for k in after if before.get(k) != after[k] and k != "artifact")
            if changed or before["artifact"]["filename"] != after["artifact"]["filename"]:
                fields = changed or ["artifact"]
                self.add(
                    rel,
                    (fields[0],),
                    f"changed in a merged version ({', '.join(fields)}); only an owner-signed "
                    f"`yanked:` or `unyanked:` may change",
                    "PX110",
                )
        if (base.yanked, base.unyanked) == (current.yanked, current.unyanked):
            return
        last_serial = max(
            [s.serial for s in (base.yanked, base.unyanked) if s is not None], default=0
        )
        state = current.yanked or current.unyanked
        if state is None:
            self.add(
                rel,
                ("version",),
                "the yank was removed without an `unyanked:` section signed by an owner",
                "PX121",
            )
            return
        if current.yanked is not None and base.yanked is None:
            self._check_dependents(rel, current.version)
        section = "yanked" if current.yanked is not None else "unyanked"
        if state.serial <= last_serial:
            self.add(
                rel,
                (section, "serial"),
                f"expected a serial above the base's last yank or un-yank "
                f"({last_serial}), got {state.serial}",
                "PX120",
            )
        for job in yank_jobs(self.registry.name, self.name, rel, current):
            if job.loc[0] == section:
                check = verify_statement(job.signature, job.statement, allowed)
                self._report_check(rel, job.loc, check, job.what)

    def _check_published(self, fetcher: Fetcher, manifest_rel: str, *, new_plugin: bool) -> None:
        """Compare the plugin with its document in the published registry, if it has one."""
        path = layout.index_path(self.name)
        try:
            document = json.loads(fetcher.document(path))
            versions = {v["version"]: v["artifact"] for v in document["versions"]}
        except NotFoundError:
            return  # never published: git is the only record
        except (FetchError, ValueError, KeyError, TypeError) as e:
            raise GateError(
                f"{fetcher.url_of(path)}: cannot read the published document ({e})"
            ) from e
        if new_plugin:
            self.add(
                manifest_rel,
                ("name",),
                f"{self.name} is not in the base, but the registry has published it "
                f"({len(versions)} versions); a name is never given to someone else",
                "PX115",
            )
            return
        prefix = f"{PLUGINS_DIR}/{self.name}/{VERSIONS_DIR}/"
        for version, artifact in sorted(versions.items()):
            rel = f"{prefix}{version}.yaml"
            current = self._current_model(VersionManifest, rel)
            if current is None:
                if not (self.index / rel).is_file():
                    self.add(
                        manifest_rel,
                        (),
                        f"version {version} is published but {rel} is missing",
                        "PX115",
                    )
                continue
            for key in ("url", "sha256", "size"):
                mine = getattr(current.artifact, key)
                if mine != artifact.get(key):
                    self.add(
                        rel,
                        ("artifact", key),
                        f"differs from the published version (published "
                        f"{artifact.get(key)!r}, here {mine!r})",
                        "PX115",
                    )

    def _check_dependents(self, rel: str, version: str) -> None:
        """Refuse a yank that leaves a plugin depending on this one with nothing it accepts."""
        dependents = self.git.files_mentioning(
            f"^  {self.name}:", self.repo_path(f"{PLUGINS_DIR}/*/{VERSIONS_DIR}/*.yaml")
        )
        folders = {
            self.rel(path).split("/")[1]
            for path in dependents
            if self.rel(path).split("/")[1] != self.name
        }
        if not folders:
            return
        analysis = analyse(self.index, folders=folders | {self.name}, focus=folders)
        field = f"dependencies.{self.name}.version"
        for problem in analysis.problems:
            if problem.field == field and "no non-yanked version" in problem.message:
                self.add(
                    rel,
                    ("yanked",),
                    f"yanking {version} leaves {problem.location()} with no version of "
                    f"{self.name} it accepts; release a fixed version first",
                    "PX122",
                )

    # --- signatures ---------------------------------------------------------------------

    def _judge(  # noqa: PLR0917 - a private helper; each call reads in order
        self,
        rel: str,
        loc: Path_,
        signature: Signature | None,
        statement: bytes,
        allowed: Mapping[str, str],
        what: str,
    ) -> None:
        block = signature.model_dump() if signature is not None else None
        check = verify_statement(block, statement, allowed)
        self._report_check(rel, loc, check, what)

    def _report_check(self, rel: str, loc: Path_, check: Check, what: str) -> None:
        if check.valid:
            return
        if check.verdict is Verdict.MISSING:
            self.add(rel, loc, f"the {what} is not signed", "PX104")
        elif check.verdict is Verdict.UNKNOWN_KEY:
            self.add(
                rel,
                loc,
                f"the {what} is signed with a key that is not an active key of an owner "
                f"of {self.name} in the base ({self._signature_key_id(rel, loc)})",
                "PX101",
            )
        else:
            hint = self._copied_from(rel, loc)
            self.add(
                rel,
                loc,
                f"the {what} signature does not verify over this file's statement{hint}",
                "PX103",
            )

    def _signature_key_id(self, rel: str, loc: Path_) -> str:
        value = self._signature_at(self.index / rel, loc)
        return f"key id {value[0]}" if value else "unknown key id"

    def _signature_at(self, path: Path, loc: Path_) -> tuple[str, str] | None:
        """Return (key_id, value) of the signature at `loc` of a version or plugin file."""
        model = VersionManifest if f"/{VERSIONS_DIR}/" in path.as_posix() else PluginManifest
        try:
            parsed = parse_model(model, path.read_bytes(), path.parent, path.name)
        except (OSError, SourceError, SchemaProblemsError):
            return None
        node: object = parsed
        for part in loc:
            node = getattr(node, str(part), None)
        if isinstance(node, Signature):
            return node.key_id, node.value
        return None

    def _copied_from(self, rel: str, loc: Path_) -> str:
        """Name the other statement a signature was taken from, when it was."""
        mine = self._signature_at(self.index / rel, loc)
        if mine is None:
            return ""
        folder = self.index / PLUGINS_DIR / self.name
        candidates = [folder / PLUGIN_FILE, *sorted((folder / VERSIONS_DIR).glob("*.yaml"))]
        for path in candidates:
            for other_loc, kind in _SIGNATURE_PLACES:
                if path == self.index / rel and other_loc == loc:
                    continue
                theirs = self._signature_at(path, other_loc)
                if theirs is not None and theirs[1] == mine[1]:
                    what = "plugin.yaml" if path.name == PLUGIN_FILE else kind
                    return f" (it is the {what} signature of {path.name}, copied)"
        return ""

    # --- reading models --------------------------------------------------------------

    def _base_model(self, model: type[M], base_rels: Mapping[str, str], rel: str) -> M | None:
        blob = base_rels.get(rel)
        if blob is None:
            return None
        data = self.git.read_blob(blob)
        try:
            return parse_model(model, data, Path(f"{self.base[:12]}:{self.index_rel}"), rel)
        except (SourceError, SchemaProblemsError):
            log.warning("%s in the base does not parse; treating it as absent", rel)
            return None

    def _current_model(self, model: type[M], rel: str) -> M | None:
        try:
            return parse_model(model, (self.index / rel).read_bytes(), self.index, rel)
        except (OSError, SourceError, SchemaProblemsError):
            return None  # the foundation rules report why


_SIGNATURE_PLACES: tuple[tuple[Path_, str], ...] = (
    (("signature",), "release"),
    (("yanked", "signature"), "yank"),
    (("unyanked", "signature"), "un-yank"),
)
