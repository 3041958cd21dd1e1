"""plugindex: a plugin registry with no server."""

__version__ = "0.1.0"

# The version of the published layout (config.json, per-plugin documents, listings).
# Bump it when a client would read a document differently.
FORMAT_VERSION = 1
