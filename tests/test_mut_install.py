"""Install, upgrade, uninstall and repin through the Python API, against a local build.

Fast on purpose (a build of the bundled index takes a fraction of a second and is read
in place, no server): these are the tests `benchmarks/mutation.py` runs for every
mutant of `builder/client/install.py`. What a person sees is asserted: the outcome
(changes, notes, warnings), the lockfile, the pinned keys and the files on disk.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from builder.authoring.manifest import deprecate
from builder.client.install import (
    Change,
    InstallError,
    Outcome,
    Request,
    dependents_of,
    install,
    repin,
    roots_of,
    uninstall,
    upgrade,
)
from builder.client.lockfile import (
    LockedDeprecation,
    Lockfile,
    read_lockfile,
    read_trust,
    write_lockfile,
)
from builder.client.registry import Registry
from builder.client.resolve import Options, ResolutionError
from builder.client.signatures import TrustError
from builder.client.unpack import UnsafeArchiveError
from builder.common import layout
from builder.common.fetch import LocalFetcher
from builder.common.files import sha256_of_file
from builder.common.limits import DEFAULT_LIMITS
from builder.index.build import build
from tests import mini_index
from tests.conftest import copy_demo_index, demo_key

HOST = Options(host="0.4.0")


@dataclass
class Local:
    """A build of the bundled index, read in place, and a plugins folder."""

    out: Path
    plugins: Path

    def registry(self) -> Registry:
        """Return a fresh registry over the build (nothing remembered between commands)."""
        return Registry(LocalFetcher(self.out))

    def document(self, name: str) -> dict[str, Any]:
        """Return a plugin's published document."""
        data: dict[str, Any] = json.loads((self.out / layout.index_path(name)).read_bytes())
        return data

    def entry(self, name: str, version: str) -> dict[str, Any]:
        """Return one version's entry of a plugin's document."""
        return next(v for v in self.document(name)["versions"] if v["version"] == version)

    def lock(self) -> dict[str, Any]:
        """Return the lockfile as written (empty when there is none)."""
        path = self.plugins / "plugindex.lock"
        data: dict[str, Any] = json.loads(path.read_bytes()) if path.exists() else {}
        return data

    def installed(self) -> dict[str, str]:
        """Return the installed versions by name."""
        return {name: p["version"] for name, p in self.lock().get("plugins", {}).items()}


@pytest.fixture
def local(built: Path, tmp_path: Path) -> Local:
    return Local(built, tmp_path / "plugins")


def changes(outcome: Outcome) -> list[tuple[str, str | None, str | None, str]]:
    """Return each change as (name, old, new, action)."""
    return [(c.name, c.old, c.new, c.action) for c in outcome.changes]


# --- install ----------------------------------------------------------------------------


def test_install_records_the_closure_with_what_verified_it(local: Local) -> None:
    """Every field of the lockfile entry comes from the verified document and the files."""
    outcome = install(local.registry(), local.plugins, [Request("auth-jwt")], options=HOST)
    assert changes(outcome) == [
        ("auth-jwt", None, "1.2.0", "install"),
        ("template-crypto", None, "1.1.1", "install"),
    ]
    assert outcome.unchanged == [] and outcome.warnings == [] and not outcome.dry_run
    lock = local.lock()
    assert lock["registry"] == "plugindex-demo"
    assert lock["source"] == str(local.out)
    assert list(lock["plugins"]) == ["auth-jwt", "template-crypto"]
    for name, version, explicit in (
        ("auth-jwt", "1.2.0", True),
        ("template-crypto", "1.1.1", False),
    ):
        entry, locked = local.entry(name, version), lock["plugins"][name]
        artifact = entry["artifact"]
        assert locked["version"] == version
        assert locked["explicit"] is explicit
        assert locked["requested"] is None
        assert locked["sha256"] == artifact["sha256"]
        assert locked["size"] == artifact["size"]
        assert locked["filename"] == artifact["filename"]
        assert locked["host"] == entry["compatibility"]["host"] == ">=0.3, <0.5"
        assert locked["signed_by"] and locked["signed_by"] in json.dumps(entry)
        assert locked["yanked"] is None and locked["deprecated"] is None
        files = {
            path.relative_to(local.plugins / name).as_posix(): sha256_of_file(path)[0]
            for path in (local.plugins / name).rglob("*")
            if path.is_file()
        }
        assert locked["files"] == files and files
    assert lock["plugins"]["auth-jwt"]["dependencies"] == [
        {"kind": "runtime", "name": "template-crypto", "req": "^1.1"}
    ]
    trust = read_trust(local.plugins)
    assert sorted(trust.plugins) == ["auth-jwt", "template-crypto"]
    assert all(pin.keys for pin in trust.plugins.values())


