"""Did you mean: the plugin names close to a mistyped one, and pip-style requests rewritten.

Pure, no I/O: the caller brings the registry's names (names.json).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from builder.format.names import name_problem, normalise, within_one_edit

_SHOWN = 3  # suggestions at most
_CUTOFF = 0.8  # difflib similarity for names that are more than one edit apart

# `auth-jwt==1.2.0`, `auth-jwt >= 1.0`, `auth-jwt~=1.2`: pip's spelling of a requirement.
_PIP_STYLE = re.compile(
    r"\A(?P<name>[A-Za-z][A-Za-z0-9_.-]*?)\s*(?P<op>===|==|~=|>=|<=|!=|>|<)\s*(?P<version>\S+)\Z"
)
_OPERATORS = {"===": "=", "==": "=", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}


def similar_names(name: str, names: Iterable[str]) -> list[str]:
    """Return up to three registry names a person may have meant by `name`, best first."""
    known = sorted(set(names))
    wanted = normalise(name)
    same = [n for n in known if normalise(n) == wanted and n != name]
    if same:
        return same[:_SHOWN]
    close = [n for n in known if n != name and within_one_edit(wanted, n)]
    rest = difflib.get_close_matches(wanted, known, n=_SHOWN, cutoff=_CUTOFF)
    return list(dict.fromkeys([*close, *rest]))[:_SHOWN]


def _requirement_of(op: str, version: str) -> str | None:
    """Return the plugindex requirement for a pip comparison (None: there is none)."""
    if op == "~=":  # compatible release: ~=1.2 is >=1.2, <2; ~=1.2.3 is >=1.2.3, <1.3
        return f"^{version}" if version.count(".") == 1 else f"~{version}"
    mapped = _OPERATORS.get(op)
    return f"{mapped}{version}" if mapped else None


def request_suggestion(text: str) -> str | None:
    """Return the plugindex spelling of a mistyped request (`auth-jwt==1.2.0`, `Auth_JWT`)."""
    name, at, requirement = text.partition("@")
    if at and requirement.startswith("=="):  # auth-jwt@==1.2.0
        return f"{name}@={requirement[2:]}"
    if not at and (found := _PIP_STYLE.match(text)):
        fixed_name = normalise(found["name"])
        requirement_text = _requirement_of(found["op"], found["version"])
        if requirement_text is not None and name_problem(fixed_name) is None:
            return f"{fixed_name}@{requirement_text}"
    fixed = normalise(name)
    if fixed != name and name_problem(fixed) is None:
        return fixed + (at + requirement if at else "")
    return None
