"""Generate a large, valid, deterministic synthetic index for benchmarking the build.

    python benchmarks/generate_index.py OUT --plugins 10000 --versions 10 --seed 0
    python benchmarks/generate_index.py OUT --artifacts local     # artifacts in the index

The index has the real layout (`registry.yaml`, `plugins/<name>/plugin.yaml`,
`plugins/<name>/versions/<version>.yaml`) and a real registry's shape: `--versions`
is the mean, most plugins have a handful of releases, some a few hundred and a few
(one per 30,000 versions) 500 or more; about a quarter of the plugins describe
themselves or are written by people with non-ASCII text. Every artifact is a small
real file (a few hundred bytes to 4 KiB, `artifact_bytes`): with `--artifacts
remote` (the default) an https URL on a host that does not exist (the benchmark
builds with `--no-fetch` or takes them as live, `build --live`), with `--artifacts
local` a file in the plugin's folder that the build copies into its output, as
it mirrors a downloaded one.

Dependencies of kind runtime, build and optional only point at plugins earlier in
the sorted name order, so they never form a cycle; dev dependencies may point
anywhere (cycles are allowed for them). Every requirement is satisfiable by a
non-yanked release of its target.

YAML is written with string formatting, not yaml.dump: every string is a JSON
string (a valid YAML double-quoted scalar), so nothing is mis-typed by the
builder's YAML 1.2 core-schema resolution (versions such as "1.10" stay strings).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.trust import statements
from builder.trust.signing import public_key_text, sign_statement

REGISTRY_NAME = "bench-registry"

# --- vocabulary ------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("auth", "Authentication", "Sign-in, tokens, sessions and access control."),
    ("storage", "Storage", "Databases, object stores, caches and file systems."),
    ("data", "Data formats", "Readers and writers for file and wire formats."),
    ("network", "Networking", "HTTP clients, protocols, proxies and transports."),
    ("observability", "Observability", "Logging, metrics, tracing and alerting."),
    ("ui", "User interface", "Themes, widgets, editors and dashboards."),
    ("devtools", "Developer tools", "Linters, formatters, test helpers and generators."),
    ("ml", "Machine learning", "Models, feature stores and inference helpers."),
)

_PREFIXES = _words(
    "auth cache csv json yaml toml xml s3 gcs azure redis postgres mysql sqlite mongo "
    "kafka amqp mqtt http grpc ws oauth saml ldap jwt otel prom log trace metric ui theme "
    "chart table form image pdf markdown html mail sms slack git docker k8s terraform "
    "lint format test mock bench geo time crypto hash zip tar parquet arrow avro onnx "
    "torch vector search index queue cron rate retry circuit config secret vault i18n "
    "locale audio video font color svg excel"
)
_SUFFIXES = _words(
    "export import sync bridge client server adapter loader writer reader parser viewer "
    "editor store backend provider helper tools kit core plus lite extra guard proxy "
    "router gateway monitor exporter collector inspector validator converter renderer "
    "widgets panel hooks events stream batch runner scheduler watcher cli"
)
_QUALIFIERS = _words(
    "fast async simple secure cloud local multi micro smart open mini pro next legacy "
    "turbo strict easy hyper tiny flex"
)
_DESCRIPTION_OPENERS = (
    "Adds {topic} support to the host application.",
    "A {adj} {topic} integration with sensible defaults.",
    "Connects your workspace to {topic} without extra configuration.",
    "Provides {topic} {thing} for plugins and scripts.",
    "Lightweight {topic} {thing} built on the stable plugin API.",
)
_DESCRIPTION_FOLLOWERS = (
    "Works offline and caches results between sessions.",
    "Supports streaming for large inputs and reports progress as it goes.",
    "Configuration lives in a single file and can be overridden per project.",
    "Errors are reported with the file and line they came from.",
    "Ships with a command palette entry and keyboard shortcuts.",
    "Tested against every supported host release on Linux, macOS and Windows.",
    "Credentials are read from the system keychain, never from plain files.",
    "All network access goes through the host's proxy settings.",
    "Includes a migration guide for users of the previous major version.",
    "Telemetry is off by default and documented in the README.",
)
# Descriptions, authors and display names in other scripts: a real registry's
# documents are UTF-8 all through, and JSON encoding, escaping and search see them.
_UNICODE_FOLLOWERS = (
    "Prend en charge les fichiers déjà ouverts et les références croisées.",
    "Unterstützt Größenangaben in Maßeinheiten und Umlaute in Dateinamen.",
    "支持中文路径、全角字符和多种编码。",
    "日本語のファイル名とエンコーディングに対応しています。",
    "Поддерживает кириллицу в путях и метаданных.",
    "Funciona sin conexión y guarda la caché entre sesiones — ¡rápido!",
    "Υποστηρίζει ελληνικά ονόματα αρχείων.",
    "Ondersteunt \u2018slimme\u2019 aanhalingstekens en het € teken.",
    "⚡ Fast path for large inputs, ✓ tested on every release.",
    "한국어 파일 이름을 지원합니다.",
)
_UNICODE_AUTHORS = _words("Zoë Chloé Søren Łukasz José Ängel Ngũgĩ Ñusta Jürgen Björk")
_UNICODE_SURNAMES = _words("Müller Ødegård Wójcik Núñez Çelik Dvořák Åström 陈 Иванов Σάββας")
_ADJECTIVES = ("fast", "minimal", "robust", "well-tested", "pragmatic", "modern", "tiny")
_FIRST_NAMES = _words(
    "Ada Linus Grace Ken Margaret Dennis Barbara Guido Frances Yukihiro Radia Bjarne "
    "Sophie Anders Hedy Rasmus Katherine Jean Mei Ravi Olga Tomasz Amara Kwame Ingrid "
    "Mateo Aiko Priya"
)
_LAST_NAMES = _words(
    "Lovelace Torvalds Hopper Thompson Hamilton Ritchie Liskov Rossum Allen Matsumoto "
    "Perlman Stroustrup Wilson Hejlsberg Lamarr Lerdorf Johnson Sammet Chen Kumar Petrova "
    "Nowak Okafor Mensah Berg"
)
_LICENSES = (
    "MIT",
    "MIT",
    "MIT",
    "Apache-2.0",
    "Apache-2.0",
    "Apache-2.0 OR MIT",
    "BSD-3-Clause",
    "BSD-2-Clause",
    "MPL-2.0",
    "GPL-3.0-or-later",
    "LGPL-2.1-only",
    "ISC",
    "Unlicense",
)
_ENGINES = ("python", "python", "python", "wasm", "wasm", "node", "lua", "native")
_FORMATS: tuple[tuple[str, str, str], ...] = (
    (".csv", "Comma-separated values", "text/csv"),
    (".tsv", "Tab-separated values", "text/tab-separated-values"),
    (".json", "JSON documents", "application/json"),
    (".ndjson", "Newline-delimited JSON", "application/x-ndjson"),
    (".yaml", "YAML documents", "application/yaml"),
    (".toml", "TOML configuration", "application/toml"),
    (".xml", "XML documents", "application/xml"),
    (".parquet", "Apache Parquet tables", "application/vnd.apache.parquet"),
    (".avro", "Apache Avro records", "application/avro"),
    (".pdf", "PDF documents", "application/pdf"),
    (".md", "Markdown text", "text/markdown"),
    (".png", "PNG images", "image/png"),
    (".svg", "SVG drawings", "image/svg+xml"),
    (".xlsx", "Excel workbooks", "application/vnd.ms-excel"),
    (".onnx", "ONNX models", "application/octet-stream"),
)
_RISK_LEVELS = ("low",) * 14 + ("medium",) * 4 + ("high",) + ("critical",)
_RISK_NOTES = (
    "Reads files the user selects; no network access.",
    "Stores credentials in the system keychain.",
    "Sends data to a third-party service configured by the user.",
    "Executes external commands on behalf of the user.",
)
_YANK_REASONS = (
    "Published by mistake from a development branch.",
    "Data loss when writing large files; upgrade to the next release.",
    "Security issue: credentials could be logged at debug level.",
    "Broken artifact: the archive was missing the plugin entry point.",
)
_DEPENDENCY_KINDS = ("runtime",) * 80 + ("optional",) * 8 + ("dev",) * 7 + ("build",) * 5
_HOST_RANGES = (">=2.0, <4.0", "^3.1", "^3", ">=3.2, <3.9", "~2.8", "^4.0", ">=1.9")
_API_RANGES = ("^1.4", "^1", "~2.0", ">=1.2, <2.0", "^2.1", "~1.7.0")

_START = datetime.date(2018, 1, 1)
_SPAN_DAYS = 5 * 365
_END = datetime.date(2025, 1, 1)  # no release after this: a build refuses future dates

# Version counts: one plugin with 500 or more versions per this many versions in all.
VERSIONS_PER_GIANT = 30_000
GIANT_VERSIONS = (500, 1200)  # how many versions such a plugin has
_MOST_VERSIONS = 400  # the most any other plugin has
_SPREAD = 1.0  # sigma of the log-normal spread of the other plugins' version counts
ARTIFACT_HOST = "https://downloads.example.org"
ARTIFACTS_DIR = "artifacts"  # a plugin folder's local artifacts (--artifacts local)


# --- model of what gets written ---------------------------------------------------


@dataclass
class VersionSpec:
    """One versions/<version>.yaml."""

    version: str
    released: str
    sha256: str
    size: int
    host: str
    plugin_api: str
    engine: str
    formats: list[tuple[str, str, str]]
    risk_level: str
    risk_notes: str | None
    yank_reason: str | None
    dependencies: list[tuple[str, str, str]] = field(default_factory=list)  # name, req, kind


@dataclass
class PluginSpec:
    """One plugin folder: plugin.yaml plus its versions (oldest first)."""

    name: str
    display_name: str
    description: str
    authors: list[tuple[str, str | None]]
    license: str
    homepage: str
    repository: str
    keywords: list[str]
    categories: list[str]
    owners: list[str]  # github handles; each one's key is `owner_key(name, handle)`
    versions: list[VersionSpec] = field(default_factory=list)


# Printable ASCII without `"` and `\\`: safe between double quotes as it is.
_NEEDS_NO_ESCAPE = re.compile(r"[ !#-\[\]-~]*")


def _q(text: str) -> str:
    """Quote a string as YAML: a JSON string is a valid double-quoted YAML scalar."""
    if _NEEDS_NO_ESCAPE.fullmatch(text):
        return f'"{text}"'
    return json.dumps(text, ensure_ascii=False)  # UTF-8 as people write it, not \u escapes


def registry_yaml(*, local_artifacts: bool = False) -> str:
    """Return the registry.yaml of the synthetic index."""
    lines = [
        "format: 1",
        f"name: {REGISTRY_NAME}",
        'title: "Benchmark registry"',
        'base_url: "https://plugins.example.org/"',
        "categories:",
    ]
    for slug, title, description in CATEGORIES:
        lines += [
            f"  - slug: {slug}",
            f"    title: {_q(title)}",
            f"    description: {_q(description)}",
        ]
    lines += ["policy:", "  allowed_url_schemes: [https]"]
    if local_artifacts:
        lines.append("  allow_local_artifacts: true")
    lines.append("")
    return "\n".join(lines)


def plugin_yaml(plugin: PluginSpec) -> str:
    """Return the text of a plugin.yaml."""
    lines = [
        f"name: {plugin.name}",
        f"display_name: {_q(plugin.display_name)}",
        f"description: {_q(plugin.description)}",
        "authors:",
    ]
    for author, email in plugin.authors:
        lines.append(f"  - name: {_q(author)}")
        if email is not None:
            lines.append(f"    email: {_q(email)}")
    lines += [
        f"license: {_q(plugin.license)}",
        f"homepage: {_q(plugin.homepage)}",
        f"repository: {_q(plugin.repository)}",
        "keywords: [" + ", ".join(map(_q, plugin.keywords)) + "]",
        "categories: [" + ", ".join(map(_q, plugin.categories)) + "]",
        "owners:",
    ]
    for handle in plugin.owners:
        key = public_key_text(owner_key(plugin.name, handle))
        lines += [f"  - github: {_q(handle)}", "    keys:", f"      - {_q(key)}"]
    lines.append("")
    return "\n".join(lines)


def artifact_file(name: str, version: str) -> str:
    """Return the file name of a version's artifact."""
    return f"{name}-{version}.tar.gz"


