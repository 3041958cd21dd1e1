"""The client's security path, function by function: pins and rotations, yanks,
verified downloads and cache, archive caps, yanked pins in the resolver.

Each test names the change to the code it catches (see docs/mutation.md): they were
written against mutants no other test killed.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import threading
import time
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.client.documents import Plugin, parse_plugin
from builder.client.downloads import (
    ARTIFACT_CACHE,
    check_artifact_size,
    download_all,
    fetch_artifact,
)
from builder.client.parallel import Cancel, CancelledError
from builder.client.resolve import (
    Candidate,
    Dependency,
    NeedDocumentsError,
    Options,
    ResolutionError,
    Root,
    resolve,
)
from builder.client.signatures import (
    Pin,
    TrustError,
    check_pin,
    check_version,
    is_yanked,
    pin_of,
    verify_plugin,
    withheld_reason,
)
from builder.client.unpack import UnsafeArchiveError, unpack
from builder.common.fetch import TooLargeError
from builder.common.limits import DEFAULT_LIMITS, Limits
from builder.trust import statements
from builder.trust.signing import Verdict, key_id, public_key_text, sign_statement

REGISTRY = "reg"
OLD = Ed25519PrivateKey.from_private_bytes(b"\x11" * 32)
NEW = Ed25519PrivateKey.from_private_bytes(b"\x22" * 32)
STRANGER = Ed25519PrivateKey.from_private_bytes(b"\x33" * 32)
ARTIFACT = b"plugin bytes\n"
SHA = hashlib.sha256(ARTIFACT).hexdigest()


def version_entry(
    number: str,
    signer: Ed25519PrivateKey,
    *,
    yank: tuple[int, Ed25519PrivateKey] | None = None,
    unyank: tuple[int, Ed25519PrivateKey] | None = None,
    body: bytes = ARTIFACT,
) -> dict[str, Any]:
    """Return a published version entry signed by `signer` (yanks by their own keys)."""
    sha = hashlib.sha256(body).hexdigest()
    entry: dict[str, Any] = {
        "version": number,
        "released": "2024-01-01",
        "artifact": {
            "url": f"https://example.org/p-{number}.bin",
            "sha256": sha,
            "size": len(body),
            "filename": f"p-{number}.bin",
            "download": f"artifacts/{sha}/p-{number}.bin",
        },
        "dependencies": [],
        "compatibility": {"host": "*", "plugin_api": "^1"},
        "engine": "python",
        "formats": [],
        "compliance": {},
    }
    entry["signature"] = sign_statement(signer, statements.release_statement(REGISTRY, "pl", entry))
    if yank is not None:
        serial, key = yank
        statement = statements.yank_statement(
            REGISTRY, "pl", number, sha256=sha, reason="broken", serial=serial
        )
        entry["yanked"] = {
            "reason": "broken",
            "serial": serial,
            "signature": sign_statement(key, statement),
        }
    if unyank is not None:
        serial, key = unyank
        statement = statements.unyank_statement(REGISTRY, "pl", number, sha256=sha, serial=serial)
        entry["unyanked"] = {"serial": serial, "signature": sign_statement(key, statement)}
    return entry


def document(
    owners: list[Ed25519PrivateKey],
    *,
    revision: int = 1,
    signer: Ed25519PrivateKey | None = None,
    retired: list[Ed25519PrivateKey] = (),  # type: ignore[assignment]
    versions: list[dict[str, Any]] | None = None,
) -> Plugin:
    """Return a parsed plugin document; its plugin.yaml is signed by `signer` if given."""
    raw: dict[str, Any] = {
        "format": 1,
        "name": "pl",
        "display_name": "P",
        "description": "",
        "license": "MIT",
        "owners": [
            {
                "github": "jan",
                "keys": [public_key_text(k) for k in owners],
                "retired_keys": [public_key_text(k) for k in retired],
            }
        ],
        "revision": revision,
        "versions": versions if versions is not None else [version_entry("1.0.0", owners[0])],
    }
    if signer is not None:
        raw["signature"] = sign_statement(signer, statements.manifest_statement(REGISTRY, raw))
    return parse_plugin(json.dumps(raw).encode(), "index/2/pl.json", "pl")


def pin(keys: list[Ed25519PrivateKey], revision: int, retired: tuple[str, ...] = ()) -> Pin:
    return Pin(
        keys=tuple(sorted(public_key_text(k) for k in keys)),
        retired_keys=retired,
        revision=revision,
    )


# --- pins and key rotation --------------------------------------------------------------


def test_first_use_pins_the_documents_keys_and_revision() -> None:
    plugin = document([OLD], revision=4, retired=[STRANGER])
    assert check_pin(REGISTRY, plugin, None) == Pin(
        keys=(public_key_text(OLD),), retired_keys=(public_key_text(STRANGER),), revision=4
    )


def test_a_key_both_active_and_retired_is_pinned_as_active_only() -> None:
    plugin = document([OLD], retired=[OLD, NEW])
    assert pin_of(plugin).retired_keys == (public_key_text(NEW),)


def test_a_rotation_signed_with_a_pinned_key_is_accepted() -> None:
    plugin = document([NEW], revision=2, signer=OLD, versions=[version_entry("1.0.0", NEW)])
    assert check_pin(REGISTRY, plugin, pin([OLD], 1)) == pin_of(plugin)


def test_a_rotation_signed_only_by_the_new_keys_it_introduces_is_refused() -> None:
    """Mutant: the rotation's signature checked against the document's own keys."""
    plugin = document([NEW], revision=2, signer=NEW, versions=[version_entry("1.0.0", NEW)])
    with pytest.raises(TrustError, match="was made with a key that is not pinned") as caught:
        check_pin(REGISTRY, plugin, pin([OLD], 1))
    message = str(caught.value)
    assert f"pinned: {key_id(public_key_text(OLD))}; now: {key_id(public_key_text(NEW))}" in message
    assert "index/2/pl.json: pl: the owner keys changed since they were pinned" in message
    assert "run `plugindex trust pl`" in message


def test_an_unsigned_rotation_is_refused_as_missing() -> None:
    plugin = document([NEW], revision=2, versions=[version_entry("1.0.0", NEW)])
    with pytest.raises(TrustError, match=r"signature is missing \(expected a rotation signed"):
        check_pin(REGISTRY, plugin, pin([OLD], 1))


def test_a_rotation_with_a_bad_signature_says_it_does_not_verify() -> None:
    plugin = document([NEW], revision=2, signer=OLD, versions=[version_entry("1.0.0", NEW)])
    tampered = {**plugin.raw, "description": "changed after signing"}
    plugin = parse_plugin(json.dumps(tampered).encode(), "index/2/pl.json", "pl")
    with pytest.raises(TrustError, match="does not verify"):
        check_pin(REGISTRY, plugin, pin([OLD], 1))


@pytest.mark.parametrize("revision", [1, 0], ids=["same", "lower"])
def test_a_signed_rotation_without_a_higher_revision_is_refused(revision: int) -> None:
    plugin = document([NEW], revision=revision, signer=OLD, versions=[version_entry("1.0.0", NEW)])
    with pytest.raises(TrustError, match=f"its revision {revision} is not above the pinned 1"):
        check_pin(REGISTRY, plugin, pin([OLD], 1))


def test_a_retired_key_change_alone_is_a_key_change() -> None:
    plugin = document([OLD], revision=1, retired=[NEW], signer=OLD)
    with pytest.raises(TrustError, match="not above the pinned 1"):
        check_pin(REGISTRY, plugin, pin([OLD], 1))


def test_a_document_older_than_the_pinned_revision_is_refused() -> None:
    """Mutant: the rollback check removed (that line ran in no test)."""
    plugin = document([OLD], revision=2, signer=OLD)
    with pytest.raises(TrustError, match="revision 2 is older than the pinned revision 3"):
        check_pin(REGISTRY, plugin, pin([OLD], 3))


def test_the_same_revision_and_keys_keep_the_pin() -> None:
    assert check_pin(REGISTRY, document([OLD], revision=3, signer=OLD), pin([OLD], 3)) is None


def test_a_signed_higher_revision_with_the_same_keys_is_pinned() -> None:
    plugin = document([OLD], revision=4, signer=OLD)
    assert check_pin(REGISTRY, plugin, pin([OLD], 3)) == pin_of(plugin)


@pytest.mark.parametrize("signer", [None, STRANGER], ids=["unsigned", "stranger"])
def test_an_unproven_higher_revision_is_not_pinned(signer: Ed25519PrivateKey | None) -> None:
    assert check_pin(REGISTRY, document([OLD], revision=9, signer=signer), pin([OLD], 3)) is None


# --- yanks and un-yanks -----------------------------------------------------------------


def _only(plugin: Plugin) -> tuple[Plugin, Any]:
    version = plugin.versions[0]
    return plugin, version


def test_an_unyank_with_the_yanks_own_serial_does_not_take_the_yank_back() -> None:
    """Mutant: `unyanked.serial > yanked.serial` turned into `>=`."""
    entry = version_entry("1.0.0", OLD, yank=(2, OLD), unyank=(2, OLD))
    plugin, version = _only(document([OLD], versions=[entry]))
    trust = check_version(REGISTRY, plugin, version)
    assert trust.unyank is not None and trust.unyank.valid
    assert is_yanked(version, trust)


def test_a_later_signed_unyank_takes_the_yank_back() -> None:
    entry = version_entry("1.0.0", OLD, yank=(2, OLD), unyank=(3, OLD))
    plugin, version = _only(document([OLD], versions=[entry]))
    assert not is_yanked(version, check_version(REGISTRY, plugin, version))


def test_an_unyank_signed_by_a_stranger_leaves_the_version_yanked() -> None:
    entry = version_entry("1.0.0", OLD, yank=(2, OLD), unyank=(3, STRANGER))
    plugin, version = _only(document([OLD], versions=[entry]))
    trust = check_version(REGISTRY, plugin, version)
    assert trust.unyank is not None and trust.unyank.verdict is Verdict.UNKNOWN_KEY
    assert is_yanked(version, trust)
    with pytest.raises(TrustError, match=r"pl 1\.0\.0: the un-yank signature was made with a key"):
        verify_plugin(REGISTRY, plugin)


def test_a_version_never_yanked_is_not_yanked() -> None:
    plugin, version = _only(document([OLD]))
    trust = check_version(REGISTRY, plugin, version)
    assert (trust.yank, trust.unyank) == (None, None)
    assert not is_yanked(version, trust)


def test_a_yank_signed_by_a_stranger_refuses_the_document() -> None:
    entry = version_entry("1.0.0", OLD, yank=(1, STRANGER))
    with pytest.raises(TrustError, match="refusing to use this document"):
        verify_plugin(REGISTRY, document([OLD], versions=[entry]))


def test_a_release_signed_by_a_retired_key_still_verifies_and_names_its_owner() -> None:
    """Versions signed before a rotation stay installable."""
    plugin = document([NEW], retired=[OLD], versions=[version_entry("1.0.0", OLD)])
    trust = verify_plugin(REGISTRY, plugin)["1.0.0"]
    assert trust.owner == "jan"
    assert trust.key_id == key_id(public_key_text(OLD))


def test_a_release_signed_by_a_stranger_refuses_the_document() -> None:
    plugin = document([OLD], versions=[version_entry("1.0.0", STRANGER)])
    with pytest.raises(TrustError, match=r"index/2/pl\.json: pl 1\.0\.0: the release signature"):
        verify_plugin(REGISTRY, plugin)
    trust = check_version(REGISTRY, plugin, plugin.versions[0])
    assert (trust.owner, trust.key_id) == (None, None)


def test_a_signature_for_another_registry_is_refused() -> None:
    plugin = document([OLD])
    with pytest.raises(TrustError, match="does not verify"):
        verify_plugin("another-registry", plugin)


# --- downloads and the artifact cache ---------------------------------------------------


class MemoryFetcher:
    """An in-memory Fetcher: serves `files`, counts downloads."""

    location = "https://registry.example/"

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.downloads: list[str] = []

    def url_of(self, ref: str) -> str:
        return f"https://registry.example/{ref}"

    def document(
        self, path: str, *, max_size: int = 0, cancel: threading.Event | None = None
    ) -> bytes:
        return self.files[path]

    def signed(self, ref: str) -> tuple[str, int] | None:
        return None  # no TUF metadata: the author's statement alone

    def download(
        self,
        path: str,
        sink: Any,
        *,
        max_size: int,
        progress: Callable[[int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.downloads.append(path)
        body = self.files[path]
        if len(body) > max_size:
            sink.write(body[:max_size])
            raise TooLargeError(f"{path}: larger than {max_size}")
        sink.write(body)
        if progress is not None:
            progress(len(body))

    def discard(self, path: str) -> None:
        self.files.pop(path, None)


def _version(body: bytes = ARTIFACT) -> Any:
    return document([OLD], versions=[version_entry("1.0.0", OLD, body=body)]).versions[0]


def test_a_verified_download_is_cached_under_its_sha256(tmp_path: Path) -> None:
    version = _version()
    fetcher = MemoryFetcher({version.entry.artifact.download: ARTIFACT})
    arrived: list[int] = []
    fetch_artifact(
        fetcher, "p", version, tmp_path / "a", cache_dir=tmp_path, progress=arrived.append
    )
    assert (tmp_path / "a").read_bytes() == ARTIFACT
    assert (tmp_path / ARTIFACT_CACHE / SHA).read_bytes() == ARTIFACT
    assert arrived == [len(ARTIFACT)]


def test_a_cached_artifact_is_used_without_downloading(tmp_path: Path) -> None:
    version = _version()
    (tmp_path / ARTIFACT_CACHE).mkdir()
    (tmp_path / ARTIFACT_CACHE / SHA).write_bytes(ARTIFACT)
    fetcher = MemoryFetcher({})
    arrived: list[int] = []
    fetch_artifact(
        fetcher, "p", version, tmp_path / "a", cache_dir=tmp_path, progress=arrived.append
    )
    assert (tmp_path / "a").read_bytes() == ARTIFACT
    assert fetcher.downloads == []
    assert arrived == [len(ARTIFACT)]


def test_a_changed_cached_artifact_is_re_checked_and_fetched_again(tmp_path: Path) -> None:
    """Mutant: a cached artifact installed without re-checking its sha256."""
    version = _version()
    cached = tmp_path / ARTIFACT_CACHE / SHA
    cached.parent.mkdir()
    cached.write_bytes(b"evil bytes, same name\n")
    fetcher = MemoryFetcher({version.entry.artifact.download: ARTIFACT})
    fetch_artifact(fetcher, "p", version, tmp_path / "a", cache_dir=tmp_path, progress=None)
    assert (tmp_path / "a").read_bytes() == ARTIFACT
    assert fetcher.downloads == [version.entry.artifact.download]
    assert cached.read_bytes() == ARTIFACT  # the damaged entry was replaced


def test_a_download_with_another_sha256_is_refused_and_not_cached(tmp_path: Path) -> None:
    version = _version()
    evil = bytes(len(ARTIFACT))  # same size, other bytes
    fetcher = MemoryFetcher({version.entry.artifact.download: evil})
    with pytest.raises(
        TrustError, match=f"sha256 does not match the signed index \\(expected {SHA}"
    ):
        fetch_artifact(fetcher, "p", version, tmp_path / "a", cache_dir=tmp_path, progress=None)
    assert not (tmp_path / ARTIFACT_CACHE / SHA).exists()


def test_a_download_smaller_than_signed_is_refused(tmp_path: Path) -> None:
    version = _version()
    fetcher = MemoryFetcher({version.entry.artifact.download: ARTIFACT[:-1]})
    with pytest.raises(
        TrustError, match=f"expected {len(ARTIFACT)} bytes, got {len(ARTIFACT) - 1}"
    ):
        fetch_artifact(fetcher, "p", version, tmp_path / "a", cache_dir=None, progress=None)


def test_a_download_larger_than_signed_is_refused(tmp_path: Path) -> None:
    version = _version()
    fetcher = MemoryFetcher({version.entry.artifact.download: ARTIFACT + b"more"})
    with pytest.raises(TrustError, match="larger than the signed index says"):
        fetch_artifact(fetcher, "p", version, tmp_path / "a", cache_dir=None, progress=None)


def test_download_all_fetches_every_plugin_into_its_own_file(tmp_path: Path) -> None:
    one, two = _version(b"one\n"), _version(b"two!\n")
    fetcher = MemoryFetcher(
        {one.entry.artifact.download: b"one\n", two.entry.artifact.download: b"two!\n"}
    )
    totals: list[int] = []
    seen: list[int] = []

    class Display:
        def __init__(self, total: int) -> None:
            totals.append(total)

        def __enter__(self) -> Callable[[int], None]:
            return seen.append

        def __exit__(self, *exc: object) -> None:
            return None

    download_all(fetcher, {"a": one, "b": two}, tmp_path, cache_dir=None, progress=Display)
    assert (tmp_path / "a").read_bytes() == b"one\n"
    assert (tmp_path / "b").read_bytes() == b"two!\n"
    assert totals == [9]
    assert sorted(seen) == [4, 5]


def test_a_declared_size_over_the_limit_is_refused_but_the_limit_itself_is_fine() -> None:
    version = _version()
    size = version.entry.artifact.size
    check_artifact_size("p", version, replace(DEFAULT_LIMITS, artifact_bytes=size))
    with pytest.raises(
        TrustError, match=f"expected at most {size - 1} bytes, the index says {size}"
    ):
        check_artifact_size("p", version, replace(DEFAULT_LIMITS, artifact_bytes=size - 1))


# --- archive caps -----------------------------------------------------------------------


def _zip(files: dict[str, bytes], *, mode: int = 0o100644) -> bytes:
    """Return a zip as `zip` (Info-ZIP) writes one: Unix mode with its file type bits."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("make", [_zip, _tar], ids=["zip", "tar"])
