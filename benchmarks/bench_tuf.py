"""Benchmark the signing stage: its share of a cold build, and what a one-plugin change re-signs.

    python benchmarks/bench_tuf.py                         # 1000 plugins x 10 versions
    python benchmarks/bench_tuf.py --plugins 10000 --versions 10

Steps: generate a synthetic index (benchmarks/generate_index.py) and give it a TUF
root (`init_registry`, keys in a temporary folder); build it cold twice in-process,
without and with the signing stage (remote artifacts not fetched, as in
bench_build.py's baseline); time the metadata generation alone again over the same
targets plus one artifact per version (what a fetched build also signs); then release
one new version of one plugin and rebuild, reporting the metadata files and bytes
that change (what publish uploads besides the plugin's own files). Target: signing
adds at most 15 % to a cold build at 10000 x 10.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

from generate_index import generate, modify_one, plugin_names

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builder.index.build import build
from builder.tuf.admin import init_registry
from builder.tuf.keys import read_private
from builder.tuf.metadata import Expiry, Generator, Target, check_root_chain
from builder.tuf.stage import FolderPrevious, TufStage, is_target

TARGET_RATIO = 0.15
EPOCH = 1_750_000_000
ONLINE = ("targets", "snapshot", "timestamp")


def _timed_build(index: Path, out: Path, environ: dict[str, str], stages: list[TufStage]) -> float:
    start = time.perf_counter()
    build(index, out, environ=environ, fetch=False, stages=stages)
    return time.perf_counter() - start


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--plugins", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-tuf-"))
    try:
        index, keys = work / "index", work / "keys"
        generate(index, args.plugins, args.versions)
        result = init_registry(index, keys)
        environ = {"SOURCE_DATE_EPOCH": str(EPOCH)}
        environ |= {f"PLUGINDEX_TUF_{r.upper()}_SIGNER": f"file:{keys}/{r}.pem" for r in ONLINE}
        _timed_build(index, work / "warm-up", environ, [])  # file cache warm for both runs
        plain = _timed_build(index, work / "plain", environ, [])
        stage = TufStage(environ=environ)
        signed = _timed_build(index, work / "signed", environ, [stage])
        print(f"index: {args.plugins} plugins x {args.versions} versions, {result.bins} bins")
        print(f"cold build without signing: {plain:.2f} s")
        print(f"cold build with signing:    {signed:.2f} s ({(signed - plain) / plain:+.1%})")

        # The generator alone, over the build's targets plus one artifact per version.
        out = work / "signed"
        targets = {
            p.relative_to(out).as_posix(): Target(
                hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size
            )
            for p in out.rglob("*.json")
            if is_target(p.relative_to(out).as_posix()) and ".plugindex" not in p.parts
        }
        for number in range(args.plugins * args.versions):
            sha = hashlib.sha256(str(number).encode()).hexdigest()
            targets[f"artifacts/{sha}/plugin-{number}.tar.gz"] = Target(sha, 100_000 + number)
        root = check_root_chain([(index / "tuf/1.root.json").read_bytes()], str, None)
        signers = {r: read_private(keys / f"{r}.pem") for r in ONLINE}
        start = time.perf_counter()
        Generator(
            root,
            Expiry(),
            result.bins.bit_length() - 1,
            EPOCH,
            FolderPrevious(work / "empty", {}),
            signers.__getitem__,
            {},
        ).generate(targets)
        alone = time.perf_counter() - start
        print(
            f"metadata for {len(targets)} targets (artifacts included): {alone:.2f} s "
            f"= {alone / plain:.1%} of the cold build (target <= {TARGET_RATIO:.0%})"
        )

        name = plugin_names(index)[len(plugin_names(index)) // 2]
        modify_one(index, name)
        stage = TufStage(environ={**environ, "SOURCE_DATE_EPOCH": str(EPOCH + 3600)})
        report = build(
            index,
            out,
            environ={**environ, "SOURCE_DATE_EPOCH": str(EPOCH + 3600)},
            fetch=False,
            stages=[stage],
        ).report
        metadata = [p for p in report.written if p.startswith("metadata/")]
        size = sum((out / p).stat().st_size for p in metadata)
        print(
            f"one-plugin change ({name}): {len(report.written)} files written, of them "
            f"{len(metadata)} metadata files, {size} bytes re-signed: {', '.join(metadata)}"
        )
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
