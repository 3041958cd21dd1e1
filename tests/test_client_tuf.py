"""The user commands trust a registry through its TUF root: how it is given, and refusals.

Against signed builds served on 127.0.0.1 (`tests/signed_build.py`): the root from
`--root FILE`, `--root SHA256`, `PLUGINDEX_ROOT` or `plugindex registry add`; a
registry with no root, or no metadata at all, is refused unless `--insecure-no-tuf`,
which says so on every run; the search index comes through the signed targets too.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from builder.cli.main import cli
from builder.client.config import add_registry, read_config
from builder.common import layout
from builder.common.errors import PlugindexError
from builder.index.build import build
from builder.search.stage import SearchStage
from tests.fault_server import Recorder, serve_recorded
from tests.signed_build import DEMO_ROOT, build_signed

INSECURE = "warning: --insecure-no-tuf: "


@dataclass
class User:
    """One user's folders (config, data, cache, plugins), running commands in-process."""

    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PLUGINDEX_REGISTRY": "",
            "PLUGINDEX_ROOT": "",
            "PLUGINDEX_PLUGINS_DIR": str(self.home / "plugins"),
            "PLUGINDEX_CACHE_DIR": str(self.home / "cache"),
            "PLUGINDEX_CONFIG_DIR": str(self.home / "config"),
            "PLUGINDEX_DATA_DIR": str(self.home / "data"),
            **extra,
        }

    def run(self, *args: str, **env: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=self.env(**env), catch_exceptions=False)

    def installed(self) -> dict[str, str]:
        path = self.home / "plugins" / "plugindex.lock"
        plugins = json.loads(path.read_bytes())["plugins"] if path.exists() else {}
        return {name: p["version"] for name, p in plugins.items()}


@pytest.fixture
def user(tmp_path: Path) -> User:
    return User(tmp_path / "home")


@pytest.fixture
def signed(index: Path, tmp_path: Path) -> Iterator[tuple[str, Recorder]]:
    out = tmp_path / "out"
    build_signed(index, out, stages=[SearchStage()])
    with serve_recorded(out) as found:
        yield found


@pytest.fixture
def unsigned(index: Path, tmp_path: Path) -> Iterator[tuple[str, Recorder]]:
    """The same registry built without its signing stage: no metadata/ at all."""
    out = tmp_path / "unsigned"
    build(index, out)
    with serve_recorded(out) as found:
        yield found


# --- how the root is given ---------------------------------------------------------------


def test_install_with_a_root_file_then_without_it(user: User, signed: tuple[str, Recorder]) -> None:
    """--root pins the root on first use: later runs against that URL need no --root."""
    url, _ = signed
    first = user.run("install", "auth-jwt", "--registry", url, "--root", str(DEMO_ROOT))
    assert first.exit_code == 0, first.output
    assert user.installed() == {"auth-jwt": "1.2.0", "template-crypto": "1.1.1"}
    again = user.run("info", "auth-jwt", "--registry", url)
    assert again.exit_code == 0, again.output
    assert again.stderr == ""


def test_no_root_for_a_registry_is_refused_before_any_request(
    user: User, signed: tuple[str, Recorder]
) -> None:
    url, recorder = signed
    result = user.run("install", "auth-jwt", "--registry", url)
    assert result.exit_code == 5
    assert result.stderr == (
        f"error: {url}: no trusted root for this registry (expected --root FILE_OR_SHA256, "
        "$PLUGINDEX_ROOT, or a registry added with `plugindex registry add NAME URL --root "
        "FILE_OR_SHA256`; --insecure-no-tuf reads it unverified)\n"
    )
    assert recorder.hits == []
    assert user.installed() == {}


def test_a_root_by_sha256_pins_the_first_root_the_registry_serves(
    user: User, signed: tuple[str, Recorder]
) -> None:
    url, recorder = signed
    good = hashlib.sha256(DEMO_ROOT.read_bytes()).hexdigest()
    wrong = user.run("info", "auth-jwt", "--registry", url, "--root", "0" * 64)
    assert wrong.exit_code == 5
    assert f"{url}metadata/1.root.json: not the pinned root (expected sha256 {'0' * 64}" in (
        wrong.stderr
    )
    result = user.run("install", "auth-jwt", "--registry", url, PLUGINDEX_ROOT=good)
    assert result.exit_code == 0, result.output
    assert "/metadata/1.root.json" in recorder.paths()


