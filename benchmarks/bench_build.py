"""Benchmark `plugindex build` on a large synthetic index, against the performance targets.

    python benchmarks/bench_build.py                      # 10000 plugins x 10 versions
    python benchmarks/bench_build.py --plugins 1000 --versions 5

Steps: generate the index (timed for information) and give it a TUF root (so the build
signs, as a real registry's does; `--no-tuf` leaves it unsigned), parse every YAML file
with PyYAML's C loader (the parse-only baseline), run two cold builds for the site's
cost (the JSON index alone, and with the HTML site), then run `plugindex build` (every
stage: JSON, site, search, signing) as a subprocess three times: cold (fresh output
folder), no-op (same command again) and after one plugin released a new version. Each
build is a separate process: its peak memory is sampled as the RSS summed over it and
its worker processes (every 20 ms), and its own max RSS is read with os.wait4. The
site's page weights are read from the cold build. Every build runs with the same
SOURCE_DATE_EPOCH and without the enclosing git repository, so a commit made meanwhile
does not turn a no-op into a change. Data lives in benchmarks/.data/ (git-ignored) and
is kept after the run, for profiling.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from generate_index import generate, modify_one, plugin_names

from builder.tuf.admin import init_registry

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / ".data"
MIB = 1024 * 1024

# Targets.
COLD_SECONDS = 60.0
NOOP_SECONDS = 3.0
ONE_CHANGED_SECONDS = 5.0
PEAK_MEMORY_BYTES = 1024 * MIB  # 1 GiB
RATIO = 2.5
SITE_RATIO = 1.5  # cold build with the site over the same build without it
HANDFUL = 10  # JSON files a one-plugin change may rewrite
PLUGIN_PAGE_BYTES = 30 * 1024  # a plugin page without README, plus the CSS
HOME_PAGE_BYTES = 50 * 1024  # the home page, plus the CSS
KIB = 1024
EPOCH = "1750000000"  # SOURCE_DATE_EPOCH of every build: the TUF metadata's time
ONLINE_ROLES = ("targets", "snapshot", "timestamp")  # their keys sign every build

# Runs one build in-process with a chosen set of later stages: "none" (the JSON index
# only), "site" (with the HTML site) or "all" (what `plugindex build` runs).
_RUNNER = """
import sys
from pathlib import Path
from builder.index.build import build
index, out, which = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if which == "all":
    from builder.cli.maintainer import build_stages
    stages = build_stages()
elif which == "site":
    from builder.site.stage import SiteStage
    stages = [SiteStage()]
else:
    stages = []
r = build(index, out, fetch=False, stages=stages)
print(f"built {r.plugins} plugins, {r.versions} versions into {out}: "
      f"{len(r.report.written)} written, {len(r.report.removed)} removed, "
      f"{r.report.unchanged} unchanged ({len(r.reparsed)} plugins parsed)")
"""

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
    cpu: float  # user + system seconds of the build and the workers it waited for
    returncode: int
    stdout: str
    stderr: str
    tree_rss: int = 0  # bytes: peak of the RSS summed over the build and its workers

    @property
    def summary(self) -> str:
        """Return the build's summary line ("built ... plugins parsed)"), or ""."""
        match = _SUMMARY.search(self.stdout)
        return match.group(0) if match else ""

    def count(self, field: str) -> int:
        """Return one number of the summary line (-1 if there is none)."""
        match = _SUMMARY.search(self.stdout)
        return int(match[field]) if match else -1


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def tree_rss(pid: int) -> int:
    """Return the resident memory of a process and all its descendants, summed (Linux).

    A child between its vfork and its exec (a `subprocess` starting `find`, say)
    shares its parent's memory and shows it as its own: it is not counted.
    """
    total = 0
    pending: list[tuple[int, str]] = [(pid, "")]
    while pending:
        process, parent = pending.pop()
        try:
            proc = Path(f"/proc/{process}")
            statm = (proc / "statm").read_text(encoding="ascii")
            if statm != parent:
                total += int(statm.split()[1]) * _PAGE
            for task in (proc / "task").iterdir():
                children = (task / "children").read_text(encoding="ascii")
                pending.extend((int(child), statm) for child in children.split())
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return total


