"""Bad inputs: every mistake an author can make is reported with file, line and field.

A small valid index is written as text (so every line number below is known), then
each case applies one small mutation and runs `plugindex validate` through Click's
test runner. Each case states the exact `path:line: field:` prefix it expects, a
distinctive part of the message, exit code 1 and no traceback.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.authoring.sign import sign_file
from builder.cli.main import cli
from builder.common.errors import PlugindexError
from builder.format.strict_yaml import MAX_SOURCE_BYTES
from builder.trust.signing import public_key_text

# --- the valid index -------------------------------------------------------------------

# Every owner in this index holds the same test key; `run_validate` signs each version
# file with it after a case's mutation, so cases see only the problem they make.
SIGNING_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEY = public_key_text(SIGNING_KEY)
MAX_ARTIFACT_SIZE = 4096

REGISTRY = "registry.yaml"
AUTH = "plugins/auth-jwt/plugin.yaml"
AUTH_100 = "plugins/auth-jwt/versions/1.0.0.yaml"
AUTH_110 = "plugins/auth-jwt/versions/1.1.0.yaml"
CRYPTO = "plugins/template-crypto/plugin.yaml"
CRYPTO_030 = "plugins/template-crypto/versions/0.3.0.yaml"
CSV = "plugins/datasource-csv/plugin.yaml"
CSV_200 = "plugins/datasource-csv/versions/2.0.0.yaml"

AUTH_100_ARTIFACT = "plugins/auth-jwt/artifacts/auth-jwt-1.0.0.tar.gz"

# Line numbers in the comments are the ones the cases below rely on.
REGISTRY_TEXT = """\
format: 1
name: test-registry
title: Test registry
base_url: https://plugins.example.com/
categories:
  - slug: auth
    title: Authentication
    description: Log-in and identity plugins.
  - slug: templates
    title: Templates
    description: Template engines and filters.
  - slug: data
    title: Data sources
    description: Readers for files and services.
policy:
  max_artifact_size: 4096
  allowed_url_schemes: [https, http]
  reserved_names: [admin]
  allow_local_artifacts: true
  download_timeout: 5.0
  allow_private_addresses: true
"""
# 15 policy:  16 max_artifact_size  17 allowed_url_schemes  18 reserved_names
# 19 allow_local_artifacts  20 download_timeout  21 allow_private_addresses (the
# remote cases serve their artifacts from 127.0.0.1)

AUTH_TEXT = f"""\
name: auth-jwt
display_name: JWT authentication
description: Verifies JSON Web Tokens on incoming requests.
authors:
  - name: Ada Example
    email: ada@example.com
license: Apache-2.0 OR MIT
homepage: https://example.com/auth-jwt
keywords: [jwt, auth]
categories: [auth]
owners:
  - github: ada-example
    keys:
      - {KEY}
"""
# 1 name  2 display_name  3 description  4 authors  5 -name  6 email  7 license
# 8 homepage  9 keywords  10 categories  11 owners  12 -github  13 keys  14 -key

VERSION_TEMPLATE = """\
version: {version}
released: {released}
artifact:
  url: artifacts/{plugin}-{version}.tar.gz
  sha256: {sha256}
  size: {size}
  filename: {plugin}-{version}.tar.gz
"""
# 1 version  2 released  3 artifact  4 url  5 sha256  6 size  7 filename

AUTH_VERSION_TAIL = """\
compatibility:
  host: ">=2.0, <4.0"
  plugin_api: ^1.0
engine: python
compliance:
  risk_level: low
  notes: Checks signatures only.
"""
# 8 compatibility  9 host  10 plugin_api  11 engine  12 compliance  13 risk_level
# 14 notes  (a dependencies block appended by a case starts on line 15)

CRYPTO_TEXT = f"""\
name: template-crypto
display_name: Crypto template filters
description: Template filters for hashing and signing values.
authors:
  - name: Bo Example
license: MIT
categories: [templates, auth]
owners:
  - github: bo-example
    keys:
      - {KEY}
"""

CRYPTO_VERSION_TAIL = """\
dependencies:
  auth-jwt:
    version: ">=1.0, <2.0"
compatibility:
  host: ^3.0
  plugin_api: ^1.0
engine: jinja
compliance:
  risk_level: medium
  notes: Handles secret material.
"""
# 8 dependencies  9 auth-jwt  10 version  11 compatibility ... 15 compliance
# 16 risk_level  17 notes

CSV_TEXT = f"""\
name: datasource-csv
display_name: CSV data source
description: Reads comma-separated files as tables.
authors:
  - name: Cy Example
    email: cy@example.com
license: BSD-3-Clause
repository: https://github.com/example/datasource-csv
categories: [data]
owners:
  - github: cy-example
    keys:
      - {KEY}
"""

CSV_VERSION_TAIL = """\
dependencies:
  template-crypto:
    version: ^0.3
  auth-jwt:
    version: ~1.1
    kind: optional
compatibility:
  host: ^3.0
  plugin_api: ^1.0
engine: python
formats:
  - extension: .csv
    description: Comma-separated values
    mime_type: text/csv
compliance:
  risk_level: low
