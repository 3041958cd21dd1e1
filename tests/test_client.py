"""The client end to end: `plugindex install/info/...` against a build served on 127.0.0.1.

The build is signed (TUF, `tests/signed_build.py`) and the client trusts it through
the demo root: every file comes through the signed targets. A test that edits a
served document re-signs the build (`write_document`), as a registry whose online
keys sign whatever its bucket holds would, so the author-signature checks behind
TUF are what it reaches; `resign=False` shows TUF refusing the edit first.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.cli.main import cli
from builder.client.registry import Registry
from builder.common import layout
from builder.publish.serve import BuildRequestHandler
from builder.trust import statements
from builder.trust.signing import key_id, public_key_text, sign_statement
from tests.conftest import demo_key, sign_as_owner
from tests.fault_server import Recorder, endless, serve_recorded, status
from tests.signed_build import DEMO_ROOT, build_signed, resign

REGISTRY_NAME = "plugindex-demo"


@dataclass
class Client:
    """A served build, a plugins folder and a cache, and a way to run commands."""

    out: Path
    url: str
    recorder: Recorder
    home: Path
    index: Path  # the index `out` was built from (its tuf/ root signs it)

    @property
    def plugins(self) -> Path:
        return self.home / "plugins"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PLUGINDEX_REGISTRY": self.url,
            "PLUGINDEX_ROOT": str(DEMO_ROOT),
            "PLUGINDEX_PLUGINS_DIR": str(self.plugins),
            "PLUGINDEX_CACHE_DIR": str(self.home / "cache"),
            "PLUGINDEX_CONFIG_DIR": str(self.home / "config"),
            "PLUGINDEX_DATA_DIR": str(self.home / "data"),
            **extra,
        }

    def served(self, path: str) -> str:
        """Return the URL path a client fetches `path` at: its consistent-snapshot copy."""
        sha256 = hashlib.sha256((self.out / path).read_bytes()).hexdigest()
        return "/" + layout.consistent_path(path, sha256)

    def resign(self) -> None:
        """Sign the served build again as it now is."""
        resign(self.out, self.index)

    def registry(self) -> Registry:
        """Return the served registry as the Python API opens it: through the demo root."""
        from builder.client.connect import Where, connect

        where = Where(self.url, {}, self.home / "data", None, root=str(DEMO_ROOT))
        return Registry(connect(where).fetcher)

    def run(self, *args: str, **env: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=self.env(**env), catch_exceptions=False)

    def document(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.out / layout.index_path(name)).read_bytes())
        return data

    def write_document(self, name: str, document: dict[str, Any], *, resign: bool = True) -> None:
        text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        (self.out / layout.index_path(name)).write_text(text + "\n", encoding="utf-8")
        if resign:
            self.resign()

    def artifact(self, name: str, version: str) -> Path:
        entry = next(v for v in self.document(name)["versions"] if v["version"] == version)
        return self.out / str(entry["artifact"]["download"])

    def lock(self) -> dict[str, Any]:
        path = self.plugins / "plugindex.lock"
        return json.loads(path.read_bytes()) if path.exists() else {}


@pytest.fixture
def client(index: Path, tmp_path: Path) -> Iterator[Client]:
    out = tmp_path / "out"
    build_signed(index, out)
    with serve_recorded(out) as (url, recorder):
        yield Client(out, url, recorder, tmp_path / "home", index)


def installed(client: Client) -> dict[str, str]:
    return {name: p["version"] for name, p in client.lock().get("plugins", {}).items()}


def assert_nothing_installed(client: Client) -> None:
    assert installed(client) == {}
    if client.plugins.exists():
        assert sorted(p.name for p in client.plugins.iterdir()) == [".plugindex"]
        assert list((client.plugins / ".plugindex").glob("txn-*")) == []


# --- install --------------------------------------------------------------------------


def test_install_resolves_downloads_and_records_the_dependency_closure(client: Client) -> None:
    result = client.run("install", "auth-jwt")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "installed auth-jwt 1.2.0",
        "installed template-crypto 1.1.1",
    ]
    assert installed(client) == {"auth-jwt": "1.2.0", "template-crypto": "1.1.1"}
    assert (client.plugins / "auth-jwt" / "plugin.toml").is_file()
    assert (client.plugins / "template-crypto" / "plugin.toml").is_file()
    lock = client.lock()["plugins"]
    assert lock["auth-jwt"]["explicit"] and not lock["template-crypto"]["explicit"]
    assert lock["auth-jwt"]["signed_by"] == key_id(public_key_text(demo_key("mara-okafor")))
    listed = client.run("list", "--json")
    assert [p["name"] for p in json.loads(listed.stdout)["plugins"]] == [
        "auth-jwt",
        "template-crypto",
    ]


def test_cold_install_fetches_each_file_once_and_a_warm_run_asks_only_the_timestamp(
    client: Client,
) -> None:
    """Cold: the metadata, its bins, then each file once at its signed path. Warm: 2 requests."""
    assert client.run("install", "auth-jwt").exit_code == 0
    cold = client.recorder.paths()
    files = [
        client.served("config.json"),
        client.served(layout.index_path("auth-jwt")),
        client.served(layout.index_path("template-crypto")),
        "/" + str(client.artifact("auth-jwt", "1.2.0").relative_to(client.out)),
        "/" + str(client.artifact("template-crypto", "1.1.1").relative_to(client.out)),
    ]
    assert sorted(p for p in cold if not p.startswith("/metadata/")) == sorted(files)
    metadata = [p for p in cold if p.startswith("/metadata/")]
    assert metadata[:2] == ["/metadata/2.root.json", "/metadata/timestamp.json"]
    assert [p.split(".", 1)[1] for p in metadata[2:4]] == ["snapshot.json", "targets.json"]
    bins = metadata[4:]
    assert all(".bins-" in p for p in bins) and len(bins) == len(set(bins)) <= len(files)
    client.recorder.hits.clear()
    # A fresh plugins folder, the same cache: one 304 on the timestamp answers everything.
    again = client.run("install", "auth-jwt", PLUGINDEX_PLUGINS_DIR=str(client.home / "p2"))
    assert again.exit_code == 0, again.output
    assert [(h.path, h.status, h.conditional) for h in client.recorder.hits] == [
        ("/metadata/2.root.json", 404, False),
        ("/metadata/timestamp.json", 304, True),
    ]


def test_yanked_versions_are_skipped_unless_pinned_exactly(client: Client) -> None:
    skipped = client.run("install", "datasource-csv@<1.0.2")
    assert skipped.exit_code == 0, skipped.output
    assert installed(client) == {"datasource-csv": "1.0.0"}  # 1.0.1 is yanked
    pinned = client.run("install", "datasource-csv@=1.0.1")
    assert pinned.exit_code == 0, pinned.output
    assert "warning: datasource-csv 1.0.1 is yanked (Quoted fields" in pinned.stderr
    assert installed(client) == {"datasource-csv": "1.0.1"}
    assert "YANKED" in client.run("list").stdout


def test_a_signed_unyank_is_installed_and_recorded_as_not_yanked(client: Client) -> None:
    document = client.document("datasource-csv")
    entry = next(v for v in document["versions"] if v["version"] == "1.0.1")
    serial = entry["yanked"]["serial"] + 1
    entry["unyanked"] = {
        "serial": serial,
        "signature": sign_statement(
            demo_key("theo-lemaire"),
            statements.unyank_statement(
                REGISTRY_NAME,
                "datasource-csv",
                "1.0.1",
                sha256=entry["artifact"]["sha256"],
                serial=serial,
            ),
        ),
    }
    client.write_document("datasource-csv", document)
    result = client.run("install", "datasource-csv@<1.0.2")
    assert result.exit_code == 0, result.output
    assert "yanked" not in result.stderr
    assert installed(client) == {"datasource-csv": "1.0.1"}
    assert client.lock()["plugins"]["datasource-csv"]["yanked"] is None
    assert "YANKED" not in client.run("list").stdout


def test_conflicting_requirements_are_explained(client: Client) -> None:
    result = client.run("install", "auth-jwt@^1.1", "template-crypto@=1.0.0")
    assert result.exit_code == 4
    message = result.stderr.strip()
    assert message.startswith("error: cannot resolve template-crypto: no version satisfies")
    assert "you want =1.0.0" in message
    assert "auth-jwt 1.2.0 wants ^1.1" in message or "auth-jwt 1.1.0 wants ^1.1" in message
    assert "available: 1.1.1, 1.1.0, 1.0.0" in message
    assert_nothing_installed(client)


def test_prereleases_only_when_asked(client: Client) -> None:
    assert client.run("install", "auth-jwt@^2.0.0-rc.1").exit_code == 0
    assert installed(client)["auth-jwt"] == "2.0.0-rc.1"


def test_unknown_plugin_and_bad_names_are_one_line_errors(client: Client) -> None:
    unknown = client.run("install", "no-such-plugin")
    assert unknown.exit_code == 4
    assert unknown.stderr.startswith("error: no plugin named 'no-such-plugin' in http://127.0.0.1")
    bad = client.run("install", "Bad_Name")
    assert bad.exit_code == 2
    assert "expected lower-case ASCII letters" in bad.stderr


@pytest.mark.parametrize("command", ["install", "upgrade"])
def test_a_bad_host_version_is_a_usage_error(client: Client, command: str) -> None:
    option = client.run(command, "auth-jwt", "--host-version", "1.x")
    assert option.exit_code == 2
    assert "Invalid value for '--host-version': expected a semantic version" in option.stderr
    env = client.run(command, "auth-jwt", PLUGINDEX_HOST_VERSION="banana")
    assert env.exit_code == 2
    assert "got 'banana'" in env.stderr
    assert_nothing_installed(client)


def test_a_bad_host_version_in_the_config_file_names_the_file(client: Client) -> None:
    config = client.home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('host_version = "1.x"\n', encoding="utf-8")
    result = client.run("install", "auth-jwt")
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: {config}: host_version: expected a semantic version such as 1.2.3 "
        "or 2.0.0-rc.1; got '1.x'\n"
    )


# --- verification: nothing installed ----------------------------------------------------


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("tuf", "does not match what the registry signed for artifacts/"),
        ("re-signed", "the registry signed another file than its author (registry: sha256 "),
        ("no-tuf", "sha256 does not match the signed index"),
    ],
    ids=["refused-by-tuf", "registry-re-signed", "insecure-no-tuf"],
)
def test_tampered_artifact_same_size_is_refused(client: Client, how: str, message: str) -> None:
    """Refused by TUF; by the author's statement if the registry signs it; and without TUF."""
    artifact = client.artifact("auth-jwt", "1.2.0")
    artifact.write_bytes(bytes(reversed(artifact.read_bytes())))
    if how == "re-signed":
        client.resign()
    extra = ["--insecure-no-tuf"] if how == "no-tuf" else []
    result = client.run("install", "auth-jwt", *extra)
    assert result.exit_code == 5
    assert message in result.stderr
    assert result.stderr.count("\n") == (2 if how == "no-tuf" else 1)  # + the insecure warning
    assert_nothing_installed(client)


