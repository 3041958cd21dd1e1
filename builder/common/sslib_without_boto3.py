"""Load securesystemslib's signers without boto3, which only an unused AWS signer needs."""

import sys


def import_signers_without_boto3() -> None:
    """Import securesystemslib.signer once, with boto3 hidden while it loads."""
    # securesystemslib.signer imports boto3 for an AWS KMS signer nothing here uses:
    # 0.1-0.25 s of every build's TUF stage and a third of `plugindex search`'s start.
    # With boto3 hidden, that signer says boto3 is missing; later imports find boto3
    # again (the S3 store needs it). tests/test_cli_startup.py holds this.
    if "securesystemslib.signer" in sys.modules or "boto3" in sys.modules:
        return
    sys.modules["boto3"] = None  # type: ignore[assignment]  # None: ImportError
    try:
        import securesystemslib.signer  # noqa: F401 - loaded for its side effect
    finally:
        del sys.modules["boto3"]
