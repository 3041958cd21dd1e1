"""Immutability: a merged version never changes, and a version number is never reused.

PX110 a merged version file changes only in its `yanked:`/`unyanked:` sections;
PX111 its artifact URL, sha256 and size above all; PX112 it is never deleted, nor
(PX113) a merged plugin's plugin.yaml; PX114 a new version may not reuse a number the
plugin had before, in the base or anywhere in its history, compared by precedence (so
other build metadata does not make it new). Against the published registry, see
`published`; for the yank state a merged version may change, see `yanks`.

One more change is accepted: a new signature for a statement whose merged signature
was made by a key the owners have revoked (re-attestation, docs/format.md §8.5),
with nothing else changed; PX117 refuses replacing any other signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from builder.common.errors import Problem
from builder.format.models import PluginManifest, Signature, Unyank, VersionManifest, Yank
from builder.format.requirements import RequirementError, VersionKey, key_of
from builder.format.shapes import version_entry
from builder.format.strict_yaml import Path_
from builder.gate.context import PluginContext
from builder.gate.ownership import check_signature, revoked_keys
from builder.gate.yanks import check_yank_change, check_yank_signatures
from builder.index.signatures import yank_jobs
from builder.trust import statements
from builder.trust.signing import verify_statement

# The only sections a merged version file may change; everything else is the release.
YANK_SECTIONS = frozenset({"yanked", "unyanked"})
# Artifact fields whose change would swap the bytes users install (PX111).
ARTIFACT_IDENTITY = ("url", "sha256", "size")


def check_plugin_kept(context: PluginContext) -> bool:
    """Refuse deleting a merged plugin's plugin.yaml (PX113); return whether it is there."""
    if not context.base_files or (context.index / context.manifest_rel).is_file():
        return True
    context.add(
        context.manifest_rel,
        (),
        f"{context.name} exists in the base and its plugin.yaml is gone",
        "PX113",
    )
    return False


def check_version_files(context: PluginContext, allowed: Mapping[str, str]) -> None:
    """Check every version file the pull request adds, changes or deletes.

    A key the pull request's plugin.yaml revokes signs nothing new, even though the
    base still lists it as active.
    """
    used = versions_ever_used(context)
    manifest = context.current_model(PluginManifest, context.manifest_rel)
    revoked = revoked_keys(manifest) if manifest is not None else set()
    allowed = {key: owner for key, owner in allowed.items() if key not in revoked}
    for change in context.changes:
        rel = context.rel(change.path)
        if not rel.startswith(context.versions_prefix) or not rel.endswith(".yaml"):
            continue
        if change.status == "D" and rel in context.base_files:
            _report_deleted(context, rel)
            continue
        current = context.current_model(VersionManifest, rel)
        if current is None:
            continue
        base = context.base_model(VersionManifest, rel)
        if base is None:
            _check_added(context, rel, current, used, allowed)
        else:
            _check_merged(context, rel, base, current, allowed)


def versions_ever_used(context: PluginContext) -> dict[VersionKey, str]:
    """Return every version the plugin has had in the base's history, by precedence."""
    prefix = context.versions_prefix
    names = {r.rsplit("/", 1)[-1] for r in context.base_files if r.startswith(prefix)}
    names |= {
        p.rsplit("/", 1)[-1]
        for p in context.git.deleted_paths(context.base, context.repo_path(prefix))
    }
    used: dict[VersionKey, str] = {}
    for file_name in names:
        version = file_name.removesuffix(".yaml")
        try:
            used[key_of(version)] = version
        except RequirementError:
            continue
    return used


def _report_deleted(context: PluginContext, rel: str) -> None:
    context.problems.append(
        Problem(
            context.index / rel,
            None,
            "",
            f"version file deleted ({rel.rsplit('/', 1)[-1]} was merged and is immutable)",
            rule="PX112",
        )
    )


def _check_added(
    context: PluginContext,
    rel: str,
    current: VersionManifest,
    used: Mapping[VersionKey, str],
    allowed: Mapping[str, str],
) -> None:
    """Check a new version: a fresh number, signed by an owner (and any yank it carries)."""
    try:
        previous = used.get(key_of(current.version))
    except RequirementError:
        previous = None
    if previous is not None:
        context.add(
            rel,
            ("version",),
            f"version {current.version} re-uses {previous}, which this plugin "
            f"published before (in the base or its history)",
            "PX114",
        )
    statement = statements.release_statement(
        context.registry.name, context.name, version_entry(current)
    )
    check_signature(context, rel, ("signature",), current.signature, statement, allowed, "release")
    check_yank_signatures(context, rel, current, allowed)


