"""Yanks and removals as signed registry state, as a user meets them on the command line.

Against signed builds of the bundled index served on 127.0.0.1: a plugin the signed
targets do not list is "no such plugin", and the message says the absence is
signed; a document the targets list but the server does not serve is a download
failure, never "no such plugin"; a document whose yank a mirror removed (the
document of the build before the yank) is refused, and nothing is installed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from builder.client.tuf_updater import trust_registry
from builder.common import layout
from builder.common.fetch import LocalFetcher
from tests.conftest import sign_as_owner
from tests.fault_server import serve_recorded
from tests.signed_build import DEMO_ROOT, build_signed
from tests.test_client_tuf import User

NAME = "auth-jwt"


def consistent_copy(out: Path, path: str) -> Path:
    """Return the served consistent copy of a document of build `out`."""
    import hashlib

    sha256 = hashlib.sha256((out / path).read_bytes()).hexdigest()
    return out / layout.consistent_path(path, sha256)


def test_a_plugin_the_signed_targets_do_not_list_is_a_signed_absence(
    index: Path, tmp_path: Path
) -> None:
    """Removed from the registry: exit 4, and the message says the targets do not list it."""
    out = tmp_path / "out"
    shutil.rmtree(index / "plugins" / "template-faker")
    build_signed(index, out)
    user = User(tmp_path / "home")
    with serve_recorded(out) as (url, _):
        result = user.run("install", "template-faker", "--registry", url, "--root", str(DEMO_ROOT))
    assert result.exit_code == 4, result.output
    assert "no plugin named 'template-faker'" in result.stderr
    assert "the registry's signed targets do not list it: removed, or never published" in (
        result.stderr
    )
    assert user.installed() == {}


def test_a_signed_document_the_server_lost_is_a_download_failure_not_an_absence(
    index: Path, tmp_path: Path
) -> None:
    """The targets list it, the server answers 404: exit 3, 'not served', not 'no plugin'."""
    out = tmp_path / "out"
    build_signed(index, out)
    consistent_copy(out, layout.index_path(NAME)).unlink()
    user = User(tmp_path / "home")
    with serve_recorded(out) as (url, _):
        result = user.run("install", NAME, "--registry", url, "--root", str(DEMO_ROOT))
    assert result.exit_code == 3, result.output
    assert f"not served, though the registry signs {layout.index_path(NAME)}" in result.stderr
    assert "no plugin named" not in result.stderr
    assert user.installed() == {}


def test_a_yank_removed_by_a_mirror_is_refused_and_nothing_is_installed(
    index: Path, tmp_path: Path
) -> None:
    """Build 2 yanks 1.2.0; a mirror serves build 1's document in its place: refused (exit 5)."""
    before, after = tmp_path / "before", tmp_path / "after"
    build_signed(index, before)
    version = index / "plugins" / NAME / "versions" / "1.2.0.yaml"
    text = version.read_text(encoding="utf-8").rstrip("\n")
    version.write_text(text + "\nyanked:\n  reason: Leaks tokens.\n  serial: 1\n", "utf-8")
    sign_as_owner(version, yank=True)
    build_signed(index, after)
    path = layout.index_path(NAME)
    yanked = json.loads((after / path).read_bytes())
    assert any(v.get("yanked") for v in yanked["versions"] if v["version"] == "1.2.0")
    served = consistent_copy(after, path)
    served.write_bytes((before / path).read_bytes())  # the yank removed
    user = User(tmp_path / "home")
    with serve_recorded(after) as (url, _):
        result = user.run("install", f"{NAME}@1.1.0", "--registry", url, "--root", str(DEMO_ROOT))
    assert result.exit_code == 5, result.output
    assert f"does not match what the registry signed for {path}" in result.stderr
    assert "tampered, or from another build" in result.stderr
    assert user.installed() == {}


def test_signed_absence_through_a_folder_registry(index: Path, tmp_path: Path) -> None:
    """The same distinction for a registry read from a folder: None, not an error."""
    out = tmp_path / "out"
    build_signed(index, out)
    client = trust_registry(LocalFetcher(out), tmp_path / "data", "demo", str(DEMO_ROOT))
    assert client.find_target(layout.index_path("no-such-plugin")) is None
    assert client.find_target(layout.index_path(NAME)) is not None
