"""The pull-request gate's security rules at their edges, including real downloads.

Every other gate test passes `--no-fetch`; here the gate downloads a new version's
remote artifact from a local HTTP server and compares it with the manifest. The
repository is the bundled index committed on `main`, with branch `pr` checked out.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.authoring.sign import sign_file
from builder.cli.main import cli
from builder.format.strict_yaml import parse
from builder.trust.signing import key_id, public_key_text, sign_statement
from tests.conftest import BUNDLED_INDEX, demo_key

INDEX = "registry-index"
JWT = f"{INDEX}/plugins/auth-jwt"
CSV = f"{INDEX}/plugins/datasource-csv"
MARA = demo_key("mara-okafor")  # owns auth-jwt
THEO = demo_key("theo-lemaire")  # owns datasource-csv
BODY = b"a remote artifact, served over HTTP by the test\n" * 4


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def commit(repo: Path, message: str = "pr") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The bundled index on `main`, http artifact URLs allowed; branch `pr` checked out."""
    root = tmp_path / "repo"
    shutil.copytree(BUNDLED_INDEX, root / INDEX)
    registry = root / INDEX / "registry.yaml"
    text = registry.read_text(encoding="utf-8")
    registry.write_text(
        # Artifacts come from this machine: allowed by the registry's own switch.
        text.replace(
            "allowed_url_schemes: [https]",
            "allowed_url_schemes: [https, http]\n  allow_private_addresses: true",
        ),
        encoding="utf-8",
    )
    git(root, "init", "-q", "-b", "main")
    commit(root, "base")
    git(root, "checkout", "-q", "-b", "pr")
    monkeypatch.chdir(root)
    return root


def gate(*extra: str) -> Result:
    return CliRunner().invoke(cli, ["validate", INDEX, "--base", "main", *extra])


def edit(repo: Path, rel: str, change: Callable[[str], str]) -> None:
    path = repo / rel
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")


def line_of(repo: Path, rel: str, pattern: str) -> int:
    for number, line in enumerate((repo / rel).read_text(encoding="utf-8").splitlines(), 1):
        if re.search(pattern, line):
            return number
    raise AssertionError(f"{pattern!r} not in {rel}")


# --- remote artifacts are downloaded and compared ---------------------------------------


def add_remote_version(repo: Path, url: str, body: bytes, *, size: int | None = None) -> str:
    """Add auth-jwt 1.3.0 whose artifact is `url`, declared as `body` (or `size`)."""
    source = (repo / JWT / "versions/1.2.0.yaml").read_text(encoding="utf-8")
    text = source.split("\nsignature:", 1)[0] + "\n"
    text = text.replace("version: 1.2.0", "version: 1.3.0")
    text = re.sub(r"(?m)^  url: .*$", f"  url: {url}", text)
    text = re.sub(r"(?m)^  sha256: .*$", f"  sha256: {hashlib.sha256(body).hexdigest()}", text)
    text = re.sub(r"(?m)^  size: .*$", f"  size: {size or len(body)}", text)
    text = re.sub(r"(?m)^  filename: .*$", "  filename: auth-jwt-1.3.0.tar.gz", text)
    rel = f"{JWT}/versions/1.3.0.yaml"
    (repo / rel).write_text(text, encoding="utf-8")
    sign_file(repo / rel, MARA)
    return rel


def serve(serve_dir: Callable[[Path], str], tmp_path: Path, body: bytes) -> str:
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "a.tar.gz").write_bytes(body)
    return serve_dir(folder) + "a.tar.gz"


