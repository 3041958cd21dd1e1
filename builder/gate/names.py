"""New plugin names: refused when they equal or resemble a name already in the base.

PX130 a name that is an existing one after normalisation (case, `_`, `.`); PX131 one
that can be mistaken for an existing name (see `builder.format.names.resembled_name`),
unless the maintainers approved it in registry.yaml (`policy.approved_similar_names`).
"""

from __future__ import annotations

from builder.format.load import PLUGINS_DIR
from builder.format.names import resembled_name
from builder.gate.context import PluginContext


def check_new_name(context: PluginContext) -> None:
    """Refuse a new plugin whose name collides with, or resembles, an existing one."""
    if context.name in context.registry.policy.approved_similar_names:
        return
    existing = context.git.list_dirs(context.base, context.repo_path(PLUGINS_DIR))
    found = resembled_name(context.name, existing)
    if found is None:
        return
    context.add(
        context.manifest_rel,
        ("name",),
        f"{context.name!r} resembles the existing plugin {found.other!r}: {found.how}",
        "PX130" if found.same_after_normalising else "PX131",
    )
