"""config.toml as the client reads it: every bad value names the file, the key, what was
expected and what was found (the checks live in `builder.client.config.parse_config`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.client.config import read_config
from builder.common.errors import PlugindexError


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('registy = "demo"\n', "registy: not a config key (expected keys: registry, "),
        ("timeout = 0\n", "timeout: expected seconds, more than 0 and at most 600, got 0"),
        ("timeout = 601\n", "timeout: expected seconds, more than 0 and at most 600, got 601"),
        ('timeout = "5"\n', "timeout: expected seconds, more than 0 and at most 600, got '5'"),
        ("timeout = true\n", "timeout: expected seconds, more than 0 and at most 600, got True"),
        ("registry = 3\n", "registry: expected a string, got 3"),
        ('registries = "x"\n', "registries: expected a table of names, got 'x'"),
        ("[registries]\ndemo = 1\n", "registries.demo: expected a URL, got 1"),
        ('[registries]\n"Bad Name" = "https://x/"\n', "registries: 'Bad Name': not a registry"),
        ('host_version = "1.x"\n', "host_version: expected a semantic version"),
    ],
    ids=[
        "unknown-key",
        "timeout-zero",
        "timeout-too-long",
        "timeout-text",
        "timeout-bool",
        "registry-not-text",
        "registries-not-table",
        "registry-url-not-text",
        "registry-bad-name",
        "host-version",
    ],
)
def test_a_bad_config_value_names_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(PlugindexError) as raised:
        read_config(config)
    assert str(raised.value).startswith(f"{config}: {message}")


def test_a_good_config_is_read_with_its_types(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        'registry = "demo"\ntimeout = 5\nhost_version = "1.2.0"\n'
        '[registries]\ndemo = "https://r.example/"\n',
        encoding="utf-8",
    )
    found = read_config(config)
    assert (found.registry, found.timeout, found.host_version) == ("demo", 5.0, "1.2.0")
    assert dict(found.registries) == {"demo": "https://r.example/"}
    assert read_config(tmp_path / "missing.toml").registry is None
