"""Benchmark search: relevance, bytes per query, build overhead and query latency.

    python benchmarks/bench_search.py --plugins 1000            # a quick run
    python benchmarks/bench_search.py --plugins 10000           # the issue's size
    python benchmarks/bench_search.py --plugins 10000 --no-pagefind --no-browser
    # before/after in one run: an earlier checkout's builds and CLI alternate with these
    git archive <commit> | tar -x -C /tmp/before
    python benchmarks/bench_search.py --plugins 10000 --baseline /tmp/before --rounds 3

Prints one table per part:

- relevance (precision@1, MRR@10, recall@10) of the CLI (Whoosh), the browser shards
  (site/search.js run in Chromium) and a naive substring match, over the labelled
  query set benchmarks/search_queries.json (bundled index and generated corpus), and
  the queries where the CLI and the browser disagree on the first result;
- bytes the browser fetches per query in a fresh page (median, p95: the manifest, key
  lists and shards), beside Pagefind (PyPI `pagefind[bin]`) indexing one plain page per
  plugin of the same corpus;
- build: cold builds with and without the search stage (wall and CPU time, peak
  memory; `--rounds` of each, alternating with the baseline's if given), then one-plugin
  changes (stage time, search files and bytes changed), and the Whoosh index over 100
  successive one-plugin updates (files, bytes);
- the CLI: first sync bytes, query latency in-process (p50, p95, warm), and the
  whole `plugindex search` process (median of 9, warm cache; alternating with the
  baseline's CLI over its own build if given).

The machine may be shared: compare ratios taken in one run, not figures across runs.
Data goes to benchmarks/.data/search-<P>x<V>-seed<S>/ (git-ignored), kept for reruns.
"""

from __future__ import annotations

import argparse
import http.server
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generate_index import generate, modify_one, plugin_names  # noqa: E402

QUERIES = ROOT / "benchmarks" / "search_queries.json"
SEARCH_JS = ROOT / "site" / "search.js"
CHROMIUM = "/usr/bin/chromium"
EPOCH = "1736899200"


# --- builds, each in its own process (own time, own peak memory) ----------------------


def _child_build(index: Path, out: Path, with_search: bool) -> None:
    """Build in this process and print what it cost as JSON (the `_build` sub-command)."""
    from builder.index.build import build
    from builder.search.stage import SearchStage

    class Timed(SearchStage):
        seconds = 0.0
        cpu = 0.0

        def plan(self, view: Any) -> Any:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return super().plan(view)
            finally:
                Timed.seconds += time.perf_counter() - started
                Timed.cpu += time.process_time() - cpu

        def committed(self, view: Any) -> None:
            started, cpu = time.perf_counter(), time.process_time()
            super().committed(view)
            Timed.seconds += time.perf_counter() - started
            Timed.cpu += time.process_time() - cpu

    stage = Timed()
    started = time.perf_counter()
    result = build(
        index,
        out,
        fetch=False,
        environ={"SOURCE_DATE_EPOCH": EPOCH},
        stages=[stage] if with_search else [],
    )
    elapsed = time.perf_counter() - started
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    print(
        json.dumps(
            {
                "seconds": elapsed,
                # CPU of this process and its workers (signature checks run in a pool)
                "cpu_seconds": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
                "stage_seconds": Timed.seconds,
                "stage_cpu_seconds": Timed.cpu,
                "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "written": len(result.report.written),
                "report": stage.report,
            }
        )
    )


