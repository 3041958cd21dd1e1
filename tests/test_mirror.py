"""Remote artifacts are mirrored into the build once, verified, under their content address."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from builder.cli.main import cli
from builder.common import layout
from builder.common.errors import BuildError
from builder.index.build import build
from builder.publish.folder import LocalStorage
from builder.publish.record import record_of
from tests.fault_server import dripping, serve_recorded, status
from tests.mini_index import add_release, write_index
from tests.test_build import snapshot


@dataclass
class ArtifactServer:
    """A folder served on 127.0.0.1 that records every path requested."""

    root: Path
    url: str
    requests: list[str] = field(default_factory=list)


class _RecordingHandler(http.server.SimpleHTTPRequestHandler):
    record: list[str]

    def do_GET(self) -> None:
        self.record.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def artifact_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArtifactServer]:
    """Serve tmp/www on 127.0.0.1 and count the requests."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    root = tmp_path / "www"
    root.mkdir()
    record: list[str] = []
    handler = type("Handler", (_RecordingHandler,), {"record": record})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield ArtifactServer(root, f"http://127.0.0.1:{server.server_port}/", record)
    finally:
        server.shutdown()
        server.server_close()


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def remote_index(tmp_path: Path, server: ArtifactServer) -> Path:
    """An index with one remote and one repository-local artifact."""
    index = write_index(tmp_path / "index")
    data = add_release(index, "tool-remote", "1.0.0", f"{server.url}tool-remote-1.0.0.tar.gz")
    (server.root / "tool-remote-1.0.0.tar.gz").write_bytes(data)
    add_release(index, "tool-local", "1.0.0", "artifacts/tool-local-1.0.0.tar.gz")
    return index


def test_remote_artifact_is_mirrored_and_documents_point_at_the_copy(
    tmp_path: Path, artifact_server: ArtifactServer, serve_dir: Any
) -> None:
    index = remote_index(tmp_path, artifact_server)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(index), "--out", str(out)])
    assert result.exit_code == 0, result.output
    document = read_json(out / layout.index_path("tool-remote"))
    artifact = document["versions"][0]["artifact"]
    data = (artifact_server.root / "tool-remote-1.0.0.tar.gz").read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    assert artifact["download"] == f"artifacts/{sha256}/tool-remote-1.0.0.tar.gz"
    assert artifact["url"] == f"{artifact_server.url}tool-remote-1.0.0.tar.gz"
    assert read_json(out / "status.json")["artifacts"] == 2
    # A served build installs as it is: the download URL gives the verified bytes.
    base = serve_dir(out)
    with urllib.request.urlopen(base + artifact["download"]) as response:
        assert response.read() == data
    assert not (out / ".plugindex" / "downloads").exists()


def test_a_mirrored_artifact_is_never_fetched_again(
    tmp_path: Path, artifact_server: ArtifactServer
) -> None:
    index = remote_index(tmp_path, artifact_server)
    out = tmp_path / "out"
    build(index, out)
    assert artifact_server.requests == ["/tool-remote-1.0.0.tar.gz"]
    # The author's server goes away; rebuilds (even with the cache lost) still work.
    (artifact_server.root / "tool-remote-1.0.0.tar.gz").unlink()
    add_release(index, "tool-local", "1.1.0", "artifacts/tool-local-1.1.0.tar.gz", day=2)
    build(index, out)
    (out / ".plugindex" / "cache.bin").unlink()
    build(index, out)
    assert artifact_server.requests == ["/tool-remote-1.0.0.tar.gz"]


