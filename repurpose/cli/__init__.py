"""The ``repurpose`` command line: argument parsing and printing only; the work is done by
:mod:`repurpose.jobs` and the library.

Each command imports what it needs when it runs, so ``--help``, ``--version`` and usage
errors answer without loading MXNet or scikit-learn. ``-q``/``-v``/``--debug`` work before
or after the command. Exit status: 0 on success, 2 on bad usage or input (a one-line cause on
stderr), 1 on a failure during the run (also a scheduler that does not answer, or an output
folder or journal that another process is writing), 130 when interrupted; ``--debug`` shows
the traceback. Messages name the command's flags (``--overwrite``), not the Python arguments
behind them.
"""
import argparse
import logging
import re
import sys

from .._version import __version__
from ..exceptions import ClusterError, DownloadError, LockedError, RepurposeError
from . import _commands, _finetune, _launch, _tune

logger = logging.getLogger(__name__)

__all__ = ["main", "build_parser"]

USAGE_ERRORS = (RepurposeError, FileNotFoundError, FileExistsError, TypeError, ValueError)
#: Our errors that are failures of the run's environment, not of its input: exit 1 (a
#: cluster that does not answer, a download that fails, a folder another process writes).
RUN_FAILURES = (ClusterError, DownloadError, LockedError)

#: Python arguments of the library and the jobs -> the flags that set them. A message says
#: ``overwrite=True``; on the command line it says ``--overwrite`` (where the command has it).
_FLAGS = {"overwrite": "--overwrite", "resume": "--resume", "out": "--out",
          "scheduler": "--scheduler", "batch_size": "--batch-size",
          "shard_size": "--shard-size", "ctx": "--ctx", "pool": "--pool",
          "precision": "--precision", "layers": "--layers", "data": "--data"}
#: Per command, what else a message means there: the journal and checkpoints of a job live
#: in its run.output_dir.
_COMMAND_WORDS = {
    "tune": ((r"\banother state_path\b", "another run.output_dir (or --overwrite)"),
             (r"\bstate_path (?=')", "the journal ")),
    "finetune": ((r"\banother checkpoint_dir\b", "another run.output_dir"),),
}


def _verbosity(parser, default):
    parser.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="log what happens (INFO)")
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="print results only: no progress bars, warnings only if errors")
    parser.add_argument("--debug", action="store_true", default=default,
                        help="log everything, show tracebacks")


def build_parser():
    """Return the ``argparse`` parser with every subcommand.

    Returns
    -------
    argparse.ArgumentParser
        Parses the global options (``--verbose``, ``--quiet``, ``--debug``, ``--version``;
        the first three also after the command) and one subcommand; the parsed namespace's
        ``run(args)`` runs that subcommand.

    Examples
    --------
    >>> args = build_parser().parse_args(['layers', 'digits_cnn', '--json', '-v'])
    >>> args.command, args.model, args.json, args.verbose
    ('layers', 'digits_cnn', True, True)
    """
    parser = argparse.ArgumentParser(
        prog="repurpose", description="Transfer learning on Apache MXNet.")
    parser.add_argument("--version", action="version", version=f"repurpose {__version__}")
    _verbosity(parser, False)
    # The same flags on every command; SUPPRESS keeps a flag given before the command.
    common = argparse.ArgumentParser(add_help=False)
    _verbosity(common, argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for module in (_commands, _finetune, _tune, _launch):
        module.add_commands(commands, common)
    return parser


def _setup_logging(args):
    level = (logging.DEBUG if args.debug else logging.INFO if args.verbose
             else logging.ERROR if args.quiet else logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           "%H:%M:%S"))
    root = logging.getLogger("repurpose")
    root.handlers[:] = [handler]
    root.setLevel(level)


def _in_cli_words(message, command, options):
    """``message`` as the command line says it: Python arguments the command has a flag for
    (``overwrite=True``, ``out='x'``) become the flag (``--overwrite``, ``--out 'x'``).

    Parameters
    ----------
    message : str
        An error message of the library or of a job.
    command : str
        The subcommand (``'tune'``, ``'extract'``, ...).
    options : iterable of str
        The names of the command's options (the parsed namespace's attributes).

    Examples
    --------
    >>> _in_cli_words("out='f' already exists; remove it, or pass overwrite=True.", 'extract',
    ...              ['out', 'overwrite'])
    "--out 'f' already exists; remove it, or pass --overwrite."
    >>> _in_cli_words('pass overwrite=True (--overwrite).', 'demo', ['overwrite'])
    'pass --overwrite.'
    """
    options = set(options)
    for name, flag in _FLAGS.items():
        if name not in options:
            continue
        message = re.sub(rf"(?<![\w.-]){name}=True\b", flag, message)
        message = re.sub(rf"(?<![\w.-]){name}=(?=[\w'\"(\[])", f"{flag} ", message)
    for pattern, words in _COMMAND_WORDS.get(command, ()):
        message = re.sub(pattern, words, message)
    return re.sub(r"(--[\w-]+) \(\1\)", r"\1", message)  # 'overwrite=True (--overwrite)'


def main(argv=None):
    """Run the command line; returns the exit status.

    Sets up logging on the ``repurpose`` logger (stderr; WARNING, ERROR with ``--quiet``,
    INFO with ``--verbose``, DEBUG with ``--debug``), runs the subcommand, and turns
    exceptions into a one-line cause on stderr (the traceback only with ``--debug``).

    Parameters
    ----------
    argv : list of str, default=None
        The arguments after the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 on bad usage or input, 1 on a failure during the run, 130 when
        interrupted. (Bad usage that ``argparse`` itself catches raises ``SystemExit(2)``.)

    Examples
    --------
    >>> main(['layers', 'digits_cnn'])
     #  layer         operator        output shape  params
     0  conv1_fwd     Convolution     16x8x8           160
    ...
    15 layers, 28,229 parameters, input shape (1, 8, 8)
    0
    >>> main(['layers', 'no_such_model'])  # the cause goes to stderr
    2

    ``main`` configured the ``repurpose`` logger, as the command line does; undo it here:

    >>> logger = logging.getLogger('repurpose')
    >>> logger.handlers.clear(); logger.setLevel(logging.NOTSET)
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose and args.quiet:
        parser.error("pass -v/--verbose or -q/--quiet, not both")
    _setup_logging(args)
    try:
        return args.run(args) or 0
    except USAGE_ERRORS as err:
        if args.debug:
            raise
        text = _in_cli_words(str(err), args.command, vars(args))
        if isinstance(err, RUN_FAILURES):  # not the user's input: a failure (exit 1)
            print(f"repurpose {args.command}: failed: {type(err).__name__}: {text}",
                  file=sys.stderr)
            return 1
        print(f"repurpose {args.command}: error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"repurpose {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a failure during the run: one line unless --debug
        if args.debug:
            raise
        print(f"repurpose {args.command}: failed: {type(err).__name__}: "
              f"{_in_cli_words(str(err), args.command, vars(args))}", file=sys.stderr)
        return 1
