"""Trust on the client: re-check every author signature and pin each plugin's owner keys.

No I/O. Signatures are checked with the builder's own statement and signing
functions, against the owner keys the document lists (never its `signed_by`).
Owner keys are pinned on first install; a later document with other keys is
accepted only when its plugin.yaml signature verifies with a pinned active key and
its `revision` is higher than the pinned one (a signed rotation).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from builder.client.documents import Plugin, Version
from builder.common.errors import PlugindexError
from builder.common.exits import ExitCode
from builder.trust import statements
from builder.trust.signing import (
    Check,
    Verdict,
    describe,
    key_id,
    owner_keys,
    verify_statement,
)


class TrustError(PlugindexError):
    """A signature, checksum, pinned key or archive failed verification."""

    exit_code = ExitCode.REFUSED


class Pin(BaseModel):
    """A plugin's owner keys as first seen (or as last deliberately accepted)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: tuple[str, ...]  # active keys, sorted
    retired_keys: tuple[str, ...] = ()  # sorted
    revision: int


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


def check_version(registry: str, plugin: Plugin, version: Version) -> VersionTrust:
    """Check a version's release, yank and un-yank signatures against the owner keys."""
    keys = owner_keys(plugin.doc.owners, retired=True)
    statement = statements.release_statement(registry, plugin.name, version.raw)
    release = verify_statement(version.entry.signature, statement, keys)
    sha256 = version.entry.artifact.sha256
    yank = unyank = None
    if (y := version.entry.yanked) is not None:
        yank = verify_statement(
            y.signature,
            statements.yank_statement(
                registry,
                plugin.name,
                version.number,
                sha256=sha256,
                reason=y.reason,
                serial=y.serial,
            ),
            keys,
        )
    if (u := version.entry.unyanked) is not None:
        unyank = verify_statement(
            u.signature,
            statements.unyank_statement(
                registry, plugin.name, version.number, sha256=sha256, serial=u.serial
            ),
            keys,
        )
    owner = keys.get(release.key) if release.valid and release.key else None
    return VersionTrust(release, yank, unyank, owner)


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
    for version in plugin.versions:
        trust = check_version(registry, plugin, version)
        for what, check in (
            ("release", trust.release),
            ("yank", trust.yank),
            ("un-yank", trust.unyank),
        ):
            if check is not None and not check.valid:
                raise TrustError(
                    f"{plugin.source}: {plugin.name} {version.number}: "
                    f"{describe(check, what, plugin.name)}; refusing to use this document"
                )
        checked[version.number] = trust
    return checked


def pin_of(plugin: Plugin) -> Pin:
    """Return the pin that records a document's owner keys and revision."""
    active = {k for o in plugin.doc.owners for k in o.keys}
    retired = {k for o in plugin.doc.owners for k in o.retired_keys} - active
    return Pin(
        keys=tuple(sorted(active)),
        retired_keys=tuple(sorted(retired)),
        revision=plugin.doc.revision,
    )


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
    same_keys = (current.keys, current.retired_keys) == (pin.keys, pin.retired_keys)
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
