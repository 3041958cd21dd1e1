"""TUF, the happy paths: init, signed builds, a client that follows them over HTTP.

The registry side (`builder.tuf`) signs builds of a small index; the client side
(`builder.client.tuf_updater`) reads them from a real HTTP server on 127.0.0.1.
The attacks are in tests/test_tuf_attacks.py, with the helpers here.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.cli.registry_admin import StoreWriter
from builder.client.signed import SignedFetcher
from builder.client.tuf_updater import (
    NoTufError,
    TufClient,
    TufRefusedError,
    open_client,
    trust_registry,
)
from builder.common import layout
from builder.common.errors import BuildError, FetchError
from builder.common.fetch import HttpFetcher, TooLargeError
from builder.index.build import build
from builder.index.output import Planned
from builder.index.stages import BuildView
from builder.publish.folder import LocalStorage
from builder.tuf.admin import init_registry, refresh_timestamp, rotate_root
from builder.tuf.keys import read_private, read_public
from builder.tuf.metadata import Expiry, TufError, check_root_chain
from builder.tuf.stage import TufStage
from tests.conftest import PLUGINDEX
from tests.fault_server import Recorder, serve_recorded
from tests.mini_index import add_release, write_index

HOUR = 3600
DAY = 86400
ONLINE = ("targets", "snapshot", "timestamp")


@dataclass
class Signed:
    """A small TUF registry: its index, keys, build folder and the builds' times."""

    index: Path
    keys: Path
    out: Path
    now: int
    env: dict[str, str] = field(default_factory=dict)
    stage: TufStage | None = None

    def build(self, at: int | None = None) -> list[str]:
        """Build the index at time `at` (default: the next minute); return the files written."""
        self.now = self.now + 60 if at is None else at
        environ = {**self.env, "SOURCE_DATE_EPOCH": str(self.now)}
        self.stage = TufStage(environ=environ)
        result = build(self.index, self.out, environ=environ, stages=[self.stage])
        return result.report.written

    def release(self, name: str, version: str) -> None:
        """Add a release with a local artifact."""
        add_release(self.index, name, version, f"artifacts/{name}-{version}.tar.gz")

    def root(self, number: int = 1) -> bytes:
        return (self.index / "tuf" / f"{number}.root.json").read_bytes()

    def snapshot_of(self) -> Path:
        """Return the served folder (the build output mirrors the bucket)."""
        return self.out


def make_registry(tmp: Path, *, bins: int = 4, now: int | None = None) -> Signed:
    """Return a signed registry of two plugins, built once."""
    index = write_index(tmp / "index")
    keys = tmp / "keys"
    init_registry(index, keys, bins=bins)
    env = {f"PLUGINDEX_TUF_{r.upper()}_SIGNER": f"file:{keys / (r + '.pem')}" for r in ONLINE}
    registry = Signed(index, keys, tmp / "out", now or int(time.time()) - HOUR, env)
    registry.release("alpha", "1.0.0")
    registry.release("beta", "1.0.0")
    registry.build(registry.now)
    return registry


def client_for(url: str, registry: Signed, home: Path, *, root: bytes | None = None) -> TufClient:
    """Return a client that trusts `registry` through its root 1 (or `root`), state in `home`."""
    pinned = home / "root.json"
    home.mkdir(parents=True, exist_ok=True)
    pinned.write_bytes(root or registry.root())
    fetcher = HttpFetcher(url, home / "cache", attempts=1)
    return trust_registry(fetcher, home / "data", "test", str(pinned), home / "cache")


def reopen(url: str, home: Path) -> TufClient:
    """Return a new client (a new process) on the state a previous one left in `home`."""
    return open_client(
        HttpFetcher(url, home / "cache", attempts=1), home / "data", "test", home / "cache"
    )


@pytest.fixture
def signed(tmp_path: Path) -> Signed:
    """A signed registry of two plugins, built once."""
    return make_registry(tmp_path)


@pytest.fixture
def served(signed: Signed) -> Iterator[tuple[str, Recorder]]:
    """Serve the registry's build folder on 127.0.0.1."""
    with serve_recorded(signed.out) as found:
        yield found


def doc(name: str) -> str:
    return layout.index_path(name)


# --- the build ---------------------------------------------------------------------------


