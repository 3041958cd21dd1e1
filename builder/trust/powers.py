"""What each owner key may still vouch for: active, retired (bound or not) or revoked. No I/O.

A signature that verifies is only worth what its key may still do:

- an **active** key vouches for anything;
- a **retired** key vouches only for the versions its owner bound it to when retiring
  it (`retired_versions` in the published owner); a retired key without a binding
  (the older plain form) still vouches for any version, and callers warn;
- a **revoked** key vouches for nothing: what it signed needs an owner's new signature.

The builder and the client both judge with this module, from the owners' published
shape (`format.shapes.owner_shape`), so both draw the same line.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from builder.trust.signing import Check, Verdict


class Standing(enum.Enum):
    """Where a key stands with its owner."""

    ACTIVE = "active"
    RETIRED = "retired"
    REVOKED = "revoked"


# When one key is listed twice, the stronger word wins: a revoked key verifies
# nothing even if someone also lists it as active; an active one beats retired.
_PRECEDENCE = {Standing.RETIRED: 0, Standing.ACTIVE: 1, Standing.REVOKED: 2}


@dataclass(frozen=True)
class Power:
    """One key's standing, its owner, and what it may still vouch for."""

    owner: str  # GitHub handle
    standing: Standing
    versions: frozenset[str] | None = None  # a bound retired key: its versions
    reason: str = ""  # a revoked key: why

    def vouches_for(self, version: str) -> bool:
        """Tell whether a signature by this key may stand for a statement about `version`."""
        if self.standing is Standing.REVOKED:
            return False
        return self.versions is None or version in self.versions

    @property
    def unbound(self) -> bool:
        """Whether this is a retired key its owner never bound (the older form)."""
        return self.standing is Standing.RETIRED and self.versions is None


class KeyPowers:
    """Every key a plugin's owners list, with its standing."""

    def __init__(self, owners: Iterable[Mapping[str, Any]]) -> None:
        self._by_key: dict[str, Power] = {}
        for owner in owners:
            github = str(owner["github"])
            bound: Mapping[str, Any] = owner.get("retired_versions") or {}
            for key in owner.get("retired_keys") or ():
                versions = bound.get(key)
                kept = frozenset(str(v) for v in versions) if versions is not None else None
                self._add(key, Power(github, Standing.RETIRED, kept))
            for key in owner.get("keys") or ():
                self._add(key, Power(github, Standing.ACTIVE))
            for entry in owner.get("revoked_keys") or ():
                reason = str(entry.get("reason") or "")
                self._add(str(entry["key"]), Power(github, Standing.REVOKED, reason=reason))

    def _add(self, key: str, power: Power) -> None:
        known = self._by_key.get(key)
        if known is None or _PRECEDENCE[power.standing] > _PRECEDENCE[known.standing]:
            self._by_key[key] = power

    def keys(self) -> dict[str, str]:
        """Return {key: owner} for every listed key: what a signature may be checked with."""
        return {key: power.owner for key, power in self._by_key.items()}

    def of(self, key: str) -> Power | None:
        """Return a key's power, if an owner lists it."""
        return self._by_key.get(key)

    def judge(self, check: Check, version: str) -> Check:
        """Return what a check of a statement about `version` means, given its key's standing.

        A valid signature by a revoked key becomes REVOKED_KEY (with the owner's
        reason as its note); one by a retired key outside its binding, RETIRED_KEY.
        """
        if not check.valid or check.key is None:
            return check
        power = self._by_key.get(check.key)
        if power is None or power.vouches_for(version):
            return check
        if power.standing is Standing.REVOKED:
            return Check(Verdict.REVOKED_KEY, check.key, power.reason)
        return Check(Verdict.RETIRED_KEY, check.key)

    def unbound_signer(self, check: Check) -> Power | None:
        """Return the power of an unbound retired key that made a valid check, else None."""
        if not check.valid or check.key is None:
            return None
        power = self._by_key.get(check.key)
        return power if power is not None and power.unbound else None
