"""Hold back: the build of main never fails because of one plugin.

What cannot be built is held back, and everything else is built and published:

- a new version that fails (it does not parse, its artifact no longer downloads or
  differs, nothing satisfies a dependency of it, its release date is in the future)
  is left out, and the rest of its plugin is built;
- a plugin whose plugin.yaml fails, or one of whose published versions does, keeps
  its last published state: the per-plugin document of the previous build (from the
  output folder, or from the live registry with `build --live`), with its artifacts;
  a plugin that was never published is left out;
- a stray file in a plugin folder is left out; an entry under plugins/ that is no
  plugin folder (a file, a link, a hidden folder) is skipped.

The rules two pull requests can break together, each passing against the same base,
are checked again on the whole merged index, and the change that breaks them is held
back: a yank (or a left-out version) that leaves a published dependent with nothing
it accepts (PX122), a new name that resembles another one (PX131, both when two are
new at once). Each decision is a `HeldBack`, reported in status.json, in the build's
summary and as an annotation. Problems outside plugins/ (registry.yaml, the index
root) still stop the build: they are the maintainers' own.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

from builder.common import layout
from builder.common.errors import Problem
from builder.common.files import sha256_of_file
from builder.format.paths import PLUGIN_FILE, PLUGINS_DIR
from builder.index.analyse import Analysis, analyse
from builder.index.cache import BuildCache
from builder.index.dependencies import DependencyFinding, dependency_findings
from builder.index.facts import PluginFacts
from builder.index.held import (
    FILE_LEFT_OUT,
    KEPT,
    LEFT_OUT,
    VERSION_LEFT_OUT,
    HeldBack,
    entry_of,
    is_version_file,
    rel_of,
)
from builder.index.output import Planned
from builder.index.previous import PreviousStates
from builder.index.rules import check_release_dates, problem_at
from builder.index.similar_names import similar_new_names

log = logging.getLogger(__name__)

# How far a build trusts release dates past its source commit's time (time zones).
DATE_SLACK = datetime.timedelta(days=1)


@dataclass
class Settler:
    """Settles an analysed index into what can be built, holding back the rest.

    Works on the analysis in place: its facts, documents and cache end up holding
    exactly what the build writes and remembers.
    """

    analysis: Analysis
    previous: PreviousStates
    old_cache: BuildCache
    held: list[HeldBack] = field(default_factory=list)
    kept: set[str] = field(default_factory=set)  # plugins at their previous state
    dropped: set[str] = field(default_factory=set)  # plugins left out entirely
    # Index-relative files left out, by plugin: a plugin checked again is given its
    # own (thousands of versions held back made each check look through all of them).
    excluded: dict[str, set[str]] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)  # plugins changed since the last check

    @property
    def index(self) -> Path:
        """Return the index folder."""
        return self.analysis.index

    @property
    def facts(self) -> dict[str, PluginFacts]:
        """Return the facts of every plugin the build will publish, by name."""
        return self.analysis.facts

    # --- decisions ---------------------------------------------------------------------

    def is_new(self, name: str, rel: str) -> bool:
        """Tell whether a version file is not part of the plugin's published state."""
        state = self.previous.state(name)
        return state is None or all(v.file != rel for v in state[1].versions())

    def revert(self, name: str, rel: str, problem: Problem) -> None:
        """Put a plugin back to its last published state, or leave it out."""
        self.touched.add(name)
        self.analysis.cache.plugins.pop(name, None)  # re-checked by the next build
        self.analysis.documents.pop(name, None)
        state = self.previous.state(name) if name not in self.kept else None
        if state is not None:
            data, facts = state
            self.facts[name] = facts
            self.analysis.documents[name] = data
            self.kept.add(name)
            outcome = KEPT
        else:
            self.facts.pop(name, None)
            self.kept.discard(name)
            self.dropped.add(name)
            outcome = LEFT_OUT
        self.held.append(HeldBack(name, outcome, rel, problem))

    def exclude(self, name: str, rel: str, problem: Problem) -> None:
        """Leave out one file of a plugin (a version or a stray file)."""
        left_out = self.excluded.setdefault(name, set())
        if rel in left_out:
            return
        left_out.add(rel)
        outcome = VERSION_LEFT_OUT if is_version_file(rel) else FILE_LEFT_OUT
        self.held.append(HeldBack(name, outcome, rel, problem))

    # --- a plugin's own problems ---------------------------------------------------------

    def settle_own(self, problems: Iterable[Problem]) -> None:
        """Hold back what each plugin's own problems are in; build the rest of it again."""
        pending = list(problems)
        while pending:
            by_entry: dict[str, list[tuple[str, Problem]]] = {}
            for problem in sorted(pending, key=Problem.sort_key):
                entry, rel = entry_of(self.index, problem), rel_of(self.index, problem)
                assert entry is not None and rel is not None, problem  # the caller's check
                by_entry.setdefault(entry, []).append((rel, problem))
            again = set()
            for entry, found in sorted(by_entry.items()):
                if self._settle_entry(entry, found):
                    again.add(entry)
            pending = [p for name in sorted(again) for p in self._reanalyse(name)]

    def _settle_entry(self, name: str, found: list[tuple[str, Problem]]) -> bool:
        """Decide for one plugin; return whether it must be built again without files."""
        if name in self.dropped:
            return False
        whole = f"{PLUGINS_DIR}/{name}"
        left_out = self.excluded.get(name, set())
        stuck = all(rel in left_out for rel, _ in found)  # leaving out did not help
        for rel, problem in found:
            if (
                stuck
                or name in self.kept
                or rel in (whole, f"{whole}/{PLUGIN_FILE}")
                or (is_version_file(rel) and not self.is_new(name, rel))
            ):
                self.revert(name, rel, problem)
                outcome = self.held[-1].outcome
                # Every other reason too: the maintainers fix them all at once.
                self.held.extend(
                    HeldBack(name, outcome, other_rel, other)
                    for other_rel, other in found
                    if other is not problem
                )
                return False
        for rel, problem in found:
            self.exclude(name, rel, problem)
        return True

    def _reanalyse(self, name: str) -> list[Problem]:
        """Build one plugin again without its excluded files; return its problems."""
        self.touched.add(name)
        sub = analyse(
            self.index,
            self.old_cache,
            dirty=frozenset({name}),
            folders={name},
            exclude=frozenset(self.excluded.get(name, ())),
            dependencies=False,
        )
        self.facts.pop(name, None)
        self.analysis.documents.pop(name, None)
        self.analysis.cache.plugins.pop(name, None)
        if sub.problems or name not in sub.facts:
            return sub.problems or [
                Problem(self.index / PLUGINS_DIR / name, None, "", "nothing left to build")
            ]
        self.facts[name] = sub.facts[name]
        self.analysis.documents[name] = sub.documents[name]
        # No cache record: built without some of its files, it is checked again next time.
        return []

    # --- artifacts ---------------------------------------------------------------------

    def settle_downloads(self, failures: Mapping[str, list[Problem]]) -> bool:
        """Hold back the versions whose remote artifact did not download or match."""
        if not failures:
            return False
        problems = []
        for _, plugin in sorted(self.facts.items()):
            for version in plugin.versions():
                artifact = version.artifact
                path = layout.artifact_path(artifact.sha256, artifact.filename)
                if artifact.local is not None or path not in failures:
                    continue
                listed = failures[path]
                own = [p for p in listed if rel_of(self.index, p) == version.file]
                problems.extend(
                    own
                    or [
                        problem_at(
                            self.index,
                            version.file,
                            ("artifact", "url"),
                            f"the same artifact as {listed[0].location()}, which could not "
                            f"be mirrored",
                        )
                    ]
                )
        self.settle_own(problems)
        return True

    def kept_artifacts(
        self,
        known: Mapping[str, str],
        on_disk: Mapping[str, int],
        live: Mapping[str, str] | None,
        carried: AbstractSet[str] = frozenset(),
    ) -> tuple[dict[str, Planned], list[str]]:
        """Plan the repository-local artifacts of each plugin; return them and the borrowed.

        A plugin built now copies its artifacts from the index (checked by its rules).
        One kept at its last published state keeps what was published: from the
        output, the live registry, or the index while its bytes are the same; when
        none has them, the plugin is left out. The plugins `carried` over as the last
        build published them are passed by (see `builder.index.carry`).
        """
        plan: dict[str, Planned] = {}
        borrowed: list[str] = []
        # Once per local artifact planned (100,000 at 10,000 plugins, cold): bound once.
        path_of, recorded, found = layout.artifact_path, known.get, on_disk.get
        ahead = self.analysis.staged.get
        for name in sorted(self.facts.keys() - carried):
            artifacts = self.facts[name].local_artifacts
            paths = self.analysis.own_paths(name, (path_of(a[0], a[2]) for a in artifacts))
            for (sha256, size, _, local), path in zip(artifacts, paths, strict=True):
                if recorded(path) == sha256 and found(path) == size:
                    plan[path] = Planned(sha256, size, None)  # in the output already
                elif (written := ahead(path)) == sha256 and name not in self.kept:
                    # Written ahead: the commit moves it (no Path, no second sha256 string)
                    plan[path] = Planned(written, size, None)
                elif name not in self.kept:
                    plan[path] = Planned(sha256, size, self.index / local)
                elif live is not None and live.get(path) == sha256:
                    borrowed.append(path)
                elif _sha256_or_none(self.index / local) == sha256:
                    plan[path] = Planned(sha256, size, self.index / local)
                else:
                    problem = Problem(
                        self.index / PLUGINS_DIR / name,
                        None,
                        "",
                        f"the published artifact {path} is neither in the build, nor "
                        f"live, nor in the index",
                    )
                    self.revert(name, f"{PLUGINS_DIR}/{name}", problem)
                    return self.kept_artifacts(known, on_disk, live, carried)
        return plan, borrowed

    # --- the rules across plugins ---------------------------------------------------------

    def settle_across(self, only: Iterable[str] | None, latest: str | None) -> bool:
        """Check dependencies and release dates on what would be built; hold back breakers.

        Returns whether anything was held back (the caller then checks again, with
        `only` the plugins `touched` since, and their dependents). `latest` is the
        latest release date accepted (None: not checked).
        """
        before = len(self.held)
        # The last build's settled facts had no cycle, nor has any round of this one
        # left one but among the plugins `touched` since (`only`).
        for finding in dependency_findings(self.index, self.facts, only, acyclic_before=True):
            self._settle_finding(finding)
        if latest is not None:
            self._settle_dates(latest)
        return len(self.held) > before

    def settle_names(
        self, approved: Iterable[str], *, published: AbstractSet[str] = frozenset()
    ) -> bool:
        """Leave out new names that resemble another name, published or new (PX130/PX131).

        `published` are names known to have been published before (the plugins of
        the last build, when `previous` is its output): only the others are looked up.
        """
        unknown = self.facts.keys() - published
        if all(self.previous.published(name) for name in unknown):
            return False  # no new name (the facts' names are valid): nothing to compare
        found = similar_new_names(self.index, self.facts, self.previous.names, approved)
        for name, problem in found:
            self.revert(name, f"{PLUGINS_DIR}/{name}/{PLUGIN_FILE}", problem)
        return bool(found)

    def _settle_finding(self, finding: DependencyFinding) -> None:
        dependent, target = finding.dependent, finding.target
        if self.touched & {dependent, target}:
            return  # already acted on this round: checked again in the next
        rel = rel_of(self.index, finding.problem)
        assert rel is not None
        changed_target = (
            target in self.facts
            and target not in self.kept
            and self.previous.state(target) is not None
            and self.facts[target].doc_sha256 != self.previous.sha256(target)
        )
        if dependent in self.kept or dependent not in self.facts:
            if changed_target:  # the target's change broke a published state
                self.revert(target, *self._blame(target, finding))
            return
        if self.is_new(dependent, rel):
            self.exclude(dependent, rel, finding.problem)
            problems = self._reanalyse(dependent)
            if problems:
                self.settle_own(problems)
        elif changed_target:
            self.revert(target, *self._blame(target, finding))
        else:
            self.revert(dependent, rel, finding.problem)

    def _blame(self, target: str, finding: DependencyFinding) -> tuple[str, Problem]:
        """Return where and why a target's change is held back: its new yank (PX122)."""
        state = self.previous.state(target)
        assert state is not None
        was_yanked = {v.version for v in state[1].versions() if v.yanked}
        yanked = [
            v for v in self.facts[target].versions() if v.yanked and v.version not in was_yanked
        ]
        where = finding.problem.location()
        if not yanked:
            problem = dataclasses.replace(
                finding.problem,
                message=f"{finding.problem.message} (after a change of {target})",
            )
            rel = rel_of(self.index, problem)
            assert rel is not None
            return rel, problem
        version = yanked[-1]
        problem = problem_at(
            self.index,
            version.file,
            ("yanked",),
            f"yanking {version.version} leaves {where} with no version of {target} it "
            f"accepts (two changes merged apart broke it together); release a fixed "
            f"version first",
        )
        return version.file, dataclasses.replace(problem, rule="PX122")

    def _settle_dates(self, latest: str) -> None:
        """Leave out new versions released after `latest` (old ones were published so)."""
        late = sorted(
            (name, row[1])
            for name, plugin in self.facts.items()
            if name not in self.kept and plugin.released[1] > latest
            for row in plugin.version_rows
            if row[2] > latest
        )
        for name, rel in late:
            if name in self.touched or not self.is_new(name, rel):
                continue
            version = next(v for v in self.facts[name].versions() if v.file == rel)
            why = "the source commit's date plus a day"
            self.exclude(name, rel, check_release_dates(self.index, [version], latest, why)[0])
            reasons = self._reanalyse(name)
            if reasons:
                self.settle_own(reasons)


def latest_release_date_now() -> str:
    """Return the latest release date accepted today: the clock's date (UTC) plus a day.

    For checks of what is not merged yet (the gate, `validate`); the build never reads
    the clock (see `latest_release_date`).
    """
    return (datetime.datetime.now(datetime.UTC) + DATE_SLACK).date().isoformat()


def latest_release_date(timestamp: str | None) -> str | None:
    """Return the latest release date a build accepts: its source's date plus a day."""
    if timestamp is None:
        return None
    moment = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")  # UTC, from the source
    return (moment + DATE_SLACK).date().isoformat()


def _sha256_or_none(path: Path) -> str | None:
    try:
        return sha256_of_file(path)[0]
    except OSError:
        return None
