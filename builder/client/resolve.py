"""Resolve: pick one version of every plugin a request needs. Pure, no I/O.

A depth-first search with backtracking, as Cargo's resolver: take the newest version
that meets every requirement seen so far (an installed version first, unless it is
being upgraded), add its dependencies' requirements, go on; on a dead end try the
next version. When nothing works, the first dead end is explained: who wants what
of which plugin, and which versions exist.

Documents arrive lazily: when the search needs plugins it has no document for, it
raises `NeedDocuments` with every such name of the current frontier, the caller
fetches them (in parallel) and calls again. An installed plugin that still fits
needs no document at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from builder.common.errors import PlugindexError
from builder.common.exits import ExitCode
from builder.common.limits import DEFAULT_LIMITS, Limits
from builder.format.requirements import (
    RELEASE,
    Requirement,
    RequirementError,
    VersionKey,
    key_of,
    parse_requirement,
)

_SHOWN_VERSIONS = 12  # versions listed in a conflict explanation
INSTALLED_KINDS = frozenset({"runtime"})  # plus "optional" when asked


class ResolutionError(PlugindexError):
    """No set of versions satisfies every requirement; the message says why."""

    exit_code = ExitCode.UNSATISFIABLE


class NeedDocumentsError(Exception):
    """The search needs the documents of these plugins."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)
        super().__init__(", ".join(sorted(self.names)))


@dataclass(frozen=True)
class Dependency:
    name: str
    req: str
    kind: str = "runtime"


@dataclass(frozen=True)
class Candidate:
    """One version of a plugin, as the resolver sees it."""

    name: str
    version: str
    key: VersionKey
    dependencies: tuple[Dependency, ...] = ()
    host: str | None = None  # requirement on the host's version
    yanked: str | None = None  # the reason, when yanked

    @classmethod
    def of(
        cls, name: str, version: str, deps: Iterable[Dependency] = (), **kw: str | None
    ) -> Candidate:
        """Return a candidate, computing its sort key from `version`."""
        return cls(name, version, key_of(version), tuple(deps), **kw)


@dataclass(frozen=True)
class Root:
    """What the user wants: a plugin and a requirement (None: keep whatever fits)."""

    name: str
    requirement: str | None = None
    who: str = "you"


@dataclass(frozen=True)
class Options:
    host: str | None = None  # the host application's version; None: do not check
    optional: bool = False  # install optional dependencies too
    prerelease: bool = False  # accept prereleases without a requirement naming them


@dataclass(frozen=True)
class _Want:
    requirement: Requirement
    who: str
    by_user: bool


class _Found(NamedTuple):
    """A complete selection, and every requirement that led to it."""

    selected: dict[str, Candidate]
    wants: dict[str, tuple[_Want, ...]]


class _Extended(NamedTuple):
    """The requirements and the queue once a candidate's dependencies are added."""

    wants: dict[str, tuple[_Want, ...]]
    queue: tuple[str, ...]


class Want(NamedTuple):
    """Who asked for a plugin, and with which requirement (for explanations)."""

    who: str
    requirement: str


@dataclass
class Resolution:
    selected: dict[str, Candidate]
    wanted_by: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    wants: dict[str, list[Want]] = field(default_factory=dict)


def _exact(requirement: Requirement, key: VersionKey) -> bool:
    """Tell whether `requirement` pins exactly the version with `key` (`=1.2.3`)."""
    return len(requirement.bounds) == 1 and requirement.bounds[0] == (key, True, key, True)


