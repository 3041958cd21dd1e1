"""Benchmark `plugindex install` against a served synthetic index: requests and wall time.

    python benchmarks/bench_client.py                      # 10000 plugins x 10 versions
    python benchmarks/bench_client.py --plugins 500        # a quick run

Steps: generate the synthetic index (kept in benchmarks/.data/; long-tailed version
counts, so a few plugins have 500+) and give it TUF roles (`registry init` sizes the
bins, keys kept next to it), build it signed, pick a plugin whose runtime dependency
closure holds 5 other plugins, give the six versions the resolver picks real
artifacts (small archives in their plugin folders, which the build mirrors and signs;
their version files re-signed with the generator's owner keys; an incremental signed
rebuild), serve the build on 127.0.0.1 with a server that counts requests, then run
`plugindex install` as a subprocess: cold (empty cache, TUF state and plugins folder),
warm into a fresh plugins folder (same cache and state), and warm again into the same
folder; through TUF (`--root`), then the same three with `--insecure-no-tuf`. Each
run prints its requests, wall time and peak memory (max RSS, by GNU time). Then
`plugindex info` on the first plugin with 500+ versions and on the largest, cold and
warm, against start-up: an interpreter importing the modules that `info` imports.

Issue 16's client targets: a 5-plugin closure installs at 150,000 plugins within 10 %
of the 10,000 figure (time and memory): compare two runs, `--plugins 10000` and
`--plugins 150000`; `info` on a plugin with 500 versions <= 200 ms beyond start-up.

Unsigned, a cold install of six plugins needs 1 + 6 documents and 6 artifacts (13
requests) and a warm run revalidates the 7 documents. Through TUF the target is cold
<= 13 + 3 + the distinct bins touched (config.json is in the targets role: no bin),
plus the probe for the next root that the TUF workflow requires, and warm <= 2 (a 304
on the timestamp answers all). `--each` lists every request of every run.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import http.server
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generate_index import generate, owner_key, plugin_names

from builder.authoring.sign import sign_file
from builder.client.lockfile import Lockfile
from builder.client.plan import resolve_against
from builder.client.registry import Registry, UnknownPluginError
from builder.client.resolve import Options, ResolutionError, Root
from builder.common.fetch import LocalFetcher
from builder.index.build import build
from builder.publish.serve import BuildRequestHandler
from builder.tuf.admin import init_registry
from builder.tuf.keys import ONLINE
from builder.tuf.stage import TufStage

HERE = Path(__file__).resolve().parent
CLOSURE = 6  # the plugin and five dependencies
GIANT = 500  # versions: issue 16 times `info` on a plugin with this many


class CountingHandler(BuildRequestHandler):
    """The build server, recording (path, status, conditional) of every request."""

    hits: list[tuple[str, int, bool]]
    lock = threading.Lock()

    def send_response(self, code: int, message: str | None = None) -> None:
        conditional = "If-None-Match" in self.headers or "If-Modified-Since" in self.headers
        with self.lock:
            self.hits.append((self.path, code, conditional))
        super().send_response(code, message)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def plugindex_command() -> list[str]:
    """Return the CLI of this interpreter's environment."""
    script = Path(sys.executable).with_name("plugindex")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "builder"]


def find_target(out: Path, names: list[str]) -> tuple[str, dict[str, str]]:
    """Return a plugin whose install closure has CLOSURE plugins, and that closure."""
    registry = Registry(LocalFetcher(out))
    for name in reversed(names):  # later names depend on earlier ones
        try:
            resolution, _, _ = resolve_against(
                registry, [Root(name)], Lockfile(), {}, unlock=[name], options=Options()
            )
        except (ResolutionError, UnknownPluginError):
            continue
        if len(resolution.selected) == CLOSURE:
            return name, {n: c.version for n, c in resolution.selected.items()}
    raise SystemExit(f"no plugin with a closure of {CLOSURE} plugins; try more plugins")


