"""Benchmark what signatures cost: verification inside a cold build, and the PR gate.

    python benchmarks/bench_trust.py                      # 10000 plugins x 10 versions
    python benchmarks/bench_trust.py --plugins 1000 --versions 5

Prints two figures against their targets:

- the share of a cold build spent verifying every author signature: the time of
  `builder.verify.check_signatures` over the whole index (manifests parsed beforehand,
  untimed), over the cold build time minus that (what the build would take without
  verification). Target: at most 25 %.
- `plugindex validate INDEX --base main` on a one-plugin pull request (a new signed
  version) in a git repository holding the whole index: the median of three runs.
  Target: at most 3 s.

Data lives in benchmarks/.data/ (git-ignored); the git repository is kept for profiling.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench_build import DEFAULT_DATA, plugindex_command, run_build
from generate_index import generate, modify_one, plugin_names

from builder.load import PLUGINS_DIR, load_plugin, load_registry, read_file, scan_index
from builder.shapes import version_entry
from builder.verify import check_signatures

VERIFY_SHARE_TARGET = 0.25
GATE_SECONDS_TARGET = 3.0


def time_verification(index: Path) -> tuple[float, int]:
    """Return the seconds spent verifying every signature of `index`, and their count."""
    registry, _, problems = load_registry(index)
    if registry is None:
        raise SystemExit(f"{index}: registry.yaml does not load: {problems}")
    scan = scan_index(index)
    spent, count = 0.0, 0
    failures: list[str] = []

    def report(rel: str, loc: tuple[str | int, ...], message: str) -> None:
        failures.append(f"{rel}: {message}")

    for folder in scan.plugins.values():
        contents = {rel: read_file(index, rel) for rel in folder.files if rel.endswith(".yaml")}
        loaded, load_problems = load_plugin(index, folder, contents)
        if loaded is None or load_problems:
            raise SystemExit(f"{PLUGINS_DIR}/{folder.folder}: does not load: {load_problems}")
        versions = [(v.file, v.manifest) for v in loaded.versions]
        # The build makes these shapes for its documents anyway and shares them.
        entries = [version_entry(v.manifest) for v in loaded.versions]
        started = time.perf_counter()
        check_signatures(registry.name, loaded.manifest, versions, report, entries)
        spent += time.perf_counter() - started
        count += len(versions) + sum(1 for _, v in versions if v.yanked is not None)
    if failures:
        raise SystemExit(f"{len(failures)} signatures failed, e.g. {failures[0]}")
    return spent, count


def git(repo: Path, *args: str) -> None:
    """Run git quietly in `repo`, as a fixed test identity."""
    subprocess.run(
        ["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.org", *args],
        cwd=repo,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def time_gate(repo: Path, runs: int = 3) -> tuple[list[float], str]:
    """Time `plugindex validate index --base main` in `repo`; return the times and output."""
    command = [*plugindex_command(), "validate", "index", "--base", "main", "--no-fetch"]
    times, output = [], ""
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - started)
        output = (result.stdout + result.stderr).strip()
        if result.returncode != 0:
            raise SystemExit(f"validate --base failed ({result.returncode}):\n{output}")
    return times, output


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the figures; exit 1 with --check when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--plugins", type=int, default=10_000, help="number of plugins")
    parser.add_argument("--versions", type=int, default=10, help="versions per plugin")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder for the data")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    base = args.data / f"trust-{args.plugins}x{args.versions}-seed{args.seed}"
    repo, index, out = base / "repo", base / "repo" / "index", base / "out"
    shutil.rmtree(base, ignore_errors=True)
    os.sync()
    print(f"plugindex trust benchmark: {args.plugins} x {args.versions} in {base}", flush=True)
    generate(index, args.plugins, args.versions, args.seed)
    print("  generated", flush=True)

    cold = run_build(index, out)
    if cold.returncode != 0:
        raise SystemExit(f"cold build failed:\n{cold.stderr[-2000:]}")
    print(f"  cold build: {cold.seconds:.2f} s", flush=True)
    verify_seconds, signatures = time_verification(index)
    share = verify_seconds / max(cold.seconds - verify_seconds, 1e-9)
    print(f"  verifying {signatures} signatures: {verify_seconds:.2f} s", flush=True)

    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "pr")
    names = plugin_names(index)
    changed = names[len(names) // 2]
    new_file = modify_one(index, changed)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"{changed}: new version")
    times, output = time_gate(repo)
    gate_seconds = statistics.median(times)

    rows = [
        ("signature verification / rest of cold build", f"{share:.1%}", VERIFY_SHARE_TARGET),
        ("validate --base, one-plugin PR (median of 3)", f"{gate_seconds:.2f} s", None),
    ]
    print()
    print(f"Results: {args.plugins} plugins x {args.versions} versions")
    print(f"  cold build {cold.seconds:.2f} s, of which signatures {verify_seconds:.2f} s")
    width = max(len(r[0]) for r in rows)
    ok_share = share <= VERIFY_SHARE_TARGET
    ok_gate = gate_seconds <= GATE_SECONDS_TARGET
    print(f"  {rows[0][0]:<{width}}  {rows[0][1]:>9}  target <= 25 %  {_ok(ok_share)}")
    print(f"  {rows[1][0]:<{width}}  {rows[1][1]:>9}  target <= 3 s   {_ok(ok_gate)}")
    print(f"  gate runs: {', '.join(f'{t:.2f} s' for t in times)}")
    print(f"  PR: {new_file.relative_to(repo)}; gate said: {output.splitlines()[-1]}")
    missed = not (ok_share and ok_gate)
    return 1 if missed and args.check else 0


def _ok(ok: bool) -> str:
    return "ok" if ok else "MISSED"


if __name__ == "__main__":
    sys.exit(main())