def test_build_signs_every_file_a_client_reads(signed: Signed) -> None:
    """Documents, artifacts, listings and config.json are targets; the site is not."""
    from tuf.api.metadata import Metadata, Targets

    targets: dict[str, object] = {}
    for path in (signed.out / "metadata").glob("*.bins-*.json"):
        bin_: Metadata[Targets] = Metadata.from_bytes(path.read_bytes())
        targets.update(bin_.signed.targets)
    assert doc("alpha") in targets and layout.NAMES in targets
    (top_file,) = (signed.out / "metadata").glob("*.targets.json")
    top: Metadata[Targets] = Metadata.from_bytes(top_file.read_bytes())
    assert list(top.signed.targets) == [layout.CONFIG]  # config.json: in no bin
    assert layout.CONFIG not in targets
    assert any(p.startswith("artifacts/") for p in targets)
    sha = hashlib.sha256((signed.out / doc("alpha")).read_bytes()).hexdigest()
    assert (signed.out / layout.consistent_path(doc("alpha"), sha)).is_file()
    assert not any(p.endswith(".html") for p in targets)


def test_the_same_source_gives_the_same_metadata_bytes(signed: Signed, tmp_path: Path) -> None:
    """Versions and expiry come from the build's time, never the clock: a cold rebuild matches."""
    first = {p.name: p.read_bytes() for p in (signed.out / "metadata").iterdir()}
    shutil.rmtree(signed.out)
    signed.build(signed.now)
    again = {p.name: p.read_bytes() for p in (signed.out / "metadata").iterdir()}
    assert again == first


def test_a_no_op_rebuild_signs_nothing(signed: Signed) -> None:
    """Nothing changed: no role is signed again, no file is written."""
    written = signed.build(signed.now)
    assert written == [] and signed.stage is not None and signed.stage.signed == []


def test_a_no_op_rebuild_keeps_every_consistent_copy_without_reading_it(signed: Signed) -> None:
    """Copies already in place are planned as kept: no bytes held, no file to copy from."""
    environ = {**signed.env, "SOURCE_DATE_EPOCH": str(signed.now)}
    stage = TufStage(environ=environ)
    planned: dict[str, Planned] = {}
    plan_after = stage.plan_after

    def spy(view: BuildView, plan: Mapping[str, Planned]) -> dict[str, Planned]:
        files = plan_after(view, plan)
        planned.update(files)
        return files

    stage.plan_after = spy  # type: ignore[method-assign]
    result = build(signed.index, signed.out, environ=environ, stages=[stage])
    copies = {p: f for p, f in planned.items() if re.search(r"(^|/)[0-9a-f]{64}\.", p)}
    assert result.report.written == []
    assert doc("alpha") not in copies and layout.NAMES not in copies
    assert len(copies) > 3
    assert [p for p, f in copies.items() if f.content is not None] == []


def test_a_one_plugin_change_re_signs_its_bins_the_snapshot_and_the_timestamp(
    signed: Signed,
) -> None:
    """A new version touches a few bins (document, artifact, listings), never all of them."""
    signed.release("alpha", "1.1.0")
    written = signed.build()
    metadata = [p for p in written if p.startswith(layout.METADATA)]
    bins = [p for p in metadata if ".bins-" in p]
    assert metadata[-1] == layout.TIMESTAMP  # written last
    assert any(".snapshot.json" in p for p in metadata)
    assert not any(".targets.json" in p for p in metadata)  # delegations unchanged
    assert 1 <= len(bins) < 4  # of 4 bins


def test_a_kept_role_is_copied_from_the_output_when_the_build_cache_is_gone(
    signed: Signed,
) -> None:
    """A build stopped half-way drops the build cache: the next keeps the unchanged bins."""
    from builder.index.cache import forget_cache

    forget_cache(signed.out)
    before = {p.name: p.read_bytes() for p in (signed.out / "metadata").iterdir()}
    signed.release("beta", "1.1.0")
    signed.build()
    after = {p.name: p.read_bytes() for p in (signed.out / "metadata").iterdir()}
    unchanged = [n for n in before if ".bins-" in n and after.get(n) == before[n]]
    assert unchanged  # the bins beta does not touch, still in place, byte for byte


def test_no_key_material_in_the_build_output(signed: Signed) -> None:
    """Private keys never enter the output: no PEM, no base64 or hex of any private key."""
    secrets = [b"PRIVATE KEY"]
    for pem in signed.keys.glob("*.pem"):
        secrets.append(base64.b64encode(pem.read_bytes())[:40])
        key = serialization.load_pem_private_key(pem.read_bytes(), None)
        assert isinstance(key, Ed25519PrivateKey)
        raw = key.private_bytes_raw()
        secrets += [base64.b64encode(raw)[:40], raw.hex().encode()]
    found = [
        str(path)
        for path in signed.out.rglob("*")
        if path.is_file() and any(s in path.read_bytes() for s in secrets)
    ]
    assert found == []


