"""The search stage: the search records of every plugin, the build-side Whoosh index
(immutable, content-addressed files under search/whoosh/ with a manifest) and the
browser's prefix shards under search/v1/, made from the same records and kept between
builds in `shard_tree` (SQLite, in the build's state folder). Whoosh itself is called
only through `builder.common.whoosh_adapter` (the client reads through `whoosh_reader`).

May import: common, format, trust, index.
"""