def test_a_requirement_is_recorded_and_asking_again_only_changes_it(local: Local) -> None:
    """Re-asking for an installed plugin with a new requirement it meets downloads nothing."""
    install(local.registry(), local.plugins, [Request("template-crypto", "^1.0")], options=HOST)
    assert local.lock()["plugins"]["template-crypto"]["requested"] == "^1.0"
    marker = local.plugins / "template-crypto" / "marker"
    marker.write_text("still the same folder", encoding="utf-8")
    again = install(
        local.registry(), local.plugins, [Request("template-crypto", "~1.1")], options=HOST
    )
    assert again.changes == []
    assert [(k.name, k.version) for k in again.unchanged] == [("template-crypto", "1.1.1")]
    assert local.lock()["plugins"]["template-crypto"]["requested"] == "~1.1"
    assert marker.exists()  # not unpacked again
    plain = install(local.registry(), local.plugins, [Request("template-crypto")], options=HOST)
    assert plain.changes == []
    assert local.lock()["plugins"]["template-crypto"]["requested"] == "~1.1"


def test_a_dependency_asked_for_by_name_keeps_its_earlier_requirement(local: Local) -> None:
    """A plugin reinstalled as a dependency keeps what the user once asked of it."""
    install(local.registry(), local.plugins, [Request("auth-jwt", "=1.1.0")], options=HOST)
    assert local.installed() == {"auth-jwt": "1.1.0", "template-crypto": "1.1.1"}
    moved = install(local.registry(), local.plugins, [Request("auth-jwt")], options=HOST)
    assert changes(moved) == [("auth-jwt", "1.1.0", "1.2.0", "upgrade")]
    locked = local.lock()["plugins"]["auth-jwt"]
    assert locked["explicit"] is True and locked["requested"] is None


def test_an_older_pin_is_a_downgrade_and_upgrade_keeps_within_it(local: Local) -> None:
    install(local.registry(), local.plugins, [Request("template-crypto")], options=HOST)
    down = install(
        local.registry(), local.plugins, [Request("template-crypto", "=1.0.0")], options=HOST
    )
    assert changes(down) == [("template-crypto", "1.1.1", "1.0.0", "downgrade")]
    assert local.lock()["plugins"]["template-crypto"]["explicit"] is True
    up = upgrade(local.registry(), local.plugins, [], options=HOST)
    assert up.changes == [] and local.installed() == {"template-crypto": "1.0.0"}


def test_a_dependency_held_back_by_a_pin_is_explained(local: Local) -> None:
    """Installing below the newest version says why, in the change's note."""
    outcome = install(
        local.registry(),
        local.plugins,
        [Request("template-crypto", "=1.0.0"), Request("auth-jwt")],
        options=HOST,
    )
    assert changes(outcome) == [
        ("auth-jwt", None, "1.0.0", "install"),
        ("template-crypto", None, "1.0.0", "install"),
    ]
    note = outcome.changes[0].note
    assert note is not None and "1.2.0" in note and "template-crypto" in note


def test_a_dry_run_plans_but_writes_nothing(local: Local) -> None:
    outcome = install(
        local.registry(), local.plugins, [Request("auth-jwt")], options=HOST, dry_run=True
    )
    assert outcome.dry_run
    assert changes(outcome) == [
        ("auth-jwt", None, "1.2.0", "install"),
        ("template-crypto", None, "1.1.1", "install"),
    ]
    assert not local.plugins.exists()
    install(local.registry(), local.plugins, [Request("template-crypto", "=1.0.0")], options=HOST)
    before = local.lock()
    planned = upgrade(
        local.registry(), local.plugins, [], options=HOST, dry_run=True
    )  # nothing newer fits =1.0.0
    assert planned.dry_run and planned.changes == []
    assert local.lock() == before


