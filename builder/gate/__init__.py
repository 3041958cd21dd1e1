"""The pull-request gate: read a base from git and apply the rules that compare a PR
with it.

- pull_request.py: `check_pull_request`, the PR's scope, and the per-plugin driver
- rules.py: the table of rule ids (PX1xx) with their fixes
- ownership.py: owners, the PR's author, and signatures against the base's keys
- immutability.py: merged versions never change; version numbers are never reused
- yanks.py: the one change a merged version may get (signed, serial raised)
- names.py: new names that collide with or resemble existing ones
- published.py: the same checks against the live registry (`--published`)
- context.py: one plugin under the gate, shared by the rule modules
- git.py: reading the base from git objects

May import: common, format, trust, index.
"""
