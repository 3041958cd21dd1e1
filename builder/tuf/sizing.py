"""How many hashed bins an index needs, and when a registry has outgrown its count.

A client that reads a document or an artifact downloads the bin that lists it, and
every run reads the snapshot, which lists every bin: few bins make each bin large
(bytes per file looked up), many make the snapshot large (bytes per run). About 512
targets a bin keeps both small from 100 files to ~8 million. `registry init` sizes
the count from the index (`bins_for`); the count then stays in registry.yaml
(`tuf.bins`) as the index grows, so every build checks it (`bins_advice`).
"""

from __future__ import annotations

MIN_BINS, MAX_BINS = 16, 16384
TARGETS_PER_BIN = 512  # what `init` sizes the bins for
OVERFULL = 4  # times TARGETS_PER_BIN: past it, a build says to raise tuf.bins
TARGET_BYTES = 170  # about what one target costs in a bin's JSON (path, length, sha256)


def bins_for(targets: int) -> int:
    """Return the bin count for an index of `targets` files: a power of two, 16 to 16384."""
    bins = MIN_BINS
    while bins < MAX_BINS and bins * TARGETS_PER_BIN < targets:
        bins *= 2
    return bins


def bins_advice(targets: int, bins: int) -> str | None:
    """Return what to change when `bins` bins are too few for `targets` (None: they fit)."""
    if targets <= bins * TARGETS_PER_BIN * OVERFULL or bins >= MAX_BINS:
        return None
    per_bin = targets // bins
    return (
        f"tuf.bins: {bins} bins hold {targets} targets, about {per_bin} each (sized for "
        f"{TARGETS_PER_BIN}): a client downloads ~{per_bin * TARGET_BYTES // 1024} KB for "
        f"each bin it needs; set `tuf.bins: {bins_for(targets)}` in registry.yaml (the "
        f"next build re-signs every bin once; clients follow)"
    )
