"""Verify: which signatures a plugin has, what each signs, and what their checks mean.

`plan_signatures` lists every release, yank and un-yank signature with its statement;
`builder.index.verifier` runs the Ed25519 checks; `judge_signatures` turns the outcomes into
problems and into who signed each version. Needs no git history: every signature must
verify with a key an owner of the plugin lists now, and the key must still vouch for
it (`trust.powers`): an active key, or a retired key bound to that version. A
signature by a revoked key is no problem of the build: the version is published
marked as needing an owner's new signature. Which keys were allowed to sign a
*change* (the base's owners, active keys only) is the pull-request gate's rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from builder.format.models import PluginManifest, Signature, VersionManifest
from builder.format.shapes import owner_shape, version_entry
from builder.format.strict_yaml import Path_
from builder.trust import statements
from builder.trust.powers import KeyPowers
from builder.trust.signing import Check, Verdict, describe, key_id

log = logging.getLogger(__name__)

# The rule id of a signature that does not verify (listed in docs/rules.md).
SIGNATURE_RULE = "PX010"


class SignedBy(NamedTuple):
    owner: str  # GitHub handle of the owner whose key verified
    key_id: str
    # Statements of the version signed only by a revoked key ({statement, key_id,
    # reason}), published as the version's `revoked_signatures`.
    revoked: tuple[dict[str, str], ...] = ()


def _block(signature: Signature | None) -> dict[str, str] | None:
    return signature.model_dump() if signature is not None else None


class SignatureJob(NamedTuple):
    """One signature to check: where it is, what it signs, and the signed bytes."""

    file: str
    loc: Path_
    what: str  # release, yank or un-yank
    version: str
    signature: dict[str, str] | None
    statement: bytes


def yank_jobs(registry: str, plugin: str, rel: str, version: VersionManifest) -> list[SignatureJob]:
    """List the signatures of a version's yank or un-yank, with their statements."""
    jobs: list[SignatureJob] = []
    sha256 = version.artifact.sha256
    if version.yanked is not None:
        y = version.yanked
        statement = statements.yank_statement(
            registry, plugin, version.version, sha256=sha256, reason=y.reason, serial=y.serial
        )
        loc: Path_ = ("yanked", "signature")
        jobs.append(SignatureJob(rel, loc, "yank", version.version, _block(y.signature), statement))
    if version.unyanked is not None:
        u = version.unyanked
        statement = statements.unyank_statement(
            registry, plugin, version.version, sha256=sha256, serial=u.serial
        )
        loc = ("unyanked", "signature")
        jobs.append(
            SignatureJob(rel, loc, "un-yank", version.version, _block(u.signature), statement)
        )
    return jobs


def plan_signatures(
    registry: str,
    manifest: PluginManifest,
    versions: Sequence[tuple[str, VersionManifest]],
    entries: Sequence[Mapping[str, Any]] | None = None,
) -> list[SignatureJob]:
    """List every signature of a plugin with its statement (the Python half of the work)."""
    jobs: list[SignatureJob] = []
    plugin = manifest.name
    for i, (rel, version) in enumerate(versions):
        entry = entries[i] if entries is not None else version_entry(version)
        release = statements.release_statement(registry, plugin, entry)
        signature = _block(version.signature)
        jobs.append(
            SignatureJob(rel, ("signature",), "release", version.version, signature, release)
        )
        jobs.extend(yank_jobs(registry, plugin, rel, version))
    return jobs


def judge_signatures(
    manifest: PluginManifest,
    jobs: Sequence[SignatureJob],
    checks: Sequence[Check],
    report: Callable[[str, Path_, str], None],
) -> dict[str, SignedBy]:
    """Report failed checks; return who signed each version whose release verified.

    A release signed by a revoked key verified, but vouches for nothing: its
    SignedBy lists what awaits an owner's new signature.
    """
    powers = KeyPowers(owner_shape(o) for o in manifest.owners)
    signed: dict[str, SignedBy] = {}
    revoked: dict[str, list[dict[str, str]]] = {}
    unbound: dict[str, set[str]] = {}
    for job, raw in zip(jobs, checks, strict=True):
        check = powers.judge(raw, job.version)
        key = check.key
        if key is None or not (check.valid or check.verdict is Verdict.REVOKED_KEY):
            report(job.file, job.loc, describe(check, job.what, manifest.name))
            continue
        if check.verdict is Verdict.REVOKED_KEY:
            entry = {"statement": job.what, "key_id": key_id(key), "reason": check.note}
            revoked.setdefault(job.version, []).append(entry)
        elif powers.unbound_signer(check) is not None:
            unbound.setdefault(key, set()).add(job.version)
        if job.what == "release":
            power = powers.of(key)
            signed[job.version] = SignedBy(power.owner if power else "", key_id(key))
    for version, entries in revoked.items():
        if version in signed:
            signed[version] = signed[version]._replace(revoked=tuple(entries))
    for key, versions in sorted(unbound.items()):
        log.warning(
            "%s: the retired key %s has no binding (a plain retired_keys entry), so it "
            "still vouches for any version; bind it to what it signed: "
            "`- {key: %s, versions: [%s]}`",
            manifest.name,
            key_id(key),
            key,
            ", ".join(sorted(versions)),
        )
    return signed
