"""Subcommand ``launch``: a distributed MXNet job on this machine (loopback), with a watchdog.

``repurpose launch --workers N --servers M -- repurpose finetune --config job.yaml`` starts
MXNet's scheduler, ``M`` parameter servers and ``N`` workers running the command, each with
the ``DMLC_*`` environment of the job, and watches them:

- every worker exits 0: the servers and the scheduler are stopped (they normally end by
  themselves) and ``launch`` exits 0;
- a worker exits non-zero (crashed, killed, failed): the other workers would block for ever
  in kvstore calls waiting for it, so ``launch`` stops every process at once, names the
  worker, and exits with that worker's status (128 + signal for a signal, as a shell does);
- the scheduler or a server exits before the workers are done: the same, exit status 1;
- ``--timeout`` seconds pass: every process is stopped, exit status 124.

The scheduler and servers are ``python -c 'import mxnet'`` processes: importing MXNet with
``DMLC_ROLE`` set to 'scheduler' or 'server' runs that role until the job ends. A command
starting with ``repurpose`` runs as ``<this python> -m repurpose.cli``, so workers use the
same interpreter and package as the launcher.
"""
import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time

from ..exceptions import InvalidParameterError

logger = logging.getLogger(__name__)

__all__ = ["add_commands", "launch", "free_port"]

#: Seconds between a polite SIGTERM and SIGKILL when stopping processes.
STOP_GRACE_S = 5.0
#: Seconds the servers and the scheduler get to end by themselves after the last worker.
SHUTDOWN_WAIT_S = 15.0
_POLL_S = 0.2


