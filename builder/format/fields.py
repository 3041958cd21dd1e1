"""The checked field types of the source format: names, versions, text, URLs, keys.

Each is a `str` with a check attached (pydantic's `Annotated` validators), so a model
in `models` says what a field holds in one word and a bad value is an error at its
YAML line. docs/format.md describes what each accepts.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
import unicodedata
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from builder.format.names import name_problem
from builder.format.requirements import RequirementError, parse_requirement, parse_version


def _check_name(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _check_version(value: str) -> str:
    try:
        parse_version(value)
    except RequirementError as e:
        raise ValueError(str(e)) from None
    return value


def _check_requirement(value: str) -> str:
    try:
        parse_requirement(value)
    except RequirementError as e:
        raise ValueError(str(e)) from None
    return value


def pattern(regex: str, expected: str) -> AfterValidator:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"expected {expected}; got {value!r}")
        return value

    return AfterValidator(check)


def _check_public_key(value: str) -> str:
    prefix, _, encoded = value.partition(":")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raw = b""
    if prefix != "ed25519" or len(raw) != 32:
        raise ValueError(
            f"expected an Ed25519 public key written as ed25519:<base64 of 32 bytes>; "
            f"got {value[:60]!r}"
        )
    return value


# An SPDX licence expression: identifiers (or LicenseRef-…) joined by AND / OR / WITH,
# with parentheses. We check the grammar; the identifiers are the author's to pick.
_SPDX_TOKEN = re.compile(r"\(|\)|[A-Za-z0-9][A-Za-z0-9.+-]*")


def _check_license(value: str) -> str:
    tokens = _SPDX_TOKEN.findall(value)
    expecting_id, depth = True, 0
    ok = "".join(tokens) == value.replace(" ", "") and bool(tokens)
    for token in tokens:
        if not ok:
            break
        if token == "(":  # noqa: S105 - a parenthesis, not a password
            ok, depth = expecting_id, depth + 1
        elif token == ")":  # noqa: S105
            ok, depth = not expecting_id and depth > 0, depth - 1
        elif token in ("AND", "OR", "WITH"):
            ok, expecting_id = not expecting_id, True
        else:
            ok, expecting_id = expecting_id, False
    if not ok or expecting_id or depth:
        raise ValueError(
            f"expected an SPDX licence expression such as MIT or Apache-2.0 OR MIT; got {value!r}"
        )
    return value


def _check_date(value: str) -> str:
    try:
        valid = bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) and bool(
            datetime.date.fromisoformat(value)
        )
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(f"expected a date written as YYYY-MM-DD; got {value!r}")
    return value


# Characters that move or hide text rather than show it: C0/C1 controls (terminal
# escapes start with one), format characters (bidi overrides, zero-width joiners and
# spaces), line and paragraph separators, surrogates and private-use characters.
# Shown on a terminal or a page they can make text say something it does not.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def _check_visible(value: str, allowed: str) -> str:
    if value.isprintable():  # no Other or Separator character: the common case, in C
        return value
    for position, char in enumerate(value):
        if char not in allowed and unicodedata.category(char) in _HIDDEN_CATEGORIES:
            label = unicodedata.name(char, "a control character")
            raise ValueError(
                f"expected visible text (no control, bidi or zero-width characters); "
                f"got U+{ord(char):04X} {label} at character {position + 1}"
            )
    return value


def _check_one_line(value: str) -> str:
    return _check_visible(value, allowed="")


def _check_prose(value: str) -> str:
    return _check_visible(value, allowed="\n")


Name = Annotated[str, AfterValidator(_check_name)]
ReleaseDate = Annotated[str, AfterValidator(_check_date)]
Version = Annotated[str, AfterValidator(_check_version)]
RequirementText = Annotated[str, AfterValidator(_check_requirement)]
Slug = Annotated[str, pattern(r"[a-z][a-z0-9-]{0,39}", "a lower-case slug such as 'auth'")]
Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_check_one_line)]
LongText = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_check_prose)]
HttpsUrl = Annotated[
    str, Field(max_length=2000), pattern(r"https://[^\s/$.?#][^\s]*", "an https:// URL")
]
Sha256 = Annotated[str, pattern(r"[0-9a-f]{64}", "64 lower-case hex digits (a sha256)")]
FileName = Annotated[
    str,
    Field(max_length=255),
    pattern(r"[A-Za-z0-9][A-Za-z0-9._+-]*", "a plain file name such as plugin-1.0.0.tar.gz"),
]
GitHubHandle = Annotated[str, pattern(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}", "a GitHub user name")]
PublicKey = Annotated[str, AfterValidator(_check_public_key)]
Keyword = Annotated[str, pattern(r"[a-z0-9][a-z0-9-]{0,31}", "a lower-case keyword")]
ReadmePath = Annotated[str, pattern(r"[A-Za-z0-9_][A-Za-z0-9_./-]*\.md", "a .md path")]
License = Annotated[str, Field(max_length=200), AfterValidator(_check_license)]


def check_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as e:
        raise ValueError(f"expected a URL or a relative path; got {value[:80]!r} ({e})") from None
    # Whitespace other than " " is never printable: one C call per URL, not one per character.
    if " " in value or not value.isprintable():
        raise ValueError(f"expected no spaces or control characters; got {value[:80]!r}")
    if parts.scheme and not parts.netloc:
        raise ValueError(f"expected scheme://host/path; got {value[:80]!r}")
    return value
