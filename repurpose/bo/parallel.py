"""Asynchronous parallel trials: keep ``n_workers`` trials running, tell each as it finishes.

:func:`run_parallel` drives a :class:`~repurpose.bo.BayesianOptimizer` over a pool of
workers: it asks for as many suggestions as there are free workers (each conditioned on the
trials still running, by the optimiser's kriging believer), submits them, and as soon as one
finishes tells its result (appending it to the journal, if the study has one) and asks for the
next. Nothing waits for a whole batch.

The pool is a Dask cluster (a ``distributed.Client``, or the address of its scheduler), a
``concurrent.futures.Executor``, or, when none is given, a local Dask cluster of
``n_workers`` single-threaded processes started for the run. Dask is imported only here and
only when it is used (``pip install repurpose[dask]``). Before the first trial on a Dask
cluster, every worker is asked which repurpose it imports; missing or other versions are an
error naming the workers.

Determinism: each suggestion depends only on the trials told before it, in order, and on the
suggestions still pending (:mod:`repurpose.bo.loop`), so a parallel run is reproducible up to
the order in which trials finish; with one worker it is the sequential study.

Resume: only finished trials are in the journal. A driver killed mid-run loses the trials
that were running; the restarted study asks afresh for them (conditioned on every finished
trial), so finished trials are never run again.
"""
import concurrent.futures
import contextlib
import logging
import time

from .._dask import check_workers, import_distributed, worker_problems
from .._dask import connect_scheduler as connect
from .._validation import check_positive_int
from ..exceptions import InvalidParameterError

logger = logging.getLogger(__name__)

# connect, check_workers and worker_problems live in repurpose._dask (shared with sharded
# feature extraction); they are re-exported here for their callers.
__all__ = ["run_parallel", "connect", "check_workers", "worker_problems"]


def _evaluate(objective, params):
    """Run one trial on a worker: ``(value, seconds, error)``; an exception becomes
    ``error`` (its type name and message) so that unpicklable exceptions cannot hide it."""
    start = time.perf_counter()
    try:
        value = objective(params)
    except Exception as err:  # noqa: BLE001 - a failed trial, told as such by the driver
        return None, time.perf_counter() - start, f"{type(err).__name__}: {err}"
    return value, time.perf_counter() - start, None


class _ExecutorPool:
    """A ``concurrent.futures.Executor`` seen as a pool of trials."""

    def __init__(self, executor, objective):
        self.executor, self.objective = executor, objective

    def submit(self, params):
        return self.executor.submit(_evaluate, self.objective, params)

    def wait(self, futures):
        done, _ = concurrent.futures.wait(futures, return_when="FIRST_COMPLETED")
        return done

    @staticmethod
    def result(future):
        return future.result()

    @staticmethod
    def cancel(futures):
        for future in futures:
            future.cancel()


class _DaskPool:
    """A ``distributed.Client`` seen as a pool of trials; the objective is sent once."""

    def __init__(self, client, objective):
        self.distributed = import_distributed()
        self.client = client
        # Shipped to the workers once, not with every trial (it may hold data and a model).
        self.objective = client.scatter(objective, broadcast=True, hash=False)

    def submit(self, params):
        # pure=False: two trials with equal parameters are two runs, not one cached result.
        return self.client.submit(_evaluate, self.objective, params, pure=False)

    def wait(self, futures):
        with self.client.as_current():  # distributed.wait uses the current client
            return self.distributed.wait(list(futures), return_when="FIRST_COMPLETED").done

    @staticmethod
    def result(future):
        try:
            return future.result()
        except Exception as err:  # noqa: BLE001 - the worker died running it (KilledWorker)
            return None, None, f"{type(err).__name__}: {err}"

    def cancel(self, futures):
        if futures:
            self.client.cancel(list(futures))

    def close(self):
        self.client.cancel([self.objective])