def test_tampered_document_is_refused_by_tuf_before_the_author_check(client: Client) -> None:
    """An edited document the registry did not sign: refused on its hash, never parsed."""
    path = layout.index_path("auth-jwt")
    served = client.served(path)
    document = client.document("auth-jwt")
    document["versions"][2]["dependencies"] = []  # 1.2.0 no longer asks for template-crypto
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    (client.out / served[1:]).write_text(text + "\n", encoding="utf-8")  # shorter: hash checked
    result = client.run("install", "auth-jwt")
    assert result.exit_code == 5
    sha256 = hashlib.sha256((client.out / path).read_bytes()).hexdigest()
    assert result.stderr.startswith(
        f"error: {client.url}{served[1:]}: does not match what the registry signed for "
        f"{path} (expected sha256 {sha256} and "
    )
    assert result.stderr.endswith("tampered, or from another build\n")
    assert "release signature" not in result.stderr
    assert_nothing_installed(client)


def test_tampered_document_signed_by_the_registry_is_refused_by_its_author_signature(
    client: Client,
) -> None:
    document = client.document("auth-jwt")
    document["versions"][2]["dependencies"] = []  # 1.2.0 no longer asks for template-crypto
    client.write_document("auth-jwt", document)
    result = client.run("install", "auth-jwt")
    assert result.exit_code == 5
    assert "auth-jwt 1.2.0: the release signature does not verify" in result.stderr
    assert_nothing_installed(client)


@pytest.mark.parametrize(
    "dependency", ["../../x", "../../../config", "Auth-JWT"], ids=["traversal", "up", "case"]
)
def test_document_with_a_bad_dependency_name_is_refused(client: Client, dependency: str) -> None:
    """A dependency name becomes a URL and a folder: even a signed bad one is refused."""
    document = client.document("auth-jwt")
    entry = document["versions"][2]
    entry["dependencies"] = [{"name": dependency, "req": "^1.0", "kind": "runtime"}]
    entry["signature"] = sign_statement(
        demo_key("mara-okafor"), statements.release_statement(REGISTRY_NAME, "auth-jwt", entry)
    )
    client.write_document("auth-jwt", document)
    client.recorder.hits.clear()
    result = client.run("install", "auth-jwt")
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {client.url}index/au/th/auth-jwt.json: versions[2]")
    assert "dependencies[0].name: not a plugin name (expected lower-case" in result.stderr
    assert result.stderr.count("\n") == 1
    files = [p for p in client.recorder.paths() if not p.startswith("/metadata/")]
    assert files == [client.served("config.json"), client.served("index/au/th/auth-jwt.json")]
    assert_nothing_installed(client)


