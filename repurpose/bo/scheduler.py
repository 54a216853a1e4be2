"""Early stopping of trials that report intermediate values: Hyperband brackets of
(asynchronous) successive halving plus learning-curve extrapolation, with the configurations
chosen by :class:`~repurpose.bo.BayesianOptimizer`.

Protocol. The objective is ``objective(params, report)``: it trains and calls
``report(budget, value)`` after each epoch (budgets strictly increasing, at most
``max_budget``). When the scheduler decides to stop the trial, ``report`` raises a private
exception (a ``BaseException``, so ``except Exception`` in the objective does not swallow it)
that the scheduler catches; put clean-up in ``finally``. The objective's return value is
ignored: a trial's result is its last reported value. ``report`` returns True otherwise.

Where trials run. One at a time in this process, or ``n_workers`` at once on a thread pool, a
process pool or a Dask cluster (``n_workers``/``client`` of :meth:`HyperbandScheduler.run`,
as for :func:`~repurpose.bo.minimize`). Wherever a trial runs, ``report`` checks its
arguments there, sends ``(budget, value)`` to this process and waits for the answer, go on
or stop: the rungs, the curve model and the history stay here, and every decision is taken
here, one report at a time (:mod:`repurpose.bo._hyperband_pool`). A worker that cannot
reach this process any more (the driver died) ends its trial at its next report. A parallel
run is reproducible only up to the order in which trials report and finish.

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

Decaying learning-rate schedules (``schedule=``). Both rules assume that a value at budget
``b`` already says how good a configuration is, as under a constant rate. At the peak of a
cosine, step or warm-up schedule it often does not. Told the schedule (a callable ``budget ->
learning rate`` that every trial follows over ``max_budget``), the scheduler changes three
things at budgets after which the rate still falls, and nothing elsewhere (a constant rate or
``schedule=None`` keeps the rules above exactly): a rung compares each trial's best value so
far, not its last one (as Optuna's percentile pruner does); it stops a trial only once at least
4 completed trials have shown that values at that budget rank final values (Spearman
correlation above ``1.645 / sqrt(n - 1)``), else the trial goes on to its next rung; and the
curve rule waits for the annealing, a stopped trial being told the final value of the
completed trials it matches at its last budget. Why: :mod:`repurpose.bo._lr_schedule`;
measured: ``docs/benchmarks/bo_early_stopping.md``.

Resume. With ``state_path``, every finished trial (parameters, bracket, budgets, values,
status, stop reason, told value, and the values it left at the rungs) is appended to a
JSON-lines journal (:mod:`repurpose.bo.state`); a scheduler built with the same settings and
``state_path`` replays it and continues where the killed run stopped, ending as an
uninterrupted run would (run serially; a parallel run resumes to the asked number of trials,
reproducible up to finishing order). A trial that was running when the process died runs
again.
"""
import logging
import math
import os
from typing import Callable, Dict, List, Optional

import numpy as np

from .._validation import check_positive_int, is_number
from ..exceptions import InvalidParameterError
from ._hyperband_pool import check_real as _check_real
from ._hyperband_pool import run_schedule
from ._hyperband_results import EarlyStoppingResult, ScheduledTrial
from ._lr_schedule import ScheduleProfile, matched_final, ranks_finals, resume_profile
from .curves import LearningCurveModel
from .driver import check_objective
from .loop import BayesianOptimizer
from .space import SearchSpace
from .state import (SCHEDULE, JournalWriter, check_same_settings, decode_float, encode_float,
                    journal_header, journal_lock, read_journal, schedule_record, schedule_trials)

logger = logging.getLogger(__name__)

