"""The `climbstream` command line: one subcommand per module in climbstream/commands/.

Each command module defines `HELP` (one line), `add_arguments(parser)` and
`run(args) -> int`, and imports its heavy dependencies inside `run`, so that `--help`
stays fast. Errors derived from ClimbstreamError print as one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from climbstream import __version__
from climbstream.errors import ClimbstreamError


def _command_modules():
    import climbstream.commands as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield info.name.replace("_", "-"), importlib.import_module(f"climbstream.commands.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    """The full parser; exposed for tests and docs."""
    parser = argparse.ArgumentParser(
        prog="climbstream",
        description="Multilingual pretraining data at the right language ratios.",
    )
    parser.add_argument("--version", action="version", version=f"climbstream {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    # -v also after the subcommand (`climbstream prepare ... -v`); SUPPRESS keeps the value
    # given before it when it is not repeated after
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _command_modules():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, parents=[common])
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _configure_logging(verbose: int) -> None:
    """-v: info, -vv: debug (botocore's included), with request signatures and secrets masked."""
    from climbstream.storage.redact import RedactingFilter

    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    _configure_logging(args.verbose)
    try:
        return int(args._run(args) or 0)
    except ClimbstreamError as err:
        print(f"climbstream {args.command}: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