def test_document_under_another_name_is_refused(client: Client) -> None:
    """A document served at auth-jwt's path but naming another plugin is not used."""
    document = client.document("template-crypto")
    client.write_document("auth-jwt", document)
    result = client.run("install", "auth-jwt")
    assert result.exit_code == 3
    assert "auth-jwt.json: name does not match its path (expected 'auth-jwt'" in result.stderr
    assert_nothing_installed(client)


def test_a_refused_document_is_not_kept_in_the_cache(client: Client) -> None:
    """A tampered body sent with the genuine headers is refused, and never reused after."""
    path = client.served("index/au/th/auth-jwt.json")
    with urllib.request.urlopen(client.url + path[1:]) as response:
        genuine = {h: response.headers[h] for h in ("ETag", "Last-Modified")}
    document = client.document("auth-jwt")
    document["versions"][2]["dependencies"] = []
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    tampered = text.encode("utf-8") + b"\n"

    def serve_tampered(handler: BuildRequestHandler) -> None:
        handler.send_response(200)
        for name, value in {**genuine, "Content-Length": str(len(tampered))}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(tampered)

    client.recorder.faults[path] = [serve_tampered]
    refused = client.run("install", "auth-jwt")
    assert refused.exit_code == 5
    assert "does not match what the registry signed" in refused.stderr
    client.recorder.hits.clear()
    result = client.run("install", "auth-jwt")
    assert result.exit_code == 0, result.output
    assert installed(client) == {"auth-jwt": "1.2.0", "template-crypto": "1.1.1"}
    assert [(h.status, h.conditional) for h in client.recorder.hits if h.path == path] == [
        (200, False)
    ]


def test_signature_from_a_non_owner_key_is_refused(client: Client) -> None:
    document = client.document("auth-jwt")
    entry = document["versions"][2]
    entry["artifact"]["sha256"] = "0" * 64
    entry["signature"] = sign_statement(
        Ed25519PrivateKey.generate(),
        statements.release_statement(REGISTRY_NAME, "auth-jwt", entry),
    )
    client.write_document("auth-jwt", document)
    result = client.run("install", "auth-jwt")
    assert result.exit_code == 5
    assert "made with a key that is not an owner key of auth-jwt" in result.stderr
    assert_nothing_installed(client)


def _swap_owner_key(
    client: Client, name: str, *, revision: int, sign_manifest_with: Ed25519PrivateKey | None
) -> Ed25519PrivateKey:
    """Give the plugin's owners one new key; re-sign every version with it."""
    new = Ed25519PrivateKey.generate()
    document = client.document(name)
    document["owners"] = [
        {"github": "mara-okafor", "keys": [public_key_text(new)], "retired_keys": []}
    ]
    document["revision"] = revision
    for entry in document["versions"]:
        entry["signature"] = sign_statement(
            new, statements.release_statement(REGISTRY_NAME, name, entry)
        )
    document["signature"] = (
        sign_statement(sign_manifest_with, statements.manifest_statement(REGISTRY_NAME, document))
        if sign_manifest_with
        else None
    )
    client.write_document(name, document)
    return new


def test_owner_key_swapped_between_runs_is_refused_until_trusted(client: Client) -> None:
    assert client.run("install", "auth-jwt@~1.1").exit_code == 0
    before = client.lock()
    new = _swap_owner_key(client, "auth-jwt", revision=2, sign_manifest_with=None)
    result = client.run("install", "auth-jwt@^1.2")
    assert result.exit_code == 5
    message = result.stderr
    assert "auth-jwt: the owner keys changed since they were pinned" in message
    old_ids = sorted(key_id(public_key_text(demo_key(h))) for h in ("mara-okafor", "jan-kowalski"))
    assert f"pinned: {', '.join(old_ids)}" in message
    assert f"now: {key_id(public_key_text(new))}" in message
    assert "run `plugindex trust auth-jwt`" in message
    assert client.lock() == before
    trusted = client.run("trust", "auth-jwt")
    assert trusted.exit_code == 0, trusted.output
    again = client.run("install", "auth-jwt@^1.2")
    assert again.exit_code == 0, again.output
    assert installed(client)["auth-jwt"] == "1.2.0"


def test_key_rotation_signed_by_a_pinned_key_is_accepted(client: Client) -> None:
    assert client.run("install", "auth-jwt@~1.1").exit_code == 0
    _swap_owner_key(client, "auth-jwt", revision=2, sign_manifest_with=demo_key("mara-okafor"))
    result = client.run("install", "auth-jwt@^1.2")
    assert result.exit_code == 0, result.output
    assert installed(client)["auth-jwt"] == "1.2.0"


def test_rotation_without_a_higher_revision_is_refused(client: Client) -> None:
    assert client.run("install", "auth-jwt@~1.1").exit_code == 0
    _swap_owner_key(client, "auth-jwt", revision=1, sign_manifest_with=demo_key("mara-okafor"))
    result = client.run("install", "auth-jwt@^1.2")
    assert result.exit_code == 5
    assert "its revision 1 is not above the pinned 1" in result.stderr


def _pinned_revision(client: Client, name: str) -> int:
    trust = json.loads((client.plugins / "plugindex-trust.json").read_bytes())
    return int(trust["plugins"][name]["revision"])


def test_an_unsigned_higher_revision_is_not_pinned(client: Client) -> None:
    """An inflated revision with the same keys cannot block a later signed rotation."""
    assert client.run("install", "auth-jwt@=1.0.0").exit_code == 0
    document = client.document("auth-jwt")
    document["revision"] = 99  # no plugin.yaml signature covers this
    client.write_document("auth-jwt", document)
    inflated = client.run("install", "auth-jwt@~1.1")
    assert inflated.exit_code == 0, inflated.output
    assert _pinned_revision(client, "auth-jwt") == 1
    _swap_owner_key(client, "auth-jwt", revision=2, sign_manifest_with=demo_key("mara-okafor"))
    rotated = client.run("install", "auth-jwt@^1.2")
    assert rotated.exit_code == 0, rotated.output
    assert _pinned_revision(client, "auth-jwt") == 2


def test_a_signed_higher_revision_with_the_same_keys_is_pinned(client: Client) -> None:
    assert client.run("install", "auth-jwt@~1.1").exit_code == 0
    document = client.document("auth-jwt")
    document["revision"] = 3
    document["signature"] = sign_statement(
        demo_key("jan-kowalski"), statements.manifest_statement(REGISTRY_NAME, document)
    )
    client.write_document("auth-jwt", document)
    assert client.run("install", "auth-jwt@^1.2").exit_code == 0
    assert _pinned_revision(client, "auth-jwt") == 3


