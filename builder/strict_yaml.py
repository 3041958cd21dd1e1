"""Strict YAML: libyaml's event stream built into plain values, keeping line numbers.

We build values from parser events rather than using PyYAML's constructor because
the events carry what strictness needs and the constructor throws away: anchors and
aliases (refused), explicit tags (refused), duplicate keys (refused) and the line of
every key and item. Plain scalars resolve by the YAML 1.2 core schema, so `no` stays
the string "no" while `1.10` is a number — which the models then refuse where a
string is expected, instead of silently reading version 1.10 as 1.1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import yaml

from builder.errors import Problem, SourceError

try:  # libyaml is the fast path; the pure-Python parser gives the same events.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - every supported platform ships libyaml wheels
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

# Largest source file we accept, in bytes. Manifests are a few hundred bytes; a file
# this big is a mistake or an attack on the parser.
MAX_SOURCE_BYTES = 256 * 1024

Path_ = tuple[str | int, ...]

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
        return int(text, 10)
    if _OCT.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text) or _INF.match(text) or _NAN.match(text):
        return float(text.replace(".inf", "inf").replace(".Inf", "inf").replace(".INF", "inf"))
    return text


def read_capped(path: Path, shown: Path) -> bytes:
    """Read a source file, refusing one over MAX_SOURCE_BYTES."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_SOURCE_BYTES + 1)
    except OSError as e:
        raise SourceError(Problem(shown, None, "", f"cannot read file ({e.strerror})")) from e
    if len(data) > MAX_SOURCE_BYTES:
        raise SourceError(Problem(shown, None, "", f"file is too large (expected at most "
                                  f"{MAX_SOURCE_BYTES} bytes, got more)"))
    return data


def decode(data: bytes, shown: Path) -> str:
    """Decode source bytes as UTF-8, naming the line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise SourceError(
            Problem(shown, line, "", f"file is not valid UTF-8 (expected UTF-8 text, "
                    f"got byte 0x{data[e.start]:02x})")
        ) from e


class _Builder:
    """Builds values from parser events, one event at a time."""

    def __init__(self, shown: Path, track_lines: bool) -> None:
        self.shown = shown
        self.track_lines = track_lines
        self.doc = Document(None)
        # Open containers: [container, its path, pending mapping key or None].
        self.stack: list[list[Any]] = []
        self.documents = 0

    def fail(self, event: Any, message: str) -> SourceError:
        return SourceError(Problem(self.shown, event.start_mark.line + 1, "", message))

    def feed(self, event: Any) -> None:
        kind = type(event)
        if kind in _NODE_EVENTS:
            self.refuse_decorations(event)
            if self.expecting_key():
                self.take_key(event)
                return
        if kind is yaml.ScalarEvent:
            if event.style:  # quoted or block: always text
                self.attach(event.value, event)
            else:  # plain: '' from libyaml, None from PyYAML
                value = resolve_plain(event.value)
                child = self.attach(value, event)
                if self.track_lines and type(value) is not str:
                    self.doc.raw[child] = event.value
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            container: dict[str, Any] | list[Any] = {} if kind is yaml.MappingStartEvent else []
            self.stack.append([container, self.attach(container, event), None])
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            self.stack.pop()
        elif kind is yaml.AliasEvent:
            raise self.fail(event, f"aliases are not allowed (expected plain values, "
                            f"got alias *{event.anchor})")
        elif kind is yaml.DocumentStartEvent:
            self.documents += 1
            if self.documents > 1:
                raise self.fail(event, "more than one YAML document (expected exactly one)")

    def refuse_decorations(self, event: Any) -> None:
        if event.anchor is not None:
            raise self.fail(event, f"anchors are not allowed (expected plain values, "
                            f"got anchor &{event.anchor})")
        if event.tag is not None:
            raise self.fail(event, f"tags are not allowed (expected plain values, "
                            f"got tag {event.tag})")

    def expecting_key(self) -> bool:
        return bool(self.stack) and type(self.stack[-1][0]) is dict and self.stack[-1][2] is None

    def take_key(self, event: Any) -> None:
        kind = type(event)  # compared, not narrowed: events stay untyped here
        if kind is not yaml.ScalarEvent:
            raise self.fail(event, "mapping keys must be text (got a mapping or list)")
        frame = self.stack[-1]
        if event.value in frame[0]:
            raise self.fail(event, f"duplicate key {event.value!r} (expected each key once "
                            f"in a mapping)")
        frame[2] = event.value
        if self.track_lines:
            self.doc.lines[(*frame[1], event.value)] = event.start_mark.line + 1

    def attach(self, value: Any, event: Any) -> Path_:
        """Place `value` in the open container and return its path."""
        line = event.start_mark.line + 1
        if not self.stack:
            self.doc.value = value
            if self.track_lines:
                self.doc.lines[()] = line
            return ()
        frame = self.stack[-1]
        container, path, key = frame
        if type(container) is list:
            child: Path_ = (*path, len(container))
            container.append(value)
            if self.track_lines:
                self.doc.lines[child] = line
            return child
        container[key] = value
        frame[2] = None
        return (*path, key)


_NODE_EVENTS = (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)


def parse(text: str, shown: Path, *, track_lines: bool = False) -> Document:
    """Parse one YAML document strictly; raise SourceError on anything ambiguous."""
    builder = _Builder(shown, track_lines)
    try:
        events: Iterator[Any] = yaml.parse(text, Loader=_Loader)
        for event in events:
            builder.feed(event)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        problem = e.problem or "invalid YAML"
        raise SourceError(Problem(shown, line, "", f"invalid YAML: {problem}")) from e
    except yaml.YAMLError as e:
        raise SourceError(Problem(shown, None, "", f"invalid YAML: {e}")) from e
    return builder.doc


def load(path: Path, shown: Path, *, track_lines: bool = False) -> Document:
    """Read and parse a source file; see `parse`."""
    return parse(decode(read_capped(path, shown), shown), shown, track_lines=track_lines)
