"""CLI subcommands, one module each (see climbstream/cli.py for the contract)."""
