"""A key's power ends when it is retired or revoked, in the gate, the build and the client.

Retirement binds a key to the versions it signed (`retired_keys: [{key, versions}]`);
revocation (`revoked_keys: [{key, reason}]`) takes all its power, and an owner signs
again what it signed (`plugindex resign`). The gate cases run in a real git
repository (`tests.test_gate`'s helpers); the client cases install from a signed
build served on 127.0.0.1 (`tests.signed_build`, `tests.fault_server`).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.authoring.key_changes import resign_file, retire_key, revoke_key
from builder.authoring.keys import write_private_key
from builder.authoring.plugin import OptionError
from builder.authoring.sign import SignError, sign_file
from builder.cli.main import cli
from builder.client.signatures import Pin
from builder.common import layout
from builder.format.load import parse_model
from builder.format.models import PluginManifest
from builder.format.shapes import manifest_fields
from builder.index.build import build
from builder.trust import statements
from builder.trust.signing import key_id, public_key_text, sign_statement
from tests.conftest import BUNDLED_INDEX, demo_key
from tests.fault_server import serve_recorded
from tests.signed_build import DEMO_ROOT, build_signed, resign
from tests.test_gate import (
    CSV,
    INDEX,
    JWT,
    MARA,
    STRANGER,
    THEO,
    add_version,
    commit,
    edit_manifest,
    gate,
    line_of,
    merge,
    read,
    repo,
    write,
    yank,
)

__all__ = ["repo"]  # the fixture, used by name

JAN = demo_key("jan-kowalski")
NEW = Ed25519PrivateKey.from_private_bytes(b"\x11" * 32)
MARA_PUBLIC = public_key_text(MARA)
MARA_SIGNED = ["1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1"]  # every auth-jwt version
REGISTRY = "plugindex-demo"


def refused(result: Result, rule: str, rel: str, line: int | None) -> list[str]:
    """Return the problem lines of `rule` at rel:line, asserting the gate refused."""
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output
    where = f"{rel}:{line}: " if line else f"{rel}: "
    found = [t for t in result.stderr.splitlines() if t.startswith(where) and f" {rule} " in t]
    assert found, f"expected {rule} at {where!r}:\n{result.output}"
    return found


def passes(result: Result) -> None:
    assert result.exit_code == 0, result.output


def retire_maras_key(repo: Path, retired: str) -> str:
    """Rotate Mara's auth-jwt key to NEW, writing `retired` as her retired_keys entry."""

    def rotate(text: str) -> str:
        return text.replace(
            f"      - {MARA_PUBLIC}\n",
            f"      - {public_key_text(NEW)}\n    retired_keys:\n{retired}",
        )

    return edit_manifest(repo, "auth-jwt", rotate, revision=2, key=MARA)


def bound(versions: list[str]) -> str:
    return f"      - key: {MARA_PUBLIC}\n        versions: [{', '.join(versions)}]\n"


def document(out: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / layout.index_path(name)).read_bytes())
    return data


def entry(doc: dict[str, Any], version: str) -> dict[str, Any]:
    return next(v for v in doc["versions"] if v["version"] == version)


# --- the source format ------------------------------------------------------------------


def test_an_owner_without_the_new_forms_signs_the_bytes_it_always_did() -> None:
    """The published owner keeps `retired_keys` a list of keys; new fields only when used."""
    rel = "plugins/auth-jwt/plugin.yaml"
    manifest = parse_model(PluginManifest, (BUNDLED_INDEX / rel).read_bytes(), BUNDLED_INDEX, rel)
    owners = manifest_fields(manifest)["owners"]
    assert owners[0] == {"github": "mara-okafor", "keys": [MARA_PUBLIC], "retired_keys": []}
    assert set(owners[1]) == {"github", "keys", "retired_keys"}


def test_a_bound_and_a_revoked_key_are_published_beside_the_key_lists() -> None:
    text = (BUNDLED_INDEX / "plugins/auth-jwt/plugin.yaml").read_text(encoding="utf-8")
    text = text.replace(
        f"      - {MARA_PUBLIC}\n",
        f"      - {public_key_text(NEW)}\n    retired_keys:\n{bound(['1.0.0'])}"
        f"    revoked_keys:\n      - key: {public_key_text(STRANGER)}\n        reason: lost\n",
    )
    manifest = parse_model(PluginManifest, text.encode(), BUNDLED_INDEX, "plugin.yaml")
    assert manifest_fields(manifest)["owners"][0] == {
        "github": "mara-okafor",
        "keys": [public_key_text(NEW)],
        "retired_keys": [MARA_PUBLIC],
        "retired_versions": {MARA_PUBLIC: ["1.0.0"]},
        "revoked_keys": [{"key": public_key_text(STRANGER), "reason": "lost"}],
    }


