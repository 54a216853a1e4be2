"""Early stopping of trials that report intermediate values: Hyperband brackets of
(asynchronous) successive halving plus learning-curve extrapolation, with the configurations
chosen by :class:`~repurpose.bo.BayesianOptimizer`.

Protocol. The objective is ``objective(params, report)``: it trains and calls
``report(budget, value)`` after each epoch (budgets strictly increasing, at most
``max_budget``). When the scheduler decides to stop the trial, ``report`` raises a private
exception (a ``BaseException``, so ``except Exception`` in the objective does not swallow it)
that the scheduler catches; put clean-up in ``finally``. The objective's return value is
ignored: a trial's result is its last reported value. ``report`` returns True otherwise.

Stopping rules, applied at every report below ``max_budget``:

* rung (successive halving): trial ``i`` belongs to a Hyperband bracket ``s`` (brackets are
  handed out as Hyperband does: ``ceil((s_max+1)/(s+1) * eta**s)`` trials to bracket
  ``s = s_max``, then ``s_max - 1`` ... 0, then again); bracket ``s`` has rungs at budgets
  ``max_budget * eta**-k`` for ``k = s .. 1``. At a rung the trial goes on only if its value is
  among the best ``max(1, n // eta)`` of the ``n`` trials of its bracket that reached the rung
  (itself included), as in asynchronous successive halving (Li et al. 2020);
* learning curve: with enough points, the :class:`~repurpose.bo.curves.LearningCurveModel`
  predicts the value at ``max_budget``; the trial stops when even the optimistic bound
  ``mean - kappa * std`` is worse than the best final value of a completed trial
  (Domhan et al. 2015).

The optimiser is told, for a stopped trial, the predicted final value (the curve model's mean,
or, with too few points, the last value shifted by the median improvement that completed
trials made from that budget to ``max_budget``, or the last value itself), but never a value
better than the best completed trial's (the trial was stopped for looking worse), so the
surrogate keeps learning about the final quality.

Resume. With ``state_path``, every finished trial (parameters, bracket, budgets, values,
status, stop reason, told value, and the values it left at the rungs) is appended to a
JSON-lines journal (:mod:`repurpose.bo.state`); a scheduler built with the same settings and
``state_path`` replays it and continues where the killed run stopped, ending as an
uninterrupted run would. A trial that was running when the process died runs again.
"""
import dataclasses
import logging
import math
import os
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .._validation import check_positive_int, is_number
from ..exceptions import InvalidParameterError
from .curves import LearningCurveModel
from .driver import SerialPool, Study, check_objective, drive
from .loop import BayesianOptimizer
from .space import SearchSpace
from .state import (SCHEDULE, JournalWriter, check_same_settings, decode_float, encode_float,
                    journal_header, journal_lock, read_journal, schedule_record, schedule_trials)

logger = logging.getLogger(__name__)

__all__ = ["HyperbandScheduler", "minimize_with_early_stopping", "EarlyStoppingResult",
           "ScheduledTrial"]


class _Stop(BaseException):
    """Raised by ``report`` to end a trial the scheduler stopped; caught by the scheduler."""


@dataclasses.dataclass
class ScheduledTrial:
    """One configuration's run. ``status``: ``'completed'`` (ran until the objective returned),
    ``'stopped'`` (by the scheduler: ``stop_reason`` is ``'rung'`` or ``'curve'``) or
    ``'failed'`` (raised, or reported nothing). ``told_value`` is what the optimiser was told;
    ``predicted_final``/``predicted_std`` the extrapolation used for a stopped trial.

    The scheduler builds these (:attr:`HyperbandScheduler.history`,
    :attr:`EarlyStoppingResult.history`); the fields are also its attributes.

    Parameters
    ----------
    params : dict
        The configuration, by parameter name.
    bracket : int
        Its Hyperband bracket ``s`` (rungs at ``max_budget * eta**-k``, ``k = s .. 1``).
    budgets, values : list of float
        The reported ``(budget, value)`` points, in order.
    status : {'completed', 'stopped', 'failed'}, default='completed'
        How the trial ended.
    stop_reason : {'rung', 'curve', None}, default=None
        Why a stopped trial was stopped: successive halving or the learning-curve rule.
    told_value : float, default=None
        The value the optimiser was told (the last value, or the predicted final value of a
        stopped trial); None if it was not told one.
    predicted_final, predicted_std : float, default=None
        The extrapolated final value of a stopped trial and its standard deviation.
    error : str, default=None
        What went wrong in a failed trial.
    seconds : float, default=None
        Wall-clock time of the trial.

    Examples
    --------
    >>> trial = ScheduledTrial(params={'lr': 0.1}, bracket=1, budgets=[1.0, 3.0],
    ...                        values=[0.9, 0.7], status='stopped', stop_reason='rung',
    ...                        told_value=0.65, predicted_final=0.65)
    >>> trial.budget_used
    3.0
    """

    params: Dict[str, Any]
    bracket: int
    budgets: List[float]
    values: List[float]
    status: str = "completed"
    stop_reason: Optional[str] = None
    told_value: Optional[float] = None
    predicted_final: Optional[float] = None
    predicted_std: Optional[float] = None
    error: Optional[str] = None
    seconds: Optional[float] = None

    @property
    def budget_used(self):
        """The last budget reported (0 if none)."""
        return self.budgets[-1] if self.budgets else 0.0


