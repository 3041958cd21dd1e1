"""Mutation testing of the security path: run mutmut one module at a time, print scores.

    .venv/bin/python benchmarks/mutation.py                      # every module below
    .venv/bin/python benchmarks/mutation.py trust/statements.py  # one (or a few)
    .venv/bin/python benchmarks/mutation.py --show trust/signing.py  # diffs of survivors

Each module runs in a fresh copy of the work tree (benchmarks/.mutation/<module>/)
with a `[tool.mutmut]` section narrowed to that module and to the tests that cover
it, so a run takes minutes, not the whole suite per mutant. The repository's own
`[tool.mutmut]` section (pyproject.toml) lists the same modules for a plain
`mutmut run` over all of them. docs/mutation.md holds the scores and the reasons
each surviving mutant is equivalent.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".mutation"
# What the tests read besides the package (fixtures, the bundled index, templates).
ALSO_COPY = [
    "tests",
    "registry-index",
    "templates",
    "site",
    "docs",
    "README.md",
    "benchmarks/generate_index.py",  # tests/test_build_noop.py generates its index
]

# Module (under builder/) -> the tests that cover it: the narrowest selection that
# kills its mutants. Keep the security tests first; they are the fast ones.
MODULES: dict[str, list[str]] = {
    "trust/statements.py": ["tests/test_statements.py", "tests/test_signing.py"],
    "trust/signing.py": ["tests/test_statements.py", "tests/test_signing.py"],
    "format/requirements.py": [
        "tests/test_format_security.py",
        "tests/test_properties.py",
        "tests/test_requirements.py",
    ],
    "client/resolve.py": [
        "tests/test_client_security.py",
        "tests/test_properties.py",
        "tests/test_resolve.py",
    ],
    "client/unpack.py": [
        "tests/test_client_security.py",
        "tests/test_fuzz.py",
        "tests/test_unpack.py",
    ],
    "client/signatures.py": ["tests/test_client_security.py"],
    "client/downloads.py": ["tests/test_client_security.py"],
    # The API on a local build: a fraction of a second per test (tests/test_client.py
    # starts a server and a signed build per test, minutes per mutant).
    "client/install.py": ["tests/test_mut_install.py"],
    "common/fetch.py": [
        "tests/test_mut_fetch.py",
        "tests/test_fetch_security.py",
        "tests/test_fetch.py",
    ],
    "common/http_cache.py": ["tests/test_mut_fetch.py", "tests/test_fetch.py"],
    "common/cancel.py": ["tests/test_mut_fetch.py", "tests/test_fetch.py"],
    "common/folder_fetch.py": ["tests/test_mut_fetch.py", "tests/test_fetch.py"],
    "common/http_client.py": [
        "tests/test_mut_http.py",
        "tests/test_http_progress.py",
        "tests/test_fetch_security.py",
        "tests/test_fetch.py",
    ],
    "common/address_guard.py": ["tests/test_mut_http.py", "tests/test_mirror.py"],
    "common/progress.py": ["tests/test_http_progress.py"],
    "index/output.py": [
        "tests/test_mut_output.py",
        "tests/test_index_security.py",
        "tests/test_build_carry.py",
    ],
    "index/stages.py": ["tests/test_build_documents.py"],
    # The unit tests of `check_all` (a worker each), and one build serial and shared.
    "index/verifier.py": [
        "tests/test_parallel_build.py::test_plugins_of_a_worker_that_dies_are_checked_here",
        "tests/test_parallel_build.py::test_a_small_check_starts_no_worker",
        "tests/test_parallel_build.py::test_one_plugin_past_the_threshold_starts_a_worker",
        "tests/test_parallel_build.py::test_as_many_worker_processes_as_asked_and_none_left",
        "tests/test_parallel_build.py::test_a_chunk_is_handed_out_as_soon_as_one_comes_back",
        "tests/test_parallel_build.py::test_one_worker_per_core_and_none_on_one_core",
        "tests/test_parallel_build.py::test_without_affinity_the_cores_of_the_machine_count",
        "tests/test_parallel_build.py::test_the_workers_of_a_killed_build_exit_with_it",
        "tests/test_parallel_build.py::test_each_job_is_let_go_once_checked",
        "tests/test_parallel_build.py::test_only_the_jobs_in_the_workers_are_held",
        "tests/test_parallel_build.py::test_a_generated_index_builds_the_same_bytes_with_a_worker",
        "tests/test_signing.py",
    ],
    # Every stage's worker pool: spawned, set up once, gone with a killed build.
    "common/worker_processes.py": [
        "tests/test_worker_processes.py",
        "tests/test_parallel_build.py::test_the_workers_of_a_killed_build_exit_with_it",
    ],
    # What a rebuild looks at again: a change it misses is served stale.
    "index/finds.py": [
        "tests/test_build_scan.py",
        "tests/test_build_noop.py",
        "tests/test_build_told.py",
    ],
    "index/on_disk.py": [
        "tests/test_build_scan.py",
        "tests/test_build_noop.py",
        "tests/test_build_carry.py",
    ],
    "index/carry.py": ["tests/test_build_carry.py"],
    # Whether a build runs at all, and which folders it walks: a wrong no-op serves stale.
    "index/noop.py": ["tests/test_build_noop.py", "tests/test_build_scan.py"],
    "index/scan.py": ["tests/test_build_scan.py", "tests/test_build_noop.py"],
    # The cache: a plugin's rows read back from another plugin's, or stale, are served.
    "index/cache.py": [
        "tests/test_cache.py",
        "tests/test_sharded.py",
        "tests/test_build_carry.py",
    ],
    "index/artifacts.py": [
        "tests/test_mut_artifacts.py",
        "tests/test_gate_security.py",
        "tests/test_http_progress.py",
    ],
    "publish/plan.py": ["tests/test_publish_security.py"],
    "publish/lease.py": ["tests/test_publish_security.py"],
    # What a publish re-checks of a build folder changed since `build`: a document
    # edited there is refused before the first write (the S3 tests, a few seconds each).
    "publish/verify.py": [
        "tests/test_publish_verify.py",
        "tests/test_publish_security.py",
        "tests/test_publish.py::test_a_document_edited_after_the_build_is_refused_before_any_write",
        "tests/test_publish.py::test_an_edited_document_is_refused_by_the_worker_processes_too",
        "tests/test_publish.py::test_a_consistent_copy_must_hold_the_bytes_its_name_hashes",
    ],
    "gate/ownership.py": [
        "tests/test_mut_gate.py",
        "tests/test_gate_security.py",
        "tests/test_key_lifecycle.py",
        "tests/test_gate.py",
    ],
    "gate/immutability.py": [
        "tests/test_mut_gate.py",
        "tests/test_gate_security.py",
        "tests/test_key_lifecycle.py",
        "tests/test_gate.py",
    ],
    "gate/yanks.py": [
        "tests/test_mut_gate.py",
        "tests/test_gate_security.py",
        "tests/test_key_lifecycle.py",
        "tests/test_gate.py",
    ],
    "gate/pull_request.py": ["tests/test_gate_security.py", "tests/test_gate.py"],
}


# Lines not mutated: log calls. Their wording is diagnostics, not behaviour, and
# counting them would measure how many log lines the tests read back.
DO_NOT_MUTATE = [r"^\s*log\.(debug|info|warning|error|exception)\("]


@dataclass(frozen=True)
class Score:
    """The outcome of one module's run."""

    module: str
    counts: dict[str, int]
    survivors: list[str]
    seconds: float

    @property
    def killed(self) -> int:
        """Return the mutants some test caught (a timeout counts as caught)."""
        return self.counts.get("killed", 0) + self.counts.get("timeout", 0)

    @property
    def total(self) -> int:
        """Return every mutant mutmut made of the module."""
        return sum(self.counts.values())

    @property
    def percent(self) -> float:
        """Return the share of mutants killed."""
        return 100.0 * self.killed / self.total if self.total else 100.0


