"""The client against a registry published to a real S3 bucket (SeaweedFS on 127.0.0.1)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from builder.client.install import Request, install
from builder.client.registry import Registry
from builder.client.repair import verify_installed
from builder.client.resolve import Options
from builder.client.signed import SignedFetcher
from builder.client.tuf_updater import open_client, trust_registry
from builder.common.fetch import HttpFetcher
from tests.conftest import PLUGINDEX
from tests.s3server import S3Server
from tests.signed_build import DEMO_ROOT, build_signed


def test_install_from_a_published_bucket_then_revalidate_only_the_timestamp(
    index: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    out = tmp_path / "out"
    build_signed(index, out)
    published = subprocess.run(
        [*PLUGINDEX, "publish", str(out), f"s3://{s3_bucket}/registry", "--init"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert published.returncode == 0, published.stderr
    url = f"{s3_server.endpoint}/{s3_bucket}/registry/"
    cache, data = tmp_path / "cache", tmp_path / "data"

    cold = HttpFetcher(url, cache)
    client = trust_registry(cold, data, "s3", str(DEMO_ROOT), cache)
    outcome = install(
        Registry(SignedFetcher(client)),
        tmp_path / "plugins",
        [Request("auth-jwt")],
        options=Options(),
        cache_dir=cache,
    )
    assert [(c.name, c.new) for c in outcome.changes] == [
        ("auth-jwt", "1.2.0"),
        ("template-crypto", "1.1.1"),
    ]
    # The next-root probe, timestamp, snapshot, targets, a bin per file (at most), then
    # config, two documents and two artifacts, each once.
    bins = sorted((data / "tuf" / "s3" / "metadata").glob("bins-*.json"))
    assert 1 <= len(bins) <= 5
    assert cold.stats.requests == 4 + len(bins) + 5
    assert verify_installed(tmp_path / "plugins")[:2] == (4, [])

    warm = HttpFetcher(url, cache)
    again = tmp_path / "again"
    registry = Registry(SignedFetcher(open_client(warm, data, "s3", cache)))
    install(registry, again, [Request("auth-jwt")], options=Options(), cache_dir=cache)
    # One 404 (no newer root) and one 304 (the timestamp): documents by hash from the
    # cache, artifacts from the verified cache.
    assert (warm.stats.requests, warm.stats.conditional, warm.stats.not_modified) == (2, 1, 1)
