"""The `plugindex` command: parse options, call one stage, map errors to exit codes.

Exit codes: 0 success; 1 the index has problems (all printed); 2 bad usage;
3 any other error we can explain (I/O, output folder, network); 70 an internal bug.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from builder import __version__
from builder.cli.report import print_problems
from builder.common.errors import InvalidIndexError, PlugindexError, Problem
from builder.common.exits import ExitCode

DEFAULT_INDEX = "registry-index"
PASSPHRASE_ENV = "PLUGINDEX_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
_FORMATS = click.Choice(["text", "github"])

F = TypeVar("F", bound=Callable[..., None])

# How problems print: for people (stderr), or as GitHub Actions annotations (stdout).
format_option = click.option(
    "--format",
    "output_format",
    type=_FORMATS,
    default="text",
    show_default=True,
    help="How to print problems: for people, or as GitHub Actions annotations.",
)


def reports_errors(command: F) -> F:
    """Print our errors for a person (no traceback) and exit with their code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except InvalidIndexError as e:
            print_problems(e.problems, kwargs.get("output_format", "text"))
            sys.exit(e.exit_code)
        except PlugindexError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(ExitCode.INTERRUPTED)
        except click.ClickException:
            raise  # usage errors: Click prints them and exits 2
        except Exception as e:
            if os.environ.get("PLUGINDEX_DEBUG") == "1":
                raise
            click.echo(
                f"internal error: {type(e).__name__}: {e} "
                f"(set PLUGINDEX_DEBUG=1 to see the traceback)",
                err=True,
            )
            sys.exit(ExitCode.INTERNAL)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plugindex")
@click.option("-v", "--verbose", is_flag=True, help="Log what each stage does.")
def cli(verbose: bool) -> None:
    """plugindex: a plugin registry with no server."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@cli.command()
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
        from builder.gate.rules import check_pull_request

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

        analysis = analyse(index)
        problems = list(analysis.problems)
        if analysis.registry is not None and not no_fetch:
            problems.extend(
                check_remote_artifacts(index, analysis.facts.values(), analysis.registry.policy)
            )
        versions = sum(len(p.version_rows) for p in analysis.facts.values())
        scope = "whole index"
        done = f"{index}: {len(analysis.facts)} plugins, {versions} versions: valid"
    problems = sorted(problems, key=Problem.sort_key)
    if output_format == "github":
        write_step_summary(f"plugindex validate: {scope}", problems)
    if problems:
        raise InvalidIndexError(problems)
    click.echo(done)


@cli.command()
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
    "remote artifacts it already holds are not downloaded again.",
)
@reports_errors
def build(index: Path, out: Path, output_format: str, no_fetch: bool, live: str | None) -> None:
    """Build the static sparse index of INDEX into --out."""
    from builder.index.build import build as run_build

    live_objects: dict[str, str] | None = None
    if live is not None:
        from builder.publish.publish import record_of
        from builder.publish.storage import open_target

        record = record_of(open_target(live))
        live_objects = record.objects if record is not None else {}
    result = run_build(index, out, fetch=not no_fetch, live=live_objects)
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


@cli.command()
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


# --- author tools ---------------------------------------------------------------------


def _passphrase(env_var: str, *, confirm: bool) -> bytes | None:
    """Return the key passphrase from `env_var`, else ask on a terminal, else none."""
    value = os.environ.get(env_var)
    if value is not None:
        return value.encode("utf-8") or None
    if not sys.stdin.isatty():
        return None
    typed: str = click.prompt(
        "Passphrase (empty for none)",
        hide_input=True,
        default="",
        show_default=False,
        confirmation_prompt=confirm,
    )
    return typed.encode("utf-8") or None


@cli.command()
@click.argument("key_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--encrypt/--no-encrypt",
    default=None,
    help="Protect the key with a passphrase ($PLUGINDEX_KEY_PASSPHRASE, else asked).",
)
@reports_errors
def keygen(key_file: Path, encrypt: bool | None) -> None:
    """Create an Ed25519 signing key in KEY_FILE (mode 0600) and print its public key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from builder.authoring.keys import write_private_key
    from builder.trust.signing import key_id, public_key_text

    passphrase = _passphrase(PASSPHRASE_ENV, confirm=True) if encrypt is not False else None
    if encrypt and not passphrase:
        raise PlugindexError(f"--encrypt: no passphrase given (set ${PASSPHRASE_ENV})")
    key = Ed25519PrivateKey.generate()
    write_private_key(key_file, key, passphrase)
    public = public_key_text(key)
    click.echo(f"wrote {key_file} ({'encrypted' if passphrase else 'not encrypted'})")
    click.echo(f"public key: {public}")
    click.echo(f"key id:     {key_id(public)}")
    click.echo("List the public key under your owner entry's `keys:` in plugin.yaml.")