def test_registry_add_writes_config_toml_and_names_the_registry(
    user: User, signed: tuple[str, Recorder]
) -> None:
    """`registry add NAME URL --root`: then `--registry NAME`, the default, or the URL itself."""
    url, _ = signed
    added = user.run("registry", "add", "demo", url, "--root", str(DEMO_ROOT))
    assert added.exit_code == 0, added.output
    config = user.home / "config" / "config.toml"
    assert added.stdout.splitlines() == [
        f"trusting {url} as demo (root pinned in {user.home / 'data' / 'tuf' / 'demo'})",
        f"{config}: registries.demo (the default registry)",
    ]
    assert read_config(config).registries == {"demo": url}
    assert read_config(config).registry == "demo"
    by_default = user.run("install", "template-crypto")
    assert by_default.exit_code == 0, by_default.output
    by_name = user.run("info", "auth-jwt", "--registry", "demo")
    assert by_name.exit_code == 0, by_name.output
    by_url = user.run("info", "auth-jwt", PLUGINDEX_REGISTRY=url)  # the pin of `demo`
    assert by_url.exit_code == 0, by_url.output
    assert [p.name for p in (user.home / "data" / "tuf").iterdir()] == ["demo"]


# --- refusals and --insecure-no-tuf -------------------------------------------------------


def test_a_registry_without_tuf_metadata_is_refused(
    user: User, unsigned: tuple[str, Recorder]
) -> None:
    url, _ = unsigned
    result = user.run("install", "auth-jwt", "--registry", url, "--root", str(DEMO_ROOT))
    assert result.exit_code == 5
    assert result.stderr.startswith(f"error: {url}: serves no TUF metadata (")
    assert result.stderr.endswith(
        "refusing an unsigned registry (use --insecure-no-tuf to read it unverified)\n"
    )
    assert user.installed() == {}


def test_insecure_no_tuf_reads_an_unsigned_registry_and_says_so_on_every_run(
    user: User, unsigned: tuple[str, Recorder]
) -> None:
    url, _ = unsigned
    warning = (
        f"{INSECURE}{url} is read without checking its signed metadata (TUF): a stale, "
        "rolled-back or mixed registry goes unnoticed; only author signatures are checked\n"
    )
    for args in (["install", "auth-jwt"], ["info", "auth-jwt"], ["install", "auth-jwt"]):
        result = user.run(*args, "--registry", url, "--insecure-no-tuf")
        assert result.exit_code == 0, result.output
        assert result.stderr == warning, args
    by_env = user.run("info", "auth-jwt", "--registry", url, PLUGINDEX_INSECURE_NO_TUF="1")
    assert by_env.stderr == warning
    as_json = user.run("info", "auth-jwt", "--json", "--registry", url, "--insecure-no-tuf")
    assert json.loads(as_json.stdout)["name"] == "auth-jwt" and as_json.stderr == warning
    assert user.installed() == {"auth-jwt": "1.2.0", "template-crypto": "1.1.1"}


def test_an_expired_registry_is_refused_naming_the_role_and_date(
    user: User, index: Path, tmp_path: Path
) -> None:
    """A freeze: a build signed three days ago, its one-day timestamp long expired."""
    settings = index / "registry.yaml"
    text = settings.read_text(encoding="utf-8")
    settings.write_text(text.replace("timestamp: 366}", "timestamp: 1}"), encoding="utf-8")
    out = tmp_path / "old"
    then = int(time.time()) - 3 * 86400
    build_signed(index, out, now=then)
    with serve_recorded(out) as (url, _):
        result = user.run("install", "auth-jwt", "--registry", url, "--root", str(DEMO_ROOT))
    assert result.exit_code == 5
    expired = time.strftime("%Y-%m-%d %H:%M", time.gmtime(then + 86400))
    assert f"the registry's timestamp metadata expired on {expired} UTC" in result.stderr
    assert user.installed() == {}


def test_a_registry_signed_with_other_keys_is_refused(
    user: User, signed: tuple[str, Recorder], tmp_path: Path
) -> None:
    """A root the registry's metadata does not chain from: refused, nothing installed."""
    from builder.tuf.admin import init_registry
    from tests.mini_index import write_index

    other = write_index(tmp_path / "other-index")
    init_registry(other, tmp_path / "other-keys", bins=4)
    url, _ = signed
    result = user.run(
        "install", "auth-jwt", "--registry", url, "--root", str(other / "tuf" / "1.root.json")
    )
    assert result.exit_code == 5
    assert "metadata not signed by enough of the registry's keys" in result.stderr
    assert user.installed() == {}


# --- search through the signed targets ------------------------------------------------------


