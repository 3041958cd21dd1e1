"""The site stage: the HTML pages, feeds and sitemap a person browses, built from the
index's facts and per-plugin documents with the templates in `templates/` and the
assets in `site/`, added to the same atomic, incremental write as the JSON index.

May import: common, format, trust, index.
"""
