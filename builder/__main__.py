"""`python -m builder`: the same as the `plugindex` command."""

from builder.cli.main import main

main()