def artifact_bytes(name: str, version: str) -> bytes:
    """Return the (deterministic) bytes of a version's artifact: 256 B to 4 KiB."""
    digest = hashlib.sha256(f"artifact {name} {version}".encode()).digest()
    return digest * (8 + digest[0] % 121)


def artifact_url(name: str, version: str, *, local: bool) -> str:
    """Return the URL a version file names: remote, or relative to the plugin's folder."""
    filename = artifact_file(name, version)
    return f"{ARTIFACTS_DIR}/{filename}" if local else f"{ARTIFACT_HOST}/{name}/{filename}"


def release_entry(name: str, spec: VersionSpec, *, local: bool = False) -> dict[str, Any]:
    """Return the published shape of a version (`builder.format.shapes.version_entry`)."""
    filename = artifact_file(name, spec.version)
    compliance: dict[str, Any] = {"risk_level": spec.risk_level}
    if spec.risk_notes is not None:
        compliance["notes"] = spec.risk_notes
    return {
        "version": spec.version,
        "released": spec.released,
        "artifact": {
            "url": artifact_url(name, spec.version, local=local),
            "sha256": spec.sha256,
            "size": spec.size,
            "filename": filename,
        },
        "dependencies": [
            {"name": dep, "req": req, "kind": kind} for dep, req, kind in sorted(spec.dependencies)
        ],
        "compatibility": {"host": spec.host, "plugin_api": spec.plugin_api},
        "engine": spec.engine,
        "formats": [{"extension": e, "description": d, "mime_type": m} for e, d, m in spec.formats],
        "compliance": compliance,
    }


