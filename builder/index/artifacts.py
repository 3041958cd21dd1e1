"""Check remote artifacts: download each once, through the one HTTP client, and compare.

The registry's policy sets what an author's URL may be (`allowed_url_schemes`, also
the only schemes a redirect may lead to) and how long one download may take
(`download_timeout`, per connection step and for the whole body), and whether it may
lead to a non-public address (`allow_private_addresses`, off by default).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from builder.common.errors import FetchError, Problem
from builder.common.files import HashingWriter
from builder.common.http_client import HttpClient, TooLargeError
from builder.common.progress import terminal_board
from builder.format.models import Policy
from builder.index.facts import PluginFacts, VersionFacts
from builder.index.rules import problem_at

PARALLEL_DOWNLOADS = 8  # artifacts fetched at once (the client's pool holds as many)


def artifact_client(policy: Policy) -> HttpClient:
    """Return an HTTP client for authors' artifact URLs under the registry's policy."""
    return HttpClient(
        timeout=policy.download_timeout,
        deadline=policy.download_timeout,
        # A server asking to wait longer than a whole download may take: fail at once.
        max_retry_after=policy.download_timeout,
        schemes=policy.allowed_url_schemes,
        hint="check the artifact URL, or that its server is up",
        # An author names the host: never let that reach this machine or its network.
        public_only=not policy.allow_private_addresses,
        display=terminal_board(),  # a download over a second shows progress on a terminal
    )


def check_remote_artifacts(
    index: Path, plugins: Iterable[PluginFacts], policy: Policy
) -> list[Problem]:
    """Download every remote artifact and compare its sha256 and size to the manifest."""
    versions = [v for p in plugins for v in p.versions() if v.artifact.local is None]
    client = artifact_client(policy)

    def check(version: VersionFacts) -> list[Problem]:
        if version.artifact.size > policy.max_artifact_size:
            return []  # already reported by the local rules; don't download it
        return check_download(index, version, client)

    with ThreadPoolExecutor(PARALLEL_DOWNLOADS) as pool:
        return [problem for found in pool.map(check, versions) for problem in found]


def check_download(
    index: Path, version: VersionFacts, client: HttpClient, sink: BinaryIO | None = None
) -> list[Problem]:
    """Download one version's artifact (into `sink`, if given); return its problems."""
    artifact = version.artifact
    writer = HashingWriter(sink)
    # One byte past the declared size is enough to prove a mismatch.
    cap = artifact.size
    try:
        client.download(artifact.url, writer, max_size=cap)
    except TooLargeError:
        return [
            problem_at(
                index,
                version.file,
                ("artifact", "size"),
                f"does not match the downloaded file (expected the file's size, "
                f"more than {cap} bytes, got {artifact.size})",
            )
        ]
    except FetchError as e:
        return [problem_at(index, version.file, ("artifact", "url"), str(e))]
    problems = []
    if writer.size != artifact.size:
        problems.append(
            problem_at(
                index,
                version.file,
                ("artifact", "size"),
                f"does not match the downloaded file (expected {writer.size}, got {artifact.size})",
            )
        )
    if writer.hexdigest() != artifact.sha256:
        problems.append(
            problem_at(
                index,
                version.file,
                ("artifact", "sha256"),
                f"does not match the downloaded file (expected "
                f"{writer.hexdigest()}, got {artifact.sha256})",
            )
        )
    return problems
