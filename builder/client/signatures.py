"""Trust on the client: re-check every author signature and pin each plugin's owner keys.

No I/O. Signatures are checked with the builder's own statement and signing
functions, against the owner keys the document lists (never its `signed_by`).
Owner keys are pinned on first install; a later document with other keys is
accepted only when its plugin.yaml signature verifies with a pinned active key and
its `revision` is higher than the pinned one (a signed rotation).

A key vouches only for what its standing allows (`trust.powers`): a retired key for
the versions its owner bound it to, a revoked key for nothing. A version with a
statement signed only by a revoked key is *withheld*: users are not offered it
(as if yanked: only an exact pin installs it, with a warning) until an owner signs
it again. A retired key signing outside its binding is a document no correct
build makes: the document is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from builder.client.documents import Plugin, Version
from builder.common.errors import PlugindexError
from builder.common.exits import ExitCode
from builder.trust import statements
from builder.trust.powers import KeyPowers
from builder.trust.signing import (
    Check,
    Verdict,
    describe,
    key_id,
    verify_statement,
)

log = logging.getLogger(__name__)


class TrustError(PlugindexError):
    """A signature, checksum, pinned key or archive failed verification."""

    exit_code = ExitCode.REFUSED


class Pin(BaseModel):
    """A plugin's owner keys as first seen (or as last deliberately accepted)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: tuple[str, ...]  # active keys, sorted
    retired_keys: tuple[str, ...] = ()  # sorted
    revision: int
    # A bound retired key's versions, and the revoked keys: part of what a signed
    # change must move, so a registry cannot widen a binding or drop a revocation.
    retired_versions: dict[str, tuple[str, ...]] = {}
    revoked_keys: tuple[str, ...] = ()  # sorted

    @model_serializer(mode="wrap")
    def _leave_out_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A pin without them is written as it was before they existed.
        data: dict[str, Any] = handler(self)
        for field in ("retired_versions", "revoked_keys"):
            if not data.get(field):
                data.pop(field, None)
        return data


@dataclass(frozen=True)
class VersionTrust:
    """What the signatures of one version say."""

    release: Check
    yank: Check | None
    unyank: Check | None
    owner: str | None  # whose key verified the release

    @property
    def key_id(self) -> str | None:
        """Return the id of the key that verified the release, if one did."""
        return key_id(self.release.key) if self.release.valid and self.release.key else None

    def checks(self) -> list[tuple[str, Check]]:
        """Return (statement, check) for the release and any yank or un-yank."""
        found = [("release", self.release), ("yank", self.yank), ("un-yank", self.unyank)]
        return [(what, check) for what, check in found if check is not None]

    def revoked(self) -> list[tuple[str, Check]]:
        """Return the statements signed only by a revoked key (they need a new signature)."""
        return [(w, c) for w, c in self.checks() if c.verdict is Verdict.REVOKED_KEY]


def powers_of(plugin: Plugin) -> KeyPowers:
    """Return what each key the document's owners list may vouch for."""
    return KeyPowers(owner.model_dump() for owner in plugin.doc.owners)


def check_version(
    registry: str, plugin: Plugin, version: Version, powers: KeyPowers | None = None
) -> VersionTrust:
    """Check a version's release, yank and un-yank signatures against the owner keys."""
    powers = powers if powers is not None else powers_of(plugin)
    keys = powers.keys()

    def check(signature: dict[str, str] | None, statement: bytes) -> Check:
        return powers.judge(verify_statement(signature, statement, keys), version.number)

    release = check(
        version.entry.signature, statements.release_statement(registry, plugin.name, version.raw)
    )
    sha256 = version.entry.artifact.sha256
    yank = unyank = None
    if (y := version.entry.yanked) is not None:
        yank = check(
            y.signature,
            statements.yank_statement(
                registry,
                plugin.name,
                version.number,
                sha256=sha256,
                reason=y.reason,
                serial=y.serial,
            ),
        )
    if (u := version.entry.unyanked) is not None:
        unyank = check(
            u.signature,
            statements.unyank_statement(
                registry, plugin.name, version.number, sha256=sha256, serial=u.serial
            ),
        )
    owner = keys.get(release.key) if release.valid and release.key else None
    return VersionTrust(release, yank, unyank, owner)


def withheld_reason(version: Version, trust: VersionTrust) -> str | None:
    """Return why users are not offered a version: a revoked key's signature, or its yank."""
    for what, check in trust.revoked():
        return f"{describe(check, what, '')}; not offered until an owner signs it again"
    yanked = version.entry.yanked
    if yanked is not None and is_yanked(version, trust):
        return yanked.reason
    return None


def is_yanked(version: Version, trust: VersionTrust) -> bool:
    """Tell whether a version counts as yanked: a yank stands unless a valid later un-yank."""
    yanked, unyanked = version.entry.yanked, version.entry.unyanked
    if yanked is None:
        return False
    return not (
        unyanked is not None
        and unyanked.serial > yanked.serial
        and trust.unyank is not None
        and trust.unyank.valid
    )