def test_a_valid_archive_installs_its_files_with_their_digests(
    tmp_path: Path, make: Callable[[dict[str, bytes]], bytes]
) -> None:
    artifact = tmp_path / "a"
    artifact.write_bytes(make({"p-1/plugin.py": b"print(1)\n", "p-1/data/x.txt": b"x"}))
    files = unpack(artifact, "a", tmp_path / "out")
    assert files == {
        "plugin.py": hashlib.sha256(b"print(1)\n").hexdigest(),
        "data/x.txt": hashlib.sha256(b"x").hexdigest(),
    }
    assert (tmp_path / "out/plugin.py").read_bytes() == b"print(1)\n"


@pytest.mark.parametrize("make", [_zip, _tar], ids=["zip", "tar"])
def test_the_entry_cap_holds_at_its_edge(
    tmp_path: Path, make: Callable[[dict[str, bytes]], bytes]
) -> None:
    artifact = tmp_path / "a"
    artifact.write_bytes(make({f"f{i}": b"" for i in range(3)}))
    assert (
        len(
            unpack(
                artifact, "a", tmp_path / "ok", limits=replace(DEFAULT_LIMITS, archive_entries=3)
            )
        )
        == 3
    )
    with pytest.raises(UnsafeArchiveError, match=r"too many entries \(expected at most 2, got "):
        unpack(artifact, "a", tmp_path / "no", limits=replace(DEFAULT_LIMITS, archive_entries=2))


