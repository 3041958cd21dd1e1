"""Signed statements: fixed byte vectors for every kind, and every signed field counts.

The vectors are the exact bytes an author's key signs. If one of them changes, every
signature already published stops verifying: change them only with a new DOMAIN.
The field lists below are written out here on purpose, not read from the module, so
a field dropped from the module's tuples is caught even if the demo index is re-signed.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.trust import statements
from builder.trust.signing import (
    Check,
    KeyRing,
    Verdict,
    describe,
    key_id,
    owner_keys,
    public_key_text,
    raw_public_key,
    sign_statement,
    verify_statement,
)

KEY = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
PUBLIC = public_key_text(KEY)
SHA = "ab" * 32
ENTRY: dict[str, Any] = {
    "version": "1.0.0",
    "released": "2024-01-01",
    "artifact": {
        "url": "https://x.example/a.tgz",
        "sha256": SHA,
        "size": 10,
        "filename": "a.tgz",
    },
    "dependencies": [{"name": "dep", "req": "^1", "kind": "runtime"}],
    "compatibility": {"host": "^3", "plugin_api": "^1"},
    "engine": "python",
    "formats": ["gltf"],
    "compliance": {"risk_level": "low"},
}
MANIFEST: dict[str, Any] = {
    "name": "plug",
    "display_name": "Plug",
    "description": "d",
    "authors": ["A"],
    "license": "MIT",
    "homepage": "https://h",
    "repository": "https://r",
    "keywords": ["k"],
    "categories": ["c"],
    "owners": [{"github": "jan", "keys": ["ed25519:x"]}],
    "readme": "README.md",
    "revision": 2,
}

RELEASE_VECTOR = (
    b"plugindex-statement/1 release\n"
    b'{"artifact":{"filename":"a.tgz","sha256":"' + SHA.encode() + b'","size":10,'
    b'"url":"https://x.example/a.tgz"},"compatibility":{"host":"^3","plugin_api":"^1"},'
    b'"compliance":{"risk_level":"low"},"dependencies":[{"kind":"runtime","name":"dep",'
    b'"req":"^1"}],"engine":"python","formats":["gltf"],"kind":"release","plugin":"plug",'
    b'"registry":"reg","released":"2024-01-01","version":"1.0.0"}'
)
YANK_VECTOR = (
    b"plugindex-statement/1 yank\n"
    b'{"kind":"yank","plugin":"plug","reason":"broken \xc3\xa9","registry":"reg","serial":2,'
    b'"sha256":"' + SHA.encode() + b'","version":"1.0.0"}'
)
UNYANK_VECTOR = (
    b"plugindex-statement/1 unyank\n"
    b'{"kind":"unyank","plugin":"plug","registry":"reg","serial":3,'
    b'"sha256":"' + SHA.encode() + b'","version":"1.0.0"}'
)
MANIFEST_VECTOR = (
    b"plugindex-statement/1 manifest\n"
    b'{"authors":["A"],"categories":["c"],"description":"d","display_name":"Plug",'
    b'"homepage":"https://h","keywords":["k"],"kind":"manifest","license":"MIT",'
    b'"name":"plug","owners":[{"github":"jan","keys":["ed25519:x"]}],"plugin":"plug",'
    b'"readme":"README.md","registry":"reg","repository":"https://r","revision":2}'
)
# Ed25519 is deterministic: the same key and bytes always give this signature.
RELEASE_SIGNATURE = (
    "lbaIX6Kv0Wtl7eT+j6jlmLhW95hJib8sPsC1LKtmmHuIl4W/yFCQca3Siu1n6CTSxBZKTN2Lm9AVa8VTUrQyCg=="
)


# --- fixed vectors ----------------------------------------------------------------------


def test_release_statement_bytes_are_fixed() -> None:
    assert statements.release_statement("reg", "plug", ENTRY) == RELEASE_VECTOR


def test_yank_statement_bytes_are_fixed() -> None:
    """Non-ASCII text is signed as UTF-8, not as \\u escapes."""
    got = statements.yank_statement("reg", "plug", "1.0.0", sha256=SHA, reason="broken é", serial=2)
    assert got == YANK_VECTOR


def test_unyank_statement_bytes_are_fixed() -> None:
    got = statements.unyank_statement("reg", "plug", "1.0.0", sha256=SHA, serial=3)
    assert got == UNYANK_VECTOR


def test_manifest_statement_bytes_are_fixed() -> None:
    assert statements.manifest_statement("reg", MANIFEST) == MANIFEST_VECTOR


def test_release_signature_and_key_id_are_fixed() -> None:
    block = sign_statement(KEY, RELEASE_VECTOR)
    assert block == {
        "algorithm": "ed25519",
        "key_id": "34750f98bd59fcfc",
        "value": RELEASE_SIGNATURE,
    }
    assert PUBLIC == "ed25519:iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
    assert verify_statement(block, RELEASE_VECTOR, [PUBLIC]) == Check(Verdict.VALID, PUBLIC)


def test_canonical_json_sorts_keys_keeps_utf8_and_drops_whitespace() -> None:
    assert statements.canonical_json({"b": [1, {"d": 1, "c": 2}], "a": "é"}) == (
        '{"a":"é","b":[1,{"c":2,"d":1}]}'.encode()
    )


def test_a_statement_keeps_kind_registry_and_plugin_over_the_body() -> None:
    """The body can not overwrite who or what the statement is about."""
    got = statements.statement("yank", "reg", "plug", {"version": "1"})
    assert got == (
        b'plugindex-statement/1 yank\n{"kind":"yank","plugin":"plug","registry":"reg",'
        b'"version":"1"}'
    )


def test_fields_outside_the_release_are_not_signed() -> None:
    extra = {**ENTRY, "download": "x", "yanked": {"reason": "r"}, "signature": {"v": 1}}
    assert statements.release_statement("reg", "plug", extra) == RELEASE_VECTOR


def test_a_missing_optional_release_field_is_signed_as_null() -> None:
    entry = {key: value for key, value in ENTRY.items() if key != "compliance"}
    assert b'"compliance":null' in statements.release_statement("reg", "plug", entry)


# --- every signed field counts ----------------------------------------------------------

SIGNED_RELEASE_FIELDS = [
    ("version", "1.0.1"),
    ("released", "2024-01-02"),
    ("dependencies", []),
    ("compatibility", {"host": "*", "plugin_api": "^1"}),
    ("engine", "lua"),
    ("formats", []),
    ("compliance", {"risk_level": "high"}),
]
SIGNED_ARTIFACT_FIELDS = [
    ("url", "https://evil.example/a.tgz"),
    ("sha256", "cd" * 32),
    ("size", 11),
    ("filename", "b.tgz"),
]


@pytest.mark.parametrize(
    ("field", "value"), SIGNED_RELEASE_FIELDS, ids=[f for f, _ in SIGNED_RELEASE_FIELDS]
)
def test_changing_a_release_field_changes_the_bytes(field: str, value: object) -> None:
    changed = {**ENTRY, field: value}
    assert statements.release_statement("reg", "plug", changed) != RELEASE_VECTOR


@pytest.mark.parametrize(
    ("field", "value"), SIGNED_ARTIFACT_FIELDS, ids=[f for f, _ in SIGNED_ARTIFACT_FIELDS]
)
def test_changing_an_artifact_field_changes_the_bytes(field: str, value: object) -> None:
    changed = copy.deepcopy(ENTRY)
    changed["artifact"][field] = value
    assert statements.release_statement("reg", "plug", changed) != RELEASE_VECTOR


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "plug2"),
        ("display_name", "Other"),
        ("description", "e"),
        ("authors", ["B"]),
        ("license", "GPL-3.0"),
        ("homepage", "https://evil"),
        ("repository", "https://evil"),
        ("keywords", []),
        ("categories", []),
        ("owners", [{"github": "mallory", "keys": ["ed25519:y"]}]),
        ("readme", "OTHER.md"),
        ("revision", 3),
    ],
)
def test_changing_a_manifest_field_changes_the_bytes(field: str, value: object) -> None:
    changed = {**MANIFEST, field: value}
    assert statements.manifest_statement("reg", changed) != MANIFEST_VECTOR


def test_dropping_the_owners_changes_the_manifest_bytes() -> None:
    """A plugin.yaml signature covers who owns the plugin."""
    changed = {key: value for key, value in MANIFEST.items() if key != "owners"}
    assert statements.manifest_statement("reg", changed) != MANIFEST_VECTOR
    assert b'"owners":null' in statements.manifest_statement("reg", changed)


@pytest.mark.parametrize(
    "changed",
    [
        {"registry": "other"},
        {"plugin": "other"},
        {"version": "1.0.1"},
        {"sha256": "cd" * 32},
        {"reason": "other"},
        {"serial": 3},
    ],
    ids=lambda d: next(iter(d)),
)
def test_changing_a_yank_field_changes_the_bytes(changed: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "registry": "reg",
        "plugin": "plug",
        "version": "1.0.0",
        "sha256": SHA,
        "reason": "broken é",
        "serial": 2,
    } | changed
    got = statements.yank_statement(
        args["registry"],
        args["plugin"],
        args["version"],
        sha256=args["sha256"],
        reason=args["reason"],
        serial=args["serial"],
    )
    assert got != YANK_VECTOR


@pytest.mark.parametrize(
    "changed",
    [
        {"registry": "other"},
        {"plugin": "other"},
        {"version": "1.0.1"},
        {"sha256": "cd" * 32},
        {"serial": 2},
    ],
    ids=lambda d: next(iter(d)),
)
def test_changing_an_unyank_field_changes_the_bytes(changed: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "registry": "reg",
        "plugin": "plug",
        "version": "1.0.0",
        "sha256": SHA,
        "serial": 3,
    } | changed
    got = statements.unyank_statement(
        args["registry"],
        args["plugin"],
        args["version"],
        sha256=args["sha256"],
        serial=args["serial"],
    )
    assert got != UNYANK_VECTOR


def test_a_yank_and_an_unyank_with_the_same_fields_differ() -> None:
    yank = statements.yank_statement("reg", "p", "1.0.0", sha256=SHA, reason="", serial=1)
    unyank = statements.unyank_statement("reg", "p", "1.0.0", sha256=SHA, serial=1)
    assert yank.split(b"\n")[0] != unyank.split(b"\n")[0]


# --- keys and verdicts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rsa:AAAA", "expected ed25519:<base64>"),
        ("ed25519:not base64!", "expected base64 after ed25519:"),
        ("ed25519:" + base64.b64encode(b"\x00" * 31).decode(), "expected 32 key bytes, got 31"),
        ("ed25519:" + base64.b64encode(b"\x00" * 33).decode(), "expected 32 key bytes, got 33"),
    ],
    ids=["prefix", "base64", "short", "long"],
)
def test_a_malformed_public_key_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        raw_public_key(text)


def test_a_public_key_round_trips_from_private_and_public_halves() -> None:
    assert public_key_text(KEY.public_key()) == PUBLIC
    assert raw_public_key(PUBLIC) == base64.b64decode(PUBLIC.removeprefix("ed25519:"))


def test_a_key_ring_skips_what_is_not_a_key_and_finds_keys_by_computed_id() -> None:
    other = public_key_text(Ed25519PrivateKey.from_private_bytes(b"\x02" * 32))
    ring = KeyRing(["ed25519:junk", PUBLIC, other])
    assert [text for text, _ in ring.with_id(key_id(PUBLIC))] == [PUBLIC]
    assert [text for text, _ in ring.with_id(key_id(other))] == [other]
    assert ring.with_id("0" * 16) == []


def test_every_allowed_key_with_the_named_id_is_tried() -> None:
    """A key listed twice (or an id collision) still verifies with the right one."""
    block = sign_statement(KEY, b"x")
    assert verify_statement(block, b"x", KeyRing([PUBLIC, PUBLIC])).verdict is Verdict.VALID


@pytest.mark.parametrize(
    "block",
    [
        {"algorithm": "rsa", "key_id": "34750f98bd59fcfc", "value": RELEASE_SIGNATURE},
        {"key_id": "34750f98bd59fcfc", "value": RELEASE_SIGNATURE},
        {"algorithm": "ed25519", "key_id": "34750f98bd59fcfc"},
        {"algorithm": "ed25519", "value": RELEASE_SIGNATURE},
        {"algorithm": "ed25519", "key_id": "34750f98bd59fcfc", "value": "not base64!"},
        {"algorithm": "ed25519", "key_id": "34750f98bd59fcfc", "value": 5},
    ],
    ids=["algorithm", "no-algorithm", "no-value", "no-key-id", "not-base64", "not-text"],
)
def test_a_malformed_signature_block_is_malformed(block: dict[str, Any]) -> None:
    check = verify_statement(block, RELEASE_VECTOR, [PUBLIC])
    assert check == Check(Verdict.MALFORMED)
    assert not check.valid


def test_a_bad_signature_names_the_key_it_was_checked_against() -> None:
    block = sign_statement(KEY, b"other bytes")
    check = verify_statement(block, RELEASE_VECTOR, KeyRing([PUBLIC]))
    assert check == Check(Verdict.BAD_SIGNATURE, PUBLIC)
    assert not check.valid


def test_only_a_valid_check_is_valid() -> None:
    assert Check(Verdict.VALID, PUBLIC).valid
    for verdict in Verdict:
        if verdict is not Verdict.VALID:
            assert not Check(verdict).valid


@pytest.mark.parametrize(
    ("check", "sentence"),
    [
        (
            Check(Verdict.MISSING),
            "the release statement is not signed "
            "(sign it with `plugindex sign` and an owner's key)",
        ),
        (
            Check(Verdict.UNKNOWN_KEY),
            "the release signature was made with a key that is not an owner key of plug",
        ),
        (
            Check(Verdict.BAD_SIGNATURE),
            "the release signature does not verify: the signed statement differs from this one",
        ),
        (Check(Verdict.MALFORMED), "the release signature is malformed"),
    ],
    ids=["missing", "unknown", "bad", "malformed"],
)
def test_describe_says_why_a_signature_was_refused(check: Check, sentence: str) -> None:
    assert describe(check, "release", "plug") == sentence


class _Owner:
    def __init__(self, github: str, keys: list[str], retired: list[str]) -> None:
        self.github = github
        self.keys = keys
        self.retired_keys = retired


def test_owner_keys_include_retired_keys_only_when_asked() -> None:
    owners = [_Owner("jan", ["k1"], ["old"]), _Owner("eva", ["k2", "k1"], [])]
    assert owner_keys(owners, retired=False) == {"k1": "jan", "k2": "eva"}
    assert owner_keys(owners, retired=True) == {"k1": "jan", "old": "jan", "k2": "eva"}


def test_a_deprecation_is_signed_only_when_present() -> None:
    """Older plugin.yaml signatures stay valid; a present deprecation is signed as is."""
    assert statements.manifest_statement("reg", {**MANIFEST, "deprecated": None}) == (
        MANIFEST_VECTOR
    )
    deprecated = {"message": "use plug2", "replacement": "plug2"}
    got = statements.manifest_statement("reg", {**MANIFEST, "deprecated": deprecated})
    assert b'"deprecated":{"message":"use plug2","replacement":"plug2"}' in got
    other = {**deprecated, "replacement": "evil"}
    assert statements.manifest_statement("reg", {**MANIFEST, "deprecated": other}) != got


def test_a_refused_key_is_quoted_up_to_60_characters() -> None:
    text = "rsa:" + "A" * 100
    with pytest.raises(ValueError, match="expected") as caught:
        raw_public_key(text)
    assert str(caught.value) == f"expected ed25519:<base64>, got {text[:60]!r}"
    bad = "ed25519:" + "!" * 100
    with pytest.raises(ValueError, match="expected") as caught:
        raw_public_key(bad)
    assert str(caught.value) == f"expected base64 after ed25519:, got {bad[:60]!r}"


def test_a_key_with_characters_outside_base64_is_refused() -> None:
    """Lenient decoding would drop the stray character and accept the key."""
    encoded = PUBLIC.removeprefix("ed25519:")
    with pytest.raises(ValueError, match="expected base64 after ed25519:"):
        raw_public_key(f"ed25519:{encoded[:10]}*{encoded[10:]}")


def test_a_signature_with_characters_outside_base64_is_malformed() -> None:
    block = sign_statement(KEY, RELEASE_VECTOR)
    stray = {**block, "value": block["value"][:10] + "\n" + block["value"][10:]}
    assert verify_statement(stray, RELEASE_VECTOR, [PUBLIC]) == Check(Verdict.MALFORMED)


# Bound retired keys and revoked keys (docs/format.md §8.5): signed as the published
# owner has them, `retired_versions` and `revoked_keys` beside the key lists.
BOUND_OWNERS = [
    {
        "github": "jan",
        "keys": ["ed25519:y"],
        "retired_keys": ["ed25519:x"],
        "retired_versions": {"ed25519:x": ["1.0.0", "1.1.0"]},
        "revoked_keys": [{"key": "ed25519:z", "reason": "lost"}],
    }
]
BOUND_MANIFEST_VECTOR = (
    b"plugindex-statement/1 manifest\n"
    b'{"authors":["A"],"categories":["c"],"description":"d","display_name":"Plug",'
    b'"homepage":"https://h","keywords":["k"],"kind":"manifest","license":"MIT",'
    b'"name":"plug","owners":[{"github":"jan","keys":["ed25519:y"],"retired_keys":'
    b'["ed25519:x"],"retired_versions":{"ed25519:x":["1.0.0","1.1.0"]},"revoked_keys":'
    b'[{"key":"ed25519:z","reason":"lost"}]}],"plugin":"plug","readme":"README.md",'
    b'"registry":"reg","repository":"https://r","revision":2}'
)


def test_manifest_statement_with_bound_and_revoked_keys_is_fixed() -> None:
    got = statements.manifest_statement("reg", {**MANIFEST, "owners": BOUND_OWNERS})
    assert got == BOUND_MANIFEST_VECTOR


@pytest.mark.parametrize(
    "change",
    [
        {"retired_versions": {"ed25519:x": ["1.0.0", "1.1.0", "9.0.0"]}},
        {"revoked_keys": []},
        {"revoked_keys": [{"key": "ed25519:z", "reason": "found again"}]},
    ],
    ids=["binding-widened", "revocation-dropped", "reason-changed"],
)
def test_a_binding_or_a_revocation_is_signed(change: dict[str, Any]) -> None:
    owners = [{**BOUND_OWNERS[0], **change}]
    got = statements.manifest_statement("reg", {**MANIFEST, "owners": owners})
    assert got != BOUND_MANIFEST_VECTOR


class _Entry:
    def __init__(self, key: str) -> None:
        self.key = key


class _OwnerWithStanding(_Owner):
    def __init__(
        self, github: str, keys: list[str], retired: list[Any], revoked: list[Any]
    ) -> None:
        super().__init__(github, keys, retired)
        self.revoked_keys = revoked


def test_owner_keys_read_retired_and_revoked_entries_too() -> None:
    owner = _OwnerWithStanding("jan", ["k1"], [_Entry("old"), "older"], [_Entry("lost")])
    assert owner_keys([owner], retired=True) == {
        "k1": "jan",
        "old": "jan",
        "older": "jan",
        "lost": "jan",
    }
    assert owner_keys([owner], retired=False) == {"k1": "jan"}


@pytest.mark.parametrize(
    ("check", "sentence"),
    [
        (
            Check(Verdict.REVOKED_KEY, PUBLIC, "the laptop was stolen"),
            "the release signature was made with a key its owner revoked: key "
            "34750f98bd59fcfc (the laptop was stolen)",
        ),
        (
            Check(Verdict.RETIRED_KEY, PUBLIC),
            "the release signature was made with a retired key that its owner did not bind "
            "to this version: key 34750f98bd59fcfc",
        ),
        (
            Check(Verdict.REVOKED_KEY, "ed25519:junk"),
            "the release signature was made with a key its owner revoked: a malformed key",
        ),
        (
            Check(Verdict.REVOKED_KEY),
            "the release signature was made with a key its owner revoked",
        ),
        (
            Check(Verdict.BAD_SIGNATURE, PUBLIC, "a note"),
            "the release signature does not verify: the signed statement differs from this one",
        ),
    ],
    ids=["revoked", "retired", "malformed", "no-key", "bad-with-key"],
)
def test_describe_names_the_key_whose_power_ended(check: Check, sentence: str) -> None:
    assert describe(check, "release", "plug") == sentence