def small_archive(name: str, version: str) -> bytes:
    """Return a deterministic tar.gz holding one plugin.toml."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = f'name = "{name}"\nversion = "{version}"\n'.encode()
        info = tarfile.TarInfo(f"{name}-{version}/plugin.toml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)  # no timestamp: the same bytes each run


def allow_local_artifacts(index: Path) -> None:
    """Let the index hold artifacts in plugin folders (before the first build: no rebuild)."""
    registry = index / "registry.yaml"
    text = registry.read_text(encoding="utf-8")
    if "allow_local_artifacts" not in text:
        text = text.replace("policy:\n", "policy:\n  allow_local_artifacts: true\n", 1)
        registry.write_text(text, encoding="utf-8")


def give_real_artifacts(index: Path, closure: dict[str, str]) -> None:
    """Give the chosen versions real archives in their plugin folders; re-sign them.

    The build mirrors such local artifacts into its output and signs them as targets,
    as it would the artifacts of a registry that mirrors everything.
    """
    for name, version in closure.items():
        folder = index / "plugins" / name
        handle = re.search(r'github: "?([^"\s]+)', (folder / "plugin.yaml").read_text())
        assert handle is not None
        file = folder / "versions" / f"{version}.yaml"
        data = small_archive(name, version)
        text = file.read_text(encoding="utf-8")
        filename = re.search(r'(?m)^  filename: "?([^"\n]+)"?$', text)
        assert filename is not None
        (folder / "artifacts").mkdir(exist_ok=True)
        (folder / "artifacts" / filename[1]).write_bytes(data)
        replacements = {
            "url": f'"artifacts/{filename[1]}"',
            "sha256": f'"{hashlib.sha256(data).hexdigest()}"',
            "size": str(len(data)),
        }
        for field, value in replacements.items():
            text = re.sub(rf"(?m)^  {field}: .*$", f"  {field}: {value}", text, count=1)
        file.write_text(text, encoding="utf-8")
        sign_file(file, owner_key(name, handle[1]))


def signed_build(index: Path, out: Path, keys: Path) -> None:
    """Build `index` into `out` with its TUF metadata, signed now with the keys in `keys`."""
    environ = {
        "SOURCE_DATE_EPOCH": str(int(time.time()) - 60),
        **{f"PLUGINDEX_TUF_{r.upper()}_SIGNER": f"file:{keys / f'{r}.pem'}" for r in ONLINE},
    }
    build(index, out, fetch=False, environ=environ, stages=[TufStage(environ=environ)])


@dataclass(frozen=True)
class Run:
    """One CLI run: wall time, peak memory (max RSS, KiB), CPU time and its requests.

    CPU time (user + system) is what to compare on a busy machine: wall time then
    mostly measures the other processes.
    """

    elapsed: float
    max_rss: int
    hits: list[tuple[str, int, bool]]
    stderr: str = ""
    cpu: float = 0.0  # seconds, user + system (0 without GNU time)


GNU_TIME = Path("/usr/bin/time")


def run_cli(
    args: list[str],
    home: Path,
    hits: list[tuple[str, int, bool]],
    *,
    command: list[str] | None = None,
    environ: dict[str, str] | None = None,
) -> Run:
    """Run `plugindex ARGS` (data folder in `home`); return its time, peak memory, requests.

    The peak is measured by GNU time when there is one: Linux keeps a process's peak
    across exec, so a child started from this (large) process would report this
    process's peak, not its own.
    """
    hits.clear()
    with tempfile.TemporaryDirectory() as temp:
        report = Path(temp) / "rss"
        measure = [str(GNU_TIME), "-f", "%M %U %S", "-o", str(report)] if GNU_TIME.exists() else []
        started = time.perf_counter()
        done = subprocess.run(
            [*measure, *(command or plugindex_command()), *args],
            env={**os.environ, "PLUGINDEX_DATA_DIR": str(home / "data"), **(environ or {})},
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{args[0]} failed ({done.returncode}): {done.stderr}")
        figures = report.read_text().split()[-3:] if measure else ["0", "0", "0"]
    cpu = float(figures[1]) + float(figures[2])
    return Run(elapsed, int(figures[0]), list(hits), done.stderr, cpu)


def run_install(
    url: str,
    target: str,
    home: Path,
    plugins: Path,
    *,
    trust: list[str],
    hits: list[tuple[str, int, bool]],
) -> Run:
    """Run one `plugindex install` (cache and TUF state in `home`)."""
    command = ["install", target, "--registry", url, "--plugins-dir", str(plugins)]
    return run_cli([*command, "--cache-dir", str(home / "cache"), *trust], home, hits)


def kind_of(path: str) -> str:
    """Return what a requested path is: a metadata role, config, index or artifact."""
    if path.startswith("/metadata/"):
        role = path.rsplit("/", 1)[1].removesuffix(".json").rpartition(".")[2]
        return "bin" if role.startswith("bins-") else role
    if path.endswith("config.json"):
        return "config"
    return "index" if path.startswith("/index/") else "artifact"


def describe(label: str, run: Run, *, each: bool = False) -> int:
    """Print one run's figures (and with `each` every request); return the bins it fetched."""
    kinds: Counter[str] = Counter()
    hits = run.hits
    for path, code, conditional in hits:
        kinds[f"{kind_of(path)} {code}{' conditional' if conditional else ''}"] += 1
    detail = ", ".join(f"{count} {key}" for key, count in sorted(kinds.items()))
    print(
        f"{label:<42} {len(hits):>3} requests in {run.elapsed:5.2f} s (CPU {run.cpu:4.2f} s), "
        f"{run.max_rss / 1024:5.1f} MiB  ({detail})"
    )
    for path, code, conditional in hits if each else []:
        print(f"    {code} {path}{' (conditional)' if conditional else ''}")
    return len({path for path, _, _ in hits if kind_of(path) == "bin"})