__all__ = ["HyperbandScheduler", "minimize_with_early_stopping", "EarlyStoppingResult",
           "ScheduledTrial"]


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
    schedule : callable, default=None
        ``schedule(budget)``: the learning rate (any scale; only its shape matters) with which
        every trial reaches ``budget``, when the objective trains on a decaying schedule set
        up for ``max_budget`` (cosine, step, warm-up). Called at budgets ``1..max_budget``
        (an integer up to 1000; else 100 evenly spaced ones) and journalled: resuming with
        None takes the stored samples. Changes the rules where the rate still falls
        (module docstring); None, or a rate that never falls: the constant-rate rules.

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
                 kappa=1.645, curve_model=None, optimizer_options=None, state_path=None,
                 schedule=None):
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
        self.schedule = schedule
        self._profile = (None if schedule is None
                         else ScheduleProfile.from_callable(schedule, self.max_budget))
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
        settings = {"max_budget": self.max_budget, "eta": self.eta,
                    "min_budget": self.min_budget, "kappa": encode_float(self.kappa),
                    "maximize": maximize, "curve_families": list(self.curve_model.families)}
        if self._profile is not None:  # absent, as in journals written before schedules
            settings["schedule"] = self._profile.to_dict()
        return settings

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
            (key, value, stored.get(key)) for key, value in self._settings(maximize).items()
            if key != "schedule"], "run")
        self._profile = resume_profile(self._profile, stored.get("schedule"),
                                       self.state_path)
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

    def _forget_entries(self, entries):
        """Take a trial's ``[bracket, rung, value]`` entries off the rungs."""
        for bracket, rung, value in entries:
            seen = self._rung_values[(bracket, rung)]
            seen.remove(value)
            if not seen:
                del self._rung_values[(bracket, rung)]

    def _forget_trial(self, params, entries):
        """Undo what an abandoned trial (KeyboardInterrupt, protocol error) left behind."""
        self._forget_entries(entries)
        self.optimizer.cancel(params)

    # --------------------------------------------------------------------------- helpers
    def rungs(self, bracket):
        """The rung budgets (below ``max_budget``) of ``bracket``, increasing."""
        return [self.max_budget * self.eta ** (-k) for k in range(bracket, 0, -1)]

    def _bracket_of(self, i):
        """The bracket of the ``i``-th trial started (from 0, counting resumed ones)."""
        return self._bracket_cycle[i % len(self._bracket_cycle)]

    @staticmethod
    def _new_trial(params, bracket):
        return ScheduledTrial(dict(params), bracket, [], [])

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
    def _decide(self, run, budget, value):
        """Record the checked report ``(budget, value)`` of the running trial ``run`` (a
        record of :mod:`repurpose.bo._hyperband_pool`) and apply the stopping rules: None
        to go on, or the reason it was stopped ('rung' or 'curve'). Called under the run's
        lock, in the driver."""
        trial = run.trial
        trial.budgets.append(budget)
        trial.values.append(value)
        if budget >= self.max_budget:
            return None
        internal = self._sign * value
        annealing = self._annealing_ahead(budget)
        if annealing:  # the rate still falls: compare the best value so far (see module doc)
            internal = min(self._sign * v for v in trial.values)
        # Rung rule (successive halving).
        rungs = self.rungs(trial.bracket)
        while run.next_rung < len(rungs) and budget >= rungs[run.next_rung]:
            key = (trial.bracket, run.next_rung)
            seen = self._rung_values.setdefault(key, [])
            seen.append(internal)
            run.entries.append([trial.bracket, run.next_rung, internal])
            run.next_rung += 1
            keep = max(1, len(seen) // self.eta)
            if internal > sorted(seen)[keep - 1] and (
                    not annealing or ranks_finals(budget, self._completed_curves())):
                return self._stopped(trial, "rung")
        # Curve rule, refitted when the number of points has grown by half.
        incumbent = self._incumbent()
        n = len(trial.values)
        if (incumbent is not None and math.isfinite(self.kappa) and not annealing
                and n >= self.curve_model.min_points and n >= 1.5 * run.checked_n):
            run.checked_n = n
            pred = self.curve_model.predict(trial.budgets, self._sign * np.asarray(trial.values),
                                            self.max_budget)
            trial.predicted_final = self._sign * pred.mean
            trial.predicted_std = pred.std
            if math.isfinite(pred.std) and pred.mean - self.kappa * pred.std > incumbent:
                return self._stopped(trial, "curve")
        return None

    def _annealing_ahead(self, budget):
        """Whether the schedule still decays after ``budget`` (False without one)."""
        return self._profile is not None and self._profile.annealed(budget) < 1 - 1e-9

    @staticmethod
    def _stopped(trial, reason):
        trial.status, trial.stop_reason = "stopped", reason
        return reason

    def _matched_prediction(self, trial):
        """Under a schedule that still decays after the trial's last budget: its final
        (internal) value matched with the completed trials at that budget
        (:func:`~repurpose.bo._lr_schedule.matched_final`); else None."""
        if not self._annealing_ahead(trial.budgets[-1]):
            return None
        return matched_final(trial.budgets[-1], min(self._sign * v for v in trial.values),
                             self._completed_curves())

    def _completed_curves(self):
        """``(budgets, internal values)`` of the trials that completed ``max_budget``."""
        return [(t.budgets, self._sign * np.asarray(t.values)) for t in self.history
                if t.status == "completed" and t.values and t.budgets[-1] >= self.max_budget]

    def _told_value(self, trial):
        if trial.status == "failed":
            return None
        if trial.status == "completed":
            return trial.values[-1]
        internal = self._matched_prediction(trial)
        if internal is not None:
            trial.predicted_final = self._sign * internal
        elif trial.predicted_final is not None and math.isfinite(trial.predicted_std or math.inf):
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
            callback: Optional[Callable[[ScheduledTrial], None]] = None,
            n_workers: Optional[int] = None, client=None) -> EarlyStoppingResult:
        """Run trials until ``n_trials`` configurations have run or the budget used reaches
        ``total_budget``, one at a time or ``n_workers`` at once.

        Parameters
        ----------
        objective : callable
            ``objective(params, report)``; see the module docstring for the ``report``
            protocol. Run in parallel, it is sent to the workers, so it must pickle (closures
            do, through Dask's cloudpickle; a ``concurrent.futures`` process pool needs a
            module-level function).
        n_trials : int, default=None
            Configurations run in total, counting earlier calls and trials resumed from
            ``state_path``.
        total_budget : float, default=None
            Stop starting trials once the budget used reaches this; give it, ``n_trials`` or
            both. A trial starts only while the budget used, plus ``max_budget`` for each
            running trial, is below it, so every trial but the last one started fits in it.
        callback : callable, default=None
            ``callback(trial)`` with each :class:`ScheduledTrial` once it is recorded, in the
            order they finish.
        n_workers : int, default=None
            Trials running at once. None: 1 without ``client``, else every worker thread of
            the Dask cluster. More than 1 without ``client`` starts a local Dask cluster of
            that many single-threaded worker processes for the run.
        client : distributed.Client, str or concurrent.futures.Executor, default=None
            Where the trials run: a Dask client, the address of a Dask scheduler
            (``'tcp://HOST:8786'``), or a ``ThreadPoolExecutor`` or ``ProcessPoolExecutor``
            (then ``n_workers`` is required). Other executors are refused: their workers
            cannot send reports back to this process. Dask is imported only when used.

        Returns
        -------
        EarlyStoppingResult
            The best completed trial, every trial and the total budget used so far.

        Raises
        ------
        InvalidParameterError
            If neither ``n_trials`` nor ``total_budget`` is given, an argument is invalid,
            the objective cannot take ``(params, report)``, or it reports against the
            protocol (the running trials are then cancelled).
        ClusterError
            If no scheduler answers at the ``client`` address, or Dask workers lack
            repurpose or have another version of it.

        Notes
        -----
        With ``k`` workers, each new configuration is asked conditioned on the running
        ones, and every report comes back to this process, where the rungs and the curve
        rule decide (module docstring). A parallel run is reproducible only up to the order
        in which trials report and finish; with one worker it is the serial run.
        """
        if n_trials is None and total_budget is None:
            raise InvalidParameterError("Give n_trials, total_budget or both.")
        if n_trials is not None:
            n_trials = check_positive_int(n_trials, "n_trials")
        if total_budget is not None:
            total_budget = _check_real(total_budget, "total_budget", 0)
        if n_workers is not None:
            n_workers = check_positive_int(n_workers, "n_workers")
        check_objective(objective, self.space, ("params", "report"))
        with journal_lock(self.state_path):
            run_schedule(self, objective, n_trials, total_budget, callback, n_workers, client)
        return self.result()

    def _record(self, trial, seconds, error, entries):
        """Tell the optimiser and journal a finished trial (under the run's lock)."""
        trial.seconds = seconds
        if trial.status != "stopped":
            if error is not None:
                trial.status, trial.error = "failed", error
                logger.warning("Objective raised %s for %s; recorded as failed.",
                               error.split(":", 1)[0], trial.params)
            elif not trial.values:
                trial.status, trial.error = "failed", "no value reported"
        trial.told_value = self._told_value(trial)
        self.optimizer.tell(trial.params, trial.told_value, seconds=trial.seconds)
        self.history.append(trial)
        if self._journal is not None:
            self._journal.write(schedule_record(trial, entries))
        outcome = (f"failed ({trial.error})" if trial.status == "failed" else  # as measured
                   f"{trial.values[-1]:.4g} at budget {trial.budget_used:g}, {trial.status}")
        if trial.status == "stopped":  # told an estimate of its final value, not its value
            outcome += f" ({trial.stop_reason}); the optimiser was told {trial.told_value:.4g}"
        logger.info("Trial %d (bracket %d): %s -> %s", len(self.history), trial.bracket,
                    trial.params, outcome)
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


