"""The source format: what authors and maintainers write in `registry-index/`.

Every model forbids unknown keys and coerces nothing (strict mode), so a typo or an
implicit YAML type is an error with a line number, never a guess. docs/format.md is
the prose version of this module; keep them in step. The checked field types
(names, versions, text, URLs, keys) are in `fields`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from builder.format.fields import (
    FileName,
    GitHubHandle,
    HttpsUrl,
    Keyword,
    License,
    LongText,
    Name,
    PublicKey,
    ReadmePath,
    ReleaseDate,
    RequirementText,
    Sha256,
    Slug,
    Text,
    Version,
    check_url,
    pattern,
)

# The source models, and the field types other stages name through this module.
__all__ = [
    "Artifact",
    "Author",
    "Category",
    "Compatibility",
    "Compliance",
    "Dependency",
    "Deprecation",
    "FileName",
    "Format",
    "GitHubHandle",
    "LongText",
    "Name",
    "Owner",
    "PluginManifest",
    "Policy",
    "PublicKey",
    "RegistryConfig",
    "ReleaseDate",
    "RequirementText",
    "RetiredKey",
    "RevokedKey",
    "Serial",
    "Signature",
    "Slug",
    "Strict",
    "Tuf",
    "TufExpiry",
    "Unique",
    "Unyank",
    "Version",
    "VersionManifest",
    "Yank",
    "handle_key",
]


def handle_key(handle: str) -> str:
    """Return the form two GitHub handles are compared in (GitHub ignores case)."""
    return handle.lower()


def _unique(values: list[Any]) -> list[Any]:
    keys = [
        v.slug if isinstance(v, Category) else handle_key(v.github) if isinstance(v, Owner) else v
        for v in values
    ]
    repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"expected each entry once; got {', '.join(repeated)} more than once")
    return values


Unique = AfterValidator(_unique)


class Strict(BaseModel):
    """Base of every source model: no unknown keys, no coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- registry.yaml -----------------------------------------------------------------


class Category(Strict):
    slug: Slug
    title: Text
    description: LongText


class Policy(Strict):
    max_artifact_size: Annotated[int, Field(gt=0)] = 50 * 1024 * 1024  # bytes
    allowed_url_schemes: list[Literal["https", "http"]] = ["https"]
    reserved_names: list[Name] = []
    # New names approved by the maintainers although they resemble an existing one
    # (edit distance 1 or look-alike characters), such as `auth-jws` beside `auth-jwt`.
    approved_similar_names: list[Name] = []
    # Artifacts stored in the repository next to their manifest: for the bundled demo
    # and tests only; a real registry mirrors authors' https artifacts instead.
    allow_local_artifacts: bool = False
    download_timeout: Annotated[float, Field(gt=0, le=600)] = 30.0  # seconds
    # Artifact URLs may lead to loopback, private, link-local or other non-public
    # addresses: for tests and a demo served from this machine only. Off, the gate
    # and the build's mirror refuse them (after DNS resolution, on every redirect).
    allow_private_addresses: bool = False
    # Images (png, jpeg, gif, webp) a plugin folder may hold for its README.
    max_image_size: Annotated[int, Field(gt=0)] = 1024 * 1024  # bytes


class TufExpiry(Strict):
    """How long each role's signed metadata stays valid once signed (days); docs/tuf.md."""

    root: Annotated[int, Field(gt=0, le=3660)] = 365
    targets: Annotated[int, Field(gt=0, le=366)] = 30
    snapshot: Annotated[int, Field(gt=0, le=366)] = 7
    timestamp: Annotated[int, Field(gt=0, le=366)] = 1


def _check_power_of_two(value: int) -> int:
    if value & (value - 1):
        raise ValueError(f"expected a power of two such as 256, got {value}")
    return value


class Tuf(Strict):
    expiry: TufExpiry = TufExpiry()
    # Hashed bins the targets are spread over: sized to the index (registry init).
    bins: Annotated[int, Field(ge=2, le=65536), AfterValidator(_check_power_of_two)] = 256
    # Where `build` finds each online role's key: file:PATH (relative to the index),
    # env:VARIABLE (base64) or a KMS URI. Never the key itself.
    signers: dict[
        Literal["targets", "snapshot", "timestamp"], Annotated[str, Field(max_length=500)]
    ] = {}


class RegistryConfig(Strict):
    format: Literal[1]
    name: Name
    title: Text
    # What the registry is, in a sentence or two: shown on the site's home page.
    description: LongText | None = None
    base_url: Annotated[str, pattern(r"https?://[^\s]+/", "an http(s) URL ending in /")]
    categories: Annotated[list[Category], Field(min_length=1), Unique]
    policy: Policy = Policy()
    tuf: Tuf = Tuf()  # the registry's signed metadata (TUF)


# --- plugins/<name>/plugin.yaml ------------------------------------------------------


class Author(Strict):
    name: Text
    email: Annotated[str, pattern(r"[^@\s]+@[^@\s]+\.[^@\s]+", "an email address")] | None = None


class RetiredKey(Strict):
    """A key rotated out, and the versions it signed before: all it may still vouch for.

    Written `{key: ed25519:…, versions: [1.0.0, 1.1.0]}`. A plain key (the form before
    bindings existed) loads with `versions` None: not bound, so it still vouches for
    any version; the build and the client warn, and the gate refuses a new one.
    """

    key: PublicKey
    versions: Annotated[list[Version], Field(max_length=10_000), Unique] | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_or_bound(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"key": value}  # the older, unbound form
        if not isinstance(value, dict):
            raise ValueError(
                f"expected a mapping {{key: ed25519:…, versions: [...]}}; "
                f"got {type(value).__name__} {str(value)[:60]!r}"
            )
        if value.get("versions") is None and "key" in value:
            raise ValueError(
                "expected `versions:`, the list of versions this key signed before it "
                "was retired (`[]` when none); got no versions"
            )
        return value

    @property
    def bound(self) -> bool:
        """Whether the owner bound this key to the versions it may vouch for."""
        return self.versions is not None