def _check_merged(
    context: PluginContext,
    rel: str,
    base: VersionManifest,
    current: VersionManifest,
    allowed: Mapping[str, str],
) -> None:
    """Check a merged version: the release as it was; only its yank state may change.

    A signature whose merged one was made by a revoked key may be replaced.
    """
    before = base.model_dump(exclude=set(YANK_SECTIONS))
    after = current.model_dump(exclude=set(YANK_SECTIONS))
    if before["signature"] != after["signature"]:
        registry, name = context.registry.name, context.name
        signed = (
            statements.release_statement(registry, name, version_entry(base)),
            statements.release_statement(registry, name, version_entry(current)),
        )
        _check_resigned(context, rel, ("signature",), (base, current), signed, allowed)
        before.pop("signature")
        after.pop("signature")
    if before != after:
        _report_artifact_changes(context, rel, before["artifact"], after["artifact"])
        _report_other_changes(context, rel, before, after)
    resigned = [
        job
        for job in yank_jobs(context.registry.name, context.name, rel, current)
        if _only_signature_changed(
            getattr(base, str(job.loc[0])), getattr(current, str(job.loc[0]))
        )
    ]
    untouched = {str(job.loc[0]) for job in resigned} ^ set(YANK_SECTIONS)
    if resigned and all(getattr(base, s) == getattr(current, s) for s in untouched):
        # Only signatures changed: a re-attestation, not a new yank state.
        merged = {
            j.loc: j.statement for j in yank_jobs(context.registry.name, context.name, rel, base)
        }
        for job in resigned:
            signed = (merged[job.loc], job.statement)
            _check_resigned(context, rel, job.loc, (base, current), signed, allowed)
    elif (base.yanked, base.unyanked) != (current.yanked, current.unyanked):
        check_yank_change(context, rel, base, current, allowed)


def _only_signature_changed(old: Yank | Unyank | None, new: Yank | Unyank | None) -> bool:
    """Tell whether a yank section is the same but for a different signature."""
    if old is None or new is None or old.signature == new.signature:
        return False
    return old.model_copy(update={"signature": None}) == new.model_copy(update={"signature": None})


def _check_resigned(  # noqa: PLR0917 - where, the two states, what each signs, by whom
    context: PluginContext,
    rel: str,
    loc: Path_,
    states: tuple[VersionManifest, VersionManifest],
    signed: tuple[bytes, bytes],
    allowed: Mapping[str, str],
) -> None:
    """Accept a replaced signature only where the merged one was made by a revoked key.

    The merged signature is checked over the merged statement, the new one over the
    statement as the pull request has it (any other change is PX110's to report).
    """
    old, new = (_signature_of(state, loc) for state in states)
    manifest = context.current_model(PluginManifest, context.manifest_rel)
    revoked = revoked_keys(manifest) if manifest is not None else set()
    block = old.model_dump() if old is not None else None
    by_revoked = verify_statement(block, signed[0], revoked).valid
    what = {"yanked": "yank", "unyanked": "un-yank"}.get(str(loc[0]), "release")
    if not by_revoked:
        context.add(
            rel,
            loc,
            f"the {what} signature of a merged version was replaced, but the merged one "
            f"was not made by a revoked key; only what a revoked key signed is signed again",
            "PX117",
        )
        return
    check_signature(context, rel, loc, new, signed[1], allowed, what)


def _signature_of(version: VersionManifest, loc: Path_) -> Signature | None:
    node: object = version
    for part in loc:
        node = getattr(node, str(part), None)
    return node if isinstance(node, Signature) else None


def _report_artifact_changes(
    context: PluginContext, rel: str, before: Mapping[str, Any], after: Mapping[str, Any]
) -> None:
    """Report each changed field that identifies the artifact's bytes (PX111)."""
    for key in ARTIFACT_IDENTITY:
        if before[key] != after[key]:
            context.add(
                rel,
                ("artifact", key),
                f"changed in a merged version (was {before[key]!r}, now {after[key]!r})",
                "PX111",
            )


def _report_other_changes(
    context: PluginContext, rel: str, before: Mapping[str, Any], after: Mapping[str, Any]
) -> None:
    """Report, once, the other fields of the release that changed (PX110)."""
    changed = sorted(k for k in after if before.get(k) != after[k] and k != "artifact")
    if not changed and before["artifact"]["filename"] == after["artifact"]["filename"]:
        return
    fields = changed or ["artifact"]
    context.add(
        rel,
        (fields[0],),
        f"changed in a merged version ({', '.join(fields)}); only an owner-signed "
        f"`yanked:` or `unyanked:` may change",
        "PX110",
    )