def _malicious_tar(name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member_name, data in (("ok/plugin.toml", b"x = 1\n"), (name, b"owned\n")):
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    "entry", ["../escaped.txt", "/tmp/absolute.txt", "ok/../../escaped.txt"], ids=str
)
def test_archive_escaping_the_plugin_folder_is_refused(
    index: Path, tmp_path: Path, entry: str
) -> None:
    """A signed, checksummed artifact is still refused if it would write outside its folder."""
    import hashlib
    import re

    plugin = index / "plugins" / "template-crypto"
    version_file = plugin / "versions" / "1.1.1.yaml"
    data = _malicious_tar(entry)
    (plugin / "artifacts" / "template-crypto-1.1.1.tar.gz").write_bytes(data)
    text = version_file.read_text(encoding="utf-8")
    text = re.sub(r"sha256: \S+", f"sha256: {hashlib.sha256(data).hexdigest()}", text)
    text = re.sub(r"size: \d+", f"size: {len(data)}", text)
    version_file.write_text(text, encoding="utf-8")
    sign_as_owner(version_file)
    out = tmp_path / "out"
    build_signed(index, out)
    with serve_recorded(out) as (url, recorder):
        client = Client(out, url, recorder, tmp_path / "home", index)
        result = client.run("install", "template-crypto")
    assert result.exit_code == 5
    assert f"template-crypto-1.1.1.tar.gz: unsafe entry {entry!r}" in result.stderr
    assert_nothing_installed(client)
    assert not (tmp_path / "home" / "escaped.txt").exists()


# --- HTTP faults ----------------------------------------------------------------------


def test_server_error_then_success_is_retried(client: Client) -> None:
    path = client.served("config.json")
    client.recorder.faults[path] = [status(500), status(503)]
    result = client.run("install", "template-crypto")
    assert result.exit_code == 0, result.output
    config_hits = [h.status for h in client.recorder.hits if h.path == path]
    assert config_hits == [500, 503, 200]


def test_429_waits_for_retry_after(client: Client) -> None:
    path = client.served("index/te/mp/template-crypto.json")
    client.recorder.faults[path] = [status(429, {"Retry-After": "1"})]
    started = time.monotonic()
    result = client.run("install", "template-crypto")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 1.0
    assert [h.status for h in client.recorder.hits if h.path == path] == [429, 200]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "longer than the registry signed (expected "),
        (["--insecure-no-tuf"], "larger than the signed index says (expected"),
    ],
    ids=["tuf", "insecure-no-tuf"],
)
def test_endless_artifact_stream_is_stopped_at_the_signed_size(
    client: Client, extra: list[str], message: str
) -> None:
    path = "/" + str(client.artifact("template-crypto", "1.1.1").relative_to(client.out))
    client.recorder.faults[path] = [endless]
    result = client.run("install", "template-crypto", *extra)
    assert result.exit_code == 5
    assert message in result.stderr
    assert_nothing_installed(client)


def test_endless_document_is_stopped_at_its_signed_length(client: Client) -> None:
    path = "index/te/mp/template-crypto.json"
    client.recorder.faults[client.served(path)] = [endless]
    result = client.run("install", "template-crypto")
    assert result.exit_code == 5
    size = (client.out / path).stat().st_size
    assert f"longer than the registry signed (expected {size} bytes)" in result.stderr


def test_endless_document_is_stopped_at_the_document_cap_without_tuf(client: Client) -> None:
    client.recorder.faults["/index/te/mp/template-crypto.json"] = [endless]
    result = client.run("install", "template-crypto", "--insecure-no-tuf")
    assert result.exit_code == 3
    assert "too large (expected at most 8388608 bytes, got more)" in result.stderr


def test_offline_installs_from_the_cache(client: Client, tmp_path: Path) -> None:
    assert client.run("install", "auth-jwt").exit_code == 0
    client.recorder.hits.clear()
    fresh = tmp_path / "fresh"
    offline = client.run("install", "auth-jwt", "--offline", "--plugins-dir", str(fresh))
    assert offline.exit_code == 0, offline.output
    assert client.recorder.hits == []
    assert (fresh / "auth-jwt" / "plugin.toml").is_file()
    assert (fresh / "template-crypto" / "plugin.toml").is_file()


def test_network_failure_is_one_line_suggesting_offline(client: Client) -> None:
    result = client.run("info", "auth-jwt", PLUGINDEX_REGISTRY="http://127.0.0.1:9/")
    assert result.exit_code == 3
    assert result.stderr.startswith(
        "error: http://127.0.0.1:9/metadata/2.root.json: cannot connect ("
    )
    assert result.stderr.rstrip().endswith("or use --offline to work from the cache")
    assert result.stderr.count("\n") == 1


def test_offline_without_a_cache_says_so(client: Client) -> None:
    result = client.run("install", "auth-jwt", "--offline")
    assert result.exit_code == 3
    assert "no signed metadata of this registry kept in" in result.stderr
    assert result.stderr.endswith("(run once without --offline first)\n")


def test_offline_with_the_metadata_but_not_the_document_says_so(client: Client) -> None:
    assert client.run("info", "template-crypto").exit_code == 0
    result = client.run("install", "auth-jwt", "--offline")
    assert result.exit_code == 3
    assert "the registry's signed metadata is not all kept in" in result.stderr
    assert result.stderr.endswith("; run once without --offline first\n")


# --- upgrade, uninstall, verify, info -------------------------------------------------


def test_upgrade_respects_requirements_and_moves_to_newer_releases(
    index: Path, tmp_path: Path
) -> None:
    versions = index / "plugins" / "template-crypto" / "versions"
    held_back = tmp_path / "held-back-1.1.1.yaml"
    shutil.move(versions / "1.1.1.yaml", held_back)
    out = tmp_path / "out"
    build_signed(index, out)
    with serve_recorded(out) as (url, recorder):
        client = Client(out, url, recorder, tmp_path / "home", index)
        assert client.run("install", "auth-jwt@~1.1.0").exit_code == 0
        assert installed(client) == {"auth-jwt": "1.1.0", "template-crypto": "1.1.0"}
        assert client.run("upgrade").stdout == "everything is up to date\n"
        shutil.move(held_back, versions / "1.1.1.yaml")
        build_signed(index, out)
        result = client.run("upgrade")
        assert result.exit_code == 0, result.output
        assert result.stdout == "upgraded template-crypto 1.1.0 -> 1.1.1\n"
        assert installed(client) == {"auth-jwt": "1.1.0", "template-crypto": "1.1.1"}
        assert client.lock()["plugins"]["auth-jwt"]["requested"] == "~1.1.0"


