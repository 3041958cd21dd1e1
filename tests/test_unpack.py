"""Unpacking refuses every entry that could land outside the plugin folder."""

from __future__ import annotations

import io
import json
import re
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from builder.client import transaction
from builder.client.lockfile import LockedPlugin, Lockfile, read_lockfile, write_lockfile
from builder.client.unpack import UnsafeArchiveError, unpack
from builder.common.limits import Limits


def tar_with(*members: tarfile.TarInfo, data: bytes = b"data\n") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member in members:
            if member.isreg():
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


BAD_TARS = {
    "parent": (tar_with(member("../x")), "expected no '..'"),
    "absolute": (tar_with(member("/etc/x")), "expected a relative path"),
    "symlink": (tar_with(member("p/link", tarfile.SYMTYPE, "/etc/passwd")), "got a link"),
    "hardlink": (tar_with(member("p/link", tarfile.LNKTYPE, "/etc/passwd")), "got a link"),
    "device": (tar_with(member("p/dev", tarfile.CHRTYPE)), "device or special file"),
    "fifo": (tar_with(member("p/fifo", tarfile.FIFOTYPE)), "device or special file"),
    "duplicate": (tar_with(member("p/a"), member("p/a")), "duplicate entry"),
    "file-as-folder": (tar_with(member("p/a"), member("p/a/b")), "is inside the file"),
    "case": (tar_with(member("p/a.txt"), member("p/A.TXT")), "differ only in case"),
    "case-folder": (tar_with(member("p/Lib/x"), member("p/lib/y")), "'Lib' and 'lib' differ"),
    "unicode-form": (tar_with(member("p/\u00e9"), member("p/e\u0301")), "differ only in case"),
}


@pytest.mark.parametrize("case", sorted(BAD_TARS), ids=str)
def test_unsafe_tar_entries_are_refused_before_anything_is_written(
    tmp_path: Path, case: str
) -> None:
    data, expected = BAD_TARS[case]
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(data)
    with pytest.raises(UnsafeArchiveError, match=expected):
        unpack(archive, "a.tar.gz", tmp_path / "dest")
    assert list((tmp_path / "dest").rglob("*")) == []
    assert not (tmp_path / "x").exists()


def zip_with(name: str, mode: int = 0o100644) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        archive.writestr(info, b"data\n")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (zip_with("../x"), "expected no '..'"),
        (zip_with("/x"), "expected a relative path"),
        (zip_with("a\\..\\x"), "expected a relative path"),
        (zip_with("link", stat.S_IFLNK | 0o777), "got a link"),
    ],
    ids=["parent", "absolute", "backslash", "symlink"],
)
def test_unsafe_zip_entries_are_refused(tmp_path: Path, data: bytes, expected: str) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(data)
    with pytest.raises(UnsafeArchiveError, match=expected):
        unpack(archive, "a.zip", tmp_path / "dest")


def test_a_shared_top_folder_is_dropped_and_files_are_hashed(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(tar_with(member("p-1.0", tarfile.DIRTYPE), member("p-1.0/plugin.toml")))
    files = unpack(archive, "a.tar.gz", tmp_path / "dest")
    assert list(files) == ["plugin.toml"]
    assert (tmp_path / "dest" / "plugin.toml").read_bytes() == b"data\n"


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (Limits(archive_entries=2), "too many entries (expected at most 2, got more)"),
        (Limits(unpacked_bytes=14), "unpacks to more than 14 bytes (expected less)"),
    ],
    ids=["entries", "bytes"],
)
def test_an_archive_over_the_limits_is_refused(
    tmp_path: Path, limits: Limits, expected: str
) -> None:
    """Three 5-byte files: one entry or one byte fewer allowed, and the archive is refused."""
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(tar_with(member("a"), member("b"), member("c")))
    with pytest.raises(UnsafeArchiveError, match=re.escape(expected)):
        unpack(archive, "a.tar.gz", tmp_path / "dest", limits=limits)
    exact = Limits(archive_entries=3, unpacked_bytes=15)
    assert sorted(unpack(archive, "a.tar.gz", tmp_path / "ok", limits=exact)) == ["a", "b", "c"]


