"""The `plugindex` command: one thin module per audience. Each command parses options,
calls one stage function and maps errors to exit codes.

May import: everything. Nothing imports it.
"""
