"""Author trust: signed statements (the canonical bytes) and Ed25519 signing and
verification. No I/O: keys and signatures come in as values.

May import: common.
"""
