"""The gate's rules with stable ids: what each one refuses and how to fix it.

Every problem the gate reports carries one of these ids; docs/rules.md lists them with
the same one-line fixes (a test holds the two together). Where each rule is checked:
ownership.py (PX101-PX108), immutability.py (PX110-PX114, PX117), published.py (PX115),
yanks.py (PX120-PX122), names.py (PX130-PX132), pull_request.py (PX116, PX140-PX142);
PX010 is the build's own signature check (builder.index.signatures). The build checks
PX122 and PX131 again on the whole merged index (builder.index.holdback).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """One rule: its id, what it refuses, and the fix to suggest."""

    id: str
    title: str
    fix: str


# Stable ids: never renumber; docs/rules.md lists them with the same one-line fixes.
RULES = {
    rule.id: rule
    for rule in (
        Rule(
            "PX010",
            "a signature does not verify against the plugin's owner keys",
            "sign the file again with an owner's key: `plugindex sign FILE --key KEY`",
        ),
        Rule(
            "PX101",
            "signed with a key that is not an active key of an owner in the base plugin.yaml",
            "sign with your own key as listed in the base plugin.yaml, or have an owner sign",
        ),
        Rule(
            "PX102",
            "the pull request's author is not an owner of the plugin",
            "ask an owner to open the PR, or to add you as an owner first (a signed change)",
        ),
        Rule(
            "PX103",
            "a signature does not verify over this file's statement",
            "the file changed after signing, or the signature was copied: sign it again",
        ),
        Rule(
            "PX104",
            "a statement that must be signed is not",
            "sign it: `plugindex sign FILE --key KEY` (add `--yank` for a yank or un-yank)",
        ),
        Rule(
            "PX105",
            "plugin.yaml changed without raising `revision` by exactly one",
            "set `revision:` to the base's revision plus one, then sign plugin.yaml again",
        ),
        Rule(
            "PX106",
            "a key is retired without the versions it may still vouch for",
            "write `- {key: ed25519:…, versions: [...]}` under `retired_keys`, or run "
            "`plugindex key retire NAME --old-key KEY --key KEY_FILE`",
        ),
        Rule(
            "PX107",
            "a retired key is bound to a version none of whose statements it signed",
            "list only the versions that key signed before it was retired",
        ),
        Rule(
            "PX108",
            "a revoked key is no longer listed under `revoked_keys`",
            "keep it under `revoked_keys` for good; use a new key instead",
        ),
        Rule(
            "PX110",
            "a merged version file changed outside its `yanked:`/`unyanked:` section",
            "publish a new version instead; a merged version never changes",
        ),
        Rule(
            "PX111",
            "a merged version's artifact URL, sha256 or size changed",
            "publish a new version with the new artifact; the old one stays as it was",
        ),
        Rule(
            "PX112",
            "a merged version file was deleted",
            "restore the file; to withdraw a version, yank it (owner-signed `yanked:`)",
        ),
        Rule(
            "PX113",
            "a plugin's plugin.yaml or whole folder was deleted",
            "restore it; plugins are withdrawn by yanking their versions",
        ),
        Rule(
            "PX114",
            "a version number that was used before is used again",
            "pick a new version number; published numbers are never re-used",
        ),
        Rule(
            "PX115",
            "a plugin or version differs from what the registry has published",
            "the published registry is the record: restore the published version "
            "file, or pick another name",
        ),
        Rule(
            "PX116",
            "a new version's `released:` date is in the future",
            "set `released:` to the day you publish (YYYY-MM-DD), then sign the file again",
        ),
        Rule(
            "PX117",
            "a merged signature was replaced although no revoked key made it",
            "restore the merged signature; only what a revoked key signed is signed again "
            "(`plugindex resign FILE --key KEY`)",
        ),
        Rule(
            "PX120",
            "a yank or un-yank does not raise `serial` above the base's",
            "set `serial:` to one more than the last yank or un-yank, then sign with --yank",
        ),
        Rule(
            "PX121",
            "a yank was taken back without a signed `unyanked:` section",
            "replace `yanked:` by `unyanked: {serial: N}` and sign it with --yank",
        ),
        Rule(
            "PX122",
            "a yank leaves another plugin's version with no version of this one it accepts",
            "release a fixed version that those requirements accept, then yank",
        ),
        Rule(
            "PX130",
            "a new plugin's name is an existing name after normalisation",
            "choose another name; case, `_` and `.` do not make a name different",
        ),
        Rule(
            "PX131",
            "a new plugin's name can be mistaken for an existing one",
            "choose a clearly different name, or ask maintainers to approve it in "
            "registry.yaml (policy.approved_similar_names); the message gives the exact line",
        ),
        Rule(
            "PX132",
            "a new plugin's name contains a reserved word as one of its words",
            "choose a name without it, or ask maintainers to approve it in registry.yaml "
            "(policy.approved_similar_names); the message gives the exact line",
        ),
        Rule(
            "PX140",
            "a plugin pull request changes a file outside plugins/<name>/",
            "move the change to its own pull request for the maintainers",
        ),
        Rule(
            "PX141",
            "a pull request touches more than one plugin",
            "open one pull request per plugin",
        ),
        Rule(
            "PX142",
            "a path in the pull request has a name over 255 bytes or folders nested too deep",
            "shorten the name or flatten the folders (at most 8 levels in a plugin folder)",
        ),
    )
}