def test_a_new_remote_artifact_that_matches_passes(
    repo: Path, tmp_path: Path, serve_dir: Callable[[Path], str]
) -> None:
    add_remote_version(repo, serve(serve_dir, tmp_path, BODY), BODY)
    commit(repo)
    result = gate("--author", "mara-okafor")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("served", "field"),
    [
        (BODY[:-1], "size"),  # smaller than declared
        (BODY + b"x", "size"),  # larger than declared
        (bytes(len(BODY)), "sha256"),  # same size, other bytes
    ],
    ids=["smaller", "larger", "other-bytes"],
)
def test_a_new_remote_artifact_that_differs_is_refused(
    repo: Path, tmp_path: Path, serve_dir: Callable[[Path], str], served: bytes, field: str
) -> None:
    """The gate downloads new remote artifacts; a mismatch names the manifest's line."""
    rel = add_remote_version(repo, serve(serve_dir, tmp_path, served), BODY)
    commit(repo)
    result = gate("--author", "mara-okafor")
    assert result.exit_code == 1, result.output
    where = f"{rel}:{line_of(repo, rel, rf'^  {field}:')}: "
    assert any(line.startswith(where) for line in result.stderr.splitlines()), result.output
    assert "Traceback" not in result.output


def test_no_fetch_skips_the_download(
    repo: Path, tmp_path: Path, serve_dir: Callable[[Path], str]
) -> None:
    add_remote_version(repo, serve(serve_dir, tmp_path, BODY[:-1]), BODY)
    commit(repo)
    assert gate("--author", "mara-okafor", "--no-fetch").exit_code == 0


def test_an_unreachable_remote_artifact_names_the_url_line(repo: Path) -> None:
    rel = add_remote_version(repo, "http://127.0.0.1:9/a.tar.gz", BODY)
    commit(repo)
    result = gate("--author", "mara-okafor")
    assert result.exit_code == 1, result.output
    assert f"{rel}:{line_of(repo, rel, r'^  url:')}: " in result.stderr


# --- a merged version never changes -----------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "replacement"),
    [(r"(?m)^  size: 336$", "  size: 337"), (r"(?m)^  filename: .*$", "  filename: other.tgz")],
    ids=["size", "filename"],
)
def test_a_merged_versions_artifact_may_not_change(
    repo: Path, pattern: str, replacement: str
) -> None:
    rel = f"{JWT}/versions/1.2.0.yaml"
    edit(repo, rel, lambda text: re.sub(pattern, replacement, text))
    sign_file(repo / rel, MARA)
    commit(repo)
    result = gate("--author", "mara-okafor", "--no-fetch")
    assert result.exit_code == 1, result.output
    assert re.search(rf"{rel}:\d+: PX11[01] ", result.stderr), result.output


def test_a_merged_versions_size_change_is_px111(repo: Path) -> None:
    """Mutant: `size` dropped from the fields that identify the artifact's bytes."""
    rel = f"{JWT}/versions/1.2.0.yaml"
    edit(repo, rel, lambda text: text.replace("  size: 336\n", "  size: 337\n"))
    sign_file(repo / rel, MARA)
    commit(repo)
    stderr = gate("--author", "mara-okafor", "--no-fetch").stderr
    assert "PX111" in stderr
    assert "changed in a merged version (was 336, now 337)" in stderr


# --- plugin.yaml revisions --------------------------------------------------------------


@pytest.mark.parametrize("revision", [3, 1], ids=["jump-by-two", "same"])
def test_plugin_yaml_revision_must_rise_by_exactly_one(repo: Path, revision: int) -> None:
    rel = f"{JWT}/plugin.yaml"
    edit(
        repo,
        rel,
        lambda text: (
            re.sub(r"(?m)^revision: .*\n", "", text.split("\nsignature:", 1)[0] + "\n").replace(
                "keywords: [jwt,", "keywords: [jwt, bearer,"
            )
            + f"revision: {revision}\n"
        ),
    )
    sign_file(repo / rel, MARA)
    commit(repo)
    result = gate("--author", "mara-okafor", "--no-fetch")
    assert result.exit_code == 1, result.output
    assert (
        f"{rel}:{line_of(repo, rel, r'^revision:')}: PX105 revision: plugin.yaml changed, so its "
        f"revision must be 2 (the base's plus one); got {revision}"
    ) in result.stderr