@contextlib.contextmanager
def _pool(client, n_workers, objective):
    """``(pool, n_workers)`` for ``client`` (see :func:`run_parallel`); closes what it opens."""
    if isinstance(client, concurrent.futures.Executor):
        if n_workers is None:
            raise InvalidParameterError(
                "With a concurrent.futures.Executor as client, pass n_workers (the trials to "
                "keep running at once).")
        yield _ExecutorPool(client, objective), n_workers
        return
    with contextlib.ExitStack() as stack:
        if client is None:
            distributed = import_distributed()
            n = 1 if n_workers is None else n_workers
            logger.info("Starting a local Dask cluster of %d worker processes", n)
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0"))
            client = stack.enter_context(distributed.Client(cluster, set_as_default=False))
        elif isinstance(client, str):
            client = stack.enter_context(connect(client))
        elif not isinstance(client, import_distributed().Client):
            raise InvalidParameterError(
                f"client must be a distributed.Client, a scheduler address such as "
                f"'tcp://HOST:8786', a concurrent.futures.Executor or None, got "
                f"{type(client).__name__}.")
        n_threads = check_workers(client)
        pool = _DaskPool(client, objective)
        try:
            yield pool, n_threads if n_workers is None else n_workers
        finally:
            pool.close()


def _check_value(value, params):
    from .loop import _is_number

    if not (value is None or _is_number(value)):
        raise InvalidParameterError(
            f"objective returned {value!r} of type {type(value).__name__} for {params}; it "
            f"must return a real number (NaN or raise for a failed trial).")


def run_parallel(optimizer, objective, n_trials, n_workers=None, client=None, callback=None):
    """Run ``optimizer``'s study with up to ``n_workers`` trials at once, asynchronously.

    Parameters
    ----------
    optimizer : BayesianOptimizer
        Possibly resumed (its told trials count towards ``n_trials``); with a
        ``state_path``, every finished trial is appended to the journal as it is told.
    objective : callable
        ``objective(params) -> float``; sent to the workers, so it must pickle (closures do,
        through Dask's cloudpickle; a ``concurrent.futures`` process pool needs a module-level
        function).
    n_trials : int
        Trials recorded in total.
    n_workers : int, default=None
        Trials running at once. None: with a Dask client, its worker threads; with no
        client, 1.
    client : distributed.Client, str, concurrent.futures.Executor or None, default=None
        Where trials run: a Dask client, a scheduler address (connected with
        :func:`connect`), an executor, or None for a local Dask cluster of ``n_workers``
        processes (started and closed here).
    callback : callable, default=None
        ``callback(trial)`` after each trial is told, in the order they finish.

    Returns
    -------
    OptimizeResult

    Raises
    ------
    ClusterError
        If the scheduler at ``client`` does not answer (also a ``ConnectionError``), or Dask
        workers lack repurpose or have another version of it (also a ``RuntimeError``).
    InvalidParameterError
        If the objective returns something that is not a number (the running trials are
        cancelled and forgotten).

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> from repurpose.bo import BayesianOptimizer, Real, SearchSpace
    >>> opt = BayesianOptimizer(SearchSpace({'x': Real(0.0, 1.0)}), seed=0)
    >>> with ThreadPoolExecutor(2) as pool:
    ...     res = run_parallel(opt, lambda p: (p['x'] - 0.5) ** 2, 6, n_workers=2,
    ...                        client=pool)
    >>> len(res.history)
    6
    """
    n_trials = check_positive_int(n_trials, "n_trials")
    if n_workers is not None:
        n_workers = check_positive_int(n_workers, "n_workers")
    if len(optimizer.trials) >= n_trials:
        return optimizer.result()
    with _pool(client, n_workers, objective) as (pool, n_workers):
        logger.info("Running %d trials, %d at once", n_trials - len(optimizer.trials),
                    n_workers)
        running = {}  # future -> (submission number, params)
        submitted = 0
        try:
            while len(optimizer.trials) < n_trials:
                while (len(running) < n_workers
                       and len(optimizer.trials) + len(running) < n_trials):
                    params = optimizer.ask()
                    running[pool.submit(params)] = (submitted, params)
                    submitted += 1
                done = pool.wait(list(running))
                # One at a time, the earliest submitted first: tell it, then refill the freed
                # worker, so each suggestion depends only on the order trials finished in.
                future = min(done, key=lambda f: running[f][0])
                _, params = running.pop(future)
                value, seconds, error = pool.result(future)
                if error is None:
                    _check_value(value, params)
                    trial = optimizer.tell(params, value, seconds=seconds)
                else:
                    logger.warning("Objective failed for %s (%s); recorded as failed.",
                                   params, error)
                    trial = optimizer._record(params, None, "failed", seconds, error)
                if callback is not None:
                    callback(trial)
        except BaseException:
            pool.cancel(list(running))
            for _, params in running.values():
                optimizer.cancel(params)  # never told: a later ask may suggest it again
            raise
    return optimizer.result()

