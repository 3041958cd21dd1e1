"""The plugin user's side: registry documents, author-signature and key-pin checks,
resolution, downloads, unpacking, the lockfile and transactional installs.

May import: common, trust, format.names, format.requirements (never YAML, pydantic
source models, the index, the gate or publishing).
"""

from builder.common.sslib_without_boto3 import import_signers_without_boto3

# Before any client module imports tuf (which imports securesystemslib.signer).
import_signers_without_boto3()
