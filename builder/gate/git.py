"""Read a git repository through the `git` command: refs, changes, and base files.

The pull-request gate reads the base straight from git objects and never checks
anything out, so the working tree stays exactly the PR that CI is looking at.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from builder.common.errors import PlugindexError
from builder.common.limits import DEFAULT_LIMITS


class GitError(PlugindexError):
    """A git command failed: not a repository, an unknown ref, no git."""


@dataclass(frozen=True)
class Change:
    status: str  # "A" added, "M" modified, "D" deleted (T, a type change, counts as M)
    path: str  # repository-relative, with /

    @property
    def verb(self) -> str:
        """Say what happened to the file, for messages."""
        return {"A": "added", "D": "deleted"}.get(self.status, "changed")


@dataclass(frozen=True)
class Git:
    root: Path

    @classmethod
    def of(cls, path: Path) -> Git:
        """Return the repository that holds `path`."""
        where = path if path.is_dir() else path.parent
        try:
            out = _run(where, "rev-parse", "--show-toplevel")
        except GitError as e:
            raise GitError(
                f"{path}: not inside a git repository (--base reads the base from git): {e}"
            ) from e
        return cls(Path(out.decode().strip()).resolve())

    def run(self, *args: str) -> bytes:
        """Run a git command in the repository and return its output."""
        return _run(self.root, *args)

    def resolve(self, ref: str) -> str:
        """Return the commit id `ref` names."""
        if ref.startswith("-"):
            raise GitError(f"--base {ref!r}: expected a git ref, not an option")
        try:
            return (
                self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
            )
        except GitError as e:
            raise GitError(
                f"--base {ref!r}: expected a branch, tag or commit of {self.root}, found none"
            ) from e

    def merge_base(self, commit: str) -> str:
        """Return where HEAD branched from `commit` (the PR's own changes start there)."""
        try:
            return self.run("merge-base", commit, "HEAD").decode().strip()
        except GitError:
            return commit  # unrelated histories: compare with the base itself

    def changes_since(self, commit: str) -> list[Change]:
        """List files changed between `commit` and the working tree, untracked included.

        Files the pull request's commits change are listed too, even when the working
        tree lacks them: a path git holds but cannot check out (too long, too deep)
        must be seen, not skipped.
        """
        changes = {
            c.path: c
            for c in _name_status(
                self.run("diff", "--name-status", "-z", "--no-renames", commit, "HEAD", "--")
            )
        }
        changes.update(
            (c.path, c)
            for c in _name_status(
                self.run("diff", "--name-status", "-z", "--no-renames", commit, "--")
            )
        )
        untracked = self.run("ls-files", "--others", "--exclude-standard", "-z")
        changes.update(
            (path, Change("A", path))
            for path in untracked.decode("utf-8", "surrogateescape").split("\0")
            if path
        )
        return sorted(changes.values(), key=lambda c: c.path)

    def list_files(self, commit: str, folder: str) -> dict[str, str]:
        """Return {repository path: blob id} of every file under `folder` at `commit`."""
        pathspec = folder.rstrip("/") + "/"
        out = self.run("ls-tree", "-r", "-z", "--full-tree", commit, "--", pathspec)
        files: dict[str, str] = {}
        for entry in out.decode("utf-8", "surrogateescape").split("\0"):
            if not entry:
                continue
            meta, _, path = entry.partition("\t")
            _mode, kind, blob = meta.split(" ")
            if kind == "blob":
                files[path] = blob
        return files

    def list_dirs(self, commit: str, folder: str) -> list[str]:
        """Return the names of the folders directly inside `folder` at `commit`."""
        out = self.run("ls-tree", "-z", "--full-tree", commit, "--", folder.rstrip("/") + "/")
        names = []
        for entry in out.decode("utf-8", "surrogateescape").split("\0"):
            meta, _, path = entry.partition("\t")
            if path and meta.split(" ")[1] == "tree":
                names.append(path.rsplit("/", 1)[-1])
        return names

    def files_mentioning(self, pattern: str, pathspec: str) -> list[str]:
        """Return tracked working-tree files matching `pathspec` with a line matching `pattern`."""
        try:
            out = self.run("grep", "-l", "-z", "-E", "-e", pattern, "--", pathspec)
        except GitError:
            return []  # git grep exits 1 when nothing matches
        return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]

    def read_blob(self, blob: str) -> bytes:
        """Return the content of a blob."""
        return self.run("cat-file", "blob", blob)

    def deleted_paths(self, commit: str, folder: str) -> list[str]:
        """Return paths under `folder` that some commit up to `commit` deleted."""
        out = self.run(
            "log", "--format=", "--name-only", "--diff-filter=D", "-z", commit, "--", folder
        )
        return [
            p.strip("\n") for p in out.decode("utf-8", "surrogateescape").split("\0") if p.strip()
        ]


def _name_status(out: bytes) -> list[Change]:
    """Parse `git diff --name-status -z` output."""
    fields = out.decode("utf-8", "surrogateescape").split("\0")
    return [
        Change("M" if status not in ("A", "D") else status, path)
        for status, path in zip(fields[0::2], fields[1::2], strict=False)
        if path
    ]


def _run(cwd: Path, *args: str) -> bytes:
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            timeout=DEFAULT_LIMITS.git_seconds,
            check=False,
        )
    except FileNotFoundError as e:
        raise GitError("git: not found (the pull-request check reads the base with git)") from e
    except (OSError, subprocess.SubprocessError) as e:
        raise GitError(f"git {args[0]}: {e}") from e
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]} in {cwd}: {message[-1] if message else 'failed'}")
    return result.stdout