class RevokedKey(Strict):
    """A key its owner no longer trusts (lost, leaked): it vouches for nothing at all."""

    key: PublicKey
    reason: LongText


class Owner(Strict):
    github: GitHubHandle
    # Keys that may sign new statements.
    keys: Annotated[list[PublicKey], Field(min_length=1, max_length=8), Unique]
    # Keys rotated out: each vouches only for the versions its binding lists (a
    # plain key, the older form, for any version it signed), nothing new.
    retired_keys: Annotated[list[RetiredKey], Field(max_length=32)] = []
    # Keys revoked: whatever they signed needs an owner's new signature.
    revoked_keys: Annotated[list[RevokedKey], Field(max_length=32)] = []

    @model_validator(mode="after")
    def _each_key_once(self) -> Owner:
        listed = [k.key for k in self.retired_keys] + [k.key for k in self.revoked_keys]
        repeated = sorted({k for k in listed if listed.count(k) > 1})
        if repeated:
            raise ValueError(
                f"expected each retired or revoked key once; got {repeated[0][:60]} more than once"
            )
        revoked = {k.key for k in self.revoked_keys}
        still = sorted(revoked & {*self.keys, *self.retired()})
        if still:
            raise ValueError(
                f"expected a revoked key to be listed nowhere else; got {still[0][:60]} "
                f"revoked and also under keys or retired_keys"
            )
        return self

    def retired(self) -> list[str]:
        """Return the retired keys, bound or not."""
        return [k.key for k in self.retired_keys]


class Deprecation(Strict):
    """The owners' word that a plugin should no longer be used, and what to use instead."""

    message: LongText
    replacement: Name | None = None  # another plugin of this registry


class PluginManifest(Strict):
    name: Name
    display_name: Text
    description: LongText
    authors: Annotated[list[Author], Field(min_length=1, max_length=20)]
    license: License
    homepage: HttpsUrl | None = None
    repository: HttpsUrl | None = None
    keywords: Annotated[list[Keyword], Field(max_length=10), Unique] = []
    categories: Annotated[list[Slug], Field(min_length=1, max_length=5), Unique]
    owners: Annotated[list[Owner], Field(min_length=1, max_length=10), Unique]
    readme: ReadmePath | None = None
    deprecated: Deprecation | None = None  # signed like the rest; clients warn on it
    # Raised by one with every signed change to this file, so an old signed
    # plugin.yaml (say, with a removed owner) can never be replayed.
    revision: Serial = 1
    signature: Signature | None = None

    @model_validator(mode="after")
    def _revoked_nowhere_else(self) -> PluginManifest:
        # A revoked key listed by another owner would still vouch for what it signed.
        for owner in self.owners:
            for revoked in owner.revoked_keys:
                for other in self.owners:
                    if other is not owner and revoked.key in {*other.keys, *other.retired()}:
                        raise ValueError(
                            f"expected a revoked key to be listed nowhere else; "
                            f"{owner.github} revoked {revoked.key[:60]}, which "
                            f"{other.github} still lists"
                        )
        return self


# --- plugins/<name>/versions/<version>.yaml -------------------------------------------


class Artifact(Strict):
    # An https URL, or (when policy.allow_local_artifacts) a path relative to the
    # plugin's folder, such as artifacts/auth-jwt-1.0.0.tar.gz.
    url: Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(check_url)]
    sha256: Sha256
    size: Annotated[int, Field(gt=0)]  # bytes
    filename: FileName


class Dependency(Strict):
    version: RequirementText
    kind: Literal["runtime", "dev", "build", "optional"] = "runtime"


class Compatibility(Strict):
    host: RequirementText  # versions of the host application this plugin runs in
    plugin_api: RequirementText  # versions of the plugin API it was built against


class Format(Strict):
    extension: Annotated[str, pattern(r"\.[a-z0-9][a-z0-9.+-]{0,19}", "an extension such as .csv")]
    description: Text
    mime_type: Annotated[
        str, pattern(r"[a-z]+/[a-z0-9][a-z0-9.+-]*", "a MIME type such as text/csv")
    ]


class Compliance(Strict):
    risk_level: Literal["low", "medium", "high", "critical"]
    notes: LongText | None = None


class Signature(Strict):
    algorithm: Literal["ed25519"]
    key_id: Annotated[str, pattern(r"[0-9a-f]{16}", "a key id of 16 hex digits")]
    value: Annotated[str, pattern(r"[A-Za-z0-9+/]{86}==", "a base64 Ed25519 signature")]


# Each yank or un-yank carries a serial one higher than the last, inside what is
# signed, so an old signed statement can never be replayed to undo a later one.
Serial = Annotated[int, Field(ge=1, le=1_000_000)]


class Yank(Strict):
    reason: LongText
    serial: Serial = 1
    signature: Signature | None = None


class Unyank(Strict):
    serial: Serial
    signature: Signature | None = None


class VersionManifest(Strict):
    version: Version
    released: ReleaseDate
    artifact: Artifact
    dependencies: dict[Name, Dependency] = {}
    compatibility: Compatibility
    engine: Slug
    formats: list[Format] = []
    compliance: Compliance
    yanked: Yank | None = None
    unyanked: Unyank | None = None
    signature: Signature | None = None