def test_uninstall_refuses_to_break_a_dependent_unless_forced(client: Client) -> None:
    assert client.run("install", "auth-jwt").exit_code == 0
    refused = client.run("uninstall", "template-crypto")
    assert refused.exit_code == 4
    assert "template-crypto is needed by auth-jwt 1.2.0 (needs ^1.1)" in refused.stderr
    assert (client.plugins / "template-crypto").is_dir()
    forced = client.run("uninstall", "template-crypto", "--force")
    assert forced.exit_code == 0
    assert "uninstalled template-crypto 1.1.1" in forced.stdout
    assert not (client.plugins / "template-crypto").exists()
    assert installed(client) == {"auth-jwt": "1.2.0"}


def test_verify_finds_changed_missing_and_extra_files(client: Client) -> None:
    assert client.run("install", "auth-jwt").exit_code == 0
    assert client.run("verify").stdout == "ok: 4 installed files match the lockfile\n"
    (client.plugins / "auth-jwt" / "plugin.toml").write_text("changed\n")
    (client.plugins / "template-crypto" / "plugin.toml").unlink()
    (client.plugins / "auth-jwt" / "extra.txt").write_text("extra\n")
    result = client.run("verify")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert any("auth-jwt/plugin.toml: modified (expected sha256" in line for line in lines)
    assert any("template-crypto/plugin.toml: missing" in line for line in lines)
    assert any("auth-jwt/extra.txt: not installed by plugindex" in line for line in lines)


def test_failed_upgrade_leaves_the_previous_install_intact(client: Client) -> None:
    assert client.run("install", "auth-jwt@~1.1").exit_code == 0
    before = client.lock()
    files = sorted(p.read_bytes() for p in (client.plugins / "auth-jwt").rglob("*") if p.is_file())
    artifact = client.artifact("auth-jwt", "1.2.0")
    artifact.write_bytes(artifact.read_bytes()[:-1] + b"!")
    result = client.run("install", "auth-jwt@^1.2")
    assert result.exit_code == 5
    assert client.lock() == before
    after = sorted(p.read_bytes() for p in (client.plugins / "auth-jwt").rglob("*") if p.is_file())
    assert after == files
    assert list((client.plugins / ".plugindex").glob("txn-*")) == []


def test_recovery_run_twice_keeps_the_restored_old_version(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed after undoing a failed upgrade, but before cleaning up, loses nothing."""
    from builder.client import transaction
    from builder.common.errors import PlugindexError

    assert client.run("install", "auth-jwt@~1.1").exit_code == 0
    before = client.lock()
    snapshot = tmp_path / "txn-snapshot"
    real_undo = transaction._undo

    def undo_then_die(plugins_dir: Path, txn_dir: Path, entries: Any) -> None:
        real_undo(plugins_dir, txn_dir, entries)
        shutil.copytree(txn_dir, snapshot)  # what a kill here would leave behind

    def failing_lockfile(*args: Any, **kwargs: Any) -> None:
        raise PlugindexError("plugindex.lock: cannot write (disk full)")

    monkeypatch.setattr(transaction, "_undo", undo_then_die)
    monkeypatch.setattr(transaction, "write_lockfile", failing_lockfile)
    assert client.run("install", "auth-jwt@^1.2").exit_code == 3
    monkeypatch.undo()
    assert client.lock() == before
    shutil.copytree(snapshot, client.plugins / ".plugindex" / "txn-killed")
    result = client.run("verify")  # recovers the leftover transaction first
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: ")
    assert (client.plugins / "auth-jwt" / "plugin.toml").is_file()
    assert client.lock() == before
    assert list((client.plugins / ".plugindex").glob("txn-*")) == []


def test_info_shows_versions_yanks_and_signatures(client: Client) -> None:
    text = client.run("info", "datasource-csv")
    assert text.exit_code == 0, text.output
    assert "datasource-csv 1.0.2: " in text.stdout
    assert "signature: verified: signed by" in text.stdout
    assert "1.0.1            2024-05-02  (YANKED: Quoted fields" in text.stdout
    data = json.loads(client.run("info", "datasource-csv@1.0.1", "--json").stdout)
    assert data["selected"]["version"] == "1.0.1"
    assert data["selected"]["yanked"].startswith("Quoted fields")
    assert data["selected"]["dependencies"] == [
        {"kind": "optional", "name": "template-faker", "req": "^0.4"}
    ]
    assert all(row["verified"] for row in data["versions"])


def test_install_json_output(client: Client) -> None:
    result = client.run("install", "template-crypto", "--json")
    assert json.loads(result.stdout) == {
        "changes": [{"name": "template-crypto", "from": None, "to": "1.1.1", "action": "install"}],
        "unchanged": [],
        "warnings": [],
        "dry_run": False,
    }


def test_local_folder_registry_installs_too(client: Client) -> None:
    result = client.run("install", "auth-jwt", PLUGINDEX_REGISTRY=str(client.out))
    assert result.exit_code == 0, result.output
    assert client.recorder.hits == []
    assert installed(client) == {"auth-jwt": "1.2.0", "template-crypto": "1.1.1"}


def test_a_declared_artifact_size_over_the_limit_is_refused_before_downloading(
    client: Client,
) -> None:
    """The size the signed index declares is held to Limits.artifact_bytes, nothing fetched."""
    from builder.client.install import Request, install
    from builder.client.resolve import Options
    from builder.client.signatures import TrustError
    from builder.common.limits import Limits

    entry = next(
        v for v in client.document("template-crypto")["versions"] if v["version"] == "1.1.1"
    )
    size = entry["artifact"]["size"]
    request = [Request("template-crypto")]
    registry = client.registry()
    expected = f"template-crypto 1.1.1: artifact too large (expected at most {size - 1} bytes, "
    with pytest.raises(TrustError, match=re.escape(expected)):
        install(
            registry,
            client.plugins,
            request,
            options=Options(),
            limits=Limits(artifact_bytes=size - 1),
        )
    assert not any(h.path.startswith("/artifacts/") for h in client.recorder.hits)
    assert client.lock() == {}
    install(
        registry, client.plugins, request, options=Options(), limits=Limits(artifact_bytes=size)
    )
    assert installed(client) == {"template-crypto": "1.1.1"}
    assert any(h.path.startswith("/artifacts/") for h in client.recorder.hits)


# --- hostile registry documents ---------------------------------------------------------


def _edit_config(client: Client, **fields: Any) -> None:
    """Change config.json and sign the build again (a template is the registry's to set)."""
    config = json.loads((client.out / "config.json").read_bytes())
    config.update(fields)
    (client.out / "config.json").write_text(json.dumps(config), encoding="utf-8")
    client.resign()


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("index/{prefix:>200000000}/{name}.json", "unknown placeholder '{prefix:>200000000}'"),
        ("index/{prefix}/{nope}.json", "unknown placeholder '{nope}'"),
        ("index/{0}/{name}.json", "unknown placeholder '{0}'"),
        ("index/{name.__class__}.json", "unknown placeholder '{name.__class__}'"),
        ("index/{prefix/{name}.json", "unbalanced brace"),
        ("index/" + "x" * 2000, "too long (expected at most 1024 characters"),
    ],
    ids=["width", "unknown", "positional", "attribute", "unbalanced", "long"],
)
def test_a_bad_url_template_in_config_json_is_a_clear_error(
    client: Client, template: str, expected: str
) -> None:
    """Templates are filled literally: a format spec is an unknown placeholder, not 200 MB."""
    _edit_config(client, index=template)
    result = client.run("install", "auth-jwt")
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith(f"error: {client.url}config.json: index: ")
    assert expected in result.stderr
    assert "(expected {prefix}, {name})" in result.stderr or expected in result.stderr
    assert_nothing_installed(client)


