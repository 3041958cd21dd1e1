"""Author signatures: statements, keys, `sign`, `keygen`, `new`, and the build's checks."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.authoring import sign as sign_module
from builder.authoring.sign import SignError, set_signature, sign_file
from builder.authoring.sign import _signature_scalar as scalar
from builder.cli.main import cli
from builder.common.errors import InvalidIndexError
from builder.format.names import resembled_name, skeleton, within_one_edit
from builder.format.strict_yaml import parse
from builder.index import verifier
from builder.index.build import build
from builder.trust import statements
from builder.trust.signing import (
    KeyRing,
    Verdict,
    key_id,
    public_key_text,
    sign_statement,
    verify_statement,
)
from tests.conftest import DEMO_KEYS, demo_key, sign_as_owner

KEY = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
PUBLIC = public_key_text(KEY)
ENTRY = {
    "version": "1.0.0",
    "released": "2024-01-01",
    "artifact": {
        "url": "https://x.example/a.tgz",
        "sha256": "ab" * 32,
        "size": 10,
        "filename": "a.tgz",
    },
    "dependencies": [{"name": "dep", "req": "^1", "kind": "runtime"}],
    "compatibility": {"host": "^3", "plugin_api": "^1"},
    "engine": "python",
    "formats": [],
    "compliance": {"risk_level": "low"},
}


# --- statements and keys ----------------------------------------------------------


def test_key_id_is_computed_from_the_public_key() -> None:
    other = public_key_text(Ed25519PrivateKey.from_private_bytes(b"\x02" * 32))
    assert len(key_id(PUBLIC)) == 16
    assert key_id(PUBLIC) != key_id(other)
    assert sign_statement(KEY, b"x")["key_id"] == key_id(PUBLIC)


def test_a_release_signature_verifies_only_its_own_statement() -> None:
    statement = statements.release_statement("reg", "plug", ENTRY)
    block = sign_statement(KEY, statement)
    assert verify_statement(block, statement, [PUBLIC]).verdict is Verdict.VALID
    changed = {**ENTRY, "compatibility": {"host": "*", "plugin_api": "^1"}}
    again = statements.release_statement("reg", "plug", changed)
    assert verify_statement(block, again, [PUBLIC]).verdict is Verdict.BAD_SIGNATURE


@pytest.mark.parametrize(
    "other",
    [
        statements.release_statement("other-registry", "plug", ENTRY),
        statements.release_statement("reg", "other-plugin", ENTRY),
        statements.yank_statement("reg", "plug", "1.0.0", sha256="ab" * 32, reason="r", serial=1),
        statements.unyank_statement("reg", "plug", "1.0.0", sha256="ab" * 32, serial=1),
    ],
    ids=["another-registry", "another-plugin", "a-yank", "an-unyank"],
)
def test_a_signature_never_verifies_as_another_statement(other: bytes) -> None:
    block = sign_statement(KEY, statements.release_statement("reg", "plug", ENTRY))
    assert not verify_statement(block, other, [PUBLIC]).valid


def test_statements_start_with_their_kind() -> None:
    yank = statements.yank_statement("reg", "p", "1.0.0", sha256="ab" * 32, reason="r", serial=2)
    assert yank.startswith(b"plugindex-statement/1 yank\n")
    body = json.loads(yank.split(b"\n", 1)[1])
    assert body == {
        "kind": "yank",
        "registry": "reg",
        "plugin": "p",
        "version": "1.0.0",
        "sha256": "ab" * 32,
        "reason": "r",
        "serial": 2,
    }


def test_the_download_location_is_not_signed() -> None:
    """The registry mirrors artifacts: where it serves them from may change, the bytes not."""
    mirrored = {**ENTRY, "artifact": {**ENTRY["artifact"], "download": "artifacts/ab/a.tgz"}}  # type: ignore[dict-item]
    assert statements.release_statement("r", "p", mirrored) == statements.release_statement(
        "r", "p", ENTRY
    )


def test_a_key_not_allowed_is_unknown_and_a_forged_key_id_is_no_help() -> None:
    statement = statements.release_statement("reg", "plug", ENTRY)
    stranger = Ed25519PrivateKey.from_private_bytes(b"\x09" * 32)
    block = sign_statement(stranger, statement)
    assert verify_statement(block, statement, [PUBLIC]).verdict is Verdict.UNKNOWN_KEY
    forged = {**block, "key_id": key_id(PUBLIC)}  # claims to be the owner's key
    assert verify_statement(forged, statement, KeyRing([PUBLIC])).verdict is Verdict.BAD_SIGNATURE


def test_missing_and_malformed_signatures_are_told_apart() -> None:
    statement = b"x"
    assert verify_statement(None, statement, [PUBLIC]).verdict is Verdict.MISSING
    bad = {"algorithm": "rsa", "key_id": key_id(PUBLIC), "value": "AA=="}
    assert verify_statement(bad, statement, [PUBLIC]).verdict is Verdict.MALFORMED


# --- sign: a text edit that keeps the author's file -----------------------------------


def test_sign_keeps_comments_and_order_and_replaces_its_own_block(index: Path) -> None:
    path = index / "plugins/auth-jwt/versions/1.2.0.yaml"
    before = path.read_text(encoding="utf-8")
    sign_file(path, demo_key("jan-kowalski"))
    after = path.read_text(encoding="utf-8")
    kept = [line for line in after.splitlines() if not line.startswith(("signature:", "  "))]
    original = [line for line in before.splitlines() if not line.startswith(("signature:", "  "))]
    assert kept == original  # every comment and top-level line, in order
    assert after.count("signature:") == 1
    assert f"key_id: {key_id(public_key_text(demo_key('jan-kowalski')))}" in after
    assert after.startswith("# One released version of auth-jwt.")


def test_sign_adds_the_yank_signature_inside_the_yank_section() -> None:
    text = "version: 1.0.0\nyanked:\n  reason: broken\n  serial: 1\n# trailing comment\n"
    block = {"algorithm": "ed25519", "key_id": "0" * 16, "value": "v"}
    result = set_signature(text, ("yanked",), block, shown="f.yaml")
    assert result == (
        "version: 1.0.0\nyanked:\n  reason: broken\n  serial: 1\n"
        '  signature:\n    algorithm: ed25519\n    key_id: "0000000000000000"\n    value: v\n'
        "# trailing comment\n"
    )


CSV_101 = "plugins/datasource-csv/versions/1.0.1.yaml"  # yanked (serial 1) and signed


def _block(text: str, indent: str) -> str:
    """Return the signature block at `indent` (the yank's is indented by two)."""
    start = text.index(f"\n{indent}signature:\n") + 1
    lines = text[start:].splitlines(keepends=True)
    return "".join([lines[0], *(x for x in lines[1:4] if x.startswith(f"{indent}  "))])


@pytest.mark.parametrize("release_signed", [True, False], ids=["re-sign", "first-sign"])
def test_re_signing_a_yanked_version_keeps_its_yank_signature(
    index: Path, release_signed: bool
) -> None:
    path = index / CSV_101
    text = path.read_text(encoding="utf-8")
    if not release_signed:  # the release block is the file's last: drop it
        text = text[: text.index("\nsignature:\n") + 1]
        path.write_text(text, encoding="utf-8")
    yank_block = _block(text, "  ")
    sign_file(path, demo_key("priya-rao"))
    after = path.read_text(encoding="utf-8")
    assert _block(after, "  ") == yank_block  # byte for byte
    assert after.count("\nsignature:") == 1
    assert after.count("\n  signature:") == 1
    assert f"key_id: {key_id(public_key_text(demo_key('priya-rao')))}" in _block(after, "")
    valid = CliRunner().invoke(cli, ["validate", str(index), "--no-fetch"])
    assert valid.exit_code == 0, valid.output


@pytest.mark.parametrize(
    "written", ['"signature":', "'signature':", "signature :"], ids=["double", "single", "space"]
)
def test_a_signature_key_written_another_way_is_replaced_not_doubled(
    index: Path, written: str
) -> None:
    path = index / CSV_101
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("\nsignature:\n", f"\n{written}\n"), encoding="utf-8")
    sign_file(path, demo_key("theo-lemaire"))
    after = path.read_text(encoding="utf-8")
    assert written not in after
    assert after.count("\nsignature:") == 1
    valid = CliRunner().invoke(cli, ["validate", str(index), "--no-fetch"])
    assert valid.exit_code == 0, valid.output