@pytest.mark.parametrize("make", [_zip, _tar], ids=["zip", "tar"])
def test_the_unpacked_bytes_cap_holds_at_its_edge(
    tmp_path: Path, make: Callable[[dict[str, bytes]], bytes]
) -> None:
    """A small archive that expands enormously is stopped, summed over all its files."""
    artifact = tmp_path / "a"
    artifact.write_bytes(make({"a": b"0" * 600, "b": b"0" * 400}))
    fits = replace(DEFAULT_LIMITS, unpacked_bytes=1000)
    assert set(unpack(artifact, "a", tmp_path / "ok", limits=fits)) == {"a", "b"}
    small = replace(DEFAULT_LIMITS, unpacked_bytes=999)
    with pytest.raises(UnsafeArchiveError, match="unpacks to more than 999 bytes"):
        unpack(artifact, "a", tmp_path / "no", limits=small)


def test_a_zip_without_file_type_bits_installs(tmp_path: Path) -> None:
    """Python's own `ZipFile.writestr(name, data)` writes mode 0o600 with no type bits."""
    artifact = tmp_path / "a"
    artifact.write_bytes(_zip({"plugin.py": b"x"}, mode=0o600))
    assert set(unpack(artifact, "a", tmp_path / "out")) == {"plugin.py"}


