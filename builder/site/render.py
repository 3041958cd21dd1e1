"""The Jinja environment of the site: autoescaped, strict, with the hashed assets."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from builder.format.models import RegistryConfig
from builder.site.resources import Asset

# Every page carries this policy in a <meta http-equiv>: scripts, styles and images
# from the site's own origin only, never inline; forms post only to the site.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


class _Environment(jinja2.Environment):
    """Jinja's environment, looking `a.b` up as a key first when `a` is a dict.

    Every context is made of plain dicts; Jinja's own order (attribute first) raises
    and catches an AttributeError for each of the ~500 lookups of a plugin page, a
    quarter of its rendering time. Templates never reach a dict's methods by
    attribute, so the pages come out the same.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Return `obj[attribute]` for a dict that has that key, else Jinja's lookup."""
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def make_environment(
    templates: Path, assets: Mapping[str, Asset], registry: RegistryConfig
) -> jinja2.Environment:
    """Return the environment every page and feed of one build is rendered with."""
    env = _Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )

    def asset(name: str) -> str:
        """Return the published path of an asset (relative to the root), or "" if absent."""
        found = assets.get(name)
        return found.path if found is not None else ""

    env.globals.update(
        asset=asset,
        csp=markupsafe.Markup(CSP),  # noqa: S704 - our own constant; its quotes stay readable
        registry={
            "name": registry.name,
            "title": registry.title,
            "base_url": registry.base_url,
        },
    )
    return env


def render(env: jinja2.Environment, template: str, **context: Any) -> bytes:
    """Render one template to UTF-8 bytes."""
    return env.get_template(template).render(**context).encode("utf-8")
