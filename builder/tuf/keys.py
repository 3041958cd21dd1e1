"""Ed25519 keys of the TUF roles: generate, write, read (PEM files), and name them."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from securesystemslib.signer import CryptoSigner, SSlibKey

from builder.common.errors import PlugindexError
from builder.common.files import write_atomic

ROOT = "root"
TARGETS = "targets"
SNAPSHOT = "snapshot"
TIMESTAMP = "timestamp"
TOP_LEVEL = (ROOT, TARGETS, SNAPSHOT, TIMESTAMP)
ONLINE = (TARGETS, SNAPSHOT, TIMESTAMP)  # signed by CI on every build; root stays offline
RAW_KEY_BYTES = 32  # an Ed25519 private key's seed


class TufKeyError(PlugindexError):
    """A TUF key could not be read, or is not the one expected."""


def generate() -> CryptoSigner:
    """Return a new Ed25519 signer."""
    return CryptoSigner(Ed25519PrivateKey.generate())


def pem_of(signer: CryptoSigner) -> bytes:
    """Return a signer's private key as unencrypted PKCS#8 PEM."""
    return signer.private_bytes


def write_private(path: Path, signer: CryptoSigner) -> None:
    """Write a private key file readable by its owner only."""
    write_atomic(path, pem_of(signer), durable=True, mode=0o600)


def public_key(signer_or_key: CryptoSigner | SSlibKey) -> SSlibKey:
    """Return the TUF public key of a signer (or the key itself)."""
    return signer_or_key.public_key if isinstance(signer_or_key, CryptoSigner) else signer_or_key


def signer_from_bytes(data: bytes, where: str) -> CryptoSigner:
    """Return a signer for an Ed25519 private key: PEM, base64 PEM or base64 raw 32 bytes."""
    text = data.strip()
    if not text.startswith(b"-----BEGIN"):
        try:
            decoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise TufKeyError(
                f"{where}: not a key (expected a PEM private key, or its base64, or the "
                f"base64 of a 32-byte Ed25519 key)"
            ) from None
        if len(decoded) == RAW_KEY_BYTES:
            return CryptoSigner(Ed25519PrivateKey.from_private_bytes(decoded))
        text = decoded.strip()
    try:
        key = serialization.load_pem_private_key(text, password=None)
    except (ValueError, TypeError) as e:
        raise TufKeyError(
            f"{where}: not an unencrypted PEM private key ({str(e).splitlines()[0]})"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise TufKeyError(f"{where}: expected an Ed25519 key, got {type(key).__name__}")
    return CryptoSigner(key)


def read_private(path: Path) -> CryptoSigner:
    """Read a private key file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TufKeyError(f"{path}: cannot read the key ({e.strerror})") from None
    return signer_from_bytes(data, str(path))


def read_public(path: Path) -> SSlibKey:
    """Read a public key: a PEM public key file, or a private key file (its public half)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TufKeyError(f"{path}: cannot read the key ({e.strerror})") from None
    if b"PUBLIC KEY" in data:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as e:
            raise TufKeyError(f"{path}: not a PEM public key ({e})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise TufKeyError(f"{path}: expected an Ed25519 key, got {type(key).__name__}")
        return SSlibKey.from_crypto(key)
    return read_private(path).public_key


def public_pem(key: SSlibKey) -> bytes:
    """Return a TUF public key as a PEM file's bytes."""
    raw = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key.keyval["public"]))
    return raw.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def short_id(keyid: str) -> str:
    """Return the first 16 hex digits of a key id, for messages."""
    return keyid[:16]