def test_a_windows_file_keeps_its_line_breaks(index: Path) -> None:
    path = index / CSV_101
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    sign_file(path, demo_key("theo-lemaire"))
    data = path.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n")


def _duplicating(text: str, section: tuple[str, ...], block: dict[str, str], *, shown: str) -> str:
    """The historical bug: a second top-level `signature:` after the first."""
    return text + "signature:\n" + "".join(f"  {k}: {v}\n" for k, v in block.items())


def _losing_the_yank_signature(
    text: str, section: tuple[str, ...], block: dict[str, str], *, shown: str
) -> str:
    start = text.index("\n  signature:\n") + 1
    end = text.index("\nsignature:\n") + 1
    rest = text[:start] + text[end:]
    return (
        rest[: rest.index("\nsignature:\n") + 1]
        + "signature:\n"
        + "".join(f"  {k}: {v}\n" for k, v in block.items())
    )


@pytest.mark.parametrize(
    ("broken_edit", "message"),
    [
        (_duplicating, "adding the signature would leave the file invalid"),
        (_losing_the_yank_signature, "could not be added without changing the rest of the file"),
    ],
    ids=["duplicate-key", "lost-yank-signature"],
)
def test_a_signing_edit_that_changes_anything_else_is_never_written(
    index: Path, monkeypatch: pytest.MonkeyPatch, broken_edit: Any, message: str
) -> None:
    path = index / CSV_101
    before = path.read_bytes()
    monkeypatch.setattr(sign_module, "set_signature", broken_edit)
    with pytest.raises(SignError, match=message):
        sign_file(path, demo_key("theo-lemaire"))
    assert path.read_bytes() == before


