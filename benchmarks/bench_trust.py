"""Benchmark what signatures cost: verification inside a cold build, and the PR gate.

    python benchmarks/bench_trust.py                      # 10000 plugins x 10 versions
    python benchmarks/bench_trust.py --plugins 1000 --versions 5

Prints two figures against their targets:

- what verifying every author signature adds to a cold build: cold builds with and
  without verification (the same build with the Ed25519 check replaced by a stub, in-process),
  run alternately, each in its own process into a fresh folder; the fastest of each
  kind is compared (the machine is noisy; the minimum is the least disturbed run).
  Target: at most 25 % more.
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

from bench_build import DEFAULT_DATA, plugindex_command
from generate_index import generate, modify_one, plugin_names

VERIFY_SHARE_TARGET = 0.25
GATE_SECONDS_TARGET = 3.0


# Runs a cold build in this process's interpreter; with "stub", signatures are not
# checked (every version is reported as signed), which is the build without verification.
_BUILD = """
import sys
from builder.index import verifier
from builder.cli.main import main
from builder.trust.signing import Check, Verdict

def unverified(signature, statement, ring):
    # Everything verification does except the Ed25519 check itself.
    return Check(Verdict.VALID, ring.with_id(signature["key_id"])[0][0])

if sys.argv[1] == "stub":
    verifier.verify_statement = unverified
    verifier.PLUGINS_BEFORE_WORKER = 10**9  # and no worker process to feed
sys.argv = ["plugindex", "build", sys.argv[2], "--out", sys.argv[3], "--no-fetch"]
main()
"""


def cold_build(index: Path, out: Path, *, verify: bool) -> float:
    """Run one cold build into a fresh `out`; return its wall time in seconds."""
    shutil.rmtree(out, ignore_errors=True)
    mode = "verify" if verify else "stub"
    command = [sys.executable, "-c", _BUILD, mode, str(index), str(out)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"cold build ({mode}) failed:\n{result.stderr[-2000:]}")
    return seconds


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
    parser.add_argument("--rounds", type=int, default=2, help="cold builds of each kind")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    base = args.data / f"trust-{args.plugins}x{args.versions}-seed{args.seed}"
    repo, index, out = base / "repo", base / "repo" / "index", base / "out"
    shutil.rmtree(base, ignore_errors=True)
    os.sync()
    print(f"plugindex trust benchmark: {args.plugins} x {args.versions} in {base}", flush=True)
    generate(index, args.plugins, args.versions, args.seed)
    print("  generated", flush=True)

    with_verify: list[float] = []
    without: list[float] = []
    for _ in range(args.rounds):
        with_verify.append(cold_build(index, out, verify=True))
        without.append(cold_build(index, out, verify=False))
        print(
            f"  cold builds: {with_verify[-1]:.2f} s verified, {without[-1]:.2f} s not", flush=True
        )
    share = min(with_verify) / min(without) - 1

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
        ("signature verification adds to a cold build", f"{share:.1%}", VERIFY_SHARE_TARGET),
        ("validate --base, one-plugin PR (median of 3)", f"{gate_seconds:.2f} s", None),
    ]
    print()
    print(f"Results: {args.plugins} plugins x {args.versions} versions")
    print(
        f"  fastest cold build {min(with_verify):.2f} s verifying every signature, "
        f"{min(without):.2f} s without"
    )
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
