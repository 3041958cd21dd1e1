"""The build folder: what `build` leaves for `publish` to read, besides the published files.

Builder state lives under `STATE_DIR` inside the build folder and is never published
or served. `borrowed.json` there lists the artifacts a `build --live` took as already
published (and so did not write): `publish` checks that the store holds them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from builder.common.errors import InvalidIndexError, Problem

STATE_DIR = ".plugindex"  # builder state inside the output; never published or served
BORROWED = "borrowed.json"


def files_on_disk(out: Path) -> dict[str, int]:
    """List every published file under `out` with its size (builder state excluded)."""
    found: dict[str, int] = {}
    for directory, dirs, files in os.walk(out):
        if directory == str(out):
            dirs[:] = [d for d in dirs if d != STATE_DIR]
        rel_dir = os.path.relpath(directory, out)
        for name in files:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
            found[rel] = os.stat(os.path.join(directory, name)).st_size  # noqa: PTH116, PTH118
    return found


def write_borrowed(out: Path, paths: Iterable[str]) -> None:
    """Record which artifacts the build took as already published (none: no file)."""
    target = out / STATE_DIR / BORROWED
    listed = sorted(set(paths))
    if not listed:
        target.unlink(missing_ok=True)
        return
    partial = target.with_suffix(".part")
    partial.write_text(json.dumps(listed, indent=0) + "\n", encoding="utf-8")
    partial.replace(target)


def read_borrowed(build_dir: Path) -> list[str]:
    """Return the artifacts a build took as already published, or [] if none."""
    path = build_dir / STATE_DIR / BORROWED
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise InvalidIndexError(
            [Problem(path, None, "", f"unreadable ({e}); run the build again")]
        ) from e
    if not isinstance(listed, list) or not all(
        isinstance(p, str) and p.startswith("artifacts/") for p in listed
    ):
        raise InvalidIndexError(
            [Problem(path, None, "", "expected a list of artifacts/… paths; run the build again")]
        )
    return listed
