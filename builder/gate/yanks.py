"""Yanks and un-yanks: the one change a merged version file may receive.

PX121 a yank is taken back only by a signed `unyanked:` section; PX120 each yank or
un-yank raises `serial` above the base's (so an old signed state cannot be replayed);
PX122 a yank may not leave another plugin with no version of this one it accepts.
Each yank or un-yank is signed by an owner (checked by `ownership`).
"""

from __future__ import annotations

from collections.abc import Mapping

from builder.format.models import VersionManifest
from builder.format.paths import PLUGINS_DIR, VERSIONS_DIR
from builder.gate.context import PluginContext
from builder.gate.ownership import report_check
from builder.index.analyse import analyse
from builder.index.signatures import yank_jobs
from builder.trust.signing import verify_statement


def check_yank_change(
    context: PluginContext,
    rel: str,
    base: VersionManifest,
    current: VersionManifest,
    allowed: Mapping[str, str],
) -> None:
    """Check a merged version whose `yanked:`/`unyanked:` sections changed."""
    state = current.yanked or current.unyanked
    if state is None:
        context.add(
            rel,
            ("version",),
            "the yank was removed without an `unyanked:` section signed by an owner",
            "PX121",
        )
        return
    if current.yanked is not None and base.yanked is None:
        _check_dependents(context, rel, current.version)
    section = "yanked" if current.yanked is not None else "unyanked"
    last_serial = max([s.serial for s in (base.yanked, base.unyanked) if s is not None], default=0)
    if state.serial <= last_serial:
        context.add(
            rel,
            (section, "serial"),
            f"expected a serial above the base's last yank or un-yank "
            f"({last_serial}), got {state.serial}",
            "PX120",
        )
    check_yank_signatures(context, rel, current, allowed, section=section)


def check_yank_signatures(
    context: PluginContext,
    rel: str,
    current: VersionManifest,
    allowed: Mapping[str, str],
    *,
    section: str | None = None,
) -> None:
    """Check the owner signature of the version's yank and un-yank (or only `section`)."""
    for job in yank_jobs(context.registry.name, context.name, rel, current):
        if section is None or job.loc[0] == section:
            check = verify_statement(job.signature, job.statement, allowed)
            report_check(context, rel, job.loc, check, job.what)


def _check_dependents(context: PluginContext, rel: str, version: str) -> None:
    """Refuse a yank that leaves a plugin depending on this one with nothing it accepts."""
    name = context.name
    dependents = context.git.files_mentioning(
        f"^  {name}:", context.repo_path(f"{PLUGINS_DIR}/*/{VERSIONS_DIR}/*.yaml")
    )
    folders = {
        context.rel(path).split("/")[1]
        for path in dependents
        if context.rel(path).split("/")[1] != name
    }
    if not folders:
        return
    analysis = analyse(context.index, folders=folders | {name}, focus=folders)
    field = f"dependencies.{name}.version"
    for problem in analysis.problems:
        if problem.field == field and "no non-yanked version" in problem.message:
            context.add(
                rel,
                ("yanked",),
                f"yanking {version} leaves {problem.location()} with no version of "
                f"{name} it accepts; release a fixed version first",
                "PX122",
            )
