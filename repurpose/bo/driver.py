"""The one trial driver: ask -> evaluate -> check -> tell -> callback, on a pool of workers.

:func:`drive` runs any :class:`Study` (something with ``more``, ``ask``, ``tell`` and
``cancel``) on a pool: in this process one trial at a time (:class:`SerialPool`), on a
``concurrent.futures.Executor`` (:class:`ExecutorPool`) or on a Dask cluster
(:class:`DaskPool`). It keeps up to ``n_workers`` trials running, tells each result as soon as
it arrives (the earliest submitted first when several are done), and on any exception,
``KeyboardInterrupt`` included, cancels the trials still running and forgets them, so that a
later ``ask`` may suggest them again.

:func:`run_optimizer` drives a :class:`~repurpose.bo.BayesianOptimizer` (used by
:func:`~repurpose.bo.minimize`, :meth:`~repurpose.bo.BayesianOptimizer.run` and
:func:`~repurpose.bo.parallel.run_parallel`); :class:`~repurpose.bo.HyperbandScheduler` drives
its own study on the same pools, with a channel that brings the trials' reports back to the
driver (:mod:`repurpose.bo._hyperband_pool`).

Dask is imported only when a Dask pool is opened (:mod:`repurpose._dask`).
"""
import abc
import concurrent.futures
import contextlib
import functools
import inspect
import logging
import time

import numpy as np

from .._dask import check_workers, connect_scheduler, import_distributed
from .._validation import is_number
from ..exceptions import InvalidParameterError
from .state import journal_lock

logger = logging.getLogger(__name__)

__all__ = ["Study", "drive", "evaluate", "SerialPool", "ExecutorPool", "DaskPool", "open_pool",
           "OptimizerStudy", "run_optimizer", "check_objective"]


def evaluate(objective, params):
    """Run one trial: ``(value, seconds, error)``; an exception becomes ``error`` (its type
    name and message), so that an exception that does not pickle cannot hide it when the trial
    ran on a worker."""
    start = time.perf_counter()
    try:
        value = objective(params)
    except Exception as err:  # noqa: BLE001 - a failed trial, told as such by the driver
        return None, time.perf_counter() - start, f"{type(err).__name__}: {err}"
    return value, time.perf_counter() - start, None


# ------------------------------------------------------------------------------- pools
# A pool runs ``function(shared, ticket)`` for each submitted ticket: ``submit`` returns a
# future, ``wait`` some of the given futures that are done, ``result`` a done future's value.
class SerialPool:
    """Trials run in this process, one at a time, when their result is asked for."""

    def __init__(self, function, shared):
        self.function, self.shared = function, shared

    def submit(self, ticket):
        return functools.partial(self.function, self.shared, ticket)  # run by result()

    @staticmethod
    def wait(futures):
        return futures[:1]

    @staticmethod
    def result(future):
        return future()

    @staticmethod
    def cancel(futures):
        pass


class ExecutorPool:
    """A ``concurrent.futures.Executor`` seen as a pool of trials."""

    def __init__(self, executor, function, shared):
        self.executor, self.function, self.shared = executor, function, shared

    def submit(self, ticket):
        return self.executor.submit(self.function, self.shared, ticket)

    @staticmethod
    def wait(futures):
        done, _ = concurrent.futures.wait(futures, return_when="FIRST_COMPLETED")
        return done

    @staticmethod
    def result(future):
        return future.result()

    @staticmethod
    def cancel(futures):
        for future in futures:
            future.cancel()


class DaskPool:
    """A ``distributed.Client`` seen as a pool of trials; ``shared`` is sent once."""

    def __init__(self, client, function, shared):
        self.distributed = import_distributed()
        self.client, self.function = client, function
        # Shipped to the workers once, not with every trial (it may hold data and a model).
        self.shared = client.scatter(shared, broadcast=True, hash=False)

    def submit(self, ticket):
        # pure=False: two trials with equal parameters are two runs, not one cached result.
        return self.client.submit(self.function, self.shared, ticket, pure=False)

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
        self.client.cancel([self.shared])


