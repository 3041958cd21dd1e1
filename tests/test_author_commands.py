"""The authors' one-step commands: yank, release, owner add/remove, deprecate.

Each runs as an author would, in a real git repository (the bundled index committed
on `main`, branch `pr` checked out, as in test_gate), and what it writes must pass
`plugindex validate` and the pull-request gate (`validate --base main`). Refusals
must say why and leave every file as it was.
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from builder.authoring.keys import read_private_key
from builder.authoring.sign import parse_source
from builder.cli.main import cli
from builder.format.models import PluginManifest, VersionManifest
from builder.trust import statements
from builder.trust.signing import key_id, public_key_text, verify_statement
from tests.conftest import BUNDLED_INDEX, DEMO_KEYS
from tests.test_gate import git
from tests.test_statements import MANIFEST, MANIFEST_VECTOR

INDEX = "registry-index"
JWT = f"{INDEX}/plugins/auth-jwt"
CSV = f"{INDEX}/plugins/datasource-csv"
MARA = DEMO_KEYS / "mara-okafor.pem"  # owns auth-jwt (with jan) and template-crypto
JAN = DEMO_KEYS / "jan-kowalski.pem"  # owns auth-jwt and, alone, auth-basic
PRIYA = DEMO_KEYS / "priya-rao.pem"  # owns datasource-csv (with theo), not auth-jwt
THEO = DEMO_KEYS / "theo-lemaire.pem"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository: the bundled index committed on `main`, branch `pr` checked out."""
    root = tmp_path / "repo"
    shutil.copytree(BUNDLED_INDEX, root / INDEX)
    # The demo registry.yaml signs its TUF metadata with keys found beside the index.
    tuf_keys = DEMO_KEYS / "tuf"
    shutil.copytree(tuf_keys, root / tuf_keys.relative_to(BUNDLED_INDEX.parent))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    git(root, "checkout", "-q", "-b", "pr")
    monkeypatch.chdir(root)
    return root


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def commit(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "pr")


def merge(repo: Path) -> None:
    """Merge the PR into main and start a new PR branch from it."""
    commit(repo)
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "pr")
    git(repo, "checkout", "-q", "-B", "pr")


def passes_the_gate(repo: Path, author: str) -> None:
    """Commit the working tree and assert that `validate` and the gate accept it."""
    commit(repo)
    plain = run("validate", INDEX)  # artifacts are local: their sha256 and size are checked
    assert plain.exit_code == 0, plain.output
    gated = run("validate", INDEX, "--base", "main", "--no-fetch", "--author", author)
    assert gated.exit_code == 0, gated.output


def snapshot(repo: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted((repo / INDEX).rglob("*")) if p.is_file()}


def version(repo: Path, rel: str) -> VersionManifest:
    return parse_source(VersionManifest, repo / INDEX, rel.removeprefix(f"{INDEX}/"))


def manifest(repo: Path, plugin: str) -> PluginManifest:
    return parse_source(PluginManifest, repo / INDEX, f"plugins/{plugin}/plugin.yaml")


# --- yank ------------------------------------------------------------------------------


def test_yank_writes_a_signed_yank_that_passes_the_gate(repo: Path) -> None:
    result = run("yank", "auth-jwt", "1.1.0", "--reason", "Leaks tokens in logs.", "--key", MARA)
    assert result.exit_code == 0, result.output
    assert "yanked auth-jwt 1.1.0 (serial 1), signed by mara-okafor" in result.output
    yanked = version(repo, f"{JWT}/versions/1.1.0.yaml").yanked
    assert yanked is not None and yanked.serial == 1 and yanked.signature is not None
    assert yanked.reason == "Leaks tokens in logs."
    passes_the_gate(repo, "mara-okafor")


def test_yank_undo_then_yank_again_raise_the_serial_each_time(repo: Path) -> None:
    rel = f"{CSV}/versions/1.0.1.yaml"  # yanked at serial 1 in the bundled index
    undone = run("yank", "--undo", "datasource-csv", "1.0.1", "--key", THEO)
    assert undone.exit_code == 0, undone.output
    current = version(repo, rel)
    assert current.yanked is None
    assert current.unyanked is not None and current.unyanked.serial == 2
    text = (repo / rel).read_text(encoding="utf-8")
    assert "\nyanked:" not in text and "# Yanked: clients skip" not in text
    passes_the_gate(repo, "theo-lemaire")
    merge(repo)
    again = run("yank", "datasource-csv", "1.0.1", "--reason", "Still broken.", "--key", PRIYA)
    assert again.exit_code == 0, again.output
    current = version(repo, rel)
    assert current.unyanked is None
    assert current.yanked is not None and current.yanked.serial == 3
    passes_the_gate(repo, "priya-rao")