def test_a_build_without_its_online_keys_names_what_to_set(signed: Signed) -> None:
    """No key for the timestamp role: the build fails and says which variable to set."""
    signed.env.pop("PLUGINDEX_TUF_TIMESTAMP_SIGNER")
    signed.release("beta", "1.1.0")
    with pytest.raises(BuildError, match=r"\$PLUGINDEX_TUF_TIMESTAMP_KEY: not set"):
        signed.build()


def test_a_build_with_a_key_root_does_not_authorise_is_refused(signed: Signed) -> None:
    """The snapshot signed with the timestamp key: refused before anything is written."""
    signed.env["PLUGINDEX_TUF_SNAPSHOT_SIGNER"] = f"file:{signed.keys / 'timestamp.pem'}"
    signed.release("beta", "1.1.0")
    with pytest.raises(BuildError, match="is not one the registry's root authorises"):
        signed.build()


def test_keys_from_base64_environment_variables(signed: Signed) -> None:
    """CI passes online keys as base64 secrets: $PLUGINDEX_TUF_<ROLE>_KEY."""
    for role in ONLINE:
        signed.env.pop(f"PLUGINDEX_TUF_{role.upper()}_SIGNER")
        pem = (signed.keys / f"{role}.pem").read_bytes()
        signed.env[f"PLUGINDEX_TUF_{role.upper()}_KEY"] = base64.b64encode(pem).decode()
    signed.release("beta", "1.1.0")
    assert layout.TIMESTAMP in signed.build()


def test_an_index_without_tuf_builds_unsigned(tmp_path: Path) -> None:
    """No tuf/ folder: the build is as before, with no metadata."""
    index = write_index(tmp_path / "index")
    add_release(index, "alpha", "1.0.0", "artifacts/a.tar.gz")
    environ = {"SOURCE_DATE_EPOCH": "1700000000"}
    build(index, tmp_path / "out", environ=environ, stages=[TufStage(environ=environ)])
    assert not (tmp_path / "out" / "metadata").exists()


def test_the_bundled_demo_root_verifies(tmp_path: Path) -> None:
    """The demo registry's root ships with the repository and signs itself (2 of 3)."""
    root = Path(__file__).resolve().parents[1] / "registry-index" / "tuf" / "1.root.json"
    trusted = check_root_chain([root.read_bytes()], lambda n: str(root), int(time.time()))
    assert trusted.roles["root"].threshold == 2 and len(trusted.roles["root"].keyids) == 3


# --- the client --------------------------------------------------------------------------


