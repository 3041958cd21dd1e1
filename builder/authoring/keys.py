"""Author key files: create, write (mode 0600, optionally encrypted) and read them."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from builder.common.errors import PlugindexError


class KeyFileError(PlugindexError):
    """A key file is missing, unreadable, of the wrong kind or locked."""


def write_private_key(path: Path, key: Ed25519PrivateKey, passphrase: bytes | None) -> None:
    """Write `key` as PKCS#8 PEM to a new file `path` readable by its owner only."""
    encryption = BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)
    try:
        # O_EXCL: never overwrite a key; mode 0600 from the first byte, not chmod after.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key") from e
    except OSError as e:
        raise KeyFileError(f"{path}: cannot create ({e.strerror})") from e
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def read_private_key(path: Path, passphrase: bytes | None) -> Ed25519PrivateKey:
    """Read an Ed25519 private key from a PEM file, decrypting it with `passphrase`."""
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read the key ({e.strerror})") from e
    try:
        key = load_pem_private_key(pem, password=passphrase)
    except TypeError as e:
        # cryptography says TypeError for "encrypted but no password" and the reverse.
        wanted = "a passphrase" if passphrase is None else "no passphrase"
        raise KeyFileError(f"{path}: this key needs {wanted} ({e})") from e
    except ValueError as e:
        raise KeyFileError(
            f"{path}: expected a PEM Ed25519 private key (or the passphrase is wrong): {e}"
        ) from e
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: expected an Ed25519 key, got {type(key).__name__}")
    return key


def is_encrypted(path: Path) -> bool:
    """Tell whether a PEM key file is passphrase-protected."""
    try:
        return b"ENCRYPTED" in path.read_bytes()[:64]
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read the key ({e.strerror})") from e
