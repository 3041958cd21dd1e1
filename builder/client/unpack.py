"""Unpack an artifact into a plugin folder, refusing anything that could escape it.

Entries are checked before anything is written: no absolute paths, no `..`, no
links, devices or FIFOs, no duplicates, a cap on the number of entries and on the
bytes written (a small archive can expand enormously). Files are then written one by
one by this code, never by `tarfile`'s or `zipfile`'s own extraction. A single
top-level folder shared by every entry (`auth-jwt-1.2.0/…`) is dropped. An artifact
that is not a tar or zip archive is installed as the one file it is.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from builder.client.signatures import TrustError
from builder.common.errors import PlugindexError
from builder.common.files import CHUNK, HashingWriter, sha256_of_file
from builder.common.limits import DEFAULT_LIMITS, Limits


class UnsafeArchiveError(TrustError):
    """An archive entry would land outside the plugin folder, or is not a plain file."""


@dataclass(frozen=True)
class _Entry:
    parts: tuple[str, ...]
    is_dir: bool
    executable: bool
    opener: Callable[[], AbstractContextManager[IO[bytes]]] | None


MAX_NAME_BYTES = 255  # one file or folder name: what common file systems allow
MAX_PATH_BYTES = 1024  # one entry's whole path, well inside PATH_MAX with the plugins folder


def _parts(name: str, shown: str) -> tuple[str, ...]:
    """Return an entry's path parts, refusing absolute paths, `..` and overlong names."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or "\\" in name:
        raise UnsafeArchiveError(
            f"{shown}: unsafe entry {name!r} (expected a relative path inside the plugin folder)"
        )
    if len(name.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise UnsafeArchiveError(
            f"{shown}: entry path too long ({name[:40]!r}…; expected at most "
            f"{MAX_PATH_BYTES} bytes)"
        )
    parts = tuple(p for p in PurePosixPath(name).parts if p not in {"", "."})
    if ".." in parts:
        raise UnsafeArchiveError(
            f"{shown}: unsafe entry {name!r} (expected no '..' in paths inside the plugin folder)"
        )
    for part in parts:
        if (size := len(part.encode("utf-8", "surrogateescape"))) > MAX_NAME_BYTES:
            raise UnsafeArchiveError(
                f"{shown}: entry name too long ({part[:40]!r}… is {size} bytes; expected "
                f"at most {MAX_NAME_BYTES} per file or folder name)"
            )
    return parts


def _too_many(shown: str, limits: Limits, found: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"{shown}: too many entries (expected at most {limits.archive_entries}, got {found})"
    )


def _tar_entries(archive: tarfile.TarFile, shown: str, limits: Limits) -> Iterator[_Entry]:
    # Iterating reads one header at a time: stop at the cap, not after loading every
    # header (200,000 empty entries would hold hundreds of MB of TarInfo objects).
    for count, member in enumerate(archive, 1):
        if count > limits.archive_entries:
            raise _too_many(shown, limits, "more")
        parts = _parts(member.name, shown)
        if member.isdir():
            yield _Entry(parts, True, False, None)
        elif member.isreg():

            def opener(m: tarfile.TarInfo = member) -> AbstractContextManager[IO[bytes]]:
                stream = archive.extractfile(m)
                assert stream is not None  # a regular member always has data
                return stream

            yield _Entry(parts, False, bool(member.mode & 0o111), opener)
        else:
            kind = "link" if member.issym() or member.islnk() else "device or special file"
            raise UnsafeArchiveError(
                f"{shown}: unsafe entry {member.name!r} (expected regular files and folders, "
                f"got a {kind})"
            )


def _zip_entries(archive: zipfile.ZipFile, shown: str) -> Iterator[_Entry]:
    for info in archive.infolist():
        if not info.filename:
            raise UnsafeArchiveError(f"{shown}: unsafe entry '' (expected a file or folder name)")
        parts = _parts(info.filename, shown)
        mode = info.external_attr >> 16
        # Only the file-type bits say what an entry is; permission bits alone (0o600,
        # as ZipFile.writestr writes them) describe a regular file.
        kind = stat.S_IFMT(mode)
        if kind and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UnsafeArchiveError(
                f"{shown}: unsafe entry {info.filename!r} (expected regular files and folders, "
                "got a link or special file)"
            )
        if info.is_dir():
            yield _Entry(parts, True, False, None)
        else:

            def opener(i: zipfile.ZipInfo = info) -> AbstractContextManager[IO[bytes]]:
                return archive.open(i)

            yield _Entry(parts, False, bool(mode & 0o111), opener)


def _check(entries: list[_Entry], shown: str, limits: Limits) -> list[_Entry]:
    """Refuse too many entries and clashes; drop a shared top-level folder."""
    if len(entries) > limits.archive_entries:
        raise _too_many(shown, limits, str(len(entries)))
    files = [e for e in entries if not e.is_dir and e.parts]
    tops = {e.parts[0] for e in entries if e.parts}
    if len(tops) == 1 and all(len(e.parts) > 1 for e in files) and files:
        entries = [_Entry(e.parts[1:], e.is_dir, e.executable, e.opener) for e in entries]
    # On a case-insensitive (or normalising) file system, `A` and `a` are one path:
    # every spelling of a path, folders included, must be the first one seen.
    spelling: dict[tuple[str, ...], tuple[str, ...]] = {}
    for entry in entries:
        for i in range(1, len(entry.parts) + 1):
            path = entry.parts[:i]
            first = spelling.setdefault(_folded(path), path)
            if first != path:
                raise UnsafeArchiveError(
                    f"{shown}: entries {'/'.join(first)!r} and {'/'.join(path)!r} differ only "
                    "in case (expected names that stay apart on every file system)"
                )
    seen: dict[tuple[str, ...], bool] = {}
    for entry in entries:
        if not entry.parts:
            continue
        if entry.parts in seen and not (entry.is_dir and seen[entry.parts]):
            raise UnsafeArchiveError(f"{shown}: duplicate entry {'/'.join(entry.parts)!r}")
        seen[entry.parts] = entry.is_dir
    for parts in seen:
        for i in range(1, len(parts)):
            if seen.get(parts[:i]) is False:
                raise UnsafeArchiveError(
                    f"{shown}: entry {'/'.join(parts)!r} is inside the file {'/'.join(parts[:i])!r}"
                )
    return entries


def _folded(parts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(unicodedata.normalize("NFC", part).casefold() for part in parts)


def _write(entries: list[_Entry], dest: Path, shown: str, limits: Limits) -> dict[str, str]:
    files: dict[str, str] = {}
    written = 0
    for entry in entries:
        if not entry.parts:
            continue
        target = dest.joinpath(*entry.parts)
        if entry.is_dir:
            target.mkdir(parents=True, exist_ok=True)
            continue
        assert entry.opener is not None
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            sink_file = target.open("xb")
        except FileExistsError:  # a clash the checks above could not foresee
            raise UnsafeArchiveError(
                f"{shown}: duplicate entry {'/'.join(entry.parts)!r} (on this file system)"
            ) from None
        with entry.opener() as source, sink_file as sink:
            writer = HashingWriter(sink)
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > limits.unpacked_bytes:
                    raise UnsafeArchiveError(
                        f"{shown}: unpacks to more than {limits.unpacked_bytes} bytes "
                        "(expected less)"
                    )
                writer.write(chunk)
        target.chmod(0o755 if entry.executable else 0o644)
        files["/".join(entry.parts)] = writer.hexdigest()
    return files


def unpack(
    artifact: Path, filename: str, dest: Path, *, limits: Limits = DEFAULT_LIMITS
) -> dict[str, str]:
    """Unpack `artifact` (named `filename`) into the new folder `dest`; return its files.

    The result maps each file's path inside `dest` to its sha256. The archive may hold
    at most `limits.archive_entries` entries and unpack to `limits.unpacked_bytes`.
    """
    dest.mkdir(parents=True)
    try:
        if tarfile.is_tarfile(artifact):
            with tarfile.open(artifact, "r:*") as tar:
                entries = _check(list(_tar_entries(tar, filename, limits)), filename, limits)
                return _write(entries, dest, filename, limits)
        if zipfile.is_zipfile(artifact):
            with zipfile.ZipFile(artifact) as archive:
                entries = _check(list(_zip_entries(archive, filename)), filename, limits)
                return _write(entries, dest, filename, limits)
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        EOFError,
        OSError,
        # zipfile's own: a name flagged UTF-8 that is not, an unsupported version or
        # compression method; none of them is our bug, all of them a damaged archive.
        UnicodeDecodeError,
        NotImplementedError,
    ) as e:
        if isinstance(e, OSError) and not isinstance(e, EOFError) and e.filename:
            # Our own write failed (disk full, a file system limit): not the archive's fault.
            raise PlugindexError(f"{e.filename}: cannot write ({e.strerror})") from e
        raise UnsafeArchiveError(f"{filename}: damaged archive ({e})") from None
    shutil.copyfile(artifact, dest / filename)
    return {filename: sha256_of_file(dest / filename)[0]}
