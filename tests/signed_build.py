"""Signed builds for the client tests: a build WITH its TUF metadata, and re-signing one.

`build_signed` builds an index (the bundled one, or a copy) with the signing stage,
its online keys taken from the demo keys (tests/data/demo-keys-NOT-FOR-PRODUCTION/tuf)
and the time from the clock, so the metadata is current. `resign` signs a build
folder again as it is now: what a registry whose online keys sign whatever its bucket
holds would serve, so a test can reach the author-signature checks behind TUF.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from pathlib import Path

from builder.common import layout
from builder.format.load import load_registry
from builder.index.build import BuildResult, build
from builder.index.stages import OutputStage
from builder.tuf.keys import ONLINE, read_private
from builder.tuf.metadata import Expiry, Generator, Target, check_root_chain
from builder.tuf.stage import FolderPrevious, TufStage, is_target, root_files

ROOT = Path(__file__).resolve().parent.parent
DEMO_TUF_KEYS = ROOT / "tests" / "data" / "demo-keys-NOT-FOR-PRODUCTION" / "tuf"
DEMO_ROOT = ROOT / "registry-index" / "tuf" / "1.root.json"
_COPY = re.compile(r"[0-9a-f]{64}\.(.+)")


def tuf_environ(now: int | None = None, keys: Path = DEMO_TUF_KEYS) -> dict[str, str]:
    """Return the environment a signed build needs: a source time and the online keys."""
    return {
        "SOURCE_DATE_EPOCH": str(int(time.time()) - 60 if now is None else now),
        **{
            f"PLUGINDEX_TUF_{role.upper()}_SIGNER": f"file:{keys / f'{role}.pem'}"
            for role in ONLINE
        },
    }


def build_signed(
    index: Path,
    out: Path,
    *,
    now: int | None = None,
    stages: Sequence[OutputStage] = (),
    keys: Path = DEMO_TUF_KEYS,
) -> BuildResult:
    """Build `index` into `out` with its TUF metadata, signed now (or at `now`)."""
    environ = tuf_environ(now, keys)
    return build(index, out, environ=environ, stages=[*stages, TufStage(environ=environ)])


def _files(out: Path) -> dict[str, bytes]:
    """Return the build's target files (not their consistent copies), by path."""
    found: dict[str, bytes] = {}
    for file in sorted(out.rglob("*")):
        path = file.relative_to(out).as_posix()
        if not file.is_file() or path.startswith((layout.METADATA, ".plugindex/")):
            continue
        copy = _COPY.fullmatch(file.name)
        if copy is not None and (file.parent / copy[1]).is_file():
            continue  # `<sha256>.<name>`: the consistent copy of a mutable file
        if is_target(path):
            found[path] = file.read_bytes()
    return found


def resign(out: Path, index: Path, *, keys: Path = DEMO_TUF_KEYS, now: int | None = None) -> None:
    """Sign the build folder `out` again as its files now are (see the module)."""
    moment = int(time.time()) if now is None else now
    roots = root_files(index)
    root = check_root_chain([r.read_bytes() for r in roots], lambda n: str(roots[n - 1]), moment)
    registry, _, problems = load_registry(index)
    assert registry is not None, problems
    targets: dict[str, Target] = {}
    for path, data in _files(out).items():
        sha256 = hashlib.sha256(data).hexdigest()
        targets[path] = Target(sha256, len(data))
        copy = out / layout.consistent_path(path, sha256)
        if not copy.exists():
            copy.write_bytes(data)
    signers = {role: read_private(keys / f"{role}.pem") for role in ONLINE}
    generator = Generator(
        root=root,
        expiry=Expiry(**registry.tuf.expiry.model_dump()),
        bits=registry.tuf.bins.bit_length() - 1,
        now=moment,
        previous=FolderPrevious(out, {}),
        signer_for=signers.__getitem__,
        on_disk={},
    )
    for made in generator.generate(targets).values():
        if made.data is not None:
            (out / made.path).write_bytes(made.data)
