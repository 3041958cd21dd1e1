"""The resolver picks the newest fitting versions, or says who wants what."""

from __future__ import annotations

import pytest

from builder.client.resolve import (
    Candidate,
    Dependency,
    NeedDocumentsError,
    Options,
    ResolutionError,
    Root,
    Want,
    resolve,
)
from builder.common.limits import Limits


def c(
    name: str, version: str, *deps: str, host: str | None = None, yanked: str | None = None
) -> Candidate:
    """Return a candidate; deps are "name req" or "name req kind"."""
    parsed = []
    for dep in deps:
        parts = dep.split(" ", 2) if dep.count(" ") < 2 or "," in dep else dep.split(" ")
        parsed.append(Dependency(*parts))
    return Candidate.of(name, version, parsed, host=host, yanked=yanked)


REGISTRY = {
    "app": [c("app", "1.0.0", "lib ^1.0"), c("app", "1.1.0", "lib ^1.1", "extra ^0.1 optional")],
    "lib": [
        c("lib", "1.0.0"),
        c("lib", "1.1.0"),
        c("lib", "1.2.0", yanked="broken"),
        c("lib", "2.0.0-rc.1"),
    ],
    "other": [c("other", "1.0.0", "lib ^2.0.0-rc.1"), c("other", "0.9.0", "lib =1.0.0")],
    "extra": [c("extra", "0.1.0")],
    "old": [c("old", "1.0.0", "lib <1.1")],
}


def versions(resolution_selected: dict[str, Candidate]) -> dict[str, str]:
    return {name: cand.version for name, cand in resolution_selected.items()}


def test_newest_non_yanked_release_is_chosen() -> None:
    got = resolve([Root("app")], REGISTRY)
    assert versions(got.selected) == {"app": "1.1.0", "lib": "1.1.0"}


def test_optional_dependencies_only_when_asked() -> None:
    got = resolve([Root("app")], REGISTRY, options=Options(optional=True))
    assert versions(got.selected) == {"app": "1.1.0", "lib": "1.1.0", "extra": "0.1.0"}


def test_yanked_version_only_when_pinned_exactly_with_a_warning() -> None:
    got = resolve([Root("lib", "=1.2.0")], REGISTRY)
    assert versions(got.selected) == {"lib": "1.2.0"}
    assert "yanked (broken)" in got.warnings[0]
    with pytest.raises(ResolutionError, match=r"1\.2\.0 \(yanked\)"):
        resolve([Root("lib", "^1.2")], REGISTRY)


def test_prereleases_only_when_a_requirement_names_one_or_pre() -> None:
    assert versions(resolve([Root("lib")], REGISTRY).selected) == {"lib": "1.1.0"}
    assert versions(resolve([Root("lib", "^2.0.0-rc.1")], REGISTRY).selected) == {
        "lib": "2.0.0-rc.1"
    }
    got = resolve([Root("lib", ">=1.1")], REGISTRY, options=Options(prerelease=True))
    assert versions(got.selected) == {"lib": "2.0.0-rc.1"}


def test_backtracks_to_an_older_version_when_the_newest_conflicts() -> None:
    """other 1.0.0 needs lib 2.0.0-rc.1; app needs lib ^1: other 0.9.0 fits."""
    got = resolve([Root("app"), Root("other")], REGISTRY)
    assert versions(got.selected) == {"app": "1.0.0", "lib": "1.0.0", "other": "0.9.0"}


def test_the_search_gives_up_after_the_step_limit() -> None:
    """The backtracking case above tries 7 versions: a limit of 6 stops it, 7 lets it finish."""
    roots = [Root("app"), Root("other")]
    with pytest.raises(ResolutionError, match="gave up resolving after trying 6 versions"):
        resolve(roots, REGISTRY, limits=Limits(resolve_steps=6))
    assert versions(resolve(roots, REGISTRY, limits=Limits(resolve_steps=7)).selected) == {
        "app": "1.0.0",
        "lib": "1.0.0",
        "other": "0.9.0",
    }


def test_conflict_explains_who_wants_what() -> None:
    with pytest.raises(ResolutionError) as caught:
        resolve([Root("old"), Root("lib", "^1.1")], REGISTRY)
    message = str(caught.value)
    assert message.startswith("cannot resolve lib: no version satisfies every requirement")
    assert "you want ^1.1" in message
    assert "old 1.0.0 wants <1.1" in message
    assert "available: 2.0.0-rc.1, 1.2.0 (yanked), 1.1.0, 1.0.0" in message


def test_host_compatibility_filters_versions() -> None:
    registry = {"p": [c("p", "1.0.0", host="^0.3"), c("p", "2.0.0", host="^0.4")]}
    got = resolve([Root("p")], registry, options=Options(host="0.3.5"))
    assert versions(got.selected) == {"p": "1.0.0"}
    with pytest.raises(ResolutionError, match=r"needs host \^0\.4, this host is 0\.2\.0"):
        resolve([Root("p")], registry, options=Options(host="0.2.0"))


def test_missing_documents_are_asked_for_a_level_at_a_time() -> None:
    with pytest.raises(NeedDocumentsError) as first:
        resolve([Root("app"), Root("old")], {})
    assert first.value.names == {"app", "old"}
    with pytest.raises(NeedDocumentsError) as second:
        resolve([Root("app"), Root("old")], {"app": REGISTRY["app"], "old": REGISTRY["old"]})
    assert second.value.names == {"lib"}