class _Search:
    def __init__(
        self,
        available: Mapping[str, Sequence[Candidate]],
        locked: Mapping[str, Candidate],
        unlock: frozenset[str],
        options: Options,
        max_steps: int,
    ) -> None:
        self.available = available
        self.installed = {n: c.version for n, c in locked.items()}
        self.locked = {n: c for n, c in locked.items() if n not in unlock}
        self.options = options
        self.host = key_of(options.host) if options.host else None
        self.kinds = INSTALLED_KINDS | ({"optional"} if options.optional else set())
        self.steps = 0
        self.max_steps = max_steps  # candidate versions tried before giving up
        self.first_conflict: str | None = None
        self.incomplete: set[str] = set()  # names tried with their installed version only

    # --- what fits ----------------------------------------------------------------

    def host_fits(self, candidate: Candidate) -> bool:
        if self.host is None or candidate.host is None:
            return True
        try:
            return parse_requirement(candidate.host).matches(self.host, allow_prerelease=True)
        except RequirementError:
            return False

    def is_installed(self, candidate: Candidate) -> bool:
        """Tell whether this version is the installed one (kept or being upgraded)."""
        return self.installed.get(candidate.name) == candidate.version

    def fits(self, candidate: Candidate, wants: Sequence[_Want]) -> bool:
        for want in wants:
            if not want.requirement.matches(
                candidate.key, allow_prerelease=self.options.prerelease
            ):
                return False
        # An installed version, kept or being upgraded (then behind any newer one that
        # fits), is exempt from the prerelease and yank rules: yanked or a prerelease
        # since, it stays while it fits, the host included (docs: "stays while it fits").
        installed = self.is_installed(candidate)
        if (
            not installed
            and not wants
            and candidate.key[3] != RELEASE
            and not self.options.prerelease
        ):
            return False  # the prerelease rule, when nobody named a requirement
        if (
            not installed
            and candidate.yanked is not None
            and not any(w.by_user and _exact(w.requirement, candidate.key) for w in wants)
        ):
            return False
        return self.host_fits(candidate)

    def candidates(
        self, name: str, wants: Sequence[_Want], frontier: Iterable[str]
    ) -> list[Candidate]:
        lock = self.locked.get(name)
        found = [lock] if lock is not None and self.fits(lock, wants) else []
        if name in self.available:
            found += [
                c
                for c in sorted(self.available[name], key=lambda c: c.key, reverse=True)
                if (lock is None or c.version != lock.version) and self.fits(c, wants)
            ]
        elif not found:
            # Not installed, or the installed version no longer fits: other versions
            # may, so fetch the document now rather than settle for older parents.
            others = {n for n in frontier if n not in self.available and n not in self.locked}
            raise NeedDocumentsError({name, *others})
        else:
            self.incomplete.add(name)
        return found

    # --- the search ---------------------------------------------------------------

    def search(
        self,
        selected: dict[str, Candidate],
        wants: dict[str, tuple[_Want, ...]],
        queue: tuple[str, ...],
    ) -> _Found | None:
        while queue and queue[0] in selected:
            queue = queue[1:]
        if not queue:
            return _Found(selected, wants)
        name, rest = queue[0], queue[1:]
        candidates = self.candidates(name, wants.get(name, ()), rest)
        if not candidates:
            self.conflict(name, wants.get(name, ()))
        for candidate in candidates:
            self.steps += 1
            if self.steps > self.max_steps:
                raise ResolutionError(
                    f"gave up resolving after trying {self.max_steps} versions; "
                    "ask for narrower requirements (NAME@REQUIREMENT)"
                )
            extended = self.extend(candidate, selected, wants, rest)
            if extended is None:
                continue
            found = self.search({**selected, name: candidate}, extended.wants, extended.queue)
            if found is not None:
                return found
        return None

    def extend(
        self,
        candidate: Candidate,
        selected: Mapping[str, Candidate],
        wants: Mapping[str, tuple[_Want, ...]],
        queue: tuple[str, ...],
    ) -> _Extended | None:
        new_wants = dict(wants)
        new_queue = list(queue)
        who = f"{candidate.name} {candidate.version}"
        for dep in candidate.dependencies:
            if dep.kind not in self.kinds:
                continue
            try:
                requirement = parse_requirement(dep.req)
            except RequirementError as e:
                raise ResolutionError(f"{who}: dependency {dep.name}: {e}") from None
            new_wants[dep.name] = (*new_wants.get(dep.name, ()), _Want(requirement, who, False))
            chosen = selected.get(dep.name)
            if chosen is not None:
                if not self.fits(chosen, new_wants[dep.name]):
                    self.conflict(dep.name, new_wants[dep.name])
                    return None
            elif dep.name not in new_queue:
                new_queue.append(dep.name)
        return _Extended(new_wants, tuple(new_queue))

    # --- explanations -------------------------------------------------------------

    def conflict(self, name: str, wants: Sequence[_Want]) -> None:
        if self.first_conflict is not None:
            return
        asks = "; ".join(
            f"{w.who} {'want' if w.who == 'you' else 'wants'} {w.requirement}" for w in wants
        )
        known = {c.version: c for c in self.available.get(name, ())}
        if name in self.locked:
            known.setdefault(self.locked[name].version, self.locked[name])
        shown = sorted(known.values(), key=lambda c: c.key, reverse=True)
        notes = ", ".join(self.describe(c) for c in shown[:_SHOWN_VERSIONS])
        if len(shown) > _SHOWN_VERSIONS:
            notes += f", and {len(shown) - _SHOWN_VERSIONS} older"
        hint = ""
        if any("-" in c.version for c in shown) and not self.options.prerelease:
            hint = (
                "; prereleases are chosen only when a requirement names one "
                "(e.g. NAME@^2.0.0-rc.1) or with --pre"
            )
        self.first_conflict = (
            f"cannot resolve {name}: no version satisfies every requirement "
            f"({asks}); available: {notes or 'none'}{hint}"
        )

    def describe(self, candidate: Candidate) -> str:
        notes = []
        if candidate.yanked is not None:
            notes.append("yanked")
        if not self.host_fits(candidate):
            notes.append(f"needs host {candidate.host}, this host is {self.options.host}")
        if self.is_installed(candidate):
            notes.append("installed")
        return candidate.version + (f" ({'; '.join(notes)})" if notes else "")


