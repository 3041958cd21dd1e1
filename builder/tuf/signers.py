"""Where each online role's private key comes from: one URI per role, made a signer.

`registry.yaml` may name a URI per role under `tuf.signers`; the environment
variable `PLUGINDEX_TUF_<ROLE>_SIGNER` overrides it; with neither, the key is read
from `env:PLUGINDEX_TUF_<ROLE>_KEY`. Schemes:

- `file:PATH`: a PEM private key file (a relative PATH is relative to the index);
- `env:VARIABLE`: an environment variable holding the key in base64 (of the PEM, or
  of the raw 32-byte Ed25519 key), as CI secrets are passed.

A KMS signer is one more entry in `SCHEMES`: a function from the rest of the URI
and a `SignerContext` to any `securesystemslib.signer.Signer` (securesystemslib
ships AWS, GCP, Azure and Vault signers). Nothing else changes: the build only
calls `Signer.sign` and reads `Signer.public_key`. docs/tuf.md shows an example.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from securesystemslib.signer import Key, Signer

from builder.tuf.keys import TufKeyError, read_private, short_id, signer_from_bytes


@dataclass(frozen=True)
class SignerContext:
    """What a signer factory may need besides its URI."""

    role: str
    index: Path  # relative file paths start here
    environ: Mapping[str, str]
    keys: Sequence[Key]  # the keys root authorises for the role (a KMS signer's public key)


SignerFactory = Callable[[str, SignerContext], Signer]


def _from_file(rest: str, context: SignerContext) -> Signer:
    path = Path(rest).expanduser()
    return read_private(path if path.is_absolute() else context.index / path)


def _from_env(rest: str, context: SignerContext) -> Signer:
    value = context.environ.get(rest)
    if not value:
        raise TufKeyError(
            f"${rest}: not set (expected the base64 private key of the {context.role} role; "
            f"see docs/tuf.md)"
        )
    return signer_from_bytes(value.encode("ascii", "replace"), f"${rest}")


SCHEMES: dict[str, SignerFactory] = {"file": _from_file, "env": _from_env}


def override_variable(role: str) -> str:
    """Return the environment variable that overrides a role's signer URI."""
    return f"PLUGINDEX_TUF_{role.upper()}_SIGNER"


def default_uri(role: str) -> str:
    """Return the signer URI used when nothing names one: a base64 key in the environment."""
    return f"env:PLUGINDEX_TUF_{role.upper()}_KEY"


def signer_uri(
    role: str, configured: Mapping[Any, str], environ: Mapping[str, str], registry_file: Path
) -> tuple[str, str]:
    """Return a role's signer URI and where it was set (for messages)."""
    variable = override_variable(role)
    if environ.get(variable):
        return environ[variable], f"${variable}"
    if role in configured:
        return configured[role], f"{registry_file}: tuf.signers.{role}"
    return default_uri(role), f"default for {role} (set tuf.signers.{role} or ${variable})"


def load_signer(uri: str, origin: str, context: SignerContext) -> Signer:
    """Return the signer a URI names, checked against the keys root authorises."""
    scheme, sep, rest = uri.partition(":")
    factory = SCHEMES.get(scheme) if sep else None
    if factory is None:
        raise TufKeyError(
            f"{origin}: {uri!r}: unknown signer (expected file:PATH or env:VARIABLE"
            f"{''.join(', ' + s + ':…' for s in sorted(SCHEMES) if s not in ('file', 'env'))})"
        )
    try:
        signer = factory(rest, context)
    except TufKeyError as e:
        raise TufKeyError(f"{origin}: {e}") from None
    allowed = {key.keyid for key in context.keys}
    if signer.public_key.keyid not in allowed:
        wanted = ", ".join(sorted(short_id(k) for k in allowed)) or "none"
        raise TufKeyError(
            f"{origin}: the {context.role} key {short_id(signer.public_key.keyid)} is not one "
            f"the registry's root authorises for {context.role} (expected {wanted}); rotate "
            f"the root first (plugindex registry rotate-root)"
        )
    return signer
