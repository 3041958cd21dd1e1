"""Generate a large, valid, deterministic synthetic index for benchmarking the build.

    python benchmarks/generate_index.py OUT --plugins 10000 --versions 10 --seed 0

The index has the real layout (`registry.yaml`, `plugins/<name>/plugin.yaml`,
`plugins/<name>/versions/<version>.yaml`) and realistic field sizes. Artifacts are
remote https URLs with random hashes (the build never downloads them).

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
    return f'"{text}"' if _NEEDS_NO_ESCAPE.fullmatch(text) else json.dumps(text)


def registry_yaml() -> str:
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
    lines += ["policy:", "  allowed_url_schemes: [https]", ""]
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


def release_entry(name: str, spec: VersionSpec) -> dict[str, Any]:
    """Return the published shape of a version (`builder.format.shapes.version_entry`)."""
    filename = f"{name}-{spec.version}.tar.gz"
    compliance: dict[str, Any] = {"risk_level": spec.risk_level}
    if spec.risk_notes is not None:
        compliance["notes"] = spec.risk_notes
    return {
        "version": spec.version,
        "released": spec.released,
        "artifact": {
            "url": f"https://downloads.example.org/{name}/{filename}",
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


def version_yaml(name: str, spec: VersionSpec, key: Ed25519PrivateKey) -> str:
    """Return the text of a versions/<version>.yaml, signed with `key`."""
    entry = release_entry(name, spec)
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


def _version_spec(rng: random.Random, version: str, released: datetime.date) -> VersionSpec:
    risk = rng.choice(_RISK_LEVELS)
    return VersionSpec(
        version=version,
        released=released.isoformat(),
        sha256=rng.randbytes(32).hex(),
        size=rng.randint(8_000, 20_000_000),
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
    day = _START + datetime.timedelta(days=rng.randint(0, _SPAN_DAYS))
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
        day += datetime.timedelta(days=rng.randint(3, 90))
        spec = _version_spec(rng, version, day)
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


def generate(root: Path, plugins: int, versions: int, seed: int = 0) -> None:
    """Write a synthetic index of `plugins` plugins with `versions` versions each into root."""
    if plugins < 1 or versions < 1:
        raise ValueError("expected at least one plugin and one version")
    rng = random.Random(seed)
    specs = [_plugin(rng, name) for name in _names(rng, plugins)]
    for spec in specs:
        _versions(rng, spec, versions)
    for i in range(len(specs)):
        _dependencies(rng, specs, i)
    root.mkdir(parents=True, exist_ok=True)
    (root / "registry.yaml").write_text(registry_yaml(), encoding="utf-8")
    for spec in specs:
        write_plugin(root, spec)


def write_plugin(root: Path, plugin: PluginSpec) -> None:
    """Write a plugin's folder (plugin.yaml and every version file)."""
    folder = root / "plugins" / plugin.name
    (folder / "versions").mkdir(parents=True, exist_ok=True)
    (folder / "plugin.yaml").write_text(plugin_yaml(plugin), encoding="utf-8")
    key = owner_key(plugin.name, plugin.owners[0])
    for version in plugin.versions:
        (folder / "versions" / f"{version.version}.yaml").write_text(
            version_yaml(plugin.name, version, key), encoding="utf-8"
        )


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
    spec = replace(
        _spec_from_document(latest),
        version=version,
        released=(newest_day + datetime.timedelta(days=rng.randint(3, 60))).isoformat(),
        sha256=rng.randbytes(32).hex(),
        size=rng.randint(8_000, 20_000_000),
        yank_reason=None,
    )
    path = versions_dir / f"{version}.yaml"
    path.write_text(version_yaml(name, spec, key), encoding="utf-8")
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
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out}: folder exists and is not empty")
    started = time.perf_counter()
    generate(args.out, args.plugins, args.versions, args.seed)
    elapsed = time.perf_counter() - started
    print(
        f"wrote {args.plugins} plugins x {args.versions} versions into {args.out} "
        f"in {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