def test_a_tampered_remote_artifact_is_held_back_and_the_rest_built(
    tmp_path: Path, artifact_server: ArtifactServer
) -> None:
    index = remote_index(tmp_path, artifact_server)
    out = tmp_path / "out"
    build(index, out)
    before = snapshot(out)
    good = add_release(index, "tool-remote", "1.1.0", f"{artifact_server.url}new.tar.gz", day=2)
    served = good[::-1]  # same size, other bytes
    (artifact_server.root / "new.tar.gz").write_bytes(served)
    add_release(index, "tool-local", "1.1.0", "artifacts/tool-local-1.1.0.tar.gz", day=2)
    result = CliRunner().invoke(cli, ["build", str(index), "--out", str(out)])
    assert result.exit_code == 0, result.output
    version_file = index / "plugins" / "tool-remote" / "versions" / "1.1.0.yaml"
    assert f"{version_file}:" in result.stderr
    assert "artifact.sha256: does not match the downloaded file" in result.stderr
    assert f"expected {hashlib.sha256(served).hexdigest()}" in result.stderr
    assert "[held back: tool-remote, version left out]" in result.stderr
    assert "Traceback" not in result.output
    # The tampered version is left out; the other plugin's new version is built.
    remote = out / layout.index_path("tool-remote")
    assert remote.read_bytes() == before[layout.index_path("tool-remote")]
    assert read_json(out / "names.json")["plugins"]["tool-local"] == "1.1.0"
    held = read_json(out / "status.json")["held_back"]
    assert [(h["plugin"], h["outcome"], h["file"]) for h in held] == [
        ("tool-remote", "version left out", "plugins/tool-remote/versions/1.1.0.yaml")
    ]
    assert not list((out / ".plugindex" / "downloads").glob("*"))


def test_strict_refuses_a_tampered_remote_artifact_and_keeps_the_output(
    tmp_path: Path, artifact_server: ArtifactServer
) -> None:
    index = remote_index(tmp_path, artifact_server)
    out = tmp_path / "out"
    build(index, out)
    before = snapshot(out)
    good = add_release(index, "tool-remote", "1.1.0", f"{artifact_server.url}new.tar.gz", day=2)
    (artifact_server.root / "new.tar.gz").write_bytes(good[::-1])
    result = CliRunner().invoke(cli, ["build", str(index), "--out", str(out), "--strict"])
    assert result.exit_code == 1, result.output
    assert "artifact.sha256: does not match the downloaded file" in result.output
    assert snapshot(out) == before
    assert not list((out / ".plugindex" / "downloads").glob("*"))


def test_an_unreachable_artifact_names_its_url(
    tmp_path: Path, artifact_server: ArtifactServer
) -> None:
    index = remote_index(tmp_path, artifact_server)
    (artifact_server.root / "tool-remote-1.0.0.tar.gz").unlink()
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(index), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{artifact_server.url}tool-remote-1.0.0.tar.gz: download failed" in result.stderr
    assert "404" in result.stderr
    # Never published before, its only version failing: the plugin is left out.
    assert "[held back: tool-remote, left out]" in result.stderr
    assert sorted(read_json(out / "names.json")["plugins"]) == ["tool-local"]
    strict = CliRunner().invoke(cli, ["build", str(index), "--out", str(out), "--strict"])
    assert strict.exit_code == 1, strict.output
    assert "download failed (expected HTTP 200, got 404)" in strict.output


def test_no_fetch_builds_without_downloading(
    tmp_path: Path, artifact_server: ArtifactServer
) -> None:
    index = remote_index(tmp_path, artifact_server)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(index), "--out", str(out), "--no-fetch"])
    assert result.exit_code == 0, result.output
    assert artifact_server.requests == []
    assert read_json(out / "status.json")["artifacts"] == 1


def test_a_fresh_runner_neither_fetches_nor_uploads_what_the_registry_holds(
    tmp_path: Path, artifact_server: ArtifactServer
) -> None:
    """`build --live TARGET` leaves out remote artifacts the registry already has."""
    index = remote_index(tmp_path, artifact_server)
    site = tmp_path / "site"
    runner = CliRunner()
    first = tmp_path / "runner-1"
    assert runner.invoke(cli, ["build", str(index), "--out", str(first)]).exit_code == 0
    assert runner.invoke(cli, ["publish", str(first), str(site)]).exit_code == 0
    assert artifact_server.requests == ["/tool-remote-1.0.0.tar.gz"]
    remote_key = read_json(first / layout.index_path("tool-remote"))["versions"][0]["artifact"][
        "download"
    ]

    # A new release of the local plugin, built on a fresh runner against the live site.
    add_release(index, "tool-local", "1.1.0", "artifacts/tool-local-1.1.0.tar.gz", day=2)
    second = tmp_path / "runner-2"
    built = runner.invoke(cli, ["build", str(index), "--out", str(second), "--live", str(site)])
    assert built.exit_code == 0, built.output
    assert f"1 remote artifacts are already live in {site} and were left out" in built.output
    assert artifact_server.requests == ["/tool-remote-1.0.0.tar.gz"]  # not fetched again
    assert not (second / remote_key).exists()
    live_before = _live_objects(site)
    published = runner.invoke(cli, ["publish", str(second), str(site)])
    assert published.exit_code == 0, published.output
    assert (site / remote_key).is_file()
    record = _live_objects(site)
    # Still referenced, so never retired (superseded search files may be).
    assert {k for k in live_before if k.startswith("artifacts/")} <= set(record)
    assert remote_key in record
    new_local = read_json(second / layout.index_path("tool-local"))["versions"][-1]["artifact"]
    assert (site / new_local["download"]).is_file()

    # The same build cannot go to a registry that does not hold what it left out.
    elsewhere = runner.invoke(cli, ["publish", str(second), str(tmp_path / "other")])
    assert elsewhere.exit_code != 0
    assert f"does not hold {remote_key}" in elsewhere.output
    assert not (tmp_path / "other" / "config.json").exists()