def test_url_templates_are_substituted_literally(client: Client) -> None:
    """Only the documented placeholders are replaced; everything else is kept as written."""
    moved = client.out / "api" / "v1" / "auth-jwt" / "au" / "th" / "doc.json"
    moved.parent.mkdir(parents=True)
    shutil.copyfile(client.out / layout.index_path("auth-jwt"), moved)
    _edit_config(client, index="api/v1/{name}/{prefix}/doc.json")
    result = client.run("info", "auth-jwt", "--json")
    assert result.exit_code == 0, result.output
    assert client.served("api/v1/auth-jwt/au/th/doc.json") in client.recorder.paths()


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize("path", ["config.json", "index/au/th/auth-jwt.json"])
def test_a_deeply_nested_document_is_refused_and_not_kept_in_the_cache(
    client: Client, path: str
) -> None:
    """200,000 levels of `[`, even signed by the registry: a refusal (exit 3), nothing kept."""
    genuine = (client.out / path).read_bytes()
    (client.out / path).write_bytes(_deep(200_000))
    client.resign()
    deep = client.served(path)
    refused = client.run("info", "auth-jwt")
    assert refused.exit_code == 3, refused.output
    assert refused.stderr == f"error: {client.url}{path}: nested too deeply " + (
        "(expected a plugindex document, a few levels deep)\n"
    )
    assert not list((client.home / "cache").rglob(deep.rsplit("/", 1)[1].split(".")[0]))
    client.recorder.hits.clear()
    again = client.run("info", "auth-jwt")  # the same signed state: fetched again, refused again
    assert again.exit_code == 3
    assert [h.status for h in client.recorder.hits if h.path == deep] == [200]
    (client.out / path).write_bytes(genuine)
    client.resign()
    assert client.run("info", "auth-jwt").exit_code == 0


def test_a_deeply_nested_lockfile_is_a_clear_error(client: Client) -> None:
    client.plugins.mkdir(parents=True)
    (client.plugins / "plugindex.lock").write_bytes(_deep(200_000))
    result = client.run("list")
    assert result.exit_code == 3
    assert "plugindex.lock: not a plugindex lockfile (nested too deeply)" in result.stderr


# --- yanked after install -------------------------------------------------------------


def _yank(client: Client, name: str, version: str, reason: str) -> None:
    """Yank a served version with an owner-signed yank, as a registry build would publish it."""
    document = client.document(name)
    entry = next(v for v in document["versions"] if v["version"] == version)
    statement = statements.yank_statement(
        REGISTRY_NAME, name, version, sha256=entry["artifact"]["sha256"], reason=reason, serial=1
    )
    owner = document["owners"][0]["github"]
    entry["yanked"] = {
        "reason": reason,
        "serial": 1,
        "signature": sign_statement(demo_key(owner), statement),
    }
    client.write_document(name, document)


def _without_version(client: Client, name: str, version: str) -> dict[str, Any]:
    """Serve a document without one version (each version is signed on its own); return it whole."""
    whole = client.document(name)
    client.write_document(
        name, {**whole, "versions": [v for v in whole["versions"] if v["version"] != version]}
    )
    return whole


DROPS = "Drops the last row."


def test_an_installed_version_yanked_since_is_shown_warned_about_and_kept_by_upgrade(
    client: Client,
) -> None:
    """`upgrade` no longer fails with exit 4: a yanked installed version stays while it fits."""
    assert client.run("install", "datasource-csv@<1.0.2").exit_code == 0  # 1.0.0
    _yank(client, "datasource-csv", "1.0.0", DROPS)
    warning = f"warning: datasource-csv 1.0.0 (installed) is yanked: {DROPS}\n"
    listed = client.run("list")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout == f"datasource-csv 1.0.0 (you asked for <1.0.2; YANKED: {DROPS})\n"
    assert listed.stderr == warning
    assert client.lock()["plugins"]["datasource-csv"]["yanked"] == DROPS  # seen: recorded
    shown = client.run("info", "datasource-csv")
    assert f"  installed: 1.0.0 (YANKED: {DROPS})" in shown.stdout
    assert (
        "  1.0.0            2024-" in shown.stdout and "(installed; YANKED: Drops" in shown.stdout
    )
    upgraded = client.run("upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.stdout == "everything is up to date\n"
    assert upgraded.stderr == (
        f"warning: datasource-csv 1.0.0 (installed) is yanked ({DROPS}); kept: no newer "
        "version fits the requirements (you (installed earlier) wants <1.0.2)\n"
    )
    # Commands that read only the lockfile warn too, with no registry at hand.
    dead = {"PLUGINDEX_REGISTRY": "http://127.0.0.1:9/"}
    assert client.run("verify", **dead).stderr == warning
    other = client.run("install", "template-crypto")
    assert other.exit_code == 0 and other.stderr == warning


def test_upgrade_moves_off_an_installed_yanked_version(client: Client) -> None:
    whole = _without_version(client, "datasource-csv", "1.0.2")
    assert client.run("install", "datasource-csv").exit_code == 0
    assert installed(client) == {"datasource-csv": "1.0.0"}
    client.write_document("datasource-csv", whole)
    _yank(client, "datasource-csv", "1.0.0", DROPS)
    result = client.run("upgrade")
    assert result.exit_code == 0, result.output
    assert result.stdout == "upgraded datasource-csv 1.0.0 -> 1.0.2\n"
    assert client.lock()["plugins"]["datasource-csv"]["yanked"] is None


# --- plans: say what changes and why; --dry-run ---------------------------------------


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_dry_run_shows_the_plan_and_changes_nothing(client: Client) -> None:
    fresh = client.run("install", "auth-jwt", "--dry-run")
    assert fresh.exit_code == 0, fresh.output
    assert fresh.stdout == "would install auth-jwt 1.2.0\nwould install template-crypto 1.1.1\n"
    assert not client.plugins.exists()
    assert not any(h.path.startswith("/artifacts/") for h in client.recorder.hits)
    assert client.run("install", "auth-jwt@~1.1").exit_code == 0
    before = _snapshot(client.plugins)
    up = client.run("install", "auth-jwt@^1.2", "--dry-run")
    assert up.stdout == "would upgrade auth-jwt 1.1.0 -> 1.2.0\n"
    planned = json.loads(client.run("upgrade", "--dry-run", "--json").stdout)
    assert planned["dry_run"] is True and planned["changes"] == []
    gone = client.run("uninstall", "template-crypto", "--force", "--dry-run")
    assert gone.stdout == "would uninstall template-crypto 1.1.1\n"
    assert "auth-jwt 1.1.0 (needs ^1.1) may no longer work without template-crypto" in gone.stderr
    assert _snapshot(client.plugins) == before


DOWNGRADE_NOTE = (
    "auth-jwt 1.2.0 needs template-crypto ^1.1, but template-crypto 1.0.0 is selected "
    "(you want =1.0.0)"
)


def test_a_downgrade_to_satisfy_a_pin_is_explained(client: Client) -> None:
    assert client.run("install", "auth-jwt").exit_code == 0
    result = client.run("install", "template-crypto@=1.0.0")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "downgraded auth-jwt 1.2.0 -> 1.0.0\ndowngraded template-crypto 1.1.1 -> 1.0.0\n"
    )
    # template-crypto's own downgrade is what was asked for: no note.
    assert result.stderr == f"note: auth-jwt 1.0.0 (downgrade from 1.2.0: {DOWNGRADE_NOTE})\n"