@pytest.mark.parametrize(
    ("owner", "message"),
    [
        (
            f"    retired_keys:\n      - key: {MARA_PUBLIC}\n",
            "expected `versions:`, the list of versions this key signed",
        ),
        (
            f"    revoked_keys:\n      - key: {MARA_PUBLIC}\n        reason: lost\n",
            "expected a revoked key to be listed nowhere else",
        ),
        (
            f"    retired_keys:\n      - {public_key_text(NEW)}\n      - key: "
            f"{public_key_text(NEW)}\n        versions: []\n",
            "more than once",
        ),
    ],
    ids=["bound-without-versions", "revoked-and-active", "retired-twice"],
)
def test_a_key_written_in_two_standings_is_refused(
    tmp_path: Path, owner: str, message: str
) -> None:
    index = tmp_path / "registry-index"
    shutil.copytree(BUNDLED_INDEX, index)
    path = index / "plugins/auth-jwt/plugin.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(f"      - {MARA_PUBLIC}\n", f"      - {MARA_PUBLIC}\n{owner}"))
    result = CliRunner().invoke(cli, ["validate", str(index)])
    assert result.exit_code == 1, result.output
    assert "plugins/auth-jwt/plugin.yaml:" in result.stderr and message in result.stderr


# --- retirement: the gate ------------------------------------------------------------------


def test_a_retirement_without_a_binding_is_refused(repo: Path) -> None:
    rel = retire_maras_key(repo, f"      - {MARA_PUBLIC}\n")
    commit(repo)
    found = refused(gate(), "PX106", rel, line_of(repo, rel, "retired_keys:") + 1)
    assert "plugindex key retire auth-jwt --old-key" in found[0]


def test_a_retirement_bound_to_what_the_key_signed_passes(repo: Path) -> None:
    retire_maras_key(repo, bound(MARA_SIGNED))
    commit(repo)
    passes(gate("--author", "mara-okafor"))


def test_a_binding_to_a_version_the_key_never_signed_is_refused(repo: Path) -> None:
    """A binding to a future version would let the retired key sign it later."""
    rel = retire_maras_key(repo, bound([*MARA_SIGNED, "9.0.0"]))
    commit(repo)
    found = refused(gate(), "PX107", rel, line_of(repo, rel, r"versions: \["))
    assert "the plugin has no version 9.0.0" in found[0]


def test_a_binding_to_a_version_another_key_signed_is_refused(repo: Path) -> None:
    add_version(repo, "auth-jwt", "1.3.0", JAN)
    merge(repo)
    rel = retire_maras_key(repo, bound([*MARA_SIGNED, "1.3.0"]))
    commit(repo)
    found = refused(gate(), "PX107", rel, line_of(repo, rel, r"versions: \["))
    assert "none of its statements is signed with it" in found[0]


def test_a_binding_that_leaves_out_a_version_the_key_signed_is_refused(repo: Path) -> None:
    """What the binding leaves out no longer verifies: the gate says so before the merge."""
    retire_maras_key(repo, bound(["1.0.0", "1.1.0", "2.0.0-rc.1"]))
    commit(repo)
    rel = f"{JWT}/versions/1.2.0.yaml"
    found = refused(gate(), "PX010", rel, line_of(repo, rel, "^signature:"))
    assert "a retired key that its owner did not bind to this version" in found[0]


