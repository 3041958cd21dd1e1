"""The plugin user's side: registry documents, author-signature and key-pin checks,
resolution, downloads, unpacking, the lockfile and transactional installs.

May import: common, trust, format.names, format.requirements (never YAML, pydantic
source models, the index, the gate or publishing).
"""
