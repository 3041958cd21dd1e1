"""Strict YAML: libyaml's event stream built into plain values, keeping line numbers.

We build values from parser events rather than using PyYAML's constructor because
the events carry what strictness needs and the constructor throws away: anchors and
aliases (refused), explicit tags (refused), duplicate keys (refused) and the line of
every key and item. Plain scalars resolve by the YAML 1.2 core schema, so `no` stays
the string "no" while `1.10` is a number — which the models then refuse where a
string is expected, instead of silently reading version 1.10 as 1.1.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from builder.common.errors import Problem, SourceError
from builder.common.limits import DEFAULT_LIMITS

try:  # libyaml is the fast path; the pure-Python parser gives the same events.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - every supported platform ships libyaml wheels
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

# Largest source file we accept, in bytes. Manifests are a few hundred bytes; a file
# this big is a mistake or an attack on the parser.
MAX_SOURCE_BYTES = DEFAULT_LIMITS.source_bytes

Path_ = tuple[str | int, ...]

_MAX_DIGITS = 64
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"[-+]?[0-9]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)\Z")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)\Z")


@dataclass
class Document:
    """A parsed file: its value, and (when asked for) where each part of it stands."""

    value: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    # Original text of plain scalars that were not read as strings, for messages
    # such as "1.10 was read as the number 1.1".
    raw: dict[Path_, str] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int:
        """Return the line of `path`, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


def resolve_plain(text: str) -> Any:
    """Return the value of a plain (unquoted) scalar under the YAML 1.2 core schema."""
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    first = text[0]
    if not (first.isdigit() or first in "+-."):
        return text  # the common case: a word cannot be a number
    if _INT.match(text):
        # Past this many digits it is no count of anything; Python refuses very long
        # ones anyway. Keep the text, so the model reports "expected an integer".
        return int(text, 10) if len(text) <= _MAX_DIGITS else text
    if _OCT.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    if _NAN.match(text):
        return float("nan")
    if _INF.match(text):
        return float(text.lower().replace(".inf", "inf"))
    if _FLOAT.match(text):
        return float(text)
    return text


def read_capped(path: Path | str, shown: Path | str) -> bytes:
    """Read a source file, refusing one over MAX_SOURCE_BYTES."""
    # Plain file descriptor calls: this runs for every file of the index on a cold
    # build, where a buffered file object (and its fstat) is a tenth of reading.
    chunks: list[bytes] = []
    size = 0
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            while size <= MAX_SOURCE_BYTES:
                chunk = os.read(fd, MAX_SOURCE_BYTES + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
    except OSError as e:
        raise SourceError(Problem(Path(shown), None, "", f"cannot read file ({e.strerror})")) from e
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if len(data) > MAX_SOURCE_BYTES:
        raise SourceError(
            Problem(
                Path(shown),
                None,
                "",
                f"file is too large (expected at most {MAX_SOURCE_BYTES} bytes, got more)",
            )
        )
    return data


def decode(data: bytes, shown: Path | str) -> str:
    """Decode source bytes as UTF-8, naming the line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise SourceError(
            Problem(
                Path(shown),
                line,
                "",
                f"file is not valid UTF-8 (expected UTF-8 text, got byte 0x{data[e.start]:02x})",
            )
        ) from e


def parse(  # noqa: PLR0912, PLR0915 - the hot loop, flat on purpose (see docstring)
    text: str, shown: Path | str, *, track_lines: bool = False
) -> Document:
    """Parse one YAML document strictly; raise SourceError on anything ambiguous.

    This loop runs for every event of every source file, so it is written flat, with
    the rare cases (errors) out of line.
    """
    doc = Document(None)
    # Open containers: [container, its path, pending mapping key or None].
    stack: list[list[Any]] = []
    documents = 0
    loader = _Loader(text)
    scalar, mapping_start, sequence_start = (
        yaml.ScalarEvent,
        yaml.MappingStartEvent,
        yaml.SequenceStartEvent,
    )
    try:
        while loader.check_event():
            event: Any = loader.get_event()
            kind = type(event)
            if kind is scalar or kind is mapping_start or kind is sequence_start:
                if event.anchor is not None or event.tag is not None:
                    raise _decorated(event, shown)
                if stack:
                    frame = stack[-1]
                    container = frame[0]
                    if type(container) is dict and frame[2] is None:  # a mapping key
                        if kind is not scalar:
                            raise _fail(
                                event, shown, "mapping keys must be text (got a mapping or list)"
                            )
                        key = event.value
                        if key in container:
                            raise _fail(
                                event,
                                shown,
                                f"duplicate key {key!r} (expected each key once in a mapping)",
                            )
                        frame[2] = key
                        if track_lines:
                            doc.lines[(*frame[1], key)] = event.start_mark.line + 1
                        continue
                if kind is scalar:
                    # Plain style is '' from libyaml and None from PyYAML; quoted and
                    # block scalars are always text.
                    value = event.value if event.style else resolve_plain(event.value)
                else:
                    value = {} if kind is mapping_start else []
                # Attach the value to the open container.
                if not stack:
                    doc.value = value
                    path: Path_ = ()
                    if track_lines:
                        doc.lines[()] = event.start_mark.line + 1
                else:
                    frame = stack[-1]
                    container = frame[0]
                    if type(container) is list:
                        path = (*frame[1], len(container))
                        container.append(value)
                        if track_lines:
                            doc.lines[path] = event.start_mark.line + 1
                    else:
                        path = (*frame[1], frame[2])
                        container[frame[2]] = value
                        frame[2] = None
                if kind is not scalar:
                    stack.append([value, path, None])
                elif track_lines and type(value) is not str:
                    doc.raw[path] = event.value
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                stack.pop()
            elif kind is yaml.AliasEvent:
                raise _fail(
                    event,
                    shown,
                    f"aliases are not allowed (expected plain values, got alias *{event.anchor})",
                )
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _fail(event, shown, "more than one YAML document (expected exactly one)")
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        character = e.character if isinstance(e.character, int) else ord(e.character)
        raise SourceError(
            Problem(
                Path(shown),
                line,
                "",
                f"invalid YAML: control character U+{character:04X} is not allowed",
            )
        ) from e
    except yaml.MarkedYAMLError as e:
        raise SourceError(_syntax_problem(e, shown)) from e
    except yaml.YAMLError as e:
        raise SourceError(Problem(Path(shown), None, "", f"invalid YAML: {e}")) from e
    finally:
        loader.dispose()
    return doc


def _fail(event: Any, shown: Path | str, message: str) -> SourceError:
    return SourceError(Problem(Path(shown), event.start_mark.line + 1, "", message))


def _decorated(event: Any, shown: Path | str) -> SourceError:
    if event.anchor is not None:
        return _fail(
            event,
            shown,
            f"anchors are not allowed (expected plain values, got anchor &{event.anchor})",
        )
    return _fail(event, shown, f"tags are not allowed (expected plain values, got tag {event.tag})")


def _syntax_problem(error: yaml.MarkedYAMLError, shown: Path | str) -> Problem:
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark else None
    message = f"invalid YAML: {error.problem or 'syntax error'}"
    context = error.context_mark
    if error.context and context is not None and context.line + 1 != line:
        message += f" ({error.context} started on line {context.line + 1})"
    return Problem(Path(shown), line, "", message)


def load(path: Path, shown: Path, *, track_lines: bool = False) -> Document:
    """Read and parse a source file; see `parse`."""
    return parse(decode(read_capped(path, shown), shown), shown, track_lines=track_lines)