def _signature_lines(block: dict[str, str], indent: str) -> list[str]:
    return [
        f"{indent}signature:",
        f"{indent}  algorithm: {block['algorithm']}",
        f"{indent}  key_id: {_q(block['key_id'])}",
        f"{indent}  value: {_q(block['value'])}",
    ]


def version_yaml(
    name: str, spec: VersionSpec, key: Ed25519PrivateKey, *, local: bool = False
) -> str:
    """Return the text of a versions/<version>.yaml, signed with `key`."""
    entry = release_entry(name, spec, local=local)
    artifact = entry["artifact"]
    lines = [
        f"version: {_q(spec.version)}",
        f"released: {_q(spec.released)}",
        "artifact:",
        f"  url: {_q(artifact['url'])}",
        f"  sha256: {_q(spec.sha256)}",
        f"  size: {spec.size}",
        f"  filename: {_q(artifact['filename'])}",
    ]
    if spec.dependencies:
        lines.append("dependencies:")
        for dep_name, req, kind in spec.dependencies:
            lines += [f"  {dep_name}:", f"    version: {_q(req)}"]
            if kind != "runtime":
                lines.append(f"    kind: {kind}")
    lines += [
        "compatibility:",
        f"  host: {_q(spec.host)}",
        f"  plugin_api: {_q(spec.plugin_api)}",
        f"engine: {spec.engine}",
    ]
    if spec.formats:
        lines.append("formats:")
        for extension, description, mime in spec.formats:
            lines += [
                f"  - extension: {_q(extension)}",
                f"    description: {_q(description)}",
                f"    mime_type: {_q(mime)}",
            ]
    lines += ["compliance:", f"  risk_level: {spec.risk_level}"]
    if spec.risk_notes is not None:
        lines.append(f"  notes: {_q(spec.risk_notes)}")
    if spec.yank_reason is not None:
        yank = statements.yank_statement(
            REGISTRY_NAME,
            name,
            spec.version,
            sha256=spec.sha256,
            reason=spec.yank_reason,
            serial=1,
        )
        lines += ["yanked:", f"  reason: {_q(spec.yank_reason)}", "  serial: 1"]
        lines += _signature_lines(sign_statement(key, yank), "  ")
    release = statements.release_statement(REGISTRY_NAME, name, entry)
    lines += [*_signature_lines(sign_statement(key, release), ""), ""]
    return "\n".join(lines)


