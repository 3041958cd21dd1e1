"""The gate's immutability rules, each problem in full: what a pull-request author reads.

A real git repository (`tests.test_gate`'s helpers): the bundled index on `main`, the
pull request on `pr`. Where the rule tests elsewhere check the rule id and line, these
check every word of the message and that no input ends in an internal error.
"""

from __future__ import annotations

import re
from pathlib import Path

from builder.authoring.sign import sign_file
from tests.conftest import demo_key
from tests.test_gate import (
    CSV,
    INDEX,
    JWT,
    MARA,
    commit,
    gate,
    line_of,
    merge,
    read,
    repo,
    write,
    yank,
)

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
