"""The client against a registry published to a real S3 bucket (SeaweedFS on 127.0.0.1)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from builder.client.install import Request, install
from builder.client.registry import Registry
from builder.client.repair import verify_installed
from builder.client.resolve import Options
from builder.common.fetch import HttpFetcher
from builder.index.build import build
from tests.conftest import PLUGINDEX
from tests.s3server import S3Server


def test_install_from_a_published_bucket_then_revalidate_with_etags(
    index: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    out = tmp_path / "out"
    build(index, out)
    published = subprocess.run(
        [*PLUGINDEX, "publish", str(out), f"s3://{s3_bucket}/registry", "--init"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert published.returncode == 0, published.stderr
    url = f"{s3_server.endpoint}/{s3_bucket}/registry/"
    cache = tmp_path / "cache"

    cold = HttpFetcher(url, cache)
    outcome = install(
        Registry(cold),
        tmp_path / "plugins",
        [Request("auth-jwt")],
        options=Options(),
        cache_dir=cache,
    )
    assert [(c.name, c.new) for c in outcome.changes] == [
        ("auth-jwt", "1.2.0"),
        ("template-crypto", "1.1.1"),
    ]
    assert cold.stats.requests == 5  # config, two documents, two artifacts
    assert verify_installed(tmp_path / "plugins")[:2] == (4, [])

    warm = HttpFetcher(url, cache)
    again = tmp_path / "again"
    install(Registry(warm), again, [Request("auth-jwt")], options=Options(), cache_dir=cache)
    # Documents revalidated (304, no body), artifacts from the verified cache.
    assert (warm.stats.requests, warm.stats.conditional, warm.stats.not_modified) == (3, 3, 3)
