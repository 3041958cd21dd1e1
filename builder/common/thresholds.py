"""A rule the registry side and the client both hold a TUF root to: a key counts once.

A root could list one public key under two key ids and so let one signature count
twice toward a threshold; python-tuf counts signatures by key id. The builder
refuses to sign with such a root and the client refuses to trust one, with the
same message. Kept apart from python-tuf's types: callers pass each key's public
value by key id.
"""

from __future__ import annotations

from collections.abc import Mapping

from builder.common.errors import PlugindexError


def check_distinct_keys(
    public: Mapping[str, str], where: str, error: type[PlugindexError] = PlugindexError
) -> None:
    """Raise `error` if two key ids name the same public key (key id -> public value)."""
    seen: dict[str, str] = {}
    for keyid, value in public.items():
        if value in seen:
            raise error(
                f"{where}: keys {seen[value][:16]} and {keyid[:16]} are the same public key "
                f"(a key counts only once toward a threshold)"
            )
        seen[value] = keyid
