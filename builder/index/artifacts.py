"""Check remote artifacts: download each once, with a size cap and a timeout."""

from __future__ import annotations

import hashlib
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from builder import __version__
from builder.common.errors import FetchError, Problem
from builder.format.models import Policy
from builder.index.facts import PluginFacts, VersionFacts
from builder.index.rules import problem_at

_PARALLEL_DOWNLOADS = 8
_USER_AGENT = f"plugindex/{__version__}"


class TooLargeError(FetchError):
    """The download went past its size cap."""


@dataclass(frozen=True)
class Download:
    sha256: str
    size: int


class _NoDowngradeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to schemes the registry allows."""

    def __init__(self, schemes: tuple[str, ...]) -> None:
        self.schemes = schemes

    def redirect_request(  # noqa: PLR0917 - the base class's signature
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        if urlsplit(newurl).scheme not in self.schemes:
            raise FetchError(
                f"{req.full_url}: redirected to {newurl} (expected a "
                f"{' or '.join(self.schemes)} URL)"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_digest(
    url: str,
    *,
    max_size: int,
    timeout: float,
    schemes: tuple[str, ...] = ("https",),
    sink: BinaryIO | None = None,
) -> Download:
    """Stream `url`, hashing it (and writing it to `sink`, if given); stop with
    FetchError past `max_size` bytes or `timeout` seconds in all (not per read: a
    slow server can't stall us)."""
    # The scheme was checked against the registry's policy before we get here.
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})  # noqa: S310
    opener = urllib.request.build_opener(_NoDowngradeRedirects(schemes))
    deadline = time.monotonic() + timeout
    digest = hashlib.sha256()
    size = 0
    try:
        with opener.open(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_size:
                raise TooLargeError(
                    f"{url}: too large (expected at most {max_size} bytes, "
                    f"server announces {declared})"
                )
            while chunk := response.read(1 << 16):
                size += len(chunk)
                if size > max_size:
                    raise TooLargeError(
                        f"{url}: too large (expected at most {max_size} bytes, got more)"
                    )
                digest.update(chunk)
                if sink is not None:
                    sink.write(chunk)
                if time.monotonic() > deadline:
                    raise FetchError(f"{url}: download failed (took over {timeout:g} s)")
    except urllib.error.HTTPError as e:
        raise FetchError(f"{url}: download failed (expected HTTP 200, got {e.code})") from e
    except (urllib.error.URLError, http.client.HTTPException, ValueError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise FetchError(f"{url}: download failed ({reason})") from e
    return Download(digest.hexdigest(), size)


def check_remote_artifacts(
    index: Path, plugins: Iterable[PluginFacts], policy: Policy
) -> list[Problem]:
    """Download every remote artifact and compare its sha256 and size to the manifest."""
    versions = [v for p in plugins for v in p.versions() if v.artifact.local is None]

    def check(version: VersionFacts) -> list[Problem]:
        if version.artifact.size > policy.max_artifact_size:
            return []  # already reported by the local rules; don't download it
        return check_download(index, version, policy)

    with ThreadPoolExecutor(_PARALLEL_DOWNLOADS) as pool:
        return [problem for found in pool.map(check, versions) for problem in found]


def check_download(
    index: Path, version: VersionFacts, policy: Policy, sink: BinaryIO | None = None
) -> list[Problem]:
    """Download one version's artifact (into `sink`, if given); return its problems."""
    artifact = version.artifact
    # One byte past the declared size is enough to prove a mismatch.
    cap = artifact.size
    try:
        got = fetch_digest(
            artifact.url,
            max_size=cap,
            timeout=policy.download_timeout,
            schemes=tuple(policy.allowed_url_schemes),
            sink=sink,
        )
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
    if got.size != artifact.size:
        problems.append(
            problem_at(
                index,
                version.file,
                ("artifact", "size"),
                f"does not match the downloaded file (expected {got.size}, got {artifact.size})",
            )
        )
    if got.sha256 != artifact.sha256:
        problems.append(
            problem_at(
                index,
                version.file,
                ("artifact", "sha256"),
                f"does not match the downloaded file (expected "
                f"{got.sha256}, got {artifact.sha256})",
            )
        )
    return problems
