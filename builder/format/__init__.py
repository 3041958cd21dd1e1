"""The source format: plugin names, requirements, strict YAML, the pydantic models of
what authors write (`models`, their checked field types in `fields`), schema errors
and loading an index from disk.

May import: common. `names` and `requirements` import nothing but the standard
library and semver, so the client may use them without loading YAML or pydantic.
"""
