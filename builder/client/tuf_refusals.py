"""What the client says when a registry's signed metadata (TUF) is refused, and why.

python-tuf raises its own exceptions; each is turned here into one of ours that
names the registry, what was expected and what was found: an expired role with its
date, a rollback, a file that is not what the snapshot or timestamp signed, too
few signatures, or a registry that serves no metadata at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata

from builder.common.errors import FetchError, PlugindexError
from builder.common.exits import ExitCode

_EXPIRED = re.compile(r"(?:New |Final )?([\w.-]+?)(?:\.json)? is expired")


class TufRefusedError(PlugindexError):
    """The registry's signed metadata, or a file it names, failed verification."""

    exit_code = ExitCode.REFUSED


class NoTufError(TufRefusedError):
    """The registry serves no TUF metadata (the user may opt out: --insecure-no-tuf)."""


def explain(
    error: Exception, where: str, received: Mapping[str, bytes], kept: Path
) -> PlugindexError:
    """Return our error for a python-tuf one, saying what a person can act on.

    `received`: the metadata last downloaded, by role (for an expiry date);
    `kept`: the folder of the metadata trusted before.
    """
    text = str(error) or type(error).__name__
    if isinstance(error, tuf_errors.DownloadHTTPError) and error.status_code == 404:
        if received.get("timestamp") is None and "timestamp" in text:
            return NoTufError(
                f"{where}: serves no TUF metadata ({text}); refusing an unsigned "
                f"registry (use --insecure-no-tuf to read it unverified)"
            )
        return TufRefusedError(
            f"{where}: signed metadata names a file the registry does not serve ({text})"
        )
    if isinstance(error, tuf_errors.DownloadLengthMismatchError):
        return TufRefusedError(f"{where}: a metadata file is longer than allowed ({text}); refused")
    if isinstance(error, tuf_errors.DownloadError):  # our fetcher's message: URL and cause
        return FetchError(text)
    if isinstance(error, tuf_errors.ExpiredMetadataError):
        return TufRefusedError(f"{where}: {_expired(text, received, kept)}")
    if isinstance(error, tuf_errors.BadVersionNumberError):
        return TufRefusedError(
            f"{where}: refused a rollback: {text} (the registry serves older metadata "
            f"than this client already trusted)"
        )
    if isinstance(error, tuf_errors.LengthOrHashMismatchError):
        return TufRefusedError(
            f"{where}: metadata does not match what the snapshot or timestamp signed "
            f"({text}): tampered, or mixed from two builds"
        )
    if isinstance(error, tuf_errors.UnsignedMetadataError):
        return TufRefusedError(
            f"{where}: metadata not signed by enough of the registry's keys ({text})"
        )
    return TufRefusedError(f"{where}: the registry's signed metadata was refused ({text})")


def _expired(text: str, received: Mapping[str, bytes], kept: Path) -> str:
    """Return a message naming the expired role and its expiry date."""
    match = _EXPIRED.search(text)
    role = match[1] if match else "metadata"
    data = received.get(role)
    if data is None:
        try:
            data = (kept / f"{role}.json").read_bytes()
        except OSError:
            data = None
    when = ""
    if data is not None:
        try:
            when = f" on {Metadata.from_bytes(data).signed.expires:%Y-%m-%d %H:%M} UTC"
        except (ValueError, KeyError, TypeError):
            when = ""
    return (
        f"the registry's {role} metadata expired{when} (a stale or frozen registry, or "
        f"this computer's clock is wrong); refusing it"
    )