def test_installed_versions_are_kept_without_a_document() -> None:
    locked = {"lib": c("lib", "1.0.0")}
    got = resolve([Root("lib"), Root("old")], {"old": REGISTRY["old"]}, locked=locked)
    assert versions(got.selected) == {"lib": "1.0.0", "old": "1.0.0"}


def test_an_installed_version_that_no_longer_fits_asks_for_its_document() -> None:
    locked = {"lib": c("lib", "1.0.0")}
    with pytest.raises(NeedDocumentsError) as caught:
        resolve(
            [Root("app"), Root("lib", who="installed")], {"app": REGISTRY["app"]}, locked=locked
        )
    assert caught.value.names == {"lib"}
    got = resolve([Root("app"), Root("lib", who="installed")], REGISTRY, locked=locked)
    assert versions(got.selected) == {"app": "1.1.0", "lib": "1.1.0"}


HOSTED = {"p": [c("p", "1.0.0", host="^0.3"), c("p", "2.0.0", host="^0.4")]}


def test_an_installed_version_made_for_another_host_is_replaced() -> None:
    """The host moved past an installed version's `host`: its document is read, a fitting
    version replaces it; with no host set, it stays as installed."""
    locked = {"p": c("p", "1.0.0", host="^0.3")}
    with pytest.raises(NeedDocumentsError) as caught:
        resolve([Root("p")], {}, locked=locked, options=Options(host="0.4.1"))
    assert caught.value.names == {"p"}
    got = resolve([Root("p")], HOSTED, locked=locked, options=Options(host="0.4.1"))
    assert versions(got.selected) == {"p": "2.0.0"}
    kept = resolve([Root("p")], {}, locked=locked)
    assert versions(kept.selected) == {"p": "1.0.0"}
    still = resolve([Root("p")], {}, locked=locked, options=Options(host="0.3.9"))
    assert versions(still.selected) == {"p": "1.0.0"}


def test_an_installed_version_no_host_fits_is_explained() -> None:
    """No version fits the new host: the error says which host each one needs."""
    locked = {"p": c("p", "1.0.0", host="^0.3")}
    with pytest.raises(ResolutionError) as caught:
        resolve([Root("p")], HOSTED, locked=locked, options=Options(host="0.5.0"))
    assert str(caught.value) == (
        "cannot resolve p: no version satisfies every requirement (); available: "
        "2.0.0 (needs host ^0.4, this host is 0.5.0), "
        "1.0.0 (needs host ^0.3, this host is 0.5.0; installed)"
    )


def test_upgrade_unlocks_the_named_plugins() -> None:
    locked = {"lib": c("lib", "1.0.0")}
    got = resolve([Root("lib")], REGISTRY, locked=locked, unlock=["lib"])
    assert versions(got.selected) == {"lib": "1.1.0"}


YANKED_OLD = {
    "lib": [
        c("lib", "0.1.0", yanked="leaks memory"),
        c("lib", "0.1.1"),
        c("lib", "0.2.0"),
    ]
}


def test_upgrade_moves_off_an_installed_yanked_version_when_a_newer_one_fits() -> None:
    locked = {"lib": c("lib", "0.1.0", yanked="leaks memory")}
    got = resolve(
        [Root("lib", "~0.1", "you (installed earlier)")], YANKED_OLD, locked=locked, unlock=["lib"]
    )
    assert versions(got.selected) == {"lib": "0.1.1"}
    assert got.warnings == []


def test_upgrade_keeps_an_installed_yanked_version_while_nothing_newer_fits() -> None:
    """The documented rule: an installed yanked version stays while it fits (no exit 4)."""
    registry = {"lib": [c("lib", "0.0.9"), c("lib", "0.1.0", yanked="leaks memory")]}
    locked = {"lib": c("lib", "0.1.0", yanked="leaks memory")}
    root = Root("lib", "~0.1", "you (installed earlier)")
    got = resolve([root], registry, locked=locked, unlock=["lib"])
    assert versions(got.selected) == {"lib": "0.1.0"}
    assert got.warnings == [
        "lib 0.1.0 (installed) is yanked (leaks memory); kept: no newer version fits the "
        "requirements (you (installed earlier) wants ~0.1)"
    ]


def test_a_yanked_version_that_is_not_installed_is_still_skipped_on_upgrade() -> None:
    locked = {"lib": c("lib", "0.0.9")}
    registry = {"lib": [c("lib", "0.0.9"), c("lib", "0.1.0", yanked="leaks memory")]}
    got = resolve([Root("lib", "*")], registry, locked=locked, unlock=["lib"])
    assert versions(got.selected) == {"lib": "0.0.9"}


def test_an_installed_prerelease_stays_without_the_prerelease_option() -> None:
    """Installed with a requirement naming it, it is not swapped for an older release later."""
    locked = {"lib": c("lib", "2.0.0-rc.1")}
    got = resolve([Root("lib"), Root("extra")], REGISTRY, locked=locked)
    assert versions(got.selected) == {"lib": "2.0.0-rc.1", "extra": "0.1.0"}


def test_the_resolution_records_who_wants_what() -> None:
    got = resolve([Root("app", "^1.0")], REGISTRY)
    assert got.wants["lib"] == [Want("app 1.1.0", "^1.1")]
    assert got.wants["app"] == [Want("you", "^1.0")]
