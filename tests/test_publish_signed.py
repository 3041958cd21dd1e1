"""`plugindex publish` never swaps a signed registry for an unsigned build by accident.

A build without TUF metadata over a registry that serves some is refused before
any write, the message naming the target, what it holds and what the build lacks;
`--allow-unsigned` publishes it anyway. Against a folder and a real SeaweedFS.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from builder.cli.main import cli
from builder.common import layout
from builder.index.build import build
from builder.publish.folder import LocalStorage
from builder.publish.publish import PublishOptions, publish
from builder.publish.record import RECORD, PublishError, record_of
from tests.s3server import S3Server
from tests.signed_build import build_signed
from tests.test_publish import PREFIX, bucket_keys, store_of


def folder_files(folder: Path) -> dict[str, str]:
    """Return every file under `folder` (the record too) with its sha256."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def signed_then_unsigned(index: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Return a signed build and a newer unsigned one of the same index."""
    signed, unsigned = tmp_path / "signed", tmp_path / "unsigned"
    now = int(time.time())
    build_signed(index, signed, now=now - 120)
    build(index, unsigned, environ={"SOURCE_DATE_EPOCH": str(now)})
    assert (signed / layout.TIMESTAMP).is_file()
    assert not (unsigned / layout.METADATA).exists()
    return signed, unsigned


def test_an_unsigned_build_over_a_signed_folder_is_refused_before_any_write(
    index: Path, tmp_path: Path
) -> None:
    """The live record lists the timestamp: refused, exit 3, the folder unchanged."""
    signed, unsigned = signed_then_unsigned(index, tmp_path)
    site = tmp_path / "site"
    assert CliRunner().invoke(cli, ["publish", str(signed), str(site)]).exit_code == 0
    before = folder_files(site)
    result = CliRunner().invoke(cli, ["publish", str(unsigned), str(site)])
    assert result.exit_code == 3, result.output
    assert f"error: {site}" in result.output
    assert f"a signed registry (its live record lists {layout.TIMESTAMP})" in result.output
    assert f"but {unsigned} is unsigned (expected {unsigned / layout.TIMESTAMP}" in result.output
    assert "--allow-unsigned" in result.output and "Traceback" not in result.output
    assert folder_files(site) == before
    dry = CliRunner().invoke(cli, ["publish", str(unsigned), str(site), "--dry-run"])
    assert dry.exit_code == 3 and "is unsigned" in dry.output


def test_allow_unsigned_publishes_the_unsigned_build(index: Path, tmp_path: Path) -> None:
    """The deliberate override: the unsigned build goes live, the metadata is retired."""
    signed, unsigned = signed_then_unsigned(index, tmp_path)
    site = tmp_path / "site"
    publish(signed, LocalStorage(site))
    report = publish(unsigned, LocalStorage(site), PublishOptions(allow_unsigned=True))
    assert (site / layout.STATUS).read_bytes() == (unsigned / layout.STATUS).read_bytes()
    assert layout.TIMESTAMP in report.retired
    result = CliRunner().invoke(cli, ["publish", str(unsigned), str(site), "--allow-unsigned"])
    assert result.exit_code == 0, result.output


def test_a_signed_store_without_a_record_is_found_by_its_timestamp(
    index: Path, tmp_path: Path
) -> None:
    """No live record (lost, or published by other means): the store's timestamp decides."""
    signed, unsigned = signed_then_unsigned(index, tmp_path)
    site = tmp_path / "site"
    publish(signed, LocalStorage(site))
    shutil.rmtree(site / RECORD.split("/")[0])
    with pytest.raises(PublishError, match=rf"{layout.TIMESTAMP} exists\), but .* is unsigned"):
        publish(unsigned, LocalStorage(site))
    assert not (site / RECORD).exists()


def test_an_unsigned_build_over_an_unsigned_registry_is_published(
    index: Path, tmp_path: Path
) -> None:
    """Nothing signed live: the check lets the publish through (one HEAD, no refusal)."""
    _, unsigned = signed_then_unsigned(index, tmp_path)
    site = tmp_path / "site"
    first = publish(unsigned, LocalStorage(site))
    assert first.uploaded


def test_an_unsigned_build_over_a_signed_bucket_is_refused_before_any_write(
    index: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    """SeaweedFS: refused, exit 3, naming the bucket; nothing in it changed; override works."""
    signed, unsigned = signed_then_unsigned(index, tmp_path)
    target = f"s3://{s3_bucket}/{PREFIX}"
    publish(signed, store_of(s3_bucket))
    before, record_before = bucket_keys(s3_server, s3_bucket), record_of(store_of(s3_bucket))
    result = CliRunner().invoke(cli, ["publish", str(unsigned), target])
    assert result.exit_code == 3, result.output
    assert f"error: {target}/: a signed registry" in result.output
    assert "is unsigned" in result.output and "--allow-unsigned" in result.output
    assert bucket_keys(s3_server, s3_bucket) == before
    assert record_of(store_of(s3_bucket)) == record_before
    report = publish(unsigned, store_of(s3_bucket), PublishOptions(allow_unsigned=True))
    assert layout.STATUS in report.uploaded
