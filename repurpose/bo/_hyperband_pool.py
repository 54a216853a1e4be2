"""How :class:`~repurpose.bo.HyperbandScheduler` runs its trials: one at a time in this
process, or ``k`` at once on a thread pool, a process pool or a Dask cluster, while every
rung and learning-curve decision is taken here, in the driver.

A trial runs :func:`run_trial` wherever the pool puts it. Each ``report(budget, value)`` of
the objective is checked there (the protocol errors of the module docstring of
:mod:`repurpose.bo.scheduler`), then sent to the driver through a *channel*, and the driver's
answer comes back: go on, or stop (``report`` then raises :class:`_Stop`). The driver keeps
the trial's :class:`~repurpose.bo.ScheduledTrial` (budgets, values, status, stop reason) as
the reports arrive; the worker returns only ``(protocol error, seconds, error)``.

Channels, one per kind of pool (anything else is refused, naming what is supported):

* in this process (the serial path, ``concurrent.futures.ThreadPoolExecutor``): a direct call
  of :meth:`ScheduleStudy.answer`, which takes the study's lock;
* ``concurrent.futures.ProcessPoolExecutor``: an authenticated socket from
  :mod:`multiprocessing.connection` (``Listener`` here, ``Client`` in the worker), answered
  by a thread of the driver (:class:`_SocketServer`);
* Dask (a ``distributed.Client``, a scheduler address, or a local cluster): ``distributed``
  Queues held by the Dask scheduler (:class:`_DaskServer`).

:class:`ScheduleStudy` is the :class:`~repurpose.bo.driver.Study` that
:func:`~repurpose.bo.driver.drive` runs: it hands out tickets ``(trial id, params,
bracket)``, answers reports, and records finished trials through the scheduler.
"""
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import threading
import time
import uuid
from multiprocessing import connection
from typing import Any, List, Optional

from .._dask import import_distributed
from .._validation import is_number
from ..exceptions import InvalidParameterError
from .driver import SerialPool, Study, drive, open_pool

logger = logging.getLogger(__name__)

#: Seconds a worker waits for the driver's answer to one report before it gives the trial
#: up as failed (the driver answers in well under a second; this catches a dead driver on a
#: Dask cluster, where no closed socket says so).
REPLY_TIMEOUT = 300.0


class _Stop(BaseException):
    """Raised by ``report`` to end a trial the scheduler stopped; caught by the scheduler."""


class _ChannelLost(Exception):
    """The driver did not answer a report (it died, or the channel broke)."""


def check_real(value, name, minimum):
    """``float(value)``, or InvalidParameterError if it is not a real number >= minimum."""
    if not is_number(value) or value < minimum:
        raise InvalidParameterError(f"{name} must be a real number >= {minimum}, got {value!r}.")
    return float(value)


def _check_report(budget, value, last_budget, max_budget):
    """The checked ``(budget, value)`` of one report, as floats."""
    budget = check_real(budget, "report: budget", 0)
    if budget <= 0 or budget > max_budget * (1 + 1e-12):
        raise InvalidParameterError(
            f"report: budget must be in (0, max_budget={max_budget}], got {budget!r}.")
    if last_budget is not None and budget <= last_budget:
        raise InvalidParameterError(
            f"report: budgets must strictly increase, got {budget!r} after {last_budget!r}.")
    if not is_number(value):
        raise InvalidParameterError(
            f"report: value must be a finite real number, got {value!r} of type "
            f"{type(value).__name__}. Raise in the objective for a failed trial.")
    return budget, float(value)


