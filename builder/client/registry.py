"""A registry as a client sees it: config.json and verified per-plugin documents.

Each document is fetched at most once, a dependency level at a time in parallel, and
every signature in it is checked (`trust.verify_plugin`) before anything reads it.

A deprecation is the owners' word only when their plugin.yaml signature, which
covers it, verifies with a key they list (not a revoked one): otherwise the registry
(or whoever holds its keys) may have added it. Such a deprecation is still shown,
marked as not signed, and its replacement is not offered as one: telling people to
install another plugin on the registry's word alone is the attack. (A deprecation
the registry removes cannot be shown; the signature it leaves, if any, no longer
verifies, and `info` says so.)
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from builder.client.documents import (
    DocumentError,
    Plugin,
    PublishedConfig,
    PublishedDeprecation,
    expand,
    loads,
    parse_config,
    parse_plugin,
)
from builder.client.parallel import run_parallel
from builder.client.signatures import TrustError, VersionTrust, powers_of, verify_plugin
from builder.client.suggest import similar_names
from builder.common import layout
from builder.common.errors import PlugindexError
from builder.common.exits import ExitCode
from builder.common.fetch import Fetcher, NotFoundError
from builder.format.names import name_problem
from builder.trust import statements
from builder.trust.powers import Standing
from builder.trust.signing import Check, Verdict, verify_statement

log = logging.getLogger(__name__)

_PARALLEL = 8


class UnknownPluginError(NotFoundError):
    """The registry has no plugin of that name (the message may say which it has)."""

    exit_code = ExitCode.UNSATISFIABLE

    def __init__(self, message: str, suggestions: Sequence[str] = ()) -> None:
        super().__init__(message + did_you_mean(suggestions))
        self.message = message  # without the suggestions, for a caller to extend
        self.suggestions = list(suggestions)


def did_you_mean(suggestions: Sequence[str]) -> str:
    """Return `; did you mean 'a' or 'b'?`, or nothing without suggestions."""
    if not suggestions:
        return ""
    return f"; did you mean {' or '.join(repr(s) for s in suggestions)}?"


def manifest_check(registry: str, plugin: Plugin) -> Check:
    """Check the owners' plugin.yaml signature over the document, with any key not revoked."""
    powers = powers_of(plugin)
    statement = statements.manifest_statement(registry, plugin.raw)
    check = verify_statement(plugin.doc.signature, statement, powers.keys())
    power = powers.of(check.key) if check.valid and check.key else None
    if power is not None and power.standing is Standing.REVOKED:
        return Check(Verdict.REVOKED_KEY, check.key)
    return check


UNSIGNED = "NOT SIGNED by the owners"  # how an unverified deprecation is marked


def manifest_problem(check: Check) -> str:
    """Return why a plugin.yaml signature does not hold, as a sentence end."""
    if check.verdict is Verdict.MISSING:
        return "its plugin.yaml carries no owners' signature"
    return f"its plugin.yaml signature {check.verdict.value}"


def checked_deprecation(registry: str, plugin: Plugin) -> Plugin:
    """Return the plugin, its deprecation marked unsigned unless the owners' signature covers it."""
    found = plugin.doc.deprecated
    if found is None:
        return plugin
    check = manifest_check(registry, plugin)
    if check.valid:
        return plugin
    why = manifest_problem(check)
    named = f"; it names {found.replacement!r} to use instead" if found.replacement else ""
    marked = PublishedDeprecation(
        message=f"{found.message} [{UNSIGNED} ({why}): the registry may have added it{named}]",
        replacement=None,
    )
    doc = plugin.doc.model_copy(update={"deprecated": marked})
    return dataclasses.replace(plugin, doc=doc)


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

    def names(self) -> list[str]:
        """Return every plugin name the registry lists (names.json)."""
        path = self.config.names
        data = self.fetcher.document(path)
        source = self.fetcher.url_of(path)
        try:
            listed = loads(data, source)
            plugins = listed.get("plugins") if isinstance(listed, dict) else None
            if not isinstance(plugins, dict):
                raise DocumentError(f"{source}: plugins: expected an object of names")
        except DocumentError:
            self.fetcher.discard(path)
            raise
        return sorted(n for n in plugins if isinstance(n, str) and name_problem(n) is None)

    def suggestions(self, name: str) -> list[str]:
        """Return names close to `name`; none when the list cannot be read."""
        try:
            return similar_names(name, self.names())
        except PlugindexError as e:
            log.info("no suggestions for %s: %s", name, e)
            return []

    def load(self, name: str) -> Plugin:
        """Fetch and parse a plugin's document, without checking its signatures."""
        path = self.index_path(name)
        try:
            data = self.fetcher.document(path)
        except NotFoundError as e:  # its message says how the absence is known
            suggestions = self.suggestions(name)
            raise UnknownPluginError(
                f"no plugin named {name!r} in {self.fetcher.location} ({e})", suggestions
            ) from None
        try:
            return parse_plugin(data, self.fetcher.url_of(path), name)
        except DocumentError:
            self.fetcher.discard(path)  # never reuse a copy that failed
            raise

    def verified(self, name: str) -> Verified:
        """Return a plugin's document after checking every signature in it."""
        if name not in self._verified:
            plugin = checked_deprecation(self.name, self.load(name))
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