def test_client_reads_signed_documents_and_artifacts(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """A document and its artifact come through the targets, checked, at consistent paths."""
    url, recorder = served
    client = client_for(url, signed, tmp_path / "home")
    document = json.loads(client.verified_target(doc("alpha")))
    artifact = document["versions"][0]["artifact"]["download"]
    data = client.verified_target(artifact)
    assert data == (signed.index / "plugins/alpha/artifacts/alpha-1.0.0.tar.gz").read_bytes()
    assert any(
        layout.consistent_path(doc("alpha"), "").split("/")[-1] in p for p in recorder.paths()
    )


def test_a_target_signed_larger_than_the_clients_cap_is_refused_unfetched(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """The signed length decides: past the cap, neither the document nor the artifact is read."""
    url, recorder = served
    client = client_for(url, signed, tmp_path / "home")
    artifact = json.loads(client.verified_target(doc("alpha")))["versions"][0]["artifact"]
    fetcher = SignedFetcher(reopen(url, tmp_path / "home"))
    recorder.hits.clear()
    with pytest.raises(TooLargeError, match=r"expected at most 10 bytes, the registry signed \d+"):
        fetcher.document(doc("beta"), max_size=10)
    sink = io.BytesIO()
    with pytest.raises(TooLargeError, match=r"expected at most 10 bytes, the registry signed \d+"):
        fetcher.download(artifact["download"], sink, max_size=10)
    assert sink.getvalue() == b""
    read = [p for p in recorder.paths() if p.startswith(("/index/", "/artifacts/"))]
    assert read == [], read


def test_requests_cold_and_warm(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """Cold: root probe, timestamp, snapshot, targets, one bin, the document. Warm: 2 requests."""
    url, recorder = served
    client_for(url, signed, tmp_path / "home").verified_target(doc("alpha"))
    assert len(recorder.hits) == 6, recorder.paths()
    recorder.hits.clear()
    reopen(url, tmp_path / "home").verified_target(doc("alpha"))
    assert [(h.path, h.status) for h in recorder.hits] == [
        ("/metadata/2.root.json", 404),
        ("/metadata/timestamp.json", 304),
    ]


def test_config_json_costs_no_bin(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """config.json, read first by every client, is in the targets role: no bin fetched."""
    url, recorder = served
    client = client_for(url, signed, tmp_path / "home")
    data = client.verified_target(layout.CONFIG)
    assert data == (signed.out / layout.CONFIG).read_bytes()
    roles = [p.rsplit("/", 1)[1] for p in recorder.paths() if p.startswith("/metadata/")]
    assert not [r for r in roles if ".bins-" in r], roles
    assert len(recorder.hits) == 5, recorder.paths()  # probe, timestamp, snapshot, targets


def test_client_follows_1_10_and_100_publishes(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """Each build is a new signed state; a client keeps up after 1, 10 and 100 of them."""
    url, _ = served
    client_for(url, signed, tmp_path / "home").refresh()
    for number in range(1, 101):
        signed.release("alpha", f"1.{number}.0")
        signed.build()
        if number in (1, 10, 100):
            document = json.loads(reopen(url, tmp_path / "home").verified_target(doc("alpha")))
            assert document["versions"][-1]["version"] == f"1.{number}.0"


def test_a_re_signed_timestamp_needs_no_rebuild(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """refresh-timestamp with the clock: clients accept the newer timestamp; no build ran."""
    url, _ = served
    client_for(url, signed, tmp_path / "home").refresh()
    root = check_root_chain([signed.root()], lambda n: "root", None)
    keys = {r: read_private(signed.keys / f"{r}.pem") for r in ONLINE}
    done = refresh_timestamp(
        StoreWriter(LocalStorage(signed.out)), root, keys.__getitem__, expiry=Expiry()
    )
    assert done.written == [layout.TIMESTAMP]
    client = reopen(url, tmp_path / "home")
    client.refresh()
    stamp = json.loads((tmp_path / "home/data/tuf/test/metadata/timestamp.json").read_bytes())
    assert stamp["signed"]["version"] > signed.now


def test_refresh_re_signs_roles_near_expiry(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """Twenty days without a build: refresh re-signs the bins, targets and snapshot too."""
    _ = served
    root = check_root_chain([signed.root()], lambda n: "root", None)
    keys = {r: read_private(signed.keys / f"{r}.pem") for r in ONLINE}
    import datetime

    later = datetime.datetime.fromtimestamp(signed.now + 20 * DAY, tz=datetime.UTC)
    done = refresh_timestamp(
        StoreWriter(LocalStorage(signed.out)), root, keys.__getitem__, now=later
    )
    assert done.written[-1] == layout.TIMESTAMP
    assert {"targets", "snapshot", "timestamp"} <= set(done.expires)


def test_trust_pinned_by_sha256(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """--root SHA256 pins the first root the network serves; another sha256 is refused."""
    url, _ = served
    fetcher = HttpFetcher(url, tmp_path / "cache", attempts=1)
    good = hashlib.sha256(signed.root()).hexdigest()
    trust_registry(fetcher, tmp_path / "data", "test", good).verified_target(doc("beta"))
    with pytest.raises(TufRefusedError, match="not the pinned root"):
        trust_registry(fetcher, tmp_path / "data2", "test", "0" * 64)


def test_a_registry_without_tuf_is_refused(tmp_path: Path, signed: Signed) -> None:
    """No metadata/ on the server: refused, and the message names --insecure-no-tuf."""
    shutil.rmtree(signed.out / "metadata")
    with (
        serve_recorded(signed.out) as (url, _),
        pytest.raises(NoTufError, match="--insecure-no-tuf"),
    ):
        client_for(url, signed, tmp_path / "home")


def test_rotate_root_cli_and_the_client_follows(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    """`registry rotate-root` writes root 2; the next build publishes it; clients follow."""
    url, _ = served
    client_for(url, signed, tmp_path / "home").refresh()
    new_key = tmp_path / "root-4.pem"
    shutil.copy(signed.keys / "root-1.pem", tmp_path / "unused.pem")
    from builder.tuf.keys import generate, write_private

    write_private(new_key, generate())
    done = subprocess.run(
        [
            *PLUGINDEX,
            "registry",
            "rotate-root",
            str(signed.index),
            "--sign",
            str(signed.keys / "root-1.pem"),
            "--sign",
            str(signed.keys / "root-2.pem"),
            "--sign",
            str(new_key),
            "--set",
            f"root={signed.keys / 'root-1.pem'},{signed.keys / 'root-2.pem'},{new_key}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (signed.index / "tuf" / "2.root.json").is_file()
    signed.build()
    client = reopen(url, tmp_path / "home")
    client.refresh()
    assert (tmp_path / "home/data/tuf/test/metadata/root_history/2.root.json").is_file()


def test_rotate_root_refuses_too_few_signatures(signed: Signed) -> None:
    """One root key of a 2-of-3 root cannot write root 2: the message names what is missing."""
    with pytest.raises(TufError, match=r"root 1 needs 2 of its root keys, got 1"):
        rotate_root(
            signed.index,
            [read_private(signed.keys / "root-1.pem")],
            keys={"timestamp": [read_public(signed.keys / "snapshot.pem")]},
        )
    assert not (signed.index / "tuf" / "2.root.json").exists()


def test_init_cli_writes_root_and_keys(tmp_path: Path) -> None:
    """`plugindex registry init` writes root 1, six keys (mode 600) and the tuf: settings."""
    index = write_index(tmp_path / "index")
    done = subprocess.run(
        [*PLUGINDEX, "registry", "init", str(index), "--keys-out", str(tmp_path / "keys")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "root: 2 of 3" in done.stdout
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == [
        "root-1.pem",
        "root-2.pem",
        "root-3.pem",
        "snapshot.pem",
        "targets.pem",
        "timestamp.pem",
    ]
    assert all(p.stat().st_mode & 0o077 == 0 for p in (tmp_path / "keys").iterdir())
    assert "tuf:\n  bins: 16" in (index / "registry.yaml").read_text(encoding="utf-8")
    again = subprocess.run(
        [*PLUGINDEX, "registry", "init", str(index), "--keys-out", str(tmp_path / "k2")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 3 and "already has a root" in again.stderr


def test_a_build_without_a_source_time_is_left_unsigned(signed: Signed) -> None:
    """No git and no SOURCE_DATE_EPOCH: never the clock; the build carries no metadata."""
    build(signed.index, signed.out, environ={**signed.env}, stages=[TufStage(environ=signed.env)])
    assert not (signed.out / "metadata").exists()


# --- offline: the state the last online run verified ----------------------------------------


def test_offline_reads_the_kept_state_with_no_request(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    url, recorder = served
    home = tmp_path / "home"
    client_for(url, signed, home).verified_target(doc("alpha"))
    recorder.hits.clear()
    offline = open_client(
        HttpFetcher(url, home / "cache", offline=True),
        home / "data",
        "test",
        home / "cache",
        offline=True,
    )
    assert json.loads(offline.verified_target(doc("alpha")))["name"] == "alpha"
    assert recorder.hits == []
    with pytest.raises(FetchError, match=r"run once without --offline first"):
        offline.verified_target(doc("beta"))  # never fetched online: its bytes are not kept


def test_offline_judges_expiry_at_the_last_online_run(tmp_path: Path) -> None:
    """Metadata current when last fetched is used offline after it expires; online, refused."""
    registry = make_registry(tmp_path, now=int(time.time()) - DAY + 3)  # expires in 3 s
    home = tmp_path / "home"
    with serve_recorded(registry.out) as (url, _):
        client_for(url, registry, home).verified_target(doc("alpha"))
        time.sleep(3.5)
        with pytest.raises(TufRefusedError, match="timestamp metadata expired"):
            reopen(url, home).refresh()
        offline = open_client(
            HttpFetcher(url, home / "cache", offline=True),
            home / "data",
            "test",
            home / "cache",
            offline=True,
        )
        assert json.loads(offline.verified_target(doc("alpha")))["name"] == "alpha"


def test_offline_without_an_online_run_says_to_run_one(
    signed: Signed, served: tuple[str, Recorder], tmp_path: Path
) -> None:
    url, _ = served
    home = tmp_path / "home"
    (home / "root.json").parent.mkdir(parents=True)
    from builder.client.tuf_pin import pin_registry

    (home / "root.json").write_bytes(signed.root())
    fetcher = HttpFetcher(url, home / "cache", offline=True)
    pin_registry(fetcher, home / "data", "test", str(home / "root.json"))
    offline = open_client(fetcher, home / "data", "test", home / "cache", offline=True)
    with pytest.raises(FetchError, match=r"run once without --offline first"):
        offline.refresh()
