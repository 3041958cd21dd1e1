"""The index stage: analyse an index, run its rules, verify its signatures, and build
the static sparse index (facts, JSON rendering, cache, mirrored artifacts, output).

May import: common, format, trust.
"""
