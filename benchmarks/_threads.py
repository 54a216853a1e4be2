"""Thread count of a benchmark's MXNet, set from ``--threads`` before MXNet is imported.

MXNet (its OpenMP runtime) reads ``OMP_NUM_THREADS`` once, when it is imported, so the
benchmarks that compare it with onnxruntime on the same threads call
:func:`set_threads_from_argv` first thing, before ``import mxnet``.
"""
import os
import sys


def threads_from_argv(argv, default="2"):
    """The value of ``--threads N`` / ``--threads=N`` in ``argv``, else ``default``."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return default


def set_threads_from_argv(argv=None):
    """Set ``OMP_NUM_THREADS`` from the command line's ``--threads`` (default 2); return it."""
    threads = threads_from_argv(sys.argv[1:] if argv is None else argv)
    os.environ["OMP_NUM_THREADS"] = threads
    return threads