def run_trial(shared, ticket):
    """Run one trial (on a worker or here): ``objective(params, report)`` with a ``report``
    that asks the driver, through ``channel``, whether to go on.

    Returns ``(protocol_error, seconds, error)``: the InvalidParameterError a bad report
    raised (the driver raises it again), the trial's wall-clock seconds, and what the
    objective raised (``'Type: message'``) or why the driver could not be reached. The shape
    is that of :func:`~repurpose.bo.driver.evaluate`'s ``(value, seconds, error)``, which
    :class:`~repurpose.bo.driver.DaskPool` returns as ``(None, None, error)`` for a trial
    whose worker died: a failed trial.
    """
    objective, channel, max_budget = shared
    trial_id, params, _ = ticket
    attempt = uuid.uuid4().hex  # a trial that Dask runs again (its worker died) restarts
    state = {"last": None, "stopped": False, "protocol_error": None, "lost": None}
    session = channel.session(trial_id)
    start = time.perf_counter()
    lost = session.start()
    if lost is not None:  # the run is over (this trial was cancelled): do not train
        return None, time.perf_counter() - start, lost

    def report(budget, value):
        if state["stopped"]:
            raise _Stop()
        try:
            budget, value = _check_report(budget, value, state["last"], max_budget)
        except InvalidParameterError as err:
            state["protocol_error"] = err
            raise
        state["last"] = budget
        try:
            answer = session.report(trial_id, attempt, budget, value)
        except _ChannelLost as err:
            state["lost"] = str(err)
            answer = ["stop", "lost"]
        if answer is None:
            return True
        state["stopped"] = True
        if answer[0] == "error":  # the driver failed to decide: a failed trial
            state["lost"] = answer[1]
        raise _Stop()

    error = None
    try:
        objective(params, report)
    except _Stop:
        pass
    except Exception as err:  # noqa: BLE001 - a failed trial, recorded by the driver
        error = f"{type(err).__name__}: {err}"
    finally:
        session.close()
    return state["protocol_error"], time.perf_counter() - start, state["lost"] or error


# ------------------------------------------------------------------------------- channels
# A channel is what the workers hold (it pickles, except the direct one, which never leaves
# this process); channel.session(trial_id) gives start() -> None or why the driver cannot be
# reached, report(trial_id, attempt, budget, value) -> answer, and close(). Answers: None
# (go on), ['stop', reason] or ['error', message].
class _DirectChannel:
    """Reports answered by a call in this process (serial runs and thread pools)."""

    def __init__(self, answer):
        self.answer = answer

    def session(self, trial_id):
        return self

    @staticmethod
    def start():
        return None

    def report(self, trial_id, attempt, budget, value):
        return self.answer(trial_id, attempt, budget, value)

    def close(self):
        pass


class _SocketChannel:
    """The worker's end of :class:`_SocketServer`: one connection per trial."""

    def __init__(self, address, authkey):
        self.address, self.authkey = address, authkey

    def session(self, trial_id):
        return _SocketSession(self.address, self.authkey)


class _SocketSession:
    def __init__(self, address, authkey):
        self.address, self.authkey, self.conn = address, authkey, None

    def start(self):
        try:
            self.conn = connection.Client(self.address, authkey=self.authkey)
        except (OSError, EOFError, connection.AuthenticationError) as err:
            return self._lost("the trial could not reach", err)
        return None

    def report(self, trial_id, attempt, budget, value):
        try:
            self.conn.send((trial_id, attempt, budget, value))
            if not self.conn.poll(REPLY_TIMEOUT):
                raise TimeoutError(f"no answer within {REPLY_TIMEOUT:g} s")
            return self.conn.recv()
        except (OSError, EOFError) as err:
            raise _ChannelLost(self._lost(f"report({budget:g}, ...) could not reach", err))

    def _lost(self, what, err):
        return (f"{what} the Hyperband driver at {self.address!r} ({type(err).__name__}: "
                f"{err}); the run it belonged to is over.")

    def close(self):
        if self.conn is not None:
            self.conn.close()


