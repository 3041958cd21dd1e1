"""Render what authors write into HTML that cannot be turned against a reader.

READMEs go through a CommonMark parser with raw HTML off (an author's tags show as
text), a pass over the tokens that decides every link and image, and then an
allow-list sanitiser, so nothing an author writes reaches the page as markup.
Invisible and direction-changing characters are shown as visible escapes everywhere
(Trojan Source), never interpreted.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

# Characters a reader cannot see or that reorder what they see: C0/C1 controls (but
# tab and newlines), bidi embeddings, overrides, isolates and marks, zero-width and
# other format characters, and noncharacters (which HTML also calls parse errors).
_HIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufdd0-\ufdef\ufeff\ufff9-\ufffb"
    "\ufffe\uffff]"
)

README_LIMIT = 1 << 20  # bytes of Markdown rendered; a larger README is linked, not shown
IMAGE_LIMIT = 2 << 20  # bytes per image copied from the plugin's folder
IMAGE_COUNT = 50  # images copied per README at most
# Raster images only: an SVG opened directly is a same-origin document that may run script.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif")
_SAFE_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")
EXTERNAL_REL = "nofollow ugc noopener"

_TAGS = {
    "a", "b", "blockquote", "br", "code", "del", "em", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
_SCHEMES = {"http", "https", "mailto"}


def shown(text: str) -> str:
    """Return `text` with every hidden or reordering character written as [U+XXXX]."""
    if not _HIDDEN.search(text):
        return text
    return _HIDDEN.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


@dataclass
class Readme:
    """A rendered README and the files of the plugin's folder it publishes."""

    html: str  # sanitised; "" when there is nothing to show
    too_large: bool = False
    # Index-relative source path -> path inside the plugin's published folder.
    files: dict[str, str] = field(default_factory=dict)


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


_MD = _markdown()


def _local(readme_dir: str, target: str) -> str | None:
    """Return a relative link's path inside the plugin folder, or None if it leaves it."""
    path = unquote(urlsplit(target).path)
    if not path or path.startswith("/"):
        return None
    joined = posixpath.normpath(posixpath.join(readme_dir, path))
    if joined.startswith("../") or joined == ".." or not _SAFE_PATH.fullmatch(joined):
        return None
    return joined


def _is_external(target: str) -> bool:
    parts = urlsplit(target)
    return bool(parts.scheme or parts.netloc)


def _text(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


class _Links:
    """Decide every link and image of one README."""

    def __init__(self, folder: Path, readme: str) -> None:
        self.folder = folder
        self.readme = readme
        self.readme_dir = posixpath.dirname(readme)
        self.files: dict[str, str] = {}

    def image(self, src: str) -> str | None:
        """Return the published path of a local image, or None to drop it."""
        path = _local(self.readme_dir, src)
        if path is None or not path.lower().endswith(IMAGE_SUFFIXES):
            return None
        if path in self.files.values():
            return path
        source = self.folder / path
        if len(self.files) >= IMAGE_COUNT or not source.is_file() or source.is_symlink():
            return None
        if source.stat().st_size > IMAGE_LIMIT:
            return None
        self.files[path] = path
        return path

    def link(self, href: str) -> str | None:
        """Return where a link points on the page, or None to keep only its text."""
        if href.startswith("#"):
            return href
        if _is_external(href):
            parts = urlsplit(href)
            if not parts.scheme:  # //host/path: protocol-relative, made explicit
                return "https:" + href
            return href if parts.scheme.lower() in _SCHEMES else None
        path = _local(self.readme_dir, href)
        if path is None:
            return None
        if path == self.readme or path in self.files.values():
            return path
        if path.lower().endswith(IMAGE_SUFFIXES) and self.image(href) is not None:
            return path
        return None

    def rewrite(self, children: list[Token]) -> list[Token]:
        """Return an inline token stream with every link and image decided."""
        result: list[Token] = []
        dropped = 0  # open links whose tags were dropped (their text stays)
        for token in children:
            if token.type == "image":
                result.extend(self._image(token))
            elif token.type == "link_open":
                href = self.link(str(token.attrs.get("href", "")))
                if href is None:
                    dropped += 1
                    token.meta["dropped"] = True
                    result.append(token)
                    continue
                token.attrs["href"] = href
                result.append(token)
            else:
                result.append(token)
        if dropped:
            result = _drop_links(result)
        return result

    def _image(self, token: Token) -> list[Token]:
        src = str(token.attrs.get("src", ""))
        alt = "".join(c.content for c in token.children or []) or "image"
        if _is_external(src):
            href = self.link(src)
            if href is None or not href.lower().startswith(("http:", "https:")):
                return [_text(alt)]
            # A remote image is a request to another site for every reader: a link instead.
            opened = Token("link_open", "a", 1)
            opened.attrs = {"href": href}
            closed = Token("link_close", "a", -1)
            return [opened, _text(f"image: {alt}"), closed]
        path = self.image(src)
        if path is None:
            return [_text(alt)]
        token.attrs["src"] = path
        return [token]


def _drop_links(tokens: list[Token]) -> list[Token]:
    """Remove the open and close tags of dropped links (links do not nest)."""
    result: list[Token] = []
    skipping = False
    for token in tokens:
        if token.type == "link_open" and token.meta.get("dropped"):
            skipping = True
            continue
        if token.type == "link_close" and skipping:
            skipping = False
            continue
        result.append(token)
    return result


def render_markdown(text: str, folder: Path, readme: str) -> Readme:
    """Render README `text` of the plugin in `folder`; `readme` is its path there."""
    links = _Links(folder, readme)
    tokens = _MD.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            # The page has its h1 and a README h2 section: the README's headings go below.
            token.tag = f"h{min(6, int(token.tag[1]) + 2)}"
        elif token.type == "inline" and token.children:
            token.children = links.rewrite(token.children)
    html = _MD.renderer.render(tokens, _MD.options, {})
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        link_rel=EXTERNAL_REL,
        strip_comments=True,
        set_tag_attribute_values={"img": {"loading": "lazy"}},
    )
    return Readme(shown(clean), files=dict(links.files))


def load_readme(folder: Path, readme: str | None) -> tuple[Readme, dict[str, tuple[str, int]]]:
    """Render the README of the plugin in `folder` (source), if it names one.

    Returns the README and every file it publishes (README included), as path inside
    the plugin's published folder -> (sha256, size).
    """
    if not readme:
        return Readme(""), {}
    path = _local("", readme)
    source = folder / path if path else None
    if path is None or source is None or not source.is_file():
        return Readme(""), {}
    raw = source.read_bytes()
    published = {path: (hashlib.sha256(raw).hexdigest(), len(raw))}
    if len(raw) > README_LIMIT:
        return Readme("", too_large=True), published
    rendered = render_markdown(raw.decode("utf-8", "replace"), folder, path)
    for image in rendered.files.values():
        data = (folder / image).read_bytes()
        published[image] = (hashlib.sha256(data).hexdigest(), len(data))
    return rendered, published