def test_plugin_yaml_revision_raised_by_one_and_signed_passes(repo: Path) -> None:
    rel = f"{JWT}/plugin.yaml"
    edit(
        repo,
        rel,
        lambda text: (
            text.split("\nsignature:", 1)[0].replace("keywords: [jwt,", "keywords: [jwt, bearer,")
            + "\nrevision: 2\n"
        ),
    )
    sign_file(repo / rel, MARA)
    commit(repo)
    result = gate("--author", "mara-okafor", "--no-fetch")
    assert result.exit_code == 0, result.output


# --- yank serials -----------------------------------------------------------------------


def test_an_unyank_with_the_yanks_own_serial_is_refused(repo: Path) -> None:
    """The base yanked 1.0.1 with serial 1; an un-yank must raise it to 2 or more."""
    rel = f"{CSV}/versions/1.0.1.yaml"
    text = (repo / rel).read_text(encoding="utf-8")
    head = text.split("# Yanked:", 1)[0]
    (repo / rel).write_text(head + "unyanked:\n  serial: 1\n", encoding="utf-8")
    sign_file(repo / rel, THEO, yank=True)
    commit(repo)
    result = gate("--author", "theo-lemaire", "--no-fetch")
    assert result.exit_code == 1, result.output
    assert "PX120" in result.stderr


# --- signing a yanked version -----------------------------------------------------------


def test_re_signing_a_yanked_version_keeps_its_yank_signature(tmp_path: Path) -> None:
    """Signing the release again keeps one top-level `signature:` and the yank's own."""
    index = tmp_path / INDEX
    shutil.copytree(BUNDLED_INDEX, index)
    path = index / "plugins/datasource-csv/versions/1.0.1.yaml"
    before = parse(path.read_text(encoding="utf-8"), str(path)).value
    sign_file(path, THEO)
    sign_file(path, THEO, yank=True)
    sign_file(path, THEO)
    text = path.read_text(encoding="utf-8")
    after = parse(text, str(path)).value  # a duplicate key would be refused here
    assert after["yanked"]["signature"] == before["yanked"]["signature"]
    assert after["signature"] == before["signature"]
    assert len(re.findall(r"(?m)^signature:", text)) == 1
    assert len(re.findall(r"(?m)^  signature:", text)) == 1


def test_signing_a_yank_written_after_the_release_signature(tmp_path: Path) -> None:
    index = tmp_path / INDEX
    shutil.copytree(BUNDLED_INDEX, index)
    path = index / "plugins/auth-jwt/versions/1.1.0.yaml"
    text = path.read_text(encoding="utf-8").rstrip("\n")
    path.write_text(text + "\nyanked:\n  reason: broken\n  serial: 1\n", encoding="utf-8")
    sign_file(path, MARA, yank=True)
    sign_file(path, MARA)
    value = parse(path.read_text(encoding="utf-8"), str(path)).value
    assert set(value["yanked"]) == {"reason", "serial", "signature"}
    assert set(value["signature"]) == {"algorithm", "key_id", "value"}


# --- messages of the ownership rules, in full --------------------------------------------

STRANGER = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)


def stderr_line(result: Result, rel: str, rule: str = "") -> str:
    """Return the one problem line the gate printed for `rel` (with `rule`, if given)."""
    found = [
        text
        for text in result.stderr.splitlines()
        if text.startswith(rel) and (not rule or f" {rule} " in f" {text} ")
    ]
    assert len(found) == 1, result.stderr
    return found[0]


def _manifest_change(repo: Path, key: Ed25519PrivateKey | None) -> str:
    rel = f"{JWT}/plugin.yaml"
    edit(
        repo,
        rel,
        lambda text: (
            text.split("\nsignature:", 1)[0].replace("keywords: [jwt,", "keywords: [jwt, bearer,")
            + "\nrevision: 2\n"
        ),
    )
    if key is not None:
        sign_file(repo / rel, key)
    commit(repo)
    return rel


