"""The plugin user's side: registry documents, author-signature and key-pin checks,
resolution, downloads, unpacking, the lockfile and transactional installs.

May import: common, trust, format.names, format.requirements (never YAML, pydantic
source models, the index, the gate or publishing).
"""

import sys

# tuf imports securesystemslib.signer, which imports boto3 for an AWS KMS signer no
# client uses: a third of `plugindex search`'s start-up. It is loaded here, before any
# client module imports tuf, with boto3 hidden (that signer then says boto3 is missing);
# later imports find boto3 again. tests/test_cli_startup.py holds this.
if "securesystemslib.signer" not in sys.modules and "boto3" not in sys.modules:
    sys.modules["boto3"] = None  # type: ignore[assignment]  # None: ImportError
    try:
        import securesystemslib.signer  # noqa: F401
    finally:
        del sys.modules["boto3"]