def _read_key(key_file: Path) -> Any:
    from builder.authoring.keys import is_encrypted, read_private_key

    passphrase = _passphrase(PASSPHRASE_ENV, confirm=False) if is_encrypted(key_file) else None
    return read_private_key(key_file, passphrase)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Your private key (from `plugindex keygen`).",
)
@click.option(
    "--yank",
    is_flag=True,
    help="Sign the file's `yanked:` (or `unyanked:`) statement instead of the release.",
)
@reports_errors
def sign(file: Path, key_file: Path, yank: bool) -> None:
    """Sign FILE (a version file, or plugin.yaml) in place with an owner's key."""
    from builder.authoring.sign import sign_file

    signed = sign_file(file, _read_key(key_file), yank=yank)
    click.echo(f"signed the {signed.kind} statement of {file} with key {signed.key_id}")


@cli.command()
@click.argument("name")
@click.option("--index", type=click.Path(path_type=Path), default=DEFAULT_INDEX, show_default=True)
@click.option("--version", "version", default="0.1.0", show_default=True)
@click.option(
    "--artifact",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The package file users will download.",
)
@click.option("--url", required=True, help="Where users will download the artifact from (https).")
@click.option("--owner", required=True, help="Your GitHub handle.")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Your private key: its public half is listed as yours, and the version is signed with it.",
)
@click.option("--description", default="", help="One or two sentences on what it does.")
@click.option("--license", "license_", default="MIT", show_default=True, help="An SPDX expression.")
@click.option("--category", required=True, help="One of the registry's category slugs.")
@click.option("--engine", default="python", show_default=True)
@click.option("--host", default="*", show_default=True, help="Requirement on the host's version.")
@click.option(
    "--plugin-api", default="^1", show_default=True, help="Requirement on the plugin API."
)
@reports_errors
def new(  # Click passes every option by keyword
    *,
    name: str,
    index: Path,
    version: str,
    artifact: Path,
    url: str,
    owner: str,
    key_file: Path,
    description: str,
    license_: str,
    category: str,
    engine: str,
    host: str,
    plugin_api: str,
) -> None:
    """Start plugin NAME: write its plugin.yaml and a signed first version file."""
    import datetime

    from builder.authoring.scaffold import NewPlugin, write_new_plugin
    from builder.authoring.sign import sign_file
    from builder.trust.signing import public_key_text

    key = _read_key(key_file)
    spec = NewPlugin(
        name=name,
        version=version,
        owner=owner,
        public_key=public_key_text(key),
        artifact=artifact,
        url=url,
        description=description or f"The {name} plugin.",
        license=license_,
        category=category,
        engine=engine,
        host=host,
        plugin_api=plugin_api,
    )
    written = write_new_plugin(index, spec, datetime.datetime.now(tz=datetime.UTC).date())
    sign_file(written[1], key)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(
        f"next: edit them, `plugindex sign {written[1]} --key {key_file}` after any edit, "
        f"then `plugindex validate {index}`"
    )


@cli.command()
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
    "--break-lease",
    is_flag=True,
    help="Take over another publish's lease at once (only when it is known to be dead).",
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
    break_lease: bool,
) -> None:
    """Publish the build in DIRECTORY to TARGET: s3://bucket/prefix or a folder."""
    from builder.publish.publish import (
        PublishOptions,
        describe_plan,
        parse_duration,
        summary_of,
    )
    from builder.publish.publish import (
        publish as run_publish,
    )
    from builder.publish.storage import S3Storage, open_target

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
            lease_timeout=0.0 if break_lease else PublishOptions.lease_timeout,
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
    click.echo(summary_of(report, target, getattr(store, "requests", None)))


# The plugin user's commands (info, install, upgrade, ...) live in their own module.
from builder.cli.user import add_client_commands  # noqa: E402 - needs `cli` and reports_errors

add_client_commands(cli)


def main() -> None:
    """Run the CLI."""
    cli()
