"""Authors' remote artifacts checked by download (validate, build): each problem in full.

An index written from scratch (`tests/mini_index.py`) whose artifacts a scripted server
on 127.0.0.1 serves; the registry's policy allows private addresses, so it may.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.common.errors import Problem
from builder.common.progress import TransferBoard
from builder.format.models import Policy
from builder.index.analyse import analyse
from builder.index.artifacts import artifact_client, check_download, check_remote_artifacts
from builder.index.facts import VersionFacts
from tests import mini_index
from tests.test_mut_http import Script, reply, scripted

BODY = b"the artifact\n" * 100


@pytest.fixture
def server() -> Iterator[Script]:
    with scripted() as script:
        yield script


def _index(root: Path, server: Script, served: bytes, *, policy: str = "") -> Path:
    """Write an index with one remote release declaring BODY; `server` serves `served`."""
    index = mini_index.write_index(root / "index")
    if policy:
        registry = index / "registry.yaml"
        registry.write_text(registry.read_text(encoding="utf-8") + policy, encoding="utf-8")
    mini_index.add_release(index, "remote-one", "1.0.0", server.url("/a.tar.gz"), data=BODY)
    server.answers["/a.tar.gz"] = [reply(200, served)]
    return index


def _line(index: Path, pattern: str) -> int:
    text = (index / "plugins/remote-one/versions/1.0.0.yaml").read_text(encoding="utf-8")
    return next(n for n, line in enumerate(text.splitlines(), 1) if re.search(pattern, line))


def _check(index: Path) -> list[Problem]:
    analysis = analyse(index)
    assert analysis.registry is not None
    return check_remote_artifacts(index, analysis.facts.values(), analysis.registry.policy)


def _rendered(problems: list[Problem]) -> list[str]:
    return [p.render() for p in problems]


def test_a_matching_artifact_has_no_problem(tmp_path: Path, server: Script) -> None:
    index = _index(tmp_path, server, BODY)
    assert _check(index) == []
    assert [path for path, _ in server.seen] == ["/a.tar.gz"]


def test_a_smaller_artifact_names_both_sizes(tmp_path: Path, server: Script) -> None:
    index = _index(tmp_path, server, BODY[:-1])
    file = index / "plugins/remote-one/versions/1.0.0.yaml"
    assert _rendered(_check(index)) == [
        f"{file}:{_line(index, r'^  size:')}: artifact.size: does not match the downloaded "
        f"file (expected {len(BODY) - 1}, got {len(BODY)})",
        f"{file}:{_line(index, r'^  sha256:')}: artifact.sha256: does not match the "
        f"downloaded file (expected {_sha256(BODY[:-1])}, got {_sha256(BODY)})",
    ]


def test_a_larger_artifact_is_cut_at_its_declared_size(tmp_path: Path, server: Script) -> None:
    index = _index(tmp_path, server, BODY + b"x")
    file = index / "plugins/remote-one/versions/1.0.0.yaml"
    assert _rendered(_check(index)) == [
        f"{file}:{_line(index, r'^  size:')}: artifact.size: does not match the downloaded "
        f"file (expected the file's size, more than {len(BODY)} bytes, got {len(BODY)})"
    ]


def test_other_bytes_of_the_same_size_name_both_digests(tmp_path: Path, server: Script) -> None:
    other = bytes(len(BODY))
    index = _index(tmp_path, server, other)
    file = index / "plugins/remote-one/versions/1.0.0.yaml"
    assert _rendered(_check(index)) == [
        f"{file}:{_line(index, r'^  sha256:')}: artifact.sha256: does not match the "
        f"downloaded file (expected {_sha256(other)}, got {_sha256(BODY)})"
    ]


def test_an_unserved_artifact_names_the_url_line(tmp_path: Path, server: Script) -> None:
    index = _index(tmp_path, server, BODY)
    server.answers["/a.tar.gz"] = [reply(404)]
    file = index / "plugins/remote-one/versions/1.0.0.yaml"
    assert _rendered(_check(index)) == [
        f"{file}:{_line(index, r'^  url:')}: artifact.url: {server.url('/a.tar.gz')}: "
        "download failed (expected HTTP 200, got 404)"
    ]


def test_an_artifact_over_the_policy_limit_is_not_downloaded(
    tmp_path: Path, server: Script
) -> None:
    index = _index(tmp_path, server, BODY, policy=f"  max_artifact_size: {len(BODY) - 1}\n")
    assert _check(index) == []  # the local rules report it; no download
    assert server.seen == []
    limit = _index(tmp_path / "exact", server, BODY, policy=f"  max_artifact_size: {len(BODY)}\n")
    assert _check(limit) == []
    assert len(server.seen) == 1


def test_the_policy_shapes_the_client(tmp_path: Path, server: Script) -> None:
    index = _index(tmp_path, server, BODY)
    policy = _policy(index)
    client = artifact_client(policy)
    assert client.read_timeout == client.deadline == policy.download_timeout == 10
    assert client.max_retry_after == 10
    assert client.schemes == frozenset(policy.allowed_url_schemes)
    assert client.hint == "check the artifact URL, or that its server is up"
    assert client.display is None  # the tests' stderr is no terminal
    strict = policy.model_copy(update={"allow_private_addresses": False})
    refused = check_download(index, _only_version(index), artifact_client(strict))
    assert len(refused) == 1
    assert "refusing to connect to 127.0.0.1, a loopback address" in refused[0].message
    assert len(server.seen) == 0


def test_a_download_can_fill_a_sink_and_show_progress(tmp_path: Path, server: Script) -> None:
    index = _index(tmp_path, server, BODY)
    policy = _policy(index)
    client = artifact_client(policy)
    client.display = TransferBoard(io.StringIO()).transfer
    sink = io.BytesIO()
    assert check_download(index, _only_version(index), client, sink) == []
    assert sink.getvalue() == BODY


def _policy(index: Path) -> Policy:
    registry = analyse(index).registry
    assert registry is not None
    return registry.policy


def _only_version(index: Path) -> VersionFacts:
    analysis = analyse(index)
    return next(v for p in analysis.facts.values() for v in p.versions())


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_a_redirect_leaves_only_for_a_scheme_the_policy_allows(
    tmp_path: Path, server: Script
) -> None:
    """A registry that allows only http artifact URLs follows no redirect to https."""
    index = _index(tmp_path, server, BODY)
    registry = index / "registry.yaml"
    text = registry.read_text(encoding="utf-8")
    registry.write_text(text.replace("[https, http]", "[http]"), encoding="utf-8")
    target = server.base.replace("http:", "https:") + "/b.tar.gz"
    server.answers["/a.tar.gz"] = [reply(302, headers={"Location": target})]
    file = index / "plugins/remote-one/versions/1.0.0.yaml"
    assert _rendered(_check(index)) == [
        f"{file}:{_line(index, r'^  url:')}: artifact.url: {server.url('/a.tar.gz')}: "
        f"too many or unsafe redirects (last to {target})"
    ]