def test_an_older_version_than_the_newest_is_explained_before_downloading(
    client: Client,
) -> None:
    """The plan reaches the caller before any artifact is requested."""
    from builder.client.install import Outcome, Request, install
    from builder.client.resolve import Options

    seen: list[tuple[Outcome, int]] = []

    def on_plan(outcome: Outcome) -> None:
        downloads = sum(1 for h in client.recorder.hits if h.path.startswith("/artifacts/"))
        seen.append((outcome, downloads))

    requests = [Request("template-crypto", "=1.0.0"), Request("auth-jwt")]
    registry = client.registry()
    install(registry, client.plugins, requests, options=Options(), on_plan=on_plan)
    [(plan, downloads)] = seen
    assert downloads == 0
    notes = {c.name: c.note for c in plan.changes}
    assert notes == {"auth-jwt": f"not the newest 1.2.0: {DOWNGRADE_NOTE}", "template-crypto": None}
    assert installed(client) == {"auth-jwt": "1.0.0", "template-crypto": "1.0.0"}


# --- repair and --locked ----------------------------------------------------------------


def test_install_reinstall_restores_what_verify_reports(client: Client) -> None:
    assert client.run("install", "auth-jwt").exit_code == 0
    (client.plugins / "auth-jwt" / "plugin.toml").write_text("changed\n")
    (client.plugins / "auth-jwt" / "extra.txt").write_text("extra\n")
    damaged = client.run("verify")
    assert damaged.exit_code == 1
    assert "(`plugindex verify --repair` restores them)" in damaged.stderr
    assert client.run("install", "auth-jwt").stdout == "already installed: auth-jwt 1.2.0\n"
    result = client.run("install", "--reinstall", "auth-jwt")
    assert result.exit_code == 0, result.output
    assert result.stdout == "reinstalled auth-jwt 1.2.0\n"
    assert client.run("verify").stdout == "ok: 4 installed files match the lockfile\n"


def test_verify_repair_restores_every_damaged_plugin(client: Client) -> None:
    assert client.run("install", "auth-jwt").exit_code == 0
    before = client.lock()
    (client.plugins / "auth-jwt" / "plugin.toml").unlink()
    shutil.rmtree(client.plugins / "template-crypto")
    client.recorder.hits.clear()
    result = client.run("verify", "--repair")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "reinstalled auth-jwt 1.2.0\ninstalled template-crypto 1.1.1\n"
        "ok: 4 installed files match the lockfile\n"
    )
    assert not any(h.path.startswith("/artifacts/") for h in client.recorder.hits)  # cached
    assert {k: v for k, v in client.lock().items() if k != "transaction"} == {
        k: v for k, v in before.items() if k != "transaction"
    }
    assert client.run("verify", "--repair").stdout == (
        "nothing to repair\nok: 4 installed files match the lockfile\n"
    )


def test_install_locked_reproduces_a_lockfile_exactly_elsewhere(
    client: Client, tmp_path: Path
) -> None:
    """Another machine: the versions the lockfile names (not the newest), every hash checked."""
    assert client.run("install", "auth-jwt@~1.1").exit_code == 0
    other = tmp_path / "elsewhere"
    other.mkdir()
    for state in ("plugindex.lock", "plugindex-trust.json"):
        shutil.copyfile(client.plugins / state, other / state)
    # No registry configured there: the one the lockfile was made from.
    result = client.run(
        "install", "--locked", PLUGINDEX_PLUGINS_DIR=str(other), PLUGINDEX_REGISTRY=""
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "installed auth-jwt 1.1.0\ninstalled template-crypto 1.1.1\n"
    assert _snapshot(other / "auth-jwt") == _snapshot(client.plugins / "auth-jwt")
    again = client.run("install", "--locked", PLUGINDEX_PLUGINS_DIR=str(other))
    assert again.stdout == "every plugin in plugindex.lock is installed and verified\n"


def test_install_locked_refuses_an_artifact_other_than_the_locked_one(
    client: Client, tmp_path: Path
) -> None:
    assert client.run("install", "template-crypto").exit_code == 0
    lock = client.lock()
    lock["plugins"]["template-crypto"]["sha256"] = "0" * 64
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "plugindex.lock").write_text(json.dumps(lock), encoding="utf-8")
    result = client.run("install", "--locked", PLUGINDEX_PLUGINS_DIR=str(other))
    assert result.exit_code == 5
    assert "template-crypto 1.1.1: the signed index describes another artifact than the " in (
        result.stderr
    )
    assert sorted(p.name for p in other.iterdir()) == [".plugindex", "plugindex.lock"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["install", "--locked"], 4, "plugindex.lock: no plugins recorded"),
        (["install", "--locked", "auth-jwt"], 2, "--locked installs what plugindex.lock"),
        (["install"], 2, "missing NAME (or --locked"),
        (["install", "--reinstall", "auth-jwt"], 4, "auth-jwt: not installed in"),
    ],
    ids=["no-lockfile", "locked-with-names", "nothing", "reinstall-not-installed"],
)
def test_locked_and_reinstall_misuse(
    client: Client, args: list[str], code: int, message: str
) -> None:
    result = client.run(*args)
    assert result.exit_code == code, result.output
    assert message in result.stderr


# --- outdated ----------------------------------------------------------------------------


