"""Transactions on a plugins folder: one command at a time, all of a change or none of it.

A change is staged in `<plugins>/.plugindex/txn-<id>/` (`new/` holds the unpacked
plugin folders, `downloads/` the verified artifacts). `commit` writes a journal,
moves the old folders aside and the new ones in, and writes the lockfile last,
naming the transaction. Any failure before that undoes the moves; a transaction
interrupted harder (power loss, SIGKILL) is undone by the next command (`recover`),
which tells a finished transaction by the name the lockfile records. So the plugins
folder always matches its lockfile, before or after, never half-way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from builder.client.lockfile import Lockfile, TrustFile, read_lockfile, write_lockfile, write_trust
from builder.common.errors import PlugindexError
from builder.common.files import write_atomic

log = logging.getLogger(__name__)

STATE_DIR = ".plugindex"  # inside the plugins folder: lock, transactions


class Move(NamedTuple):
    """One plugin folder a transaction replaces or removes."""

    name: str
    has_new: bool  # a staged folder moves in (False: the plugin is removed)


@contextlib.contextmanager
def plugins_state(plugins_dir: Path, *, create: bool = True) -> Iterator[None]:
    """Hold the plugins folder's lock (one command at a time) and finish any interrupted change.

    With `create` False (a dry run, a read), a folder that does not exist yet stays so.
    """
    state = plugins_dir / STATE_DIR
    if not create and not state.is_dir():
        yield  # nothing installed, nothing to recover, nothing to protect
        return
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PlugindexError(
            f"{plugins_dir}: cannot create the plugins folder ({e.strerror})"
        ) from e
    with (state / "lock").open("a+b") as handle:
        # POSIX only; elsewhere concurrent runs on one plugins folder are the user's care.
        with contextlib.suppress(ImportError):
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        recover(plugins_dir)
        yield


@contextlib.contextmanager
def staging(plugins_dir: Path) -> Iterator[Path]:
    """Yield a fresh transaction folder, with `new/` and `downloads/`; remove it afterwards."""
    txn_dir = plugins_dir / STATE_DIR / f"txn-{secrets.token_hex(8)}"
    (txn_dir / "new").mkdir(parents=True)
    (txn_dir / "downloads").mkdir()
    try:
        yield txn_dir
    finally:
        shutil.rmtree(txn_dir, ignore_errors=True)


def commit(
    plugins_dir: Path,
    txn_dir: Path,
    moves: Sequence[Move],
    lock: Lockfile,
    trust: TrustFile | None,
) -> None:
    """Move staged folders into place (old ones aside first), then write the state files."""
    entries = [
        {"name": name, "had_old": (plugins_dir / name).exists(), "has_new": has_new}
        for name, has_new in moves
    ]
    # Durable: `recover` must find the journal after a crash in the middle of the moves.
    write_atomic(
        txn_dir / "journal.json",
        json.dumps({"transaction": txn_dir.name, "entries": entries}).encode("utf-8"),
        durable=True,
    )
    (txn_dir / "old").mkdir(exist_ok=True)
    try:
        for entry in entries:
            name = str(entry["name"])
            if entry["had_old"]:
                (plugins_dir / name).rename(txn_dir / "old" / name)
            if entry["has_new"]:
                (txn_dir / "new" / name).rename(plugins_dir / name)
        if trust is not None:
            write_trust(plugins_dir, trust)
        write_lockfile(plugins_dir, lock.model_copy(update={"transaction": txn_dir.name}))
    except BaseException:
        _undo(plugins_dir, txn_dir, entries)
        raise
    shutil.rmtree(txn_dir, ignore_errors=True)


def recover(plugins_dir: Path) -> None:
    """Finish or undo transactions left behind by an interrupted command."""
    state = plugins_dir / STATE_DIR
    leftovers = sorted(state.glob("txn-*"))
    if not leftovers:
        return
    committed = read_lockfile(plugins_dir).transaction
    for txn_dir in leftovers:
        journal = _journal(txn_dir)
        if journal is not None and journal.get("transaction") != committed:
            entries = journal.get("entries")
            if isinstance(entries, list):
                log.warning("undoing an interrupted change in %s", plugins_dir)
                _undo(plugins_dir, txn_dir, entries)
        shutil.rmtree(txn_dir, ignore_errors=True)


def _journal(txn_dir: Path) -> dict[str, object] | None:
    try:
        data = json.loads((txn_dir / "journal.json").read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _undo(plugins_dir: Path, txn_dir: Path, entries: Sequence[Mapping[str, object]]) -> None:
    """Put back what a transaction moved, whatever step it stopped at."""
    for entry in reversed(entries):
        name = str(entry["name"])
        target = plugins_dir / name
        old = txn_dir / "old" / name
        new = txn_dir / "new" / name
        # The target is the new folder only while the old one is still aside: once an
        # earlier undo put the old one back (and died before cleaning up), it is the old.
        old_aside = old.exists() or not entry.get("had_old")
        if entry.get("has_new") and not new.exists() and target.exists() and old_aside:
            shutil.rmtree(target)  # the new folder had been moved in
        if entry.get("had_old") and old.exists() and not target.exists():
            old.rename(target)