def run_build(index: Path, out: Path, *, with_search: bool, tree: Path = ROOT) -> dict[str, Any]:
    """Run one build in a child process with the code of `tree`; return its JSON report."""
    done = subprocess.run(
        [
            sys.executable,
            str(tree / "benchmarks" / "bench_search.py"),
            "_build",
            str(index),
            str(out),
            "1" if with_search else "0",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def search_files(out: Path) -> dict[str, tuple[int, int]]:
    """Return path -> (size, mtime_ns) of every file under out/search."""
    found = {}
    for path in (out / "search").rglob("*"):
        if path.is_file():
            stat = path.stat()
            found[str(path.relative_to(out))] = (stat.st_size, stat.st_mtime_ns)
    return found


# --- the corpus and the labels --------------------------------------------------------


@dataclass
class Plugin:
    name: str
    display: str
    description: str
    keywords: list[str]
    categories: list[str]
    engine: str

    @property
    def parts(self) -> list[str]:
        return self.name.split("-")

    def has_word(self, word: str) -> bool:
        return word in self.parts or word in self.keywords


def corpus(out: Path) -> dict[str, Plugin]:
    """Read every plugin of a build from its per-plugin document."""
    plugins = {}
    for path in sorted((out / "index").rglob("*.json")):
        doc = json.loads(path.read_bytes())
        usable = [v for v in doc["versions"] if v["yanked"] is None] or doc["versions"]
        plugins[doc["name"]] = Plugin(
            doc["name"],
            doc["display_name"],
            doc["description"],
            doc["keywords"],
            doc["categories"],
            usable[-1]["engine"],
        )
    return plugins


@dataclass
class Query:
    corpus: str
    kind: str
    q: str
    relevant: list[str]  # first: the best answer
    filters: dict[str, str] = field(default_factory=dict)


def _pick(names: list[str], fraction: float, parts: int = 1) -> str:
    start = int(fraction * len(names))
    for name in names[start:] + names[:start]:
        if len(name.split("-")) >= parts:
            return name
    return names[start]


def _typo(name: str) -> str:
    """Drop the third letter of the name's longest part (a part of 5+ letters)."""
    parts = name.split("-")
    longest = max(range(len(parts)), key=lambda i: len(parts[i]))
    word = parts[longest]
    if len(word) >= 5:
        parts[longest] = word[:2] + word[3:]
    return "-".join(parts)


def labels_for(entry: dict[str, Any], plugins: dict[str, Plugin]) -> Query:
    """Turn a generated-corpus template into a query and its relevant plugins."""
    names = sorted(plugins)
    rule = entry["rule"]
    if rule == "exact-name":
        name = _pick(names, entry["pick"])
        return Query("generated", entry["kind"], name, [name])
    if rule == "name-without-last-part":
        name = _pick(names, entry["pick"], parts=3)
        q = "-".join(name.split("-")[:-1])
        return Query("generated", entry["kind"], q, [n for n in names if n.startswith(q + "-")])
    if rule == "name-first-letters":
        name = _pick(names, entry["pick"], parts=2)
        q = name[: entry["letters"]].rstrip("-")
        return Query("generated", entry["kind"], q, [n for n in names if n.startswith(q)])
    if rule == "name-parts-as-words":
        name = _pick(names, entry["pick"], parts=2)
        words = name.split("-")
        relevant = [n for n in names if all(w in plugins[n].parts for w in words)]
        relevant.sort(key=lambda n: (n != name, n))
        return Query("generated", entry["kind"], " ".join(words), relevant)
    if rule in {"keyword", "typo-word"}:
        word = entry["word"]
        ranked = sorted(
            (n for n in names if plugins[n].has_word(word)),
            key=lambda n: (word not in plugins[n].parts, n),
        )
        return Query("generated", entry["kind"], entry.get("q", word), ranked)
    if rule == "typo-in-name":
        name = _pick(names, entry["pick"], parts=2)
        return Query("generated", entry["kind"], _typo(name), [name])
    if rule == "two-words":
        words = entry["words"]
        relevant = [n for n in names if all(w in plugins[n].parts for w in words)]
        return Query("generated", entry["kind"], " ".join(words), relevant)
    if rule == "word-in-category":
        word, category = entry["word"], entry["category"]
        relevant = [
            n for n in names if plugins[n].has_word(word) and category in plugins[n].categories
        ]
        relevant.sort(key=lambda n: (word not in plugins[n].parts, n))
        return Query("generated", entry["kind"], word, relevant, {"category": category})
    if rule == "word-with-engine":
        word, engine_name = entry["word"], entry["engine"]
        relevant = [
            n for n in names if plugins[n].has_word(word) and plugins[n].engine == engine_name
        ]
        relevant.sort(key=lambda n: (word not in plugins[n].parts, n))
        return Query("generated", entry["kind"], word, relevant, {"engine": engine_name})
    raise ValueError(f"unknown rule {rule!r}")


def load_queries(bundled: dict[str, Plugin], generated: dict[str, Plugin]) -> list[Query]:
    """Return every labelled query (bundled ones as written, generated ones labelled)."""
    spec = json.loads(QUERIES.read_text(encoding="utf-8"))
    queries = [
        Query("bundled", e["kind"], e["q"], e["expect"], e.get("filters", {}))
        for e in spec["bundled"]
    ]
    queries += [labels_for(e, generated) for e in spec["generated"]]
    return [q for q in queries if q.relevant]


# --- the three (four) systems ---------------------------------------------------------


def naive(plugins: dict[str, Plugin], q: Query) -> list[str]:
    """Return a naive substring match: the query in any field, in name order."""
    text = q.q.lower()
    found = []
    for name in sorted(plugins):
        p = plugins[name]
        if q.filters.get("category") and q.filters["category"] not in p.categories:
            continue
        if q.filters.get("engine") and q.filters["engine"] != p.engine:
            continue
        haystack = " ".join([p.name, p.display, p.description, *p.keywords]).lower()
        if text in haystack:
            found.append(name)
    return found[:10]


class Cli:
    """The CLI's search, in-process, over a synced and verified copy."""

    def __init__(self, out: Path, cache: Path) -> None:
        from builder.client import search as client
        from builder.client import search_index
        from builder.common.fetch import open_registry

        self.client = client
        fetcher = open_registry(str(out), None)
        self.cache = search_index.SearchCache(search_index.cache_folder(cache, fetcher.location))
        self.sync = search_index.sync(fetcher, self.cache)
        started = time.perf_counter()
        self.index, _ = search_index.open_index(self.cache)
        self.open_seconds = time.perf_counter() - started

    def run(self, q: Query) -> list[str]:
        filters = self.client.Filters(
            category=q.filters.get("category"), engine=q.filters.get("engine")
        )
        found = self.client.query(self.index, q.q, filters, limit=10)
        return [r["name"] for r in found.results]


class _Handler(http.server.SimpleHTTPRequestHandler):
    extra: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in self.extra:
            body = self.extra[path]
            self.send_response(200)
            kind = "text/javascript" if path.endswith(".js") else "text/html"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def serve(folder: Path, extra: dict[str, bytes]) -> Iterator[str]:
    """Serve a folder (plus a few in-memory files) on 127.0.0.1; yield the base URL."""
    handler: type[_Handler] = type("Handler", (_Handler,), {"extra": extra})

    def make(*args: Any) -> http.server.SimpleHTTPRequestHandler:
        return handler(*args, directory=str(folder))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


BENCH_PAGE = b"""<!doctype html><html data-root="../"><head><meta charset="utf-8">
<script defer src="/_bench/search.js"></script></head><body>
<form action="/_bench/"><input id="q" name="q" type="search"></form></body></html>"""
PAGEFIND_PAGE = b"""<!doctype html><html><head><meta charset="utf-8"></head><body></body></html>"""
PAGEFIND_QUERY = """async q => {
  const pf = await import('/pagefind/pagefind.js');
  const found = await pf.search(q);
  const data = await Promise.all(found.results.slice(0, 10).map(r => r.data()));
  return data.map(d => d.url.split('/').filter(Boolean).pop());
}"""


@dataclass
class BrowserRun:
    ranked: list[list[str]]
    data_bytes: list[int]  # index data per query (fresh page)
    total_bytes: list[int]  # with scripts (and wasm for Pagefind)


def in_chromium(
    base: str, page_path: str, queries: list[Query], call: str, data_marker: str
) -> BrowserRun:
    """Run each query in a fresh browser context; count the bytes each one fetched."""
    from playwright.sync_api import sync_playwright

    run = BrowserRun([], [], [])
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        for q in queries:
            context = browser.new_context()
            page = context.new_page()
            sizes: list[tuple[str, int]] = []

            def finished(request: Any, sizes: list[tuple[str, int]] = sizes) -> None:
                sizes.append((request.url, request.sizes()["responseBodySize"]))

            page.on("requestfinished", finished)
            page.goto(base + page_path)
            page.wait_for_load_state("load")
            before = len(sizes)
            found = page.evaluate(call, [q.q, q.filters])
            page.wait_for_timeout(50)
            fetched = sizes[before:]
            run.ranked.append([str(n) for n in found][:10])
            run.data_bytes.append(sum(n for u, n in fetched if data_marker in u))
            run.total_bytes.append(sum(n for _, n in fetched))
            context.close()
        browser.close()
    return run


OURS_QUERY = """([q, f]) => window.plugindexSearch(q, {
  category: f.category || '', engine: f.engine || ''}).then(r => r.slice(0, 10))"""


def write_pagefind_site(plugins: dict[str, Plugin], folder: Path) -> None:
    """Write one plain page per plugin (what Pagefind indexes) and run Pagefind on them."""
    from html import escape

    shutil.rmtree(folder, ignore_errors=True)
    for p in plugins.values():
        page = folder / "plugins" / p.name / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{escape(p.name)}</title></head><body><main data-pagefind-body>"
            f"<h1>{escape(p.name)}</h1><p>{escape(p.display)}</p>"
            f"<p>{escape(p.description)}</p><p>{escape(' '.join(p.keywords))}</p>"
            f"<p>{escape(' '.join(p.categories))}</p></main></body></html>",
            encoding="utf-8",
        )
    subprocess.run(
        [sys.executable, "-m", "pagefind", "--site", str(folder)],
        check=True,
        capture_output=True,
    )


# --- metrics --------------------------------------------------------------------------


def scores(ranked: list[str], relevant: list[str]) -> tuple[float, float, float]:
    """Return precision@1, reciprocal rank (within 10) and recall@10 of one answer."""
    wanted = set(relevant)
    p1 = 1.0 if ranked[:1] and ranked[0] in wanted else 0.0
    rr = next((1.0 / (i + 1) for i, n in enumerate(ranked[:10]) if n in wanted), 0.0)
    recall = len(set(ranked[:10]) & wanted) / min(10, len(wanted))
    return p1, rr, recall


def summary(rows: list[tuple[float, float, float]]) -> str:
    n = len(rows) or 1
    p1 = sum(r[0] for r in rows) / n
    mrr = sum(r[1] for r in rows) / n
    recall = sum(r[2] for r in rows) / n
    return f"P@1 {p1:.2f}  MRR@10 {mrr:.2f}  recall@10 {recall:.2f}"


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


# --- the parts ------------------------------------------------------------------------


@dataclass
class Trees:
    """The code under test, and an earlier checkout to compare with (or None)."""

    current: Path
    baseline: Path | None

    def each(self, round_: int) -> list[tuple[str, Path]]:
        """Return (label, tree) to run in this round, alternating which goes first."""
        found = [("now", self.current)]
        if self.baseline is not None:
            found.append(("before", self.baseline))
        return found if round_ % 2 == 0 else found[::-1]


def _median_ratio(pairs: Sequence[tuple[float, float]]) -> float:
    return statistics.median(a / b for a, b in pairs if b)


def build_part(index: Path, data: Path, trees: Trees, rounds: int, changes: int) -> Path:
    """Time cold builds with and without search, then one-plugin changes; return the
    current tree's build output."""
    print("\n## build")
    stage_share: dict[str, list[tuple[float, float]]] = {}
    cpu_share: dict[str, list[tuple[float, float]]] = {}
    for round_ in range(rounds):
        for label, tree in trees.each(round_):
            plain, out = data / f"out-plain-{label}", data / f"out-{label}"
            shutil.rmtree(plain, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
            without = run_build(index, plain, with_search=False, tree=tree)
            found = run_build(index, out, with_search=True, tree=tree)
            stage_share.setdefault(label, []).append((found["stage_seconds"], without["seconds"]))
            cpu = found.get("stage_cpu_seconds")
            if cpu is not None:
                cpu_share.setdefault(label, []).append((cpu, without["cpu_seconds"]))
            print(
                f"{label} round {round_ + 1}: cold build without search {without['seconds']:.1f} s "
                f"(peak {without['max_rss'] >> 20} MiB); with search {found['seconds']:.1f} s "
                f"(peak {found['max_rss'] >> 20} MiB); search stage {found['stage_seconds']:.1f} s"
                f" = {100 * found['stage_seconds'] / without['seconds']:.0f} % of the cold build"
                + (
                    f" (CPU: {cpu:.1f} s = {100 * cpu / without['cpu_seconds']:.0f} %)"
                    if cpu is not None
                    else ""
                )
            )
    for label, pairs in stage_share.items():
        share = 100 * _median_ratio(pairs)
        line = f"{label}: search stage / cold build, median of rounds {share:.0f} %"
        if label in cpu_share:
            line += f" (CPU {100 * _median_ratio(cpu_share[label]):.0f} %)"
        print(line)
    if len(stage_share) == 2:
        stages = zip(stage_share["now"], stage_share["before"], strict=True)
        print(
            "now / before, cold search stage (median of rounds): "
            f"{_median_ratio([(n[0], b[0]) for n, b in stages]):.2f}"
        )
    out = data / "out-now"
    whoosh_bytes = sum(p.stat().st_size for p in (out / "search" / "whoosh").glob("*"))
    shard_files = list((out / "search" / "v1" / "t").glob("*"))
    lists = list((out / "search" / "v1" / "k").glob("*"))
    print(
        f"search/whoosh: {whoosh_bytes / 2**20:.1f} MiB; search/v1: {len(shard_files)} shards, "
        f"{sum(p.stat().st_size for p in shard_files) / 2**20:.1f} MiB, largest "
        f"{max(p.stat().st_size for p in shard_files) / 1024:.1f} KiB; {len(lists)} key lists, "
        f"largest {max((p.stat().st_size for p in lists), default=0) / 1024:.1f} KiB; manifest "
        f"{(out / 'search' / 'v1' / 'manifest.json').stat().st_size / 1024:.1f} KiB"
    )
    names = plugin_names(index)
    seconds: dict[str, list[float]] = {}
    for step in range(changes):
        name = names[(step * 7919) % len(names)]
        modify_one(index, name)
        for label, tree in trees.each(step):
            folder = data / f"out-{label}"
            before = search_files(folder)
            run = run_build(index, folder, with_search=True, tree=tree)
            after = search_files(folder)
            seconds.setdefault(label, []).append(run["stage_seconds"])
            changed = [p for p, v in after.items() if before.get(p) != v]
            whoosh_new = [p for p in changed if p.startswith("search/whoosh/")]
            print(
                f"{label} one-plugin change {step + 1}: build {run['seconds']:.1f} s, search "
                f"stage {run['stage_seconds']:.2f} s; search files changed {len(changed)} "
                f"({sum(after[p][0] for p in changed) / 1024:.0f} KiB; whoosh {len(whoosh_new)} "
                f"files {sum(after[p][0] for p in whoosh_new) / 1024:.0f} KiB, "
                f"{run['report'].get('whoosh_files')} in the index)"
            )
    for label, values in seconds.items():
        print(
            f"{label}: one-plugin change, search stage median {statistics.median(values):.2f} s, "
            f"max {max(values):.2f} s"
        )
    if len(seconds) == 2:
        ratio = _median_ratio(list(zip(seconds["now"], seconds["before"], strict=True)))
        print(f"now / before, one-plugin search stage (median of pairs): {ratio:.2f}")
    _successive_updates(out)
    return out


def cli_process_part(data: Path, trees: Trees, cache: Path, runs: int = 9) -> None:
    """Time the whole `plugindex search` process, warm, alternating with the baseline."""
    times: dict[str, list[float]] = {}
    for round_ in range(runs + 1):
        for label, tree in trees.each(round_):
            env = {
                **os.environ,
                "PYTHONPATH": str(tree),
                "PLUGINDEX_CONFIG_DIR": str(data / f"config-{label}"),
                "PLUGINDEX_INSECURE_NO_TUF": "1",  # the benchmark's build has no signed metadata
            }
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "builder",
                    "search",
                    "--registry",
                    str(data / f"out-{label}"),
                    "--cache-dir",
                    str(cache / f"process-{label}"),
                    "csv reader",
                ],
                check=True,
                capture_output=True,
                env=env,
                cwd=data,
            )
            if round_:  # the first run syncs the cache
                times.setdefault(label, []).append(time.perf_counter() - started)
    for label, values in times.items():
        print(
            f'{label}: `plugindex search "csv reader"` whole process, warm: median '
            f"{statistics.median(values) * 1000:.0f} ms (min {min(values) * 1000:.0f} ms)"
        )
    if len(times) == 2:
        ratio = _median_ratio(list(zip(times["now"], times["before"], strict=True)))
        print(f"now / before, whole process (median of pairs): {ratio:.2f}")


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0912, PLR0915 - one report
    """Run the benchmark."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["_build"]:
        _child_build(Path(args_list[1]), Path(args_list[2]), args_list[3] == "1")
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--plugins", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--no-browser", action="store_true", help="skip Chromium")
    parser.add_argument("--no-pagefind", action="store_true", help="skip Pagefind")
    parser.add_argument("--changes", type=int, default=10, help="one-plugin builds to run")
    parser.add_argument("--rounds", type=int, default=1, help="cold builds of each kind")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="an earlier checkout (git archive) whose builds and CLI alternate with these",
    )
    args = parser.parse_args(args_list)
    data = args.data or ROOT / "benchmarks" / ".data" / (
        f"search-{args.plugins}x{args.versions}-seed{args.seed}"
    )
    index = data / "index"
    if not (index / "registry.yaml").is_file():
        started = time.perf_counter()
        shutil.rmtree(index, ignore_errors=True)
        generate(index, args.plugins, args.versions, args.seed)
        print(
            f"generated {args.plugins} x {args.versions} in {time.perf_counter() - started:.0f} s"
        )
    print(
        f"# search benchmark: {args.plugins} plugins x {args.versions} versions (seed {args.seed})"
    )
    trees = Trees(ROOT, args.baseline.resolve() if args.baseline else None)
    out = build_part(index, data, trees, args.rounds, args.changes)

    # Relevance and latency.
    bundled_out = data / "bundled-out"
    shutil.rmtree(bundled_out, ignore_errors=True)
    run_build(ROOT / "registry-index", bundled_out, with_search=True)
    plugins = corpus(out)
    bundled = corpus(bundled_out)
    queries = load_queries(bundled, plugins)
    print(f"\n## relevance ({len(queries)} labelled queries)")
    cache = data / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    clis = {"bundled": Cli(bundled_out, cache), "generated": Cli(out, cache)}
    cli_ranked = [clis[q.corpus].run(q) for q in queries]
    naive_ranked = [naive(bundled if q.corpus == "bundled" else plugins, q) for q in queries]
    systems: dict[str, list[list[str]]] = {
        "cli (whoosh)": cli_ranked,
        "naive substring": naive_ranked,
    }
    browser_runs: dict[str, BrowserRun] = {}
    if not args.no_browser:
        extra = {"/_bench/": BENCH_PAGE, "/_bench/search.js": SEARCH_JS.read_bytes()}
        runs = []
        for corpus_name, folder in (("bundled", bundled_out), ("generated", out)):
            subset = [q for q in queries if q.corpus == corpus_name]
            with serve(folder, extra) as base:
                runs.append(in_chromium(base, "_bench/", subset, OURS_QUERY, "/search/v1/"))
        merged = BrowserRun([], [], [])
        for r in runs:
            merged.ranked += r.ranked
            merged.data_bytes += r.data_bytes
            merged.total_bytes += r.total_bytes
        browser_runs["browser shards"] = merged
        systems["browser shards"] = merged.ranked
        generated_bytes = runs[1]
        if not args.no_pagefind:
            site = data / "pagefind-site"
            started = time.perf_counter()
            write_pagefind_site(plugins, site)
            print(
                f"(pagefind indexed {len(plugins)} pages in {time.perf_counter() - started:.0f} s)"
            )
            gen_queries = [q for q in queries if q.corpus == "generated"]
            with serve(site, {"/_bench/pf.html": PAGEFIND_PAGE}) as base:
                pf = in_chromium(
                    base,
                    "_bench/pf.html",
                    gen_queries,
                    PAGEFIND_QUERY.replace("q =>", "([q]) =>"),
                    "/pagefind/",
                )
            browser_runs["pagefind"] = pf
    for kind in ("all", "exact", "partial", "description", "typo", "two-word", "filter"):
        chosen = [i for i, q in enumerate(queries) if kind in {"all", q.kind}]
        print(f"{kind:12}", end="")
        for label, results in systems.items():
            rows = [scores(results[i], queries[i].relevant) for i in chosen]
            print(f" | {label}: {summary(rows)}", end="")
        print()
    if "pagefind" in browser_runs:
        gen = [q for q in queries if q.corpus == "generated"]
        rows = [
            scores(r, q.relevant) for r, q in zip(browser_runs["pagefind"].ranked, gen, strict=True)
        ]
        ours = [
            scores(systems["browser shards"][i], q.relevant)
            for i, q in enumerate(queries)
            if q.corpus == "generated"
        ]
        print(f"generated corpus only: pagefind {summary(rows)} | browser shards {summary(ours)}")
    if "browser shards" in systems:
        differ = [
            (q.q, c[:1], b[:1])
            for q, c, b in zip(queries, cli_ranked, systems["browser shards"], strict=True)
            if c[:1] != b[:1]
        ]
        agree = len(queries) - len(differ)
        print(f"CLI and browser agree on the first result for {agree}/{len(queries)}")
        for text, c, b in differ:
            print(f"  differ: {text!r}: cli {c} browser {b}")

    # Bytes per query (generated corpus, fresh page each).
    if browser_runs:
        print("\n## browser bytes per query (generated corpus, fresh page each)")
        mine = generated_bytes
        print(
            f"browser shards: data median {statistics.median(mine.data_bytes) / 1024:.1f} KiB, "
            f"p95 {percentile(mine.data_bytes, 0.95) / 1024:.1f} KiB, max "
            f"{max(mine.data_bytes) / 1024:.1f} KiB (manifest, key lists, shards); with "
            f"search.js median {statistics.median(mine.total_bytes) / 1024:.1f} KiB"
        )
        if "pagefind" in browser_runs:
            pf = browser_runs["pagefind"]
            print(
                f"pagefind: index data median {statistics.median(pf.data_bytes) / 1024:.1f} KiB, "
                f"p95 {percentile(pf.data_bytes, 0.95) / 1024:.1f} KiB (all of /pagefind/: js, "
                f"wasm, index, fragments of the top 10)"
            )

    # The CLI.
    print("\n## CLI")
    cli = clis["generated"]
    print(
        f"first sync: {cli.sync.downloaded} files, {cli.sync.downloaded_bytes / 2**20:.1f} MiB; "
        f"open (verify + load) {cli.open_seconds * 1000:.0f} ms"
    )
    latencies = []
    for q in queries:
        if q.corpus != "generated":
            continue
        started = time.perf_counter()
        cli.run(q)
        latencies.append(time.perf_counter() - started)
    print(
        f"query in-process (warm): p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p95 {percentile(latencies, 0.95) * 1000:.1f} ms"
    )
    cli_process_part(data, trees, cache)
    return 0


def _successive_updates(out: Path) -> None:
    """Apply 100 one-plugin updates to a copy of the build's Whoosh index; report growth."""
    from builder.common import whoosh_adapter as engine
    from builder.common.whoosh_reader import VerifiedIndex

    folder = out.parent / "whoosh-successive"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(out / ".plugindex" / "search" / "whoosh", folder)
    index = VerifiedIndex({n: (folder / n).read_bytes() for n in engine.index_files(folder)})
    records = [index.record(hit.docnum) for hit in itertools.islice(index.listing({}), 100)]
    index.close()
    start = {n: (folder / n).stat().st_size for n in engine.index_files(folder)}
    marks = {1, 10, 100}
    seen = dict(start)
    for step in range(1, 101):
        record = dict(records[step % len(records)])
        record["description"] = f"{record['description']} (update {step})"
        engine.update_index(folder, [record], [])
        files = {n: (folder / n).stat().st_size for n in engine.index_files(folder)}
        if step in marks:
            new = {n: s for n, s in files.items() if n not in seen}
            print(
                f"after {step} one-plugin updates: {len(files)} Whoosh files "
                f"({len(files) - 1} segments), {sum(files.values()) / 2**20:.2f} MiB; "
                f"files new since the cold build {len(new)} ({sum(new.values()) / 1024:.0f} KiB)"
            )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