class _SocketServer:
    """Answers the reports of trials on a ``ProcessPoolExecutor``.

    Why a socket: the process pool's workers are children of this process, on this
    machine, so ``multiprocessing.connection`` (the transport of multiprocessing's own
    Managers, with the same HMAC challenge on a random key) reaches them directly. Unlike a
    ``multiprocessing.Manager``, it needs no server process of its own, which a killed driver
    would leave behind; the decisions run in a thread of the driver, next to the rungs they
    read; and when the driver dies, the workers' next report finds the socket closed and the
    trial ends (failed) instead of waiting."""

    def __init__(self, answer):
        self.answer = answer
        self.authkey = os.urandom(32)
        # The platform's local family (a Unix socket in a temporary folder; a named pipe on
        # Windows), not TCP: forked workers inherit the listening socket, and only a path
        # that close() removes makes their later connections fail at once instead of
        # waiting in its backlog for a handshake that never comes.
        self.listener = connection.Listener(authkey=self.authkey)
        self.closed = threading.Event()
        self.thread = None

    def channel(self):
        return _SocketChannel(self.listener.address, self.authkey)

    def start(self, pool):
        self.thread = threading.Thread(target=self._accept, daemon=True,
                                       name="repurpose-hyperband-accept")
        self.thread.start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                conn = self.listener.accept()
            except (OSError, EOFError, connection.AuthenticationError) as err:
                if self.closed.is_set():
                    return
                logger.debug("Hyperband driver: refused a connection (%s)", err)
                continue
            if self.closed.is_set():
                conn.close()
                return
            # One thread per running trial; it ends when the trial closes its connection.
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="repurpose-hyperband-report").start()

    def _serve(self, conn):
        with conn:
            while True:
                try:
                    trial_id, attempt, budget, value = conn.recv()
                except (OSError, EOFError):
                    return
                try:
                    conn.send(_answer_safely(self.answer, trial_id, attempt, budget, value))
                except OSError:
                    return

    def cancel(self, trial_id):
        pass  # its next report is answered 'stop' (the trial is unknown)

    def finish(self, trial_id):
        pass

    def close(self):
        if self.closed.is_set():
            return
        self.closed.set()
        if self.thread is not None:
            try:  # wake the accepting thread, which then sees closed
                connection.Client(self.listener.address, authkey=self.authkey).close()
            except (OSError, EOFError, connection.AuthenticationError):
                pass
            self.thread.join(10)
        self.listener.close()


class _DaskChannel:
    """The worker's end of :class:`_DaskServer`."""

    def __init__(self, prefix):
        self.prefix = prefix

    def session(self, trial_id):
        return _DaskSession(self.prefix, trial_id)


class _DaskSession:
    def __init__(self, prefix, trial_id):
        distributed = import_distributed()
        # In a task, a Queue talks to the scheduler through the worker's client.
        self.requests = distributed.Queue(f"{prefix}-requests")
        self.replies = distributed.Queue(f"{prefix}-{trial_id}")

    @staticmethod
    def start():
        return None  # Dask does not start the tasks of a finished run

    def report(self, trial_id, attempt, budget, value):
        self.requests.put([trial_id, attempt, budget, value])
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            try:
                to_attempt, to_budget, answer = self.replies.get(
                    timeout=max(deadline - time.monotonic(), 0.001))
            except TimeoutError as err:
                raise _ChannelLost(
                    f"report({budget:g}, ...): the Hyperband driver did not answer within "
                    f"{REPLY_TIMEOUT:g} s; the trial is given up.") from err
            # Skip an answer to an earlier run of this trial (Dask ran it again after its
            # worker died while waiting); to_attempt None: the run cancelled the trial.
            if to_attempt is None or (to_attempt, to_budget) == (attempt, budget):
                return answer

    def close(self):
        self.requests.close()
        self.replies.close()


