"""Names two pull requests can make alike: each passed against its own base."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path

from builder.common.errors import Problem
from builder.format.names import NameIndex
from builder.format.paths import PLUGIN_FILE, PLUGINS_DIR
from builder.index.facts import PluginFacts
from builder.index.rules import problem_at


def similar_new_names(
    index: Path,
    facts: Mapping[str, PluginFacts],
    published: Iterable[str],
    approved: Iterable[str],
) -> list[tuple[str, Problem]]:
    """Return new names (not `published`) that resemble another name, with the problem.

    Two pull requests can each add a name that passes against their common base and
    resembles the other; both are reported, for the maintainers to decide. Nothing
    is checked when nothing was published before (no order to judge by).
    """
    before = set(published)
    exempt = set(approved)
    new = sorted(n for n in facts if n not in before and n not in exempt)
    if not before or not new:
        return []
    names = NameIndex(before | set(facts))
    found = []
    for name in new:
        resemblance = names.resembled(name)
        if resemblance is None:
            continue
        other = resemblance.other
        when = "published before" if other in before else "new in the same build"
        problem = problem_at(
            index,
            f"{PLUGINS_DIR}/{name}/{PLUGIN_FILE}",
            ("name",),
            f"{name!r} resembles {other!r} ({when}): {resemblance.how}; merged apart, each "
            f"passed against its own base. A maintainer either approves it in "
            f"registry.yaml (policy: approved_similar_names: [{name}]) or removes it",
        )
        rule = "PX130" if resemblance.same_after_normalising else "PX131"
        found.append((name, dataclasses.replace(problem, rule=rule)))
    return found
