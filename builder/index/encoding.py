"""How every JSON file of the sparse index is serialised: one form, the same bytes.

Keys sorted, no whitespace, UTF-8 as is: the same value always gives the same bytes,
and a value encoded alone is byte for byte what it is inside a larger document, so
a listing page can be put together from its plugins' entries encoded once (see
`PluginFacts.summary`).
"""

from __future__ import annotations

import json
from typing import Any

_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def compact(value: Any) -> bytes:
    """Return a value serialised as it is inside any document."""
    return _ENCODER.encode(value).encode("utf-8")


def encode(document: Any) -> bytes:
    """Serialise a whole document (a file: it ends with a newline)."""
    return compact(document) + b"\n"