class _DaskServer:
    """Answers the reports of trials on a Dask cluster.

    Why Queues: ``distributed.Queue`` goes through the Dask scheduler, which every worker
    reaches wherever it runs (another machine, TLS), where a socket back to the driver may
    be blocked; the messages are a few numbers. A request queue carries every report to a
    thread of the driver, and one queue per trial carries the answers back (and a 'stop' to
    a cancelled trial). Not a ``Variable`` (it keeps only its last value), nor an ``Actor``
    (it lives on a worker, so the decisions and the rungs would leave the driver)."""

    def __init__(self, answer):
        self.answer = answer
        self.prefix = f"repurpose-hyperband-{uuid.uuid4().hex}"
        self.replies, self.lock = {}, threading.Lock()
        self.requests = self.client = self.thread = None

    def channel(self):
        return _DaskChannel(self.prefix)

    def start(self, pool):
        self.client = pool.client
        distributed = import_distributed()
        self.requests = distributed.Queue(f"{self.prefix}-requests", client=self.client)
        self.thread = threading.Thread(target=self._serve, daemon=True,
                                       name="repurpose-hyperband-reports")
        self.thread.start()

    def _serve(self):
        while True:
            try:
                message = self.requests.get(timeout=5)
            except TimeoutError:
                continue
            except Exception as err:  # noqa: BLE001 - the client closed under us: done
                logger.debug("Hyperband driver: stopped reading reports (%s)", err)
                return
            if message is None:  # close() says so
                return
            trial_id, attempt, budget, value = message
            self._reply(trial_id, [attempt, budget, _answer_safely(
                self.answer, trial_id, attempt, budget, value)])

    def _reply(self, trial_id, answer):
        with self.lock:
            queue = self.replies.get(trial_id)
            if queue is None:
                queue = self.replies[trial_id] = import_distributed().Queue(
                    f"{self.prefix}-{trial_id}", client=self.client)
        queue.put(answer)

    def cancel(self, trial_id):
        """Tell a cancelled trial that may still be running (Dask cannot stop a running
        task) to stop at its next report."""
        try:
            self._reply(trial_id, [None, None, ["stop", "cancelled"]])
        except Exception as err:  # noqa: BLE001 - the cluster is gone: nothing runs there
            logger.debug("Hyperband driver: could not stop trial %s (%s)", trial_id, err)

    def finish(self, trial_id):
        with self.lock:
            queue = self.replies.pop(trial_id, None)
        if queue is not None:
            queue.close()

    def close(self):
        if self.thread is None:
            return
        with contextlib.suppress(Exception):  # the client may be closed already
            self.requests.put(None)
        self.thread.join(10)
        self.thread = None
        with contextlib.suppress(Exception):
            self.requests.close()
        for trial_id in list(self.replies):
            with contextlib.suppress(Exception):
                self.finish(trial_id)


def _answer_safely(answer, trial_id, attempt, budget, value):
    """``answer(...)`` for a remote trial; an exception becomes an ``['error', ...]`` answer
    (the trial fails with it) instead of leaving the worker waiting."""
    try:
        return answer(trial_id, attempt, budget, value)
    except Exception as err:  # noqa: BLE001 - logged here, recorded with the trial
        logger.exception("Hyperband driver: deciding on a report of trial %s failed", trial_id)
        return ["error", f"the driver failed to decide ({type(err).__name__}: {err})"]


def _server_for(client):
    """The server class for ``client`` (None for threads), or InvalidParameterError."""
    if isinstance(client, concurrent.futures.ThreadPoolExecutor):
        return None
    if isinstance(client, concurrent.futures.ProcessPoolExecutor):
        return _SocketServer
    if isinstance(client, concurrent.futures.Executor):
        raise InvalidParameterError(
            f"client: a {type(client).__name__} cannot run Hyperband trials, whose reports "
            f"must reach this process while they run. Pass a concurrent.futures."
            f"ThreadPoolExecutor or ProcessPoolExecutor, a distributed.Client (not its "
            f"get_executor()), the address of a Dask scheduler, or None with n_workers for a "
            f"local Dask cluster.")
    return _DaskServer  # a Client, an address or None; open_pool checks the rest


# ------------------------------------------------------------------------------- study
@dataclasses.dataclass
class _Running:
    """The driver's record of a running trial: what the scheduler's decisions need."""

    trial: Any  # ScheduledTrial
    attempt: Optional[str] = None
    next_rung: int = 0
    checked_n: int = 0  # points when the curve model was last fitted
    entries: List[list] = dataclasses.field(default_factory=list)  # [bracket, rung, value]


