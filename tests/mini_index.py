"""A tiny index written from scratch, with artifacts served from a URL of the test's."""

from __future__ import annotations

import hashlib
from pathlib import Path

REGISTRY = """\
format: 1
name: mini
title: Mini registry
base_url: http://127.0.0.1:8000/
categories:
  - slug: tools
    title: Tools
    description: Small tools.
policy:
  allowed_url_schemes: [https, http]
  allow_local_artifacts: true
  allow_private_addresses: true
  download_timeout: 10
"""

PLUGIN = """\
name: {name}
display_name: {name}
description: The {name} plugin.
authors:
  - name: Ada
license: MIT
categories: [tools]
owners:
  - github: jan-kowalski
    keys:
      - ed25519:AhJMiU20/mbq/1PEVFuGac0mEGKxcqBMgGFIXf2qlPQ=
"""

VERSION = """\
version: {version}
released: 2024-01-{day:02d}
artifact:
  url: {url}
  sha256: {sha256}
  size: {size}
  filename: {filename}
compatibility:
  host: ">=1.0"
  plugin_api: "^1.0"
engine: python
compliance:
  risk_level: low
"""


def artifact_bytes(name: str, version: str) -> bytes:
    """Return the (fake) artifact of a release: distinct bytes per name and version."""
    return f"artifact of {name} {version}\n".encode() * 20


def write_index(root: Path) -> Path:
    """Write an empty index (registry.yaml, plugins/) at `root`; return it."""
    (root / "plugins").mkdir(parents=True, exist_ok=True)
    (root / "registry.yaml").write_text(REGISTRY, encoding="utf-8")
    return root


def add_release(
    index: Path, name: str, version: str, url: str, *, data: bytes | None = None, day: int = 1
) -> bytes:
    """Add `name` `version` whose artifact is at `url`; return the artifact's declared bytes.

    A `url` without a scheme stores the artifact in the plugin folder (a local one).
    """
    folder = index / "plugins" / name
    (folder / "versions").mkdir(parents=True, exist_ok=True)
    (folder / "plugin.yaml").write_text(PLUGIN.format(name=name), encoding="utf-8")
    content = artifact_bytes(name, version) if data is None else data
    filename = f"{name}-{version}.tar.gz"
    if "://" not in url:
        (folder / url).parent.mkdir(parents=True, exist_ok=True)
        (folder / url).write_bytes(content)
    (folder / "versions" / f"{version}.yaml").write_text(
        VERSION.format(
            version=version,
            day=day,
            url=url,
            sha256=hashlib.sha256(content).hexdigest(),
            size=len(content),
            filename=filename,
        ),
        encoding="utf-8",
    )
    _sign(folder / "versions" / f"{version}.yaml")
    return content


def _sign(version_file: Path) -> None:
    """Sign a release with the demo key of the owner above, where releases are signed."""
    try:
        from builder.authoring.sign import sign_file
        from tests.conftest import demo_key
    except ImportError:  # a tree without author signatures: unsigned releases are valid
        return
    sign_file(version_file, demo_key("jan-kowalski"))