def test_a_plain_retirement_already_merged_still_builds_with_a_warning(
    repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Older indexes keep building: an unbound retired key verifies what it signed."""
    retire_maras_key(repo, f"      - {MARA_PUBLIC}\n")
    with caplog.at_level(logging.WARNING):
        result = build(Path(INDEX), tmp_path / "out")
    assert result.held_back == ()
    assert entry(document(tmp_path / "out", "auth-jwt"), "1.2.0")["signed_by"]["owner"] == (
        "mara-okafor"
    )
    assert f"the retired key {key_id(MARA_PUBLIC)} has no binding" in caplog.text


def test_the_build_leaves_out_a_release_a_retired_key_signed_outside_its_binding(
    repo: Path, tmp_path: Path
) -> None:
    """Merged past the gate (or pushed by hand), it is still never published."""
    retire_maras_key(repo, bound(MARA_SIGNED))
    rel = add_version(repo, "auth-jwt", "1.3.0", MARA)
    result = build(Path(INDEX), tmp_path / "out")
    assert [(h.rel, h.outcome) for h in result.held_back] == [
        (rel.removeprefix(f"{INDEX}/"), "version left out")
    ]
    assert "did not bind to this version" in result.held_back[0].problem.message
    versions = [v["version"] for v in document(tmp_path / "out", "auth-jwt")["versions"]]
    assert "1.3.0" not in versions and "1.2.0" in versions


# --- revocation: the gate and the build ---------------------------------------------------


def revoke_maras_key(repo: Path, signer: Ed25519PrivateKey = JAN) -> Path:
    """Revoke Mara's auth-jwt key with `plugindex key revoke` (she gets NEW); return the signer."""
    key_file = repo.parent / "signer.pem"
    if not key_file.exists():
        write_private_key(key_file, signer, None)
    result = CliRunner().invoke(
        cli,
        [
            "key",
            "revoke",
            "auth-jwt",
            MARA_PUBLIC,
            "--reason",
            "Laptop stolen.",
            "--new-key",
            public_key_text(NEW),
            "--key",
            str(key_file),
            "--index",
            INDEX,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "it signed 1.0.0, 1.1.0, 1.2.0, 2.0.0-rc.1" in result.stdout
    assert f"plugindex resign {JWT}/versions/1.2.0.yaml --key KEY_FILE" in result.stdout
    return key_file


def test_a_revocation_passes_the_gate_and_marks_what_the_key_signed(
    repo: Path, tmp_path: Path
) -> None:
    revoke_maras_key(repo)
    commit(repo)
    passes(gate("--author", "jan-kowalski"))
    assert build(Path(INDEX), tmp_path / "out").held_back == ()
    doc = document(tmp_path / "out", "auth-jwt")
    assert entry(doc, "1.2.0")["revoked_signatures"] == [
        {"statement": "release", "key_id": key_id(MARA_PUBLIC), "reason": "Laptop stolen."}
    ]
    assert doc["owners"][0]["revoked_keys"] == [{"key": MARA_PUBLIC, "reason": "Laptop stolen."}]
    # Other plugins' documents are as they were: the field appears only when needed.
    assert "revoked_signatures" not in json.dumps(document(tmp_path / "out", "datasource-csv"))


def test_signing_again_what_a_revoked_key_signed_passes_and_clears_the_mark(
    repo: Path, tmp_path: Path
) -> None:
    key_file = revoke_maras_key(repo)
    merge(repo)
    rel = f"{JWT}/versions/1.2.0.yaml"
    result = CliRunner().invoke(cli, ["resign", rel, "--key", str(key_file)])
    assert result.exit_code == 0, result.output
    assert f"replacing revoked key {key_id(MARA_PUBLIC)}" in result.stdout
    commit(repo)
    passes(gate("--author", "jan-kowalski"))
    assert build(Path(INDEX), tmp_path / "out").held_back == ()
    doc = document(tmp_path / "out", "auth-jwt")
    assert "revoked_signatures" not in entry(doc, "1.2.0")
    assert entry(doc, "1.2.0")["signed_by"]["owner"] == "jan-kowalski"
    assert "revoked_signatures" in entry(doc, "1.1.0")


def test_signing_again_a_version_no_revoked_key_signed_is_refused(repo: Path) -> None:
    """Re-attestation is for revoked keys only: any other merged signature stays."""
    rel = f"{JWT}/versions/1.2.0.yaml"
    sign_file(repo / rel, JAN)
    commit(repo)
    found = refused(gate(), "PX117", rel, line_of(repo, rel, "^signature:"))
    assert "the merged one was not made by a revoked key" in found[0]


def test_signing_again_with_a_key_that_is_not_an_owners_is_refused(repo: Path) -> None:
    revoke_maras_key(repo)
    merge(repo)
    rel = f"{JWT}/versions/1.2.0.yaml"
    sign_file(repo / rel, STRANGER)
    commit(repo)
    refused(gate(), "PX101", rel, line_of(repo, rel, "^signature:"))


def test_signing_again_while_changing_the_release_is_refused(repo: Path) -> None:
    key_file = revoke_maras_key(repo)
    merge(repo)
    rel = f"{JWT}/versions/1.2.0.yaml"
    write(repo, rel, read(repo, rel).replace("risk_level: high", "risk_level: low"))
    assert "risk_level: low" in read(repo, rel)
    CliRunner().invoke(cli, ["sign", rel, "--key", str(key_file)])
    commit(repo)
    result = gate()
    refused(result, "PX110", rel, line_of(repo, rel, "^compliance:"))
    assert "PX117" not in result.stderr  # the merged signature was a revoked key's


def test_a_new_version_signed_with_a_key_the_pull_request_revokes_is_refused(repo: Path) -> None:
    revoke_maras_key(repo, signer=MARA)  # she revokes her own key, and signs with it
    rel = add_version(repo, "auth-jwt", "1.3.0", MARA)
    commit(repo)
    refused(gate(), "PX101", rel, line_of(repo, rel, "^signature:"))


def test_a_revoked_key_stays_revoked(repo: Path) -> None:
    revoke_maras_key(repo)
    merge(repo)

    def unrevoke(text: str) -> str:
        return re.sub(r"(?s)    revoked_keys:\n.*?reason: .*?\n", "", text)

    rel = edit_manifest(repo, "auth-jwt", unrevoke, revision=4, key=JAN)
    assert "revoked_keys" not in read(repo, rel)
    commit(repo)
    found = refused(gate(), "PX108", rel, line_of(repo, rel, "^owners:"))
    assert "stays under `revoked_keys` for good" in found[0]


def test_a_yank_signed_by_a_revoked_key_is_signed_again_alone(repo: Path, tmp_path: Path) -> None:
    """datasource-csv 1.0.1 is yanked by Theo; his key is revoked, the yank re-signed."""
    made = revoke_key(
        Path(INDEX),
        "datasource-csv",
        public_key_text(THEO),
        reason="Key leaked in a CI log.",
        new_key=public_key_text(NEW),
        key=THEO,
    )
    assert made.versions == ("1.0.0", "1.0.1", "1.0.2")
    merge(repo)
    rel = f"{CSV}/versions/1.0.1.yaml"
    done = resign_file(repo / rel, NEW)
    assert done.statements == ("release", "yank")
    commit(repo)
    passes(gate("--author", "theo-lemaire"))
    out = tmp_path / "out"
    assert build(Path(INDEX), out).held_back == ()
    assert "revoked_signatures" not in entry(document(out, "datasource-csv"), "1.0.1")


def test_a_yank_signature_replaced_when_no_revoked_key_made_it_is_refused(repo: Path) -> None:
    rel = f"{JWT}/versions/1.1.0.yaml"
    yank(repo, rel, serial=1, key=MARA)
    merge(repo)
    sign_file(repo / rel, JAN, yank=True)  # an active owner key, but Mara's was not revoked
    commit(repo)
    refused(gate(), "PX117", rel, line_of(repo, rel, "^  signature:"))


# --- authoring -----------------------------------------------------------------------------


def test_key_retire_binds_the_key_to_what_it_signed(repo: Path) -> None:
    done = retire_key(Path(INDEX), "auth-jwt", MARA_PUBLIC, new_key=public_key_text(NEW), key=MARA)
    assert done.versions == tuple(MARA_SIGNED)
    rel = f"{JWT}/plugin.yaml"
    manifest = parse_model(PluginManifest, (repo / rel).read_bytes(), repo, rel)
    mara = manifest.owners[0]
    assert (mara.keys, mara.retired_keys[0].key) == ([public_key_text(NEW)], MARA_PUBLIC)
    assert mara.retired_keys[0].versions == MARA_SIGNED
    assert manifest.revision == 2
    assert "# Owners may publish and yank versions" in read(repo, rel)  # comments kept
    commit(repo)
    passes(gate("--author", "mara-okafor"))


@pytest.mark.parametrize("change", ["retire", "revoke"])
def test_the_last_active_key_cannot_go_without_a_replacement(repo: Path, change: str) -> None:
    """Retiring or revoking an owner's only key needs --new-key; nothing is written."""
    rel = f"{JWT}/plugin.yaml"
    before = read(repo, rel)
    with pytest.raises(OptionError) as caught:
        if change == "retire":
            retire_key(Path(INDEX), "auth-jwt", MARA_PUBLIC, new_key=None, key=MARA)
        else:
            revoke_key(Path(INDEX), "auth-jwt", MARA_PUBLIC, reason="lost", new_key=None, key=MARA)
    assert str(caught.value) == (
        f"--new-key: {key_id(MARA_PUBLIC)} is the last active key of mara-okafor; "
        "give the key that replaces it (from `plugindex keygen`)"
    )
    assert read(repo, rel) == before


def test_resign_refuses_a_file_no_revoked_key_signed(repo: Path) -> None:
    with pytest.raises(SignError, match="no signature in it was made by a revoked key"):
        resign_file(repo / JWT / "versions/1.2.0.yaml", JAN)


# --- the client --------------------------------------------------------------------------


@dataclass
class Served:
    """A signed build served on 127.0.0.1, a plugins folder, and the client's commands."""

    out: Path
    url: str
    home: Path
    index: Path

    def run(self, *args: str) -> Result:
        env = {
            "PLUGINDEX_REGISTRY": self.url,
            "PLUGINDEX_ROOT": str(DEMO_ROOT),
            "PLUGINDEX_PLUGINS_DIR": str(self.home / "plugins"),
            "PLUGINDEX_CACHE_DIR": str(self.home / "cache"),
            "PLUGINDEX_CONFIG_DIR": str(self.home / "config"),
            "PLUGINDEX_DATA_DIR": str(self.home / "data"),
        }
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    def rebuild(self) -> None:
        build_signed(self.index, self.out)

    def edit(self, name: str, change: Any) -> None:
        """Change a served document and sign the build again (a registry gone rogue)."""
        doc = document(self.out, name)
        change(doc)
        text = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        (self.out / layout.index_path(name)).write_text(text + "\n", encoding="utf-8")
        resign(self.out, self.index)

    def installed(self) -> dict[str, str]:
        lock = self.home / "plugins" / "plugindex.lock"
        plugins = json.loads(lock.read_bytes())["plugins"] if lock.exists() else {}
        return {name: p["version"] for name, p in plugins.items()}


@pytest.fixture
def served(index: Path, tmp_path: Path) -> Iterator[Served]:
    out = tmp_path / "out"
    build_signed(index, out)
    with serve_recorded(out) as (url, _):
        yield Served(out, url, tmp_path / "home", index)


def test_upgrade_refuses_a_release_by_a_retired_key_outside_its_binding(served: Served) -> None:
    """The attack of a retired key: a new version signed with it, served by the registry."""
    retire_key(served.index, "auth-jwt", MARA_PUBLIC, new_key=public_key_text(NEW), key=MARA)
    served.rebuild()
    assert served.run("install", "auth-jwt@^1.1").exit_code == 0
    assert served.installed()["auth-jwt"] == "1.2.0"

    def add_release(doc: dict[str, Any]) -> None:
        release = {**entry(doc, "1.2.0"), "version": "1.3.0"}
        signed = sign_statement(MARA, statements.release_statement(REGISTRY, "auth-jwt", release))
        doc["versions"].append({**release, "signature": signed})

    served.edit("auth-jwt", add_release)
    result = served.run("upgrade")
    assert result.exit_code == 5, result.output
    assert "auth-jwt 1.3.0: the release signature was made with a retired key that its owner " in (
        result.stderr
    )
    assert served.installed()["auth-jwt"] == "1.2.0"


def test_a_registry_cannot_widen_a_retired_keys_binding(served: Served) -> None:
    """The binding is pinned with the keys: moving it takes an owner-signed change."""
    retire_key(served.index, "auth-jwt", MARA_PUBLIC, new_key=public_key_text(NEW), key=MARA)
    served.rebuild()
    assert served.run("install", "auth-jwt@^1.1").exit_code == 0

    def widen(doc: dict[str, Any]) -> None:
        doc["owners"][0]["retired_versions"][MARA_PUBLIC].append("1.3.0")
        release = {**entry(doc, "1.2.0"), "version": "1.3.0"}
        signed = sign_statement(MARA, statements.release_statement(REGISTRY, "auth-jwt", release))
        doc["versions"].append({**release, "signature": signed})

    served.edit("auth-jwt", widen)
    result = served.run("upgrade")
    assert result.exit_code == 5, result.output
    assert "the owner keys changed since they were pinned" in result.stderr
    assert served.installed()["auth-jwt"] == "1.2.0"


def test_an_unbound_retired_key_still_verifies_with_a_warning(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    path = served.index / "plugins/auth-jwt/plugin.yaml"
    text = path.read_text(encoding="utf-8").replace(
        f"      - {MARA_PUBLIC}\n",
        f"      - {public_key_text(NEW)}\n    retired_keys:\n      - {MARA_PUBLIC}\n",
    )
    path.write_text(text, encoding="utf-8")
    served.rebuild()
    with caplog.at_level(logging.WARNING):
        result = served.run("install", "auth-jwt")
    assert result.exit_code == 0, result.output
    assert f"signed with the retired key {key_id(MARA_PUBLIC)}, which its owners never bound" in (
        caplog.text
    )


def test_versions_signed_only_by_a_revoked_key_are_not_offered(served: Served) -> None:
    revoke_key(
        served.index,
        "auth-jwt",
        MARA_PUBLIC,
        reason="Laptop stolen.",
        new_key=public_key_text(NEW),
        key=JAN,
    )
    resign_file(served.index / "plugins/auth-jwt/versions/1.1.0.yaml", JAN)
    served.rebuild()
    result = served.run("install", "auth-jwt")
    assert result.exit_code == 0, result.output
    assert served.installed()["auth-jwt"] == "1.1.0"  # 1.2.0 awaits a new signature
    info = served.run("info", "auth-jwt")
    assert info.exit_code == 0, info.output
    assert (
        f"the release signature was made with a key its owner revoked: key "
        f"{key_id(MARA_PUBLIC)} (Laptop stolen.)"
    ) in info.output


def test_a_version_signed_by_a_revoked_key_installs_only_when_pinned_exactly(
    served: Served,
) -> None:
    revoke_key(
        served.index, "auth-jwt", MARA_PUBLIC, reason="Lost.", new_key=public_key_text(NEW), key=JAN
    )
    served.rebuild()
    offered = served.run("install", "auth-jwt@^1.2")
    assert offered.exit_code == 4, offered.output
    # The resolver treats it as it treats a yank: offered only when pinned exactly.
    assert "1.2.0 (yanked)" in offered.stderr
    pinned = served.run("install", "auth-jwt@=1.2.0")
    assert pinned.exit_code == 0, pinned.output
    assert "its owner revoked" in pinned.output
    assert served.installed()["auth-jwt"] == "1.2.0"


def test_a_registry_cannot_drop_a_revocation(served: Served) -> None:
    revoke_key(
        served.index, "auth-jwt", MARA_PUBLIC, reason="Lost.", new_key=public_key_text(NEW), key=JAN
    )
    resign_file(served.index / "plugins/auth-jwt/versions/1.1.0.yaml", JAN)
    served.rebuild()
    assert served.run("install", "auth-jwt").exit_code == 0

    def unrevoke(doc: dict[str, Any]) -> None:
        owner = doc["owners"][0]
        owner["keys"].append(owner.pop("revoked_keys")[0]["key"])

    served.edit("auth-jwt", unrevoke)
    result = served.run("install", "auth-jwt@=1.2.0")
    assert result.exit_code == 5, result.output
    assert "the owner keys changed since they were pinned" in result.stderr


def test_a_pin_without_bindings_or_revocations_is_written_as_before() -> None:
    pin = Pin(keys=("k",), revision=1)
    assert pin.model_dump(mode="json") == {"keys": ["k"], "retired_keys": [], "revision": 1}
    both = Pin(keys=("k",), revision=1, revoked_keys=("r",), retired_versions={"o": ("1.0.0",)})
    assert both.model_dump(mode="json")["revoked_keys"] == ["r"]


# --- deprecation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        ("auth-jwt", "deprecated.replacement: names auth-jwt itself"),
        ("auth-jwz", "deprecated.replacement: no plugin 'auth-jwz' in the index"),
    ],
    ids=["itself", "missing"],
)
def test_a_deprecation_must_name_another_plugin_of_the_index(
    tmp_path: Path, replacement: str, message: str
) -> None:
    index = tmp_path / "registry-index"
    shutil.copytree(BUNDLED_INDEX, index)
    path = index / "plugins/auth-jwt/plugin.yaml"
    text = path.read_text(encoding="utf-8")
    deprecated = f"deprecated:\n  message: Use another one.\n  replacement: {replacement}\n"
    path.write_text(text + deprecated, encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(index)])
    assert result.exit_code == 1, result.output
    line = len(text.splitlines()) + 3
    assert f"plugins/auth-jwt/plugin.yaml:{line}: {message}" in result.stderr


def test_a_deprecation_naming_another_plugin_validates(tmp_path: Path) -> None:
    index = tmp_path / "registry-index"
    shutil.copytree(BUNDLED_INDEX, index)
    path = index / "plugins/auth-basic/plugin.yaml"
    deprecated = "deprecated:\n  message: Use JWTs.\n  replacement: auth-jwt\n"
    path.write_text(path.read_text(encoding="utf-8") + deprecated, encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(index)])
    assert result.exit_code == 0, result.output
