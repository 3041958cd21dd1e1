"""A registry as a client sees it: config.json and verified per-plugin documents.

Each document is fetched at most once, a dependency level at a time in parallel, and
every signature in it is checked (`trust.verify_plugin`) before anything reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from builder.client.documents import (
    DocumentError,
    Plugin,
    PublishedConfig,
    expand,
    parse_config,
    parse_plugin,
)
from builder.client.parallel import run_parallel
from builder.client.signatures import (
    TrustError,
    VersionTrust,
    check_version,
    is_yanked,
    verify_plugin,
)
from builder.common import layout
from builder.common.exits import ExitCode
from builder.common.fetch import Fetcher, NotFoundError
from builder.format.names import name_problem
from builder.trust.signing import describe, key_id

_PARALLEL = 8


class UnknownPluginError(NotFoundError):
    """The registry has no plugin of that name."""

    exit_code = ExitCode.UNSATISFIABLE


@dataclass(frozen=True)
class Verified:
    """A per-plugin document whose every signature verified."""

    plugin: Plugin
    trust: dict[str, VersionTrust]  # by version


class Registry:
    """Documents of one registry, fetched through a fetcher."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self._config: PublishedConfig | None = None
        self._verified: dict[str, Verified] = {}

    @property
    def config(self) -> PublishedConfig:
        """Return config.json (fetched on first use)."""
        if self._config is None:
            data = self.fetcher.document(layout.CONFIG)
            try:
                self._config = parse_config(data, self.fetcher.url_of(layout.CONFIG))
            except DocumentError:
                self.fetcher.discard(layout.CONFIG)
                raise
        return self._config

    @property
    def name(self) -> str:
        """Return the registry's name (what every signed statement names)."""
        return self.config.name

    def index_path(self, name: str) -> str:
        """Return the path of a plugin's document, from config.json's template."""
        if (problem := name_problem(name)) is not None:  # a name becomes part of a URL
            raise DocumentError(f"{self.fetcher.location}: not a plugin name ({problem})")
        return expand(self.config.index, {"prefix": layout.prefix_of(name), "name": name})

    def load(self, name: str) -> Plugin:
        """Fetch and parse a plugin's document, without checking its signatures."""
        path = self.index_path(name)
        try:
            data = self.fetcher.document(path)
        except NotFoundError:
            raise UnknownPluginError(
                f"no plugin named {name!r} in {self.fetcher.location} "
                f"({self.fetcher.url_of(path)} not found)"
            ) from None
        try:
            return parse_plugin(data, self.fetcher.url_of(path), name)
        except DocumentError:
            self.fetcher.discard(path)  # never reuse a copy that failed
            raise

    def verified(self, name: str) -> Verified:
        """Return a plugin's document after checking every signature in it."""
        if name not in self._verified:
            plugin = self.load(name)
            try:
                trust = verify_plugin(self.name, plugin)
            except TrustError:
                self.fetcher.discard(self.index_path(name))  # never reuse a copy that failed
                raise
            self._verified[name] = Verified(plugin, trust)
        return self._verified[name]

    def verified_many(self, names: Iterable[str]) -> dict[str, Verified]:
        """Return several verified documents, fetched in parallel."""
        wanted = sorted(set(names))
        self.config  # noqa: B018 - fetched once, before the threads need it
        if len(wanted) <= 1:
            return {name: self.verified(name) for name in wanted}
        found = run_parallel(self.verified, wanted, workers=_PARALLEL)
        return dict(zip(wanted, found, strict=True))


def _signature_status(trust: VersionTrust, name: str) -> str:
    if trust.release.valid:
        return f"verified: signed by {trust.owner} (key {trust.key_id})"
    return f"NOT VERIFIED: {describe(trust.release, 'release', name)}"


def plugin_info(registry: Registry, name: str, version: str | None = None) -> dict[str, Any]:
    """Return what `info` shows: plugin facts, every version, and one version in detail.

    Signatures are checked here too, but a failure is reported, not raised.
    """
    plugin = registry.load(name)
    doc = plugin.doc
    checks = {v.number: check_version(registry.name, plugin, v) for v in plugin.versions}
    if not all(c.valid for t in checks.values() for c in (t.release, t.yank, t.unyank) if c):
        registry.fetcher.discard(registry.index_path(name))  # shown, but not kept
    rows: list[dict[str, Any]] = []
    for v in reversed(plugin.versions):
        yanked = is_yanked(v, checks[v.number]) and v.entry.yanked is not None
        rows.append(
            {
                "version": v.number,
                "released": v.entry.released,
                "prerelease": v.prerelease,
                "yanked": v.entry.yanked.reason if yanked and v.entry.yanked else None,
                "signature": _signature_status(checks[v.number], name),
                "verified": checks[v.number].release.valid,
            }
        )
    if version is not None:
        chosen = plugin.version(version)
        if chosen is None:
            known = ", ".join(r["version"] for r in rows)
            raise UnknownPluginError(f"{name} has no version {version} (available: {known})")
    else:
        fine = [v for v in reversed(plugin.versions) if not is_yanked(v, checks[v.number])]
        releases = [v for v in fine if not v.prerelease]
        chosen = (releases or fine or list(reversed(plugin.versions)))[0]
    entry = chosen.entry
    return {
        "name": doc.name,
        "display_name": doc.display_name,
        "description": doc.description,
        "license": doc.license,
        "homepage": doc.homepage,
        "repository": doc.repository,
        "owners": [
            {"github": o.github, "key_ids": [_key_id(k) for k in o.keys]} for o in doc.owners
        ],
        "versions": rows,
        "selected": {
            "version": chosen.number,
            "released": entry.released,
            "yanked": next(r["yanked"] for r in rows if r["version"] == chosen.number),
            "dependencies": [d.model_dump() for d in entry.dependencies],
            "compatibility": entry.compatibility.model_dump(),
            "engine": entry.engine,
            "formats": entry.formats,
            "compliance": entry.compliance,
            "artifact": {
                "filename": entry.artifact.filename,
                "size": entry.artifact.size,
                "sha256": entry.artifact.sha256,
                "url": registry.fetcher.url_of(entry.artifact.download),
            },
            "signature": _signature_status(checks[chosen.number], name),
        },
    }


def info_lines(data: dict[str, Any]) -> list[str]:
    """Return what `info` prints for people, from what `plugin_info` returned."""
    sel = data["selected"]
    lines = [
        f"{data['name']} {sel['version']}: {data['display_name']}",
        f"  {data['description']}",
        f"  license: {data['license']}",
    ]
    lines += [f"  {field}: {data[field]}" for field in ("homepage", "repository") if data[field]]
    owners = ", ".join(f"{o['github']} ({', '.join(o['key_ids'])})" for o in data["owners"])
    lines += [f"  owners: {owners}", f"  signature: {sel['signature']}"]
    if sel["yanked"]:
        lines.append(f"  YANKED: {sel['yanked']}")
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
        if row["prerelease"]:
            notes.append("prerelease")
        if row["yanked"]:
            notes.append(f"YANKED: {row['yanked']}")
        if not row["verified"]:
            notes.append(row["signature"])
        extra = f"  ({'; '.join(notes)})" if notes else ""
        lines.append(f"  {row['version']:<16} {row['released']}{extra}")
    return lines


def _key_id(key: str) -> str:
    try:
        return key_id(key)
    except ValueError:
        return "(malformed key)"
