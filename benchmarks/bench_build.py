"""Benchmark `plugindex build` on a large synthetic index, against the performance targets.

    python benchmarks/bench_build.py                      # 10000 plugins x 10 versions
    python benchmarks/bench_build.py --plugins 1000 --versions 5

Steps: generate the index (timed for information), parse every YAML file with PyYAML's
C loader (the parse-only baseline), then run `plugindex build` as a subprocess three
times: cold (fresh output folder), no-op (same command again) and after one plugin
released a new version. Each build is a separate process, so its peak memory is its
own max RSS (read with os.wait4). Data lives in benchmarks/.data/ (git-ignored) and is
kept after the run, for profiling.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from generate_index import generate, modify_one, plugin_names

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / ".data"
MIB = 1024 * 1024

# Targets.
COLD_SECONDS = 60.0
NOOP_SECONDS = 3.0
ONE_CHANGED_SECONDS = 5.0
PEAK_MEMORY_BYTES = 1024 * MIB  # 1 GiB
RATIO = 2.5
HANDFUL = 10  # files a one-plugin change may rewrite

_SUMMARY = re.compile(
    r"built (?P<plugins>\d+) plugins, (?P<versions>\d+) versions into .*: "
    r"(?P<written>\d+) written, (?P<removed>\d+) removed, (?P<unchanged>\d+) unchanged "
    r"\((?P<parsed>\d+) plugins parsed\)"
)


@dataclass(frozen=True)
class BuildRun:
    """One `plugindex build` process."""

    seconds: float
    max_rss: int  # bytes
    returncode: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> str:
        """Return the build's summary line ("built ... plugins parsed)"), or ""."""
        match = _SUMMARY.search(self.stdout)
        return match.group(0) if match else ""

    def count(self, field: str) -> int:
        """Return one number of the summary line (-1 if there is none)."""
        match = _SUMMARY.search(self.stdout)
        return int(match[field]) if match else -1


def plugindex_command() -> list[str]:
    """Return the command that runs the installed CLI of this interpreter's environment."""
    script = Path(sys.executable).with_name("plugindex")
    if script.is_file():
        return [str(script)]
    found = shutil.which("plugindex")
    if found:
        return [found]
    return [sys.executable, "-c", "from builder.cli.main import main; main()"]


def run_build(index: Path, out: Path) -> BuildRun:
    """Run one build in its own process; return its wall time, max RSS and output."""
    # The synthetic artifacts are URLs on a host that does not exist: measure the
    # build itself, not downloads (which `--no-fetch` skips).
    command = [*plugindex_command(), "build", str(index), "--out", str(out), "--no-fetch"]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        # wait4 reaps the child and returns its own rusage, so ru_maxrss is the peak RSS
        # of this build alone (not the maximum over every child this script ever had).
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        return BuildRun(
            seconds=seconds,
            max_rss=usage.ru_maxrss * 1024,  # KiB on Linux
            returncode=process.returncode,
            stdout=stdout.read().decode("utf-8", "replace"),
            stderr=stderr.read().decode("utf-8", "replace"),
        )


