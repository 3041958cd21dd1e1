"""Where an index keeps its files: the names every stage agrees on.

Apart from `load` so that a module needing only a path (a no-op build's check, the
held-back list) does not import PyYAML and the pydantic models with it.
"""

from __future__ import annotations

REGISTRY_FILE = "registry.yaml"
PLUGINS_DIR = "plugins"
TUF_DIR = "tuf"  # the registry's TUF root metadata (builder/tuf reads it)
PLUGIN_FILE = "plugin.yaml"
VERSIONS_DIR = "versions"

# What the file system says about a source file, to skip re-hashing it:
# (mtime_ns, size, inode, ctime_ns). ctime too: it changes on every write, even one
# that restores mtime and size. A plain tuple: one is made per file per build.
FileStat = tuple[int, int, int, int]
