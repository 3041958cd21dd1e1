"""How the plugin user's commands print: escaped text for people, JSON for scripts.

Everything a registry serves can reach a terminal (plugin-level fields are not
signed, and even signed text can hold escape sequences), so every line the user
commands print goes through `shown`, which escapes control characters, ANSI and OSC
sequences, bidi overrides and zero-width characters. JSON output escapes them by
itself (`ensure_ascii`). Under `--json`, errors are JSON on stdout too, with the
exit code unchanged.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn, TypeVar

import click

from builder.cli.report import reports_errors
from builder.common.errors import PlugindexError
from builder.common.exits import ExitCode

F = TypeVar("F", bound=Callable[..., None])


def shown(text: str) -> str:
    """Return text safe for a terminal: every non-printable character as a visible escape.

    Non-printable covers C0 and C1 controls (ESC starts every ANSI and OSC sequence),
    bidi overrides and isolates, zero-width characters, line separators and
    unassigned code points; letters of every script stay as they are.
    """
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def echo(text: str = "", *, err: bool = False) -> None:
    """Print one line, escaped."""
    click.echo(shown(text), err=err)


def warn(text: str) -> None:
    """Print a warning on stderr."""
    echo(f"warning: {text}", err=True)


def emit(as_json: bool, data: Any, lines: Callable[[], Iterable[str]]) -> None:
    """Print `data` as JSON, or the lines for people."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        for line in lines():
            echo(line)


def _fail(as_json: bool, message: str, code: int, kind: str, extra: dict[str, Any]) -> NoReturn:
    if as_json:
        error = {"message": message, "exit_code": int(code), "type": kind, **extra}
        click.echo(json.dumps({"error": error}, indent=2, sort_keys=True))
    else:
        echo(f"error: {message}", err=True)
    sys.exit(code)


def user_command(command: F) -> F:
    """Report errors escaped for people, or as JSON under --json; then the shared reporter."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        as_json = bool(kwargs.get("as_json"))
        try:
            command(*args, **kwargs)
        except PlugindexError as e:
            extra = {"suggestions": e.suggestions} if hasattr(e, "suggestions") else {}
            _fail(as_json, str(e), e.exit_code, type(e).__name__, extra)
        except click.ClickException as e:
            if not as_json:
                raise
            _fail(True, e.format_message(), e.exit_code, "UsageError", {})
        except (KeyboardInterrupt, click.Abort):
            if not as_json:
                raise
            _fail(True, "interrupted", ExitCode.INTERRUPTED, "Interrupted", {})

    return reports_errors(wrapper)  # type: ignore[return-value]


class UserCommand(click.Command):
    """A command whose usage errors are JSON too when `--json` is among its arguments."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """Parse the arguments; under --json, print a usage error as JSON and exit 2."""
        as_json = "--json" in args
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as e:
            if not as_json:
                raise
            error = {"message": e.format_message(), "exit_code": e.exit_code, "type": "UsageError"}
            click.echo(json.dumps({"error": error}, indent=2, sort_keys=True))
            raise click.exceptions.Exit(e.exit_code) from None


# --- changes ----------------------------------------------------------------------------

_DONE = {
    "install": "installed",
    "uninstall": "uninstalled",
    "upgrade": "upgraded",
    "downgrade": "downgraded",
    "reinstall": "reinstalled",
}
_PLANNED = {
    "install": "would install",
    "uninstall": "would uninstall",
    "upgrade": "would upgrade",
    "downgrade": "would downgrade",
    "reinstall": "would reinstall",
}


def outcome_data(outcome: Any) -> dict[str, Any]:
    """Return an install/upgrade/uninstall outcome for --json."""
    return {
        "changes": [
            {
                "name": c.name,
                "from": c.old,
                "to": c.new,
                "action": c.action,
                **({"note": c.note} if c.note else {}),
                **({"deprecated": _deprecation_data(c.deprecated)} if c.deprecated else {}),
            }
            for c in outcome.changes
        ],
        "unchanged": [{"name": k.name, "version": k.version} for k in outcome.unchanged],
        "warnings": outcome.warnings,
        "dry_run": outcome.dry_run,
    }


def _deprecation_data(deprecated: Any) -> dict[str, Any] | None:
    """Return a deprecation for --json: {message, replacement} (replacement may be null)."""
    if deprecated is None:
        return None
    return {"message": deprecated.message, "replacement": deprecated.replacement}


def _change_line(change: Any, verbs: dict[str, str]) -> str:
    verb = verbs[change.action]
    if change.action in {"upgrade", "downgrade"}:
        return f"{verb} {change.name} {change.old} -> {change.new}"
    return f"{verb} {change.name} {change.new or change.old}"


def print_plan(outcome: Any) -> None:
    """Say, before anything is downloaded, what will change unexpectedly, and warn."""
    print_warnings(outcome.warnings)
    for change in outcome.changes:
        if change.note:
            echo(f"note: {change.name} {change.new} ({change.note})", err=True)


class PlanPrinter:
    """The hook a change calls with its plan before downloading: prints it, once."""

    def __init__(self) -> None:
        self.shown = False

    def __call__(self, outcome: Any) -> None:
        """Print the plan's warnings and notes."""
        print_plan(outcome)
        self.shown = True


