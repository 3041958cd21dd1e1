"""Dependencies across plugins: they exist, some version satisfies them, no cycles.

Judged from facts alone (no file is read except to place a problem on its line), so
an incremental build checks only the plugins that changed and their dependents.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from pathlib import Path

from builder.common.errors import Problem
from builder.format.requirements import VersionKey, key_of, parse_requirement
from builder.format.strict_yaml import Path_
from builder.index.facts import INSTALL_KINDS, PluginFacts
from builder.index.rules import problem_at


class _Targets:
    """Sorted keys of the installable versions of each plugin, built on demand."""

    def __init__(self, facts: Mapping[str, PluginFacts]) -> None:
        self._facts = facts
        self._keys: dict[str, list[VersionKey]] = {}

    def keys(self, name: str) -> list[VersionKey]:
        if name not in self._keys:
            self._keys[name] = sorted(
                key_of(v.version) for v in self._facts[name].versions() if not v.yanked
            )
        return self._keys[name]


@dataclass(frozen=True)
class DependencyFinding:
    """A cross-plugin problem, with the plugin whose file it is in and the one it names."""

    problem: Problem
    dependent: str  # the plugin whose version file has the problem
    target: str  # the plugin its dependency names


def check_dependencies(
    index: Path,
    facts: Mapping[str, PluginFacts],
    only: Iterable[str] | None = None,
    *,
    unknown_ok: Set[str] = frozenset(),
) -> list[Problem]:
    """Check that dependencies exist, are satisfiable and form no cycle.

    `only` limits the satisfiability check to the versions of those plugins (an
    incremental build passes the changed plugins and their dependents). Dependencies
    on `unknown_ok` plugins (which failed with problems of their own) are skipped.
    """
    return [f.problem for f in dependency_findings(index, facts, only, unknown_ok=unknown_ok)]


def dependency_findings(
    index: Path,
    facts: Mapping[str, PluginFacts],
    only: Iterable[str] | None = None,
    *,
    unknown_ok: Set[str] = frozenset(),
    acyclic_before: bool = False,
) -> list[DependencyFinding]:
    """Return `check_dependencies`' problems with the plugins each one is between.

    `acyclic_before` says that every plugin but `only` needs what it needed in a
    build that had no dependency cycle (an incremental build): a cycle is then
    looked for only where the plugins `only` lead.
    """
    findings: list[DependencyFinding] = []
    targets = _Targets(facts)
    checked = facts.keys() if only is None else only
    for name in sorted(checked):
        for version in facts[name].versions():
            for dep in version.dependencies:
                loc: Path_ = ("dependencies", dep.name, "version")
                if dep.name in unknown_ok:
                    continue
                if dep.name not in facts:
                    problem = problem_at(
                        index,
                        version.file,
                        ("dependencies", dep.name),
                        f"depends on {dep.name!r}, which is not in the index",
                    )
                    findings.append(DependencyFinding(problem, name, dep.name))
                    continue
                requirement = parse_requirement(dep.req)
                keys = targets.keys(dep.name)
                # Versions below the lowest bound can't match: start the scan there.
                low = min((b[0] for b in requirement.bounds if b[0] is not None), default=None)
                start = bisect.bisect_left(keys, low) if low is not None else 0
                if not any(requirement.matches(k) for k in keys[start:]):
                    available = (
                        ", ".join(v.version for v in facts[dep.name].versions() if not v.yanked)
                        or "none"
                    )
                    problem = problem_at(
                        index,
                        version.file,
                        loc,
                        f"no non-yanked version of {dep.name} satisfies "
                        f"{dep.req!r} (available: {available})",
                    )
                    findings.append(DependencyFinding(problem, name, dep.name))
    whole = only is None or not acyclic_before
    findings.extend(_check_cycles(index, facts, set(checked), whole=whole))
    return findings


class _Requires(dict[str, list[str]]):
    """The plugins each plugin needs to install (of those in the index), listed on demand."""

    def __init__(self, facts: Mapping[str, PluginFacts]) -> None:
        super().__init__()
        self._facts = facts

    def __missing__(self, name: str) -> list[str]:
        facts = self._facts
        needs = self[name] = [n for n in facts[name].requires if n in facts and n != name]
        return needs


def _check_cycles(
    index: Path, facts: Mapping[str, PluginFacts], changed: Set[str], *, whole: bool
) -> list[DependencyFinding]:
    """Report each dependency cycle once, at a plugin that changed when one is in it.

    Unless the `whole` graph is to be checked, only the cycles reachable from the
    `changed` plugins are looked for: a cycle the changes made goes through one of
    them (see `dependency_findings`), and the rest of a 150,000-plugin graph is not
    even listed.
    """
    graph = _Requires(facts)
    findings = []
    for component in _strongly_connected(graph, facts if whole else changed):
        if len(component) < 2:
            continue
        # The changed plugin first: the cycle is reported in its file, where it was made.
        cycle = _cycle_in(graph, sorted(component, key=lambda n: (n not in changed, n)))
        first, second = cycle[0], cycle[1]
        file = next(
            v.file
            for v in reversed(facts[first].versions())
            if any(d.name == second and d.kind in INSTALL_KINDS for d in v.dependencies)
        )
        problem = problem_at(
            index,
            file,
            ("dependencies", second),
            f"dependency cycle: {' -> '.join(cycle)} (expected no "
            f"cycles among runtime, build and optional dependencies)",
        )
        findings.append(DependencyFinding(problem, first, second))
    return findings


def _cycle_in(graph: Mapping[str, list[str]], component: list[str]) -> list[str]:
    """Return one cycle through the component's first node, as a closed path."""
    members = set(component)
    start = component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:  # breadth-first: the shortest cycle back to start
        next_frontier = []
        for node in frontier:
            for child in graph[node]:
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if child in members and child not in parents:
                    parents[child] = node
                    next_frontier.append(child)
        frontier = next_frontier
    return [start, start]  # unreachable for a real component


def _strongly_connected(graph: Mapping[str, list[str]], roots: Iterable[str]) -> list[list[str]]:
    """Tarjan's algorithm from `roots`, iterative (an index can be deeper than Python's
    stack): every component of the nodes reachable from them."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(roots):
        if root in index_of:
            continue
        work = [(root, 0)]
        while work:
            node, child_index = work.pop()
            if child_index == 0:
                index_of[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = graph[node]
            if child_index < len(children):
                work.append((node, child_index + 1))
                child = children[child_index]
                if child not in index_of:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index_of[child])
                continue
            if low[node] == index_of[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components