def _live_objects(site: Path) -> dict[str, Any]:
    """Return the objects the live record of a published folder lists."""
    record = record_of(LocalStorage(site))
    assert record is not None
    return dict(record.objects)


def _set_download_timeout(index: Path, seconds: int) -> None:
    registry = index / "registry.yaml"
    text = registry.read_text(encoding="utf-8")
    registry.write_text(text.replace("download_timeout: 10", f"download_timeout: {seconds}"))


@pytest.mark.timeout(30)
def test_a_slow_artifact_is_stopped_at_the_registry_download_timeout(tmp_path: Path) -> None:
    """`policy.download_timeout` caps a whole download, even one that keeps dripping."""
    www = tmp_path / "www"
    www.mkdir()
    with serve_recorded(www) as (url, recorder):
        index = write_index(tmp_path / "index")
        _set_download_timeout(index, 1)
        data = add_release(index, "tool-remote", "1.0.0", f"{url}slow.tar.gz")
        recorder.faults["/slow.tar.gz"] = [dripping(data, 0.1)]
        started = time.monotonic()
        result = CliRunner().invoke(cli, ["build", str(index), "--out", str(tmp_path / "out")])
        elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output  # held back, not failed
    assert "artifact.url: " in result.stderr
    assert f"{url}slow.tar.gz: too slow (not complete after 1 s)" in result.stderr
    assert elapsed < 5, elapsed  # far less than the 0.1 s per byte the server asks