def test_a_tar_is_read_only_up_to_the_entry_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Headers past the cap are never parsed: 2,000 empty entries cost 11 headers, not 2,000."""
    archive = tmp_path / "many.tar.gz"
    archive.write_bytes(tar_with(*(member(f"p/{i}", tarfile.DIRTYPE) for i in range(2000))))
    read = 0
    real = tarfile.TarInfo.fromtarfile.__func__  # type: ignore[attr-defined]

    def counting(cls: type[tarfile.TarInfo], tar: tarfile.TarFile) -> tarfile.TarInfo:
        nonlocal read
        read += 1
        return real(cls, tar)  # type: ignore[no-any-return]

    monkeypatch.setattr(tarfile.TarInfo, "fromtarfile", classmethod(counting))
    with pytest.raises(UnsafeArchiveError, match=re.escape("expected at most 10, got more")):
        unpack(archive, "many.tar.gz", tmp_path / "dest", limits=Limits(archive_entries=10))
    assert read <= 12  # is_tarfile reads the first header once more


LONG = "x" * 300
LONG_NAMES = {
    "tar-file": (tar_with(member(f"p/{LONG}")), "entry name too long ('xxx"),
    "tar-folder": (tar_with(member(f"p/{LONG}/a")), "is 300 bytes; expected at most 255"),
    "zip-file": (zip_with(f"p/{LONG}"), "entry name too long ('xxx"),
    "tar-path": (tar_with(member("p/" + "/".join(["d" * 200] * 6))), "entry path too long"),
}


@pytest.mark.parametrize("case", sorted(LONG_NAMES), ids=str)
def test_overlong_entry_names_are_refused_not_crashed_on(tmp_path: Path, case: str) -> None:
    """A 300-character name would fail inside open() (ENAMETOOLONG): refused up front."""
    data, expected = LONG_NAMES[case]
    archive = tmp_path / "a.pkg"
    archive.write_bytes(data)
    with pytest.raises(UnsafeArchiveError, match=re.escape(expected)):
        unpack(archive, "a.pkg", tmp_path / "dest")
    assert list((tmp_path / "dest").rglob("*")) == []


def test_a_failed_write_is_an_error_naming_the_file(tmp_path: Path) -> None:
    """Our own write failing (here: a read-only folder) is reported, never an internal error."""
    from builder.common.errors import PlugindexError

    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(tar_with(member("p/a"), member("p/b")))
    dest = tmp_path / "dest"
    real_open = Path.open

    def refuse(self: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        if self.parent == dest and "x" in mode:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, mode, *args, **kwargs)  # type: ignore[call-overload]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "open", refuse)
        with pytest.raises(PlugindexError, match=r"dest/a: cannot write \(Permission denied\)"):
            unpack(archive, "a.tar.gz", dest)


def test_a_plain_file_is_installed_as_it_is(tmp_path: Path) -> None:
    artifact = tmp_path / "download"
    artifact.write_bytes(b"\0asm")
    assert list(unpack(artifact, "p.wasm", tmp_path / "dest")) == ["p.wasm"]


# --- transactions ---------------------------------------------------------------------


def locked(version: str) -> LockedPlugin:
    return LockedPlugin(version=version, sha256="0" * 64, size=1, filename="p.tar.gz")


def test_an_interrupted_change_is_undone_by_the_next_command(tmp_path: Path) -> None:
    """State as a SIGKILL between the moves and the lockfile would leave it."""
    plugins = tmp_path / "plugins"
    (plugins / "p").mkdir(parents=True)
    (plugins / "p" / "v").write_text("1.0\n")
    write_lockfile(plugins, Lockfile(plugins={"p": locked("1.0.0")}))
    txn = plugins / transaction.STATE_DIR / "txn-0123"
    (txn / "old").mkdir(parents=True)
    (txn / "new").mkdir()
    (plugins / "p").rename(txn / "old" / "p")  # old moved aside
    (plugins / "p").mkdir()  # new moved in
    (plugins / "p" / "v").write_text("2.0\n")
    (plugins / "q").mkdir()  # a new plugin moved in
    entries = [
        {"name": "p", "had_old": True, "has_new": True},
        {"name": "q", "had_old": False, "has_new": True},
    ]
    (txn / "journal.json").write_text(json.dumps({"transaction": txn.name, "entries": entries}))
    with transaction.plugins_state(plugins):
        pass
    assert (plugins / "p" / "v").read_text() == "1.0\n"
    assert not (plugins / "q").exists()
    assert not txn.exists()
    assert read_lockfile(plugins).plugins == {"p": locked("1.0.0")}


def test_a_failed_move_puts_everything_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "plugins"
    for name in ("a", "b"):
        (plugins / name).mkdir(parents=True)
        (plugins / name / "v").write_text("old\n")
    lock = Lockfile(plugins={"a": locked("1.0.0"), "b": locked("1.0.0")})
    write_lockfile(plugins, lock)
    txn = plugins / transaction.STATE_DIR / "txn-4567"
    for name in ("a", "b"):
        (txn / "new" / name).mkdir(parents=True)
        (txn / "new" / name / "v").write_text("new\n")

    def failing_write(folder: Path, new_lock: Lockfile) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("builder.client.transaction.write_lockfile", failing_write)
    new_lock = Lockfile(plugins={"a": locked("2.0.0"), "b": locked("2.0.0")})
    with pytest.raises(OSError, match="No space left"):
        transaction.commit(
            plugins, txn, [transaction.Move("a", True), transaction.Move("b", True)], new_lock, None
        )
    monkeypatch.undo()
    assert [(plugins / n / "v").read_text() for n in ("a", "b")] == ["old\n", "old\n"]
    assert read_lockfile(plugins) == lock
