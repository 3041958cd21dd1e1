"""Limits: every cap on what a registry, an author or a server can make us read or do.

One frozen dataclass, as python-tuf's `UpdaterConfig`: defaults live here, with their
units, and a caller that needs other limits (a test, a benchmark) passes a copy made
with `dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@dataclass(frozen=True)
class Limits:
    """The caps in force; the defaults are what the CLI uses."""

    source_bytes: int = 256 * KIB  # one YAML source file
    document_bytes: int = 8 * MIB  # one published JSON document (a plugin with many versions)
    artifact_bytes: int = GIB  # one artifact the client downloads (declared size)
    archive_entries: int = 10_000  # entries in one artifact archive
    unpacked_bytes: int = GIB  # bytes one artifact archive may unpack to
    redirects: int = 5  # HTTP redirects followed for one request
    resolve_steps: int = 20_000  # candidate versions the resolver tries before giving up
    git_seconds: float = 120.0  # one git command of the pull-request gate


DEFAULT_LIMITS = Limits()