class ScheduleStudy(Study):
    """A :meth:`~repurpose.bo.HyperbandScheduler.run` as the driver's study: tickets are
    ``(trial id, params, bracket)``, outcomes :func:`run_trial`'s ``(protocol error,
    seconds, error)``. The lock guards the rungs, the running trials and the history, which
    reports (from worker threads or the channel's thread) read while trials are told."""

    def __init__(self, scheduler, n_trials, total_budget):
        self.scheduler, self.n_trials, self.total_budget = scheduler, n_trials, total_budget
        self.lock = threading.Lock()
        self.running = {}  # trial id -> _Running
        self.n_asked = 0
        self.server = None

    def more(self, n_running):
        history = self.scheduler.history
        if self.n_trials is not None and len(history) + n_running >= self.n_trials:
            return False
        if self.total_budget is None:
            return True
        # A running trial may use up to max_budget: start one only if even then the budget
        # is not reached, so that, as in a serial run, every trial but the last one started
        # fits in total_budget.
        used = sum(t.budget_used for t in history)
        return used + n_running * self.scheduler.max_budget < self.total_budget

    def ask(self):
        sched = self.scheduler
        params = sched.optimizer.ask()  # conditioned on the running trials (pending points)
        with self.lock:
            started = len(sched.history) + len(self.running)
            bracket = sched._bracket_of(started)
            trial_id = self.n_asked
            self.n_asked += 1
            self.running[trial_id] = _Running(sched._new_trial(params, bracket))
        return trial_id, params, bracket

    def answer(self, trial_id, attempt, budget, value):
        """The driver's answer to one report: None (go on) or ``['stop', reason]``."""
        with self.lock:
            run = self.running.get(trial_id)
            if run is None:  # cancelled (KeyboardInterrupt, an error elsewhere)
                return ["stop", "cancelled"]
            if run.attempt != attempt:
                if run.attempt is not None:  # run again after its worker died: start afresh
                    logger.warning("Trial %s restarted on another worker", run.trial.params)
                    self.scheduler._forget_entries(run.entries)
                    run = self.running[trial_id] = _Running(
                        self.scheduler._new_trial(run.trial.params, run.trial.bracket))
                run.attempt = attempt
            reason = self.scheduler._decide(run, budget, value)
        return None if reason is None else ["stop", reason]

    def tell(self, ticket, outcome):
        trial_id, params, _ = ticket
        protocol_error, seconds, error = outcome
        if self.server is not None:
            self.server.finish(trial_id)
        with self.lock:
            run = self.running.pop(trial_id)
            if protocol_error is not None:
                self.scheduler._forget_trial(params, run.entries)
                raise protocol_error
            return self.scheduler._record(run.trial, seconds, error, run.entries)

    def cancel(self, ticket):  # KeyboardInterrupt, a protocol error: no trial recorded
        trial_id, params, _ = ticket
        with self.lock:
            run = self.running.pop(trial_id, None)
            self.scheduler._forget_trial(params, [] if run is None else run.entries)
        if self.server is not None:
            self.server.cancel(trial_id)
            self.server.finish(trial_id)


def run_schedule(scheduler, objective, n_trials, total_budget, callback=None, n_workers=None,
                 client=None):
    """Run ``scheduler``'s trials until ``n_trials`` or ``total_budget`` (see
    :meth:`~repurpose.bo.HyperbandScheduler.run`): in this process when ``client`` is None
    and ``n_workers`` is None or 1, else on the pool :func:`~repurpose.bo.driver.open_pool`
    opens, with the channel that pool needs."""
    study = ScheduleStudy(scheduler, n_trials, total_budget)
    if client is None and n_workers in (None, 1):
        shared = (objective, _DirectChannel(study.answer), scheduler.max_budget)
        drive(study, SerialPool(run_trial, shared), 1, callback)
        return
    server_class = _server_for(client)
    server = None if server_class is None else server_class(study.answer)
    channel = _DirectChannel(study.answer) if server is None else server.channel()
    study.server = server
    try:
        with open_pool(run_trial, (objective, channel, scheduler.max_budget), client,
                       n_workers) as (pool, n_workers):
            if server is not None:
                server.start(pool)
            logger.info("Running Hyperband trials, %d at once", n_workers)
            try:
                drive(study, pool, n_workers, callback)
            finally:
                if server is not None:  # before open_pool closes a client it opened
                    server.close()
    finally:
        if server is not None:  # idempotent; the socket listens from before the pool opens
            server.close()