# A pytest plugin written into each work folder. mutmut forks every mutant from a
# process that already ran the tests once; a function cached with lru_cache would
# answer from that run and never call the mutated code beneath it, so every cache in
# the package is emptied before each test.
FRESH_CACHES = "mutmut_fresh_caches"
_FRESH_CACHES_SOURCE = """
import sys


def pytest_runtest_setup(item):
    for name, module in list(sys.modules.items()):
        if name == "builder" or name.startswith("builder."):
            for value in list(vars(module).values()):
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()
"""

# mutmut's exit codes (mutmut/stats.py), folded into the few verdicts we report.
_STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests"}
_STATUS |= {36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout"}


def test_file(test: str) -> str:
    """Return the file of a test named by its file or its node id (`file::name`)."""
    return test.split("::", 1)[0]


def mutmut_section(module: str, tests: list[str], deselect: list[str]) -> str:
    """Return the `[tool.mutmut]` TOML that narrows a run to `module` and `tests`."""
    skipped = [arg for node in deselect for arg in ("--deselect", node)]
    return (
        "[tool.mutmut]\n"
        'source_paths = ["builder"]\n'
        f"do_not_mutate_patterns = {json.dumps(DO_NOT_MUTATE)}\n"
        f'only_mutate = ["builder/{module}"]\n'
        f"also_copy = {json.dumps([*ALSO_COPY, FRESH_CACHES + '.py'])}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps([*tests, *skipped])}\n"
        f'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "{FRESH_CACHES}", '
        '"--timeout=120"]\n'
        "timeout_multiplier = 5.0\n"
    )


def prepare(module: str, tests: list[str], *, worktree: bool, deselect: list[str]) -> Path:
    """Copy the code into a fresh folder whose pyproject narrows mutmut to `module`.

    By default the committed tree (HEAD) is copied, plus selected test files not yet
    committed: half-finished edits elsewhere in a shared work tree then cannot break
    the run. `worktree` copies the work tree as it is instead.
    """
    folder = WORK / module.replace("/", "-").removesuffix(".py")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    names = ["builder", *ALSO_COPY, "pyproject.toml"]
    if worktree:
        ignore = shutil.ignore_patterns("__pycache__", ".mypy_cache", ".ruff_cache")
        for name in names:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, folder / name, ignore=ignore)
            elif source.is_file():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, folder / name)
    else:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", "HEAD", *names],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        for test in map(test_file, tests):  # test files not committed yet: the work tree's
            if not (folder / test).exists():
                shutil.copy2(ROOT / test, folder / test)
    (folder / f"{FRESH_CACHES}.py").write_text(_FRESH_CACHES_SOURCE, encoding="utf-8")
    pyproject = (folder / "pyproject.toml").read_text(encoding="utf-8")
    # Drop the repository's own [tool.mutmut] section: the narrowed one replaces it.
    pyproject = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[)", "", pyproject)
    (folder / "pyproject.toml").write_text(
        pyproject + "\n" + mutmut_section(module, tests, deselect), encoding="utf-8"
    )
    tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))  # still valid
    return folder


