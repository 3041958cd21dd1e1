"""Who may change a plugin: its owners as the base lists them, and their signatures.

PX102 the pull request's author must be an owner; PX105 a changed plugin.yaml raises
its revision by one and is signed; PX101/PX103/PX104 every signature the gate asks
for verifies against an active key of an owner in the *base* plugin.yaml (a PR cannot
add a key and sign with it in one step), and not one the pull request revokes.
Key retirement and revocation (docs/format.md §8.5): PX106 a key is retired only
with a binding to the versions it may still vouch for; PX107 a binding names only
versions whose statements that key signed; PX108 a revoked key stays revoked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from builder.common.errors import SourceError
from builder.format.load import SchemaProblemsError, parse_model
from builder.format.models import PluginManifest, Signature, VersionManifest, handle_key
from builder.format.paths import PLUGIN_FILE, PLUGINS_DIR, VERSIONS_DIR
from builder.format.shapes import manifest_fields
from builder.format.strict_yaml import Path_
from builder.gate.context import PluginContext
from builder.index.signatures import plan_signatures
from builder.trust import statements
from builder.trust.signing import Check, Verdict, key_id, verify_statement

# Where a signature may sit in a version file, and what it signs (for messages).
_SIGNATURE_PLACES: tuple[tuple[Path_, str], ...] = (
    (("signature",), "release"),
    (("yanked", "signature"), "yank"),
    (("unyanked", "signature"), "un-yank"),
)


def check_author(context: PluginContext, owners: PluginManifest, author: str | None) -> None:
    """Refuse a pull request whose author is not an owner of the plugin (PX102)."""
    handles = [o.github for o in owners.owners]
    # GitHub logins ignore case, and the workflow passes the login as GitHub spells it.
    if author is None or handle_key(author) in {handle_key(h) for h in handles}:
        return
    context.add(
        context.manifest_rel,
        ("owners",),
        f"the pull request's author {author!r} is not an owner of {context.name} "
        f"(owners: {', '.join(handles)})",
        "PX102",
    )


def check_manifest_change(
    context: PluginContext,
    base: PluginManifest,
    current: PluginManifest,
    allowed: Mapping[str, str],
) -> None:
    """Check a changed plugin.yaml: revision raised by one (PX105) and signed by an owner."""
    rel = context.manifest_rel
    if current.revision != base.revision + 1:
        context.add(
            rel,
            ("revision",),
            f"plugin.yaml changed, so its revision must be {base.revision + 1} "
            f"(the base's plus one); got {current.revision}",
            "PX105",
        )
    statement = statements.manifest_statement(context.registry.name, manifest_fields(current))
    check_signature(context, rel, ("signature",), current.signature, statement, allowed, "change")
    check_key_changes(context, base, current)


def revoked_keys(manifest: PluginManifest) -> set[str]:
    """Return every key an owner of `manifest` revoked."""
    return {k.key for o in manifest.owners for k in o.revoked_keys}


def check_key_changes(
    context: PluginContext, base: PluginManifest, current: PluginManifest
) -> None:
    """Check retirements and revocations a plugin.yaml change makes (PX106-PX108)."""
    rel = context.manifest_rel
    base_plain = {k.key for o in base.owners for k in o.retired_keys if not k.bound}
    base_bound = {k.key: set(k.versions or ()) for o in base.owners for k in o.retired_keys}
    for i, owner in enumerate(current.owners):
        for j, retired in enumerate(owner.retired_keys):
            loc: Path_ = ("owners", i, "retired_keys", j)
            if retired.versions is None:
                if retired.key not in base_plain:
                    context.add(
                        rel,
                        loc,
                        f"key {_kid(retired.key)} is retired without the versions it signed; "
                        f"write `- {{key: {retired.key}, versions: [...]}}` (or run "
                        f"`plugindex key retire {context.name} --old-key {retired.key} "
                        f"--key KEY_FILE`)",
                        "PX106",
                    )
                continue
            # Only what the base did not already bind needs checking (and the base's
            # binding was checked when it was made).
            added = [v for v in retired.versions if v not in base_bound.get(retired.key, set())]
            if retired.key in base_plain:
                added = list(retired.versions)
            for version in added:
                _check_bound_version(context, (*loc, "versions"), retired.key, version)
    still = {k for o in current.owners for k in (*o.keys, *o.retired())}
    for key in sorted(revoked_keys(base) - revoked_keys(current)):
        where = "listed again as active or retired" if key in still else "no longer listed"
        context.add(
            rel,
            ("owners",),
            f"key {_kid(key)} was revoked in the base and is {where}; a revoked key "
            f"stays under `revoked_keys` for good",
            "PX108",
        )


def _kid(key: str) -> str:
    try:
        return key_id(key)
    except ValueError:
        return key[:24]


def _check_bound_version(context: PluginContext, loc: Path_, key: str, version: str) -> None:
    """Refuse binding a retired key to a version none of whose statements it signed."""
    rel = f"{context.versions_prefix}{version}.yaml"
    current = context.current_model(VersionManifest, rel)
    if current is not None:
        plugin = context.current_model(PluginManifest, context.manifest_rel)
        jobs = plan_signatures(context.registry.name, plugin, [(rel, current)]) if plugin else []
        if any(verify_statement(j.signature, j.statement, [key]).valid for j in jobs):
            return
        found = "none of its statements is signed with it"
    else:
        found = f"the plugin has no version {version}"
    context.add(
        context.manifest_rel,
        loc,
        f"binds the retired key {_kid(key)} to {version}, but {found}; list only the "
        f"versions this key signed before it was retired",
        "PX107",
    )


def check_signature(  # noqa: PLR0917 - each call reads in the order of the message
    context: PluginContext,
    rel: str,
    loc: Path_,
    signature: Signature | None,
    statement: bytes,
    allowed: Mapping[str, str],
    what: str,
) -> None:
    """Check that the signature at `loc` of `rel` signs `statement` with an allowed key."""
    block = signature.model_dump() if signature is not None else None
    report_check(context, rel, loc, verify_statement(block, statement, allowed), what)


def report_check(context: PluginContext, rel: str, loc: Path_, check: Check, what: str) -> None:
    """Report a signature check that failed: missing, unknown key, or not verifying."""
    if check.valid:
        return
    if check.verdict is Verdict.MISSING:
        context.add(rel, loc, f"the {what} is not signed", "PX104")
    elif check.verdict is Verdict.UNKNOWN_KEY:
        context.add(
            rel,
            loc,
            f"the {what} is signed with a key that is not an active key of an owner "
            f"of {context.name} in the base ({_signature_key_id(context, rel, loc)})",
            "PX101",
        )
    else:
        hint = _copied_from(context, rel, loc)
        context.add(
            rel,
            loc,
            f"the {what} signature does not verify over this file's statement{hint}",
            "PX103",
        )


def _signature_key_id(context: PluginContext, rel: str, loc: Path_) -> str:
    found = _signature_at(context.index / rel, loc)
    return f"key id {found.key_id}" if found else "unknown key id"


def _signature_at(path: Path, loc: Path_) -> Signature | None:
    """Return the signature at `loc` of a version or plugin file, if it has one."""
    model = VersionManifest if f"/{VERSIONS_DIR}/" in path.as_posix() else PluginManifest
    try:
        parsed = parse_model(model, path.read_bytes(), path.parent, path.name)
    except (OSError, SourceError, SchemaProblemsError):
        return None
    node: object = parsed
    for part in loc:
        node = getattr(node, str(part), None)
    return node if isinstance(node, Signature) else None


def _copied_from(context: PluginContext, rel: str, loc: Path_) -> str:
    """Name the other statement a signature was taken from, when it was."""
    mine = _signature_at(context.index / rel, loc)
    if mine is None:
        return ""
    folder = context.index / PLUGINS_DIR / context.name
    candidates = [folder / PLUGIN_FILE, *sorted((folder / VERSIONS_DIR).glob("*.yaml"))]
    for path in candidates:
        for other_loc, kind in _SIGNATURE_PLACES:
            if path == context.index / rel and other_loc == loc:
                continue
            theirs = _signature_at(path, other_loc)
            if theirs is not None and theirs.value == mine.value:
                what = "plugin.yaml" if path.name == PLUGIN_FILE else kind
                return f" (it is the {what} signature of {path.name}, copied)"
    return ""
