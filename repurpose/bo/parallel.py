"""Asynchronous parallel trials: keep ``n_workers`` trials running, tell each as it finishes.

:func:`run_parallel` drives a :class:`~repurpose.bo.BayesianOptimizer` over a pool of
workers: it asks for as many suggestions as there are free workers (each conditioned on the
trials still running, by the optimiser's kriging believer), submits them, and as soon as one
finishes tells its result (appending it to the journal, if the study has one) and asks for the
next. Nothing waits for a whole batch.

The pool is a Dask cluster (a ``distributed.Client``, or the address of its scheduler), a
``concurrent.futures.Executor``, or, when none is given, a local Dask cluster of
``n_workers`` single-threaded processes started for the run. Dask is imported only when it is
used (``pip install -c constraints.txt '.[dask]'`` from a checkout). Before the first trial on
a Dask cluster, every worker is asked which repurpose it imports; missing or other versions
are an error naming the workers. The loop itself is :func:`repurpose.bo.driver.drive`, the
one the sequential study and the Hyperband scheduler run.

Determinism: each suggestion depends only on the trials told before it, in order, and on the
suggestions still pending (:mod:`repurpose.bo.loop`), so a parallel run is reproducible up to
the order in which trials finish; with one worker it is the sequential study.

Resume: only finished trials are in the journal. A driver killed mid-run loses the trials
that were running; the restarted study asks afresh for them (conditioned on every finished
trial), so finished trials are never run again.
"""
from .._dask import check_workers, worker_problems
from .._dask import connect_scheduler as connect
from .._validation import check_positive_int
from .driver import run_optimizer

# connect, check_workers and worker_problems live in repurpose._dask (shared with sharded
# feature extraction); they are re-exported here for their callers.
__all__ = ["run_parallel", "connect", "check_workers", "worker_problems"]


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
    return run_optimizer(optimizer, objective, n_trials, callback=callback, parallel=True,
                         n_workers=n_workers, client=client)
