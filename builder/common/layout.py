"""The published layout: where every document of a build lives, relative to its root.

Clients and the builder both import these paths; docs/format.md describes them.
"""

from __future__ import annotations

CONFIG = "config.json"
NAMES = "names.json"
CATEGORIES = "categories.json"
STATUS = "status.json"
PAGE_SIZE = 100  # plugins per listing page

# Content types of everything a build writes; anything else is served as bytes.
CONTENT_TYPES = {
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".xml": "application/xml",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".zip": "application/zip",
    ".wasm": "application/wasm",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
}

# URL templates published in config.json, relative to the registry root.
INDEX_TEMPLATE = "index/{prefix}/{name}.json"
ARTIFACT_TEMPLATE = "artifacts/{sha256}/{filename}"
PAGE_TEMPLATES = {
    "name": "api/plugins/page-{page}.json",
    "recent": "api/plugins/recent/page-{page}.json",
}


def prefix_of(name: str) -> str:
    """Return Cargo's sparse-index prefix for a name: `1`, `2`, `3/a` or `ab/cd`."""
    if len(name) <= 2:
        return str(len(name))
    if len(name) == 3:
        return f"3/{name[0]}"
    return f"{name[0:2]}/{name[2:4]}"


def index_path(name: str) -> str:
    """Return the path of a plugin's sparse-index document."""
    # The template, spelt out: called for every plugin and artifact of every build, an
    # f-string is four times faster than `str.format` (tests hold the two equal).
    return f"index/{prefix_of(name)}/{name}.json"


def artifact_path(sha256: str, filename: str) -> str:
    """Return the content-addressed path of an artifact."""
    return f"artifacts/{sha256}/{filename}"  # ARTIFACT_TEMPLATE, as in `index_path`


def page_path(order: str, page: int) -> str:
    """Return the path of listing page `page` (1-based) in `order`."""
    return PAGE_TEMPLATES[order].format(page=page)


# The registry's signed (TUF) metadata: `N.root.json`, `timestamp.json`, and the
# versioned `N.<role>.json` of the other roles (see docs/tuf.md).
METADATA = "metadata/"
TIMESTAMP = METADATA + "timestamp.json"
# TUF roles in the order they are written: delegated bins, targets, snapshot, root;
# the timestamp, which names the snapshot, last of all.
_METADATA_RANKS = {"bins": 4, "targets": 5, "snapshot": 6, "root": 7}


def consistent_path(path: str, sha256: str) -> str:
    """Return where a TUF target is served: `dir/<sha256>.<file>`, or its own path if hashed."""
    if sha256 in path:  # content-addressed already (artifacts, search files)
        return path
    folder, slash, name = path.rpartition("/")
    return f"{folder}{slash}{sha256}.{name}"


# Write order: what a document points at is in place before the document is.
# Lower ranks are written first; the small top-level pointers go last.
def write_rank(path: str) -> int:
    """Return the rank of a path in the safe write order."""
    if path.startswith("artifacts/"):
        return 0
    if path.startswith("index/"):
        return 1
    if path in (CONFIG, STATUS):
        return 3
    if path.startswith(METADATA):
        if path == TIMESTAMP:
            return 8
        role = path.removesuffix(".json").rpartition(".")[2].partition("-")[0]
        return _METADATA_RANKS.get(role, 4)
    return 2


def content_type(path: str) -> str:
    """Return the content type a store serves a published file with."""
    suffix = path.rsplit("/", 1)[-1].rpartition(".")[2]
    return CONTENT_TYPES.get(f".{suffix}", "application/octet-stream")


# --- how a store serves the build -------------------------------------------------

IMMUTABLE = "public, max-age=31536000, immutable"  # content-addressed: never changes
MUTABLE = "public, max-age=60"  # documents, pages and pointers: revalidated within a minute
NOT_FOUND_PAGE = "404.html"  # served with status 404 for any path the build lacks
# Folders whose files are named by their content (a new content is a new name).
_IMMUTABLE_FOLDERS = ("artifacts/", "static/")

# What every HTML page is allowed to do, sent as headers where the store can
# (`plugindex serve`; a CDN in front of a bucket) and as <meta> in every page: no
# inline script, nothing from another origin but https images in READMEs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def cache_control(path: str) -> str:
    """Return the Cache-Control a published file is served with."""
    if path.startswith(_IMMUTABLE_FOLDERS):
        return IMMUTABLE
    # Search files are content-addressed too; only their manifests change in place.
    if path.startswith("search/") and not path.endswith("manifest.json"):
        return IMMUTABLE
    return MUTABLE