def resolve(
    roots: Sequence[Root],
    available: Mapping[str, Sequence[Candidate]],
    *,
    locked: Mapping[str, Candidate] | None = None,
    unlock: Iterable[str] = (),
    options: Options | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Resolution:
    """Pick one version of every plugin the roots need, or explain why none fits.

    `available` holds the versions of each plugin whose document was fetched;
    `locked` the installed versions (kept while they fit, unless named in `unlock`).
    Raises NeedDocumentsError when a document is needed, ResolutionError on a conflict
    (or after trying `limits.resolve_steps` candidate versions).
    """
    search = _Search(
        available, locked or {}, frozenset(unlock), options or Options(), limits.resolve_steps
    )
    wants: dict[str, tuple[_Want, ...]] = {}
    queue: list[str] = []
    for root in roots:
        if root.requirement is not None:
            try:
                requirement = parse_requirement(root.requirement)
            except RequirementError as e:
                raise ResolutionError(f"{root.name}: {e}") from None
            wants[root.name] = (*wants.get(root.name, ()), _Want(requirement, root.who, True))
        if root.name not in queue:
            queue.append(root.name)
    found = search.search({}, wants, tuple(queue))
    if found is None:
        if search.incomplete:
            # An installed version did not fit; look at the plugin's other versions.
            raise NeedDocumentsError(search.incomplete)
        raise ResolutionError(
            search.first_conflict or "no set of versions satisfies every requirement"
        )
    resolution = Resolution(
        found.selected,
        {name: [w.who for w in ws] for name, ws in found.wants.items()},
        wants={
            name: [Want(w.who, str(w.requirement)) for w in ws] for name, ws in found.wants.items()
        },
    )
    for name, candidate in sorted(found.selected.items()):
        if candidate.yanked is None:
            continue
        if not search.is_installed(candidate):
            resolution.warnings.append(
                f"{name} {candidate.version} is yanked ({candidate.yanked}); "
                "installing it only because you asked for exactly this version"
            )
        elif name not in search.locked:  # upgraded, yet nothing newer fits
            resolution.warnings.append(
                f"{name} {candidate.version} (installed) is yanked ({candidate.yanked}); "
                "kept: no newer version fits the requirements" + _asked(found.wants.get(name, ()))
            )
    return resolution


def _asked(wants: Sequence[_Want]) -> str:
    """Return ` (who wants what)` for a message, or nothing when nobody named a requirement."""
    if not wants:
        return ""
    return " (" + "; ".join(f"{w.who} wants {w.requirement}" for w in wants) + ")"