def test_a_pull_request_from_a_non_owner_names_the_owners(repo: Path) -> None:
    rel = _manifest_change(repo, MARA)
    result = gate("--author", "mallory", "--no-fetch")
    assert stderr_line(result, rel).endswith(
        "PX102 owners: the pull request's author 'mallory' is not an owner of auth-jwt "
        "(owners: mara-okafor, jan-kowalski)"
    )


def test_an_unsigned_plugin_yaml_change_is_px104(repo: Path) -> None:
    rel = _manifest_change(repo, None)
    line = stderr_line(gate("--author", "mara-okafor", "--no-fetch"), rel)
    assert line.endswith("PX104 signature: the change is not signed")


def test_a_plugin_yaml_change_signed_by_a_stranger_names_its_key_id(repo: Path) -> None:
    rel = _manifest_change(repo, STRANGER)
    line = stderr_line(gate("--author", "mara-okafor", "--no-fetch"), rel)
    assert line.endswith(
        "PX101 signature: the change is signed with a key that is not an active key of an "
        f"owner of auth-jwt in the base (key id {key_id(public_key_text(STRANGER))})"
    )


def _version_with_signature(repo: Path, block: str) -> str:
    source = (repo / JWT / "versions/1.2.0.yaml").read_text(encoding="utf-8")
    text = source.split("\nsignature:", 1)[0].replace("version: 1.2.0", "version: 1.3.0")
    rel = f"{JWT}/versions/1.3.0.yaml"
    (repo / rel).write_text(text + "\n" + block, encoding="utf-8")
    commit(repo)
    return rel


def _signature_block(path: Path, *, nested: bool = False) -> str:
    text = path.read_text(encoding="utf-8")
    block = text[text.index("\n  signature:" if nested else "\nsignature:") + 1 :]
    lines = block.splitlines()[:4]
    return "\n".join(line[2:] if nested else line for line in lines) + "\n"


def test_a_plugin_yaml_signature_copied_into_a_version_is_named(repo: Path) -> None:
    sign_file(repo / JWT / "plugin.yaml", MARA)  # now plugin.yaml carries a signature
    block = _signature_block(repo / JWT / "plugin.yaml")
    rel = _version_with_signature(repo, block)
    line = stderr_line(gate("--author", "mara-okafor", "--no-fetch"), rel)
    assert line.endswith(
        "PX103 signature: the release signature does not verify over this file's statement "
        "(it is the plugin.yaml signature of plugin.yaml, copied)"
    )


def test_a_bad_signature_copied_from_nowhere_has_no_hint(repo: Path) -> None:
    signed = sign_statement(MARA, b"some other statement")
    block = "signature:\n" + "".join(
        f"  {k}: {signed[k]}\n" for k in ("algorithm", "key_id", "value")
    )
    rel = _version_with_signature(repo, block)
    line = stderr_line(gate("--author", "mara-okafor", "--no-fetch"), rel)
    assert line.endswith(
        "PX103 signature: the release signature does not verify over this file's statement"
    )


def test_a_files_own_yank_signature_reused_as_its_release_is_named(repo: Path) -> None:
    """The same file's other signature places are searched too, only its own is skipped."""
    rel = f"{CSV}/versions/1.0.3.yaml"
    source = (repo / CSV / "versions/1.0.2.yaml").read_text(encoding="utf-8")
    text = source.split("\nsignature:", 1)[0].replace("version: 1.0.2", "version: 1.0.3")
    text = text.rstrip("\n") + "\nyanked:\n  reason: broken\n  serial: 1\n"
    (repo / rel).write_text(text, encoding="utf-8")
    sign_file(repo / rel, THEO, yank=True)
    yank_block = _signature_block(repo / rel, nested=True)
    (repo / rel).write_text((repo / rel).read_text(encoding="utf-8") + yank_block, encoding="utf-8")
    commit(repo)
    line = stderr_line(gate("--author", "theo-lemaire", "--no-fetch"), rel)
    assert line.endswith("(it is the yank signature of 1.0.3.yaml, copied)")


# --- messages of the yank rules, in full -------------------------------------------------