def high_water_mark(pid: int) -> int | None:
    """Return the peak resident memory of a process's current program (VmHWM), or None.

    Unlike `ru_maxrss`, it starts again at the exec: a build started by this script,
    after this script has grown, does not show this script's memory as its own.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    return None


class TreeMemory:
    """Sample the summed RSS of a process tree every 20 ms; keep the peak.

    Worker processes (the checks, the site's renderers) count with the build: what
    a machine must hold at once, which max RSS of each process alone does not say.
    Shared pages (libraries) count once per process, so this errs on the high side.
    The main process's own peak is its last high-water mark read (`own_peak`).
    """

    def __init__(self, pid: int) -> None:
        self.peak = 0
        self.own_peak: int | None = None
        self._pid = pid
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, tree_rss(self._pid))
            # The last read, not the largest: one made before the exec is the parent's.
            self.own_peak = high_water_mark(self._pid) or self.own_peak
            self._done.wait(0.02)

    def stop(self) -> int:
        """Stop sampling (call before reaping the process); return the peak in bytes."""
        self._done.set()
        self._thread.join()
        return self.peak

    def own_or(self, max_rss: int) -> int:
        """Return the main process's own peak, or `max_rss` when it was never read.

        `ru_maxrss` keeps the memory the process had before its exec: this script's,
        copied by the fork (a no-op started after the parse-only baseline showed 200 MiB).
        """
        return max_rss if self.own_peak is None else self.own_peak


def plugindex_command() -> list[str]:
    """Return the command that runs the installed CLI of this interpreter's environment."""
    script = Path(sys.executable).with_name("plugindex")
    if script.is_file():
        return [str(script)]
    found = shutil.which("plugindex")
    if found:
        return [found]
    return [sys.executable, "-c", "from builder.cli.main import main; main()"]


def as_installed() -> dict[str, str]:
    """Return this environment as an installed builder runs in: its bytecode cached.

    A shell with PYTHONDONTWRITEBYTECODE set and no bytecode written yet compiles the
    builder from source at each start: 0.15-0.3 s of CPU, a fifth of a one-plugin
    rebuild at 10,000 plugins. pip writes the bytecode of what it installs, so that is
    not a cost a registry pays.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def build_environment(base: Path, keys: Path | None) -> dict[str, str]:
    """Return the environment of every build: a fixed time, no enclosing git, the TUF keys.

    `base` holds the index; git must not find the repository around it (this one),
    whose next commit would change the build's commit and time between two runs.
    """
    env = {**as_installed(), "SOURCE_DATE_EPOCH": EPOCH, "GIT_CEILING_DIRECTORIES": str(base)}
    if keys is not None:
        env |= {f"PLUGINDEX_TUF_{r.upper()}_SIGNER": f"file:{keys}/{r}.pem" for r in ONLINE_ROLES}
    return env


def run_build(
    index: Path, out: Path, stages: str | None = None, env: dict[str, str] | None = None
) -> BuildRun:
    """Run one build in its own process; return its wall time, max RSS and output.

    `stages` None runs `plugindex build`; "none", "site" or "all" run the build
    function with those later stages (see _RUNNER).
    """
    # The synthetic artifacts are URLs on a host that does not exist: measure the
    # build itself, not downloads (which `--no-fetch` skips).
    command = [*plugindex_command(), "build", str(index), "--out", str(out), "--no-fetch"]
    if stages is not None:
        command = [sys.executable, "-c", _RUNNER, str(index), str(out), stages]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
        memory = TreeMemory(process.pid)
        # wait4 reaps the child and returns its own rusage (not the maximum over every
        # child this script ever had); its peak memory is the sampled one (`own_or`).
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        peak = memory.stop()
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        return BuildRun(
            seconds=seconds,
            max_rss=memory.own_or(usage.ru_maxrss * 1024),  # KiB on Linux
            cpu=usage.ru_utime + usage.ru_stime,
            returncode=process.returncode,
            stdout=stdout.read().decode("utf-8", "replace"),
            stderr=stderr.read().decode("utf-8", "replace"),
            tree_rss=peak,
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


def is_consistent_copy(path: str) -> bool:
    """Return whether a path is a TUF consistent-snapshot copy (`<dir>/<sha256>.<name>`)."""
    name = path.rsplit("/", 1)[-1]
    return len(name) > 65 and name[64] == "." and all(c in "0123456789abcdef" for c in name[:64])


def is_index_json(path: str) -> bool:
    """Return whether a path is one of the JSON index's own files (not search, not TUF)."""
    return (
        path.endswith(".json")
        and not path.startswith(("search/", "metadata/"))
        and not is_consistent_copy(path)
    )


def kind_of(path: str) -> str:
    """Group a published path for the one-changed breakdown."""
    if path.startswith("metadata/"):
        return "metadata/ (TUF roles)"
    if is_consistent_copy(path):
        folder = path.split("/", 1)[0] + "/" if "/" in path else "the top level"
        return "consistent copies (TUF) in " + folder
    if path.startswith("search/"):
        return "search/" + path.split("/")[1] + "/"
    if path.startswith("index/"):
        return "index/ (plugin documents)"
    if path.startswith("api/plugins/recent/"):
        return "api/plugins/recent/ pages"
    if path.startswith("api/plugins/"):
        return "api/plugins/ (by name) pages"
    if path.startswith("artifacts/"):
        return "artifacts/"
    if path.startswith("plugins/"):
        return "plugins/<name>/ " + path.rsplit("/", 1)[-1] + " (site)"
    if path.endswith((".html", ".xml")) and "/" in path:
        return path.split("/", 1)[0] + "/ (site)"
    return path


@dataclass(frozen=True)
class Weights:
    """Sizes of the site's pages in the cold build, in bytes (HTML plus the CSS)."""

    css: int
    plugin_median: int  # plugin pages (the synthetic plugins have no README)
    plugin_max: int
    home: int
    pages: int  # HTML pages in the build


def page_weights(out: Path) -> Weights:
    """Return the weights of the site's pages in a build."""
    css = sum(p.stat().st_size for p in (out / "static").glob("style.*.css"))
    plugin = sorted(p.stat().st_size for p in (out / "plugins").glob("*/index.html"))
    pages = sum(1 for path in snapshot(out) if path.endswith(".html"))
    return Weights(
        css=css,
        plugin_median=plugin[len(plugin) // 2] + css if plugin else 0,
        plugin_max=plugin[-1] + css if plugin else 0,
        home=(out / "index.html").stat().st_size + css,
        pages=pages,
    )


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
    signed: bool  # the index has a TUF root: the builds sign
    baseline: float
    json_only: BuildRun  # cold, the JSON index alone
    with_site: BuildRun  # cold, the JSON index and the HTML site
    weights: Weights
    cold: BuildRun
    noop: BuildRun
    one: BuildRun
    changed_name: str
    new_file: str
    rewritten: tuple[str, ...]  # published files the one-changed build replaced
    removed: tuple[str, ...]  # and those it deleted

    @property
    def peak(self) -> int:
        """Return the largest memory of the three builds, workers included, in bytes."""
        runs = (self.cold, self.noop, self.one)
        return max(max(r.max_rss, r.tree_rss) for r in runs)

    @property
    def ratio(self) -> float:
        """Return cold build time over the parse-only baseline."""
        return self.cold.seconds / self.baseline

    @property
    def all_ratio(self) -> float:
        """Return the cold build with every stage over the JSON index alone."""
        return self.cold.seconds / self.json_only.seconds

    @property
    def site_ratio(self) -> float:
        """Return the cold build with the site over the same build without it."""
        return self.with_site.seconds / self.json_only.seconds

    @property
    def pages_written(self) -> int:
        """Return the HTML pages and feeds the one-changed build replaced."""
        return sum(1 for p in self.rewritten if p.endswith((".html", ".xml")))


def measure(base: Path, plugins: int, versions: int, seed: int, sign: bool = True) -> Measurements:
    """Generate the index under `base` and time every step (progress on stdout)."""
    index, out = base / "index", base / "out"
    shutil.rmtree(base, ignore_errors=True)
    os.sync()  # flush the deletion now, so it does not slow down (and skew) generation
    base.mkdir(parents=True)
    generation = _timed(lambda: generate(index, plugins, versions, seed))
    print(f"  generated in {generation:.1f} s", flush=True)
    keys = base / "keys" if sign else None
    if keys is not None:
        init_registry(index, keys)  # root 1 in index/tuf/, online keys beside the index
    env = build_environment(base, keys)
    baseline, files = parse_only(index)
    print(f"  parse-only baseline: {files} files in {baseline:.2f} s", flush=True)
    json_only = run_build(index, base / "out-json", "none", env)
    _check(json_only, "cold build of the JSON index alone")
    print(f"  cold build, JSON index alone: {json_only.seconds:.2f} s", flush=True)
    shutil.rmtree(base / "out-json")
    with_site = run_build(index, base / "out-site", "site", env)
    _check(with_site, "cold build with the site")
    print(f"  cold build with the site: {with_site.seconds:.2f} s", flush=True)
    weights = page_weights(base / "out-site")
    shutil.rmtree(base / "out-site")
    cold = run_build(index, out, env=env)
    _check(cold, "cold build")
    print(f"  cold build: {cold.seconds:.2f} s", flush=True)
    noop = run_build(index, out, env=env)
    _check(noop, "no-op rebuild")
    print(f"  no-op rebuild: {noop.seconds:.2f} s", flush=True)
    names = plugin_names(index)
    changed_name = names[len(names) // 2]
    new_file = modify_one(index, changed_name)
    before = snapshot(out)
    one = run_build(index, out, env=env)
    _check(one, "one-plugin-changed rebuild")
    print(f"  one-plugin-changed rebuild: {one.seconds:.2f} s", flush=True)
    after = snapshot(out)
    return Measurements(
        plugins=plugins,
        versions=versions,
        files=files,
        generation=generation,
        signed=sign,
        baseline=baseline,
        json_only=json_only,
        with_site=with_site,
        weights=weights,
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
    # The JSON index's own files (search and TUF write JSON too, counted apart).
    json_written = sum(1 for p in m.rewritten if is_index_json(p))
    json_removed = sum(1 for p in m.removed if is_index_json(p))
    handful = 0 <= json_written <= HANDFUL and json_removed == 0
    handful = handful and one.count("parsed") == 1
    w = m.weights
    checks = {
        "cold build": m.cold.seconds <= COLD_SECONDS,
        "no-op rebuild": m.noop.seconds <= NOOP_SECONDS,
        "one-plugin-changed rebuild": one.seconds <= ONE_CHANGED_SECONDS,
        "peak memory": m.peak <= PEAK_MEMORY_BYTES,
        "cold / parse-only ratio": m.ratio <= RATIO,
        "one-changed writes a handful": handful,
        "site: cold with / without": m.site_ratio <= SITE_RATIO,
        "site: plugin page weight": w.plugin_max <= PLUGIN_PAGE_BYTES,
        "site: home page weight": w.home <= HOME_PAGE_BYTES,
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
            "  CPU (user+sys): cold/no-op/one",
            f"{m.cold.cpu:.1f}/{m.noop.cpu:.1f}/{one.cpu:.1f}",
            "(s; info, robust to load)",
        ),
        _row("peak memory (all processes)", _mib(m.peak), "<= 1024 MiB", checks["peak memory"]),
        _row("  cold build: all / main", f"{_mib(m.cold.tree_rss)} / {_mib(m.cold.max_rss)}"),
        _row("  no-op rebuild: all / main", f"{_mib(m.noop.tree_rss)} / {_mib(m.noop.max_rss)}"),
        _row("  one-changed rebuild: all / main", f"{_mib(one.tree_rss)} / {_mib(one.max_rss)}"),
        _row(
            "cold / parse-only ratio",
            f"{m.ratio:.2f}",
            f"<= {RATIO}",
            checks["cold / parse-only ratio"],
        ),
        _row(
            "one-changed: JSON files written",
            str(json_written),
            f"<= {HANDFUL}",
            checks["one-changed writes a handful"],
        ),
        _row("one-changed: site pages written", str(m.pages_written)),
        _row("one-changed: files written (all)", str(one.count("written"))),
        _row("cold, JSON index alone (info)", _seconds(m.json_only.seconds)),
        _row("cold, JSON index + site (info)", _seconds(m.with_site.seconds)),
        _row(
            "  the same in CPU time (info)",
            f"{m.with_site.cpu / max(m.json_only.cpu, 1e-9):.2f}",
            f"({m.json_only.cpu:.1f} / {m.with_site.cpu:.1f} s)",
        ),
        _row(
            "site: cold with / without",
            f"{m.site_ratio:.2f}",
            f"<= {SITE_RATIO}",
            checks["site: cold with / without"],
        ),
        _row("  peak memory with the site", _mib(m.with_site.max_rss)),
        _row(
            "cold, every stage / JSON alone (info)",
            f"{m.all_ratio:.2f}",
            f"(CPU {m.cold.cpu / max(m.json_only.cpu, 1e-9):.2f})",
        ),
        _row("site: HTML pages in the build", str(w.pages)),
        _row(
            "site: plugin page + CSS (max)",
            f"{w.plugin_max / KIB:.1f} KiB",
            f"<= {PLUGIN_PAGE_BYTES // KIB} KiB",
            checks["site: plugin page weight"],
        ),
        _row("site: plugin page + CSS (median)", f"{w.plugin_median / KIB:.1f} KiB"),
        _row(
            "site: home page + CSS",
            f"{w.home / KIB:.1f} KiB",
            f"<= {HOME_PAGE_BYTES // KIB} KiB",
            checks["site: home page weight"],
        ),
    ]
    print()
    signing = "signed (TUF)" if m.signed else "unsigned (--no-tuf)"
    print(f"Results: {m.plugins} plugins x {m.versions} versions ({m.files} YAML files), {signing}")
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


# --- the JSON index alone: cold (one process and with workers), no-op, one change -----

# Runs one build of the JSON index alone (no later stage) in-process. Options (JSON):
# "workers" (how many worker processes; a builder without the option ignores it),
# "live" (a file of path -> sha256: the artifacts the target registry holds) and
# "changed" (the paths changed since the last build, as `build --changed` takes them).
_INDEX_RUNNER = """
import inspect, json, sys
from pathlib import Path
from builder.index.build import build
index, out, options = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
kwargs = {"fetch": False, "stages": []}
if options.get("live"):
    kwargs["live"] = json.loads(Path(options["live"]).read_text(encoding="utf-8"))
    kwargs["live_read"] = lambda path: None
if "workers" in options and "workers" in inspect.signature(build).parameters:
    kwargs["workers"] = options["workers"]
if "changed" in options:
    kwargs["changed"] = options["changed"]
if __name__ == "__main__":
    import resource
    r = build(index, out, **kwargs)
    print(f"built {r.plugins} plugins, {r.versions} versions into {out}: "
          f"{len(r.report.written)} written, {len(r.report.removed)} removed, "
          f"{r.report.unchanged} unchanged ({len(r.reparsed)} plugins parsed)")
    main = resource.getrusage(resource.RUSAGE_SELF)
    print(f"cpu of this process: {main.ru_utime + main.ru_stime:.3f} s")
"""

INDEX_EPOCH = "1700000000"  # SOURCE_DATE_EPOCH of these builds: no clock, no git commit
# Targets of the JSON index alone (issue 16).
INDEX_COLD_RATIO = 1.0  # cold build with workers / single-core parse-only baseline
INDEX_NOOP_SECONDS = 1.0
INDEX_ONE_SECONDS = 2.0


@dataclass(frozen=True)
class Builder:
    """A checkout of the builder to measure (None: the one this script belongs to)."""

    name: str
    checkout: Path | None


def run_index_build(
    index: Path, out: Path, builder: Builder, options: dict[str, object], base: Path
) -> BuildRun:
    """Run one build of the JSON index alone in its own process (see _INDEX_RUNNER)."""
    env = {**as_installed(), "SOURCE_DATE_EPOCH": INDEX_EPOCH, "GIT_CEILING_DIRECTORIES": str(base)}
    if builder.checkout is not None:
        env["PYTHONPATH"] = str(builder.checkout)  # its builder/ before the installed one
    command = [sys.executable, "-c", _INDEX_RUNNER, str(index), str(out), json.dumps(options)]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, cwd=base)
        memory = TreeMemory(process.pid)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        peak = memory.stop()
        stdout.seek(0)
        stderr.seek(0)
        run = BuildRun(
            seconds=seconds,
            max_rss=memory.own_or(usage.ru_maxrss * 1024),
            cpu=usage.ru_utime + usage.ru_stime,
            returncode=os.waitstatus_to_exitcode(status),
            stdout=stdout.read().decode("utf-8", "replace"),
            stderr=stderr.read().decode("utf-8", "replace"),
            tree_rss=peak,
        )
    _check(run, f"{builder.name}: build of the JSON index into {out.name}")
    return run


_MAIN_CPU = re.compile(r"cpu of this process: (?P<seconds>[0-9.]+) s")


def main_cpu(run: BuildRun) -> float:
    """Return the CPU time of a build's own process (its workers left out), or -1."""
    match = _MAIN_CPU.search(run.stdout)
    return float(match["seconds"]) if match else -1.0


def published_record(out: Path) -> dict[str, tuple[str, int]]:
    """Return every published file of a build with its sha256 and size."""
    from builder.common.build_folder import read_outputs

    record = read_outputs(out)
    if record is not None:
        return record
    found = {}
    for path in snapshot(out):
        data = (out / path).read_bytes()
        found[path] = (hashlib.sha256(data).hexdigest(), len(data))
    return found


@dataclass(frozen=True)
class IndexRuns:
    """The builds of one builder: cold, no-op and after one plugin changed."""

    cold: BuildRun
    noop: BuildRun
    one: BuildRun


@dataclass(frozen=True)
class IndexMeasurements:
    """What the JSON-index benchmark measured."""

    plugins: int
    versions: int
    artifacts: str  # how artifacts reach the build (see `index_benchmark`)
    files: int
    baseline: float
    baseline_cpu: float  # CPU time of the parse-only baseline
    serial: BuildRun  # cold, no worker process
    identical: bool  # the serial and the parallel cold builds hold the same files
    published: int  # files in the cold build
    runs: dict[str, IndexRuns]  # by builder name, this builder first
    told: BuildRun  # this builder, another plugin changed, told what changed (--changed)


def _warm_inodes(*folders: Path) -> None:
    """Stat every entry of `folders`, as the build that made them left them cached.

    A rebuild right after a build finds the index's and the output's inodes in the
    kernel's cache; one that follows the cold build of another builder does not, and
    was up to three times slower for it. Each builder's rebuild starts warm.
    """
    subprocess.run(["find", *map(str, folders)], stdout=subprocess.DEVNULL, check=True)


def measure_index(
    base: Path,
    plugins: int,
    versions: int,
    seed: int,
    *,
    artifacts: str,
    live: bool,
    builders: Sequence[Builder],
) -> IndexMeasurements:
    """Generate an index under `base` and time the JSON index's builds with each builder."""
    index = base / "index"
    shutil.rmtree(base, ignore_errors=True)
    os.sync()
    base.mkdir(parents=True)
    made = generate(index, plugins, versions, seed, artifacts=artifacts)
    print(f"  generated {made.plugins} plugins, {made.versions} versions", flush=True)
    options: dict[str, object] = {}
    if live:
        (base / "live.json").write_text(json.dumps(made.artifacts), encoding="utf-8")
        options["live"] = str(base / "live.json")
    started = time.process_time()
    baseline, files = parse_only(index)
    baseline_cpu = time.process_time() - started
    print(f"  parse-only baseline: {files} files in {baseline:.2f} s", flush=True)
    serial = run_index_build(
        index, base / "out-serial", builders[0], {**options, "workers": 0}, base
    )
    print(f"  cold, one process: {serial.seconds:.2f} s", flush=True)
    cold: dict[str, BuildRun] = {}
    noop: dict[str, BuildRun] = {}
    one: dict[str, BuildRun] = {}
    for builder in builders:  # one builder after the other at each step: the same load
        cold[builder.name] = run_index_build(
            index, base / f"out-{builder.name}", builder, options, base
        )
        print(f"  {builder.name}: cold: {cold[builder.name].seconds:.2f} s", flush=True)
    record = published_record(base / f"out-{builders[0].name}")
    identical = published_record(base / "out-serial") == record
    shutil.rmtree(base / "out-serial")
    for builder in builders:
        _warm_inodes(index, base / f"out-{builder.name}")
        noop[builder.name] = run_index_build(
            index, base / f"out-{builder.name}", builder, options, base
        )
        print(f"  {builder.name}: no-op: {noop[builder.name].seconds:.2f} s", flush=True)
    names = plugin_names(index)
    modify_one(index, names[len(names) // 2])
    for builder in builders:
        _warm_inodes(index, base / f"out-{builder.name}")
        one[builder.name] = run_index_build(
            index, base / f"out-{builder.name}", builder, options, base
        )
        print(
            f"  {builder.name}: one plugin changed: {one[builder.name].seconds:.2f} s", flush=True
        )
    # The same change to another plugin, the build told which file it was (as a hook
    # with the merge's `git diff --name-only` would tell it): no find of the index.
    changed = modify_one(index, names[len(names) // 2 + 1])
    _warm_inodes(index, base / f"out-{builders[0].name}")
    told = run_index_build(
        index,
        base / f"out-{builders[0].name}",
        builders[0],
        {**options, "changed": [str(changed)]},
        base,
    )
    print(f"  {builders[0].name}: one plugin changed, told: {told.seconds:.2f} s", flush=True)
    mode = (
        "remote, taken as live (build --live)"
        if live
        else (
            "in the index, mirrored into the output"
            if artifacts == "local"
            else "remote, not fetched"
        )
    )
    return IndexMeasurements(
        plugins=made.plugins,
        versions=made.versions,
        artifacts=mode,
        files=files,
        baseline=baseline,
        baseline_cpu=baseline_cpu,
        serial=serial,
        identical=identical,
        published=len(record),
        runs={b.name: IndexRuns(cold[b.name], noop[b.name], one[b.name]) for b in builders},
        told=told,
    )


def report_index(m: IndexMeasurements) -> list[str]:
    """Print the JSON-index results; return the names of the missed targets."""
    names = list(m.runs)
    ours = m.runs[names[0]]
    checks = {
        "cold / parse-only": ours.cold.seconds / m.baseline <= INDEX_COLD_RATIO,
        "parallel == serial": m.identical,
        "no-op": ours.noop.seconds <= INDEX_NOOP_SECONDS,
        "one plugin changed": ours.one.seconds <= INDEX_ONE_SECONDS,
        "one changed: parsed one": ours.one.count("parsed") == 1,
        "one changed, told": m.told.seconds <= INDEX_ONE_SECONDS,
        "one changed, told: parsed one": m.told.count("parsed") == 1,
    }

    def cells(run: BuildRun) -> str:
        return (
            f"{run.seconds:>8.2f} s {run.cpu:>7.2f} s {main_cpu(run):>7.2f} s "
            f"{run.max_rss / MIB:>6.0f} MiB {run.tree_rss / MIB:>4.0f} MiB"
        )

    header = f"  {'build':<28} {'wall':>10} {'cpu':>9} {'main cpu':>9} {'max RSS':>10} {'all':>8}"
    for name in names[1:]:
        header += f"   | {name + ' wall':>12} {'cpu':>9}   {'ratio':>6}"
    print()
    print(
        f"JSON index: {m.plugins} plugins, {m.versions} versions ({m.files} YAML files), "
        f"artifacts {m.artifacts}; {m.published} files published"
    )
    print(header)
    print(f"  {'parse-only baseline':<28} {m.baseline:>8.2f} s {m.baseline_cpu:>7.2f} s")
    print(f"  {'cold, one process':<28} {cells(m.serial)}")
    for label, pick in (
        ("cold, with workers", "cold"),
        ("no-op", "noop"),
        ("one plugin changed", "one"),
    ):
        run = getattr(ours, pick)
        line = f"  {label:<28} {cells(run)}"
        for name in names[1:]:
            other = getattr(m.runs[name], pick)
            line += (
                f"   | {other.seconds:>10.2f} s {other.cpu:>7.2f} s   "
                f"{run.seconds / other.seconds:>6.2f}"
            )
        print(line)
    print(f"  {'one plugin changed, told':<28} {cells(m.told)}")
    print()
    ratio = ours.cold.seconds / m.baseline
    serial_ratio = m.serial.seconds / m.baseline
    print(
        _row(
            "cold with workers / baseline",
            f"{ratio:.2f}",
            f"<= {INDEX_COLD_RATIO}",
            checks["cold / parse-only"],
        )
    )
    print(_row("cold, one process / baseline", f"{serial_ratio:.2f}"))
    # On a busy machine wall times say more about the neighbours than about the build:
    # the CPU time of the build's own process (its critical path when the workers keep
    # up) over the baseline's is what an idle machine would show.
    print(_row("  in CPU: main process / baseline", f"{main_cpu(ours.cold) / m.baseline_cpu:.2f}"))
    print(_row("  in CPU: all processes / baseline", f"{ours.cold.cpu / m.baseline_cpu:.2f}"))
    print(_row("  in CPU: one process / baseline", f"{m.serial.cpu / m.baseline_cpu:.2f}"))
    print(
        _row(
            "parallel build == serial build",
            "yes" if m.identical else "NO",
            "byte for byte",
            checks["parallel == serial"],
        )
    )
    print(
        _row(
            "no-op", _seconds(ours.noop.seconds), f"<= {INDEX_NOOP_SECONDS:.0f} s", checks["no-op"]
        )
    )
    print(
        _row(
            "one plugin changed",
            _seconds(ours.one.seconds),
            f"<= {INDEX_ONE_SECONDS:.0f} s",
            checks["one plugin changed"],
        )
    )
    print(
        _row(
            "  plugins parsed",
            str(ours.one.count("parsed")),
            "1",
            checks["one changed: parsed one"],
        )
    )
    print(
        _row(
            "one plugin changed, told",
            _seconds(m.told.seconds),
            f"<= {INDEX_ONE_SECONDS:.0f} s",
            checks["one changed, told"],
        )
    )
    print(_row("  told / looked", f"{m.told.seconds / ours.one.seconds:.2f}"))
    print(
        _row(
            "  plugins parsed",
            str(m.told.count("parsed")),
            "1",
            checks["one changed, told: parsed one"],
        )
    )
    missed = [name for name, ok in checks.items() if not ok]
    print()
    print("All targets met." if not missed else f"Missed: {', '.join(missed)}.")
    return missed


def index_benchmark(args: argparse.Namespace) -> list[str]:
    """Run the JSON-index benchmark from the command line's options; return the missed."""
    if args.live and args.artifacts != "remote":
        raise SystemExit("--live needs --artifacts remote (local artifacts are never live)")
    builders = [Builder("this", None)]
    if args.compare is not None:
        builders.append(Builder("compared", args.compare.resolve()))
    mode = "live" if args.live else args.artifacts
    base = args.data / f"index-{args.plugins}x{args.versions}-{mode}-seed{args.seed}"
    print(
        f"plugindex build benchmark, JSON index alone: {args.plugins} plugins x "
        f"{args.versions} versions (seed {args.seed}) in {base}; builder at "
        f"{source_revision()}" + (f", compared with {args.compare}" if args.compare else ""),
        flush=True,
    )
    measured = measure_index(
        base,
        args.plugins,
        args.versions,
        args.seed,
        artifacts=args.artifacts,
        live=args.live,
        builders=builders,
    )
    return report_index(measured)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; exit 1 with --check when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--plugins", type=int, default=10_000, help="number of plugins")
    parser.add_argument("--versions", type=int, default=10, help="versions per plugin")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder for the index and build output"
    )
    parser.add_argument(
        "--index",
        action="store_true",
        help="measure the JSON index alone: cold (one process, and with workers), no-op, "
        "one plugin changed",
    )
    parser.add_argument(
        "--artifacts",
        choices=("local", "remote"),
        default="local",
        help="with --index: artifacts in the index (mirrored into the output), or remote",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="with --index --artifacts remote: every artifact is live already (build --live)",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="CHECKOUT",
        help="with --index: also time the builder of another checkout (a git worktree)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--no-tuf", action="store_true", help="give the index no TUF root (builds do not sign)"
    )
    args = parser.parse_args(argv)
    base = args.data / f"bench-{args.plugins}x{args.versions}-seed{args.seed}"
    if args.index:
        missed = index_benchmark(args)
        return 1 if missed and args.check else 0
    print(
        f"plugindex build benchmark: {args.plugins} plugins x {args.versions} versions "
        f"(seed {args.seed}) in {base}; builder at {source_revision()}",
        flush=True,
    )
    missed = report(measure(base, args.plugins, args.versions, args.seed, sign=not args.no_tuf))
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