"""
# 8 dependencies  9 template-crypto  10 version  11 auth-jwt  12 version  13 kind
# 14 compatibility ... 22 compliance  23 risk_level


def artifact_bytes(plugin: str, version: str, size: int = 300) -> bytes:
    """Return deterministic artifact contents of exactly `size` bytes."""
    seed = f"{plugin}-{version}\n".encode()
    return (seed * (size // len(seed) + 1))[:size]


def write_version(
    index: Path, plugin: str, version: str, released: str, tail: str, *, size: int = 300
) -> None:
    """Write a version file and its repo-local artifact with a matching sha256/size."""
    data = artifact_bytes(plugin, version, size)
    artifact = index / "plugins" / plugin / "artifacts" / f"{plugin}-{version}.tar.gz"
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_bytes(data)
    text = VERSION_TEMPLATE.format(
        version=version,
        released=released,
        plugin=plugin,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
    write(index, f"plugins/{plugin}/versions/{version}.yaml", text + tail)


def write_valid_index(index: Path) -> Path:
    """Write the valid index into `index` and return it."""
    write(index, REGISTRY, REGISTRY_TEXT)
    write(index, AUTH, AUTH_TEXT)
    write_version(index, "auth-jwt", "1.0.0", "2024-01-15", AUTH_VERSION_TAIL)
    write_version(index, "auth-jwt", "1.1.0", "2024-03-01", AUTH_VERSION_TAIL)
    write(index, CRYPTO, CRYPTO_TEXT)
    write_version(index, "template-crypto", "0.3.0", "2024-02-10", CRYPTO_VERSION_TAIL)
    write(index, CSV, CSV_TEXT)
    write_version(index, "datasource-csv", "2.0.0", "2024-04-20", CSV_VERSION_TAIL)
    return index


# --- file helpers used by the mutations -------------------------------------------------


def write(index: Path, rel: str, text: str) -> None:
    path = index / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def read(index: Path, rel: str) -> str:
    return (index / rel).read_text(encoding="utf-8")


def replace(index: Path, rel: str, old: str, new: str) -> None:
    """Replace the one occurrence of `old` in a file (fails loudly if not exactly one)."""
    text = read(index, rel)
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {rel}"
    write(index, rel, text.replace(old, new))


def set_line(index: Path, rel: str, line: int, new: str) -> None:
    """Replace line `line` (1-based) of a file by `new` (which may hold several lines)."""
    lines = read(index, rel).splitlines()
    assert 1 <= line <= len(lines), f"{rel} has no line {line}"
    lines[line - 1] = new
    write(index, rel, "\n".join(lines) + "\n")


def delete_line(index: Path, rel: str, line: int) -> None:
    lines = read(index, rel).splitlines()
    del lines[line - 1]
    write(index, rel, "\n".join(lines) + "\n")


def append(index: Path, rel: str, text: str) -> None:
    write(index, rel, read(index, rel) + text)


# --- running the CLI ---------------------------------------------------------------------


def sign_versions(index: Path) -> None:
    """Sign every version file that can be signed (a case may have broken some)."""
    for path in sorted(index.glob("plugins/*/versions/*.yaml")):
        # A file the case made unreadable or invalid stays as the case left it.
        with contextlib.suppress(PlugindexError):
            # The yank first: `sign` refuses to sign a release beside an unsigned yank.
            if "\nyanked:" in path.read_text(encoding="utf-8"):
                sign_file(path, SIGNING_KEY, yank=True)
            sign_file(path, SIGNING_KEY)


def run_validate(index: Path, *extra: str, sign: bool = True) -> Result:
    """Sign the version files, then run `plugindex validate INDEX [extra...]` in-process."""
    if sign and (index / REGISTRY).is_file():
        sign_versions(index)
    return CliRunner().invoke(cli, ["validate", str(index), *extra])


def assert_no_crash(result: Result) -> None:
    assert "Traceback" not in result.output, result.output
    assert "internal error" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )


def problem_lines(result: Result) -> list[str]:
    """Return the printed problem lines (everything but the final count)."""
    return [
        line
        for line in result.stderr.splitlines()
        if line and not re.fullmatch(r"\d+ problems? in \d+ files?", line)
    ]


def assert_one_line_per_problem(result: Result) -> None:
    """Assert the final count matches the printed lines (no message spans two lines)."""
    match = re.search(r"^(\d+) problems? in (\d+) files?$", result.stderr, re.MULTILINE)
    assert match, result.output
    assert len(problem_lines(result)) == int(match[1]), result.output


def expect_problem(
    result: Result, path: Path, line: int | None, field: str, *fragments: str
) -> None:
    """Assert one printed problem is at `path:line: field:` and holds every fragment."""
    prefix = f"{path}:{line}: " if line is not None else f"{path}: "
    if field:
        prefix += f"{field}: "
    found = [text for text in problem_lines(result) if text.startswith(prefix)]
    assert found, f"no problem starting with {prefix!r} in:\n{result.output}"
    assert any(all(f in text for f in fragments) for text in found), (
        f"no problem at {prefix!r} mentions {fragments!r}:\n{result.output}"
    )


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    # With PLUGINDEX_DEBUG=1 the CLI re-raises internal errors; tests want the real path.
    monkeypatch.delenv("PLUGINDEX_DEBUG", raising=False)


@pytest.fixture
def valid_index(tmp_path: Path) -> Path:
    """Return a freshly written valid index (a distinct name from conftest's `index`)."""
    return write_valid_index(tmp_path / "idx")


def test_valid_index_validates(valid_index: Path) -> None:
    result = run_validate(valid_index, "--no-fetch")
    assert_no_crash(result)
    assert result.exit_code == 0, result.output
    assert "3 plugins, 4 versions: valid" in result.output


def test_valid_index_line_numbers_are_as_documented(valid_index: Path) -> None:
    """The cases rely on these lines; fail here first if the fixture text changes."""
    assert read(valid_index, AUTH).splitlines()[13].strip() == f"- {KEY}"
    assert read(valid_index, AUTH_100).splitlines()[4].startswith("  sha256: ")
    assert read(valid_index, AUTH_110).splitlines()[13] == "  notes: Checks signatures only."
    assert read(valid_index, CRYPTO_030).splitlines()[9] == '    version: ">=1.0, <2.0"'
    assert read(valid_index, CSV_200).splitlines()[10] == "  auth-jwt:"
    assert read(valid_index, REGISTRY).splitlines()[18] == "  allow_local_artifacts: true"


# --- the corpus --------------------------------------------------------------------------

Mutation = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Mutation
    file: str  # index-relative path the problem must name
    line: int | None  # None: a whole-file problem, printed without a line
    field: str  # "" when the problem is about the file, not a field
    fragments: tuple[str, ...]  # distinctive parts of the message


def case(
    id_: str, mutate: Mutation, file: str, line: int | None, field: str, *fragments: str
) -> Case:
    return Case(id_, mutate, file, line, field, fragments)


def _oversize_source(index: Path) -> None:
    append(index, CSV, "# " + "x" * (MAX_SOURCE_BYTES + 10) + "\n")


def _non_utf8(index: Path) -> None:
    data = (index / AUTH).read_bytes()
    (index / AUTH).write_bytes(data.replace(b"Verifies JSON", b"Verifies \xff JSON", 1))


def _wrong_sha256(index: Path) -> None:
    set_line(index, AUTH_100, 5, "  sha256: " + "f" * 64)


def _wrong_size(index: Path) -> None:
    size = (index / AUTH_100_ARTIFACT).stat().st_size
    set_line(index, AUTH_100, 6, f"  size: {size + 1}")


def _oversize_artifact(index: Path) -> None:
    # A real artifact over policy.max_artifact_size, with the right sha256 and size.
    write_version(
        index, "datasource-csv", "2.0.0", "2024-04-20", CSV_VERSION_TAIL, size=MAX_ARTIFACT_SIZE + 1
    )


def _missing_artifact(index: Path) -> None:
    (index / AUTH_100_ARTIFACT).unlink()


def _reserved_name(index: Path) -> None:
    (index / "plugins/datasource-csv").rename(index / "plugins/admin")
    set_line(index, "plugins/admin/plugin.yaml", 1, "name: admin")


def _symlink(index: Path) -> None:
    (index / "plugins/auth-jwt/README.md").symlink_to("plugin.yaml")


def _stray_in_versions(index: Path) -> None:
    write(index, "plugins/datasource-csv/versions/notes.txt", "release notes\n")


def _no_versions(index: Path) -> None:
    shutil.rmtree(index / "plugins/datasource-csv/versions")


def _missing_plugin_yaml(index: Path) -> None:
    (index / CSV).unlink()


def _yank_only_version(index: Path) -> None:
    append(index, CRYPTO_030, "yanked:\n  reason: Leaks keys in error messages.\n")


def _same_precedence(index: Path) -> None:
    text = read(index, AUTH_100).replace("version: 1.0.0", "version: 1.0.0+build.2", 1)
    write(index, "plugins/auth-jwt/versions/1.0.0+build.2.yaml", text)


def _mapping_key_not_text(index: Path) -> None:
    append(index, AUTH, "? [a, b]\n: c\n")


def _bytes(rel: str, change: Callable[[bytes], bytes]) -> Mutation:
    def mutate(index: Path) -> None:
        (index / rel).write_bytes(change((index / rel).read_bytes()))

    return mutate


def _crlf_and_bad_licence(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n").replace(b"license: Apache-2.0 OR MIT", b"license: MIT OR")


def _bom_and_bad_licence(data: bytes) -> bytes:
    return b"\xef\xbb\xbf" + data.replace(b"license: Apache-2.0 OR MIT", b"license: MIT OR")


def _symlinked_plugin_folder(index: Path) -> None:
    (index / "plugins/auth-jwt-alias").symlink_to("auth-jwt", target_is_directory=True)


def _symlinked_plugins_dir(index: Path) -> None:
    elsewhere = index.parent / "elsewhere"
    (index / "plugins").rename(elsewhere)
    (index / "plugins").symlink_to(elsewhere, target_is_directory=True)


def _missing_registry(index: Path) -> None:
    (index / REGISTRY).unlink()


def _edit(rel: str, old: str, new: str) -> Mutation:
    return functools.partial(replace, rel=rel, old=old, new=new)


def _line(rel: str, line: int, new: str) -> Mutation:
    return functools.partial(set_line, rel=rel, line=line, new=new)


def _append(rel: str, text: str) -> Mutation:
    return functools.partial(append, rel=rel, text=text)


def _write(rel: str, text: str) -> Mutation:
    return functools.partial(write, rel=rel, text=text)


def _delete_line(rel: str, line: int) -> Mutation:
    return functools.partial(delete_line, rel=rel, line=line)


CASES = [
    # --- strict YAML ---------------------------------------------------------------
    case(
        "yaml-duplicate-key",
        _append(AUTH, "display_name: Again\n"),
        AUTH,
        15,
        "",
        "duplicate key 'display_name'",
    ),
    case(
        "yaml-anchor",
        _line(AUTH, 4, "authors: &people"),
        AUTH,
        4,
        "",
        "anchors are not allowed",
        "&people",
    ),
    case(
        "yaml-alias",
        _line(AUTH, 8, "homepage: *home"),
        AUTH,
        8,
        "",
        "aliases are not allowed",
        "*home",
    ),
    case(
        "yaml-explicit-tag",
        _edit(AUTH_100, "  size: ", "  size: !!int "),
        AUTH_100,
        6,
        "",
        "tags are not allowed",
        "tag:yaml.org,2002:int",
    ),
    case(
        "yaml-syntax-error",
        _line(AUTH, 3, "description: Verifies: tokens"),
        AUTH,
        3,
        "",
        "invalid YAML",
        "mapping values are not allowed",
    ),
    # libyaml notices the unclosed `[` on the next line; the message should say where
    # the sequence started, or the author is sent to a line that is fine.
    case(
        "yaml-unclosed-flow-sequence",
        _line(AUTH, 9, "keywords: [jwt, auth"),
        AUTH,
        10,
        "",
        "invalid YAML",
        "line 9",
    ),
    case(
        "yaml-bad-indentation",
        _line(AUTH, 6, "     email: ada@example.com"),
        AUTH,
        6,
        "",
        "invalid YAML",
    ),
    case(
        "yaml-tab-indentation",
        _line(AUTH, 6, "\temail: ada@example.com"),
        AUTH,
        6,
        "",
        "invalid YAML",
        "tab",
    ),
    case(
        "yaml-empty-file",
        _write(CSV_200, ""),
        CSV_200,
        1,
        "",
        "expected a mapping of fields",
        "empty file",
    ),
    case(
        "yaml-comment-only-file",
        _write(CSV_200, "# nothing yet\n"),
        CSV_200,
        1,
        "",
        "expected a mapping of fields",
        "empty file",
    ),
    case(
        "yaml-top-level-list",
        _write(CSV_200, "- version: 2.0.0\n- released: 2024-04-20\n"),
        CSV_200,
        1,
        "",
        "expected a mapping of fields, got a list",
    ),
    case(
        "yaml-top-level-scalar",
        _write(CSV_200, "just some text\n"),
        CSV_200,
        1,
        "",
        "expected a mapping of fields",
        "'just some text'",
    ),
    case(
        "yaml-two-documents",
        _append(AUTH_100, "---\nversion: 1.0.0\n"),
        AUTH_100,
        15,
        "",
        "more than one YAML document",
    ),
    case(
        "yaml-duplicate-nested-key",
        _line(CSV_200, 13, "    kind: optional\n  template-crypto:\n    version: ^0.3"),
        CSV_200,
        14,
        "",
        "duplicate key 'template-crypto'",
    ),
    case(
        "yaml-crlf-line-endings",
        _bytes(AUTH, _crlf_and_bad_licence),
        AUTH,
        7,
        "license",
        "expected an SPDX licence expression",
    ),
    case(
        "yaml-utf8-bom",
        _bytes(AUTH, _bom_and_bad_licence),
        AUTH,
        7,
        "license",
        "expected an SPDX licence expression",
    ),
    # `.nan` is a float under the YAML 1.2 core schema; it must not crash the resolver.
    case(
        "yaml-nan-value",
        _line(AUTH, 2, "display_name: .nan"),
        AUTH,
        2,
        "display_name",
        "expected a string",
        'put it in quotes: ".nan"',
    ),
    case(
        "yaml-infinity-value",
        _line(AUTH_100, 6, "  size: -.inf"),
        AUTH_100,
        6,
        "artifact.size",
        "expected an integer",
        "-inf",
    ),
    # Python refuses to convert integers over 4300 digits; that must be a problem, not
    # an internal error. Any message on the right line will do.
    case("yaml-huge-integer", _line(AUTH_100, 6, "  size: " + "9" * 5000), AUTH_100, 6, ""),
    # libyaml's reader refuses control characters; the problem needs the line (and the
    # message must stay on one line).
    case(
        "yaml-nul-byte",
        _bytes(AUTH, lambda d: d.replace(b"Verifies", b"Veri\x00fies")),
        AUTH,
        3,
        "",
        "control character",
    ),
    # A quoted key can hold a newline; the problem must still print on one line.
    case(
        "yaml-key-with-newline",
        _line(AUTH, 8, '"home\\npage": https://example.com/'),
        AUTH,
        8,
        "",
        "unknown field",
    ),
    case(
        "yaml-mapping-key-not-text",
        _mapping_key_not_text,
        AUTH,
        15,
        "",
        "mapping keys must be text",
    ),
    case(
        "file-over-size-cap",
        _oversize_source,
        CSV,
        None,
        "",
        "file is too large",
        f"at most {MAX_SOURCE_BYTES} bytes",
    ),
    case("file-not-utf8", _non_utf8, AUTH, 3, "", "not valid UTF-8", "0xff"),
    # --- schema: keys and types ----------------------------------------------------
    case(
        "unknown-key-did-you-mean",
        _edit(AUTH, "homepage:", "homepgae:"),
        AUTH,
        8,
        "homepgae",
        "unknown field (expected one of: name, display_name",
        "did you mean 'homepage'?",
    ),
    case(
        "unknown-nested-key-did-you-mean",
        _edit(AUTH_100, "  filename:", "  file_name:"),
        AUTH_100,
        7,
        "artifact.file_name",
        "unknown field",
        "did you mean 'filename'?",
    ),
    case(
        "unknown-registry-key",
        _edit(REGISTRY, "  reserved_names:", "  reserved_name:"),
        REGISTRY,
        18,
        "policy.reserved_name",
        "unknown field",
        "did you mean 'reserved_names'?",
    ),
    case(
        "int-for-string",
        _line(AUTH, 2, "display_name: 42"),
        AUTH,
        2,
        "display_name",
        "expected a string, got the number 42",
    ),
    case(
        "string-for-int",
        _edit(AUTH_100, "  size: 300", '  size: "300"'),
        AUTH_100,
        6,
        "artifact.size",
        "expected an integer, got the text '300'",
    ),
    case(
        "list-for-mapping",
        _edit(
            CRYPTO_030,
            "compliance:\n  risk_level: medium\n  notes: Handles secret material.\n",
            "compliance: [medium]\n",
        ),
        CRYPTO_030,
        15,
        "compliance",
        "expected a mapping, got a list",
    ),
    case(
        "mapping-for-list",
        _line(AUTH, 10, "categories: {auth: true}"),
        AUTH,
        10,
        "categories",
        "expected a list, got a mapping",
    ),
    case(
        "float-surprise-version",
        _line(AUTH_110, 1, "version: 1.10"),
        AUTH_110,
        1,
        "version",
        "expected a string, got the number 1.1",
        "1.10 was read as 1.1",
        'put it in quotes: "1.10"',
    ),
    case(
        "float-surprise-requirement",
        _line(CRYPTO_030, 10, "    version: 1.0"),
        CRYPTO_030,
        10,
        "dependencies.auth-jwt.version",
        "expected a string",
        'put it in quotes: "1.0"',
    ),
    case(
        "boolish-yes",
        _line(REGISTRY, 19, "  allow_local_artifacts: yes"),
        REGISTRY,
        19,
        "policy.allow_local_artifacts",
        "expected true or false",
        "got the text 'yes'",
    ),
    case(
        "null-value",
        _line(AUTH, 2, "display_name:"),
        AUTH,
        2,
        "display_name",
        "expected a string, got an empty value",
    ),
    case(
        "null-tilde-value",
        _line(AUTH_100, 2, "released: ~"),
        AUTH_100,
        2,
        "released",
        "expected a string, got an empty value",
    ),
    case(
        "empty-string",
        _line(AUTH, 2, 'display_name: ""'),
        AUTH,
        2,
        "display_name",
        "at least 1 character",
        "got 0",
    ),
    case(
        "size-zero",
        _line(AUTH_100, 6, "  size: 0"),
        AUTH_100,
        6,
        "artifact.size",
        "greater than 0",
        "got the number 0",
    ),
    case(
        "literal-not-allowed",
        _edit(AUTH_100, "risk_level: low", "risk_level: severe"),
        AUTH_100,
        13,
        "compliance.risk_level",
        "'low', 'medium', 'high' or 'critical'",
        "got the text 'severe'",
    ),
    case(
        "url-scheme-not-in-literal",
        _line(REGISTRY, 17, "  allowed_url_schemes: [https, ftp]"),
        REGISTRY,
        17,
        "policy.allowed_url_schemes[1]",
        "'https' or 'http'",
        "got the text 'ftp'",
    ),
    case(
        "registry-format-version",
        _line(REGISTRY, 1, "format: 2"),
        REGISTRY,
        1,
        "format",
        "expected 1",
        "got the number 2",
    ),
    case(
        "missing-required-field",
        _delete_line(AUTH_100, 5),
        AUTH_100,
        3,
        "artifact.sha256",
        "required field is missing",
    ),
    # --- values --------------------------------------------------------------------
    case(
        "semver-two-parts",
        _line(AUTH_100, 1, 'version: "1.0"'),
        AUTH_100,
        1,
        "version",
        "expected a semantic version",
        "got '1.0'",
    ),
    case(
        "semver-v-prefix",
        _line(AUTH_100, 1, "version: v1.0.0"),
        AUTH_100,
        1,
        "version",
        "expected a semantic version",
        "got 'v1.0.0'",
    ),
    case(
        "semver-leading-zero",
        _line(AUTH_100, 1, "version: 01.0.0"),
        AUTH_100,
        1,
        "version",
        "expected a semantic version",
        "got '01.0.0'",
    ),
    case(
        "bad-requirement",
        _line(CRYPTO_030, 10, '    version: "=>1.0"'),
        CRYPTO_030,
        10,
        "dependencies.auth-jwt.version",
        "expected a version requirement",
        "got '=>1.0'",
    ),
    case(
        "bad-date",
        _line(AUTH_100, 2, "released: 2024-02-30"),
        AUTH_100,
        2,
        "released",
        "expected a date written as YYYY-MM-DD",
        "got '2024-02-30'",
    ),
    case(
        "bad-date-format",
        _line(AUTH_100, 2, "released: 15/01/2024"),
        AUTH_100,
        2,
        "released",
        "expected a date written as YYYY-MM-DD",
    ),
    case(
        "release-date-in-the-future",
        _line(AUTH_100, 2, "released: 9999-12-31"),
        AUTH_100,
        2,
        "released",
        "release date in the future (expected ",
        "or earlier, today's date (UTC) plus a day for time zones; got 9999-12-31)",
    ),
    case(
        "bad-sha256-format",
        _line(AUTH_100, 5, "  sha256: ABC123"),
        AUTH_100,
        5,
        "artifact.sha256",
        "64 lower-case hex digits",
        "got 'ABC123'",
    ),
    case(
        "bad-ed25519-key",
        _line(AUTH, 14, "      - ed25519:AAAA"),
        AUTH,
        14,
        "owners[0].keys[0]",
        "expected an Ed25519 public key",
    ),
    case(
        "bad-key-algorithm",
        _line(AUTH, 14, "      - " + KEY.replace("ed25519", "rsa")),
        AUTH,
        14,
        "owners[0].keys[0]",
        "expected an Ed25519 public key",
        "rsa:",
    ),
    case(
        "bad-spdx-licence",
        _line(AUTH, 7, "license: MIT OR"),
        AUTH,
        7,
        "license",
        "expected an SPDX licence expression",
        "got 'MIT OR'",
    ),
    case(
        "bad-spdx-licence-parenthesis",
        _line(AUTH, 7, "license: (MIT OR Apache-2.0"),
        AUTH,
        7,
        "license",
        "expected an SPDX licence expression",
    ),
    case(
        "unknown-category",
        _line(AUTH, 10, "categories: [auht]"),
        AUTH,
        10,
        "categories[0]",
        "unknown category",
        "expected one of: auth, data, templates",
        "got 'auht'",
    ),
    case(
        "duplicate-category-in-plugin",
        _line(AUTH, 10, "categories: [auth, auth]"),
        AUTH,
        10,
        "categories",
        "expected each entry once",
        "auth more than once",
    ),
    # --- names ---------------------------------------------------------------------
    case(
        "name-folder-mismatch",
        _line(AUTH, 1, "name: auth-jws"),
        AUTH,
        1,
        "name",
        "does not match the folder name",
        "expected 'auth-jwt'",
        "got 'auth-jws'",
    ),
    case(
        "name-cyrillic-lookalike",
        _line(AUTH, 1, "name: \u0430uth-jwt"),
        AUTH,
        1,
        "name",
        "non-ASCII",
        "U+0430",
        "CYRILLIC SMALL LETTER A",
    ),
    case(
        "name-uppercase",
        _line(AUTH, 1, "name: Auth-jwt"),
        AUTH,
        1,
        "name",
        "lower-case ASCII",
        "got 'Auth-jwt'",
    ),
    case(
        "name-trailing-hyphen",
        _line(AUTH, 1, "name: auth-jwt-"),
        AUTH,
        1,
        "name",
        "no trailing hyphen",
    ),
    case(
        "name-doubled-hyphen",
        _line(AUTH, 1, "name: auth--jwt"),
        AUTH,
        1,
        "name",
        "no doubled hyphen",
    ),
    case(
        "name-reserved",
        _reserved_name,
        "plugins/admin/plugin.yaml",
        1,
        "name",
        "'admin' is reserved",
    ),
    case(
        "dependency-name-cyrillic",
        _line(CSV_200, 11, "  \u0430uth-jwt:"),
        CSV_200,
        11,
        "dependencies.\u0430uth-jwt",
        "non-ASCII",
        "U+0430",
    ),
    # --- versions and files --------------------------------------------------------
    case(
        "version-file-name-mismatch",
        _line(AUTH_110, 1, "version: 1.2.0"),
        AUTH_110,
        1,
        "version",
        "does not match the file name",
        "expected '1.1.0'",
        "got '1.2.0'",
    ),
    # Files are read in name order and "1.0.0+build.2.yaml" sorts first, so the
    # clash is reported on the second one read.
    case(
        "version-same-precedence",
        _same_precedence,
        AUTH_100,
        1,
        "version",
        "same precedence as 1.0.0+build.2",
        "build metadata",
    ),
    case(
        "symlink-in-plugin-folder",
        _symlink,
        "plugins/auth-jwt/README.md",
        None,
        "",
        "not a regular file",
    ),
    case(
        "stray-file-in-versions",
        _stray_in_versions,
        "plugins/datasource-csv/versions/notes.txt",
        None,
        "",
        "unexpected file",
        "versions/<version>.yaml",
    ),
    case(
        "stray-entry-at-index-root",
        _write("notes.txt", "hello\n"),
        "notes.txt",
        None,
        "",
        "unexpected entry",
    ),
    case("plugin-without-versions", _no_versions, CSV, None, "", "plugin has no versions"),
    case(
        "readme-file-missing",
        _append(AUTH, "readme: README.md\n"),
        AUTH,
        15,
        "readme",
        "file not found",
        "plugins/auth-jwt/README.md",
    ),
    case("registry-yaml-missing", _missing_registry, REGISTRY, None, "", "file not found"),
    case(
        "symlinked-plugin-folder",
        _symlinked_plugin_folder,
        "plugins/auth-jwt-alias",
        None,
        "",
        "unexpected entry",
    ),
    case("plugin-yaml-missing", _missing_plugin_yaml, CSV, None, "", "file not found"),
    case(
        "symlinked-plugins-folder",
        _symlinked_plugins_dir,
        "plugins",
        None,
        "",
        "not a folder (links and special files are not allowed",
    ),
    # --- artifacts -----------------------------------------------------------------
    case(
        "artifact-url-malformed-host",
        _line(AUTH_100, 4, '  url: "https://[::1/x.tgz"'),
        AUTH_100,
        4,
        "artifact.url",
        "expected a URL or a relative path",
    ),
    case(
        "artifact-url-with-space",
        _line(AUTH_100, 4, '  url: "https://example.com/a b.tgz"'),
        AUTH_100,
        4,
        "artifact.url",
        "expected no spaces or control characters",
    ),
    case(
        "artifact-wrong-sha256",
        _wrong_sha256,
        AUTH_100,
        5,
        "artifact.sha256",
        "does not match the artifact file",
        "got " + "f" * 64,
    ),
    case(
        "artifact-sha256-all-digits-unquoted",
        _line(AUTH_100, 5, "  sha256: " + "0" * 64),
        AUTH_100,
        5,
        "artifact.sha256",
        "expected a string, got the number 0",
        "put it in quotes",
    ),
    case(
        "artifact-wrong-size",
        _wrong_size,
        AUTH_100,
        6,
        "artifact.size",
        "does not match the artifact file",
        "expected 300, got 301",
    ),
    case(
        "artifact-over-policy-max",
        _oversize_artifact,
        CSV_200,
        6,
        "artifact.size",
        "artifact is too large",
        f"at most {MAX_ARTIFACT_SIZE} bytes, got {MAX_ARTIFACT_SIZE + 1}",
    ),
    case(
        "artifact-path-escapes-folder",
        _line(AUTH_100, 4, "  url: ../x"),
        AUTH_100,
        4,
        "artifact.url",
        "path leaves the plugin folder",
        "'../x'",
    ),
    case(
        "artifact-path-escapes-via-artifacts",
        _line(
            AUTH_100,
            4,
            "  url: artifacts/../../template-crypto/artifacts/template-crypto-0.3.0.tar.gz",
        ),
        AUTH_100,
        4,
        "artifact.url",
        "path leaves the plugin folder",
    ),
    case(
        "artifact-absolute-path",
        _line(AUTH_100, 4, "  url: /etc/passwd"),
        AUTH_100,
        4,
        "artifact.url",
        "path leaves the plugin folder",
    ),
    case(
        "artifact-file-missing",
        _missing_artifact,
        AUTH_100,
        4,
        "artifact.url",
        "artifact file not found",
        AUTH_100_ARTIFACT,
    ),
    case(
        "artifact-url-scheme-ftp",
        _line(AUTH_100, 4, "  url: ftp://example.com/a.tar.gz"),
        AUTH_100,
        4,
        "artifact.url",
        "URL scheme not allowed",
        "expected https:// or http://",
        "'ftp://example.com/a.tar.gz'",
    ),
    case(
        "local-artifacts-not-allowed",
        _line(REGISTRY, 19, "  allow_local_artifacts: false"),
        AUTH_100,
        4,
        "artifact.url",
        "repository-local artifacts are not allowed",
    ),
    # --- dependencies --------------------------------------------------------------
    case(
        "dependency-on-missing-plugin",
        _edit(CSV_200, "  auth-jwt:", "  json-tools:"),
        CSV_200,
        11,
        "dependencies.json-tools",
        "depends on 'json-tools'",
        "not in the index",
    ),
    case(
        "dependency-range-matches-nothing",
        _line(CRYPTO_030, 10, '    version: ">=2.0"'),
        CRYPTO_030,
        10,
        "dependencies.auth-jwt.version",
        "no non-yanked version of auth-jwt satisfies '>=2.0'",
        "available: 1.0.0, 1.1.0",
    ),
    case(
        "dependency-only-version-yanked",
        _yank_only_version,
        CSV_200,
        10,
        "dependencies.template-crypto.version",
        "no non-yanked version of template-crypto satisfies '^0.3'",
        "available: none",
    ),
    case(
        "dependency-cycle",
        _append(AUTH_110, "dependencies:\n  template-crypto:\n    version: ^0.3\n"),
        AUTH_110,
        16,
        "dependencies.template-crypto",
        "dependency cycle: auth-jwt -> template-crypto -> auth-jwt",
    ),
    case(
        "dependency-on-self",
        _append(AUTH_110, "dependencies:\n  auth-jwt:\n    version: ^1.0\n"),
        AUTH_110,
        16,
        "dependencies.auth-jwt",
        "cannot depend on itself",
    ),
    case(
        "dependency-bad-kind",
        _edit(CSV_200, "    kind: optional", "    kind: peer"),
        CSV_200,
        13,
        "dependencies.auth-jwt.kind",
        "'runtime', 'dev', 'build' or 'optional'",
    ),
]


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_reported(valid_index: Path, bad: Case) -> None:
    bad.mutate(valid_index)
    result = run_validate(valid_index, "--no-fetch")
    assert_no_crash(result)
    assert result.exit_code == 1, result.output
    expect_problem(result, valid_index / bad.file, bad.line, bad.field, *bad.fragments)
    assert_one_line_per_problem(result)


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 35


# Problems in a plugin that others depend on should not make those others look broken.
@pytest.mark.parametrize(
    "bad",
    [
        c
        for c in CASES
        if c.file.startswith("plugins/auth-jwt/") and c.id.startswith(("name-", "bad-", "semver-"))
    ],
    ids=lambda c: c.id,
)
def test_broken_dependency_is_not_reported_as_missing(valid_index: Path, bad: Case) -> None:
    bad.mutate(valid_index)
    result = run_validate(valid_index, "--no-fetch")
    assert_no_crash(result)
    assert result.exit_code == 1, result.output
    assert "which is not in the index" not in result.output, result.output


# --- several problems at once ------------------------------------------------------------


def _many_problems(index: Path) -> list[tuple[str, int | None, str]]:
    """Break several files of different plugins; return the expected (file, line, field)."""
    set_line(index, AUTH, 7, "license: MIT OR")
    set_line(index, AUTH_100, 2, "released: 2024-13-01")
    set_line(index, AUTH_110, 6, '  size: "300"')
    replace(index, CRYPTO, "display_name:", "display_nmae:")
    set_line(index, CRYPTO_030, 1, "version: v0.3.0")
    set_line(index, CSV_200, 5, "  sha256: nothex")
    set_line(index, CSV_200, 23, "  risk_level: extreme")
    write(index, "plugins/datasource-csv/versions/notes.txt", "release notes\n")
    return [
        (AUTH, 7, "license"),
        (AUTH_100, 2, "released"),
        (AUTH_110, 6, "artifact.size"),
        (CRYPTO, 2, "display_nmae"),
        (CRYPTO, 1, "display_name"),  # the real field is now missing
        (CRYPTO_030, 1, "version"),
        (CSV_200, 5, "artifact.sha256"),
        (CSV_200, 23, "compliance.risk_level"),
        ("plugins/datasource-csv/versions/notes.txt", None, ""),
    ]


def test_all_problems_in_all_files_are_reported_in_one_run(valid_index: Path) -> None:
    expected = _many_problems(valid_index)
    result = run_validate(valid_index, "--no-fetch")
    assert_no_crash(result)
    assert result.exit_code == 1, result.output
    for rel, line, field in expected:
        expect_problem(result, valid_index / rel, line, field)
    files = len({rel for rel, _, _ in expected})
    assert len(problem_lines(result)) == len(expected), result.output
    assert f"{len(expected)} problems in {files} files" in result.stderr


def test_problems_with_and_without_lines_in_one_file(valid_index: Path) -> None:
    # "plugin has no versions" (no line) and a bad field (a line) in the same plugin.yaml:
    # sorting them for printing must not compare None with an int.
    shutil.rmtree(valid_index / "plugins/datasource-csv/versions")
    set_line(valid_index, CSV, 7, "license: MIT OR")
    result = run_validate(valid_index, "--no-fetch")
    assert_no_crash(result)
    assert result.exit_code == 1, result.output
    expect_problem(result, valid_index / CSV, None, "", "plugin has no versions")
    expect_problem(result, valid_index / CSV, 7, "license", "SPDX")
    assert "2 problems in 1 file" in result.stderr


def test_github_format_prints_annotations(valid_index: Path) -> None:
    expected = _many_problems(valid_index)
    result = run_validate(valid_index, "--no-fetch", "--format", "github")
    assert_no_crash(result)
    assert result.exit_code == 1, result.output
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert len(annotations) == len(expected), result.output
    for rel, line, field in expected:
        where = f"::error file={valid_index / rel}"
        where += f",line={line}::" if line is not None else "::"
        where += f"{field}: " if field else ""
        assert any(a.startswith(where) for a in annotations), (where, result.output)
    assert re.search(r"^\d+ problems in \d+ files$", result.stderr, re.MULTILINE)


def test_github_format_escapes_newlines_and_percent(valid_index: Path) -> None:
    # A quoted key may hold a newline; it ends up in the field name of the annotation.
    set_line(valid_index, AUTH, 8, '"home%\\npage": https://example.com/')
    result = run_validate(valid_index, "--no-fetch", "--format", "github")
    assert_no_crash(result)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout  # one annotation, on one line
    assert lines[0].startswith(f"::error file={valid_index / AUTH},line=8::")
    assert "home%25" in lines[0], lines[0]  # the % is escaped, however the newline is


# --- remote artifacts over real HTTP -----------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """Serve a temp folder on 127.0.0.1 (any free port); yield it and its base URL."""
    # urllib honours *_proxy variables; a CI proxy must not see 127.0.0.1 requests.
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield root, f"http://{host!s}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _point_at_server(index: Path, base_url: str, name: str = "file.tar.gz") -> None:
    set_line(index, AUTH_110, 4, f"  url: {base_url}{name}")
    # The local copy is no longer referenced: a plugin folder holds no stray files.
    (index / "plugins/auth-jwt/artifacts/auth-jwt-1.1.0.tar.gz").unlink()


@pytest.mark.timeout(30)
def test_remote_artifact_correct_passes(valid_index: Path, http_root: tuple[Path, str]) -> None:
    root, base_url = http_root
    (root / "file.tar.gz").write_bytes(artifact_bytes("auth-jwt", "1.1.0"))
    _point_at_server(valid_index, base_url)
    result = run_validate(valid_index)
    assert_no_crash(result)
    assert result.exit_code == 0, result.output


@pytest.mark.timeout(30)
def test_remote_artifact_wrong_sha256(valid_index: Path, http_root: tuple[Path, str]) -> None:
    root, base_url = http_root
    served = artifact_bytes("auth-jwt", "1.1.0")[::-1]  # same size, other bytes
    (root / "file.tar.gz").write_bytes(served)
    _point_at_server(valid_index, base_url)
    result = run_validate(valid_index)
    assert_no_crash(result)
    assert result.exit_code == 1, result.output
    expect_problem(
        result,
        valid_index / AUTH_110,
        5,
        "artifact.sha256",
        "does not match the downloaded file",
        f"expected {hashlib.sha256(served).hexdigest()}",
    )
    assert "1 problem in 1 file" in result.stderr
    # --no-fetch does not download, so the same index passes.
    assert run_validate(valid_index, "--no-fetch").exit_code == 0


@pytest.mark.timeout(30)
def test_remote_artifact_larger_than_declared(
    valid_index: Path, http_root: tuple[Path, str]
) -> None:
    root, base_url = http_root
    (root / "file.tar.gz").write_bytes(artifact_bytes("auth-jwt", "1.1.0", 400))
    _point_at_server(valid_index, base_url)
    result = run_validate(valid_index)
    assert_no_crash(result)
    assert result.exit_code == 1, result.output
    expect_problem(
        result, valid_index / AUTH_110, 6, "artifact.size", "does not match the downloaded file"
    )


@pytest.mark.timeout(30)
def test_remote_artifact_404(valid_index: Path, http_root: tuple[Path, str]) -> None:
    _, base_url = http_root
    _point_at_server(valid_index, base_url, "missing.tar.gz")
    result = run_validate(valid_index)
    assert_no_crash(result)
    assert result.exit_code == 1, result.output
    expect_problem(
        result,
        valid_index / AUTH_110,
        4,
        "artifact.url",
        f"{base_url}missing.tar.gz",
        "download failed",
        "404",
    )