def minimize_with_early_stopping(objective: Callable, space: SearchSpace, max_budget: float,
                                 n_trials: Optional[int] = None,
                                 total_budget: Optional[float] = None, eta: int = 3,
                                 seed: Optional[int] = None, maximize: bool = False,
                                 min_budget: float = 1, kappa: float = 1.645,
                                 optimizer_options: Optional[dict] = None, state_path=None,
                                 callback: Optional[Callable[[ScheduledTrial], None]] = None,
                                 n_workers: Optional[int] = None, client=None,
                                 schedule: Optional[Callable[[float], float]] = None
                                 ) -> EarlyStoppingResult:
    """Minimise (or maximise) the final value of ``objective(params, report)`` with
    Hyperband-style early stopping; see :class:`HyperbandScheduler` and the module docstring
    for the ``report`` protocol.

    With ``state_path``, finished trials are journalled there and an existing journal is
    resumed (same space and settings required): finished trials are not run again and the
    outcome is that of an uninterrupted run. ``callback(trial)`` is called after each trial.
    Trials run one after another, or with ``n_workers`` (or a ``client``) several at once,
    while the rung and curve decisions are taken in this process
    (:meth:`HyperbandScheduler.run`).

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
    n_workers : int, default=None
        Trials running at once. None: 1 without ``client``, else every worker thread of the
        Dask cluster. More than 1 without ``client`` starts a local Dask cluster of that
        many single-threaded worker processes for the run.
    client : distributed.Client, str or concurrent.futures.Executor, default=None
        Where the trials run: a Dask client, the address of a Dask scheduler
        (``'tcp://HOST:8786'``), or a ``ThreadPoolExecutor`` or ``ProcessPoolExecutor``
        (then ``n_workers`` is required). Dask is imported only when it is used. Run in
        parallel, the objective is sent to the workers, so it must pickle (a process pool
        needs a module-level function).
    schedule : callable, default=None
        ``schedule(budget)``: the learning rate (any scale) that every trial trains with to
        reach ``budget``, when it follows a decaying schedule set up for ``max_budget``
        (cosine, step, warm-up); see :class:`HyperbandScheduler`. None: values are compared
        as they come, as for a constant rate.

    Returns
    -------
    EarlyStoppingResult
        The best completed trial, every trial and the total budget used.

    Raises
    ------
    InvalidParameterError
        If a setting is invalid, neither ``n_trials`` nor ``total_budget`` is given, the
        journal holds a run with another space or settings, or the objective cannot take
        ``(params, report)``, or ``client`` is an executor other than a thread or process
        pool. LockedError if another process runs on ``state_path``.
    ClusterError
        If no scheduler answers at the ``client`` address within 5 s (also a
        ``ConnectionError``), or Dask workers lack repurpose or have another version of it,
        naming them (also a ``RuntimeError``).

    Notes
    -----
    A parallel run is reproducible only up to the order in which trials report and finish
    (each suggestion depends on the results told before it and on the trials running, each
    rung decision on the values that reached the rung before it). Trials that were running
    when the driver died are not in the journal: the resumed run asks afresh for them, so
    only unfinished trials run again.

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

    Three trials at a time on a pool of threads (a Dask cluster is used the same way):

    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(3) as pool:
    ...     res = minimize_with_early_stopping(train, SearchSpace({"x": Real(-1.0, 1.0)}),
    ...                                        max_budget=3, n_trials=6, seed=0, n_workers=3,
    ...                                        client=pool)
    >>> len(res.history)
    6
    """
    # Long for its docstring; the code builds a scheduler and runs it.
    with journal_lock(None if state_path is None else os.fspath(state_path)):  # before a read
        scheduler = HyperbandScheduler(space, max_budget, eta, min_budget, seed, maximize, kappa,
                                       optimizer_options=optimizer_options, state_path=state_path,
                                       schedule=schedule)
        return scheduler.run(objective, n_trials=n_trials, total_budget=total_budget,
                             callback=callback, n_workers=n_workers, client=client)
