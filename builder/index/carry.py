"""Carry the last build's artifacts over as recorded: a rebuild plans what changed.

At 150,000 plugins the output holds 1.5 million artifacts. Planning each of them
again on every build (its fate, a plan entry, a comparison with the record, a
place in the new record) was a third of a one-plugin rebuild. Yet a plugin whose
facts are exactly those the last build published names exactly the artifacts it
named then, and the record vouches for those: artifacts are named by their
content, and a build never walks them (`builder.index.on_disk`).

So the local artifacts of such a plugin are not planned. The record's artifacts
stand as they are, less the stale ones: those that only plugins which changed,
were held back or went away named, and that nothing planned now names. Those are
found from the old facts of the plugins that are not carried over (a handful in
a rebuild), and an artifact two plugins share stays while either still names it.

Where this cannot be told (no record of the output, artifacts borrowed from a live
registry, a plugin whose last published facts cannot be read back), a build plans
every artifact as before; both give the same files (`tests/test_build_carry.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import NamedTuple

from builder.common import layout
from builder.index.cache import BuildCache
from builder.index.facts import PluginFacts
from builder.index.output import Planned
from builder.index.previous import PreviousStates

_DOCUMENTS = "index/"  # where the per-plugin documents are published (`layout.index_path`)
_DOCUMENT_SUFFIX = ".json"


class CarriedArtifacts(NamedTuple):
    """The last build's artifacts that a build keeps without planning each one.

    Every recorded artifact is kept but the `stale` ones; the plan may list a kept
    one again (a remote artifact, or one a changed plugin names), never a stale one.
    """

    sizes: Mapping[str, int]  # every artifact of the last build, path -> size (the record's)
    hashes: Mapping[str, str]  # the last build's path -> sha256 (the record's)
    stale: frozenset[str]  # recorded artifacts no plugin of this build names
    others: Mapping[str, int]  # the last build's other files, path -> size (the record's)
    unlisted: int  # kept artifacts the plan does not list (published all the same)

    def unrecorded(self, plan: Mapping[str, Planned]) -> list[str]:
        """Return the files the last build recorded that this build does not publish.

        Its record's artifacts are `sizes` (whose kept ones need no look) and the
        rest `others`: a look at each of those and at the stale artifacts does.
        """
        gone = [path for path in self.others if path not in plan]
        gone += [path for path in self.stale if path not in plan]
        return gone

    def planned(self, plan: Mapping[str, Planned]) -> dict[str, Planned]:
        """Return `plan` with every kept artifact it does not list added, unchanged."""
        whole = {
            path: Planned(self.hashes[path], size, None)
            for path, size in self.sizes.items()
            if path not in self.stale and path not in plan
        }
        whole.update(plan)
        return whole


def carried_plugins(old: BuildCache, fresh: BuildCache) -> frozenset[str]:
    """Return the plugins this build takes exactly as the last one published them.

    Their cache records were carried over unread or unparsed, so their facts are
    the very rows the last build saved (`analyse` shares them); a plugin checked
    again, held back or left out has a new record or none (`Settler.revert`).
    """
    was = old.plugins
    return frozenset(
        name
        for name, record in fresh.plugins.items()
        if (before := was.get(name)) is not None and record.row is before.row
    )


def carry_artifacts(
    old: BuildCache,
    facts: Mapping[str, PluginFacts],
    carried: AbstractSet[str],
    planned: Mapping[str, Planned],
    previous: PreviousStates,
) -> CarriedArtifacts | None:
    """Return the last build's artifacts this build keeps, or None: plan every one.

    `carried` are the plugins whose local artifacts were not planned (see
    `carried_plugins`), `planned` the artifacts that were (remote ones, and the
    local ones of every other plugin): every artifact the plan lists. None when
    the last build's record is unknown, when no plugin is carried over (every
    artifact is planned then, and each plugin's document would be read back), or
    when a plugin it published cannot be read back.
    """
    if old.outputs is None or not carried:
        return None
    named_before: set[str] = set()  # artifacts the plugins not carried over named then
    for path in old.files:  # the last build's files but artifacts, its documents among them
        if not (path.startswith(_DOCUMENTS) and path.endswith(_DOCUMENT_SUFFIX)):
            continue
        name = path[path.rfind("/") + 1 : -len(_DOCUMENT_SUFFIX)]
        if name in carried or layout.index_path(name) != path:
            continue  # carried over, or not a plugin's document (a signed copy)
        before = _facts_published(name, old, previous)
        if before is None:
            return None
        path_of = layout.artifact_path
        named_before.update(path_of(row[6][0], row[6][2]) for row in before.version_rows)
    stale = {path for path in named_before if path in old.sizes and path not in planned}
    if stale:  # only when an artifact may be gone: look for another plugin naming it
        for name in carried:
            for sha256, _, filename, _ in facts[name].local_artifacts:
                stale.discard(layout.artifact_path(sha256, filename))
    listed = sum(1 for path in planned if path in old.sizes and path not in stale)
    unlisted = len(old.sizes) - len(stale) - listed
    return CarriedArtifacts(old.sizes, old.outputs, frozenset(stale), old.files, unlisted)


def _facts_published(name: str, old: BuildCache, previous: PreviousStates) -> PluginFacts | None:
    """Return the facts the last build published for a plugin: cached, or its document's."""
    record = old.plugins.get(name)
    facts = record.facts() if record is not None else None
    if facts is not None:
        return facts
    state = previous.state(name)  # held back then, or its cache record unusable
    return None if state is None else state[1]
