"""Data-parallel training across processes on MXNet's parameter server (``dist_sync``).

The pieces :func:`~repurpose.repurposers._training.train_network` needs when a fine-tuning
repurposer runs with ``kvstore='dist_sync'`` or ``'dist_async'``:

- :func:`check_kvstore` (the parameter) and :func:`launch_environment` (the ``DMLC_*``
  variables a launcher sets), both checked before any MXNet call, so that a process that was
  not started by a launcher gets a sentence saying how to start it instead of an abort inside
  ps-lite;
- :func:`get_kvstore`, one kvstore per process and type (a second ``mx.kv.create('dist_sync')``
  in the same process would register a second worker with the scheduler);
- :func:`worker_rows`, the rows of a global batch a worker computes;
- :class:`WorkerGroup`, the collective operations on top of the kvstore: sum over workers,
  broadcast from rank 0, barrier. :data:`LOCAL` is the one-process group (every operation the
  identity), so the training loop has one code path.

How ``dist_sync`` matches a single process: every worker draws the same epoch permutation
(seeded by ``(seed, epoch)``), cuts it into the same global batches of ``batch_size`` rows
and computes rows ``rank::n_workers`` of each. Gradients are summed by the kvstore (push, then
pull of the sum) and scaled by ``1 / global batch size``, so the step is the single-process
step up to float summation order. Every worker then applies the same optimizer to the same
summed gradient and holds identical weights; optimizer state stays on the workers, so
checkpoints and resume work as in one process. (The alternative, the optimizer on the
servers via ``kv.set_optimizer``, would move the optimizer state and the learning-rate
schedule out of reach of our checkpoints; MXNet's ``dist_async`` needs it, see
``._callbacks.WorkerSync``.)
"""
import logging
import os

import mxnet as mx
import numpy as np

from ..exceptions import InvalidParameterError

logger = logging.getLogger(__name__)

__all__ = ["KVSTORE_TYPES", "LOCAL", "WorkerGroup", "check_kvstore", "get_kvstore",
           "launch_environment", "worker_rows"]

#: Values of ``kvstore=`` that train across processes.
KVSTORE_TYPES = ("dist_sync", "dist_async")
#: The ``DMLC_*`` variables every process of a job needs.
DMLC_VARIABLES = ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER",
                  "DMLC_NUM_WORKER")
LAUNCH_HINT = ("Start the job with `repurpose launch --workers N --servers M -- <command>` "
               "(one machine), or with MXNet's tools/launch.py on several machines "
               "(docs/guide/distributed_finetuning.md)")

_KVSTORES = {}


def check_kvstore(value, name="kvstore"):
    """Validate ``kvstore=``: None or 'local' (one process), 'dist_sync' or 'dist_async'.

    Returns
    -------
    str or None
        The distributed type, or None for a single process.

    Examples
    --------
    >>> check_kvstore(None), check_kvstore('local'), check_kvstore('dist_sync')
    (None, None, 'dist_sync')
    """
    if value is None or (isinstance(value, str) and value == "local"):
        return None
    if isinstance(value, str) and value in KVSTORE_TYPES:
        return value
    raise InvalidParameterError(
        f"{name} must be None, 'local', 'dist_sync' or 'dist_async', got {value!r}.")


def launch_environment(environ=None, kvstore="dist_sync"):
    """Read and check the ``DMLC_*`` variables of a worker process.

    Parameters
    ----------
    environ : mapping, default=None
        ``os.environ`` when None.
    kvstore : str, default='dist_sync'
        Named in the messages.

    Returns
    -------
    dict
        ``role``, ``root_uri``, ``root_port``, ``n_servers``, ``n_workers``.

    Raises
    ------
    InvalidParameterError
        If a variable is missing or malformed, the role is not 'worker', or there is no
        server or no worker; the message says how to start the job.

    Examples
    --------
    >>> env = {'DMLC_ROLE': 'worker', 'DMLC_PS_ROOT_URI': '127.0.0.1',
    ...        'DMLC_PS_ROOT_PORT': '9091', 'DMLC_NUM_SERVER': '1', 'DMLC_NUM_WORKER': '2'}
    >>> launch_environment(env)['n_workers']
    2
    """
    env = os.environ if environ is None else environ
    missing = [k for k in DMLC_VARIABLES if not str(env.get(k, "")).strip()]
    if missing:
        raise InvalidParameterError(
            f"kvstore={kvstore!r} trains across processes, but this process lacks the "
            f"launcher's environment variables {', '.join(missing)}. {LAUNCH_HINT}.")
    problems = []
    role = env["DMLC_ROLE"]
    if role != "worker":
        problems.append(f"DMLC_ROLE is {role!r}; only a 'worker' process trains (the "
                        f"launcher starts the 'scheduler' and 'server' processes itself)")
    numbers = {}
    for key, low in (("DMLC_PS_ROOT_PORT", 1), ("DMLC_NUM_SERVER", 0), ("DMLC_NUM_WORKER", 0)):
        try:
            numbers[key] = int(env[key])
        except ValueError:
            problems.append(f"{key} must be an integer, got {env[key]!r}")
            continue
        if numbers[key] < low:
            problems.append(f"{key} must be >= {low}, got {numbers[key]}")
    if numbers.get("DMLC_NUM_SERVER") == 0:
        problems.append(f"DMLC_NUM_SERVER is 0: {kvstore} needs at least 1 parameter server "
                        f"to sum the gradients")
    if numbers.get("DMLC_NUM_WORKER") == 0:
        problems.append("DMLC_NUM_WORKER is 0: at least 1 worker must train")
    if problems:
        raise InvalidParameterError(
            f"The distributed-training environment is wrong: {'; '.join(problems)}. "
            f"{LAUNCH_HINT}.")
    return {"role": role, "root_uri": env["DMLC_PS_ROOT_URI"],
            "root_port": numbers["DMLC_PS_ROOT_PORT"],
            "n_servers": numbers["DMLC_NUM_SERVER"], "n_workers": numbers["DMLC_NUM_WORKER"]}