def _unsigned_yank(index: Path, section: str = "yanked") -> Path:
    path = index / "plugins/auth-jwt/versions/1.1.0.yaml"
    state = "  reason: Leaks tokens.\n  serial: 1\n" if section == "yanked" else "  serial: 1\n"
    path.write_text(path.read_text(encoding="utf-8") + f"{section}:\n{state}", encoding="utf-8")
    return path


def test_sign_without_yank_refuses_an_unsigned_yank(index: Path, tmp_path: Path) -> None:
    path = _unsigned_yank(index)
    before = path.read_bytes()
    key_file = tmp_path / "mara.pem"
    key_file.write_bytes((DEMO_KEYS / "mara-okafor.pem").read_bytes())
    result = CliRunner().invoke(cli, ["sign", str(path), "--key", str(key_file)])
    assert result.exit_code == 3
    assert (
        f"error: {path}: this file has an unsigned yanked: block; run `plugindex sign {path} "
        f"--key KEY_FILE --yank` or `plugindex yank auth-jwt 1.1.0 --reason TEXT --key KEY_FILE`"
    ) in result.stderr
    assert path.read_bytes() == before
    # The way out it names works: sign the yank, then the release signs too.
    yank = CliRunner().invoke(cli, ["sign", str(path), "--key", str(key_file), "--yank"])
    assert yank.exit_code == 0, yank.output
    again = CliRunner().invoke(cli, ["sign", str(path), "--key", str(key_file)])
    assert again.exit_code == 0, again.output
    valid = CliRunner().invoke(cli, ["validate", str(index), "--no-fetch"])
    assert valid.exit_code == 0, valid.output


def test_sign_without_yank_refuses_an_unsigned_unyank(index: Path) -> None:
    path = _unsigned_yank(index, "unyanked")
    with pytest.raises(
        SignError, match=r"unsigned unyanked: block; run `plugindex sign .* --yank`$"
    ):
        sign_file(path, demo_key("mara-okafor"))


def test_sign_without_yank_refuses_a_yank_edited_after_signing(index: Path) -> None:
    path = index / CSV_101
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Fixed in 1.0.2", "Fixed in 1.0.3"), encoding="utf-8")
    with pytest.raises(SignError, match="block does not verify with an owner key"):
        sign_file(path, demo_key("theo-lemaire"))


def test_sign_refuses_an_inline_section() -> None:
    with pytest.raises(SignError, match=r"f.yaml:2: `yanked:` is written inline"):
        set_signature(
            "version: 1.0.0\nyanked: {reason: x}\n",
            ("yanked",),
            {"algorithm": "ed25519", "key_id": "0", "value": "v"},
            shown="f.yaml",
        )


def test_sign_on_a_file_outside_an_index_is_a_clear_error(tmp_path: Path) -> None:
    stray = tmp_path / "1.0.0.yaml"
    stray.write_text("version: 1.0.0\n", encoding="utf-8")
    key_file = tmp_path / "k.pem"
    CliRunner().invoke(cli, ["keygen", str(key_file), "--no-encrypt"])
    result = CliRunner().invoke(cli, ["sign", str(stray), "--key", str(key_file)])
    assert result.exit_code == 3
    assert "not inside an index (no registry.yaml in any parent folder)" in result.stderr