def test_a_zip_symlink_is_refused(tmp_path: Path) -> None:
    artifact = tmp_path / "a"
    artifact.write_bytes(_zip({"link": b"/etc/passwd"}, mode=0o120777))
    with pytest.raises(UnsafeArchiveError, match="got a link or special file"):
        unpack(artifact, "a", tmp_path / "out")


def test_an_executable_entry_stays_executable_and_others_do_not(tmp_path: Path) -> None:
    artifact = tmp_path / "a"
    artifact.write_bytes(_zip({"run": b"#!/bin/sh\n"}, mode=0o100755))
    unpack(artifact, "a", tmp_path / "out")
    assert (tmp_path / "out/run").stat().st_mode & 0o777 == 0o755
    plain = tmp_path / "b"
    plain.write_bytes(_zip({"data": b"x"}))
    unpack(plain, "b", tmp_path / "out2")
    assert (tmp_path / "out2/data").stat().st_mode & 0o777 == 0o644


def test_the_default_limits_are_the_documented_ones() -> None:
    assert (DEFAULT_LIMITS.archive_entries, DEFAULT_LIMITS.unpacked_bytes) == (10_000, 1 << 30)
    assert isinstance(DEFAULT_LIMITS, Limits)


# --- the resolver and yanked versions ---------------------------------------------------


def _yanked_world() -> dict[str, list[Candidate]]:
    return {
        "app": [Candidate.of("app", "1.0.0", [Dependency("lib", "=1.1.0")])],
        "lib": [
            Candidate.of("lib", "1.0.0"),
            Candidate.of("lib", "1.1.0", yanked="broken"),
        ],
    }


def test_a_dependencys_exact_pin_does_not_select_a_yanked_version() -> None:
    """Mutant: the `by_user` condition dropped: only the user may ask for a yanked version."""
    with pytest.raises(ResolutionError, match=r"cannot resolve lib: .*1\.1\.0 \(yanked\)"):
        resolve([Root("app")], _yanked_world())


def test_the_users_exact_pin_selects_a_yanked_version_with_a_warning() -> None:
    resolution = resolve([Root("lib", "=1.1.0")], _yanked_world())
    assert resolution.selected["lib"].version == "1.1.0"
    assert resolution.warnings == [
        "lib 1.1.0 is yanked (broken); installing it only because you asked for exactly "
        "this version"
    ]


def test_a_users_range_skips_a_yanked_version() -> None:
    assert resolve([Root("lib", ">=1.0.0")], _yanked_world()).selected["lib"].version == "1.0.0"


# --- messages a user acts on ------------------------------------------------------------


def test_a_rotation_by_an_unpinned_key_says_so_in_full() -> None:
    plugin = document([NEW], revision=2, signer=NEW, versions=[version_entry("1.0.0", NEW)])
    with pytest.raises(TrustError) as caught:
        check_pin(REGISTRY, plugin, pin([OLD], 1))
    assert str(caught.value) == (
        f"index/2/pl.json: pl: the owner keys changed since they were pinned (pinned: "
        f"{key_id(public_key_text(OLD))}; now: {key_id(public_key_text(NEW))}) and its "
        "plugin.yaml signature was made with a key that is not pinned; if you trust the new "
        "keys, run `plugindex trust pl`"
    )


def test_pinned_keys_that_are_not_keys_are_shown_cut_and_none_as_none() -> None:
    plugin = document([NEW], revision=2, versions=[version_entry("1.0.0", NEW)])
    odd = Pin(keys=("ed25519:" + "x" * 40, "ed25519:" + "a" * 40), revision=1)
    with pytest.raises(TrustError) as caught:
        check_pin(REGISTRY, plugin, odd)
    assert "(pinned: ed25519:aaaaaaaaaaaaaaaa, ed25519:xxxxxxxxxxxxxxxx; now: " in str(caught.value)
    with pytest.raises(TrustError) as caught:
        check_pin(REGISTRY, plugin, Pin(keys=(), revision=1))
    assert "(pinned: none; now: " in str(caught.value)


def test_a_rollback_is_refused_in_full() -> None:
    with pytest.raises(TrustError) as caught:
        check_pin(REGISTRY, document([OLD], revision=2, signer=OLD), pin([OLD], 3))
    assert str(caught.value) == (
        "index/2/pl.json: pl: revision 2 is older than the pinned revision 3 (a stale or "
        "rolled-back registry); refusing to use it"
    )


def test_a_release_that_does_not_verify_names_no_owner() -> None:
    """The owner's key was tried, but a changed entry is nobody's release."""
    entry = version_entry("1.0.0", OLD)
    entry["engine"] = "changed after signing"
    plugin = document([OLD], versions=[entry])
    trust = check_version(REGISTRY, plugin, plugin.versions[0])
    assert trust.release.verdict is Verdict.BAD_SIGNATURE
    assert (trust.owner, trust.key_id) == (None, None)


def test_a_refused_yank_names_the_yank_and_the_plugin() -> None:
    entry = version_entry("1.0.0", OLD, yank=(1, STRANGER))
    with pytest.raises(TrustError) as caught:
        verify_plugin(REGISTRY, document([OLD], versions=[entry]))
    assert str(caught.value) == (
        "index/2/pl.json: pl 1.0.0: the yank signature was made with a key that is not an "
        "owner key of pl; refusing to use this document"
    )


def test_a_refused_download_names_its_url_plugin_and_version(tmp_path: Path) -> None:
    version = _version()
    fetcher = MemoryFetcher({version.entry.artifact.download: bytes(len(ARTIFACT))})
    with pytest.raises(TrustError) as caught:
        fetch_artifact(fetcher, "pl", version, tmp_path / "a", cache_dir=None, progress=None)
    url = f"https://registry.example/{version.entry.artifact.download}"
    assert str(caught.value).startswith(f"{url}: pl 1.0.0: sha256 does not match")


def test_an_unwritable_cache_is_a_warning_not_a_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    version = _version()
    (tmp_path / ARTIFACT_CACHE).write_text("a file where the cache folder goes")
    fetcher = MemoryFetcher({version.entry.artifact.download: ARTIFACT})
    fetch_artifact(fetcher, "pl", version, tmp_path / "a", cache_dir=tmp_path, progress=None)
    assert (tmp_path / "a").read_bytes() == ARTIFACT
    [record] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert record.getMessage().startswith(f"cannot cache {tmp_path / ARTIFACT_CACHE / SHA}: ")