def verify_plugin(registry: str, plugin: Plugin) -> dict[str, VersionTrust]:
    """Check every signature of a document; raise TrustError at the first that fails.

    A registry build refuses unsigned or badly signed versions, so any failure here
    means the document was changed after the build: nothing in it is used.
    """
    checked: dict[str, VersionTrust] = {}
    powers = powers_of(plugin)
    unbound: dict[str, list[str]] = {}
    for version in plugin.versions:
        trust = check_version(registry, plugin, version, powers)
        for what, check in trust.checks():
            if check.verdict is Verdict.REVOKED_KEY:
                continue  # withheld (see `withheld_reason`), not a forged document
            if not check.valid:
                raise TrustError(
                    f"{plugin.source}: {plugin.name} {version.number}: "
                    f"{describe(check, what, plugin.name)}; refusing to use this document"
                )
            if check.key is not None and powers.unbound_signer(check) is not None:
                unbound.setdefault(check.key, []).append(version.number)
        checked[version.number] = trust
    for key, versions in sorted(unbound.items()):
        log.warning(
            "%s: %s %s signed with the retired key %s, which its owners never bound to "
            "the versions it may vouch for: it could still vouch for new ones",
            plugin.source,
            plugin.name,
            ", ".join(dict.fromkeys(versions)),
            key_id(key),
        )
    return checked


def pin_of(plugin: Plugin) -> Pin:
    """Return the pin that records a document's owner keys and revision."""
    owners = plugin.doc.owners
    revoked = {k.key for o in owners for k in o.revoked_keys}
    active = {k for o in owners for k in o.keys} - revoked
    retired = {k for o in owners for k in o.retired_keys} - active - revoked
    bound = {
        key: tuple(sorted(versions))
        for o in owners
        for key, versions in o.retired_versions.items()
        if key in retired
    }
    return Pin(
        keys=tuple(sorted(active)),
        retired_keys=tuple(sorted(retired)),
        revision=plugin.doc.revision,
        retired_versions=dict(sorted(bound.items())),
        revoked_keys=tuple(sorted(revoked)),
    )


def _standing(pin: Pin) -> tuple[Any, ...]:
    """Return what a signed change must move: every key and what it may vouch for."""
    return (pin.keys, pin.retired_keys, sorted(pin.retired_versions.items()), pin.revoked_keys)


def _ids(keys: tuple[str, ...]) -> str:
    shown = []
    for key in keys:
        try:
            shown.append(key_id(key))
        except ValueError:
            shown.append(key[:24])
    return ", ".join(sorted(shown)) or "none"


def check_pin(registry: str, plugin: Plugin, pin: Pin | None) -> Pin | None:
    """Return the pin to record for a document (None: keep the current one).

    Raise TrustError when the owner keys changed without a signed rotation, or when
    the document is older than what was pinned.
    """
    current = pin_of(plugin)
    if pin is None:
        return current  # trust on first use
    same_keys = _standing(current) == _standing(pin)
    if same_keys:
        if current.revision < pin.revision:
            raise TrustError(
                f"{plugin.source}: {plugin.name}: revision {current.revision} is older than "
                f"the pinned revision {pin.revision} (a stale or rolled-back registry); "
                "refusing to use it"
            )
        if current.revision <= pin.revision:
            return None
        # A higher revision is pinned only when an owner we trust signed it: an
        # unsigned one could be inflated to block every later legitimate rotation.
        return current if _manifest_check(registry, plugin, pin).valid else None
    check = _manifest_check(registry, plugin, pin)
    if check.valid and current.revision > pin.revision:
        return current  # a rotation signed with a key we already trust
    why = (
        f"its plugin.yaml signature {_rotation_problem(check)}"
        if not check.valid
        else f"its revision {current.revision} is not above the pinned {pin.revision}"
    )
    raise TrustError(
        f"{plugin.source}: {plugin.name}: the owner keys changed since they were pinned "
        f"(pinned: {_ids(pin.keys)}; now: {_ids(current.keys)}) and {why}; "
        f"if you trust the new keys, run `plugindex trust {plugin.name}`"
    )


def _manifest_check(registry: str, plugin: Plugin, pin: Pin) -> Check:
    """Check a document's plugin.yaml signature against the pinned active keys."""
    statement = statements.manifest_statement(registry, plugin.raw)
    return verify_statement(plugin.doc.signature, statement, pin.keys)


def _rotation_problem(check: Check) -> str:
    if check.verdict is Verdict.MISSING:
        return "is missing (expected a rotation signed with a pinned key)"
    if check.verdict is Verdict.UNKNOWN_KEY:
        return "was made with a key that is not pinned"
    return str(check.verdict.value)