def yaml_files(index: Path) -> list[str]:
    """Return the path of every .yaml file under `index`."""
    found: list[str] = []
    stack = [str(index)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.name.endswith(".yaml"):
                    found.append(entry.path)
    return found


def parse_only(index: Path) -> tuple[float, int]:
    """Time listing, reading and parsing every YAML file with the C loader."""
    started = time.perf_counter()
    files = yaml_files(index)
    for name in files:
        yaml.load(Path(name).read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    return time.perf_counter() - started, len(files)


def snapshot(out: Path) -> dict[str, tuple[int, int]]:
    """Return (inode, mtime_ns) of every published file: a rewritten file changes both."""
    found: dict[str, tuple[int, int]] = {}
    stack = [out]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name == ".plugindex" and directory == out:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    info = entry.stat(follow_symlinks=False)
                    rel = Path(entry.path).relative_to(out).as_posix()
                    found[rel] = (info.st_ino, info.st_mtime_ns)
    return found


def kind_of(path: str) -> str:
    """Group a published path for the one-changed breakdown."""
    if path.startswith("index/"):
        return "index/ (plugin documents)"
    if path.startswith("api/plugins/recent/"):
        return "api/plugins/recent/ pages"
    if path.startswith("api/plugins/"):
        return "api/plugins/ (by name) pages"
    if path.startswith("artifacts/"):
        return "artifacts/"
    return path


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def _mib(value: int) -> str:
    return f"{value / MIB:.0f} MiB"


def _row(metric: str, measured: str, target: str = "", ok: bool | None = None) -> str:
    status = "" if ok is None else ("ok" if ok else "MISSED")
    return f"  {metric:<34} {measured:>12}   {target:<14} {status}".rstrip()


def _check(run: BuildRun, what: str) -> None:
    if run.returncode != 0 or not run.summary:
        sys.stderr.write(f"{what} failed (exit {run.returncode}):\n{run.stdout}{run.stderr}")
        raise SystemExit(2)


def source_revision() -> str:
    """Return the commit of the builder being measured, marked if builder/ has edits."""

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(HERE.parent), *args], capture_output=True, text=True, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    return commit + (
        " + uncommitted builder/ changes" if git("status", "--porcelain", "builder") else ""
    )


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


@dataclass(frozen=True)
class Measurements:
    """Everything one benchmark run measured."""

    plugins: int
    versions: int
    files: int
    generation: float
    baseline: float
    cold: BuildRun
    noop: BuildRun
    one: BuildRun
    changed_name: str
    new_file: str
    rewritten: tuple[str, ...]  # published files the one-changed build replaced
    removed: tuple[str, ...]  # and those it deleted

    @property
    def peak(self) -> int:
        """Return the largest max RSS of the three builds, in bytes."""
        return max(self.cold.max_rss, self.noop.max_rss, self.one.max_rss)

    @property
    def ratio(self) -> float:
        """Return cold build time over the parse-only baseline."""
        return self.cold.seconds / self.baseline


def measure(base: Path, plugins: int, versions: int, seed: int) -> Measurements:
    """Generate the index under `base` and time every step (progress on stdout)."""
    index, out = base / "index", base / "out"
    shutil.rmtree(base, ignore_errors=True)
    os.sync()  # flush the deletion now, so it does not slow down (and skew) generation
    base.mkdir(parents=True)
    generation = _timed(lambda: generate(index, plugins, versions, seed))
    print(f"  generated in {generation:.1f} s", flush=True)
    baseline, files = parse_only(index)
    print(f"  parse-only baseline: {files} files in {baseline:.2f} s", flush=True)
    cold = run_build(index, out)
    _check(cold, "cold build")
    print(f"  cold build: {cold.seconds:.2f} s", flush=True)
    noop = run_build(index, out)
    _check(noop, "no-op rebuild")
    print(f"  no-op rebuild: {noop.seconds:.2f} s", flush=True)
    names = plugin_names(index)
    changed_name = names[len(names) // 2]
    new_file = modify_one(index, changed_name)
    before = snapshot(out)
    one = run_build(index, out)
    _check(one, "one-plugin-changed rebuild")
    print(f"  one-plugin-changed rebuild: {one.seconds:.2f} s", flush=True)
    after = snapshot(out)
    return Measurements(
        plugins=plugins,
        versions=versions,
        files=files,
        generation=generation,
        baseline=baseline,
        cold=cold,
        noop=noop,
        one=one,
        changed_name=changed_name,
        new_file=new_file.relative_to(index).as_posix(),
        rewritten=tuple(sorted(p for p in after if before.get(p) != after[p])),
        removed=tuple(sorted(set(before) - set(after))),
    )


def report(m: Measurements) -> list[str]:
    """Print the results table; return the names of the missed targets."""
    one = m.one
    handful = (
        0 <= one.count("written") <= HANDFUL
        and one.count("removed") == 0
        and one.count("parsed") == 1
    )
    checks = {
        "cold build": m.cold.seconds <= COLD_SECONDS,
        "no-op rebuild": m.noop.seconds <= NOOP_SECONDS,
        "one-plugin-changed rebuild": one.seconds <= ONE_CHANGED_SECONDS,
        "peak memory": m.peak <= PEAK_MEMORY_BYTES,
        "cold / parse-only ratio": m.ratio <= RATIO,
        "one-changed writes a handful": handful,
    }
    rows = [
        _row("metric", "measured", "target") + "         status",
        _row("-" * 34, "-" * 12, "-" * 14) + " ------",
        _row("generation (info)", _seconds(m.generation)),
        _row(
            "parse-only baseline (CSafeLoader)",
            _seconds(m.baseline),
            f"({m.baseline / m.files * 1e6:.0f} us/file)",
        ),
        _row(
            "cold build", _seconds(m.cold.seconds), f"<= {COLD_SECONDS:.0f} s", checks["cold build"]
        ),
        _row(
            "no-op rebuild",
            _seconds(m.noop.seconds),
            f"<= {NOOP_SECONDS:.0f} s",
            checks["no-op rebuild"],
        ),
        _row(
            "one-plugin-changed rebuild",
            _seconds(one.seconds),
            f"<= {ONE_CHANGED_SECONDS:.0f} s",
            checks["one-plugin-changed rebuild"],
        ),
        _row(
            "peak memory (max RSS of a build)", _mib(m.peak), "<= 1024 MiB", checks["peak memory"]
        ),
        _row("  cold build", _mib(m.cold.max_rss)),
        _row("  no-op rebuild", _mib(m.noop.max_rss)),
        _row("  one-plugin-changed rebuild", _mib(one.max_rss)),
        _row(
            "cold / parse-only ratio",
            f"{m.ratio:.2f}",
            f"<= {RATIO}",
            checks["cold / parse-only ratio"],
        ),
        _row(
            "one-changed: files written",
            str(one.count("written")),
            f"<= {HANDFUL}",
            checks["one-changed writes a handful"],
        ),
    ]
    print()
    print(f"Results: {m.plugins} plugins x {m.versions} versions ({m.files} YAML files)")
    print("\n".join(rows))
    print()
    print("Build summaries:")
    print(f"  cold:        {m.cold.summary}")
    print(f"  no-op:       {m.noop.summary}")
    print(f"  one-changed: {one.summary}")
    print(f"  changed plugin: {m.changed_name} (new file {m.new_file})")
    removed = f", removed: {len(m.removed)}" if m.removed else ""
    print(f"  files replaced on disk by the one-changed build: {len(m.rewritten)}{removed}")
    for kind, count in sorted(Counter(kind_of(p) for p in m.rewritten).items()):
        print(f"    {count:>6}  {kind}")
    missed = [name for name, ok in checks.items() if not ok]
    print()
    print("All targets met." if not missed else f"Missed: {', '.join(missed)}.")
    return missed


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; exit 1 with --check when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--plugins", type=int, default=10_000, help="number of plugins")
    parser.add_argument("--versions", type=int, default=10, help="versions per plugin")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder for the index and build output"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    base = args.data / f"bench-{args.plugins}x{args.versions}-seed{args.seed}"
    print(
        f"plugindex build benchmark: {args.plugins} plugins x {args.versions} versions "
        f"(seed {args.seed}) in {base}; builder at {source_revision()}",
        flush=True,
    )
    missed = report(measure(base, args.plugins, args.versions, args.seed))
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