@dataclasses.dataclass
class EarlyStoppingResult:
    """Best completed trial (None if none completed), the history, and the total budget used
    (sum over trials of the last budget each reported).

    Returned by :func:`minimize_with_early_stopping` and :meth:`HyperbandScheduler.run`; the
    fields are also its attributes.

    Parameters
    ----------
    best_params : dict or None
        Parameters of the best completed trial (judged by its last value).
    best_value : float or None
        Its last reported value.
    history : list of ScheduledTrial
        Every trial, in the order they finished.
    total_budget_used : float
        Sum over trials of the last budget each reported.

    Examples
    --------
    >>> from repurpose.bo import Real, SearchSpace
    >>> def train(params, report):
    ...     for epoch in range(1, 4):
    ...         report(epoch, params["x"] ** 2 + 1.0 / epoch)
    >>> res = minimize_with_early_stopping(train, SearchSpace({"x": Real(-1.0, 1.0)}),
    ...                                    max_budget=3, n_trials=4, seed=0)
    >>> [t.status for t in res.history], res.total_budget_used
    (['completed', 'stopped', 'completed', 'completed'], 10.0)
    >>> res.best_value == min(t.values[-1] for t in res.history if t.status == 'completed')
    True
    """

    best_params: Optional[Dict[str, Any]]
    best_value: Optional[float]
    history: List[ScheduledTrial]
    total_budget_used: float


def _check_real(value, name, minimum):
    if not is_number(value) or value < minimum:
        raise InvalidParameterError(f"{name} must be a real number >= {minimum}, got {value!r}.")
    return float(value)