@contextlib.contextmanager
def open_pool(function, shared, client=None, n_workers=None):
    """``(pool, n_workers)`` running ``function(shared, ticket)`` on ``client``: a
    ``concurrent.futures.Executor`` (``n_workers`` required), a ``distributed.Client``, the
    address of a Dask scheduler (connected to, then closed), or None for a local Dask cluster
    of ``n_workers`` single-threaded processes (started and closed here). With Dask,
    ``n_workers`` defaults to the cluster's worker threads, and every worker is first checked
    to import this version of repurpose."""
    if isinstance(client, concurrent.futures.Executor):
        if n_workers is None:
            raise InvalidParameterError(
                "With a concurrent.futures.Executor as client, pass n_workers (the trials to "
                "keep running at once).")
        yield ExecutorPool(client, function, shared), n_workers
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
            client = stack.enter_context(connect_scheduler(client))
        elif not isinstance(client, import_distributed().Client):
            raise InvalidParameterError(
                f"client must be a distributed.Client, a scheduler address such as "
                f"'tcp://HOST:8786', a concurrent.futures.Executor or None, got "
                f"{type(client).__name__}.")
        n_threads = check_workers(client)
        pool = DaskPool(client, function, shared)
        try:
            yield pool, n_threads if n_workers is None else n_workers
        finally:
            pool.close()


# ------------------------------------------------------------------------------- driver
class Study(abc.ABC):
    """What :func:`drive` runs: hands out tickets (a trial to run) and takes their results."""

    @abc.abstractmethod
    def more(self, n_running):
        """Whether to start another trial while ``n_running`` trials are running."""

    @abc.abstractmethod
    def ask(self):
        """The ticket of the next trial (what the pool's function receives)."""

    @abc.abstractmethod
    def tell(self, ticket, outcome):
        """Record ``outcome`` (what the pool's function returned); return the trial that
        callbacks receive. May raise (e.g. for an invalid outcome): the run then stops."""

    @abc.abstractmethod
    def cancel(self, ticket):
        """Forget a ticket whose trial will never be told."""


def drive(study, pool, n_workers, callback=None):
    """Run ``study`` on ``pool`` with up to ``n_workers`` trials at once, until
    ``study.more`` says no and nothing runs; ``callback(trial)`` after each ``tell``.

    Results are told one at a time, the earliest submitted first, so each ticket depends only
    on the order in which trials finished. On any exception the running trials are cancelled
    (``pool.cancel``, ``study.cancel``) and the exception propagates.

    Examples
    --------
    >>> class Squares(Study):  # three trials; the pool's function squares the ticket
    ...     def __init__(self):
    ...         self.told = []
    ...     def more(self, n_running):
    ...         return len(self.told) + n_running < 3
    ...     def ask(self):
    ...         return len(self.told)
    ...     def tell(self, ticket, outcome):
    ...         self.told.append(outcome)
    ...         return outcome
    ...     def cancel(self, ticket):
    ...         pass
    >>> study = Squares()
    >>> drive(study, SerialPool(lambda power, x: x ** power, 2), n_workers=1)
    >>> study.told
    [0, 1, 4]
    """
    running = {}  # future -> (submission number, ticket)
    submitted = 0
    try:
        while True:
            while len(running) < n_workers and study.more(len(running)):
                ticket = study.ask()
                running[pool.submit(ticket)] = (submitted, ticket)
                submitted += 1
            if not running:
                return
            done = pool.wait(list(running))
            future = min(done, key=lambda f: running[f][0])
            outcome = pool.result(future)
            _, ticket = running.pop(future)
            trial = study.tell(ticket, outcome)
            if callback is not None:
                callback(trial)
    except BaseException:
        pool.cancel(list(running))
        for _, ticket in running.values():
            study.cancel(ticket)  # never told: a later ask may suggest it again
        raise


