"""Author tools: key files, signing manifests in place, scaffolding a new plugin.

May import: common, format, trust.
"""