def test_outdated_shows_installed_compatible_and_newest(client: Client) -> None:
    whole = _without_version(client, "template-crypto", "1.1.1")
    assert client.run("install", "auth-jwt@~1.1").exit_code == 0
    client.write_document("template-crypto", whole)
    result = client.run("outdated")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "name             installed  compatible  newest",
        "auth-jwt         1.1.0      1.1.0       1.2.0",
        "template-crypto  1.1.0      1.1.1       1.1.1",
    ]
    rows = json.loads(client.run("outdated", "--json").stdout)["plugins"]
    assert [(r["name"], r["version"], r["compatible"], r["newest"]) for r in rows] == [
        ("auth-jwt", "1.1.0", "1.1.0", "1.2.0"),
        ("template-crypto", "1.1.0", "1.1.1", "1.1.1"),
    ]
    assert client.run("upgrade").exit_code == 0
    assert client.run("outdated").stdout.splitlines() == [
        "name      installed  compatible  newest",
        "auth-jwt  1.1.0      1.1.0       1.2.0",
    ]


# --- --json errors and "did you mean" ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "kind", "message"),
    [
        (["install", "nonexistent"], 4, "UnknownPluginError", "no plugin named 'nonexistent'"),
        (["install", "Bad_Name"], 2, "UsageError", "'Bad_Name': expected lower-case"),
        (["install", "auth-jwt", "--host-version", "1.x"], 2, "UsageError", "got '1.x'"),
        (["info", "auth-jwt@9.9.9"], 4, "UnknownPluginError", "auth-jwt has no version 9.9.9"),
        (["uninstall", "auth-jwt"], 4, "InstallError", "auth-jwt is not installed in"),
        (["outdated"], 3, "PlugindexError", "no registry given"),
    ],
    ids=["unknown", "bad-name", "bad-option", "no-version", "not-installed", "no-registry"],
)
def test_errors_under_json_are_json_on_stdout_with_the_same_exit_code(
    client: Client, args: list[str], code: int, kind: str, message: str
) -> None:
    env = {"PLUGINDEX_REGISTRY": ""} if args == ["outdated"] else {}
    result = client.run(*args, "--json", **env)
    assert result.exit_code == code, result.output
    assert result.stderr == ""
    error = json.loads(result.stdout)["error"]
    assert (error["exit_code"], error["type"]) == (code, kind)
    assert message in error["message"]


@pytest.mark.parametrize(
    ("typed", "code", "hint"),
    [
        ("auth-jtw", 4, "did you mean 'auth-jwt'?"),
        ("auth-jwtt", 4, "did you mean 'auth-jwt'?"),
        ("Auth-JWT", 2, "did you mean 'auth-jwt'?"),
        ("auth_jwt", 2, "did you mean 'auth-jwt'?"),
        ("auth-jwt==1.2.0", 2, "a requirement follows '@' (NAME@REQUIREMENT); did you mean "),
        ("auth-jwt@==1.2.0", 2, "did you mean 'auth-jwt@=1.2.0'?"),
        ("auth-jwt~=1.2", 2, "did you mean 'auth-jwt@^1.2'?"),
    ],
    ids=["swap", "extra", "case", "underscore", "pip", "pip-after-at", "pip-compatible"],
)
def test_unknown_or_misspelt_names_suggest_the_one_meant(
    client: Client, typed: str, code: int, hint: str
) -> None:
    result = client.run("install", typed)
    assert result.exit_code == code, result.output
    assert hint in result.stderr
    if typed == "auth-jwt==1.2.0":
        assert "did you mean 'auth-jwt@=1.2.0'?" in result.stderr
    assert_nothing_installed(client)


def test_suggestions_are_in_the_json_error_and_info_suggests_too(client: Client) -> None:
    error = json.loads(client.run("info", "auth-jtw", "--json").stdout)["error"]
    assert error["suggestions"] == ["auth-jwt"]
    assert "did you mean 'template-crypto'?" in client.run("info", "templat-crypto").stderr


def test_similar_names_prefer_the_same_name_then_one_edit() -> None:
    from builder.client.suggest import request_suggestion, similar_names

    names = ["auth-basic", "auth-jwt", "auth-jwk", "datasource-csv"]
    assert similar_names("Auth_JWT", names) == ["auth-jwt"]
    assert similar_names("auth-jtw", names)[0] == "auth-jwt"
    assert sorted(similar_names("auth-jw", names)) == ["auth-jwk", "auth-jwt"]
    assert similar_names("zzz", names) == []
    assert request_suggestion("auth-jwt>=1.0") == "auth-jwt@>=1.0"
    assert request_suggestion("auth-jwt~=1.2.3") == "auth-jwt@~1.2.3"
    assert request_suggestion("auth-jwt!=1.0") is None
    assert request_suggestion("auth-jwt") is None


# --- registry text reaches the terminal escaped -----------------------------------------

HOSTILE = (
    "Evil\x1b[2J\x1b]8;;https://x.example/\x07link\x1b]8;;\x07 \u202eevil\u202c "
    "zero\u200bwidth\ufeff \x9b31m c1\x85 \u2028next\ttab\rback\nnew line é 中"
)


def _assert_inert(text: str) -> None:
    """Only printable characters and our own line breaks reach the terminal."""
    hidden = {c for c in text if not c.isprintable() and c != "\n"}
    assert hidden == set(), sorted(hidden)


def test_control_characters_from_the_registry_are_escaped_on_output(client: Client) -> None:
    """Plugin-level fields are not signed: ESC, OSC, bidi and zero-width arrive as escapes."""
    document = client.document("datasource-csv")
    document["display_name"] = HOSTILE
    document["description"] = HOSTILE
    document["license"] = HOSTILE
    client.write_document("datasource-csv", document)
    shown = client.run("info", "datasource-csv")
    assert shown.exit_code == 0, shown.output
    _assert_inert(shown.output)
    assert "Evil\\x1b[2J\\x1b]8;;https://x.example/\\x07link" in shown.stdout
    assert "\\u202eevil\\u202c zero\\u200bwidth\\ufeff \\x9b31m c1\\x85 \\u2028next" in shown.stdout
    assert "\\ttab\\rback\\nnew line é 中" in shown.stdout
    assert client.run("install", "datasource-csv@<1.0.2").exit_code == 0
    _yank(client, "datasource-csv", "1.0.0", HOSTILE)  # signed text can carry them too
    for args in (["list"], ["upgrade"], ["outdated"], ["verify"], ["info", "datasource-csv"]):
        result = client.run(*args)
        assert result.exit_code == 0, result.output
        assert "Evil\\x1b[2J" in result.output, args
        _assert_inert(result.output)
    as_json = client.run("list", "--json")
    _assert_inert(as_json.output)
    assert json.loads(as_json.stdout)["plugins"][0]["yanked"] == HOSTILE