def test_download_all_names_the_plugin_that_failed(tmp_path: Path) -> None:
    one, two = _version(b"one\n"), _version(b"two!\n")
    fetcher = MemoryFetcher(
        {one.entry.artifact.download: b"one\n", two.entry.artifact.download: b"bad!\n"}
    )
    (tmp_path / "out").mkdir()
    with pytest.raises(TrustError, match=r": second 1\.0\.0: sha256 does not match"):
        download_all(
            fetcher,
            {"first": one, "second": two},
            tmp_path / "out",
            cache_dir=None,
            progress=None,
        )


def test_download_all_caches_what_it_verified(tmp_path: Path) -> None:
    one, two = _version(b"one\n"), _version(b"two!\n")
    fetcher = MemoryFetcher(
        {one.entry.artifact.download: b"one\n", two.entry.artifact.download: b"two!\n"}
    )
    (tmp_path / "out").mkdir()
    download_all(fetcher, {"a": one, "b": two}, tmp_path / "out", cache_dir=tmp_path, progress=None)
    for body in (b"one\n", b"two!\n"):
        assert (tmp_path / ARTIFACT_CACHE / hashlib.sha256(body).hexdigest()).read_bytes() == body


def test_a_cancelled_download_all_starts_nothing(tmp_path: Path) -> None:
    version = _version()
    fetcher = MemoryFetcher({version.entry.artifact.download: ARTIFACT})
    cancel = Cancel()
    cancel.set()
    with pytest.raises(CancelledError):
        download_all(
            fetcher, {"a": version}, tmp_path, cache_dir=None, progress=None, cancel=cancel
        )
    assert fetcher.downloads == []