def test_a_multi_line_reason_with_quotes_reads_back_exactly(repo: Path) -> None:
    reason = 'Quoted "fields" split rows: data: lost #1.\nFixed in 1.2.0; see \\docs.'
    result = run("yank", "auth-jwt", "1.0.0", "--reason", reason, "--key", JAN)
    assert result.exit_code == 0, result.output
    yanked = version(repo, f"{JWT}/versions/1.0.0.yaml").yanked
    assert yanked is not None and yanked.reason == reason
    passes_the_gate(repo, "jan-kowalski")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["auth-jwt", "1.1.0", "--reason", "x", "--key", PRIYA],
            3,
            "is not an active key of an owner of auth-jwt (owners: mara-okafor, jan-kowalski)",
        ),
        (["auth-jwt", "9.9.9", "--reason", "x", "--key", MARA], 3, "it has: 1.0.0, 1.1.0"),
        (["no-such-plugin", "1.0.0", "--reason", "x", "--key", MARA], 3, "no such file"),
        (["--undo", "auth-jwt", "1.1.0", "--key", MARA], 3, "auth-jwt 1.1.0 is not yanked"),
        (["--undo", "auth-jwt", "1.1.0", "--reason", "x", "--key", MARA], 2, "takes no --reason"),
        (["auth-jwt", "1.1.0", "--key", MARA], 2, "Missing option '--reason'"),
        (["auth-jwt", "1.1.0", "--reason", "a\x1b[2Jb", "--key", MARA], 2, "--reason: expected"),
        (
            ["datasource-csv", "1.0.1", "--reason", "Quoted fields containing a newline are split "
             "into two rows, corrupting the data served. Fixed in 1.0.2; please upgrade.",
             "--key", THEO],
            3,
            "already yanked with this reason",
        ),
    ],
    ids=[
        "not-an-owner", "no-such-version", "no-such-plugin", "undo-not-yanked",
        "undo-with-reason", "no-reason", "control-characters", "already-yanked",
    ],
)  # fmt: skip
def test_yank_refusals_change_nothing(repo: Path, args: list[Any], code: int, message: str) -> None:
    before = snapshot(repo)
    result = run("yank", *args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert snapshot(repo) == before


# --- release ---------------------------------------------------------------------------


def _artifact(repo: Path, plugin: str, name: str, data: bytes) -> tuple[Path, str]:
    """Put an artifact in the plugin's folder (the demo registry allows local ones)."""
    path = repo / INDEX / "plugins" / plugin / "artifacts" / name
    path.write_bytes(data)
    return path, f"artifacts/{name}"


def _release_fields(v: VersionManifest) -> dict[str, Any]:
    return v.model_dump(exclude={"version", "released", "artifact", "signature", "yanked"})


def test_release_starts_from_the_previous_version_and_passes_the_gate(repo: Path) -> None:
    artifact, url = _artifact(repo, "auth-jwt", "auth-jwt-1.3.0.tar.gz", b"new bytes\n" * 50)
    result = run("release", "auth-jwt", "1.3.0", "--artifact", artifact, "--url", url, "--key", JAN)
    assert result.exit_code == 0, result.output
    assert "(from 1.2.0), signed by jan-kowalski" in result.output
    new = version(repo, f"{JWT}/versions/1.3.0.yaml")
    previous = version(repo, f"{JWT}/versions/1.2.0.yaml")
    assert _release_fields(new) == _release_fields(previous)
    assert new.released == datetime.datetime.now(tz=datetime.UTC).date().isoformat()
    assert new.artifact.size == 500
    assert new.artifact.filename == "auth-jwt-1.3.0.tar.gz"
    assert new.artifact.url == url
    assert new.yanked is None and new.signature is not None
    passes_the_gate(repo, "jan-kowalski")


def test_release_options_override_what_the_previous_version_said(repo: Path) -> None:
    artifact, url = _artifact(repo, "datasource-csv", "csv-1.0.3.tgz", b"csv\n" * 40)
    result = run(
        "release", "datasource-csv", "1.0.3", "--artifact", artifact, "--url", url,
        "--key", THEO, "--released", "2025-02-03", "--host", ">=0.4, <0.6",
        "--dependency", "template-faker@^0.5", "--dependency", "auth-basic@^1",
        "--filename", "datasource-csv-1.0.3.tgz",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    new = version(repo, f"{CSV}/versions/1.0.3.yaml")
    assert new.released == "2025-02-03"
    assert new.compatibility.host == ">=0.4, <0.6"
    assert new.compatibility.plugin_api == "^1.0"  # kept
    assert new.artifact.filename == "datasource-csv-1.0.3.tgz"
    deps = {name: (d.version, d.kind) for name, d in new.dependencies.items()}
    assert deps == {"template-faker": ("^0.5", "optional"), "auth-basic": ("^1", "runtime")}
    passes_the_gate(repo, "theo-lemaire")
    merge(repo)
    artifact, url = _artifact(repo, "datasource-csv", "csv-1.0.4.tgz", b"csv4\n" * 40)
    dropped = run(
        "release", "datasource-csv", "1.0.4", "--artifact", artifact, "--url", url,
        "--key", THEO, "--drop-dependency", "template-faker", "--drop-dependency", "auth-basic",
    )  # fmt: skip
    assert dropped.exit_code == 0, dropped.output
    assert not version(repo, f"{CSV}/versions/1.0.4.yaml").dependencies
    passes_the_gate(repo, "theo-lemaire")


def test_a_backport_starts_from_the_version_below_it(repo: Path) -> None:
    artifact, url = _artifact(repo, "auth-jwt", "auth-jwt-1.1.1.tar.gz", b"fix\n" * 30)
    result = run(
        "release", "auth-jwt", "1.1.1", "--artifact", artifact, "--url", url, "--key", MARA
    )
    assert result.exit_code == 0, result.output
    assert "(from 1.1.0)" in result.output
    new, previous = (version(repo, f"{JWT}/versions/{v}.yaml") for v in ("1.1.1", "1.1.0"))
    assert _release_fields(new) == _release_fields(previous)
    passes_the_gate(repo, "mara-okafor")


def test_a_release_from_a_yanked_version_is_not_yanked(repo: Path) -> None:
    artifact, url = _artifact(repo, "datasource-csv", "csv-1.0.3.tgz", b"csv\n" * 40)
    result = run(
        "release", "datasource-csv", "1.0.3", "--from", "1.0.1", "--artifact", artifact,
        "--url", url, "--key", THEO,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = (repo / CSV / "versions/1.0.3.yaml").read_text(encoding="utf-8")
    assert version(repo, f"{CSV}/versions/1.0.3.yaml").yanked is None
    assert "yanked:" not in text
    assert "# Yanked: clients skip" not in text  # the comment on the yank went with it
    assert text.count("signature:") == 1
    passes_the_gate(repo, "theo-lemaire")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["auth-jwt", "1.2.0"], 3, "auth-jwt 1.2.0 already exists"),
        (["auth-jwt", "1.2.0+rebuild.1"], 3, "the same version but for build metadata"),
        (["auth-jwt", "v1.3"], 2, "VERSION: expected a semantic version"),
        (["auth-jwt", "1.3.0", "--from", "0.1.0"], 2, "--from: auth-jwt has no version 0.1.0"),
        (["auth-jwt", "1.3.0", "--dependency", "auth-basic"], 2, "expected NAME@REQUIREMENT"),
        (["auth-jwt", "1.3.0", "--dependency", "auth-jwt@^1"], 2, "cannot depend on itself"),
        (["auth-jwt", "1.3.0", "--dependency", "Bad_Name@^1"], 2, "--dependency:"),
        (["auth-jwt", "1.3.0", "--dependency", "auth-basic@>>1"], 2, "--dependency:"),
        (["auth-jwt", "1.3.0", "--drop-dependency", "auth-basic"], 2, "has no dependency"),
        (["auth-jwt", "1.3.0", "--released", "2025-02-30"], 2, "--released"),
        (["auth-jwt", "1.3.0", "--key", str(PRIYA)], 3, "is not an active key of an owner"),
        (["auth-jwt", "1.3.0", "--url", "https://x.example/a b.tgz"], 2, "--url: expected no"),
    ],
    ids=[
        "existing", "build-metadata", "not-semver", "unknown-from", "dependency-syntax",
        "self-dependency", "bad-dependency-name", "bad-requirement", "drop-unknown",
        "bad-date", "not-an-owner", "bad-url",
    ],
)  # fmt: skip
def test_release_refusals_change_nothing(
    repo: Path, args: list[str], code: int, message: str
) -> None:
    artifact, url = _artifact(repo, "auth-jwt", "a.tgz", b"a\n" * 10)
    before = snapshot(repo)
    key = [] if "--key" in args else ["--key", str(MARA)]
    where = [] if "--url" in args else ["--url", url]
    result = run("release", *args, "--artifact", artifact, *where, *key)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert snapshot(repo) == before