def test_the_plan_is_shown_before_anything_is_downloaded(local: Local, tmp_path: Path) -> None:
    seen: list[tuple[list[str], bool]] = []

    def on_plan(outcome: Outcome) -> None:
        seen.append(([c.name for c in outcome.changes], (local.plugins / "auth-jwt").exists()))

    install(local.registry(), local.plugins, [Request("auth-jwt")], options=HOST, on_plan=on_plan)
    assert seen == [(["auth-jwt", "template-crypto"], False)]
    assert (local.plugins / "auth-jwt").is_dir()


def test_downloads_are_cached_and_shown_as_progress(local: Local, tmp_path: Path) -> None:
    totals: list[int] = []
    received: list[int] = []

    @contextmanager
    def progress(total: int) -> Iterator[Callable[[int], None]]:
        totals.append(total)
        yield received.append

    cache = tmp_path / "cache"
    install(
        local.registry(),
        local.plugins,
        [Request("auth-jwt")],
        options=HOST,
        cache_dir=cache,
        progress=progress,
    )
    sizes = [local.entry("auth-jwt", "1.2.0"), local.entry("template-crypto", "1.1.1")]
    assert totals == [sum(e["artifact"]["size"] for e in sizes)]
    assert sum(received) == totals[0]
    for entry in sizes:
        assert (cache / "artifacts" / entry["artifact"]["sha256"]).is_file()


def test_the_limits_given_are_the_ones_enforced(local: Local) -> None:
    """A declared artifact size, and the unpacked bytes, over the limits refuse the install."""
    size = local.entry("template-crypto", "1.1.1")["artifact"]["size"]
    small = replace(DEFAULT_LIMITS, artifact_bytes=size - 1)
    with pytest.raises(TrustError, match=rf"expected at most {size - 1} bytes, the index says"):
        install(
            local.registry(), local.plugins, [Request("template-crypto")], options=HOST,
            limits=small,
        )  # fmt: skip
    tight = replace(DEFAULT_LIMITS, unpacked_bytes=10)
    with pytest.raises(UnsafeArchiveError, match=r"^template-crypto-1\.1\.1\.tar\.gz: unpacks"):
        install(
            local.registry(), local.plugins, [Request("template-crypto")], options=HOST,
            limits=tight,
        )  # fmt: skip
    few = replace(DEFAULT_LIMITS, resolve_steps=1)
    with pytest.raises(ResolutionError, match="gave up resolving after trying 1 versions"):
        install(local.registry(), local.plugins, [Request("auth-jwt")], options=HOST, limits=few)
    assert local.installed() == {}


def test_optional_dependencies_only_when_asked(local: Local) -> None:
    install(
        local.registry(),
        local.plugins,
        [Request("datasource-csv")],
        options=Options(host="0.4.0", optional=True),
    )
    assert local.installed() == {
        "datasource-csv": "1.0.2",
        "template-crypto": "1.1.1",
        "template-faker": "0.5.0",
    }


def test_an_exactly_pinned_yanked_version_installs_with_its_reason(local: Local) -> None:
    outcome = install(
        local.registry(), local.plugins, [Request("datasource-csv", "=1.0.1")], options=HOST
    )
    assert changes(outcome) == [("datasource-csv", None, "1.0.1", "install")]
    assert any("datasource-csv 1.0.1 is yanked" in w for w in outcome.warnings)
    reason = local.lock()["plugins"]["datasource-csv"]["yanked"]
    assert reason and reason in outcome.warnings[0]
    again = install(local.registry(), local.plugins, [Request("auth-jwt")], options=HOST)
    assert f"datasource-csv 1.0.1 (installed) is yanked: {reason}" in again.warnings