class HyperbandScheduler:
    """Hyperband / successive halving with learning-curve stopping over a BO sampler.

    Parameters
    ----------
    space : SearchSpace
        Parameters to search over.
    max_budget : float
        The full budget of a trial (e.g. epochs), >= 1.
    eta : int, default=3
        Halving rate: a rung keeps the best ``1/eta`` of its trials; >= 2.
    min_budget : float, default=1
        The smallest rung budget; sets the number of brackets
        ``s_max = floor(log_eta(max_budget / min_budget))``.
    seed : int, default=None
        Seeds the optimiser (the scheduler itself draws no random numbers).
    maximize : bool, default=False
        Maximise the reported values instead of minimising them.
    kappa : float, default=1.645
        Width of the optimistic bound of the curve rule (one-sided 95 %); ``inf`` disables it.
    curve_model : LearningCurveModel, default=None
        The extrapolation model; the default families if None.
    optimizer_options : dict, default=None
        Further keyword arguments of :class:`BayesianOptimizer` (``acquisition``,
        ``n_initial``, ``n_candidates``, ...).
    state_path : str or path-like, default=None
        A JSON-lines journal of the finished trials, appended and fsynced after each. If the
        file exists, the scheduler resumes it: the space and settings must equal the stored
        ones (``seed=None`` and options not given take the stored values), and its trials are
        replayed, so ``run`` continues as the interrupted run would have.

    Examples
    --------
    >>> from repurpose.bo import Real, SearchSpace
    >>> def train(params, report):
    ...     for epoch in range(1, 10):
    ...         report(epoch, (params["x"] - 0.3) ** 2 + math.exp(-epoch / 2))
    >>> sched = HyperbandScheduler(SearchSpace({"x": Real(0.0, 1.0)}), max_budget=9, seed=0,
    ...                            optimizer_options={"n_candidates": 64, "n_local": 1})
    >>> res = sched.run(train, n_trials=6)
    >>> len(res.history), res.total_budget_used < 6 * 9
    (6, True)
    """

    def __init__(self, space, max_budget, eta=3, min_budget=1, seed=None, maximize=False,
                 kappa=1.645, curve_model=None, optimizer_options=None, state_path=None):
        if not isinstance(space, SearchSpace):
            raise InvalidParameterError(
                f"space must be a repurpose.bo.SearchSpace, got {type(space).__name__}.")
        self.max_budget = _check_real(max_budget, "max_budget", 1)
        self.eta = check_positive_int(eta, "eta", minimum=2)
        self.min_budget = _check_real(min_budget, "min_budget", 0)
        if not 0 < self.min_budget <= self.max_budget:
            raise InvalidParameterError(
                f"min_budget must be in (0, max_budget={self.max_budget}], got {min_budget!r}.")
        if not (is_number(kappa) and kappa >= 0  # or inf, which turns the curve rule off
                or isinstance(kappa, (float, np.floating)) and kappa == math.inf):
            raise InvalidParameterError(f"kappa must be a real number >= 0, got {kappa!r}.")
        self.kappa = float(kappa)
        if curve_model is None:
            curve_model = LearningCurveModel()
        if not isinstance(curve_model, LearningCurveModel):
            raise InvalidParameterError(
                f"curve_model must be a LearningCurveModel, got {type(curve_model).__name__}.")
        self.curve_model = curve_model
        options = dict(optimizer_options or {})
        journal = self._open_journal(state_path, space, maximize)
        if journal is not None:
            seed, options = self._resume_settings(journal, space, seed, options)
        self.optimizer = BayesianOptimizer(space, seed=seed, maximize=maximize, **options)
        self.optimizer.trial_log_level = logging.DEBUG  # _record logs the measured value
        self.space = space
        self.maximize = bool(maximize)
        self._sign = -1.0 if self.maximize else 1.0
        self.s_max = int(math.floor(math.log(self.max_budget / self.min_budget)
                                    / math.log(self.eta) + 1e-9))
        self._bracket_cycle = []
        for s in range(self.s_max, -1, -1):
            n_s = int(math.ceil((self.s_max + 1) / (s + 1) * self.eta ** s))
            self._bracket_cycle.extend([s] * n_s)
        self._rung_values: Dict[tuple, List[float]] = {}
        self.history: List[ScheduledTrial] = []
        self._journal = None
        if self.state_path is not None:
            records, clean = (None, None) if journal is None else (journal.records,
                                                                    journal.clean)
            self._journal = JournalWriter(self.state_path, self._journal_header, records, clean)
        if journal is not None:
            self._replay(journal)

    # --------------------------------------------------------------------------- journal
    def _settings(self, maximize=None):
        maximize = self.maximize if maximize is None else bool(maximize)
        return {"max_budget": self.max_budget, "eta": self.eta, "min_budget": self.min_budget,
                "kappa": encode_float(self.kappa), "maximize": maximize,
                "curve_families": list(self.curve_model.families)}

    def _open_journal(self, state_path, space, maximize):
        self.state_path = None if state_path is None else os.fspath(state_path)
        if self.state_path is None:
            return None
        space.to_dict()  # raises now for choices that JSON cannot hold
        if not os.path.exists(self.state_path):
            return None
        journal = read_journal(self.state_path, SCHEDULE)
        stored = journal.header["settings"]
        if journal.header["space"] != space.to_dict():
            raise InvalidParameterError(
                f"state_path {self.state_path!r} holds a run over "
                f"{journal.header['space']['dimensions']}, not over the given space {space!r}. "
                f"Pass the same space to resume, or another state_path.")
        check_same_settings(self.state_path, [
            (key, self.kappa, decode_float(stored.get(key))) if key == "kappa" else
            (key, value, stored.get(key)) for key, value in self._settings(maximize).items()],
            "run")
        return journal

    def _resume_settings(self, journal, space, seed, options):
        stored = journal.header["settings"].get("optimizer") or {}
        check_same_settings(self.state_path, [
            ("seed" if key == "seed" else f"optimizer_options[{key!r}]", value, stored[key])
            for key, value in dict(options, seed=seed).items()
            if value is not None and key in stored], "run")
        resolved = {k: v for k, v in stored.items() if k not in ("seed", "maximize")}
        resolved.update({k: v for k, v in options.items() if v is not None})
        return stored.get("seed", seed), resolved

    def _replay(self, journal):
        for fields, entries in schedule_trials(self.state_path, journal,
                                               self.space.check_params):
            trial = ScheduledTrial(**fields)
            self.optimizer.tell(trial.params, trial.told_value, seconds=trial.seconds)
            self.history.append(trial)
            for bracket, rung, value in entries:
                self._rung_values.setdefault((bracket, rung), []).append(value)
        if journal.records:
            logger.info("Resumed %s with %d trials", self.state_path, len(journal.records))

    def _journal_header(self):
        return journal_header(SCHEDULE, self.space.to_dict(),
                              dict(self._settings(), optimizer=self.optimizer.settings()))

    def _journal_trial(self, trial, rung_sizes):
        if self._journal is None:
            return
        entries = [[bracket, rung, value]
                   for (bracket, rung), values in self._rung_values.items()
                   for value in values[rung_sizes.get((bracket, rung), 0):]]
        self._journal.write(schedule_record(trial, entries))

    def _forget_trial(self, params, rung_sizes):
        """Undo what an abandoned trial (KeyboardInterrupt, protocol error) left behind."""
        for key in list(self._rung_values):
            del self._rung_values[key][rung_sizes.get(key, 0):]
            if not self._rung_values[key]:
                del self._rung_values[key]
        self.optimizer.cancel(params)

    # --------------------------------------------------------------------------- helpers
    def rungs(self, bracket):
        """The rung budgets (below ``max_budget``) of ``bracket``, increasing."""
        return [self.max_budget * self.eta ** (-k) for k in range(bracket, 0, -1)]

    def _incumbent(self):
        """Best (internal, minimised) final value of a completed trial, or None."""
        done = [self._sign * t.values[-1] for t in self.history
                if t.status == "completed" and t.values]
        return min(done) if done else None

    def _offset_prediction(self, budget, value):
        """Last value shifted by the median improvement of completed full-budget trials
        from ``budget`` to ``max_budget`` (internal units), or None."""
        shifts = []
        for t in self.history:
            if t.status != "completed" or not t.budgets or t.budgets[-1] < self.max_budget:
                continue
            if t.budgets[0] > budget:
                continue
            internal = self._sign * np.asarray(t.values)
            at = float(np.interp(budget, t.budgets, internal))
            shifts.append(internal[-1] - at)
        return value + float(np.median(shifts)) if shifts else None

    # --------------------------------------------------------------------------- one trial
    def _run_trial(self, objective, params, bracket):
        trial = ScheduledTrial(dict(params), bracket, [], [])
        rungs = self.rungs(bracket)
        state = {"next_rung": 0, "stopped": False, "protocol_error": None, "checked_n": 0}

        def report(budget, value):
            if state["stopped"]:
                raise _Stop()
            try:
                budget = _check_real(budget, "report: budget", 0)
                if budget <= 0 or budget > self.max_budget * (1 + 1e-12):
                    raise InvalidParameterError(
                        f"report: budget must be in (0, max_budget={self.max_budget}], got "
                        f"{budget!r}.")
                if trial.budgets and budget <= trial.budgets[-1]:
                    raise InvalidParameterError(
                        f"report: budgets must strictly increase, got {budget!r} after "
                        f"{trial.budgets[-1]!r}.")
                if not is_number(value):
                    raise InvalidParameterError(
                        f"report: value must be a finite real number, got {value!r} of type "
                        f"{type(value).__name__}. Raise in the objective for a failed trial.")
            except InvalidParameterError as err:
                state["protocol_error"] = err
                raise
            trial.budgets.append(budget)
            trial.values.append(float(value))
            if budget >= self.max_budget:
                return True
            internal = self._sign * float(value)
            # Rung rule (successive halving).
            while state["next_rung"] < len(rungs) and budget >= rungs[state["next_rung"]]:
                key = (bracket, state["next_rung"])
                seen = self._rung_values.setdefault(key, [])
                seen.append(internal)
                state["next_rung"] += 1
                keep = max(1, len(seen) // self.eta)
                if internal > sorted(seen)[keep - 1]:
                    self._stop(trial, state, "rung")
            # Curve rule, refitted when the number of points has grown by half.
            incumbent = self._incumbent()
            n = len(trial.values)
            if (incumbent is not None and math.isfinite(self.kappa)
                    and n >= self.curve_model.min_points and n >= 1.5 * state["checked_n"]):
                state["checked_n"] = n
                pred = self.curve_model.predict(trial.budgets,
                                                self._sign * np.asarray(trial.values),
                                                self.max_budget)
                trial.predicted_final = self._sign * pred.mean
                trial.predicted_std = pred.std
                if math.isfinite(pred.std) and pred.mean - self.kappa * pred.std > incumbent:
                    self._stop(trial, state, "curve")
            return True

        start = time.perf_counter()
        error = None
        try:
            objective(params, report)
        except _Stop:
            pass
        except Exception as err:  # noqa: BLE001 - a failed trial, recorded; loop goes on
            error = err
        trial.seconds = time.perf_counter() - start
        if state["protocol_error"] is not None:
            raise state["protocol_error"]
        if trial.status != "stopped":
            if error is not None:
                trial.status, trial.error = "failed", f"{type(error).__name__}: {error}"
                logger.warning("Objective raised %s for %s; recorded as failed.",
                               type(error).__name__, params)
            elif not trial.values:
                trial.status, trial.error = "failed", "no value reported"
        return trial

    def _stop(self, trial, state, reason):
        state["stopped"] = True
        trial.status, trial.stop_reason = "stopped", reason
        raise _Stop()

    def _told_value(self, trial):
        if trial.status == "failed":
            return None
        if trial.status == "completed":
            return trial.values[-1]
        if trial.predicted_final is not None and math.isfinite(trial.predicted_std or math.inf):
            internal = self._sign * trial.predicted_final
        else:
            internal = self._offset_prediction(trial.budgets[-1], self._sign * trial.values[-1])
            if internal is not None:
                trial.predicted_final = self._sign * internal
            else:
                internal = self._sign * trial.values[-1]
        # The trial was stopped for looking worse than others: never tell the optimiser it
        # beats the best completed trial (extrapolations of noisy early epochs can predict
        # impossible values, e.g. a negative loss).
        incumbent = self._incumbent()
        if incumbent is not None:
            internal = max(internal, incumbent)
        return self._sign * internal

    # --------------------------------------------------------------------------- loop
    def run(self, objective: Callable, n_trials: Optional[int] = None,
            total_budget: Optional[float] = None,
            callback: Optional[Callable[[ScheduledTrial], None]] = None
            ) -> EarlyStoppingResult:
        """Run trials until ``n_trials`` configurations have run (counting earlier calls and
        trials resumed from ``state_path``) or the budget used reaches ``total_budget``; at
        least one of the two is required. ``callback(trial)`` is called after each trial is
        recorded."""
        if n_trials is None and total_budget is None:
            raise InvalidParameterError("Give n_trials, total_budget or both.")
        if n_trials is not None:
            n_trials = check_positive_int(n_trials, "n_trials")
        if total_budget is not None:
            total_budget = _check_real(total_budget, "total_budget", 0)
        check_objective(objective, self.space, ("params", "report"))
        # In this process: report() reads and updates the rungs while the trial runs.
        with journal_lock(self.state_path):
            drive(_Schedule(self, n_trials, total_budget),
                  SerialPool(self._evaluate, objective), 1, callback)
        return self.result()

    def _evaluate(self, objective, ticket):
        params, bracket, _ = ticket
        return self._run_trial(objective, params, bracket)

    def _record(self, ticket, trial):
        params, bracket, rung_sizes = ticket
        trial.told_value = self._told_value(trial)
        self.optimizer.tell(params, trial.told_value, seconds=trial.seconds)
        self.history.append(trial)
        self._journal_trial(trial, rung_sizes)
        outcome = (f"failed ({trial.error})" if trial.status == "failed" else  # as measured
                   f"{trial.values[-1]:.4g} at budget {trial.budget_used:g}, {trial.status}")
        if trial.status == "stopped":  # told an estimate of its final value, not its value
            outcome += f" ({trial.stop_reason}); the optimiser was told {trial.told_value:.4g}"
        logger.info("Trial %d (bracket %d): %s -> %s", len(self.history), bracket, trial.params,
                    outcome)
        return trial

    def result(self):
        """The best completed trial, the history and the budget used so far."""
        used = float(sum(t.budget_used for t in self.history))
        done = [t for t in self.history if t.status == "completed" and t.values]
        if not done:
            return EarlyStoppingResult(None, None, list(self.history), used)
        best = min(done, key=lambda t: self._sign * t.values[-1])
        return EarlyStoppingResult(dict(best.params), best.values[-1], list(self.history),
                                   used)


class _Schedule(Study):
    """A :meth:`HyperbandScheduler.run` as the driver's study: tickets are ``(params,
    bracket, rung sizes before the trial)``, outcomes :class:`ScheduledTrial` objects."""

    def __init__(self, scheduler, n_trials, total_budget):
        self.scheduler, self.n_trials, self.total_budget = scheduler, n_trials, total_budget

    def more(self, n_running):
        history = self.scheduler.history
        if self.n_trials is not None and len(history) + n_running >= self.n_trials:
            return False
        return (self.total_budget is None
                or sum(t.budget_used for t in history) < self.total_budget)

    def ask(self):
        sched = self.scheduler
        bracket = sched._bracket_cycle[len(sched.history) % len(sched._bracket_cycle)]
        params = sched.optimizer.ask()
        return params, bracket, {key: len(v) for key, v in sched._rung_values.items()}

    def tell(self, ticket, outcome):
        return self.scheduler._record(ticket, outcome)

    def cancel(self, ticket):  # KeyboardInterrupt, a protocol error: no trial recorded
        params, _, rung_sizes = ticket
        self.scheduler._forget_trial(params, rung_sizes)


def minimize_with_early_stopping(objective: Callable, space: SearchSpace, max_budget: float,
                                 n_trials: Optional[int] = None,
                                 total_budget: Optional[float] = None, eta: int = 3,
                                 seed: Optional[int] = None, maximize: bool = False,
                                 min_budget: float = 1, kappa: float = 1.645,
                                 optimizer_options: Optional[dict] = None, state_path=None,
                                 callback: Optional[Callable[[ScheduledTrial], None]] = None
                                 ) -> EarlyStoppingResult:
    """Minimise (or maximise) the final value of ``objective(params, report)`` with
    Hyperband-style early stopping; see :class:`HyperbandScheduler` and the module docstring
    for the ``report`` protocol.

    With ``state_path``, finished trials are journalled there and an existing journal is
    resumed (same space and settings required): finished trials are not run again and the
    outcome is that of an uninterrupted run. ``callback(trial)`` is called after each trial.

    Parameters
    ----------
    objective : callable
        ``objective(params, report)``: trains with ``params`` (a dict) and calls
        ``report(budget, value)`` after each epoch, with strictly increasing budgets up to
        ``max_budget``. Its return value is ignored.
    space : SearchSpace
        Parameters to search over.
    max_budget : float
        The full budget of a trial (e.g. epochs), >= 1.
    n_trials : int, default=None
        Configurations to run (counting trials resumed from ``state_path``).
    total_budget : float, default=None
        Stop once the budget used reaches this; give it, ``n_trials`` or both.
    eta : int, default=3
        Halving rate: a rung keeps the best ``1/eta`` of its trials; >= 2.
    seed : int, default=None
        Seeds the optimiser.
    maximize : bool, default=False
        Maximise the reported values instead of minimising them.
    min_budget : float, default=1
        The smallest rung budget.
    kappa : float, default=1.645
        Width of the optimistic bound of the curve rule; ``inf`` disables the rule.
    optimizer_options : dict, default=None
        Further keyword arguments of :class:`BayesianOptimizer`.
    state_path : str or path-like, default=None
        JSON-lines journal of finished trials; resumed if it exists; locked while running.
    callback : callable, default=None
        ``callback(trial)`` with each :class:`ScheduledTrial` once it is recorded.

    Returns
    -------
    EarlyStoppingResult
        The best completed trial, every trial and the total budget used.

    Raises
    ------
    InvalidParameterError
        If a setting is invalid, neither ``n_trials`` nor ``total_budget`` is given, the
        journal holds a run with another space or settings, or the objective cannot take
        ``(params, report)``. LockedError if another process runs on ``state_path``.

    Examples
    --------
    >>> from repurpose.bo import Real, SearchSpace
    >>> def train(params, report):
    ...     for epoch in range(1, 4):
    ...         report(epoch, params["x"] ** 2 + 1.0 / epoch)
    >>> res = minimize_with_early_stopping(train, SearchSpace({"x": Real(-1.0, 1.0)}),
    ...                                    max_budget=3, n_trials=4, seed=0)
    >>> len(res.history)
    4
    """
    with journal_lock(None if state_path is None else os.fspath(state_path)):  # before a read
        scheduler = HyperbandScheduler(space, max_budget, eta, min_budget, seed, maximize, kappa,
                                       optimizer_options=optimizer_options, state_path=state_path)
        return scheduler.run(objective, n_trials=n_trials, total_budget=total_budget,
                             callback=callback)