class SlowFetcher(MemoryFetcher):
    """Serves `slow` in many small chunks, noting whether the sink stopped it."""

    def __init__(self, files: dict[str, bytes], slow: str) -> None:
        super().__init__(files)
        self.slow = slow
        self.stopped = threading.Event()

    def download(
        self,
        path: str,
        sink: Any,
        *,
        max_size: int,
        progress: Callable[[int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        if path != self.slow:
            super().download(path, sink, max_size=max_size, progress=progress)
            return
        body = self.files[path]
        try:
            for byte in range(len(body)):
                sink.write(body[byte : byte + 1])
                time.sleep(0.02)
        except CancelledError:
            self.stopped.set()
            raise


def test_the_first_failed_download_stops_the_others(tmp_path: Path) -> None:
    good, bad = _version(b"x" * 40), _version(b"bad\n")
    fetcher = SlowFetcher(
        {good.entry.artifact.download: b"x" * 40, bad.entry.artifact.download: b"evil"},
        slow=good.entry.artifact.download,
    )
    with pytest.raises(TrustError, match="sha256 does not match"):
        download_all(fetcher, {"slow": good, "bad": bad}, tmp_path, cache_dir=None, progress=None)
    assert fetcher.stopped.wait(5), "the slow download ran on after the failure"


# --- the resolver: host compatibility, installed versions, explanations ----------------


def test_a_version_for_another_host_is_skipped() -> None:
    world = {
        "lib": [
            Candidate.of("lib", "1.0.0", host=">=0.3, <0.5"),
            Candidate.of("lib", "1.1.0", host=">=0.5"),
        ]
    }
    chosen = resolve([Root("lib")], world, options=Options(host="0.4.2")).selected
    assert chosen["lib"].version == "1.0.0"
    assert resolve([Root("lib")], world).selected["lib"].version == "1.1.0"  # no host given


def test_a_prerelease_host_is_compared_as_a_version() -> None:
    world = {"lib": [Candidate.of("lib", "1.0.0", host=">=0.4")]}
    chosen = resolve([Root("lib")], world, options=Options(host="0.5.0-rc.1")).selected
    assert chosen["lib"].version == "1.0.0"


def test_a_version_with_an_unreadable_host_requirement_is_skipped() -> None:
    world = {"lib": [Candidate.of("lib", "1.0.0"), Candidate.of("lib", "1.1.0", host="nope")]}
    chosen = resolve([Root("lib")], world, options=Options(host="0.4.0")).selected
    assert chosen["lib"].version == "1.0.0"


def test_an_installed_yanked_version_stays_while_it_fits() -> None:
    yanked = Candidate.of("lib", "1.1.0", yanked="broken")
    world = {"lib": [Candidate.of("lib", "1.0.0"), yanked]}
    resolution = resolve([Root("lib")], world, locked={"lib": yanked})
    assert resolution.selected["lib"] == yanked
    assert resolution.warnings == []


def test_a_conflict_lists_what_exists_and_who_wants_what() -> None:
    world = {
        "app": [Candidate.of("app", "1.0.0", [Dependency("lib", "^2")])],
        "lib": [Candidate.of("lib", f"1.{minor}.0") for minor in range(14)],
    }
    with pytest.raises(ResolutionError) as caught:
        resolve([Root("app"), Root("lib", "<1.13.0")], world)
    shown = ", ".join(f"1.{minor}.0" for minor in range(13, 1, -1))
    assert str(caught.value) == (
        "cannot resolve lib: no version satisfies every requirement (you want <1.13.0; "
        f"app 1.0.0 wants ^2); available: {shown}, and 2 older"
    )


def test_a_conflict_over_prereleases_says_how_to_ask_for_one() -> None:
    world = {"lib": [Candidate.of("lib", "2.0.0-rc.1"), Candidate.of("lib", "1.0.0")]}
    with pytest.raises(ResolutionError) as caught:
        resolve([Root("lib", "^2")], world)
    assert str(caught.value) == (
        "cannot resolve lib: no version satisfies every requirement (you want ^2); available: "
        "2.0.0-rc.1, 1.0.0; prereleases are chosen only when a requirement names one "
        "(e.g. NAME@^2.0.0-rc.1) or with --pre"
    )
    with pytest.raises(ResolutionError) as caught:
        resolve([Root("lib", "^3")], world, options=Options(prerelease=True))
    assert str(caught.value).endswith("available: 2.0.0-rc.1, 1.0.0")


def test_a_conflict_names_the_installed_version_and_an_empty_plugin() -> None:
    installed = Candidate.of("lib", "1.0.0")
    with pytest.raises(ResolutionError) as caught:
        resolve([Root("lib", "^2")], {"lib": [installed]}, locked={"lib": installed})
    assert str(caught.value).endswith("available: 1.0.0 (installed)")
    with pytest.raises(ResolutionError) as caught:
        resolve([Root("lib")], {"lib": []})
    assert str(caught.value) == (
        "cannot resolve lib: no version satisfies every requirement (); available: none"
    )


def test_bad_requirements_are_named_where_they_come_from() -> None:
    with pytest.raises(ResolutionError) as caught:
        resolve([Root("lib", "^^1")], {"lib": [Candidate.of("lib", "1.0.0")]})
    assert str(caught.value).startswith("lib: expected a version requirement")
    world = {"app": [Candidate.of("app", "1.0.0", [Dependency("lib", "nope")])]}
    with pytest.raises(ResolutionError) as caught:
        resolve([Root("app")], world)
    assert str(caught.value).startswith("app 1.0.0: dependency lib: expected a version")


def test_missing_documents_are_asked_for_by_name() -> None:
    world = {"app": [Candidate.of("app", "1.0.0", [Dependency("zz", "*"), Dependency("yy", "*")])]}
    with pytest.raises(NeedDocumentsError) as caught:
        resolve([Root("app")], world)
    assert caught.value.names == frozenset({"yy", "zz"})
    assert str(caught.value) == "yy, zz"


def test_an_installed_version_that_no_longer_fits_asks_for_its_document() -> None:
    installed = Candidate.of("lib", "1.0.0")
    with pytest.raises(NeedDocumentsError) as caught:
        resolve([Root("lib", "^2")], {}, locked={"lib": installed})
    assert caught.value.names == frozenset({"lib"})


def test_a_conflict_with_exactly_the_shown_number_of_versions_lists_them_all() -> None:
    world = {"lib": [Candidate.of("lib", f"1.{minor}.0") for minor in range(12)]}
    with pytest.raises(ResolutionError) as caught:
        resolve([Root("lib", "^2")], world)
    assert str(caught.value).endswith(
        "available: " + ", ".join(f"1.{minor}.0" for minor in range(11, -1, -1))
    )


def test_a_conflict_notes_every_fact_about_a_version() -> None:
    installed = Candidate.of("lib", "1.0.0", yanked="broken")
    with pytest.raises(ResolutionError) as caught:
        resolve([Root("lib", "^2")], {"lib": [installed]}, locked={"lib": installed})
    assert str(caught.value).endswith("available: 1.0.0 (yanked; installed)")


def test_a_dependency_after_one_of_another_kind_is_still_followed() -> None:
    world = {
        "app": [
            Candidate.of(
                "app", "1.0.0", [Dependency("tool", "*", kind="dev"), Dependency("lib", "^1")]
            )
        ],
        "lib": [Candidate.of("lib", "1.0.0")],
    }
    assert set(resolve([Root("app")], world).selected) == {"app", "lib"}


def test_a_dependency_clashing_with_a_chosen_version_names_that_plugin() -> None:
    world = {
        "app": [Candidate.of("app", "1.0.0", [Dependency("lib", "^2")])],
        "lib": [Candidate.of("lib", "1.0.0"), Candidate.of("lib", "2.0.0")],
    }
    with pytest.raises(ResolutionError) as caught:
        resolve([Root("lib", "=1.0.0"), Root("app")], world)
    assert str(caught.value).startswith("cannot resolve lib: no version satisfies every")


def test_a_kept_installed_version_that_clashes_asks_for_its_document() -> None:
    """Installed and kept without its document, then a dependency wants another version."""
    installed = Candidate.of("lib", "1.0.0")
    world = {"app": [Candidate.of("app", "1.0.0", [Dependency("lib", "^2")])]}
    with pytest.raises(NeedDocumentsError) as caught:
        resolve([Root("lib"), Root("app")], world, locked={"lib": installed})
    assert caught.value.names == frozenset({"lib"})


def test_only_missing_documents_are_asked_for() -> None:
    world = {
        "app": [Candidate.of("app", "1.0.0", [Dependency("zz", "*"), Dependency("lib", "*")])],
        "lib": [Candidate.of("lib", "1.0.0")],
    }
    with pytest.raises(NeedDocumentsError) as caught:
        resolve([Root("app")], world)
    assert caught.value.names == frozenset({"zz"})


def test_a_resolution_says_who_wanted_each_plugin() -> None:
    world = {
        "app": [Candidate.of("app", "1.0.0", [Dependency("lib", "^1")])],
        "lib": [Candidate.of("lib", "1.0.0")],
    }
    resolution = resolve([Root("app"), Root("lib", "^1")], world)
    assert resolution.wanted_by == {"lib": ["you", "app 1.0.0"]}


def test_every_yanked_selection_is_warned_about() -> None:
    world = {
        "aa": [Candidate.of("aa", "1.0.0")],
        "lib": [Candidate.of("lib", "1.0.0"), Candidate.of("lib", "1.1.0", yanked="broken")],
    }
    warnings = resolve([Root("aa"), Root("lib", "=1.1.0")], world).warnings
    assert warnings == [
        "lib 1.1.0 is yanked (broken); installing it only because you asked for exactly "
        "this version"
    ]


def test_an_upgrade_that_keeps_a_yanked_version_says_who_holds_it_back() -> None:
    yanked = Candidate.of("lib", "1.1.0", yanked="broken")
    world = {"lib": [Candidate.of("lib", "1.0.0"), yanked]}
    kept = "lib 1.1.0 (installed) is yanked (broken); kept: no newer version fits the requirements"
    plain = resolve([Root("lib")], world, locked={"lib": yanked}, unlock=["lib"])
    assert plain.warnings == [kept]
    asked = resolve(
        [Root("lib", ">=1.1"), Root("lib", "<2", who="a friend")],
        world,
        locked={"lib": yanked},
        unlock=["lib"],
    )
    assert asked.warnings == [kept + " (you wants >=1.1; a friend wants <2)"]


def test_giving_up_says_how_many_versions_were_tried() -> None:
    world = {
        "app": [Candidate.of("app", f"1.{n}.0", [Dependency("lib", "^9")]) for n in range(5)],
        "lib": [Candidate.of("lib", "1.0.0")],
    }
    with pytest.raises(ResolutionError) as caught:
        resolve([Root("app")], world, limits=replace(DEFAULT_LIMITS, resolve_steps=3))
    assert str(caught.value) == (
        "gave up resolving after trying 3 versions; ask for narrower requirements "
        "(NAME@REQUIREMENT)"
    )


# --- the unpacker's checks, message by message ------------------------------------------


def _zip_entries(entries: list[tuple[str, int, bytes]]) -> bytes:
    """Return a zip of (name, unix mode, data) entries, in order, duplicates kept."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)  # duplicate names on purpose
        for name, mode, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _tar_entries(entries: list[tuple[str, bytes | None, int]]) -> bytes:
    """Return a tar of (name, data or None for a folder, mode) entries."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _refused(tmp_path: Path, data: bytes) -> str:
    (tmp_path / "a").write_bytes(data)
    out = tmp_path / "refused"
    shutil.rmtree(out, ignore_errors=True)
    with pytest.raises(UnsafeArchiveError) as caught:
        unpack(tmp_path / "a", "a", out)
    return str(caught.value)


FILE, DIR = 0o100644, 0o40755


def test_too_many_entries_says_how_many_in_full(tmp_path: Path) -> None:
    (tmp_path / "z").write_bytes(_zip_entries([(f"f{i}", FILE, b"") for i in range(3)]))
    with pytest.raises(UnsafeArchiveError) as caught:
        unpack(
            tmp_path / "z", "z", tmp_path / "o1", limits=replace(DEFAULT_LIMITS, archive_entries=2)
        )
    assert str(caught.value) == "z: too many entries (expected at most 2, got 3)"
    (tmp_path / "t").write_bytes(_tar_entries([(f"f{i}", b"", 0o644) for i in range(3)]))
    with pytest.raises(UnsafeArchiveError) as caught:
        unpack(
            tmp_path / "t", "t", tmp_path / "o2", limits=replace(DEFAULT_LIMITS, archive_entries=2)
        )
    assert str(caught.value) == "t: too many entries (expected at most 2, got more)"


def test_names_that_differ_only_in_case_are_refused_in_full(tmp_path: Path) -> None:
    message = _refused(
        tmp_path, _zip_entries([("d/e/A", FILE, b""), ("d/e/a", FILE, b""), ("x", FILE, b"")])
    )
    assert message == (
        "a: entries 'd/e/A' and 'd/e/a' differ only in case (expected names that stay "
        "apart on every file system)"
    )


def test_a_duplicate_file_is_refused_in_full(tmp_path: Path) -> None:
    message = _refused(
        tmp_path, _zip_entries([("d/f", FILE, b""), ("d/f", FILE, b""), ("x", FILE, b"")])
    )
    assert message == "a: duplicate entry 'd/f'"


def test_a_folder_with_the_name_of_a_file_is_refused(tmp_path: Path) -> None:
    message = _refused(
        tmp_path, _zip_entries([("x", FILE, b""), ("x/", DIR, b""), ("y", FILE, b"")])
    )
    assert message == "a: duplicate entry 'x'"


def test_a_folder_listed_twice_is_fine(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(
        _zip_entries([("d/", DIR, b""), ("d/", DIR, b""), ("d/f", FILE, b"1"), ("g", FILE, b"")])
    )
    assert set(unpack(tmp_path / "a", "a", tmp_path / "out")) == {"d/f", "g"}


def test_a_file_under_a_file_is_refused_in_full(tmp_path: Path) -> None:
    message = _refused(tmp_path, _zip_entries([("f", FILE, b""), ("f/g/h", FILE, b"")]))
    assert message == "a: entry 'f/g/h' is inside the file 'f'"


def test_an_entry_for_the_root_itself_does_not_hide_later_duplicates(tmp_path: Path) -> None:
    message = _refused(
        tmp_path,
        _tar_entries([(".", None, 0o755), ("a", b"", 0o644), ("a", b"", 0o644), ("b", b"", 0o644)]),
    )
    assert message == "a: duplicate entry 'a'"


@pytest.mark.parametrize("name", ["c:", "c:x", "\\x", "x\\y", "/x"])
def test_drive_letters_backslashes_and_absolute_paths_are_refused(
    tmp_path: Path, name: str
) -> None:
    message = _refused(tmp_path, _zip_entries([(name, FILE, b""), ("y", FILE, b"")]))
    assert message == (
        f"a: unsafe entry {name!r} (expected a relative path inside the plugin folder)"
    )


def test_names_and_paths_at_their_length_caps(tmp_path: Path) -> None:
    longest = "n" * 255
    (tmp_path / "ok").write_bytes(_zip_entries([(longest, FILE, b""), ("y", FILE, b"")]))
    assert longest in unpack(tmp_path / "ok", "ok", tmp_path / "o1")
    message = _refused(tmp_path, _zip_entries([("n" * 256, FILE, b""), ("y", FILE, b"")]))
    assert message == (
        f"a: entry name too long ({'n' * 40!r}… is 256 bytes; expected at most 255 per file "
        "or folder name)"
    )
    deep = "/".join(["p" * 100] * 11)
    message = _refused(tmp_path, _zip_entries([(deep, FILE, b""), ("y", FILE, b"")]))
    assert message == f"a: entry path too long ({deep[:40]!r}…; expected at most 1024 bytes)"


@pytest.mark.parametrize("make", ["zip", "tar"])
def test_any_execute_bit_makes_a_file_executable_even_under_a_dropped_folder(
    tmp_path: Path, make: str
) -> None:
    if make == "zip":
        data = _zip_entries([("pkg/run", 0o100641, b"#!"), ("pkg/doc", FILE, b"")])
    else:
        data = _tar_entries([("pkg/run", b"#!", 0o641), ("pkg/doc", b"", 0o644)])
    (tmp_path / "a").write_bytes(data)
    unpack(tmp_path / "a", "a", tmp_path / "out")
    assert (tmp_path / "out/run").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out/doc").stat().st_mode & 0o777 == 0o644


def test_folders_listed_before_or_after_their_files_are_written(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(
        _zip_entries(
            [
                ("d/", DIR, b""),
                ("d/f", FILE, b"1"),
                ("e/f", FILE, b"2"),
                ("e/", DIR, b""),
                ("top/a/b/c", FILE, b"3"),
            ]
        )
    )
    files = unpack(tmp_path / "a", "a", tmp_path / "out")
    assert set(files) == {"d/f", "e/f", "top/a/b/c"}
    assert (tmp_path / "out/top/a/b/c").read_bytes() == b"3"
    (tmp_path / "b").write_bytes(_tar_entries([("pkg/", None, 0o755), ("pkg/x/y/z", b"4", 0o644)]))
    assert set(unpack(tmp_path / "b", "b", tmp_path / "deep/er/out")) == {"x/y/z"}


def test_the_unpacked_bytes_cap_names_the_artifact(tmp_path: Path) -> None:
    for name, data in (
        ("z", _zip_entries([("a", FILE, b"0" * 20)])),
        ("t", _tar_entries([("a", b"0" * 20, 0o644)])),
    ):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UnsafeArchiveError) as caught:
            unpack(
                tmp_path / name,
                name,
                tmp_path / f"o{name}",
                limits=replace(DEFAULT_LIMITS, unpacked_bytes=19),
            )
        assert str(caught.value) == f"{name}: unpacks to more than 19 bytes (expected less)"


def test_special_files_are_named_by_kind(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        fifo = tarfile.TarInfo("pipe")
        fifo.type = tarfile.FIFOTYPE
        archive.addfile(fifo)
    assert _refused(tmp_path, buffer.getvalue()) == (
        "a: unsafe entry 'pipe' (expected regular files and folders, got a device or special file)"
    )
    assert _refused(tmp_path, _zip_entries([("l", 0o120777, b"x")])) == (
        "a: unsafe entry 'l' (expected regular files and folders, got a link or special file)"
    )


class SignedFetcher(MemoryFetcher):
    """A fetcher whose registry metadata signs `signed` for every artifact."""

    def __init__(self, files: dict[str, bytes], signed: tuple[str, int]) -> None:
        super().__init__(files)
        self.signed_as = signed
        self.asked: list[str] = []

    def signed(self, ref: str) -> tuple[str, int] | None:
        self.asked.append(ref)
        return self.signed_as


def test_an_artifact_the_registry_signed_differently_is_refused(tmp_path: Path) -> None:
    version = _version()
    ref = version.entry.artifact.download
    other = SignedFetcher({ref: ARTIFACT}, ("cd" * 32, len(ARTIFACT)))
    with pytest.raises(TrustError) as caught:
        fetch_artifact(other, "pl", version, tmp_path / "a", cache_dir=None, progress=None)
    assert str(caught.value) == (
        f"https://registry.example/{ref}: pl 1.0.0: the registry signed another file than "
        f"its author (registry: sha256 {'cd' * 32}, {len(ARTIFACT)} bytes; author: sha256 "
        f"{SHA}, {len(ARTIFACT)} bytes); nothing was installed"
    )
    assert other.asked == [ref]
    assert other.downloads == []
    same = SignedFetcher({ref: ARTIFACT}, (SHA, len(ARTIFACT)))
    fetch_artifact(same, "pl", version, tmp_path / "b", cache_dir=None, progress=None)
    assert (tmp_path / "b").read_bytes() == ARTIFACT


# --- retired bindings and revoked keys ----------------------------------------------------


def _standing_document(versions: list[dict[str, Any]]) -> Plugin:
    """Owner jan: NEW active, OLD retired and bound to 1.0.0, STRANGER revoked."""
    raw: dict[str, Any] = {
        "format": 1,
        "name": "pl",
        "owners": [
            {
                "github": "jan",
                "keys": [public_key_text(NEW)],
                "retired_keys": [public_key_text(OLD)],
                "retired_versions": {public_key_text(OLD): ["1.0.0", "0.9.0"]},
                "revoked_keys": [{"key": public_key_text(STRANGER), "reason": "stolen"}],
            }
        ],
        "revision": 3,
        "versions": versions,
    }
    return parse_plugin(json.dumps(raw).encode(), "index/2/pl.json", "pl")


def test_a_pin_records_bindings_and_revocations() -> None:
    plugin = _standing_document([version_entry("1.0.0", OLD)])
    assert pin_of(plugin) == Pin(
        keys=(public_key_text(NEW),),
        retired_keys=(public_key_text(OLD),),
        revision=3,
        retired_versions={public_key_text(OLD): ("0.9.0", "1.0.0")},
        revoked_keys=(public_key_text(STRANGER),),
    )


def test_a_version_signed_by_a_revoked_key_is_withheld_with_the_reason() -> None:
    plugin = _standing_document([version_entry("1.0.0", STRANGER)])
    version = plugin.versions[0]
    trust = check_version(REGISTRY, plugin, version)
    assert trust.release.verdict is Verdict.REVOKED_KEY
    assert withheld_reason(version, trust) == (
        "the release signature was made with a key its owner revoked: key "
        f"{key_id(public_key_text(STRANGER))} (stolen); not offered until an owner signs it "
        "again"
    )


def test_a_yanked_version_is_withheld_for_its_yank_and_others_are_offered() -> None:
    entry = version_entry("1.0.0", NEW, yank=(1, NEW))
    plugin = _standing_document([entry, version_entry("1.1.0", NEW)])
    yanked, fine = plugin.versions
    assert withheld_reason(yanked, check_version(REGISTRY, plugin, yanked)) == "broken"
    assert withheld_reason(fine, check_version(REGISTRY, plugin, fine)) is None


def test_a_retired_key_signs_only_the_versions_it_is_bound_to() -> None:
    plugin = _standing_document([version_entry("1.0.0", OLD), version_entry("1.1.0", OLD)])
    bound, unbound = plugin.versions
    assert check_version(REGISTRY, plugin, bound).release.valid
    assert check_version(REGISTRY, plugin, unbound).release.verdict is Verdict.RETIRED_KEY
    with pytest.raises(
        TrustError, match=r"pl 1\.1\.0: the release signature was made with a retired key"
    ):
        verify_plugin(REGISTRY, plugin)


def test_a_file_under_a_nested_file_names_the_whole_path(tmp_path: Path) -> None:
    message = _refused(
        tmp_path, _zip_entries([("a/b", FILE, b""), ("a/b/c", FILE, b""), ("x", FILE, b"")])
    )
    assert message == "a: entry 'a/b/c' is inside the file 'a/b'"


def test_a_path_of_exactly_the_cap_is_fine(tmp_path: Path) -> None:
    path = "/".join(["p" * 200] * 5) + "/" + "q" * 19  # 1024 bytes
    assert len(path) == 1024
    (tmp_path / "a").write_bytes(_zip_entries([(path, FILE, b""), ("y", FILE, b"")]))
    assert path in unpack(tmp_path / "a", "a", tmp_path / "out")


def test_a_validly_unyanked_version_is_offered_again() -> None:
    entry = version_entry("1.0.0", NEW, yank=(1, NEW), unyank=(2, NEW))
    plugin = _standing_document([entry])
    version = plugin.versions[0]
    assert withheld_reason(version, check_version(REGISTRY, plugin, version)) is None


def test_a_withheld_version_does_not_stop_the_check_of_later_ones() -> None:
    """A version signed by a revoked key is withheld; a forged later one still refuses all."""
    plugin = _standing_document(
        [
            version_entry("1.0.0", STRANGER),
            version_entry("1.1.0", Ed25519PrivateKey.from_private_bytes(b"\x44" * 32)),
        ]
    )
    with pytest.raises(TrustError, match=r"pl 1\.1\.0: the release signature was made with a key"):
        verify_plugin(REGISTRY, plugin)


def test_a_withheld_version_still_has_its_other_signatures_checked() -> None:
    """A release by a revoked key is withheld; a forged yank on that same version still refuses."""
    forger = Ed25519PrivateKey.from_private_bytes(b"\x45" * 32)
    plugin = _standing_document([version_entry("1.0.0", STRANGER, yank=(1, forger))])
    with pytest.raises(TrustError, match=r"pl 1\.0\.0: the yank signature"):
        verify_plugin(REGISTRY, plugin)