# --- keygen -----------------------------------------------------------------------


def test_keygen_writes_a_private_file_and_prints_the_public_key(tmp_path: Path) -> None:
    key_file = tmp_path / "me.pem"
    result = CliRunner().invoke(cli, ["keygen", str(key_file), "--no-encrypt"])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    public = next(line.split()[-1] for line in result.stdout.splitlines() if "public key" in line)
    assert public.startswith("ed25519:")
    assert f"key id:     {key_id(public)}" in result.stdout


def test_keygen_never_overwrites_a_key(tmp_path: Path) -> None:
    key_file = tmp_path / "me.pem"
    key_file.write_text("precious", encoding="utf-8")
    result = CliRunner().invoke(cli, ["keygen", str(key_file), "--no-encrypt"])
    assert result.exit_code == 3
    assert "already exists; refusing to overwrite a key" in result.stderr
    assert key_file.read_text(encoding="utf-8") == "precious"


def test_an_encrypted_key_needs_its_passphrase(index: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "locked.pem"
    env = {"PLUGINDEX_KEY_PASSPHRASE": "correct horse"}
    made = CliRunner(env=env).invoke(cli, ["keygen", str(key_file), "--encrypt"])
    assert made.exit_code == 0, made.output
    assert b"ENCRYPTED" in key_file.read_bytes()
    target = str(index / "plugins/auth-jwt/versions/1.2.0.yaml")
    wrong = CliRunner(env={"PLUGINDEX_KEY_PASSPHRASE": "wrong"}).invoke(
        cli, ["sign", target, "--key", str(key_file)]
    )
    assert wrong.exit_code == 3
    assert "passphrase is wrong" in wrong.stderr and "Traceback" not in wrong.output
    right = CliRunner(env=env).invoke(cli, ["sign", target, "--key", str(key_file)])
    assert right.exit_code == 0, right.output


# --- the build verifies every signature ------------------------------------------------


def test_build_refuses_a_version_edited_after_signing(index: Path, tmp_path: Path) -> None:
    path = index / "plugins/auth-jwt/versions/1.1.0.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("^1.0", "^1.1", 1), encoding="utf-8")
    out = tmp_path / "out"
    args = ["build", str(index), "--out", str(out), "--no-fetch"]
    result = CliRunner().invoke(cli, [*args, "--strict"])
    assert result.exit_code == 1
    line = next(
        n for n, text in enumerate(path.read_text().splitlines(), 1) if text == "signature:"
    )
    assert f"{path}:{line}: PX010 signature: the release signature does not verify" in (
        result.stderr
    )
    assert not out.exists()
    # Without --strict the rest is published, and that version is left out.
    held = CliRunner().invoke(cli, args)
    assert held.exit_code == 0, held.output
    document = json.loads((out / "index/au/th/auth-jwt.json").read_text(encoding="utf-8"))
    assert "1.1.0" not in [v["version"] for v in document["versions"]]


def test_build_refuses_a_version_signed_by_a_stranger(index: Path, tmp_path: Path) -> None:
    path = index / "plugins/auth-jwt/versions/1.1.0.yaml"
    sign_file(path, Ed25519PrivateKey.from_private_bytes(b"\x05" * 32))
    result = CliRunner().invoke(
        cli, ["build", str(index), "--out", str(tmp_path / "o"), "--strict"]
    )
    assert result.exit_code == 1
    expected = "PX010 signature: the release signature was made with a key that is not an owner"
    assert f"{expected} key of auth-jwt" in result.stderr


def test_build_publishes_who_signed_each_version(index: Path, tmp_path: Path) -> None:
    sign_as_owner(index / "plugins/auth-jwt/versions/1.1.0.yaml")  # mara, the first owner
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(index), "--out", str(out), "--no-fetch"])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "index/au/th/auth-jwt.json").read_text(encoding="utf-8"))
    mara = key_id(public_key_text(demo_key("mara-okafor")))
    by_version = {v["version"]: v for v in document["versions"]}
    assert by_version["1.1.0"]["signed_by"] == {
        "owner": "mara-okafor",
        "key_id": mara,
        "verified": True,
    }
    # The document alone is enough to check the signature again, as a client does.
    statement = statements.release_statement("plugindex-demo", "auth-jwt", by_version["1.1.0"])
    keys = [k for owner in document["owners"] for k in owner["keys"]]
    assert verify_statement(by_version["1.1.0"]["signature"], statement, keys).valid


