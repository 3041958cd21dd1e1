"""New plugin names: refused when they equal, resemble or squat on a name the registry holds.

PX130 a name that is an existing one after normalisation (case, `_`, `.`); PX131 one
that can be mistaken for an existing name (see `builder.format.names.resembled_name`);
PX132 one that holds a reserved word (`policy.reserved_names`) as one of its words
(`official-jwt`). The maintainers can approve a name in registry.yaml
(`policy.approved_similar_names`); each refusal says which line to add.
"""

from __future__ import annotations

from builder.format.models import Policy
from builder.format.names import resembled_name, reserved_word_in
from builder.format.paths import PLUGINS_DIR
from builder.gate.context import PluginContext


def check_new_name(context: PluginContext) -> None:
    """Refuse a new plugin whose name collides with, resembles or squats on a known one."""
    policy = context.registry.policy
    name = context.name
    if name in policy.approved_similar_names:
        return
    existing = context.git.list_dirs(context.base, context.repo_path(PLUGINS_DIR))
    found = resembled_name(name, existing)
    if found is not None:
        if found.same_after_normalising:
            context.add(
                context.manifest_rel,
                ("name",),
                f"{name!r} is the existing plugin {found.other!r}: {found.how}; choose "
                f"another name",
                "PX130",
            )
            return
        context.add(
            context.manifest_rel,
            ("name",),
            f"{name!r} resembles the existing plugin {found.other!r}: {found.how}. "
            f"{approval(policy, name)}",
            "PX131",
        )
        return
    word = reserved_word_in(name, policy.reserved_names)
    if word is not None:
        context.add(
            context.manifest_rel,
            ("name",),
            f"{name!r} contains the reserved word {word!r} (policy.reserved_names), so "
            f"users may take it for the registry's own. {approval(policy, name)}",
            "PX132",
        )


def approval(policy: Policy, name: str) -> str:
    """Say how a maintainer approves `name`: the exact registry.yaml line to write."""
    names = [*policy.approved_similar_names, name]
    line = f"  approved_similar_names: [{', '.join(names)}]"
    verb = "changing that line to" if policy.approved_similar_names else "adding, under `policy:`,"
    return (
        f"If it is a different project, ask a maintainer to approve the name in a pull "
        f"request to registry.yaml, {verb} `{line}`; then run this check again"
    )
