"""The client's commands as a person meets them: real processes, signals, pipes and output."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.common import layout
from tests.conftest import PLUGINDEX
from tests.fault_server import Recorder, dripping, serve_recorded
from tests.signed_build import DEMO_ROOT, build_signed

EVERY_PLUGIN = [
    "auth-basic",
    "auth-jwt",
    "datasource-csv",
    "datasource-postgres",
    "observability-otel",
    "protocol-grpc",
    "template-crypto",
    "template-faker",
]


class Served:
    """A build served on 127.0.0.1, with a home folder for one user's plugins and cache."""

    def __init__(self, out: Path, url: str, recorder: Recorder, home: Path) -> None:
        self.out = out
        self.url = url
        self.recorder = recorder
        self.home = home

    @property
    def plugins(self) -> Path:
        return self.home / "plugins"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PLUGINDEX_REGISTRY": self.url,
            "PLUGINDEX_ROOT": str(DEMO_ROOT),
            "PLUGINDEX_PLUGINS_DIR": str(self.plugins),
            "PLUGINDEX_CACHE_DIR": str(self.home / "cache"),
            "PLUGINDEX_CONFIG_DIR": str(self.home / "config"),
            "PLUGINDEX_DATA_DIR": str(self.home / "data"),
        }

    def served(self, path: str) -> str:
        """Return the URL path a client fetches `path` at: its consistent-snapshot copy."""
        sha256 = hashlib.sha256((self.out / path).read_bytes()).hexdigest()
        return "/" + layout.consistent_path(path, sha256)

    def artifact_paths(self) -> list[str]:
        paths = []
        for name in EVERY_PLUGIN:
            document = json.loads((self.out / layout.index_path(name)).read_bytes())
            paths += ["/" + v["artifact"]["download"] for v in document["versions"]]
        return paths

    def start(self, *args: str) -> subprocess.Popen[str]:
        # A session of its own: the signal goes to the whole group, as a terminal's Ctrl-C does.
        return subprocess.Popen(
            [*PLUGINDEX, *args],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )


@pytest.fixture
def served(index: Path, tmp_path: Path) -> Iterator[Served]:
    out = tmp_path / "out"
    build_signed(index, out)
    with serve_recorded(out) as (url, recorder):
        yield Served(out, url, recorder, tmp_path / "home")


def _wait_for(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


# --- Ctrl-C ---------------------------------------------------------------------------


def test_ctrl_c_during_downloads_stops_within_a_second_and_changes_nothing(
    served: Served,
) -> None:
    """Eight slow downloads (four running, four queued): Ctrl-C stops all of them, exit 130."""
    artifacts = set(served.artifact_paths())
    for path in artifacts:  # about 20 s per artifact: one byte every 50 ms
        body = (served.out / path[1:]).read_bytes()
        served.recorder.faults[path] = [dripping(body, 0.05)]

    def downloads() -> int:
        return sum(1 for h in served.recorder.hits if h.path in artifacts)

    process = served.start("install", *EVERY_PLUGIN)
    try:
        _wait_for(lambda: downloads() >= 1, 30)
        time.sleep(0.5)  # every worker busy with its first download
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert elapsed < 1.0, f"took {elapsed:.2f} s to stop"
    assert stderr.strip() == "interrupted"
    time.sleep(0.5)
    assert downloads() <= 4  # the queued downloads never started
    assert sorted(p.name for p in served.plugins.iterdir()) == [".plugindex"]
    assert list((served.plugins / ".plugindex").glob("txn-*")) == []
    assert list((served.home / "cache").glob("artifacts/*")) == []


# --- output a terminal can trust --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain é 中 ✓", "plain é 中 ✓"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("\x1b]8;;https://evil/\x07x\x1b]8;;\x07", "\\x1b]8;;https://evil/\\x07x\\x1b]8;;\\x07"),
        ("\x9b2J", "\\x9b2J"),
        ("a\u202eb\u2066c\u2069", "a\\u202eb\\u2066c\\u2069"),
        ("zero\u200b\u200d\u2060\ufeffwidth", "zero\\u200b\\u200d\\u2060\\ufeffwidth"),
        ("one\ntwo\u2028three\x00", "one\\ntwo\\u2028three\\x00"),
        ("tag\U000e0041", "tag\\U000e0041"),
    ],
    ids=["letters", "ansi", "osc-link", "c1-csi", "bidi", "zero-width", "breaks", "tag-char"],
)
def test_shown_escapes_what_a_terminal_would_act_on(text: str, expected: str) -> None:
    from builder.cli.user_output import shown

    assert shown(text) == expected


# --- shell completion -------------------------------------------------------------------


def _complete(served: Served, words: str) -> list[str]:
    env = {
        **served.env(),
        "_PLUGINDEX_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    result = subprocess.run(
        PLUGINDEX, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [value for line in result.stdout.splitlines() if (value := line.partition(",")[2])]


def test_plugin_names_complete_from_the_registry_then_from_the_cache(served: Served) -> None:
    assert _complete(served, "plugindex install auth") == ["auth-basic", "auth-jwt"]
    assert served.served("names.json") in served.recorder.paths()  # through the signed targets
    served.recorder.hits.clear()
    assert _complete(served, "plugindex info templ") == ["template-crypto", "template-faker"]
    assert served.recorder.hits == []  # from the cache: a TAB costs no request


def test_uninstall_completes_installed_plugins_only(served: Served) -> None:
    installed = subprocess.run(
        [*PLUGINDEX, "install", "template-crypto"],
        env=served.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    assert _complete(served, "plugindex uninstall t") == ["template-crypto"]
    assert _complete(served, "plugindex uninstall a") == []


def test_completion_without_a_reachable_registry_completes_nothing(served: Served) -> None:
    """No traceback, no message, no long wait: an empty completion."""
    served.url = "http://127.0.0.1:9/"
    started = time.monotonic()
    assert _complete(served, "plugindex install auth") == []
    assert time.monotonic() - started < 10


# --- progress on a terminal -----------------------------------------------------------------


def _in_a_terminal(served: Served, *args: str) -> tuple[int, str]:
    """Run plugindex with a pseudo-terminal as stdout and stderr; return its code and output."""
    import pty

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*PLUGINDEX, *args],
        env=served.env(),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    output = b""
    try:
        while chunk := os.read(controller, 4096):
            output += chunk
    except OSError:  # the terminal closed with the process (EIO)
        pass
    finally:
        os.close(controller)
    return process.wait(timeout=60), output.decode("utf-8", "replace")


def test_a_transfer_over_a_second_shows_progress_on_a_terminal(served: Served) -> None:
    """Slow: a progress line (percent, bytes, rate) on the terminal. Quick: none at all."""
    document = json.loads((served.out / layout.index_path("template-crypto")).read_bytes())
    download = next(v for v in document["versions"] if v["version"] == "1.1.1")["artifact"]
    body = (served.out / download["download"]).read_bytes()
    served.recorder.faults["/" + download["download"]] = [dripping(body, 2.0 / len(body))]
    code, output = _in_a_terminal(served, "install", "template-crypto")
    assert code == 0, output
    assert "\rdownloading 100% " in output
    assert f" of {len(body)} B, " in output
    assert output.rstrip().endswith("installed template-crypto 1.1.1")
    code, quick = _in_a_terminal(served, "install", "auth-basic")
    assert code == 0, quick
    assert "downloading" not in quick