def _tar_gz(name: str, version: str) -> bytes:
    """Return a small valid artifact: one file naming the release."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = f"{name} {version}\n".encode()
        info = tarfile.TarInfo("plugin.toml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _hosted_index(root: Path) -> Path:
    """Build an index where pa 1.0.0 needs host <0.5, pa 2.0.0 host >=0.5, qb any host."""
    index = mini_index.write_index(root / "index")
    for name, version, host in (
        ("pa", "1.0.0", ">=0.3, <0.5"),
        ("pa", "2.0.0", ">=0.5"),
        ("qb", "1.0.0", ">=0.1"),
    ):
        data = _tar_gz(name, version)
        mini_index.add_release(
            index, name, version, f"artifacts/{name}-{version}.tar.gz", data=data
        )
        file = index / "plugins" / name / "versions" / f"{version}.yaml"
        text = file.read_text(encoding="utf-8").split("\nsignature", 1)[0]
        file.write_text(
            text.replace('host: ">=1.0"', f'host: "{host}"').rstrip("\n") + "\n", encoding="utf-8"
        )
        mini_index._sign(file)
    build(index, root / "out", environ={"SOURCE_DATE_EPOCH": "1700000000"})
    return root / "out"


def test_a_yank_is_warned_about_once_and_not_once_moved_away(local: Local) -> None:
    install(local.registry(), local.plugins, [Request("datasource-csv", "=1.0.1")], options=HOST)
    reason = local.lock()["plugins"]["datasource-csv"]["yanked"]
    kept = upgrade(local.registry(), local.plugins, ["datasource-csv"], options=HOST)
    assert kept.changes == []
    assert kept.warnings == [
        f"datasource-csv 1.0.1 (installed) is yanked ({reason}); kept: no newer version fits "
        "the requirements (you (installed earlier) wants =1.0.1)"
    ]
    moved = install(local.registry(), local.plugins, [Request("datasource-csv")], options=HOST)
    assert changes(moved) == [("datasource-csv", "1.0.1", "1.0.2", "upgrade")]
    assert moved.warnings == []


def test_a_deprecated_plugin_is_recorded_and_warned_about(tmp_path: Path) -> None:
    index = copy_demo_index(tmp_path)
    deprecate(index, "template-crypto", message="Unmaintained.", replacement=None,
              key=demo_key("mara-okafor"))  # fmt: skip
    build(index, tmp_path / "out", environ={"SOURCE_DATE_EPOCH": "1700000000"})
    local = Local(tmp_path / "out", tmp_path / "plugins")
    outcome = install(local.registry(), local.plugins, [Request("auth-jwt")], options=HOST)
    marks = {c.name: c.deprecated for c in outcome.changes}
    assert marks == {
        "auth-jwt": None,
        "template-crypto": LockedDeprecation(message="Unmaintained."),
    }
    assert outcome.warnings == [
        "template-crypto (needed by auth-jwt 1.2.0) is deprecated: Unmaintained."
    ]
    assert local.lock()["plugins"]["template-crypto"]["deprecated"] == {
        "message": "Unmaintained.",
        "replacement": None,
    }


def test_an_installed_plugin_made_for_an_older_host_moves_with_the_host(tmp_path: Path) -> None:
    """The host moved past an installed version's `host`: the next install replaces it."""
    local = Local(_hosted_index(tmp_path), tmp_path / "plugins")
    install(local.registry(), local.plugins, [Request("pa")], options=Options(host="0.4.0"))
    assert local.installed() == {"pa": "1.0.0"}
    assert local.lock()["plugins"]["pa"]["host"] == ">=0.3, <0.5"
    # Without a host version compatibility is not checked: what is installed stays.
    unchecked = install(local.registry(), local.plugins, [Request("qb")], options=Options())
    assert changes(unchecked) == [("qb", None, "1.0.0", "install")]
    uninstall(local.plugins, "qb")
    moved = install(local.registry(), local.plugins, [Request("qb")], options=Options(host="0.5.0"))
    assert changes(moved) == [("pa", "1.0.0", "2.0.0", "upgrade"), ("qb", None, "1.0.0", "install")]
    assert local.installed() == {"pa": "2.0.0", "qb": "1.0.0"}


def test_a_plugins_folder_of_another_registry_is_refused(local: Local) -> None:
    install(local.registry(), local.plugins, [Request("template-crypto")], options=HOST)
    lock = read_lockfile(local.plugins)
    write_lockfile(local.plugins, lock.model_copy(update={"registry": "elsewhere"}))
    runs: list[Callable[[], Outcome]] = [
        lambda: install(local.registry(), local.plugins, [Request("auth-jwt")], options=HOST),
        lambda: upgrade(local.registry(), local.plugins, [], options=HOST),
    ]
    for run in runs:
        with pytest.raises(InstallError) as caught:
            run()
        assert str(caught.value) == (
            f"{local.plugins}: holds plugins from registry 'elsewhere', not 'plugindex-demo' "
            f"({local.out}); use another --plugins-dir"
        )
    # An empty lockfile of another registry holds nothing to mix with.
    write_lockfile(local.plugins, Lockfile(registry="elsewhere"))
    install(local.registry(), local.plugins, [Request("template-crypto")], options=HOST)
    assert local.lock()["registry"] == "plugindex-demo"