def get_kvstore(kvstore):
    """The process's kvstore of type ``kvstore`` (created on first use, after the checks).

    Creating it blocks until the scheduler has registered every worker and server.
    """
    kvstore = check_kvstore(kvstore)
    if kvstore is None:
        raise InvalidParameterError("get_kvstore needs 'dist_sync' or 'dist_async'.")
    if kvstore not in _KVSTORES:
        env = launch_environment(kvstore=kvstore)
        if any(k != kvstore for k in _KVSTORES):
            raise InvalidParameterError(
                f"This process already joined a {next(iter(_KVSTORES))!r} job; one process "
                f"takes part in one distributed job (asked for {kvstore!r}).")
        logger.info("Joining the %s job of %d workers and %d servers at %s:%d", kvstore,
                    env["n_workers"], env["n_servers"], env["root_uri"], env["root_port"])
        kv = mx.kv.create(kvstore)
        logger.info("This process is worker rank %d of %d", kv.rank, kv.num_workers)
        _KVSTORES[kvstore] = kv
    return _KVSTORES[kvstore]


def worker_rows(positions, rank, n_workers):
    """The part of one global batch that worker ``rank`` computes: ``positions[rank::n]``.

    The parts of all workers are disjoint and together are the whole batch, so the summed
    gradient is the single-process one; a worker may get no row of a small last batch.

    Examples
    --------
    >>> [worker_rows(list(range(5)), r, 2) for r in range(2)]
    [[0, 2, 4], [1, 3]]
    """
    return positions[rank::n_workers]


class WorkerGroup:
    """Collective operations of the workers of one job, on a dist kvstore.

    Keys are strings under a prefix unique to this group (``'fit3/'``): every worker creates
    its groups in the same order, so the prefixes agree, and several fits in one process do
    not collide.

    Parameters
    ----------
    kv : mx.kv.KVStore or None
        A 'dist_sync' / 'dist_async' kvstore; None is the one-process group.
    """

    _count = 0

    def __init__(self, kv=None):
        self.kv = kv
        self.rank = 0 if kv is None else int(kv.rank)
        self.n_workers = 1 if kv is None else int(kv.num_workers)
        self.type = None if kv is None else kv.type
        self.prefix = ""
        if kv is not None:
            WorkerGroup._count += 1
            self.prefix = f"fit{WorkerGroup._count}/"
        self._shapes = {}

    @property
    def distributed(self):
        return self.kv is not None

    @property
    def is_root(self):
        """True on rank 0, the worker that writes checkpoints and outputs."""
        return self.rank == 0

    def keys(self, name, arrays):
        """The kvstore keys of ``arrays`` under ``name``, initialised on their first use."""
        keys = [f"{self.prefix}{name}/{i}" for i in range(len(arrays))]
        new = [(k, a) for k, a in zip(keys, arrays) if k not in self._shapes]
        for k, a in new:
            self._shapes[k] = a.shape
        if new:
            # kv.init stores rank 0's values; every worker must call it (it is a barrier).
            self.kv.init([k for k, _ in new], [a.copyto(mx.cpu()) if a.context != mx.cpu()
                                               else a for _, a in new])
        return keys

    def sum(self, name, arrays):
        """Replace each NDArray of ``arrays`` by its sum over the workers (in place)."""
        if self.kv is None or not arrays:
            return arrays
        keys = self.keys(name, arrays)
        self.kv.push(keys, arrays)
        self.kv.pull(keys, out=arrays)
        return arrays

    def sum_numpy(self, name, values):
        """Sum a small float vector over the workers; returns a numpy float64 array."""
        values = np.asarray(values, dtype=np.float64)
        if self.kv is None:
            return values
        arr = mx.nd.array(values, dtype=np.float32)
        self.sum(name, [arr])
        return arr.asnumpy().astype(np.float64)

    def broadcast(self, name, arrays):
        """Give every worker rank 0's values of ``arrays`` (NDArrays, changed in place)."""
        if self.kv is None or not arrays:
            return arrays
        keys = [f"{self.prefix}{name}/{i}" for i in range(len(arrays))]
        self.kv.init(keys, [a.copyto(mx.cpu()) for a in arrays])
        for k, a in zip(keys, arrays):
            self._shapes[k] = a.shape
        self.kv.pull(keys, out=arrays)
        return arrays

    def broadcast_ints(self, name, values):
        """Rank 0's list of non-negative ints below 2**32 (sent exactly as 16-bit halves)."""
        values = [int(v) for v in values]
        if self.kv is None:
            return values
        halves = np.array([[v >> 16, v & 0xFFFF] for v in values], dtype=np.float32)
        arr = mx.nd.array(halves, dtype=np.float32)
        self.broadcast(name, [arr])
        got = arr.asnumpy().astype(np.int64)
        return [int(hi) << 16 | int(lo) for hi, lo in got]

    def barrier(self):
        """Wait until every worker gets here."""
        if self.kv is not None:
            self.kv._barrier()  # MXNet's own Module and Trainer use this private barrier


#: The one-process group.
LOCAL = WorkerGroup(None)
