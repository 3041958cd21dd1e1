"""Shared by every stage: errors and exit codes, the published layout, digests,
atomic writes, limits and the one HTTP fetcher. Imports no other stage.
"""