PRIYA = demo_key("priya-rao")  # owns observability-otel


def test_a_yank_that_strands_a_dependent_names_it(repo: Path) -> None:
    rel = f"{INDEX}/plugins/observability-otel/versions/0.3.0.yaml"
    text = (repo / rel).read_text(encoding="utf-8").rstrip("\n")
    (repo / rel).write_text(text + "\nyanked:\n  reason: broken\n  serial: 1\n", encoding="utf-8")
    sign_file(repo / rel, PRIYA, yank=True)
    commit(repo)
    stderr = gate("--author", "priya-rao", "--no-fetch").stderr
    where = f"{rel}:{line_of(repo, rel, r'^yanked:')}: PX122 yanked: yanking 0.3.0 leaves "
    tail = " with no version of observability-otel it accepts; release a fixed version first"
    for dependent in ("auth-jwt/versions/2.0.0-rc.1", "protocol-grpc/versions/0.9.0"):
        assert re.search(
            re.escape(f"{where}{INDEX}/plugins/{dependent}.yaml:") + r"\d+" + re.escape(tail),
            stderr,
        ), stderr


def test_a_yank_taken_back_without_an_unyank_is_named_in_full(repo: Path) -> None:
    rel = f"{CSV}/versions/1.0.1.yaml"
    text = (repo / rel).read_text(encoding="utf-8")
    (repo / rel).write_text(text.split("# Yanked:", 1)[0], encoding="utf-8")
    commit(repo)
    line = stderr_line(gate("--author", "theo-lemaire", "--no-fetch"), rel, "PX121")
    assert line == (
        f"{rel}:{line_of(repo, rel, r'^version:')}: PX121 version: the yank was removed "
        "without an `unyanked:` section signed by an owner"
    )


def test_a_replayed_serial_is_named_in_full(repo: Path) -> None:
    rel = f"{CSV}/versions/1.0.1.yaml"
    head = (repo / rel).read_text(encoding="utf-8").split("# Yanked:", 1)[0]
    (repo / rel).write_text(head + "unyanked:\n  serial: 1\n", encoding="utf-8")
    sign_file(repo / rel, THEO, yank=True)
    commit(repo)
    line = stderr_line(gate("--author", "theo-lemaire", "--no-fetch"), rel, "PX120")
    assert line.endswith(
        "PX120 unyanked.serial: expected a serial above the base's last yank or un-yank (1), got 1"
    )


def test_an_unsigned_yank_is_named_in_full(repo: Path) -> None:
    rel = f"{JWT}/versions/1.1.0.yaml"
    text = (repo / rel).read_text(encoding="utf-8").rstrip("\n")
    (repo / rel).write_text(text + "\nyanked:\n  reason: broken\n  serial: 1\n", encoding="utf-8")
    commit(repo)
    line = stderr_line(gate("--author", "mara-okafor", "--no-fetch"), rel, "PX104")
    assert line.endswith("PX104 yanked.signature: the yank is not signed")


def test_a_remote_artifact_on_a_private_address_is_not_fetched(
    repo: Path, tmp_path: Path, serve_dir: Callable[[Path], str]
) -> None:
    """Without policy.allow_private_addresses, an author's URL never reaches this network."""
    git(repo, "checkout", "-q", "main")
    registry = repo / INDEX / "registry.yaml"
    registry.write_text(
        registry.read_text(encoding="utf-8").replace("  allow_private_addresses: true\n", ""),
        encoding="utf-8",
    )
    commit(repo, "private addresses refused")
    git(repo, "checkout", "-q", "pr")
    git(repo, "rebase", "-q", "main")
    rel = add_remote_version(repo, serve(serve_dir, tmp_path, BODY), BODY)
    commit(repo)
    line = stderr_line(gate("--author", "mara-okafor"), rel)
    assert f"{rel}:{line_of(repo, rel, r'^  url:')}: " in line
    assert "refusing to connect to 127.0.0.1, a loopback address" in line
