"""Say why a plugin does not get the version a person would expect, before it changes.

A version moves back (an installed plugin downgraded to satisfy someone's pin, an
installed prerelease given up) or a plugin is installed below its newest version:
each such change gets one line naming the version passed over and what ruled it
out, from the resolution itself. A deprecated plugin gets a warning in the same
words wherever it shows up. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from builder.client.resolve import INSTALLED_KINDS, Candidate, Options, Resolution, Want
from builder.format.requirements import RELEASE, RequirementError, key_of, parse_requirement


def _matches(requirement: str, candidate: Candidate, *, prerelease: bool) -> bool:
    try:
        return parse_requirement(requirement).matches(candidate.key, allow_prerelease=prerelease)
    except RequirementError:
        return False


def _asks(wants: Sequence[Want]) -> str:
    return "; ".join(
        f"{w.who} {'want' if w.who == 'you' else 'wants'} {w.requirement}" for w in wants
    )


def _is_prerelease(candidate: Candidate) -> bool:
    return candidate.key[3] != RELEASE


def _ruled_out(
    passed_over: Candidate, resolution: Resolution, options: Options, *, installed: bool
) -> str | None:
    """Return what ruled out `passed_over` in this resolution (None: the user's own request)."""
    name = passed_over.name
    wants = resolution.wants.get(name, [])
    refused = [w for w in wants if not _matches(w.requirement, passed_over, prerelease=True)]
    if refused:
        # Asked for in so many words: the change is what the person requested.
        return None if all(w.who == "you" for w in refused) else _asks(refused)
    kinds = INSTALLED_KINDS | ({"optional"} if options.optional else set())
    for dep in passed_over.dependencies:
        chosen = resolution.selected.get(dep.name)
        if (
            dep.kind in kinds
            and chosen is not None
            and not _matches(dep.req, chosen, prerelease=True)
        ):
            # Who holds the dependency there, leaving out the plugin's own older versions.
            others = [
                w for w in resolution.wants.get(dep.name, []) if not w.who.startswith(f"{name} ")
            ]
            who = _asks(others)
            return (
                f"{name} {passed_over.version} needs {dep.name} {dep.req}, but "
                f"{dep.name} {chosen.version} is selected ({who})"
            )
    # An installed prerelease is exempt from the prerelease rule (it stays while it fits).
    if _is_prerelease(passed_over) and not options.prerelease and not installed:
        return (
            "prereleases are chosen only when a requirement names one "
            f"(e.g. {name}@^{passed_over.version}) or with --pre"
        )
    if passed_over.yanked is not None:
        return f"{passed_over.version} is yanked ({passed_over.yanked})"
    if options.host and passed_over.host and not _host_fits(passed_over.host, options.host):
        return f"{passed_over.version} needs host {passed_over.host}, this host is {options.host}"
    return "the other requirements rule it out"


def _host_fits(requirement: str, host: str) -> bool:
    try:
        return parse_requirement(requirement).matches(key_of(host), allow_prerelease=True)
    except RequirementError:
        return False


def _newest_expected(candidates: Sequence[Candidate], options: Options) -> Candidate | None:
    """Return the version a person expects by default: newest, not yanked, host-compatible."""
    for candidate in sorted(candidates, key=lambda c: c.key, reverse=True):
        if candidate.yanked is not None:
            continue
        if _is_prerelease(candidate) and not options.prerelease:
            continue
        if options.host and candidate.host and not _host_fits(candidate.host, options.host):
            continue
        return candidate
    return None


def change_notes(
    resolution: Resolution,
    available: Mapping[str, Sequence[Candidate]],
    installed: Mapping[str, str],
    options: Options,
) -> dict[str, str]:
    """Return, by plugin, why a changing plugin does not get the version expected.

    `available` holds every version of the plugins whose document was read,
    `installed` the installed version of each plugin.
    """
    notes: dict[str, str] = {}
    for name, chosen in sorted(resolution.selected.items()):
        old = installed.get(name)
        if old == chosen.version or name not in available:
            continue
        versions = {c.version: c for c in available[name]}
        if old is not None and key_of(old) > chosen.key:
            passed_over = versions.get(old)
            why = (
                _ruled_out(passed_over, resolution, options, installed=True)
                if passed_over
                else None
            )
            if why is not None:
                notes[name] = f"downgrade from {old}: {why}"
            continue
        newest = _newest_expected(available[name], options)
        if newest is not None and newest.key > chosen.key:
            why = _ruled_out(newest, resolution, options, installed=False)
            if why is not None:
                notes[name] = f"not the newest {newest.version}: {why}"
    return notes


def deprecation_warning(subject: str, message: str, replacement: str | None) -> str:
    """Return the warning for a deprecated plugin: what its owners say, and what to use instead."""
    instead = f" (use {replacement} instead)" if replacement else ""
    return f"{subject} is deprecated{instead}: {message}"
