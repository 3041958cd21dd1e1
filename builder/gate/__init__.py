"""The pull-request gate: read a base from git and apply the rules that compare a PR
with it (ownership, immutability, names, cross-plugin rules).

May import: common, format, trust, index.
"""