@pytest.mark.timeout(30)
def test_a_passing_server_error_is_retried(tmp_path: Path) -> None:
    """Artifact downloads follow the fetcher's policy: a 502 is retried, then succeeds."""
    www = tmp_path / "www"
    www.mkdir()
    with serve_recorded(www) as (url, recorder):
        index = write_index(tmp_path / "index")
        data = add_release(index, "tool-remote", "1.0.0", f"{url}flaky.tar.gz")
        (www / "flaky.tar.gz").write_bytes(data)
        recorder.faults["/flaky.tar.gz"] = [status(502)]
        result = CliRunner().invoke(cli, ["build", str(index), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert [(h.path, h.status) for h in recorder.hits] == [
        ("/flaky.tar.gz", 502),
        ("/flaky.tar.gz", 200),
    ]


@pytest.mark.timeout(30)
def test_an_artifact_redirected_to_a_scheme_the_registry_refuses_is_refused(
    tmp_path: Path,
) -> None:
    """Redirects lead only to the schemes registry.yaml allows (here http alone)."""
    www = tmp_path / "www"
    www.mkdir()
    with serve_recorded(www) as (url, recorder):
        index = write_index(tmp_path / "index")
        registry = index / "registry.yaml"
        text = registry.read_text(encoding="utf-8")
        registry.write_text(text.replace("[https, http]", "[http]"), encoding="utf-8")
        add_release(index, "tool-remote", "1.0.0", f"{url}moved.tar.gz")
        target = "https://127.0.0.1:9/moved.tar.gz"
        recorder.faults["/moved.tar.gz"] = [status(302, {"Location": target})]
        result = CliRunner().invoke(cli, ["build", str(index), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output  # held back, not failed
    assert f"{url}moved.tar.gz: too many or unsafe redirects (last to {target})" in result.stderr
    assert "[held back: tool-remote, left out]" in result.stderr


# --- artifact URLs lead only to public addresses ------------------------------------------


def _forbid_private(index: Path) -> None:
    registry = index / "registry.yaml"
    text = registry.read_text(encoding="utf-8")
    registry.write_text(text.replace("  allow_private_addresses: true\n", ""), encoding="utf-8")


def test_the_mirror_refuses_a_private_address_unless_the_registry_allows_it(
    tmp_path: Path, artifact_server: ArtifactServer
) -> None:
    index = remote_index(tmp_path, artifact_server)
    _forbid_private(index)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(index), "--out", str(out)])
    assert result.exit_code == 0, result.output
    url = f"{artifact_server.url}tool-remote-1.0.0.tar.gz"
    assert f"{url}: refusing to connect to 127.0.0.1, a loopback address" in result.stderr
    assert artifact_server.requests == []  # refused before connecting
    assert sorted(read_json(out / "names.json")["plugins"]) == ["tool-local"]
    # The switch the tests and a demo on this machine use.
    registry = index / "registry.yaml"
    registry.write_text(
        registry.read_text(encoding="utf-8") + "  allow_private_addresses: true\n",
        encoding="utf-8",
    )
    assert CliRunner().invoke(cli, ["build", str(index), "--out", str(out)]).exit_code == 0
    assert sorted(read_json(out / "names.json")["plugins"]) == ["tool-local", "tool-remote"]


def test_every_redirect_is_checked_for_a_public_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first hop passes; the redirect to another (private) address is refused."""
    from builder.common import address_guard, http_client

    real = address_guard.non_public_reason
    monkeypatch.setattr(
        address_guard,
        "non_public_reason",
        lambda address: None if address == "127.0.0.1" else real(address),
    )
    www = tmp_path / "www"
    www.mkdir()
    with serve_recorded(www) as (url, recorder):
        target = "http://127.0.0.2:9/inside.tar.gz"
        recorder.faults["/moved.tar.gz"] = [status(302, {"Location": target})]
        client = http_client.HttpClient(public_only=True, attempts=1)
        with pytest.raises(http_client.NonPublicAddressError) as refused:
            client.download(f"{url}moved.tar.gz", io.BytesIO(), max_size=1000)
    assert [h.path for h in recorder.hits] == ["/moved.tar.gz"]
    assert str(refused.value) == (
        f"{target}: refusing to connect to 127.0.0.2, a loopback address (expected a public "
        f"host; a registry serving artifacts from its own network sets "
        f"policy.allow_private_addresses: true)"
    )


def test_a_name_resolving_to_any_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every address a name resolves to is checked, not only the first."""
    from builder.common import http_client

    def resolve(host: str, port: int, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    client = http_client.HttpClient(public_only=True, attempts=1)
    with pytest.raises(http_client.NonPublicAddressError, match=r"\(10\.1\.2\.3\), a private"):
        client.download("https://mixed.example/a.tar.gz", io.BytesIO(), max_size=1000)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fd00::1", "unique-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("100.64.0.1", "non-global"),
        ("93.184.216.34", None),
        ("2606:2800:220:1::1", None),
    ],
)
def test_addresses_are_classified(address: str, reason: str | None) -> None:
    from builder.common.http_client import non_public_reason

    assert non_public_reason(address) == reason


def test_an_artifact_downloaded_by_a_build_that_stopped_is_not_fetched_again(
    tmp_path: Path, artifact_server: ArtifactServer
) -> None:
    """The download folder outlives a failed build; the next build takes its files."""
    index = remote_index(tmp_path, artifact_server)
    out = tmp_path / "out"
    build(index, out)
    name = "tool-remote-1.1.0.tar.gz"
    data = add_release(index, "tool-remote", "1.1.0", f"{artifact_server.url}{name}", day=2)
    (artifact_server.root / name).write_bytes(data)

    def stop() -> None:
        raise OSError(28, "No space left on device", str(out))

    with pytest.raises(BuildError):
        build(index, out, before_commit=stop)
    assert list((out / ".plugindex" / "downloads").glob("*"))
    fetched = ["/tool-remote-1.0.0.tar.gz", f"/{name}"]
    assert artifact_server.requests == fetched
    build(index, out)
    assert artifact_server.requests == fetched  # taken from the download folder
    assert not (out / ".plugindex" / "downloads").exists()
    build(index, tmp_path / "clean")
    assert snapshot(out) == snapshot(tmp_path / "clean")
