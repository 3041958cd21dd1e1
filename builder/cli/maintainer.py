"""The registry maintainers' and CI's commands: validate, build, serve, publish."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from builder.cli.changed_paths import paths_listed
from builder.cli.report import format_option, problems_json, reports_errors
from builder.common.errors import InvalidIndexError, PlugindexError, Problem

if TYPE_CHECKING:
    from builder.cli.registry_admin import StorePrevious
    from builder.index.stages import OutputStage
    from builder.tuf.metadata import Previous

DEFAULT_INDEX = "registry-index"


@click.command()
@click.argument("index", default=DEFAULT_INDEX, type=click.Path(path_type=Path))
@format_option
@click.option(
    "--no-fetch",
    is_flag=True,
    help="Do not download remote artifacts to check their sha256 and size.",
)
@click.option(
    "--base",
    metavar="REF",
    help="Check the working tree as a pull request against this git ref: ownership, "
    "immutability, names and scope, on the plugins it touches.",
)
@click.option(
    "--author",
    metavar="GITHUB_HANDLE",
    help="With --base: the pull request's author, who must own the plugin.",
)
@click.option(
    "--published",
    metavar="REGISTRY",
    help="With --base: the live registry (URL or folder); merged versions are also "
    "compared with what it serves.",
)
@reports_errors
def validate(  # Click passes every option by keyword
    *,
    index: Path,
    output_format: str,
    no_fetch: bool,
    base: str | None,
    author: str | None,
    published: str | None,
) -> None:
    """Check every rule of INDEX and report every problem at once."""
    from builder.cli.report import write_step_summary

    if (author is not None or published is not None) and base is None:
        raise click.UsageError("--author and --published need --base (pull-request rules)")
    if base is not None:
        from builder.common.fetch import open_registry
        from builder.gate.pull_request import check_pull_request

        live = open_registry(published, None) if published is not None else None
        result = check_pull_request(index, base, author=author, fetch=not no_fetch, published=live)
        problems = result.problems
        scope = f"pull request against {base} ({', '.join(result.plugins) or 'no plugin'})"
        done = (
            f"{index}: {scope}: {len(result.changes)} files changed, "
            f"{len(result.versions_added)} version files added or changed: valid"
        )
    else:
        from builder.index.analyse import analyse
        from builder.index.artifacts import check_remote_artifacts
        from builder.index.holdback import latest_release_date_now
        from builder.index.rules import check_release_dates

        analysis = analyse(index)
        problems = list(analysis.problems)
        problems.extend(
            check_release_dates(
                index,
                [v for p in analysis.facts.values() for v in p.versions()],
                latest_release_date_now(),
                "today's date (UTC) plus a day for time zones",
            )
        )
        if analysis.registry is not None and not no_fetch:
            problems.extend(
                check_remote_artifacts(index, analysis.facts.values(), analysis.registry.policy)
            )
        versions = sum(p.version_count for p in analysis.facts.values())
        scope = "whole index"
        done = f"{index}: {len(analysis.facts)} plugins, {versions} versions: valid"
    problems = sorted(problems, key=Problem.sort_key)
    if output_format == "github":
        write_step_summary(f"plugindex validate: {scope}", problems)
    if problems:
        raise InvalidIndexError(problems)
    click.echo(problems_json([], done) if output_format == "json" else done)


def build_stages(live: Previous | None = None) -> list[OutputStage]:
    """Return the stages every `plugindex build` runs after the JSON index.

    `live`: the registry the build will be published to, whose metadata versions the
    signing stage must go past (else the previous build in the output folder).
    """
    from builder.search.stage import SearchStage
    from builder.site.stage import SiteStage
    from builder.tuf.stage import TufStage

    return [SiteStage(), SearchStage(), TufStage(previous=live)]  # signing last: signs all


@click.command()
@click.argument("index", default=DEFAULT_INDEX, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder (created; an earlier build there is updated in place).",
)
@format_option
@click.option(
    "--no-fetch",
    is_flag=True,
    help="Do not download remote artifacts (the build is then incomplete: not publishable).",
)
@click.option(
    "--live",
    metavar="TARGET",
    help="The registry this build will be published to (s3://bucket/prefix or a folder): "
    "remote artifacts it already holds are not downloaded again, and a plugin held back "
    "keeps the state it has there.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Hold nothing back: any problem stops the build and nothing is written.",
)
@click.option(
    "--changed",
    "changed",
    type=click.File("rb"),
    metavar="FILE",
    help="The paths in INDEX changed since the last build into --out, one per line or "
    "NUL-terminated, from the current folder (as `git diff --name-only --no-renames -z "
    "OLD NEW` prints them; - reads them from stdin). The build looks at no other plugin folder's "
    "files; a change left out is built by the next build without --changed.",
)
@reports_errors
def build(  # Click passes every option by keyword
    *,
    index: Path,
    out: Path,
    output_format: str,
    no_fetch: bool,
    live: str | None,
    strict: bool,
    changed: BinaryIO | None,
) -> None:
    """Build the static sparse index of INDEX into --out.

    A plugin, version or file that cannot be built is held back (its last published
    state stays, or it is left out) and reported; everything else is built.
    """
    from builder.index.build import build as run_build

    live_objects: dict[str, str] | None = None
    previous: StorePrevious | None = None
    if live is not None:
        from builder.cli.registry_admin import StorePrevious
        from builder.publish.record import record_of
        from builder.publish.target import open_target

        store = open_target(live)
        record = record_of(store)
        live_objects = record.objects if record is not None else {}
        previous = StorePrevious(store, live_objects)
    stages = build_stages(previous)
    result = run_build(
        index,
        out,
        fetch=not no_fetch,
        live=live_objects,
        live_read=previous.read if previous is not None else None,
        stages=stages,
        strict=strict,
        changed=None if changed is None else paths_listed(changed),
    )
    report = result.report
    click.echo(
        f"built {result.plugins} plugins, {result.versions} versions into {out}: "
        f"{len(report.written)} written, {len(report.removed)} removed, "
        f"{report.unchanged} unchanged ({len(result.reparsed)} plugins parsed)"
    )
    if result.borrowed:
        click.echo(
            f"{result.borrowed} remote artifacts are already live in {live} and were left "
            f"out: publish this build there (served as it is, they are missing)"
        )
    if result.held_back:
        report_held_back([h.shown() for h in result.held_back], output_format)


def report_held_back(problems: list[Problem], output_format: str) -> None:
    """Say what the build held back: lines for people, warnings and a summary for CI."""
    from builder.cli.report import write_step_summary

    noun = "thing" if len(problems) == 1 else "things"
    click.echo(
        f"held back {len(problems)} {noun} that could not be built; everything else was "
        f"built (status.json lists them):",
        err=True,
    )
    for problem in sorted(problems, key=Problem.sort_key):
        if output_format == "github":
            # A warning, not an error: the build passed; maintainers still see it.
            click.echo(problem.render_github().replace("::error ", "::warning ", 1))
        click.echo(f"  {problem.render()}", err=True)
    if output_format == "github":
        write_step_summary("plugindex build: held back (everything else was built)", problems)


@click.command()
@click.argument("directory", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@reports_errors
def serve(directory: Path, host: str, port: int) -> None:
    """Serve a build DIRECTORY over HTTP for local preview and testing."""
    from builder.publish.serve import make_server

    try:
        server = make_server(directory, host, port)
    except OSError as e:
        raise PlugindexError(f"{host}:{port}: cannot listen ({e.strerror})") from e
    click.echo(f"serving {directory} at http://{host}:{server.server_port}/ (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how serving ends
            server.serve_forever()
    finally:
        server.server_close()


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.argument("target")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.option(
    "--prune-older-than",
    metavar="AGE",
    help="Delete objects no longer referenced for longer than AGE (e.g. 30d, 12h).",
)
@click.option(
    "--init",
    is_flag=True,
    help="First set up the bucket: create it, public read of the prefix, CORS for GET.",
)
@click.option(
    "--allow-older",
    is_flag=True,
    help="Publish even if the live build is newer (a deliberate rollback).",
)
@click.option(
    "--allow-unsigned",
    is_flag=True,
    help="Publish a build without TUF metadata over a registry that serves some.",
)
@click.option(
    "--break-lease",
    is_flag=True,
    help="Take over another publish's lease at once (only when it is known to be dead).",
)
@click.option(
    "--repair",
    is_flag=True,
    help="Check every object the live record lists (HEAD) and upload again from the "
    "build what is missing or differs.",
)
@click.option(
    "--sample",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Live objects to check (HEAD) at random when the publish uploads anything "
    "(default 16; 0: none).",
)
@reports_errors
def publish(
    *,
    directory: Path,
    target: str,
    dry_run: bool,
    prune_older_than: str | None,
    init: bool,
    allow_older: bool,
    allow_unsigned: bool,
    break_lease: bool,
    repair: bool,
    sample: int | None,
) -> None:
    """Publish the build in DIRECTORY to TARGET: s3://bucket/prefix or a folder."""
    from builder.publish.publish import (
        PublishOptions,
        damage_lines,
        describe_plan,
        parse_duration,
        summary_of,
    )
    from builder.publish.publish import (
        publish as run_publish,
    )
    from builder.publish.s3 import S3Storage
    from builder.publish.target import open_target

    grace = parse_duration(prune_older_than) if prune_older_than else None
    store = open_target(target)
    if init and isinstance(store, S3Storage) and not dry_run:
        for line in store.init_bucket():
            click.echo(f"init: {line}")
    with contextlib.ExitStack() as stack:
        options = PublishOptions(
            dry_run=dry_run,
            prune_older_than=grace,
            allow_older=allow_older,
            allow_unsigned=allow_unsigned,
            lease_timeout=0.0 if break_lease else PublishOptions.lease_timeout,
            verifier=verify_document,
            repair=repair,
            sample=PublishOptions.sample if sample is None else sample,
        )
        if sys.stderr.isatty() and not dry_run:  # a progress bar only for a person
            bar = stack.enter_context(
                click.progressbar(length=1, label="publishing", file=sys.stderr)
            )
            options = dataclasses.replace(
                options,
                on_plan=lambda count: setattr(bar, "length", max(count, 1)),
                on_upload=lambda key, size: bar.update(1),
            )
        report = run_publish(directory, store, options)
    if dry_run:
        for line in describe_plan(report):
            click.echo(line)
    for line in damage_lines(report, directory, target):
        click.echo(line, err=line.startswith("warning:"))
    click.echo(summary_of(report, target, getattr(store, "requests", None)))


def verify_document(data: bytes, *, registry: str, name: str, where: str) -> None:
    """Check a per-plugin document about to be published exactly as a client will.

    Publish may not import the client, so it is handed this function (a module-level
    one: it may run in a worker process).
    """
    from builder.client.documents import parse_plugin
    from builder.client.signatures import verify_plugin

    verify_plugin(registry, parse_plugin(data, where, name))


COMMANDS = (validate, build, serve, publish)