def outcome_lines(outcome: Any, nothing: str, plan: PlanPrinter | None) -> list[str]:
    """Return the lines that list the changes (done, or planned in a dry run)."""
    if outcome.dry_run:
        print_warnings(outcome.warnings)
        lines = [
            _change_line(c, _PLANNED) + (f" ({c.note})" if c.note else "") for c in outcome.changes
        ]
        return lines or [nothing]
    if plan is None or not plan.shown:  # nothing was shown before the change
        print_plan(outcome)
    return [_change_line(c, _DONE) for c in outcome.changes] or [nothing]


# --- info, list, outdated -----------------------------------------------------------------


def info_lines(data: dict[str, Any]) -> list[str]:
    """Return what `info` prints for people, from what `plugin_info` returned."""
    sel = data["selected"]
    lines = [f"{data['name']} {sel['version']}: {data['display_name']}"]
    if (deprecated := data["deprecated"]) is not None:  # before anything else about it
        instead = f" (use {deprecated['replacement']} instead)" if deprecated["replacement"] else ""
        lines.append(f"  DEPRECATED{instead}: {deprecated['message']}")
    lines += [
        f"  {data['description']}",
        f"  license: {data['license']}",
    ]
    lines += [f"  {field}: {data[field]}" for field in ("homepage", "repository") if data[field]]
    owners = ", ".join(f"{o['github']} ({', '.join(o['key_ids'])})" for o in data["owners"])
    lines += [f"  owners: {owners}", f"  signature: {sel['signature']}"]
    if sel["yanked"]:
        lines.append(f"  YANKED: {sel['yanked']}")
    if (installed := data.get("installed")) is not None:
        yank = f" (YANKED: {installed['yanked']})" if installed["yanked"] else ""
        lines.append(f"  installed: {installed['version']}{yank}")
    compat = sel["compatibility"]
    formats = ", ".join(f["extension"] for f in sel["formats"]) or "none"
    deps = ", ".join(f"{d['name']} {d['req']} ({d['kind']})" for d in sel["dependencies"])
    lines += [
        f"  compatibility: host {compat['host']}, plugin API {compat['plugin_api']}",
        f"  engine: {sel['engine']}",
        f"  formats: {formats}",
        f"  dependencies: {deps or 'none'}",
        f"  artifact: {sel['artifact']['filename']} ({sel['artifact']['size']} bytes)",
        "versions:",
    ]
    for row in data["versions"]:
        notes = []
        if installed is not None and row["version"] == installed["version"]:
            notes.append("installed")
        if row["prerelease"]:
            notes.append("prerelease")
        if row["yanked"]:
            notes.append(f"YANKED: {row['yanked']}")
        if not row["verified"]:
            notes.append(row["signature"])
        extra = f"  ({'; '.join(notes)})" if notes else ""
        lines.append(f"  {row['version']:<16} {row['released']}{extra}")
    return lines


def status_rows(status: Any, *, newer: bool = False) -> list[dict[str, Any]]:
    """Return the installed plugins for --json (`newer`: with the columns of `outdated`)."""
    return [
        {
            "name": row.name,
            "version": row.plugin.version,
            "requested": row.plugin.requested,
            "explicit": row.plugin.explicit,
            "yanked": row.plugin.yanked,
            "deprecated": _deprecation_data(row.plugin.deprecated),
            "signed_by": row.plugin.signed_by,
            **(
                {"compatible": row.compatible, "newest": row.newest, "outdated": row.outdated}
                if newer
                else {}
            ),
        }
        for row in status.plugins
    ]


def list_lines(status: Any) -> list[str]:
    """Return what `list` prints: one line per installed plugin, yanks and deprecations marked.

    The deprecation's message is in the warnings `list` prints first; here, only
    what to use instead.
    """
    if not status.plugins:
        return [f"no plugins installed in {status.plugins_dir}"]
    lines = []
    for row in status.plugins:
        plugin = row.plugin
        why = f"you asked for {plugin.requested or 'it'}" if plugin.explicit else "dependency"
        yanked = f"; YANKED: {plugin.yanked}" if plugin.yanked else ""
        lines.append(f"{row.name} {plugin.version} ({why}{yanked}{_deprecated_mark(plugin)})")
    return lines


def _deprecated_mark(plugin: Any) -> str:
    """Return `; DEPRECATED` for a deprecated installed plugin, with what to use instead."""
    if plugin.deprecated is None:
        return ""
    replacement = plugin.deprecated.replacement
    return "; DEPRECATED" + (f", use {replacement} instead" if replacement else "")


def outdated_lines(status: Any) -> list[str]:
    """Return what `outdated` prints: a table of the plugins with a newer version or deprecated.

    A deprecated plugin is listed even when it is the newest: moving off it is the update.
    """
    rows = [r for r in status.plugins if r.outdated or r.plugin.deprecated is not None]
    if not rows:
        return ["everything is up to date"]
    table = [("name", "installed", "compatible", "newest")]
    table += [
        (
            r.name,
            r.plugin.version
            + (" (yanked)" if r.plugin.yanked else "")
            + (" (deprecated)" if r.plugin.deprecated else ""),
            r.compatible or "-",
            r.newest or "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in table
    ]


def print_warnings(warnings: Sequence[str]) -> None:
    """Print each warning on stderr."""
    for warning in warnings:
        warn(warning)