def test_search_syncs_its_index_through_the_signed_targets(
    user: User, signed: tuple[str, Recorder], tmp_path: Path
) -> None:
    url, recorder = signed
    out = tmp_path / "out"
    result = user.run("search", "jwt", "--registry", url, "--root", str(DEMO_ROOT))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("auth-jwt 1.2.0")
    manifest = (out / "search/whoosh/manifest.json").read_bytes()
    served = "/" + layout.consistent_path(
        "search/whoosh/manifest.json", hashlib.sha256(manifest).hexdigest()
    )
    assert served in recorder.paths() and "/search/whoosh/manifest.json" not in recorder.paths()


def test_a_search_manifest_the_registry_did_not_sign_is_refused(
    user: User, signed: tuple[str, Recorder], tmp_path: Path
) -> None:
    url, _ = signed
    out = tmp_path / "out"
    manifest = out / "search/whoosh/manifest.json"
    copy = out / layout.consistent_path(
        "search/whoosh/manifest.json", hashlib.sha256(manifest.read_bytes()).hexdigest()
    )
    doc = json.loads(copy.read_bytes())
    doc["plugins"] += 1
    copy.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    result = user.run("search", "jwt", "--registry", url, "--root", str(DEMO_ROOT))
    assert result.exit_code == 5
    assert "does not match what the registry signed for search/whoosh/manifest.json" in (
        result.stderr
    )


# --- config.toml: named registries ----------------------------------------------------------


def test_add_registry_keeps_comments_and_other_keys(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '# mine\nregistry = "https://other.example/"  # keep\nhost_version = "1.0.0"\n\n'
        '[registries]\nold = "https://old.example/"\n',
        encoding="utf-8",
    )
    assert add_registry(config, "demo", "http://127.0.0.1:8000/") is False
    assert add_registry(config, "old", "https://new.example/") is False
    text = config.read_text(encoding="utf-8")
    assert text.startswith('# mine\nregistry = "https://other.example/"  # keep\n')
    assert read_config(config).registries == {
        "old": "https://new.example/",
        "demo": "http://127.0.0.1:8000/",
    }


def test_add_registry_to_a_new_config_makes_it_the_default(tmp_path: Path) -> None:
    config = tmp_path / "config" / "config.toml"
    assert add_registry(config, "demo", 'http://x.example/"quoted"') is True
    found = read_config(config)
    assert (found.registry, found.registries) == ("demo", {"demo": 'http://x.example/"quoted"'})


def test_add_registry_refuses_to_break_a_config_it_cannot_follow(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    original = 'registries.old = "https://old.example/"\n'
    config.write_text(original, encoding="utf-8")
    with pytest.raises(PlugindexError, match=r"add `demo = \"https://d.example/\"` under"):
        add_registry(config, "demo", "https://d.example/")
    assert config.read_text(encoding="utf-8") == original


def test_a_bad_registry_name_in_config_toml_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[registries]\n"Bad Name" = "https://x.example/"\n', encoding="utf-8")
    with pytest.raises(
        PlugindexError, match=r"config\.toml: registries: Value error|not a registry name"
    ):
        read_config(config)


# --- the README's first command, then an install ----------------------------------------------


def test_the_demo_registry_installs_through_the_root_that_ships_with_the_repository(
    tmp_path: Path,
) -> None:
    """build registry-index, publish to a folder, serve it, `install --root registry-index/…`.

    The timestamp is re-signed after publishing (`registry refresh-timestamp`, with the
    demo's online keys): a build takes its time from the last commit, and a timestamp
    expires a day after it.
    """
    import os
    import subprocess

    from tests.conftest import PLUGINDEX, ROOT

    env = {**os.environ, **User(tmp_path / "home").env(PLUGINDEX_ROOT="")}
    build_dir, site = tmp_path / "_build", tmp_path / "_site"
    for args in (
        ["build", "registry-index", "--out", str(build_dir)],
        ["publish", str(build_dir), str(site)],
        ["registry", "refresh-timestamp", str(site), "--index", "registry-index"],
    ):
        done = subprocess.run(
            [*PLUGINDEX, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, (args, done.stderr)
    with serve_recorded(site) as (url, _):
        done = subprocess.run(
            [*PLUGINDEX, "install", "auth-jwt", "--root", "registry-index/tuf/1.root.json"],
            cwd=ROOT,
            env={**env, "PLUGINDEX_REGISTRY": url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "installed auth-jwt 1.2.0\ninstalled template-crypto 1.1.1\n"
