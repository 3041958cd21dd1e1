"""Plan a build: every published file by path, with its hash, size and content.

Documents of unchanged plugins and files already in the output are planned by hash
and size alone (no content); `builder.index.output` writes the plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from builder.common import layout
from builder.index.analyse import Analysis
from builder.index.cache import BuildCache
from builder.index.carry import CarriedArtifacts
from builder.index.encoding import encode
from builder.index.held import HeldBack
from builder.index.output import Planned
from builder.index.render import config_document, status_document
from builder.index.source import SourceInfo


def planned_bytes(content: bytes) -> Planned:
    """Plan a file whose content is in memory."""
    return Planned(hashlib.sha256(content).hexdigest(), len(content), content)


def plan_build(  # noqa: PLR0917 - the parts of a build, in the order they are made
    analysis: Analysis,
    source: SourceInfo,
    remote: Mapping[str, Planned],
    local: Mapping[str, Planned],
    held_back: Sequence[HeldBack],
    listings: Mapping[str, Planned],
    carried: CarriedArtifacts | None = None,
) -> dict[str, Planned]:
    """Return every file of the build by path (documents of unchanged plugins unrendered).

    `remote` holds the mirrored remote artifacts (see `builder.index.mirror`), `local`
    the repository-local ones (see `Settler.kept_artifacts`), `listings` names.json,
    categories.json and the listing pages. The artifacts `carried` over from the last
    build are published too, but not listed (see `builder.index.carry`).
    """
    assert analysis.registry is not None
    plan: dict[str, Planned] = dict(remote)
    documents = analysis.documents
    for name, facts in sorted(analysis.facts.items()):
        # A document written ahead is moved in by the commit (see `write_output`): as
        # for an artifact written ahead, no source is planned.
        document = documents.get(name)
        content = document if isinstance(document, bytes) else None
        plan[layout.index_path(name)] = Planned(facts.doc_sha256, facts.doc_size, content)
    plan.update(local)
    artifacts = sum(1 for path in plan if path.startswith("artifacts/"))
    if carried is not None:
        artifacts += carried.unlisted
    plan.update(listings)
    plan[layout.CONFIG] = planned_bytes(encode(config_document(analysis.registry)))
    records = [h.record() for h in held_back]
    plan[layout.STATUS] = planned_bytes(
        encode(status_document(analysis.facts, artifacts, source.timestamp, source.commit, records))
    )
    return plan


def listing_key(analysis: Analysis) -> str:
    """Return what the listings are made of: registry.yaml and each plugin's document.

    A plugin's summary in the listings comes from the same manifest as its document,
    so the same documents (and registry.yaml, for the categories) give the same pages.
    """
    digest = hashlib.sha256(analysis.cache.registry.encode())
    for name in sorted(analysis.facts):
        digest.update(f"\n{name} {analysis.facts[name].doc_sha256}".encode())
    return digest.hexdigest()


def unchanged_listings(
    key: str, cache: BuildCache, on_disk: Mapping[str, int]
) -> dict[str, Planned] | None:
    """Return the listings of the last build when made of the same, and all still there."""
    cached_key, paths = cache.listings
    outputs = cache.outputs or {}
    if cached_key != key or not paths:
        return None
    found = {}
    for path in paths:
        sha256, size = outputs.get(path), on_disk.get(path)
        # A listing edited on disk is written again: its size is not what was written.
        if sha256 is None or size is None or size != cache.files.get(path, size):
            return None
        found[path] = Planned(sha256, size, None)
    return found
