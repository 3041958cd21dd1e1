"""A deprecated plugin as users meet it: `info` shows it, `install` warns, `list` and
`outdated` mark it, and `--json` carries it.

Against signed builds served on 127.0.0.1 (`tests/signed_build.py`) of a copy of the
demo index where the owners deprecated plugins with `plugindex deprecate`'s own
function: auth-basic in favour of auth-jwt, template-crypto (which auth-jwt needs)
with no replacement.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.authoring.manifest import deprecate, undeprecate
from tests.conftest import demo_key
from tests.fault_server import serve_recorded
from tests.signed_build import build_signed
from tests.test_client import HOSTILE, Client, installed

BASIC = "Basic auth sends the password on every request."
CRYPTO = "No longer maintained."
# auth-basic's line in `info` and the warnings, after its name.
BASIC_SAID = f"is deprecated (use auth-jwt instead): {BASIC}"


def deprecate_demo(index: Path) -> None:
    """Deprecate auth-basic (for auth-jwt) and template-crypto (no replacement), signed."""
    deprecate(
        index,
        "auth-basic",
        message=BASIC,
        replacement="auth-jwt",
        key=demo_key("jan-kowalski"),
    )
    deprecate(
        index, "template-crypto", message=CRYPTO, replacement=None, key=demo_key("mara-okafor")
    )


@pytest.fixture
def served(index: Path, tmp_path: Path) -> Iterator[Client]:
    """The demo registry as it was, served; `deprecated` then rebuilds it deprecated."""
    out = tmp_path / "out"
    build_signed(index, out)
    with serve_recorded(out) as (url, recorder):
        yield Client(out, url, recorder, tmp_path / "home", index)


@pytest.fixture
def deprecated(served: Client) -> Client:
    """The registry after its owners deprecated auth-basic and template-crypto."""
    deprecate_demo(served.index)
    build_signed(served.index, served.out)
    return served


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --- info --------------------------------------------------------------------------------


def test_info_shows_the_deprecation_under_the_name_with_the_replacement(
    deprecated: Client,
) -> None:
    shown = deprecated.run("info", "auth-basic")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("auth-basic 1.0.0: ")
    assert lines[1] == f"  DEPRECATED (use auth-jwt instead): {BASIC}"
    data = _json(deprecated.run("info", "auth-basic", "--json"))
    assert data["deprecated"] == {"message": BASIC, "replacement": "auth-jwt"}


def test_info_without_a_replacement_and_of_a_plugin_not_deprecated(deprecated: Client) -> None:
    assert deprecated.run("info", "template-crypto").stdout.splitlines()[1] == (
        f"  DEPRECATED: {CRYPTO}"
    )
    assert _json(deprecated.run("info", "template-crypto", "--json"))["deprecated"] == {
        "message": CRYPTO,
        "replacement": None,
    }
    fine = deprecated.run("info", "auth-jwt")
    assert "DEPRECATED" not in fine.output
    assert _json(deprecated.run("info", "auth-jwt", "--json"))["deprecated"] is None


# --- install -----------------------------------------------------------------------------


def test_install_warns_about_a_deprecated_plugin_and_names_the_replacement(
    deprecated: Client,
) -> None:
    result = deprecated.run("install", "auth-basic")
    assert result.exit_code == 0, result.output
    assert result.stderr == f"warning: auth-basic {BASIC_SAID}\n"
    assert result.stdout == "installed auth-basic 1.0.0\n"
    assert deprecated.lock()["plugins"]["auth-basic"]["deprecated"] == {
        "message": BASIC,
        "replacement": "auth-jwt",
    }


def test_a_deprecated_dependency_is_warned_about_with_who_needs_it(deprecated: Client) -> None:
    result = deprecated.run("install", "auth-jwt")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"warning: template-crypto (needed by auth-jwt 1.2.0) is deprecated: {CRYPTO}\n"
    )
    assert installed(deprecated) == {"auth-jwt": "1.2.0", "template-crypto": "1.1.1"}


def test_the_warning_comes_before_any_download(deprecated: Client) -> None:
    """The plan (with its warnings) reaches the caller before an artifact is requested."""
    from builder.client.install import Outcome, Request, install
    from builder.client.resolve import Options

    seen: list[tuple[list[str], int]] = []

    def on_plan(outcome: Outcome) -> None:
        downloads = sum(1 for h in deprecated.recorder.hits if h.path.startswith("/artifacts/"))
        seen.append((outcome.warnings, downloads))

    install(
        deprecated.registry(),
        deprecated.plugins,
        [Request("auth-basic")],
        options=Options(),
        on_plan=on_plan,
    )
    assert seen == [([f"auth-basic {BASIC_SAID}"], 0)]


def test_a_dry_run_warns_too_and_json_changes_carry_the_deprecation(deprecated: Client) -> None:
    planned = deprecated.run("install", "auth-jwt", "--dry-run")
    assert planned.stdout == "would install auth-jwt 1.2.0\nwould install template-crypto 1.1.1\n"
    assert "template-crypto (needed by auth-jwt 1.2.0) is deprecated" in planned.stderr
    data = _json(deprecated.run("install", "auth-jwt", "--json"))
    # Like a note, the field is there only when there is one.
    assert {c["name"]: c.get("deprecated", "absent") for c in data["changes"]} == {
        "auth-jwt": "absent",
        "template-crypto": {"message": CRYPTO, "replacement": None},
    }
    assert data["warnings"] == [
        f"template-crypto (needed by auth-jwt 1.2.0) is deprecated: {CRYPTO}"
    ]


def test_asking_again_for_an_installed_deprecated_plugin_warns_again(deprecated: Client) -> None:
    assert deprecated.run("install", "auth-basic").exit_code == 0
    again = deprecated.run("install", "auth-basic")
    assert again.exit_code == 0, again.output
    assert again.stdout == "already installed: auth-basic 1.0.0\n"
    assert again.stderr == f"warning: auth-basic {BASIC_SAID}\n"
    other = deprecated.run("install", "datasource-csv")  # not asked for again: no warning
    assert other.exit_code == 0 and other.stderr == ""


def test_a_plugin_not_deprecated_installs_without_a_warning(served: Client) -> None:
    result = served.run("install", "auth-jwt", "--json")
    data = _json(result)
    assert data["warnings"] == [] and result.stderr == ""
    assert ["deprecated" in c for c in data["changes"]] == [False, False]
    assert served.lock()["plugins"]["auth-jwt"]["deprecated"] is None


# --- list and outdated: deprecated since install ------------------------------------------

LIST_WARNINGS = (
    f"warning: auth-basic 1.0.0 (installed) {BASIC_SAID}\n"
    f"warning: template-crypto 1.1.1 (installed) is deprecated: {CRYPTO}\n"
)
LISTED = (
    "auth-basic 1.0.0 (you asked for it; DEPRECATED, use auth-jwt instead)\n"
    "auth-jwt 1.2.0 (you asked for it)\n"
    "template-crypto 1.1.1 (dependency; DEPRECATED)\n"
)


def test_list_marks_a_deprecation_made_since_install_and_remembers_it_offline(
    served: Client,
) -> None:
    assert served.run("install", "auth-jwt", "auth-basic").exit_code == 0
    assert "DEPRECATED" not in served.run("list").output
    deprecate_demo(served.index)
    build_signed(served.index, served.out)
    listed = served.run("list")
    assert listed.exit_code == 0, listed.output
    assert (listed.stdout, listed.stderr) == (LISTED, LIST_WARNINGS)
    # What this online run saw is recorded, so a run without the registry shows it too.
    assert served.lock()["plugins"]["template-crypto"]["deprecated"] == {
        "message": CRYPTO,
        "replacement": None,
    }
    offline = served.run("list", PLUGINDEX_REGISTRY="")
    assert (offline.stdout, offline.stderr) == (LISTED, LIST_WARNINGS)
    rows = _json(served.run("list", "--json", PLUGINDEX_REGISTRY=""))["plugins"]
    assert {r["name"]: r["deprecated"] for r in rows} == {
        "auth-basic": {"message": BASIC, "replacement": "auth-jwt"},
        "auth-jwt": None,
        "template-crypto": {"message": CRYPTO, "replacement": None},
    }


def test_a_deprecation_taken_back_is_cleared_from_list(served: Client) -> None:
    assert served.run("install", "auth-basic").exit_code == 0
    deprecate_demo(served.index)
    build_signed(served.index, served.out)
    assert "DEPRECATED" in served.run("list").stdout
    undeprecate(served.index, "auth-basic", key=demo_key("jan-kowalski"))
    build_signed(served.index, served.out)
    listed = served.run("list")
    assert (listed.stdout, listed.stderr) == ("auth-basic 1.0.0 (you asked for it)\n", "")
    assert served.lock()["plugins"]["auth-basic"]["deprecated"] is None


def test_an_unreachable_registry_leaves_the_deprecation_last_seen(served: Client) -> None:
    assert served.run("install", "auth-basic").exit_code == 0
    deprecate_demo(served.index)
    build_signed(served.index, served.out)
    assert served.run("list").exit_code == 0  # seen online, recorded
    dead = served.run("list", PLUGINDEX_REGISTRY="http://127.0.0.1:9/")
    assert dead.stdout == "auth-basic 1.0.0 (you asked for it; DEPRECATED, use auth-jwt instead)\n"
    assert "cannot check for yanks or deprecations (showing what was last seen)" in dead.stderr
    assert f"warning: auth-basic 1.0.0 (installed) {BASIC_SAID}\n" in dead.stderr


def test_outdated_lists_a_deprecated_plugin_even_at_its_newest(served: Client) -> None:
    assert served.run("install", "auth-jwt").exit_code == 0
    assert served.run("outdated").stdout == "everything is up to date\n"
    deprecate_demo(served.index)
    build_signed(served.index, served.out)
    result = served.run("outdated")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "name             installed           compatible  newest",
        "template-crypto  1.1.1 (deprecated)  1.1.1       1.1.1",
    ]
    assert result.stderr == f"warning: template-crypto 1.1.1 (installed) is deprecated: {CRYPTO}\n"
    rows = _json(served.run("outdated", "--json"))["plugins"]
    assert {r["name"]: (r["outdated"], r["deprecated"]) for r in rows} == {
        "auth-jwt": (False, None),
        "template-crypto": (False, {"message": CRYPTO, "replacement": None}),
    }


# --- what the registry says reaches the terminal escaped ------------------------------------


def _assert_inert(text: str) -> None:
    hidden = {c for c in text if not c.isprintable() and c != "\n"}
    assert hidden == set(), sorted(hidden)


def test_a_hostile_deprecation_message_is_escaped_everywhere(deprecated: Client) -> None:
    """A registry that rewrites the message (and re-signs its metadata) gets no escape through."""
    document = deprecated.document("auth-basic")
    document["deprecated"]["message"] = HOSTILE
    deprecated.write_document("auth-basic", document)
    for args in (["info", "auth-basic"], ["install", "auth-basic"], ["list"], ["outdated"]):
        result = deprecated.run(*args)
        assert result.exit_code == 0, result.output
        assert "Evil\\x1b[2J" in result.output, args
        _assert_inert(result.output)
    as_json = deprecated.run("list", "--json")
    _assert_inert(as_json.output)
    message = json.loads(as_json.stdout)["plugins"][0]["deprecated"]["message"]
    assert message.startswith(f"{HOSTILE} [NOT SIGNED by the owners")  # the owners never said it


@pytest.mark.parametrize(
    "replacement", ["../../etc", "Auth-JWT", "auth-jwt\x1b[2J"], ids=["path", "case", "escape"]
)
def test_a_replacement_that_is_not_a_plugin_name_refuses_the_document(
    deprecated: Client, replacement: str
) -> None:
    document = deprecated.document("auth-basic")
    document["deprecated"]["replacement"] = replacement
    deprecated.write_document("auth-basic", document)
    result = deprecated.run("info", "auth-basic")
    assert result.exit_code == 3, result.output
    assert "auth-basic.json: deprecated.replacement: not a plugin name" in result.stderr
    _assert_inert(result.output)