# --- random content ---------------------------------------------------------------


def _names(rng: random.Random, count: int) -> list[str]:
    """Return `count` distinct valid plugin names, sorted."""
    names: set[str] = set()
    while len(names) < count:
        roll = rng.random()
        prefix, suffix = rng.choice(_PREFIXES), rng.choice(_SUFFIXES)
        if roll < 0.45:
            name = f"{prefix}-{suffix}"
        elif roll < 0.85:
            name = f"{rng.choice(_QUALIFIERS)}-{prefix}-{suffix}"
        else:
            name = f"{prefix}-{rng.choice(_PREFIXES)}-{suffix}"
        if name in names:
            name = f"{name}{rng.randint(2, 99)}"
        names.add(name)
    return sorted(names)


def owner_key(plugin: str, handle: str) -> Ed25519PrivateKey:
    """Return the (deterministic, benchmark-only) signing key of an owner of a plugin."""
    seed = hashlib.sha256(f"bench owner key {plugin} {handle}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def _description(rng: random.Random, name: str) -> str:
    words = name.split("-")
    topic = words[-2] if len(words) > 1 else words[0]
    thing = words[-1]
    opener = rng.choice(_DESCRIPTION_OPENERS).format(
        topic=topic, thing=thing, adj=rng.choice(_ADJECTIVES)
    )
    followers = rng.sample(_DESCRIPTION_FOLLOWERS, rng.randint(0, 2))
    if rng.random() < 0.25:
        followers.append(rng.choice(_UNICODE_FOLLOWERS))
    return " ".join([opener, *followers])


def _plugin(rng: random.Random, name: str) -> PluginSpec:
    words = name.split("-")
    authors: list[tuple[str, str | None]] = []
    handles: list[str] = []
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        handle = f"{first}{last}".lower()[: rng.randint(5, 14)]
        handles.append(handle)
        email = f"{first}.{last}@example.com".lower() if rng.random() < 0.7 else None
        if rng.random() < 0.1:  # the handle stays ASCII, as GitHub's do
            first, last = rng.choice(_UNICODE_AUTHORS), rng.choice(_UNICODE_SURNAMES)
        authors.append((f"{first} {last}", email))
    # Two authors may share a handle; an owner is listed once.
    owners = list(dict.fromkeys(handles))[: rng.choice((1, 1, 2))]
    extra = [w for w in rng.sample(_PREFIXES, 4) if w not in words]
    keywords = list(dict.fromkeys([*words, *extra]))[: rng.randint(3, 6)]
    categories = [c[0] for c in rng.sample(CATEGORIES, rng.choice((1, 1, 2)))]
    org = handles[0]
    return PluginSpec(
        name=name,
        display_name=" ".join(w.upper() if len(w) <= 3 else w.capitalize() for w in words),
        description=_description(rng, name),
        authors=authors,
        license=rng.choice(_LICENSES),
        homepage=f"https://{name}.example.org/",
        repository=f"https://github.com/{org}/{name}",
        keywords=keywords,
        categories=categories,
        owners=owners,
    )


def _version_spec(
    rng: random.Random, name: str, version: str, released: datetime.date
) -> VersionSpec:
    risk = rng.choice(_RISK_LEVELS)
    data = artifact_bytes(name, version)
    return VersionSpec(
        version=version,
        released=released.isoformat(),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        host=rng.choice(_HOST_RANGES),
        plugin_api=rng.choice(_API_RANGES),
        engine=rng.choice(_ENGINES),
        formats=rng.sample(_FORMATS, rng.choice((0, 0, 1, 1, 2, 3))),
        risk_level=risk,
        risk_notes=rng.choice(_RISK_NOTES) if risk != "low" else None,
        yank_reason=None,
    )


def _versions(rng: random.Random, plugin: PluginSpec, count: int) -> None:
    """Fill `plugin.versions` with a semver progression and increasing dates."""
    major = rng.choice((0, 0, 1, 1, 1, 2, 3))
    minor, patch = rng.randint(0, 4), rng.randint(0, 3)
    # Many releases start early and come often, so that the last is not in the future.
    day = _START + datetime.timedelta(days=rng.randint(0, max(0, _SPAN_DAYS - 30 * count)))
    high = max(1, min(90, 2 * (_END - day).days // count - 3))  # days between releases
    low = min(3, high)
    pending_release = False
    for i in range(count):
        if i > 0 and not pending_release:
            roll = rng.random()
            if roll < 0.6:
                patch += 1
            elif roll < 0.9:
                minor, patch = minor + 1, 0
            else:
                major, minor, patch = major + 1, 0, 0
        version = f"{major}.{minor}.{patch}"
        after_prerelease, pending_release = pending_release, False
        if i < count - 1 and not after_prerelease and rng.random() < 0.05:
            version += f"-{rng.choice(('alpha', 'beta', 'rc'))}.{rng.randint(1, 3)}"
            pending_release = True  # the next version is the release of this one
        day = min(_END, day + datetime.timedelta(days=rng.randint(low, high)))
        spec = _version_spec(rng, plugin.name, version, day)
        if rng.random() < 0.02:
            spec.yank_reason = rng.choice(_YANK_REASONS)
        plugin.versions.append(spec)


def _parse_triple(version: str) -> tuple[int, int, int]:
    major, minor, patch = version.split("-", 1)[0].split(".")
    return int(major), int(minor), int(patch)


def _requirement(rng: random.Random, version: str) -> str:
    """Return a realistic requirement that `version` (a release) satisfies."""
    major, minor, patch = _parse_triple(version)
    roll = rng.random()
    if roll < 0.45:
        return f"^{major}.{minor}"
    if roll < 0.60:
        return f"^{major}.{minor}.{patch}"
    if roll < 0.75:
        return f">={major}.{minor}, <{major}.{minor + 2}"
    if roll < 0.88:
        return f"~{major}.{minor}.{patch}"
    if roll < 0.98:
        return f">={major}.{minor}.{patch}"
    return "*"


def _installable(plugin: PluginSpec) -> list[str]:
    """Return the non-yanked releases of a plugin (what a requirement may target)."""
    return [v.version for v in plugin.versions if v.yank_reason is None and "-" not in v.version]


def _dependencies(rng: random.Random, plugins: list[PluginSpec], index: int) -> None:
    """Give plugin `index` 0-4 dependencies: installable kinds only on earlier plugins."""
    plugin = plugins[index]
    wanted = rng.choice((0, 0, 1, 1, 2, 2, 3, 4))
    chosen: dict[str, tuple[str, str]] = {}
    for _ in range(wanted * 3):
        if len(chosen) >= wanted:
            break
        kind = rng.choice(_DEPENDENCY_KINDS)
        if kind == "dev":
            target_index = rng.randrange(len(plugins))
        elif index == 0:
            continue
        else:  # earlier plugins only, biased towards the first (popular libraries)
            target_index = int(index * rng.random() ** 2)
        target = plugins[target_index]
        candidates = _installable(target)
        if target_index == index or target.name in chosen or not candidates:
            continue
        chosen[target.name] = (_requirement(rng, rng.choice(candidates[-4:])), kind)
    if not chosen:
        return
    # Most versions carry every dependency; older ones may lack the later additions.
    names = sorted(chosen)
    for position, spec in enumerate(plugin.versions):
        keep = names if position >= len(plugin.versions) // 3 else names[: rng.randint(0, 2)]
        spec.dependencies = [(name, *chosen[name]) for name in keep]


def version_counts(rng: random.Random, plugins: int, mean: int) -> list[int]:
    """Return how many versions each plugin has: a long tail whose mean is about `mean`.

    A few plugins (one per VERSIONS_PER_GIANT versions in all) have 500 or more; the
    others spread log-normally, most with a handful and some with a few hundred.
    """
    giants = min(plugins // 2, plugins * mean // VERSIONS_PER_GIANT)
    counts = [0] * plugins
    for position in rng.sample(range(plugins), giants):
        counts[position] = rng.randint(*GIANT_VERSIONS)
    rest = plugins - giants
    if rest == 0:
        return counts
    rest_mean = max(1.0, (plugins * mean - sum(counts)) / rest)
    mu = math.log(rest_mean) - _SPREAD * _SPREAD / 2  # the log-normal's mean is rest_mean
    for position in range(plugins):
        if counts[position] == 0:
            drawn = round(rng.lognormvariate(mu, _SPREAD))
            counts[position] = min(_MOST_VERSIONS, max(1, drawn))
    return counts


@dataclass(frozen=True)
class Generated:
    """What `generate` wrote."""

    plugins: int
    versions: int
    # Every artifact a build publishes (artifacts/<sha256>/<file>) -> its sha256.
    artifacts: dict[str, str]


def generate(
    root: Path,
    plugins: int,
    versions: int,
    seed: int = 0,
    *,
    artifacts: str = "remote",
    long_tail: bool = True,
) -> Generated:
    """Write a synthetic index of `plugins` plugins with about `versions` versions each.

    `artifacts` is "remote" (https URLs) or "local" (files in the plugin folders);
    `long_tail=False` gives every plugin exactly `versions` versions.
    """
    if plugins < 1 or versions < 1:
        raise ValueError("expected at least one plugin and one version")
    if artifacts not in ("remote", "local"):
        raise ValueError(f"expected artifacts 'remote' or 'local', got {artifacts!r}")
    local = artifacts == "local"
    rng = random.Random(seed)
    specs = [_plugin(rng, name) for name in _names(rng, plugins)]
    counts = version_counts(rng, plugins, versions) if long_tail else [versions] * plugins
    for spec, count in zip(specs, counts, strict=True):
        _versions(rng, spec, count)
    for i in range(len(specs)):
        _dependencies(rng, specs, i)
    root.mkdir(parents=True, exist_ok=True)
    (root / "registry.yaml").write_text(registry_yaml(local_artifacts=local), encoding="utf-8")
    published: dict[str, str] = {}
    for spec in specs:
        write_plugin(root, spec, local=local)
        for version in spec.versions:
            path = f"artifacts/{version.sha256}/{artifact_file(spec.name, version.version)}"
            published[path] = version.sha256
    return Generated(len(specs), sum(len(s.versions) for s in specs), published)


def write_plugin(root: Path, plugin: PluginSpec, *, local: bool = False) -> None:
    """Write a plugin's folder (plugin.yaml, every version file and local artifact)."""
    folder = root / "plugins" / plugin.name
    (folder / "versions").mkdir(parents=True, exist_ok=True)
    if local:
        (folder / ARTIFACTS_DIR).mkdir(exist_ok=True)
    (folder / "plugin.yaml").write_text(plugin_yaml(plugin), encoding="utf-8")
    key = owner_key(plugin.name, plugin.owners[0])
    for version in plugin.versions:
        (folder / "versions" / f"{version.version}.yaml").write_text(
            version_yaml(plugin.name, version, key, local=local), encoding="utf-8"
        )
        if local:
            data = artifact_bytes(plugin.name, version.version)
            (folder / ARTIFACTS_DIR / artifact_file(plugin.name, version.version)).write_bytes(data)


# --- one realistic change ---------------------------------------------------------


def _spec_from_document(document: dict[str, Any]) -> VersionSpec:
    compliance = document["compliance"]
    yanked = document.get("yanked")
    return VersionSpec(
        version=document["version"],
        released=document["released"],
        sha256=document["artifact"]["sha256"],
        size=document["artifact"]["size"],
        host=document["compatibility"]["host"],
        plugin_api=document["compatibility"]["plugin_api"],
        engine=document["engine"],
        formats=[
            (f["extension"], f["description"], f["mime_type"]) for f in document.get("formats", [])
        ],
        risk_level=compliance["risk_level"],
        risk_notes=compliance.get("notes"),
        yank_reason=yanked["reason"] if yanked else None,
        dependencies=[
            (name, dep["version"], dep.get("kind", "runtime"))
            for name, dep in sorted(document.get("dependencies", {}).items())
        ],
    )


def _sort_key(version: str) -> tuple[int, int, int, int, str]:
    major, minor, patch = _parse_triple(version)
    pre = version.partition("-")[2]
    return (major, minor, patch, 0 if pre else 1, pre)


def modify_one(root: Path, name: str) -> Path:
    """Release a new patch version of plugin `name`, as an author would; return its file.

    The new version keeps the latest version's dependencies (so the graph stays
    acyclic and satisfiable) with a new artifact, signature and a later date.
    """
    versions_dir = root / "plugins" / name / "versions"
    documents: list[dict[str, Any]] = [
        yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        for path in versions_dir.glob("*.yaml")
    ]
    if not documents:
        raise FileNotFoundError(f"{versions_dir}: no version files")
    latest = max(documents, key=lambda d: _sort_key(d["version"]))
    newest_day = max(datetime.date.fromisoformat(d["released"]) for d in documents)
    major, minor, patch = _parse_triple(latest["version"])
    existing = {d["version"] for d in documents}
    version = f"{major}.{minor}.{patch}"
    if version in existing:
        version = f"{major}.{minor}.{patch + 1}"
    rng = random.Random(f"modify {name} {version}")
    manifest = yaml.load(
        (root / "plugins" / name / "plugin.yaml").read_text(encoding="utf-8"),
        Loader=yaml.CSafeLoader,
    )
    key = owner_key(name, manifest["owners"][0]["github"])
    data = artifact_bytes(name, version)
    spec = replace(
        _spec_from_document(latest),
        version=version,
        released=(newest_day + datetime.timedelta(days=rng.randint(3, 60))).isoformat(),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        yank_reason=None,
    )
    local = "://" not in latest["artifact"]["url"]
    if local:
        (root / "plugins" / name / ARTIFACTS_DIR / artifact_file(name, version)).write_bytes(data)
    path = versions_dir / f"{version}.yaml"
    path.write_text(version_yaml(name, spec, key, local=local), encoding="utf-8")
    return path


def plugin_names(root: Path) -> list[str]:
    """Return the sorted plugin names of a generated index."""
    return sorted(p.name for p in (root / "plugins").iterdir() if p.is_dir())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("out", type=Path, help="folder to write the index into (created)")
    parser.add_argument("--plugins", type=int, default=100, help="number of plugins")
    parser.add_argument("--versions", type=int, default=10, help="versions per plugin")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--artifacts",
        choices=("remote", "local"),
        default="remote",
        help="remote https URLs, or small files in the plugin folders",
    )
    parser.add_argument(
        "--flat", action="store_true", help="exactly --versions versions per plugin (no tail)"
    )
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out}: folder exists and is not empty")
    started = time.perf_counter()
    made = generate(
        args.out,
        args.plugins,
        args.versions,
        args.seed,
        artifacts=args.artifacts,
        long_tail=not args.flat,
    )
    elapsed = time.perf_counter() - started
    print(
        f"wrote {made.plugins} plugins, {made.versions} versions ({args.artifacts} "
        f"artifacts) into {args.out} in {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
