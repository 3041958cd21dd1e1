"""The plugin user's commands: info, install, list, outdated, upgrade, uninstall, verify, trust.

Each parses its options, calls one client function and prints the result through
`user_output` (escaped text, or JSON with --json; errors too).

Exit codes: 0 success; 1 `verify` found changed files; 2 bad usage; 3 an error we can
explain (network, I/O, a malformed registry); 4 the request cannot be met (no such
plugin, no version satisfies every requirement, not installed, needed by another);
5 refused: a verification failed (checksum, signature, owner keys, unsafe archive),
and nothing was changed; 70 an internal bug; 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from builder.cli.user_complete import complete_installed, complete_names
from builder.cli.user_options import (
    change_options,
    dry_run_option,
    json_option,
    open_registry,
    parse_request,
    plugin_name,
    plugins_dir_of,
    plugins_dir_option,
    registry_options,
    resolve_options,
)
from builder.cli.user_output import (
    PlanPrinter,
    UserCommand,
    echo,
    emit,
    info_lines,
    list_lines,
    outcome_data,
    outcome_lines,
    outdated_lines,
    print_warnings,
    status_rows,
    user_command,
)
from builder.cli.user_progress import progress
from builder.common.exits import ExitCode


def _print_outcome(outcome: Any, nothing: str, as_json: bool, plan: PlanPrinter | None) -> None:
    emit(as_json, outcome_data(outcome), lambda: outcome_lines(outcome, nothing, plan))


@click.command(cls=UserCommand)
@click.argument("spec", metavar="NAME[@VERSION]", shell_complete=complete_names)
@registry_options
@json_option
@user_command
def info(*, spec: str, as_json: bool, **where: Any) -> None:
    """Show a plugin: facts, versions (yanked marked), dependencies, signatures."""
    from builder.client.info import plugin_info
    from builder.client.lockfile import read_lockfile, yank_warnings

    name, _, version = spec.partition("@")
    name = plugin_name(name)
    found, reg = open_registry(**where)
    lock = read_lockfile(found.plugins_dir)
    data = plugin_info(reg, name, version or None, installed=lock.plugins.get(name))
    warnings = yank_warnings({n: p for n, p in lock.plugins.items() if n != name})
    emit(as_json, {**data, "warnings": warnings}, lambda: [*_warned(warnings), *info_lines(data)])


def _warned(warnings: list[str]) -> list[str]:
    print_warnings(warnings)
    return []


def _change_plugins(
    run: Callable[..., Any],
    targets: Callable[[], list[Any]],
    plan: PlanPrinter | None,
    *,
    registry: str | None,
    root: str | None,
    insecure_no_tuf: bool,
    cache_dir: Path | None,
    offline: bool,
    plugins_dir: Path | None,
    host_version: str | None,
    with_optional: bool,
    pre: bool,
    dry_run: bool,
) -> Any:
    """Open the registry, then install or upgrade `targets()` with the resolve options given."""
    from builder.client.resolve import Options

    found, reg = open_registry(
        registry,
        cache_dir,
        offline,
        plugins_dir,
        host_version,
        root=root,
        insecure_no_tuf=insecure_no_tuf,
    )
    return run(
        reg,
        found.plugins_dir,
        targets(),
        options=Options(host=found.host_version, optional=with_optional, prerelease=pre),
        cache_dir=found.cache_dir,
        progress=progress(plan is None),
        dry_run=dry_run,
        on_plan=plan,
    )


def _restore(
    names: list[str], plan: PlanPrinter | None, *, only_damaged: bool, **where: Any
) -> Any:
    """Open the registry and restore the locked versions of `names` (all when empty)."""
    from builder.client.repair import RestoreSettings, restore

    dry_run = bool(where.pop("dry_run", False))
    found, reg = open_registry(**where, from_lockfile=True)
    settings = RestoreSettings(
        found.cache_dir, progress(plan is None), dry_run=dry_run, on_plan=plan
    )
    return restore(reg, found.plugins_dir, names, only_damaged=only_damaged, settings=settings)


@click.command(cls=UserCommand)
@click.argument("specs", nargs=-1, metavar="NAME[@REQUIREMENT]...", shell_complete=complete_names)
@change_options
@click.option(
    "--reinstall",
    is_flag=True,
    help="Download and unpack each installed NAME again (repairs what `verify` reports).",
)
@click.option(
    "--locked",
    is_flag=True,
    help="Install exactly the versions plugindex.lock records, every hash verified.",
)
@user_command
def install(
    *, specs: tuple[str, ...], as_json: bool, reinstall: bool, locked: bool, **options: Any
) -> None:
    """Install plugins and their dependencies: newest versions that fit, verified."""
    from builder.client.install import install as run_install

    if locked and specs:
        raise click.UsageError("--locked installs what plugindex.lock records: give no NAME")
    if not locked and not specs:
        raise click.UsageError("missing NAME (or --locked, to install from plugindex.lock)")
    requests = [parse_request(s) for s in specs]
    plan = None if as_json else PlanPrinter()
    if reinstall or locked:
        for unused in ("host_version", "with_optional", "pre"):
            options.pop(unused)
        names = [r.name for r in requests]
        outcome = _restore(names, plan, only_damaged=locked, **options)
        nothing = "every plugin in plugindex.lock is installed and verified"
    else:
        outcome = _change_plugins(run_install, lambda: requests, plan, **options)
        asked = {r.name for r in requests}
        nothing = "already installed: " + ", ".join(
            f"{k.name} {k.version}" for k in outcome.unchanged if k.name in asked
        )
    _print_outcome(outcome, nothing, as_json, plan)


@click.command(cls=UserCommand)
@click.argument("names", nargs=-1, metavar="[NAME]...", shell_complete=complete_installed)
@change_options
@user_command
def upgrade(*, names: tuple[str, ...], as_json: bool, **options: Any) -> None:
    """Upgrade installed plugins (all, or the NAMEs) within their requirements."""
    from builder.client.install import upgrade as run_upgrade

    plan = None if as_json else PlanPrinter()
    # The names are checked once the registry is open: a missing registry is reported first.
    outcome = _change_plugins(run_upgrade, lambda: [plugin_name(n) for n in names], plan, **options)
    _print_outcome(outcome, "everything is up to date", as_json, plan)


@click.command(cls=UserCommand)
@click.argument("name", shell_complete=complete_installed)
@plugins_dir_option
@click.option("--force", is_flag=True, help="Uninstall even if installed plugins need it.")
@dry_run_option
@json_option
@user_command
def uninstall(
    name: str, plugins_dir: Path | None, force: bool, dry_run: bool, as_json: bool
) -> None:
    """Uninstall plugin NAME (refused while an installed plugin needs it)."""
    from builder.client.install import uninstall as run_uninstall

    outcome = run_uninstall(
        plugins_dir_of(plugins_dir), plugin_name(name), force=force, dry_run=dry_run
    )
    _print_outcome(outcome, "", as_json, None)


@click.command(name="list", cls=UserCommand)
@registry_options
@json_option
@user_command
def list_(*, as_json: bool, **where: Any) -> None:
    """List installed plugins, marking versions yanked since (checked when a registry is set)."""
    from builder.client.status import installed_status

    found, reg = open_registry(**where, required=False)
    status = installed_status(found.plugins_dir, reg)
    data = {
        "plugins_dir": str(found.plugins_dir),
        "plugins": status_rows(status),
        "checked": status.checked,
        "warnings": status.warnings,
    }
    emit(as_json, data, lambda: [*_warned(status.warnings), *list_lines(status)])


@click.command(cls=UserCommand)
@registry_options
@resolve_options
@json_option
@user_command
def outdated(*, as_json: bool, host_version: str | None, pre: bool, **where: Any) -> None:
    """Show installed plugins with newer versions: what `upgrade` would install, and the newest."""
    from builder.client.resolve import Options
    from builder.client.status import outdated as run_outdated

    found, reg = open_registry(**where, host_version=host_version)
    status = run_outdated(
        found.plugins_dir, reg, options=Options(host=found.host_version, prerelease=pre)
    )
    data = {"plugins_dir": str(found.plugins_dir), "plugins": status_rows(status, newer=True)}
    emit(
        as_json,
        {**data, "warnings": status.warnings},
        lambda: [*_warned(status.warnings), *outdated_lines(status)],
    )


@click.command(cls=UserCommand)
@registry_options
@click.option(
    "--repair", is_flag=True, help="Download and restore every damaged plugin, then verify."
)
@json_option
@user_command
def verify(*, repair: bool, as_json: bool, **where: Any) -> None:
    """Re-hash every installed file against the lockfile (and --repair what differs)."""
    from builder.client.repair import verify_installed

    data: dict[str, Any] = {}
    if repair:
        plan = None if as_json else PlanPrinter()
        outcome = _restore([], plan, only_damaged=True, **where)
        data["repaired"] = outcome_data(outcome)
        if not as_json:
            for line in outcome_lines(outcome, "nothing to repair", plan):
                echo(line)
    report = verify_installed(plugins_dir_of(where["plugins_dir"]))
    data.update(checked=report.checked, problems=report.problems, warnings=report.warnings)

    def text() -> list[str]:
        if not repair:
            print_warnings(report.warnings)
        for problem in report.problems:
            echo(problem, err=True)
        if report.problems:
            count = f"{len(report.problems)} problem(s) in {report.checked} installed files"
            echo(f"{count} (`plugindex verify --repair` restores them)", err=True)
            return []
        return [f"ok: {report.checked} installed files match the lockfile"]

    emit(as_json, data, text)
    if report.problems:
        sys.exit(ExitCode.PROBLEMS)


@click.command(cls=UserCommand)
@click.argument("name", shell_complete=complete_names)
@registry_options
@json_option
@user_command
def trust(*, name: str, as_json: bool, **where: Any) -> None:
    """Pin plugin NAME's current owner keys, accepting a key change deliberately."""
    from builder.client.install import repin
    from builder.trust.signing import key_id

    found, reg = open_registry(**where)
    pinned = repin(reg, found.plugins_dir, plugin_name(name))
    before = [key_id(k) for k in pinned.old.keys] if pinned.old else []
    after = [key_id(k) for k in pinned.new.keys]
    revision = pinned.new.revision
    emit(
        as_json,
        {"name": name, "before": before, "after": after, "revision": revision},
        lambda: [
            f"pinned {name}'s owner keys: {', '.join(after)} (revision {revision}); "
            f"before: {', '.join(before) or 'none'}"
        ],
    )


COMMANDS = (info, install, list_, outdated, upgrade, uninstall, verify, trust)