def median(runs: Sequence[Run]) -> Run:
    """Return the run of median time."""
    return sorted(runs, key=lambda r: r.elapsed)[len(runs) // 2]


def run_modes(
    url: str,
    target: str,
    root: Path,
    hits: list[tuple[str, int, bool]],
    *,
    each: bool = False,
    repeat: int = 1,
) -> None:
    """Run cold, warm and warm-installed installs through TUF, then without; print each.

    With `repeat`, each sequence runs that many times from scratch; the median is shown.
    """
    unsigned = 1 + CLOSURE + CLOSURE
    modes = {"TUF": ["--root", str(root)], "--insecure-no-tuf": ["--insecure-no-tuf"]}
    labels = ("cold", "warm cache, fresh plugins folder", "warm, already installed")
    for mode, trust in modes.items():
        runs: dict[str, list[Run]] = {label: [] for label in labels}
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as temp:
                home, first = Path(temp), Path(temp) / "plugins"
                for label, plugins in zip(labels, (first, home / "p2", first), strict=True):
                    run = run_install(url, target, home, plugins, trust=trust, hits=hits)
                    runs[label].append(run)
        shown = {label: median(found) for label, found in runs.items()}
        note = f" (median of {repeat})" if repeat > 1 else ""
        bins = describe(f"{mode}: cold{note}", shown["cold"], each=each)
        for label in labels[1:]:
            describe(f"{mode}: {label}", shown[label], each=each)
        if mode == "TUF":
            goal = unsigned + 3 + bins
            print(
                f"  target: cold <= {unsigned} + 3 + {bins} bins = {goal}, plus the "
                f"metadata/N+1.root.json probe the TUF client workflow requires = {goal + 1} "
                f"(got {len(shown['cold'].hits)}); warm <= 2 (got "
                f"{len(shown[labels[1]].hits)} and {len(shown[labels[2]].hits)})"
            )
    print(f"unsigned minimum for a cold install: {1 + CLOSURE} documents + {CLOSURE} artifacts")


def version_counts(index: Path) -> dict[str, int]:
    """Return how many version files each plugin has."""
    return {
        entry.name: sum(1 for _ in os.scandir(entry.path + "/versions"))
        for entry in os.scandir(index / "plugins")
    }


def info_subjects(index: Path) -> list[tuple[str, int]]:
    """Return the plugins `info` is timed on: the first with 500+ versions, and the largest."""
    counts = version_counts(index)
    largest = max(counts.items(), key=lambda item: (item[1], item[0]))
    giants = sorted((n, name) for name, n in counts.items() if n >= GIANT)
    subjects = [(giants[0][1], giants[0][0])] if giants else []
    return [*subjects, largest] if largest not in subjects else subjects


def median_run(
    runs: int,
    args: list[str],
    home: Path,
    hits: list[tuple[str, int, bool]],
    *,
    command: list[str] | None = None,
) -> Run:
    """Run the same command `runs` times; return the run of median time."""
    done = [run_cli(args, home, hits, command=command) for _ in range(runs)]
    return sorted(done, key=lambda r: r.elapsed)[len(done) // 2]


def imported_by(args: list[str], home: Path, hits: list[tuple[str, int, bool]]) -> list[str]:
    """Return the top-level modules a CLI run imports (from -X importtime)."""
    run = run_cli(args, home, hits, environ={"PYTHONPROFILEIMPORTTIME": "1"})
    found = re.findall(r"(?m)^import time:\s+\d+ \|\s+\d+ \| (\S+)$", run.stderr)
    return [name for name in found if name != "__main__"]


def run_info(url: str, name: str, root: Path, hits: list[tuple[str, int, bool]]) -> None:
    """Time `plugindex info` on one plugin, cold and warm, against its start-up.

    Start-up: an interpreter importing every module the same `info` run imports, and
    doing nothing else (the CLI loads a command's modules on demand).
    """
    with tempfile.TemporaryDirectory() as temp:
        home = Path(temp)
        args = ["info", name, "--registry", url, "--root", str(root)]
        args += ["--cache-dir", str(home / "cache"), "--json"]
        cold = run_cli(args, home, hits)
        describe("info: cold", cold)
        warm = median_run(5, args, home, hits)
        describe("info: warm (median of 5)", warm)
        modules = imported_by(args, home, hits)
        imports = ["-c", f"import {', '.join(modules)}"]
        startup = median_run(5, imports, home, hits, command=[sys.executable])
    print(
        f"  start-up (python importing the {len(modules)} modules info imports, median of 5): "
        f"{startup.elapsed * 1000:.0f} ms (CPU {startup.cpu * 1000:.0f} ms), "
        f"{startup.max_rss / 1024:.1f} MiB\n  info beyond it (target <= 200 ms): cold "
        f"{(cold.elapsed - startup.elapsed) * 1000:.0f} ms (CPU "
        f"{(cold.cpu - startup.cpu) * 1000:.0f} ms), warm "
        f"{(warm.elapsed - startup.elapsed) * 1000:.0f} ms (CPU "
        f"{(warm.cpu - startup.cpu) * 1000:.0f} ms)"
    )


def prepare(args: argparse.Namespace) -> tuple[Path, Path, str]:
    """Generate, sign and build the registry (unless reused); return index, output, target."""
    # "-tail": generated with the long tail of version counts (a few plugins with 500+).
    root = args.data / f"client-{args.plugins}x{args.versions}-seed{args.seed}-tail"
    index, out, keys = root / "index", root / "out", root / "tuf-keys"
    if not (index / "registry.yaml").exists():
        started = time.perf_counter()
        generate(index, args.plugins, args.versions, args.seed)
        print(
            f"generated {args.plugins} x {args.versions} in {time.perf_counter() - started:.1f} s"
        )
    allow_local_artifacts(index)
    if not (index / "tuf").is_dir():
        bins = init_registry(index, keys).bins
        print(f"registry init: root 1 and keys in {keys}, {bins} bins")
    reuse = args.reuse and (out / "metadata" / "timestamp.json").is_file()
    if not reuse:
        started = time.perf_counter()
        signed_build(index, out, keys)
        print(f"built (signed) in {time.perf_counter() - started:.1f} s")
    target, closure = find_target(out, plugin_names(index))
    print(f"target: {target}, closure: {', '.join(f'{n} {v}' for n, v in sorted(closure.items()))}")
    if not reuse:
        give_real_artifacts(index, closure)
        started = time.perf_counter()
        signed_build(index, out, keys)
        print(f"rebuilt with the closure's artifacts in {time.perf_counter() - started:.1f} s")
    return index, out, target


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--plugins", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--each", action="store_true", help="print every request of every run")
    parser.add_argument("--repeat", type=int, default=3, help="install runs per figure (median)")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the last build again: no generate or build"
    )
    args = parser.parse_args(argv)
    index, out, target = prepare(args)
    hits: list[tuple[str, int, bool]] = []
    handler = type("Handler", (CountingHandler,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(out))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/"
    root_file = index / "tuf" / "1.root.json"
    try:
        print(f"\nplugindex install {target} ({CLOSURE} plugins), {args.plugins} x {args.versions}")
        run_modes(url, target, root_file, hits, each=args.each, repeat=args.repeat)
        for name, versions in info_subjects(index):
            print(f"\nplugindex info {name} ({versions} versions)")
            run_info(url, name, root_file, hits)
        metadata = out / "metadata"
        snapshot = max(metadata.glob("*.snapshot.json"), key=lambda f: int(f.name.split(".")[0]))
        sizes = [f.stat().st_size for f in metadata.glob("*.bins-*.json")]
        print(
            f"\nmetadata: {snapshot.name} {snapshot.stat().st_size} bytes; {len(sizes)} bin "
            f"files, largest {max(sizes)} bytes, mean {sum(sizes) // len(sizes)}"
        )
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