# ------------------------------------------------------------------------------- optimiser
class OptimizerStudy(Study):
    """A :class:`~repurpose.bo.BayesianOptimizer`'s study until it holds ``n_trials`` trials;
    tickets are parameter dicts and outcomes :func:`evaluate`'s ``(value, seconds, error)``."""

    def __init__(self, optimizer, n_trials):
        self.optimizer, self.n_trials = optimizer, n_trials

    def more(self, n_running):
        return len(self.optimizer.trials) + n_running < self.n_trials

    def ask(self):
        return self.optimizer.ask()

    def tell(self, ticket, outcome):
        value, seconds, error = outcome
        if error is not None:
            logger.warning("Objective failed for %s (%s); recorded as failed.", ticket, error)
            return self.optimizer.tell(ticket, None, seconds=seconds, error=error)
        # NaN and inf are floats that are not numbers to is_number: told as failed trials.
        if not (value is None or isinstance(value, (Exception, float, np.floating))
                or is_number(value)):
            raise InvalidParameterError(
                f"objective returned {value!r} of type {type(value).__name__} for {ticket}; "
                f"it must return a real number (NaN or raise for a failed trial).")
        return self.optimizer.tell(ticket, value, seconds=seconds)

    def cancel(self, ticket):
        self.optimizer.cancel(ticket)


def run_optimizer(optimizer, objective, n_trials, callback=None, parallel=False,
                  n_workers=None, client=None):
    """Evaluate ``objective`` for ``optimizer`` until it holds ``n_trials`` trials: in this
    process, or with ``parallel`` on the pool :func:`open_pool` opens for ``client`` and
    ``n_workers``. Return ``optimizer.result()``.

    The objective's signature is checked first (:func:`check_objective`), and a study with
    a journal holds its lock (:func:`~repurpose.bo.state.journal_lock`) while it runs."""
    check_objective(objective, optimizer.space, ("params",))
    with journal_lock(optimizer.state_path):
        if len(optimizer.trials) < n_trials:
            study = OptimizerStudy(optimizer, n_trials)
            if not parallel:
                drive(study, SerialPool(evaluate, objective), 1, callback)
                return optimizer.result()
            with open_pool(evaluate, objective, client, n_workers) as (pool, n_workers):
                logger.info("Running %d trials, %d at once", n_trials - len(optimizer.trials),
                            n_workers)
                drive(study, pool, n_workers, callback)
    return optimizer.result()


def check_objective(objective, space, arguments):
    """Raise InvalidParameterError, before any trial, if ``objective`` cannot be called with
    the positional ``arguments`` a trial passes (``('params',)``, or ``('params',
    'report')`` for early stopping): a wrong signature would otherwise fail every trial the
    same way. An objective whose signature cannot be read is let through; one that takes the
    arguments and raises TypeError inside still records a failed trial.

    Examples
    --------
    >>> from repurpose.bo import Real, SearchSpace
    >>> space = SearchSpace({'lr': Real(1e-4, 1e-1), 'wd': Real(0.0, 0.1)})
    >>> check_objective(lambda params: 0.0, space, ('params',))
    >>> def train(lr, wd):
    ...     return lr + wd
    >>> check_objective(train, space, ('params',))
    Traceback (most recent call last):
    ...
    repurpose.exceptions.InvalidParameterError: The objective train(lr, wd) cannot be called as
    train(params) (missing a required argument: 'wd'): ...
    """
    if not callable(objective):
        raise InvalidParameterError(
            f"objective must be a callable, got {objective!r} of type "
            f"{type(objective).__name__}.")
    try:
        signature = inspect.signature(objective)
    except (TypeError, ValueError):  # a builtin or an extension type: the trial will say
        return
    try:
        signature.bind(*arguments)
    except TypeError as err:
        name = getattr(objective, "__name__", None) or type(objective).__name__
        given = (f"one dict of the parameters {', '.join(map(repr, space.names))}"
                 if len(arguments) == 1 else
                 f"a dict of the parameters {', '.join(map(repr, space.names))} and "
                 f"{', '.join(arguments[1:])}(budget, value)")
        call = f"{name}({', '.join(arguments)})"
        fix = (f"lambda params: {name}(**params)" if len(arguments) == 1 else
               f"lambda params, report: {name}(report=report, **params)")
        raise InvalidParameterError(
            f"The objective {name}{signature} cannot be called as {call} ({err}): each "
            f"trial passes it {given}. Define it as def {name}({', '.join(arguments)}) and "
            f"read params[NAME], or pass {fix}.") from None
