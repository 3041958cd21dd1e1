"""Against the published registry (`validate --base REF --published URL`): PX115.

Git history can be rewritten; what the registry has served cannot be taken back. So a
name it has published is never given to a new plugin, and every version it serves
must still be here with the same artifact URL, sha256 and size.
"""

from __future__ import annotations

import json
from typing import Any

from builder.common import layout
from builder.common.errors import FetchError
from builder.common.fetch import Fetcher, NotFoundError
from builder.format.models import VersionManifest
from builder.format.requirements import parse_version
from builder.gate.context import GateError, PluginContext
from builder.gate.immutability import ARTIFACT_IDENTITY


def check_published(context: PluginContext, fetcher: Fetcher, *, new_plugin: bool) -> None:
    """Compare the plugin with its document in the published registry, if it has one."""
    versions = _published_artifacts(context, fetcher)
    if versions is None:
        return  # never published: git is the only record
    if new_plugin:
        context.add(
            context.manifest_rel,
            ("name",),
            f"{context.name} is not in the base, but the registry has published it "
            f"({len(versions)} versions); a name is never given to someone else",
            "PX115",
        )
        return
    for version, artifact in sorted(versions.items()):
        _check_published_version(context, version, artifact)


def _published_artifacts(
    context: PluginContext, fetcher: Fetcher
) -> dict[str, dict[str, Any]] | None:
    """Return the published artifact of each version, or None if never published."""
    path = layout.index_path(context.name)
    try:
        document = json.loads(fetcher.document(path))
        versions = {v["version"]: v["artifact"] for v in document["versions"]}
        for version in versions:
            # A version becomes a file name below: only a real version may.
            if not isinstance(version, str) or "/" in version:
                raise ValueError(f"not a version: {str(version)[:80]!r}")
            parse_version(version)
    except NotFoundError:
        return None
    except (FetchError, ValueError, KeyError, TypeError) as e:
        raise GateError(f"{fetcher.url_of(path)}: cannot read the published document ({e})") from e
    return versions


def _check_published_version(
    context: PluginContext, version: str, artifact: dict[str, Any]
) -> None:
    """Check that a published version is still here, with the same artifact."""
    rel = f"{context.versions_prefix}{version}.yaml"
    current = context.current_model(VersionManifest, rel)
    if current is None:
        if not (context.index / rel).is_file():
            context.add(
                context.manifest_rel,
                (),
                f"version {version} is published but {rel} is missing",
                "PX115",
            )
        return
    for key in ARTIFACT_IDENTITY:
        mine = getattr(current.artifact, key)
        if mine != artifact.get(key):
            context.add(
                rel,
                ("artifact", key),
                f"differs from the published version (published "
                f"{artifact.get(key)!r}, here {mine!r})",
                "PX115",
            )