# --- upgrade ----------------------------------------------------------------------------


def test_upgrade_of_a_plugin_not_installed_is_refused(local: Local) -> None:
    install(local.registry(), local.plugins, [Request("template-crypto")], options=HOST)
    with pytest.raises(InstallError) as caught:
        upgrade(local.registry(), local.plugins, ["auth-jwt"], options=HOST)
    assert str(caught.value) == f"auth-jwt is not installed in {local.plugins} (use install)"


def test_upgrade_with_nothing_installed_changes_nothing(local: Local) -> None:
    outcome = upgrade(local.registry(), local.plugins, [], options=HOST, dry_run=True)
    assert outcome == Outcome(dry_run=True)
    assert upgrade(local.registry(), local.plugins, [], options=HOST) == Outcome()


def test_upgrade_moves_only_the_named_plugins(local: Local) -> None:
    install(
        local.registry(),
        local.plugins,
        [Request("auth-jwt", "=1.1.0"), Request("template-crypto", "=1.1.0")],
        options=HOST,
    )
    write = read_lockfile(local.plugins)
    relaxed = {name: p.model_copy(update={"requested": "^1"}) for name, p in write.plugins.items()}
    write_lockfile(local.plugins, write.model_copy(update={"plugins": relaxed}))
    named = upgrade(local.registry(), local.plugins, ["template-crypto"], options=HOST)
    assert changes(named) == [("template-crypto", "1.1.0", "1.1.1", "upgrade")]
    assert local.installed() == {"auth-jwt": "1.1.0", "template-crypto": "1.1.1"}
    moved = local.lock()["plugins"]["template-crypto"]
    assert (moved["requested"], moved["explicit"]) == ("^1", True)  # as asked before
    every = upgrade(local.registry(), local.plugins, [], options=HOST)
    assert changes(every) == [("auth-jwt", "1.1.0", "1.2.0", "upgrade")]


# --- uninstall --------------------------------------------------------------------------


def test_uninstall_refuses_to_break_a_dependent_unless_forced(local: Local) -> None:
    install(local.registry(), local.plugins, [Request("auth-jwt")], options=HOST)
    assert dependents_of(read_lockfile(local.plugins), "template-crypto") == [
        "auth-jwt 1.2.0 (needs ^1.1)"
    ]
    with pytest.raises(InstallError) as caught:
        uninstall(local.plugins, "template-crypto")
    assert str(caught.value) == (
        "template-crypto is needed by auth-jwt 1.2.0 (needs ^1.1); uninstall those first, "
        "or pass --force to break them"
    )
    planned = uninstall(local.plugins, "template-crypto", force=True, dry_run=True)
    assert planned.dry_run
    assert (local.plugins / "template-crypto").is_dir()
    forced = uninstall(local.plugins, "template-crypto", force=True)
    assert changes(forced) == [("template-crypto", "1.1.1", None, "uninstall")]
    assert forced.warnings == [
        "auth-jwt 1.2.0 (needs ^1.1) may no longer work without template-crypto"
    ]
    assert not (local.plugins / "template-crypto").exists()
    assert local.installed() == {"auth-jwt": "1.2.0"}
    with pytest.raises(InstallError) as missing:
        uninstall(local.plugins, "template-crypto")
    assert str(missing.value) == f"template-crypto is not installed in {local.plugins}"


def test_every_dependent_is_named_and_only_runtime_ones_count(local: Local) -> None:
    install(
        local.registry(),
        local.plugins,
        [Request("auth-jwt"), Request("template-faker"), Request("protocol-grpc")],
        options=Options(host="0.4.0", optional=True),
    )
    lock = read_lockfile(local.plugins)
    assert {"auth-jwt", "protocol-grpc", "template-crypto", "template-faker"} <= set(lock.plugins)
    assert dependents_of(lock, "auth-jwt") == []  # protocol-grpc's need of it is optional
    with pytest.raises(InstallError) as caught:
        uninstall(local.plugins, "template-crypto")
    assert str(caught.value) == (
        "template-crypto is needed by auth-jwt 1.2.0 (needs ^1.1), template-faker 0.5.0 "
        "(needs ^1.0); uninstall those first, or pass --force to break them"
    )
    forced = uninstall(local.plugins, "template-crypto", force=True)
    assert forced.warnings == [
        "auth-jwt 1.2.0 (needs ^1.1), template-faker 0.5.0 (needs ^1.0) may no longer work "
        "without template-crypto",
    ]


