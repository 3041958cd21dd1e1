"""A deprecation is the owners' word only when their plugin.yaml signature covers it.

A registry (or whoever holds its TUF keys) that adds, rewrites or removes a
deprecation re-signs its own metadata, so TUF lets the document through; the owners'
signature over plugin.yaml does not follow. Against signed builds of the demo index
served on 127.0.0.1, deprecated by its owners (`tests/test_client_deprecated.py`).
"""

from __future__ import annotations

import json

from tests.test_client import Client
from tests.test_client_deprecated import BASIC, BASIC_SAID, deprecated, served

__all__ = ["deprecated", "served"]  # the fixtures this module uses

ADDED = "Abandoned; install evil-plugin."


def _info(client: Client, name: str) -> dict[str, object]:
    result = client.run("info", name, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_a_deprecation_the_owners_signed_is_shown_as_they_wrote_it(deprecated: Client) -> None:
    data = _info(deprecated, "auth-basic")
    assert data["deprecated"] == {"message": BASIC, "replacement": "auth-jwt"}
    assert str(data["manifest_signature"]).startswith("verified")
    shown = deprecated.run("info", "auth-basic")
    assert "NOT SIGNED" not in shown.output


def test_a_deprecation_the_registry_added_is_marked_unsigned_without_a_replacement(
    deprecated: Client,
) -> None:
    """auth-jwt was never deprecated by its owners: the registry's word is marked so."""
    document = deprecated.document("auth-jwt")
    document["deprecated"] = {"message": ADDED, "replacement": "auth-basic"}
    deprecated.write_document("auth-jwt", document)
    data = _info(deprecated, "auth-jwt")
    assert data["deprecated"] == {
        "message": (
            f"{ADDED} [NOT SIGNED by the owners (its plugin.yaml carries no owners' "
            "signature): the registry may have added it; it names 'auth-basic' to use instead]"
        ),
        "replacement": None,
    }
    assert (
        data["manifest_signature"] == "NOT VERIFIED: its plugin.yaml carries no owners' signature"
    )
    installed = deprecated.run("install", "auth-jwt")
    assert installed.exit_code == 0, installed.output
    assert f"auth-jwt is deprecated: {ADDED} [NOT SIGNED by the owners" in installed.output
    assert "use auth-basic instead" not in installed.output


def test_a_replacement_the_registry_changed_is_not_offered(deprecated: Client) -> None:
    document = deprecated.document("auth-basic")
    document["deprecated"]["replacement"] = "template-faker"
    deprecated.write_document("auth-basic", document)
    result = deprecated.run("install", "auth-basic")
    assert result.exit_code == 0, result.output
    assert BASIC_SAID not in result.output
    assert "use template-faker instead" not in result.output
    assert "NOT SIGNED by the owners" in result.output
    assert "it names 'template-faker' to use instead" in result.output


def test_a_deprecation_the_registry_removed_leaves_a_signature_that_fails(
    deprecated: Client,
) -> None:
    """Nothing to show, but `info` says the owners' signature no longer holds."""
    document = deprecated.document("auth-basic")
    del document["deprecated"]
    deprecated.write_document("auth-basic", document)
    data = _info(deprecated, "auth-basic")
    assert data["deprecated"] is None
    assert data["manifest_signature"] == (
        "NOT VERIFIED: its plugin.yaml signature does not verify: the signed statement "
        "differs from this one"
    )