class LaunchError(RuntimeError):
    """A process of the job failed; ``status`` is the exit status to return."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (for the scheduler)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _describe_status(code):
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"


def _shell_status(code):
    return 128 - code if code < 0 else code


def _stop(procs):
    """SIGTERM every running process (its whole session), SIGKILL what is left after a grace."""
    running = [p for p in procs if p.poll() is None]
    for p in running:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_GRACE_S
    for p in running:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def _worker_command(command):
    if command and command[0] == "repurpose":
        return [sys.executable, "-m", "repurpose.cli", *command[1:]]
    return list(command)


def launch(command, n_workers, n_servers=1, port=None, timeout=None, host="127.0.0.1",
           env=None):
    """Run ``command`` as ``n_workers`` workers of a distributed MXNet job on this machine.

    Parameters
    ----------
    command : list of str
        The worker command, e.g. ``['repurpose', 'finetune', '--config', 'job.yaml']``.
    n_workers : int
        Worker processes (``DMLC_NUM_WORKER``), at least 1.
    n_servers : int, default=1
        Parameter-server processes (``DMLC_NUM_SERVER``), at least 1.
    port : int, default=None
        The scheduler's port (``DMLC_PS_ROOT_PORT``); None picks a free one.
    timeout : float, default=None
        Stop everything after this many seconds (None: no limit).
    host : str, default='127.0.0.1'
        The scheduler's address (``DMLC_PS_ROOT_URI``).
    env : mapping, default=None
        Base environment of every process (``os.environ`` when None).

    Returns
    -------
    int
        0 when every worker exited 0.

    Raises
    ------
    InvalidParameterError
        For a bad count, port or timeout, or an empty command (before starting anything).
    LaunchError
        When a process failed or the time ran out; ``status`` is the exit status to use.
    """
    # One supervision loop (start, watch, stop the processes): split, its bookkeeping would be
    # shared between functions. About 30 of its lines are the docstring.
    problems = []
    if not command:
        problems.append("no worker command: put it after `--`, e.g. `repurpose launch "
                        "--workers 2 --servers 1 -- repurpose finetune --config job.yaml`")
    if not isinstance(n_workers, int) or n_workers < 1:
        problems.append(f"--workers must be at least 1, got {n_workers!r}")
    if not isinstance(n_servers, int) or n_servers < 1:
        problems.append(f"--servers must be at least 1, got {n_servers!r}: the parameter "
                        f"servers sum the workers' gradients, a distributed job needs one")
    if port is not None and not 0 < port < 65536:
        problems.append(f"--port must be in 1..65535, got {port!r}")
    if timeout is not None and not timeout > 0:
        problems.append(f"--timeout must be a positive number of seconds, got {timeout!r}")
    if problems:
        raise InvalidParameterError("repurpose launch: " + "; ".join(problems) + ".")
    port = free_port(host) if port is None else port
    base = dict(os.environ if env is None else env)
    base.update({"DMLC_PS_ROOT_URI": host, "DMLC_PS_ROOT_PORT": str(port),
                 "DMLC_NUM_SERVER": str(n_servers), "DMLC_NUM_WORKER": str(n_workers)})
    for key in ("DMLC_ROLE", "DMLC_NODE_HOST", "DMLC_SERVER_ID", "DMLC_WORKER_ID"):
        base.pop(key, None)
    role_cmd = [sys.executable, "-c", "import mxnet"]
    procs, names = [], {}

    def start(name, cmd, role):
        proc = subprocess.Popen(cmd, env={**base, "DMLC_ROLE": role}, start_new_session=True)
        procs.append(proc)
        names[proc.pid] = name
        return proc

    logger.info("Launching %d workers and %d servers, scheduler at %s:%d: %s", n_workers,
                n_servers, host, port, " ".join(command))
    started = time.monotonic()
    try:
        support = [start("the scheduler", role_cmd, "scheduler")]
        support += [start(f"server {i}", role_cmd, "server") for i in range(n_servers)]
        workers = [start(f"worker {i}", _worker_command(command), "worker")
                   for i in range(n_workers)]
        while True:
            failed = [w for w in workers if w.poll() not in (None, 0)]
            if failed:
                w = failed[0]
                others = sum(p.poll() is None for p in procs)
                raise LaunchError(
                    f"{names[w.pid]} of {n_workers} (pid {w.pid}) "
                    f"{_describe_status(w.returncode)}; stopped the other {others} processes "
                    f"of the job (the remaining workers "
                    f"would wait for it for ever). Its output above says why; with "
                    f"checkpoints, rerun the command with --resume to continue from the last "
                    f"finished epoch.", _shell_status(w.returncode))
            if all(w.poll() == 0 for w in workers):
                break
            # A scheduler/server exiting 0 ends a finished job (the workers are exiting).
            dead = [p for p in support if p.poll() not in (None, 0)]
            if dead:
                p = dead[0]
                raise LaunchError(
                    f"{names[p.pid]} (pid {p.pid}) {_describe_status(p.returncode)} while the "
                    f"workers were still running; stopped the job. Check that port {port} is "
                    f"free and that MXNet imports in this environment.", 1)
            if timeout is not None and time.monotonic() - started > timeout:
                raise LaunchError(
                    f"the job ran longer than --timeout {timeout:g} s; stopped all "
                    f"{sum(p.poll() is None for p in procs)} processes. Raise --timeout, or "
                    f"check the workers' output for a stalled worker.", 124)
            time.sleep(_POLL_S)
        deadline = time.monotonic() + SHUTDOWN_WAIT_S
        while any(p.poll() is None for p in support) and time.monotonic() < deadline:
            time.sleep(_POLL_S)
        logger.info("All %d workers finished in %.1f s", n_workers, time.monotonic() - started)
        return 0
    finally:
        _stop(procs)


def _run_launch(args):
    command = list(args.worker_command)
    if command and command[0] == "--":
        command = command[1:]
    try:
        return launch(command, args.workers, args.servers, port=args.port,
                      timeout=args.timeout, host=args.host)
    except LaunchError as err:
        print(f"repurpose launch: failed: {err}", file=sys.stderr)
        return err.status


def add_commands(commands, common):
    """Register ``launch`` on ``commands`` (argparse subparsers); ``common`` holds the flags
    of every command."""
    p = commands.add_parser(
        "launch", parents=[common],
        help="run a command as the workers of a distributed MXNet job on this "
             "machine (scheduler, servers and workers on loopback)",
        description="Start MXNet's scheduler, --servers parameter servers and --workers "
                    "workers running COMMAND, with the DMLC_* environment; stop the whole "
                    "job when a worker fails. See docs/guide/distributed_finetuning.md.")
    p.add_argument("--workers", type=int, required=True, help="worker processes")
    p.add_argument("--servers", type=int, default=1, help="parameter-server processes "
                                                          "(default 1)")
    p.add_argument("--port", type=int, default=None,
                   help="scheduler port (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="scheduler address (default loopback)")
    p.add_argument("--timeout", type=float, default=None,
                   help="stop the job after this many seconds (default: no limit)")
    p.add_argument("worker_command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...",
                   help="the worker command, e.g. repurpose finetune --config job.yaml")
    p.set_defaults(run=_run_launch)
