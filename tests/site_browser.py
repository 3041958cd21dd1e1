"""What the site's browser tests need: Debian's chromium, axe-core, a served build.

Nothing here downloads a browser: chromium comes from apt (installed on first use
when missing, as CI does) and axe-core from npm into tests/.node/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import PLUGINDEX

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
NODE_DIR = HERE / ".node"
AXE = NODE_DIR / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = HERE / ".screenshots"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def ignored_folder(folder: Path) -> Path:
    """Create `folder` with a .gitignore that keeps everything in it out of git."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / ".gitignore"
    if not marker.is_file():
        marker.write_text("*\n", encoding="utf-8")
    return folder


def ensure_chromium() -> Path:
    """Return Debian's chromium, installing it with apt-get if it is missing."""
    if not CHROMIUM.is_file():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=1200
        )
    return CHROMIUM


def ensure_axe() -> Path:
    """Return axe-core's script, installing the npm package into tests/.node/ if needed."""
    if not AXE.is_file():
        npm = shutil.which("npm")
        if npm is None:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
            subprocess.run(
                ["apt-get", "install", "-y", "-qq", "npm"], check=True, env=env, timeout=1200
            )
            npm = "npm"
        ignored_folder(NODE_DIR)
        subprocess.run(
            [npm, "install", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund", "axe-core@4"],
            check=True,
            timeout=600,
            capture_output=True,
        )
    return AXE


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(directory: Path) -> Iterator[str]:
    """Serve `directory` with `plugindex serve` on a free port; yield its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [*PLUGINDEX, "serve", str(directory), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PLUGINDEX_SERVE_QUIET": "1"},
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(base + "config.json", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def build_site(index: Path, out: Path) -> None:
    """Build `index` (with its site) into `out`, at a fixed time."""
    subprocess.run(
        [*PLUGINDEX, "build", str(index), "--out", str(out)],
        check=True,
        capture_output=True,
        env={**os.environ, "SOURCE_DATE_EPOCH": "1736899200"},
    )


# --- a plugin written to attack its readers -------------------------------------------
# The validator refuses bidi and zero-width characters in plugin.yaml's text fields, so
# here they come through the README; the site escapes them in every field anyway
# (tests/test_site.py checks that on documents built by hand).

RLO, ZWSP, LRI = "\u202e", "\u200b", "\u2066"
HOSTILE_NAME = "evil-plugin"
HOSTILE_DISPLAY = "<script>alert('display')</script>Evil"
HOSTILE_DESCRIPTION = (
    "<img src=x onerror=alert('description')> javascript:alert(1) <!-- hidden -->"
    " <a href='data:text/html,<script>alert(2)</script>'>data</a>"
)
HOSTILE_AUTHOR = "<svg onload=alert('author')>Mallory"
HOSTILE_README = f"""# Evil README

<script>alert('readme')</script>
<img src=x onerror="alert('img')">
<svg><script>alert('svg')</script></svg>
<iframe src="https://evil.example/"></iframe>
<form action="https://evil.example/"><input name=x></form>
<style>body {{ display: none }}</style>
<!-- a comment that must not hide anything -->

[script link](javascript:alert('link')) and [data link](data:text/html,<script>alert(3)</script>)
and <a href="javascript:alert(4)">raw link</a> and [vb](vbscript:msgbox(1)).

![svg image](evil.svg) ![tracker](https://evil.example/pixel.png)
![inline](data:image/png;base64,iVBORw0KGgo=)
![escape](../../../registry.yaml) ![png](pixel.png)

[external](https://example.org/docs) [protocol-relative](//evil.example/x)

```python
access = "user{RLO} {LRI}// admin only"
```
"""


def write_hostile_index(root: Path) -> Path:
    """Write a one-plugin index whose author tries every trick on the site; return it."""
    from tests.mini_index import add_release, write_index

    index = write_index(root)
    add_release(index, HOSTILE_NAME, "1.0.0", "artifacts/evil-1.0.0.tar.gz")
    folder = index / "plugins" / HOSTILE_NAME
    manifest = (folder / "plugin.yaml").read_text(encoding="utf-8")

    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    manifest = manifest.replace(
        f"display_name: {HOSTILE_NAME}", f"display_name: {quoted(HOSTILE_DISPLAY)}"
    )
    manifest = manifest.replace(
        f"description: The {HOSTILE_NAME} plugin.", f"description: {quoted(HOSTILE_DESCRIPTION)}"
    )
    manifest = manifest.replace("  - name: Ada", f"  - name: {quoted(HOSTILE_AUTHOR)}")
    manifest += "readme: README.md\nkeywords: [xss]\n"
    (folder / "plugin.yaml").write_text(manifest, encoding="utf-8")
    padding = "\n".join(f"Line {i}: nothing to see here." for i in range(7000))
    readme = HOSTILE_README + "\n" + padding + "\n"
    assert len(readme.encode()) >= 200_000
    (folder / "README.md").write_text(readme, encoding="utf-8")
    (folder / "evil.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert("svg file")</script></svg>',
        encoding="utf-8",
    )
    # A real 1x1 PNG: a local raster image is published beside the page.
    (folder / "pixel.png").write_bytes(
        bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
        )
    )
    return index
