"""The ``repurpose`` command line: parses, validates, calls the public Python API, prints.

Exit status: 0 on success, 2 on bad usage or input (a one-line cause on stderr), 1 on a
failure during the run. ``--debug`` shows the traceback.
"""
import argparse
import logging
import sys

from .._version import __version__
from ..exceptions import RepurposeError
from . import _commands

logger = logging.getLogger(__name__)

__all__ = ["main", "build_parser"]

USAGE_ERRORS = (RepurposeError, FileNotFoundError, FileExistsError, TypeError, ValueError)


def build_parser():
    """Return the ``argparse`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="repurpose", description="Transfer learning on Apache MXNet.")
    parser.add_argument("--version", action="version", version=f"repurpose {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    parser.add_argument("--debug", action="store_true", help="log everything, show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    _commands.add_commands(commands)
    return parser


def _setup_logging(verbose, debug):
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           "%H:%M:%S"))
    root = logging.getLogger("repurpose")
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.debug)
    try:
        return args.run(args) or 0
    except USAGE_ERRORS as err:
        if args.debug:
            raise
        print(f"repurpose {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"repurpose {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a failure during the run: one line unless --debug
        if args.debug:
            raise
        print(f"repurpose {args.command}: failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
