"""What a client downloads per file stays bounded as a registry grows.

Every document and artifact is a TUF target listed in one hashed bin, and a client
downloads the bin of each file it needs: the bin count must grow with the index.
`registry init` sizes it; a registry that outgrows it is told by every build, and
raising `tuf.bins` later is followed by clients (against a signed build of the demo
index served on 127.0.0.1).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from builder.tuf import sizing
from builder.tuf.sizing import TARGETS_PER_BIN, bins_advice, bins_for
from tests.signed_build import build_signed
from tests.test_client import Client, client, installed

__all__ = ["client"]  # the fixture this module uses


@pytest.mark.parametrize(
    ("targets", "bins"),
    [(100, 16), (120_010, 256), (1_800_000, 4096), (8_400_000, 16384)],
    ids=["demo", "10k", "150k", "largest"],
)
def test_init_sizes_the_bins_near_512_targets_each(targets: int, bins: int) -> None:
    assert bins_for(targets) == bins
    assert bins_advice(targets, bins) is None


def test_a_registry_that_outgrew_its_bins_is_told_the_count_to_set() -> None:
    """256 bins for 150,000 x 10 files: ~7,000 targets in each bin a client downloads."""
    advice = bins_advice(1_800_000, 256)
    assert advice is not None
    assert advice.startswith("tuf.bins: 256 bins hold 1800000 targets, about 7031 each")
    assert "set `tuf.bins: 4096` in registry.yaml" in advice
    assert bins_advice(256 * TARGETS_PER_BIN * sizing.OVERFULL, 256) is None  # at the edge


def test_the_build_warns_when_the_bins_are_overfull(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The demo's ~40 targets overfill its 16 bins once a bin is sized for one target."""
    monkeypatch.setattr(sizing, "TARGETS_PER_BIN", 1)
    monkeypatch.setattr(sizing, "OVERFULL", 1)
    with caplog.at_level(logging.WARNING):
        build_signed(index, tmp_path / "out")
    [warning] = [r.getMessage() for r in caplog.records if "tuf.bins:" in r.getMessage()]
    assert warning.startswith(f"{index / 'registry.yaml'}: tuf.bins: 16 bins hold ")
    assert "set `tuf.bins: " in warning


def _set_bins(index: Path, bins: int) -> None:
    registry = index / "registry.yaml"
    text = re.sub(r"(?m)^  bins: \d+", f"  bins: {bins}", registry.read_text(encoding="utf-8"))
    registry.write_text(text, encoding="utf-8")


def test_clients_follow_a_change_of_the_bin_count(client: Client) -> None:
    """16 -> 64 bins (new role names), then 64 -> 256 (the same names, other ranges)."""
    first = client.run("install", "auth-jwt")
    assert first.exit_code == 0, first.output
    for bins, name in ((64, "datasource-csv"), (256, "template-faker")):
        _set_bins(client.index, bins)
        build_signed(client.index, client.out)
        client.recorder.hits.clear()
        done = client.run("install", name)
        assert done.exit_code == 0, done.output
        assert name in installed(client)
        fetched = {p for p in client.recorder.paths() if ".bins-" in p}
        width = len(f"{bins - 1:x}")
        assert fetched and all(re.search(rf"\.bins-[0-9a-f]{{{width}}}\.json$", p) for p in fetched)
    shown = client.run("info", "auth-jwt")
    assert shown.exit_code == 0, shown.output
