"""Find the site's templates and static assets, in a checkout or in an installed wheel.

A checkout keeps them at the top level (`templates/`, `site/`); a wheel installs them
as data files under `<prefix>/share/plugindex/`, found through the distribution's
file list, so `pip install plugindex` (not only `-e`) can build a site.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from builder.common.errors import BuildError

DISTRIBUTION = "plugindex"
SHARE = "share/plugindex"
_CHECKOUT = Path(__file__).resolve().parents[2]

# The assets every page may load, by their name in site/; anything else there is ignored.
ASSETS = ("style.css", "copy.js", "icon.svg", "search.js")
STATIC = "static"  # published folder of the content-hashed assets (cached for a year)


def _installed(folder: str) -> Path | None:
    """Return where the installed distribution put `share/plugindex/<folder>`, if it did."""
    try:
        files = importlib.metadata.files(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    marker = f"{SHARE}/{folder}/"
    for file in files:
        posix = file.as_posix()
        if marker in posix:
            located = Path(str(file.locate())).resolve()
            depth = posix[posix.index(marker) + len(marker) :].count("/") + 1
            return located.parents[depth - 1]
    return None


def resource_dir(folder: str) -> Path:
    """Return the folder holding the site's `templates` or `site` files.

    A source checkout (the one this module was imported from) wins over an installed
    copy, so templates edited in the work tree take effect at once.
    """
    checkout = _CHECKOUT / folder
    if (_CHECKOUT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    installed = _installed(folder)
    if installed is not None and installed.is_dir():
        return installed
    raise BuildError(
        f"{checkout}: the site's {folder}/ folder was not found (expected it beside "
        f"builder/ in a checkout, or under {SHARE}/ of the installed plugindex); "
        f"reinstall plugindex"
    )


@dataclass(frozen=True)
class Asset:
    """A static file of the site, published under a name that holds its hash."""

    name: str  # as in site/, e.g. style.css
    path: str  # published path, e.g. static/style.0123456789abcdef.css
    content: bytes
    sha256: str


def load_assets(site_dir: Path) -> dict[str, Asset]:
    """Return the site's static assets that exist, by name."""
    assets: dict[str, Asset] = {}
    for name in ASSETS:
        source = site_dir / name
        if not source.is_file():
            continue
        content = source.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        stem, _, suffix = name.rpartition(".")
        assets[name] = Asset(name, f"{STATIC}/{stem}.{digest[:16]}.{suffix}", content, digest)
    return assets