def test_an_uninstall_warns_about_what_stays_yanked(local: Local) -> None:
    install(
        local.registry(),
        local.plugins,
        [Request("datasource-csv", "=1.0.1"), Request("template-crypto")],
        options=HOST,
    )
    reason = local.lock()["plugins"]["datasource-csv"]["yanked"]
    outcome = uninstall(local.plugins, "template-crypto")
    assert outcome.warnings == [f"datasource-csv 1.0.1 (installed) is yanked: {reason}"]
    assert uninstall(local.plugins, "datasource-csv").warnings == []


def test_uninstall_of_the_last_dependent_needs_no_force(local: Local) -> None:
    install(local.registry(), local.plugins, [Request("auth-jwt")], options=HOST)
    outcome = uninstall(local.plugins, "auth-jwt")
    assert changes(outcome) == [("auth-jwt", "1.2.0", None, "uninstall")]
    assert outcome.warnings == []
    assert local.installed() == {"template-crypto": "1.1.1"}
    assert dependents_of(read_lockfile(local.plugins), "template-crypto") == []


def test_an_uninstall_dry_run_of_nothing_installed_creates_nothing(local: Local) -> None:
    with pytest.raises(InstallError):
        uninstall(local.plugins, "auth-jwt", dry_run=True)
    assert not local.plugins.exists()


# --- trust and the pieces ---------------------------------------------------------------


def test_repin_records_the_current_keys_and_says_what_was_pinned(local: Local) -> None:
    first = repin(local.registry(), local.plugins, "auth-jwt")
    assert first.old is None
    assert read_trust(local.plugins).plugins["auth-jwt"] == first.new
    again = repin(local.registry(), local.plugins, "auth-jwt")
    assert again.old == again.new == first.new


def test_roots_are_the_requests_first_then_everything_installed(local: Local) -> None:
    install(local.registry(), local.plugins, [Request("auth-jwt", "^1.1")], options=HOST)
    roots = roots_of([Request("template-crypto", "^1")], read_lockfile(local.plugins))
    assert [(r.name, r.requirement, r.who) for r in roots] == [
        ("template-crypto", "^1", "you"),
        ("auth-jwt", "^1.1", "you (installed earlier)"),
    ]


@pytest.mark.parametrize(
    ("old", "new", "action"),
    [
        (None, "1.0.0", "install"),
        ("1.0.0", None, "uninstall"),
        ("1.0.0", "1.0.0", "reinstall"),
        ("1.0.0", "1.0.1", "upgrade"),
        ("1.0.1", "1.0.0", "downgrade"),
        ("1.0.0", "1.0.0-rc.1", "downgrade"),
        ("1.10.0", "1.9.0", "downgrade"),
    ],
)
def test_a_change_names_its_action(old: str | None, new: str | None, action: str) -> None:
    assert Change("p", old, new).action == action


def test_the_cache_keeps_what_the_installed_plugins_reference(local: Local, tmp_path: Path) -> None:
    """An artifact unused for a year stays cached while an installed plugin needs it."""
    cache = tmp_path / "cache"
    install(local.registry(), local.plugins, [Request("template-crypto")], options=HOST,
            cache_dir=cache)  # fmt: skip
    sha256 = local.lock()["plugins"]["template-crypto"]["sha256"]
    cached = cache / "artifacts" / sha256
    year_ago = time.time() - 365 * 86400
    os.utime(cached, (year_ago, year_ago))
    install(local.registry(), local.plugins, [Request("auth-basic")], options=HOST,
            cache_dir=cache)  # fmt: skip
    assert cached.is_file()
    uninstall(local.plugins, "template-crypto")
    install(local.registry(), local.plugins, [Request("datasource-csv")], options=HOST,
            cache_dir=cache)  # fmt: skip
    assert not cached.exists()  # no longer referenced: pruned once unused that long
