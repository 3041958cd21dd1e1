"""The pin: the root a registry is trusted from, kept in the user data folder.

A root comes from a file the user gives (or that ships with the demo), or from a
sha256 that pins the first root the network serves. It is kept with its sha256
under `tuf/NAME/`, written atomically and durably; every later run starts from it,
and a pin edited on disk is refused rather than used.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root

from builder.client.tuf_refusals import NoTufError, TufRefusedError
from builder.common import layout
from builder.common.errors import PlugindexError
from builder.common.fetch import Fetcher, NotFoundError
from builder.common.files import write_atomic
from builder.common.thresholds import check_distinct_keys

PINNED_ROOT = "pinned.root.json"  # the root a registry is trusted from (the pin)
TRUST_FILE = "trust.json"  # the registry's URL and the pin's sha256
ROOT_MAX_LENGTH = 512 * 1024  # bytes: a root lists a few keys
SHA256 = re.compile(r"[0-9a-f]{64}")


def trust_dir(data_dir: Path, name: str) -> Path:
    """Return the folder holding a registry's pin and TUF state."""
    return data_dir / "tuf" / name


def registry_slug(location: str) -> str:
    """Return a folder name for a registry known only by its URL (--registry URL --root)."""
    return "url-" + hashlib.sha256(location.rstrip("/").encode("utf-8")).hexdigest()[:16]


def resolve_root(spec: str, fetcher: Fetcher) -> bytes:
    """Return the root bytes a `--root` names: a root file, or the sha256 of root 1.

    A sha256 pins what the network serves as `metadata/1.root.json`: the bytes are
    used only if their sha256 is the one given.
    """
    value = spec.strip().lower()
    if SHA256.fullmatch(value):
        ref = f"{layout.METADATA}1.root.json"
        try:
            data = fetcher.document(ref, max_size=ROOT_MAX_LENGTH)
        except NotFoundError:
            raise NoTufError(
                f"{fetcher.url_of(ref)}: not found (the registry serves no TUF metadata; "
                f"use --insecure-no-tuf to read it unverified)"
            ) from None
        got = hashlib.sha256(data).hexdigest()
        if got != value:
            fetcher.discard(ref)
            raise TufRefusedError(
                f"{fetcher.url_of(ref)}: not the pinned root (expected sha256 {value}, got {got})"
            )
        return checked_root(data, fetcher.url_of(ref))
    path = Path(spec).expanduser()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PlugindexError(
            f"{spec}: cannot read the root ({e.strerror}; expected a root.json file or "
            f"the 64-hex sha256 of the registry's first root)"
        ) from None
    return checked_root(data, str(path))


def checked_root(data: bytes, where: str) -> bytes:
    """Return root bytes after checking they parse, sign themselves and list no key twice."""
    try:
        root: Metadata[Root] = Metadata.from_bytes(data)
        if not isinstance(root.signed, Root):
            raise TypeError(f"a {root.signed.type} file")
        root.signed.verify_delegate(Root.type, root.signed_bytes, root.signatures)
    except (tuf_errors.RepositoryError, ValueError, TypeError, KeyError) as e:
        cause = f": {e.__cause__}" if e.__cause__ is not None else ""
        raise TufRefusedError(f"{where}: not a valid TUF root ({e}{cause})") from None
    public = {kid: str(key.keyval.get("public", "")) for kid, key in root.signed.keys.items()}
    check_distinct_keys(public, where, TufRefusedError)
    return data


def pin_root(folder: Path, location: str, root: bytes) -> None:
    """Store the root a registry is trusted from, and its sha256, durably."""
    write_atomic(folder / PINNED_ROOT, root, durable=True)
    trust = {"url": location, "root_sha256": hashlib.sha256(root).hexdigest()}
    write_atomic(folder / TRUST_FILE, json.dumps(trust, indent=1).encode("utf-8"), durable=True)


def pinned_root(folder: Path) -> tuple[str, bytes] | None:
    """Return the URL and pinned root of a registry, refusing a pin edited on disk."""
    try:
        trust = json.loads((folder / TRUST_FILE).read_bytes())
        root = (folder / PINNED_ROOT).read_bytes()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise TufRefusedError(
            f"{folder / TRUST_FILE}: unreadable ({e}); add the registry again"
        ) from None
    got = hashlib.sha256(root).hexdigest()
    if not isinstance(trust, dict) or trust.get("root_sha256") != got:
        expected = trust.get("root_sha256") if isinstance(trust, dict) else None
        raise TufRefusedError(
            f"{folder / PINNED_ROOT}: changed on disk (expected sha256 {expected}, got "
            f"{got}); the trust in this registry is not used: add it again with "
            f"`plugindex registry add NAME URL --root FILE_OR_SHA256`"
        )
    return str(trust.get("url", "")), checked_root(root, str(folder / PINNED_ROOT))


def pin_registry(fetcher: Fetcher, data_dir: Path, name: str, root_spec: str) -> Path:
    """Pin a registry's root (a file or a sha256) under `name`; return its trust folder.

    A pin equal to the one kept changes nothing, so the state it verified stays.
    """
    folder = trust_dir(data_dir, name)
    root = resolve_root(root_spec, fetcher)
    existing = pinned_root(folder) if (folder / TRUST_FILE).exists() else None
    if existing is None or existing[1] != root:
        pin_root(folder, fetcher.location, root)
    return folder
