"""The CLI as a Unix tool: closed pipes, Ctrl-C at a prompt, inert CI summaries."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from builder.cli.report import step_summary
from builder.common.errors import Problem
from tests.conftest import PLUGINDEX

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled index, built once for this module."""
    out = tmp_path_factory.mktemp("demo") / "build"
    subprocess.run(
        [*PLUGINDEX, "build", str(REPO / "registry-index"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


def test_a_closed_pipe_stops_the_command_quietly(demo_build: Path, tmp_path: Path) -> None:
    """`plugindex info NAME | head -0`: no internal error, no traceback, SIGPIPE's status."""
    env = {**os.environ, "PLUGINDEX_CACHE_DIR": str(tmp_path / "cache")}
    env |= {"PLUGINDEX_DATA_DIR": str(tmp_path / "data")}  # the demo root, pinned there
    root = str(REPO / "registry-index" / "tuf" / "1.root.json")
    process = subprocess.Popen(
        [
            *PLUGINDEX,
            "info",
            "auth-jwt",
            "--registry",
            str(demo_build),
            "--offline",
            "--root",
            root,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader goes away before the command prints
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, stderr
    assert "internal error" not in stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr


def test_ctrl_c_at_the_passphrase_prompt_exits_130_quietly(tmp_path: Path) -> None:
    """Ctrl-C while `keygen --encrypt` asks for a passphrase: exit 130, no internal error."""
    import pty

    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "PLUGINDEX_KEY_PASSPHRASE"}
    process = subprocess.Popen(
        [*PLUGINDEX, "keygen", str(tmp_path / "me.pem"), "--encrypt"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 30
    while b"Passphrase" not in seen and time.monotonic() < deadline:
        try:
            seen += os.read(leader, 1024)
        except OSError:
            break
    assert b"Passphrase" in seen
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=30) == 130
    rest = b""
    while True:
        try:
            chunk = os.read(leader, 1024)
        except OSError:
            break
        if not chunk:
            break
        rest += chunk
    os.close(leader)
    assert b"internal error" not in seen + rest
    assert not (tmp_path / "me.pem").exists()


def test_the_ci_summary_shows_author_text_and_renders_none_of_it() -> None:
    """Links, images, HTML and table breaks in a message are escaped in the step summary."""
    hostile = (
        'bad <img src=x onerror="alert(1)"> [click](javascript:alert(1)) '
        "![i](https://example.invalid/x.png) a|b **bold** &amp; \u202e\nnext"
    )
    text = step_summary(
        "check", [Problem(Path("plugins/x/plugin.yaml"), 3, "description", hostile)]
    )
    row = next(line for line in text.splitlines() if line.startswith("| —"))
    cells = re.split(r"(?<!\\)\|", row)
    assert len(cells) == 5, row  # the leading and trailing empty cells, and three columns
    unescaped = re.findall(r"(?<!\\)[<>\[\]()!*&]", cells[3])
    assert unescaped == [], cells[3]
    assert "\u202e" not in text and "\nnext" not in text
    assert "onerror" in text  # still shown, as text


def test_validate_speaks_json_for_scripts(index: Path) -> None:
    """`validate --format json`: one JSON document on stdout, valid or not, same exit codes."""
    import json

    from click.testing import CliRunner

    from builder.cli.main import cli

    ok = CliRunner().invoke(cli, ["validate", str(index), "--no-fetch", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["valid"] is True
    manifest = index / "plugins" / "auth-jwt" / "plugin.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8") + "colour: blue\n", encoding="utf-8")
    bad = CliRunner().invoke(cli, ["validate", str(index), "--no-fetch", "--format", "json"])
    assert bad.exit_code == 1
    found = json.loads(bad.stdout)
    assert found["valid"] is False
    assert any(
        p["file"].endswith("auth-jwt/plugin.yaml") and p["line"] and "colour" in p["field"]
        for p in found["problems"]
    ), found
