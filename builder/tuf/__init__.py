"""TUF, the registry side: the signed metadata that binds a build together.

Owns the roles and their keys (`keys`), where a role's private key comes from
(`signers`: files, base64 environment variables, and room for a KMS), how many
hashed bins an index needs (`sizing`), the metadata of one build with its hashed-bin
delegations and versions (`metadata`), the build stage that adds it to the build's
atomic write (`stage`), and the operator's commands: init, refresh-timestamp,
rotate-root (`admin`). docs/tuf.md is the guide.

May import: common, format, index. Nothing imports it but the CLI.
"""

from builder.common.sslib_without_boto3 import import_signers_without_boto3

# Before any module here imports securesystemslib.signer (keys, admin, metadata).
import_signers_without_boto3()