def test_an_authors_journey_new_then_release(repo: Path) -> None:
    """keygen, new, merge, release: the scaffold's title follows the version."""
    key_file = repo.parent / "me.pem"
    assert run("keygen", key_file, "--no-encrypt").exit_code == 0
    first = repo.parent / "cookie-jar-0.1.0.tar.gz"
    first.write_bytes(b"first\n" * 10)
    started = run(
        "new", "cookie-jar", "--index", INDEX, "--artifact", first, "--url",
        "https://downloads.example.org/cookie-jar-0.1.0.tar.gz", "--owner", "sam-baker",
        "--key", key_file, "--category", "auth",
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    commit(repo)
    assert run("validate", INDEX, "--base", "main", "--no-fetch").exit_code == 0
    merge(repo)
    second = repo.parent / "cookie-jar-0.2.0.tar.gz"
    second.write_bytes(b"second\n" * 10)
    url = "https://downloads.example.org/cookie-jar-0.2.0.tar.gz"
    released = run("release", "cookie-jar", "0.2.0", "--artifact", second, "--url", url,
                   "--key", key_file)  # fmt: skip
    assert released.exit_code == 0, released.output
    text = (repo / INDEX / "plugins/cookie-jar/versions/0.2.0.yaml").read_text("utf-8")
    assert text.startswith("# Release 0.2.0 of cookie-jar.")
    assert "0.1.0" not in text
    commit(repo)
    gated = run("validate", INDEX, "--base", "main", "--no-fetch", "--author", "sam-baker")
    assert gated.exit_code == 0, gated.output


# --- owners ----------------------------------------------------------------------------


def _new_key(repo: Path, name: str) -> tuple[Path, str]:
    key = Ed25519PrivateKey.from_private_bytes(bytes([len(name)]) * 32)
    path = repo.parent / f"{name}.pem"
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return path, public_key_text(key)


def test_an_added_owner_can_release_once_merged(repo: Path) -> None:
    sam_file, sam_public = _new_key(repo, "sam-baker")
    added = run("owner", "add", "auth-jwt", "sam-baker", "--public-key", sam_public, "--key", MARA)
    assert added.exit_code == 0, added.output
    assert "added sam-baker to the owners of auth-jwt (revision 2)" in added.output
    owners = manifest(repo, "auth-jwt").owners
    assert [o.github for o in owners] == ["mara-okafor", "jan-kowalski", "sam-baker"]
    assert manifest(repo, "auth-jwt").revision == 2
    passes_the_gate(repo, "mara-okafor")
    merge(repo)
    artifact, url = _artifact(repo, "auth-jwt", "auth-jwt-1.3.0.tar.gz", b"sam\n" * 20)
    released = run("release", "auth-jwt", "1.3.0", "--artifact", artifact, "--url", url,
                   "--key", sam_file)  # fmt: skip
    assert released.exit_code == 0, released.output
    passes_the_gate(repo, "sam-baker")


def test_before_the_merge_a_new_owner_cannot_sign(repo: Path) -> None:
    """The gate checks owners as the base lists them: adding yourself and signing fails."""
    sam_file, sam_public = _new_key(repo, "sam-baker")
    run("owner", "add", "auth-jwt", "sam-baker", "--public-key", sam_public, "--key", MARA)
    artifact, url = _artifact(repo, "auth-jwt", "auth-jwt-1.3.0.tar.gz", b"sam\n" * 20)
    run("release", "auth-jwt", "1.3.0", "--artifact", artifact, "--url", url, "--key", sam_file)
    commit(repo)
    gated = run("validate", INDEX, "--base", "main", "--no-fetch")
    assert gated.exit_code == 1
    assert "PX101" in gated.output


def test_owner_add_gives_an_existing_owner_another_key(repo: Path) -> None:
    _, second = _new_key(repo, "second-key-of-jan")
    added = run("owner", "add", "auth-jwt", "jan-kowalski", "--public-key", second, "--key", JAN)
    assert added.exit_code == 0, added.output
    jan = next(o for o in manifest(repo, "auth-jwt").owners if o.github == "jan-kowalski")
    assert jan.keys[-1] == second and len(jan.keys) == 2
    passes_the_gate(repo, "jan-kowalski")


def test_owner_remove_raises_the_revision_and_passes_the_gate(repo: Path) -> None:
    removed = run("owner", "remove", "auth-jwt", "jan-kowalski", "--key", MARA)
    assert removed.exit_code == 0, removed.output
    current = manifest(repo, "auth-jwt")
    assert [o.github for o in current.owners] == ["mara-okafor"]
    assert current.revision == 2
    passes_the_gate(repo, "mara-okafor")
    merge(repo)
    # Twice in a row: each change raises the merged revision by exactly one.
    _, priya_public = public_key_text_of(PRIYA)
    again = run(
        "owner", "add", "auth-jwt", "priya-rao", "--public-key", priya_public, "--key", MARA
    )
    assert again.exit_code == 0, again.output
    assert manifest(repo, "auth-jwt").revision == 3
    passes_the_gate(repo, "mara-okafor")


def public_key_text_of(key_file: Path) -> tuple[Path, str]:
    return key_file, public_key_text(read_private_key(key_file, None))


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["remove", "auth-basic", "jan-kowalski", "--key", JAN], 3, "is the last owner"),
        (["remove", "auth-jwt", "priya-rao", "--key", MARA], 3, "priya-rao is not an owner"),
        (["remove", "auth-jwt", "jan-kowalski", "--key", PRIYA], 3, "not an active key"),
        (["add", "auth-jwt", "sam-baker", "--key", MARA], 2, "a new owner needs a public key"),
        (["add", "auth-jwt", "jan-kowalski", "--key", MARA], 3, "already an owner"),
        (["add", "auth-jwt", "sam", "--public-key", "ed25519:AAAA", "--key", MARA], 2,
         "--public-key: expected an Ed25519 public key"),
        (["add", "auth-jwt", "sam--baker", "--public-key", "x", "--key", MARA], 2,
         "HANDLE: expected a GitHub user name"),
    ],
    ids=[
        "last-owner", "not-an-owner", "signer-not-an-owner", "no-public-key",
        "already-an-owner", "bad-public-key", "bad-handle",
    ],
)  # fmt: skip
def test_owner_refusals_change_nothing(
    repo: Path, args: list[Any], code: int, message: str
) -> None:
    before = snapshot(repo)
    result = run("owner", *args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert snapshot(repo) == before


def test_a_key_already_listed_cannot_be_added_again(repo: Path) -> None:
    _, jan_public = public_key_text_of(JAN)
    before = snapshot(repo)
    result = run("owner", "add", "auth-jwt", "sam-baker", "--public-key", jan_public, "--key", MARA)
    assert result.exit_code == 3
    assert f"key {key_id(jan_public)} is already listed for jan-kowalski" in result.output
    assert snapshot(repo) == before


# --- deprecate -------------------------------------------------------------------------


def test_deprecate_passes_the_gate_and_is_published_signed(repo: Path, tmp_path: Path) -> None:
    result = run(
        "deprecate", "auth-basic", "--message", "Basic auth is unsafe; use tokens.",
        "--replacement", "auth-jwt", "--key", JAN,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "deprecated auth-basic in favour of auth-jwt (revision 2)" in result.output
    passes_the_gate(repo, "jan-kowalski")
    built = run("build", INDEX, "--out", tmp_path / "out")
    assert built.exit_code == 0, built.output
    document = json.loads((tmp_path / "out/index/au/th/auth-basic.json").read_text("utf-8"))
    assert document["deprecated"] == {
        "message": "Basic auth is unsafe; use tokens.",
        "replacement": "auth-jwt",
    }
    # A client checks the plugin.yaml signature from the document alone, as it does.
    keys = [k for owner in document["owners"] for k in owner["keys"]]
    statement = statements.manifest_statement("plugindex-demo", document)
    assert verify_statement(document["signature"], statement, keys).valid
    # …and the deprecation is part of what is signed.
    altered = {**document, "deprecated": {"message": "Fine to use."}}
    forged = statements.manifest_statement("plugindex-demo", altered)
    assert not verify_statement(document["signature"], forged, keys).valid
    undeprecated = {k: v for k, v in document.items() if k != "deprecated"}
    forged = statements.manifest_statement("plugindex-demo", undeprecated)
    assert not verify_statement(document["signature"], forged, keys).valid


def test_a_plugin_never_deprecated_publishes_no_deprecated_field(
    repo: Path, tmp_path: Path
) -> None:
    commit(repo)
    built = run("build", INDEX, "--out", tmp_path / "out")
    assert built.exit_code == 0, built.output
    document = json.loads((tmp_path / "out/index/au/th/auth-jwt.json").read_text("utf-8"))
    assert "deprecated" not in document


def test_a_deprecation_edited_after_signing_is_refused_by_the_gate(repo: Path) -> None:
    run("deprecate", "auth-basic", "--message", "Use auth-jwt.", "--key", JAN)
    path = repo / INDEX / "plugins/auth-basic/plugin.yaml"
    path.write_text(path.read_text("utf-8").replace("Use auth-jwt.", "Still fine."), "utf-8")
    commit(repo)
    gated = run("validate", INDEX, "--base", "main", "--no-fetch")
    assert gated.exit_code == 1
    assert "PX103" in gated.output


def test_deprecate_undo_and_again_each_raise_the_revision(repo: Path) -> None:
    made = run("deprecate", "template-faker", "--message", "Unmaintained.", "--key", THEO)
    assert made.exit_code == 0, made.output
    deprecation = manifest(repo, "template-faker").deprecated
    assert deprecation is not None and deprecation.replacement is None
    passes_the_gate(repo, "theo-lemaire")
    merge(repo)
    undone = run("deprecate", "template-faker", "--undo", "--key", THEO)
    assert undone.exit_code == 0, undone.output
    current = manifest(repo, "template-faker")
    assert current.deprecated is None and current.revision == 3
    passes_the_gate(repo, "theo-lemaire")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["auth-basic", "--message", "x", "--replacement", "auth-basic"], 2, "replace itself"),
        (["auth-basic", "--message", "x", "--replacement", "auth-jwtt"], 2, "no plugin 'auth-"),
        (["auth-basic", "--message", "x", "--replacement", "Auth_JWT"], 2, "--replacement:"),
        (["auth-basic", "--message", ""], 2, "--message:"),
        (["auth-basic"], 2, "Missing option '--message'"),
        (["auth-basic", "--undo"], 3, "auth-basic is not deprecated"),
        (["auth-basic", "--undo", "--message", "x"], 2, "--undo takes no --message"),
    ],
    ids=[
        "replaces-itself", "unknown-replacement", "bad-replacement", "empty-message",
        "no-message", "undo-not-deprecated", "undo-with-message",
    ],
)  # fmt: skip
def test_deprecate_refusals_change_nothing(
    repo: Path, args: list[str], code: int, message: str
) -> None:
    before = snapshot(repo)
    result = run("deprecate", *args, "--key", JAN)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert snapshot(repo) == before


def test_deprecate_needs_an_owner_key(repo: Path) -> None:
    before = snapshot(repo)
    result = run("deprecate", "auth-basic", "--message", "x", "--key", MARA)
    assert result.exit_code == 3
    assert "is not an active key of an owner of auth-basic (owners: jan-kowalski)" in result.output
    assert snapshot(repo) == before


# --- the statement: old signatures stay valid -------------------------------------------


def test_a_plugin_yaml_without_deprecated_signs_the_same_bytes_as_before() -> None:
    assert statements.manifest_statement("reg", {**MANIFEST, "deprecated": None}) == (
        MANIFEST_VECTOR
    )
    deprecated = {**MANIFEST, "deprecated": {"message": "Use b.", "replacement": "b-plugin"}}
    signed = statements.manifest_statement("reg", deprecated)
    assert signed != MANIFEST_VECTOR
    assert b'"deprecated":{"message":"Use b.","replacement":"b-plugin"}' in signed