def read_results(folder: Path, module: str) -> tuple[dict[str, int], list[str]]:
    """Return the verdict counts and the surviving mutants' names from mutmut's files."""
    meta = folder / "mutants" / "builder" / f"{module}.meta"
    data = json.loads(meta.read_text(encoding="utf-8"))
    counts: dict[str, int] = {}
    survivors = []
    for name, code in sorted(data["exit_code_by_key"].items()):
        status = _STATUS.get(code, "suspicious") if code is not None else "not checked"
        counts[status] = counts.get(status, 0) + 1
        if status in {"survived", "no tests", "suspicious", "not checked"}:
            survivors.append(f"{name} ({status})")
    return counts, survivors


def run_module(
    module: str,
    tests: list[str],
    *,
    children: int,
    show: bool,
    worktree: bool,
    deselect: list[str],
) -> Score:
    """Run mutmut on one module with its tests; return the score."""
    # A test named by its file or by its node id (file::test); files not written yet drop.
    tests = [test for test in tests if (ROOT / test_file(test)).is_file()]
    folder = prepare(module, tests, worktree=worktree, deselect=deselect)
    env = dict(os.environ)
    # Subprocesses (`plugindex ...` in CLI tests) must import the mutated package too,
    # not the editable install's original.
    # Created now: a PYTHONPATH folder missing at start-up is never looked in again.
    (folder / "mutants").mkdir()
    for name in ALSO_COPY:  # mutmut copies a file into mutants/ but makes no folder for it
        (folder / "mutants" / name).parent.mkdir(parents=True, exist_ok=True)
    env["PYTHONPATH"] = str(folder / "mutants")
    env["PYTHONHASHSEED"] = "0"
    env["HYPOTHESIS_PROFILE"] = "mutation"  # no shrinking: a verdict is all we need
    # The copy is no git checkout: builds take their metadata time from here instead.
    env.setdefault("SOURCE_DATE_EPOCH", "1700000000")
    started = time.monotonic()
    log = folder / "mutmut.log"
    with log.open("w", encoding="utf-8") as out:
        subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(children)],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.monotonic() - started
    try:
        counts, survivors = read_results(folder, module)
    except (OSError, ValueError, KeyError):
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
        print(f"{module}: mutmut produced no results; the end of {log}:\n{tail}")
        return Score(module, {}, [], seconds)
    if show:
        for survivor in survivors:
            name = survivor.split(" ", 1)[0]
            diff = subprocess.run(
                [sys.executable, "-m", "mutmut", "show", name],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            print(diff.stdout.strip() or diff.stderr.strip())
    return Score(module, counts, survivors, seconds)


def main() -> int:
    """Run the modules named on the command line (all by default) and print the scores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("modules", nargs="*", help="paths under builder/, e.g. trust/signing.py")
    parser.add_argument("--children", type=int, default=1, help="parallel mutants (default 1)")
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    parser.add_argument(
        "--report",
        action="store_true",
        help="print the scores of the last runs (benchmarks/.mutation/) without running",
    )
    parser.add_argument(
        "--deselect",
        action="append",
        default=[],
        help="a test node id to leave out (one failing on HEAD for reasons of its own)",
    )
    parser.add_argument(
        "--worktree", action="store_true", help="mutate the work tree as it is, not HEAD"
    )
    parser.add_argument(
        "--tests", nargs="+", help="run these test files instead of the module's own selection"
    )
    args = parser.parse_args()
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        print(f"unknown modules {unknown}; expected some of {sorted(MODULES)}", file=sys.stderr)
        return 2
    scores = []
    for module in args.modules or list(MODULES):
        if args.report:
            folder = WORK / module.replace("/", "-").removesuffix(".py")
            try:
                counts, survivors = read_results(folder, module)
            except (OSError, ValueError, KeyError):
                print(f"{module:28} not run yet")
                continue
            scores.append(Score(module, counts, survivors, 0.0))
            print(
                f"{module:28} {scores[-1].killed:4}/{scores[-1].total:<4} killed  "
                f"{scores[-1].percent:5.1f} %  {json.dumps(counts, sort_keys=True)}"
            )
            for survivor in survivors:
                print(f"    survived: {survivor}")
            continue
        tests = args.tests or MODULES[module]
        score = run_module(
            module,
            tests,
            children=args.children,
            show=args.show,
            worktree=args.worktree,
            deselect=args.deselect,
        )
        scores.append(score)
        print(
            f"{module:28} {score.killed:4}/{score.total:<4} killed  {score.percent:5.1f} %  "
            f"{score.seconds:6.0f} s  {json.dumps(score.counts, sort_keys=True)}",
            flush=True,
        )
        for survivor in score.survivors:
            print(f"    survived: {survivor}")
    return 0 if all(s.percent >= 90.0 for s in scores) else 1


if __name__ == "__main__":
    sys.exit(main())
