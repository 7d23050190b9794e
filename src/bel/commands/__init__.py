"""Subcommands of the `bel` command line, one module each (see bel.cli)."""
