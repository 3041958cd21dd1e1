"""TUF, the attacks: each refused with a clear message, against a real HTTP server.

The registry is a signed build of a small index (tests/test_tuf.py's helpers),
served from its build folder on 127.0.0.1; the attacker edits what the server
serves (or holds a stolen online key) and a client must refuse.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, MetaFile, Root, Timestamp

from builder.client.tuf_updater import TufRefusedError
from builder.common import layout
from builder.common.errors import BuildError, FetchError
from builder.tuf.admin import rotate_root
from builder.tuf.keys import generate, read_private, write_private
from builder.tuf.metadata import SERIALIZER, bin_index, utc
from tests.fault_server import Recorder, endless, serve_recorded
from tests.test_tuf import DAY, HOUR, Signed, client_for, doc, make_registry, reopen

STEP = DAY // 2  # builds far enough apart that every role is signed anew


@pytest.fixture
def signed(tmp_path: Path) -> Signed:
    return make_registry(tmp_path)


@pytest.fixture
def served(signed: Signed) -> Iterator[tuple[str, Recorder]]:
    with serve_recorded(signed.out) as found:
        yield found


def metadata_files(out: Path) -> dict[str, Path]:
    """Return the build's metadata files by role name (the newest version of each)."""
    found: dict[str, Path] = {}
    for path in sorted((out / "metadata").iterdir(), key=lambda p: p.name):
        parts = path.name.split(".")
        role = parts[0] if len(parts) == 2 else parts[1]
        if role not in found or parts[0] > found[role].name.split(".")[0]:
            found[role] = path
    return found


def two_builds(signed: Signed, tmp: Path) -> Path:
    """Keep a copy of the current build, then build a newer one (every role re-signed)."""
    old = tmp / "old-build"
    shutil.copytree(signed.out, old)
    signed.release("alpha", "2.0.0")
    signed.build(signed.now + 16 * DAY)  # past half the targets' 30 days: all re-signed
    return old


# --- targets -----------------------------------------------------------------------------


