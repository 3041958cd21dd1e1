"""Ed25519 signatures over statements: make and check them. No I/O.

Public keys are written `ed25519:<base64 of the 32 raw bytes>`. A key id is the
first 16 hex digits of the SHA-256 of those raw bytes; it is always computed from a
key, never taken on trust from a file: a signature's `key_id` only says which of the
owners' keys to try.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALGORITHM = "ed25519"
_KEY_PREFIX = "ed25519:"


def raw_public_key(text: str) -> bytes:
    """Return the 32 raw bytes of a key written `ed25519:<base64>`; ValueError if it is not."""
    if not text.startswith(_KEY_PREFIX):
        raise ValueError(f"expected ed25519:<base64>, got {text[:60]!r}")
    try:
        raw = base64.b64decode(text[len(_KEY_PREFIX) :], validate=True)
    except binascii.Error as e:
        raise ValueError(f"expected base64 after ed25519:, got {text[:60]!r}") from e
    if len(raw) != 32:
        raise ValueError(f"expected 32 key bytes, got {len(raw)}")
    return raw


def public_key_text(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """Return the `ed25519:<base64>` text of a key's public half."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def key_id(public_key: str) -> str:
    """Return the key id of a public key written `ed25519:<base64>`."""
    return hashlib.sha256(raw_public_key(public_key)).hexdigest()[:16]


def sign_statement(private_key: Ed25519PrivateKey, statement: bytes) -> dict[str, str]:
    """Return the signature block (algorithm, key_id, value) of `statement`."""
    return {
        "algorithm": ALGORITHM,
        "key_id": key_id(public_key_text(private_key)),
        "value": base64.b64encode(private_key.sign(statement)).decode("ascii"),
    }


class Verdict(enum.Enum):
    """The outcome of checking one signature; the value reads as a sentence end."""

    VALID = "valid"
    MISSING = "missing"
    UNKNOWN_KEY = "made with a key that is not one of the allowed keys"
    BAD_SIGNATURE = "does not verify: the signed statement differs from this one"
    MALFORMED = "is malformed"
    # The bytes verify, but the key's power has ended (builder.trust.powers).
    REVOKED_KEY = "was made with a key its owner revoked"
    RETIRED_KEY = "was made with a retired key that its owner did not bind to this version"


@dataclass(frozen=True)
class Check:
    verdict: Verdict
    key: str | None = None  # the allowed key that verified (or that the id named)
    note: str = ""  # a revoked key: the owner's reason

    @property
    def valid(self) -> bool:
        """Whether the signature verified."""
        return self.verdict is Verdict.VALID


class KeyRing:
    """Allowed public keys by key id, each decoded once.

    A plugin's signatures are all checked against the same few keys: decoding and
    hashing them once per plugin, not once per signature, keeps verification cheap.
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self._by_id: dict[str, list[tuple[str, Ed25519PublicKey]]] = {}
        for key in keys:
            try:
                raw = raw_public_key(key)
                public = Ed25519PublicKey.from_public_bytes(raw)
            except ValueError:
                continue  # not a key: the schema reports it; it can verify nothing
            kid = hashlib.sha256(raw).hexdigest()[:16]
            self._by_id.setdefault(kid, []).append((key, public))

    def with_id(self, wanted: str) -> list[tuple[str, Ed25519PublicKey]]:
        """Return the keys (text and key) whose computed id is `wanted`."""
        return self._by_id.get(wanted, [])


def verify_statement(
    signature: Mapping[str, str] | None,
    statement: bytes,
    allowed_keys: KeyRing | Iterable[str],
) -> Check:
    """Check `signature` over `statement` against the allowed public keys."""
    if signature is None:
        return Check(Verdict.MISSING)
    try:
        if signature.get("algorithm") != ALGORITHM:
            return Check(Verdict.MALFORMED)
        value = base64.b64decode(signature["value"], validate=True)
        wanted = signature["key_id"]
    except (KeyError, TypeError, binascii.Error):
        return Check(Verdict.MALFORMED)
    ring = allowed_keys if isinstance(allowed_keys, KeyRing) else KeyRing(allowed_keys)
    candidates = ring.with_id(wanted)
    for key, public in candidates:
        try:
            public.verify(value, statement)
        except InvalidSignature:
            continue
        return Check(Verdict.VALID, key)
    if candidates:
        return Check(Verdict.BAD_SIGNATURE, candidates[0][0])
    return Check(Verdict.UNKNOWN_KEY)


def describe(check: Check, what: str, plugin: str) -> str:
    """Say in one sentence why a signature was refused."""
    if check.verdict is Verdict.MISSING:
        return (
            f"the {what} statement is not signed (sign it with `plugindex sign` and an owner's key)"
        )
    if check.verdict is Verdict.UNKNOWN_KEY:
        return f"the {what} signature was made with a key that is not an owner key of {plugin}"
    if check.verdict in (Verdict.REVOKED_KEY, Verdict.RETIRED_KEY) and check.key:
        why = f" ({check.note})" if check.note else ""
        return f"the {what} signature {check.verdict.value}: {_id_of(check.key)}{why}"
    return f"the {what} signature {check.verdict.value}"


def _id_of(key: str) -> str:
    try:
        return f"key {key_id(key)}"
    except ValueError:
        return "a malformed key"


class KeyEntry(Protocol):
    """A retired or revoked key written as a mapping: `{key, ...}`."""

    @property
    def key(self) -> str: ...


class OwnerKeys(Protocol):
    """An owner as both the source format and a published document describe one."""

    @property
    def github(self) -> str: ...
    @property
    def keys(self) -> Sequence[str]: ...
    @property
    def retired_keys(self) -> Sequence[str | KeyEntry]: ...


def owner_keys(owners: Iterable[OwnerKeys], *, retired: bool) -> dict[str, str]:
    """Return {public key: owner handle} for active keys, or for every listed key.

    With `retired`, retired and revoked keys too: every key a signature of the plugin
    may have been made with. What each may still vouch for is `powers.KeyPowers`' to say.
    """
    keys: dict[str, str] = {}
    for owner in owners:
        listed: list[str | KeyEntry] = list(owner.keys)
        if retired:
            # Revoked keys only where the owner has them (older owner shapes do not).
            listed += [*owner.retired_keys, *getattr(owner, "revoked_keys", ())]
        for key in listed:
            keys.setdefault(key if isinstance(key, str) else key.key, owner.github)
    return keys
