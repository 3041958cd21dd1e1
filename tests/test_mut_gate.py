"""The gate's immutability and key-standing rules, each problem in full: what a
pull-request author reads.

A real git repository (`tests.test_gate`'s helpers): the bundled index on `main`, the
pull request on `pr`. Where the rule tests elsewhere check the rule id and line, these
check every word of the message and that no input ends in an internal error.
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.authoring.sign import sign_file
from builder.trust.signing import key_id, public_key_text
from tests.conftest import demo_key
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
    without_sections,
    write,
    yank,
)
from tests.test_key_lifecycle import MARA_SIGNED, NEW, bound, retire_maras_key, revoke_maras_key

__all__ = ["repo"]  # the fixture, used by name

JAN = demo_key("jan-kowalski")  # owns auth-jwt with Mara
REPLACED = (
    "signature of a merged version was replaced, but the merged one was not made by a "
    "revoked key; only what a revoked key signed is signed again"
)


def problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{INDEX}/")]


def test_a_deleted_version_file_is_named_in_full(repo: Path) -> None:
    rel = f"{JWT}/versions/1.1.0.yaml"
    (repo / rel).unlink()
    commit(repo)
    result = gate("--author", "mara-okafor")
    assert result.exit_code == 1, result.output
    assert f"{rel}: PX112 version file deleted (1.1.0.yaml was merged and is immutable)" in (
        problems(result.stderr)
    )


def test_a_replaced_release_signature_is_named_as_a_release(repo: Path) -> None:
    rel = f"{JWT}/versions/1.2.0.yaml"
    sign_file(repo / rel, JAN)
    commit(repo)
    result = gate()
    line = line_of(repo, rel, "^signature:")
    assert f"{rel}:{line}: PX117 signature: the release {REPLACED}" in problems(result.stderr)


def test_a_replaced_yank_signature_is_named_as_a_yank(repo: Path) -> None:
    rel = f"{JWT}/versions/1.1.0.yaml"
    yank(repo, rel, serial=1, key=MARA)
    merge(repo)
    sign_file(repo / rel, JAN, yank=True)
    commit(repo)
    result = gate()
    line = line_of(repo, rel, "^  signature:")
    assert f"{rel}:{line}: PX117 yanked.signature: the yank {REPLACED}" in problems(result.stderr)


def test_a_signature_added_to_an_unsigned_merged_version_is_no_internal_error(
    repo: Path,
) -> None:
    """A merged version with no signature at all (history from before signing) stays so."""
    rel = f"{CSV}/versions/1.0.0.yaml"
    write(repo, rel, read(repo, rel).split("\nsignature:", 1)[0] + "\n")
    merge(repo)
    sign_file(repo / rel, demo_key("theo-lemaire"))
    commit(repo)
    result = gate()
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert result.exit_code == 1, result.output
    line = line_of(repo, rel, "^signature:")
    assert f"{rel}:{line}: PX117 signature: the release {REPLACED}" in problems(result.stderr)


def test_other_changed_fields_are_named_together(repo: Path) -> None:
    rel = f"{JWT}/versions/1.2.0.yaml"
    text = read(repo, rel).replace("risk_level: high", "risk_level: low")
    text = re.sub(r"(?m)^released: .*$", "released: 2024-01-02", text)
    text = re.sub(r"(?m)^  filename: .*$", "  filename: renamed.tar.gz", text)
    write(repo, rel, text)
    sign_file(repo / rel, MARA)
    commit(repo)
    found = [p for p in problems(gate().stderr) if " PX110 " in p]
    line = line_of(repo, rel, "^compliance:")
    assert found == [
        f"{rel}:{line}: PX110 compliance: changed in a merged version (compliance, released); "
        "only an owner-signed `yanked:` or `unyanked:` may change"
    ]


def test_a_renamed_artifact_alone_is_named_as_the_artifact(repo: Path) -> None:
    rel = f"{JWT}/versions/1.2.0.yaml"
    write(repo, rel, re.sub(r"(?m)^  filename: .*$", "  filename: renamed.tar.gz", read(repo, rel)))
    sign_file(repo / rel, MARA)
    commit(repo)
    found = [p for p in problems(gate().stderr) if " PX110 " in p]
    line = line_of(repo, rel, "^artifact:")
    assert found == [
        f"{rel}:{line}: PX110 artifact: changed in a merged version (artifact); "
        "only an owner-signed `yanked:` or `unyanked:` may change"
    ]


def test_a_reused_version_number_names_the_one_it_reuses(repo: Path) -> None:
    rel = add_version(repo, "auth-jwt", "1.2.0+rebuild.2", MARA, source="1.2.0.yaml")
    commit(repo)
    line = line_of(repo, rel, "^version:")
    assert (
        f"{rel}:{line}: PX114 version: version 1.2.0+rebuild.2 re-uses 1.2.0, which this "
        "plugin published before (in the base or its history)"
    ) in problems(gate("--author", "mara-okafor").stderr)


def test_version_files_are_checked_after_a_deleted_one(repo: Path) -> None:
    """1.0.0.yaml sorts first: reporting its deletion must not end the checks."""
    deleted = f"{JWT}/versions/1.0.0.yaml"
    (repo / deleted).unlink()
    rel = add_version(repo, "auth-jwt", "1.2.0+rebuild.2", MARA, source="1.2.0.yaml")
    commit(repo)
    found = problems(gate("--author", "mara-okafor").stderr)
    assert [p.split(" ", 2)[1] for p in found if deleted in p] == ["PX112"], found
    assert [p.split(" ", 2)[1] for p in found if rel in p] == ["PX114"], found


def test_a_new_version_with_an_unsigned_yank_names_its_file(repo: Path) -> None:
    rel = add_version(repo, "auth-jwt", "1.3.0", MARA)
    yank(repo, rel, serial=1, key=None)
    commit(repo)
    found = problems(gate("--author", "mara-okafor").stderr)
    assert any(p.startswith(f"{rel}:{line_of(repo, rel, '^yanked:')}: ") for p in found), found


def test_a_replaced_unyank_signature_is_named_as_an_unyank(repo: Path) -> None:
    rel = f"{CSV}/versions/1.0.1.yaml"
    write(repo, rel, without_sections(read(repo, rel), "yanked") + "unyanked:\n  serial: 2\n")
    sign_file(repo / rel, THEO, yank=True)
    merge(repo)
    sign_file(repo / rel, demo_key("mara-okafor"), yank=True)  # no owner of datasource-csv
    commit(repo)
    line = line_of(repo, rel, "^  signature:")
    assert f"{rel}:{line}: PX117 unyanked.signature: the un-yank {REPLACED}" in problems(
        gate().stderr
    )


def test_a_re_signature_by_a_stranger_is_named_as_a_release(repo: Path) -> None:
    revoke_maras_key(repo)
    merge(repo)
    rel = f"{JWT}/versions/1.2.0.yaml"
    sign_file(repo / rel, STRANGER)
    commit(repo)
    line = line_of(repo, rel, "^signature:")
    found = [p for p in problems(gate().stderr) if p.startswith(f"{rel}:{line}: PX101 ")]
    assert len(found) == 1 and " release " in found[0], found


def test_a_deleted_plugin_yaml_is_named_once(repo: Path) -> None:
    rel = f"{JWT}/plugin.yaml"
    (repo / rel).unlink()
    commit(repo)
    result = gate("--author", "mara-okafor")
    assert "Traceback" not in result.output
    assert problems(result.stderr) == [
        f"{rel}: PX113 auth-jwt exists in the base and its plugin.yaml is gone"
    ]


# --- key standing (PX106-PX108): what a change to plugin.yaml is told ------------------


def kid(key: Ed25519PrivateKey) -> str:
    return key_id(public_key_text(key))


def only_jans_change(repo: Path, revision: int) -> str:
    """A later plugin.yaml change by Jan that leaves every key as the base has it."""
    return edit_manifest(repo, "auth-jwt", lambda text: text, revision=revision, key=JAN)


def test_a_revoked_key_no_longer_listed_is_named_in_full(repo: Path) -> None:
    revoke_maras_key(repo)
    merge(repo)
    rel = edit_manifest(
        repo,
        "auth-jwt",
        lambda text: re.sub(r"(?s)    revoked_keys:\n.*?reason: .*?\n", "", text),
        revision=3,
        key=JAN,
    )
    commit(repo)
    assert [p for p in problems(gate("--author", "jan-kowalski").stderr) if " PX108 " in p] == [
        f"{rel}:{line_of(repo, rel, '^owners:')}: PX108 owners: key {kid(MARA)} was revoked in "
        "the base and is no longer listed; a revoked key stays under `revoked_keys` for good"
    ]


def test_a_revoked_key_listed_again_as_active_is_named_in_full(repo: Path) -> None:
    revoke_maras_key(repo)
    merge(repo)

    def reinstate(text: str) -> str:
        text = re.sub(r"(?s)    revoked_keys:\n.*?reason: .*?\n", "", text)
        new = f"      - {public_key_text(NEW)}\n"
        return text.replace(new, f"{new}      - {public_key_text(MARA)}\n")

    rel = edit_manifest(repo, "auth-jwt", reinstate, revision=3, key=JAN)
    commit(repo)
    assert [p for p in problems(gate("--author", "jan-kowalski").stderr) if " PX108 " in p] == [
        f"{rel}:{line_of(repo, rel, '^owners:')}: PX108 owners: key {kid(MARA)} was revoked in "
        "the base and is listed again as active or retired; a revoked key stays under "
        "`revoked_keys` for good"
    ]


def test_a_binding_to_a_version_another_key_signed_is_named_in_full(repo: Path) -> None:
    add_version(repo, "auth-jwt", "1.3.0", JAN)
    merge(repo)
    rel = retire_maras_key(repo, bound([*MARA_SIGNED, "1.3.0"]))
    commit(repo)
    line = line_of(repo, rel, r"versions: \[")
    assert problems(gate("--author", "mara-okafor").stderr) == [
        f"{rel}:{line}: PX107 owners[0].retired_keys[0].versions: binds the retired key "
        f"{kid(MARA)} to 1.3.0, but none of its statements is signed with it; list only the "
        "versions this key signed before it was retired"
    ]


def test_a_retired_key_after_an_unbound_one_is_still_checked(repo: Path) -> None:
    stranger = public_key_text(STRANGER)
    rel = retire_maras_key(
        repo,
        f"      - {public_key_text(MARA)}\n      - key: {stranger}\n        versions: [9.0.0]\n",
    )
    commit(repo)
    plain = line_of(repo, rel, "retired_keys:") + 1
    assert problems(gate("--author", "mara-okafor").stderr) == [
        f"{rel}:{plain}: PX106 owners[0].retired_keys[0]: key {kid(MARA)} is retired without "
        f"the versions it signed; write `- {{key: {public_key_text(MARA)}, versions: [...]}}` "
        f"(or run `plugindex key retire auth-jwt --old-key {public_key_text(MARA)} "
        "--key KEY_FILE`)",
        f"{rel}:{plain + 2}: PX107 owners[0].retired_keys[1].versions: binds the retired key "
        f"{kid(STRANGER)} to 9.0.0, but the plugin has no version 9.0.0; list only the "
        "versions this key signed before it was retired",
    ]


def test_an_unbound_retirement_merged_before_is_not_refused_again(repo: Path) -> None:
    """Older indexes hold plain retired keys: a later change need not bind them."""
    retire_maras_key(repo, f"      - {public_key_text(MARA)}\n")
    merge(repo)
    only_jans_change(repo, revision=3)
    commit(repo)
    result = gate("--author", "jan-kowalski")
    assert result.exit_code == 0, result.output


def test_a_binding_merged_before_is_not_checked_again(repo: Path) -> None:
    """Only what a pull request binds is checked; it is not refused for the base's bindings."""
    retire_maras_key(repo, bound([*MARA_SIGNED, "9.0.0"]))  # pushed past the gate
    merge(repo)
    only_jans_change(repo, revision=3)
    commit(repo)
    result = gate("--author", "jan-kowalski")
    assert result.exit_code == 0, result.output


def test_binding_an_unbound_retired_key_checks_every_version_it_lists(repo: Path) -> None:
    retire_maras_key(repo, f"      - {public_key_text(MARA)}\n")
    merge(repo)
    rel = edit_manifest(
        repo,
        "auth-jwt",
        lambda text: text.replace(
            f"      - {public_key_text(MARA)}\n", bound([*MARA_SIGNED, "9.0.0"])
        ),
        revision=3,
        key=JAN,
    )
    commit(repo)
    line = line_of(repo, rel, r"versions: \[")
    assert problems(gate("--author", "jan-kowalski").stderr) == [
        f"{rel}:{line}: PX107 owners[0].retired_keys[0].versions: binds the retired key "
        f"{kid(MARA)} to 9.0.0, but the plugin has no version 9.0.0; list only the "
        "versions this key signed before it was retired"
    ]