def test_tampered_target_is_refused(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """A document's bytes changed on the server: its signed sha256 no longer matches."""
    url, _ = served
    client = client_for(url, signed, tmp_path / "home")
    info = client.target_info(doc("alpha"))
    path = signed.out / info.url
    path.write_bytes(path.read_bytes().replace(b"alpha", b"evil!"))
    with pytest.raises(TufRefusedError, match="does not match what the registry signed"):
        client.verified_target(doc("alpha"))


def test_longer_target_is_refused(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """An artifact with bytes appended: refused at the signed length, not read to the end."""
    url, _ = served
    client = client_for(url, signed, tmp_path / "home")
    document = json.loads(client.verified_target(doc("alpha")))
    artifact = document["versions"][0]["artifact"]["download"]
    with (signed.out / artifact).open("ab") as stream:
        stream.write(b"\0" * 4096)
    with pytest.raises(TufRefusedError, match="longer than the registry signed"):
        client.verified_target(artifact)


def test_arbitrary_target_is_refused(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """A file the registry never signed (a planted plugin document) is not used."""
    url, _ = served
    planted = signed.out / doc("evil")
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text("{}", encoding="utf-8")
    client = client_for(url, signed, tmp_path / "home")
    with pytest.raises(TufRefusedError, match="not signed by the registry"):
        client.verified_target(doc("evil"))


# --- metadata ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["timestamp", "snapshot", "targets", "bins-0"])
def test_tampered_metadata_is_refused(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path, role: str
) -> None:
    """A signed field edited on the server: its signature (or the hash naming it) fails."""
    url, _ = served
    path = metadata_files(signed.out)[role]
    data = json.loads(path.read_bytes())
    data["signed"]["expires"] = "2099-01-01T00:00:00Z"
    path.write_bytes(json.dumps(data).encode())
    with pytest.raises(TufRefusedError, match=r"not signed by enough|does not match|refused"):
        client_for(url, signed, tmp_path / "home").verified_target(doc("alpha"))
        client_for(url, signed, tmp_path / "home2").verified_target(doc("beta"))


@pytest.mark.parametrize("role", ["snapshot", "targets", "bin"])
def test_rollback_is_refused(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path, role: str
) -> None:
    """The new build's snapshot, targets or bin replaced by the older one: refused."""
    url, _ = served
    client_for(url, signed, tmp_path / "home").verified_target(doc("alpha"))
    old = two_builds(signed, tmp_path)
    new_files, old_files = metadata_files(signed.out), metadata_files(old)
    if role == "bin":
        role = f"bins-{bin_index(doc('alpha'), 2):x}"  # alpha's document changed
    assert new_files[role].name != old_files[role].name
    shutil.copy(old_files[role], new_files[role])  # the old bytes under the new name
    with pytest.raises(TufRefusedError, match=r"refused a rollback|does not match"):
        reopen(url, tmp_path / "home").verified_target(doc("alpha"))


def test_rollback_of_the_whole_registry_is_refused(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """The server goes back to an older build, complete and validly signed: refused."""
    url, _ = served
    old = two_builds(signed, tmp_path)
    client_for(url, signed, tmp_path / "home").refresh()
    shutil.copy(old / layout.TIMESTAMP, signed.out / layout.TIMESTAMP)
    with pytest.raises(TufRefusedError, match=r"refused a rollback.*timestamp"):
        reopen(url, tmp_path / "home").refresh()


def test_freeze_is_refused_naming_the_role_and_date(tmp_path: Path) -> None:
    """A registry not refreshed for two days (the clock moved past its expiry): refused."""
    frozen = make_registry(tmp_path, now=int(time.time()) - 2 * DAY)
    expires = utc(frozen.now + DAY)
    with serve_recorded(frozen.out) as (url, _), pytest.raises(TufRefusedError) as error:
        client_for(url, frozen, tmp_path / "home")
    message = str(error.value)
    assert "timestamp metadata expired" in message
    assert f"{expires:%Y-%m-%d %H:%M}" in message


def test_mix_and_match_is_refused(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """A document from another build served where this build's metadata points: refused."""
    url, _ = served
    old = two_builds(signed, tmp_path)
    client = client_for(url, signed, tmp_path / "home")
    info = client.target_info(doc("alpha"))
    (signed.out / info.url).write_bytes((old / doc("alpha")).read_bytes())
    with pytest.raises(TufRefusedError, match="tampered, or from another build"):
        client.verified_target(doc("alpha"))


def test_a_removed_yank_is_refused(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """Build 2 yanks alpha 1.0.0; serving build 1's document (no yank) is refused."""
    from builder.authoring.sign import sign_file
    from tests.conftest import demo_key

    old = tmp_path / "before-yank"
    shutil.copytree(signed.out, old)
    version = signed.index / "plugins/alpha/versions/1.0.0.yaml"
    version.write_text(
        version.read_text(encoding="utf-8") + "yanked:\n  reason: Leaks secrets.\n",
        encoding="utf-8",
    )
    sign_file(version, demo_key("jan-kowalski"), yank=True)
    signed.build()
    url, _ = served
    client = client_for(url, signed, tmp_path / "home")
    assert b"Leaks secrets" in client.verified_target(doc("alpha"))
    info = client.target_info(doc("alpha"))
    (signed.out / info.url).write_bytes((old / doc("alpha")).read_bytes())
    fresh = (
        reopen(url, tmp_path / "home2") if False else client_for(url, signed, tmp_path / "home2")
    )
    with pytest.raises(TufRefusedError, match="does not match what the registry signed"):
        fresh.verified_target(doc("alpha"))


@pytest.mark.parametrize("role", ["2.root", "timestamp", "snapshot", "targets", "bins-0"])
def test_endless_metadata_is_cut_off(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path, role: str
) -> None:
    """A server streaming zeros for a metadata file: cut off at the cap, refused."""
    url, recorder = served
    files = metadata_files(signed.out)
    name = "2.root.json" if role == "2.root" else files[role].name
    recorder.faults[f"/metadata/{name}"] = [endless]
    with pytest.raises((TufRefusedError, FetchError), match=r"longer than allowed|too large"):
        client = client_for(url, signed, tmp_path / "home")
        for name_ in ("alpha", "beta"):
            client.verified_target(doc(name_))
        for number in range(8):
            client.target_info(f"index/x{number}/y/z{number}.json")


# --- keys and roots ------------------------------------------------------------------------


def _forge_timestamp(signed: Signed, version: int) -> None:
    """Sign a timestamp with the (stolen) timestamp key, at a huge version."""
    path = signed.out / layout.TIMESTAMP
    current: Metadata[Timestamp] = Metadata.from_bytes(path.read_bytes())
    current.signed.version = version
    current.signatures.clear()
    current.sign(read_private(signed.keys / "timestamp.pem"))
    path.write_bytes(current.to_bytes(SERIALIZER))


def test_fast_forward_recovery_after_a_timestamp_key_rotation(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """A stolen timestamp key fast-forwards clients; rotating it in root 2 lets them recover."""
    url, _ = served
    client_for(url, signed, tmp_path / "home").refresh()
    _forge_timestamp(signed, 10**12)
    reopen(url, tmp_path / "home").refresh()  # accepted: it is validly signed
    stuck = signed.out / "stuck"
    signed.release("beta", "2.0.0")
    with pytest.raises(BuildError, match="beyond any time"):
        signed.build()  # the registry itself cannot go past the forged version
    assert not stuck.exists()
    new_key = tmp_path / "timestamp-2.pem"
    write_private(new_key, generate())
    rotate_root(
        signed.index,
        [read_private(signed.keys / "root-1.pem"), read_private(signed.keys / "root-2.pem")],
        keys={"timestamp": [read_private(new_key).public_key]},
    )
    signed.env["PLUGINDEX_TUF_TIMESTAMP_SIGNER"] = f"file:{new_key}"
    signed.build()
    client = reopen(url, tmp_path / "home")
    document = json.loads(client.verified_target(doc("beta")))
    assert document["versions"][-1]["version"] == "2.0.0"


def _next_root(signed: Signed, signers: list[str], *, edit: object = None) -> bytes:
    """Return root N+1 (a copy of the newest) signed by the named key files."""
    newest = max(int(p.name.split(".")[0]) for p in (signed.index / "tuf").glob("*.root.json"))
    current: Metadata[Root] = Metadata.from_bytes(signed.root(newest))
    current.signed.version = newest + 1
    current.signatures.clear()
    if callable(edit):
        edit(current.signed)
    for name in signers:
        current.sign(read_private(signed.keys / name), append=True)
    return current.to_bytes(SERIALIZER)


def test_root_chain_1_2_3_is_followed(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """Roots 2 and 3, each signed by 2 of 3 keys: a client trusting root 1 follows both."""
    url, _ = served
    client_for(url, signed, tmp_path / "home").refresh()
    for number in (2, 3):
        data = _next_root(signed, ["root-1.pem", "root-3.pem"])
        (signed.index / "tuf" / f"{number}.root.json").write_bytes(data)
    signed.build()
    reopen(url, tmp_path / "home").refresh()
    history = tmp_path / "home/data/tuf/test/metadata/root_history"
    assert (history / "3.root.json").read_bytes() == signed.root(3)


def test_root_signed_by_one_key_of_a_2_of_3_threshold_is_refused(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """Root 2 with one signature where root 1 asks two: refused, nothing trusted from it."""
    url, _ = served
    (signed.out / "metadata/2.root.json").write_bytes(_next_root(signed, ["root-1.pem"]))
    with pytest.raises(TufRefusedError, match="signed by 1/2 keys"):
        client_for(url, signed, tmp_path / "home")


def test_a_duplicate_signature_never_counts_twice(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """Root 2 carrying one key's signature twice: refused, not two signatures."""
    url, _ = served
    data = json.loads(_next_root(signed, ["root-1.pem"]))
    data["signatures"].append(dict(data["signatures"][0]))
    (signed.out / "metadata/2.root.json").write_bytes(json.dumps(data).encode())
    with pytest.raises(TufRefusedError, match="Multiple signatures found"):
        client_for(url, signed, tmp_path / "home")


def test_a_duplicate_key_never_counts_twice(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """Root 2 listing root-1's key under a second key id, threshold met by that one key."""
    url, _ = served
    key = read_private(signed.keys / "root-1.pem")

    def duplicate(root: Root) -> None:
        copy = type(key.public_key).from_dict("f" * 64, key.public_key.to_dict())
        root.add_key(copy, "root")

    data = json.loads(_next_root(signed, ["root-1.pem", "root-2.pem"], edit=duplicate))
    signature = next(s for s in data["signatures"] if s["keyid"] == key.public_key.keyid)
    data["signatures"].append({"keyid": "f" * 64, "sig": signature["sig"]})
    (signed.out / "metadata/2.root.json").write_bytes(json.dumps(data).encode())
    with pytest.raises(TufRefusedError, match="same public key"):
        client_for(url, signed, tmp_path / "home")


def test_a_build_refuses_a_root_listing_one_key_twice(signed: Signed) -> None:
    """The same root committed to the index: the build names both key ids and stops."""
    key = read_private(signed.keys / "root-1.pem")

    def duplicate(root: Root) -> None:
        root.add_key(type(key.public_key).from_dict("f" * 64, key.public_key.to_dict()), "root")

    data = _next_root(signed, ["root-1.pem", "root-2.pem"], edit=duplicate)
    (signed.index / "tuf" / "2.root.json").write_bytes(data)
    signed.release("beta", "1.1.0")
    with pytest.raises(BuildError, match=f"{key.public_key.keyid[:16]} and f{{16}} are the same"):
        signed.build()


def test_an_edited_stored_root_is_refused(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """The pinned root edited on disk (an attacker's key added): refused, not trusted."""
    url, _ = served
    client_for(url, signed, tmp_path / "home").refresh()
    pinned = tmp_path / "home/data/tuf/test/pinned.root.json"
    pinned.write_bytes(pinned.read_bytes().replace(b'"threshold": 2', b'"threshold": 1'))
    with pytest.raises(TufRefusedError, match="changed on disk"):
        reopen(url, tmp_path / "home")


def test_every_read_mid_publish_sees_one_build(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """Copy build 2 over build 1 in publish order; after each file a client sees 1 or 2."""
    url, _ = served
    live = signed.out
    staged = tmp_path / "build-2"
    shutil.copytree(live, staged)
    signed.out = staged
    signed.release("alpha", "2.0.0")
    signed.release("beta", "2.0.0")
    signed.build(int(time.time()) - HOUR)
    signed.out = live
    changed = [
        p.relative_to(staged).as_posix()
        for p in staged.rglob("*")
        if p.is_file()
        and ".plugindex" not in p.parts
        and (
            not (live / p.relative_to(staged)).is_file()
            or (live / p.relative_to(staged)).read_bytes() != p.read_bytes()
        )
    ]
    seen = set()
    for number, path in enumerate(sorted(changed, key=lambda p: (layout.write_rank(p), p))):
        (live / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(staged / path, live / path)
        client = client_for(url, signed, tmp_path / f"reader-{number}")
        versions = {
            json.loads(client.verified_target(doc(name)))["versions"][-1]["version"]
            for name in ("alpha", "beta")
        }
        assert versions in ({"1.0.0"}, {"2.0.0"}), (path, versions)
        seen.add(frozenset(versions))
    assert seen == {frozenset({"1.0.0"}), frozenset({"2.0.0"})}
    assert hashlib.sha256(b"") is not None and MetaFile is not None