def test_an_unsigned_yank_fails_the_build(index: Path, tmp_path: Path) -> None:
    path = index / "plugins/datasource-csv/versions/1.0.1.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("  signature:")  # the yank's block (indented), not the release's
    end = text.index("\nsignature:")
    path.write_text(text[:start] + text[end + 1 :], encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["build", str(index), "--out", str(tmp_path / "o"), "--strict"]
    )
    assert result.exit_code == 1
    assert "PX010 yanked.signature: the yank statement is not signed" in result.stderr


# --- new --------------------------------------------------------------------------------


def test_new_writes_a_valid_signed_plugin(index: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "k.pem"
    CliRunner().invoke(cli, ["keygen", str(key_file), "--no-encrypt"])
    artifact = tmp_path / "x.tar.gz"
    artifact.write_bytes(os.urandom(500))
    args = [
        "new", "session-store", "--index", str(index), "--artifact", str(artifact),
        "--url", "https://dl.example.org/x.tar.gz", "--owner", "sam-baker",
        "--key", str(key_file), "--category", "auth", "--version", "0.2.0",
    ]  # fmt: skip
    made = CliRunner().invoke(cli, args)
    assert made.exit_code == 0, made.output
    version = (index / "plugins/session-store/versions/0.2.0.yaml").read_text(encoding="utf-8")
    assert "size: 500" in version and "signature:" in version
    valid = CliRunner().invoke(cli, ["validate", str(index), "--no-fetch"])
    assert valid.exit_code == 0, valid.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 3
    assert "already exists" in again.stderr


# --- names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [
        ("auth-jwt", "auth-jwt", True),
        ("auth-jwt", "auth-jwk", True),  # substitution
        ("auth-jwt", "auth-jw", True),  # deletion
        ("auth-jwt", "auth-jwtx", True),  # insertion
        ("auth-jwt", "auth-wjt", True),  # swap of neighbours
        ("auth-jwt", "atuh-jtw", False),  # two swaps
        ("auth-jwt", "auth-basic", False),
    ],
)
def test_within_one_edit(a: str, b: str, close: bool) -> None:
    assert within_one_edit(a, b) is close
    assert within_one_edit(b, a) is close


def test_lookalikes_fold_together() -> None:
    assert skeleton("auth-jvvt") == skeleton("auth-jwt")
    assert skeleton("modern-co0l") == skeleton("modem-cool")
    assert resembled_name("csv-reader", ["auth-jwt", "template-faker"]) is None


def test_signatures_checked_in_a_worker_process_give_the_same_build(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large builds verify in a worker process, in batches; the result must not differ."""
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    build(index, tmp_path / "inline", environ=env)
    monkeypatch.setattr(verifier, "PLUGINS_BEFORE_WORKER", 0)
    monkeypatch.setattr(verifier, "BATCH", 3)  # 8 plugins: two full batches and a partial one
    build(index, tmp_path / "worker", environ=env)
    for path in (tmp_path / "inline").rglob("*.json"):
        twin = tmp_path / "worker" / path.relative_to(tmp_path / "inline")
        assert twin.read_bytes() == path.read_bytes(), path
    tampered = index / "plugins/template-faker/versions/0.5.0.yaml"
    tampered.write_text(tampered.read_text().replace("^1.0", "^1.1", 1), encoding="utf-8")
    with pytest.raises(InvalidIndexError) as refused:
        build(index, tmp_path / "again", environ=env, strict=True)
    assert [(p.file.name, p.rule) for p in refused.value.problems] == [("0.5.0.yaml", "PX010")]


@given(st.text(alphabet="0123456789abcdef", min_size=16, max_size=16))
@settings(max_examples=300, deadline=None, derandomize=True)
def test_a_key_id_is_written_so_it_reads_back_as_text(kid: str) -> None:
    """Hex key ids such as 840119474e320079 are numbers to YAML unless quoted."""
    text = "\n".join(["signature:", f"  key_id: {scalar(kid)}", ""])
    assert parse(text, "x.yaml").value == {"signature": {"key_id": kid}}


def test_the_key_id_that_read_as_infinity_is_quoted() -> None:
    assert parse(f"key_id: {scalar('840119474e320079')}\n", "x.yaml").value == {
        "key_id": "840119474e320079"
    }
