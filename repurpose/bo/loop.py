"""The ask/tell loop (:class:`BayesianOptimizer`) and :func:`minimize` built on it.

Determinism: the suggestion made when ``k`` trials have been told and ``j`` are pending uses
random numbers drawn from ``SeedSequence([seed, k, j])`` only, so a study resumed from its
journal (:mod:`repurpose.bo.state`) suggests exactly what the uninterrupted study would have.
"""
import dataclasses
import logging
import os
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .._validation import check_choice, check_positive_int, is_number
from ..exceptions import InvalidParameterError, ModelFileError
from . import _trust_region
from ._threads import one_blas_thread
from .acquisition import ACQUISITIONS
from .driver import check_objective, run_optimizer
from .optimizer import AcquisitionOptimizer, sobol_points
from .space import SearchSpace
from .state import (STATE, JournalWriter, check_same_settings, journal_header, journal_lock,
                    read_state)
from .surrogate import GPSurrogate, fit_choosing_warping, warp_outputs

logger = logging.getLogger(__name__)

#: With ``output_warping='auto'``, the choice of warped or plain values is made again after
#: every this many trials (two surrogate fits each time).
WARPING_BLOCK = 5

__all__ = ["BayesianOptimizer", "minimize", "OptimizeResult", "Trial"]


@dataclasses.dataclass
class Trial:
    """One evaluation: ``status`` is ``'ok'`` or ``'failed'`` (NaN/inf value or exception,
    described in ``error``; ``value`` is then None).

    :meth:`BayesianOptimizer.tell` returns one and appends it to
    :attr:`BayesianOptimizer.trials`; the fields are also its attributes.

    Parameters
    ----------
    params : dict
        The evaluated parameters, by name.
    value : float or None
        The objective's value; None for a failed trial.
    status : {'ok', 'failed'}
        Whether the evaluation gave a finite number.
    seconds : float, default=None
        Wall-clock time of the evaluation, if known.
    error : str, default=None
        Why a failed trial failed (the exception, ``'nan'``, ``'no value'``).

    Examples
    --------
    >>> from repurpose.bo import Real, SearchSpace
    >>> opt = BayesianOptimizer(SearchSpace({'x': Real(0.0, 1.0)}), seed=0)
    >>> params = opt.ask()
    >>> trial = opt.tell(params, float('nan'))
    >>> trial.status, trial.value, trial.error
    ('failed', None, 'nan')
    """

    params: Dict[str, Any]
    value: Optional[float]
    status: str
    seconds: Optional[float] = None
    error: Optional[str] = None


@dataclasses.dataclass
class OptimizeResult:
    """Best parameters and value (None if every trial failed) and the full history.

    Returned by :func:`minimize`, :meth:`BayesianOptimizer.run` and
    :meth:`BayesianOptimizer.result`; the fields are also its attributes.

    Parameters
    ----------
    best_params : dict or None
        Parameters of the best successful trial (lowest value, or highest when maximising).
    best_value : float or None
        Its value.
    history : list of Trial
        Every trial told, in order, failed ones included.

    Examples
    --------
    >>> from repurpose.bo import Real, SearchSpace
    >>> opt = BayesianOptimizer(SearchSpace({'x': Real(0.0, 1.0)}), seed=0)
    >>> for value in (3.0, 1.0, 2.0):
    ...     _ = opt.tell(opt.ask(), value)
    >>> res = opt.result()
    >>> res.best_value, [t.value for t in res.history]
    (1.0, [3.0, 1.0, 2.0])
    """

    best_params: Optional[Dict[str, Any]]
    best_value: Optional[float]
    history: List[Trial]


class BayesianOptimizer:
    """Sequential model-based optimisation with a GP surrogate, through ``ask`` and ``tell``.

    Parameters
    ----------
    space : SearchSpace
        Parameters to search over.
    acquisition : {'ei', 'ucb', 'pi'}, default='ei'
        Log expected improvement, (negated lower) confidence bound, log probability of
        improvement.
    n_initial : int, default=None
        Trials of the scrambled-Sobol initial design; ``max(2 * n_dims + 1, 5)`` if None.
    seed : int, default=None
        Seeds the design, the GP restarts and the acquisition optimiser; None draws one
        (kept in the state, so a resumed study continues identically).
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_candidates : int, default=1024
        Sobol candidates per acquisition optimisation.
    n_local : int, default=4
        Best candidates refined by L-BFGS-B and discrete moves.
    n_restarts : int, default=2
        Starts of the GP hyper-parameter fit.
    output_warping : {'auto', True, False}, default='auto'
        True: fit the surrogate to the objective values after a Yeo-Johnson power transform
        (:func:`warp_outputs`), which keeps their order but makes skewed values (a few very
        bad trials) closer to Gaussian. False: to the values themselves. ``'auto'``: after
        every 5 trials, fit it both ways to the first ``5 * (n // 5)`` of the ``n`` trials
        told and keep, for the next 5 suggestions, the values the data find more probable
        (:func:`fit_choosing_warping`); a function of the trials alone, so a resumed study
        chooses alike. Warping helps on some problems and hurts on others; see the
        ablation in ``docs/benchmarks/bo.md``.
    mixed_kernel : bool, default=True
        On a space with categorical and other parameters, the surrogate's kernel is the sum
        of a kernel over the other parameters, one over the categorical ones and their
        product (Ru et al. 2020), so that what the trials show about, say, the learning
        rate on one optimiser informs the optimisers not yet tried there. False: one
        Matern kernel over all columns (one-hot columns for categories). No effect on
        spaces without categorical parameters.
    trust_region : bool, default=True
        Maximise the acquisition within a box around the best trial, of a side that halves
        after ``max(4, n_dims)`` trials in a row without improvement and doubles after 3
        improving ones (TuRBO's rule, Eriksson et al. 2019; :mod:`repurpose.bo._trust_region`),
        so that a study ends by refining a basin instead of sampling the far corners of the
        space, where the surrogate is least sure. Integer and categorical parameters stay free.
        False: the whole space on every suggestion. See the ablation in
        ``docs/benchmarks/bo.md``.
    state_path : str or path-like, default=None
        If given, a JSON-lines journal: its header (space and settings) is written at the
        first ``tell``, and every ``tell`` appends one line and fsyncs it. The file must not
        exist yet; resume an existing one with :meth:`load` (or :func:`minimize`). :meth:`run`
        holds the journal's lock while it runs, and a ``tell`` that finds the journal written
        by another process since it was read raises
        :class:`~repurpose.exceptions.LockedError` instead of adding to it.

    Examples
    --------
    >>> from repurpose.bo import Real, SearchSpace
    >>> opt = BayesianOptimizer(SearchSpace({'x': Real(-2.0, 2.0)}), seed=0)
    >>> for _ in range(3):
    ...     params = opt.ask()
    ...     _ = opt.tell(params, (params["x"] - 1) ** 2)
    >>> len(opt.result().history)
    3
    """

    #: The logging level of the line :meth:`tell` logs per trial. A
    #: :class:`~repurpose.bo.HyperbandScheduler` sets DEBUG on its optimiser: it logs each
    #: trial itself, with the value the trial measured, not the estimate the optimiser is told.
    trial_log_level = logging.INFO

    def __init__(self, space, acquisition="ei", n_initial=None, seed=None, maximize=False,
                 n_candidates=1024, n_local=4, n_restarts=2, output_warping="auto",
                 mixed_kernel=True, trust_region=True, state_path=None):
        if not isinstance(space, SearchSpace):
            raise InvalidParameterError(
                f"space must be a repurpose.bo.SearchSpace, got {type(space).__name__}.")
        check_choice(acquisition, "acquisition", tuple(ACQUISITIONS))
        if n_initial is None:
            n_initial = max(2 * space.n_dims + 1, 5)
        n_initial = check_positive_int(n_initial, "n_initial")
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        seed = check_positive_int(seed, "seed", minimum=0)
        if not isinstance(maximize, (bool, np.bool_)):
            raise InvalidParameterError(f"maximize must be True or False, got {maximize!r}.")
        self.space = space
        self.acquisition = acquisition
        self.n_initial = n_initial
        self.seed = seed
        self.maximize = bool(maximize)
        self.n_candidates = check_positive_int(n_candidates, "n_candidates")
        self.n_local = check_positive_int(n_local, "n_local", minimum=0)
        self.n_restarts = check_positive_int(n_restarts, "n_restarts")
        if not (isinstance(output_warping, (bool, np.bool_)) or output_warping == "auto"):
            raise InvalidParameterError(
                f"output_warping must be 'auto', True or False, got {output_warping!r}.")
        self.output_warping = output_warping if output_warping == "auto" else bool(
            output_warping)
        if not isinstance(mixed_kernel, (bool, np.bool_)):
            raise InvalidParameterError(
                f"mixed_kernel must be True or False, got {mixed_kernel!r}.")
        self.mixed_kernel = bool(mixed_kernel)
        if not isinstance(trust_region, (bool, np.bool_)):
            raise InvalidParameterError(
                f"trust_region must be True or False, got {trust_region!r}.")
        self.trust_region = bool(trust_region)
        self.state_path = None if state_path is None else os.fspath(state_path)
        if self.state_path is not None and os.path.exists(self.state_path):
            raise FileExistsError(
                f"state_path {self.state_path!r} already exists; a new study never overwrites "
                f"it. Resume it with BayesianOptimizer.load({self.state_path!r}) or "
                f"minimize(..., state_path=...), or choose another state_path.")
        self.trials: List[Trial] = []
        self._pending: List[np.ndarray] = []
        self._design = None
        self._warping = None  # 'auto': (trials it was chosen from, warped?)
        self._optimizer = AcquisitionOptimizer(space, self.n_candidates, self.n_local)
        self._journal = None
        if self.state_path is not None:
            self._open_journal(self.state_path, clean=None)

    # ----------------------------------------------------------------------------- state
    def settings(self):
        """The settings (seed included) as keyword arguments of this class, JSON-able: what
        the journal's header stores.

        Examples
        --------
        >>> from repurpose.bo import Real, SearchSpace
        >>> BayesianOptimizer(SearchSpace({'x': Real(0.0, 1.0)}), seed=0).settings()['seed']
        0
        """
        return {"acquisition": self.acquisition, "n_initial": self.n_initial,
                "seed": self.seed, "maximize": self.maximize,
                "n_candidates": self.n_candidates, "n_local": self.n_local,
                "n_restarts": self.n_restarts, "output_warping": self.output_warping,
                "mixed_kernel": self.mixed_kernel, "trust_region": self.trust_region}

    def get_state(self):
        """The JSON-able state: space, settings (seed included) and trials."""
        return {"space": self.space.to_dict(), "settings": self.settings(),
                "trials": [dataclasses.asdict(t) for t in self.trials]}

    def _open_journal(self, path, clean):
        """Journal every later ``tell`` at ``path`` (see :class:`~repurpose.bo.state.JournalWriter`
        for ``clean``); the trials so far are the journal's records."""
        self.state_path = os.fspath(path)
        self._journal = JournalWriter(
            path, lambda: journal_header(STATE, self.space.to_dict(), self.settings()),
            [dataclasses.asdict(t) for t in self.trials], clean)

    @classmethod
    def from_state(cls, state, state_path=None):
        """Rebuild an optimiser from :meth:`get_state` output; with ``state_path``, later
        ``tell`` calls append to that journal (which must hold this state)."""
        space = SearchSpace.from_dict(state["space"])
        # A journal from before output warping, the mixed kernel or the trust region was a
        # setting (and on by default) resumes without it, as it was written.
        opt = cls(space, **{"output_warping": False, "mixed_kernel": False,
                            "trust_region": False, **state["settings"]})
        for t in state["trials"]:
            params = space.check_params(t["params"])
            opt.trials.append(Trial(params, t["value"], t["status"], t.get("seconds"),
                                    t.get("error")))
        if state_path is not None:
            opt._open_journal(state_path, clean=True)
        return opt

    @classmethod
    def load(cls, path):
        """Resume the study journalled at ``path`` (written with ``state_path=path``); later
        ``tell`` calls append to it.

        A torn last line (the process was killed while writing it) is dropped with a
        warning; a version 1 state file is read and rewritten as a journal at the next
        ``tell``.

        Raises
        ------
        ModelFileError
            If the file is corrupted, of another format or from a newer repurpose.
        """
        path = os.fspath(path)
        state, clean = read_state(path)
        try:
            opt = cls.from_state(state)
        except (InvalidParameterError, KeyError, TypeError) as err:
            raise ModelFileError(
                f"BO state file {path!r} holds an invalid study ({type(err).__name__}: {err}); "
                f"it is corrupted. Restore it from a backup or choose another state_path."
            ) from err
        opt._open_journal(path, clean)
        return opt

    # ----------------------------------------------------------------------------- data
    def _observed(self, count=None):
        """Encoded rows and internal (minimised) targets of the first ``count`` trials (all
        if None), failures imputed with the worst finite value among them so the surrogate
        steers away from where they happened."""
        trials = self.trials[:count]
        if not trials:
            return np.empty((0, self.space.n_columns)), np.empty(0)
        X = np.array([self.space.encode(t.params) for t in trials])
        sign = -1.0 if self.maximize else 1.0
        y = np.array([sign * t.value if t.status == "ok" else np.nan for t in trials])
        finite = np.isfinite(y)
        y[~finite] = np.max(y[finite]) if finite.any() else 0.0
        return X, y

    def _rng(self, *key):
        return np.random.default_rng(np.random.SeedSequence([self.seed, *key]))

    def _is_taken(self, x, taken):
        return len(taken) > 0 and np.min(np.max(np.abs(np.asarray(taken) - x), axis=1)) < 1e-6

    # ----------------------------------------------------------------------------- ask/tell
    def ask(self, n=None):
        """Suggest parameters: one dict, or with ``n`` a list of ``n`` distinct dicts, each
        conditioned on the trials told, the suggestions still pending and the ones before it
        (kriging believer: a pending point counts as observed at the surrogate's mean)."""
        count = 1 if n is None else check_positive_int(n, "n")
        with one_blas_thread():  # the same suggestions whatever the BLAS thread count
            out = self._suggest(count)
        logger.debug("Suggested %s", out)
        return out[0] if n is None else out

    def _suggest(self, count):
        X, told = self._observed()
        n_told = len(self.trials)
        model = None
        bounds = None
        if self.trust_region and n_told >= self.n_initial:
            length = _trust_region.side_length(told, self.n_initial, self.space.n_dims)
            bounds = _trust_region.bounds(X[int(np.argmin(told))], length,
                                          self.space.n_columns, self.space.real_columns)
        out = []
        for _ in range(count):
            j = len(self._pending)
            k = n_told + j
            taken = list(X) + list(self._pending)
            if k < self.n_initial or n_told == 0:  # nothing told yet to fit a surrogate to
                x = self._design_row(k, taken)
            else:
                if model is None:  # the surrogate, its best value and pending means: y's
                    model, y = self._fit_surrogate(X, told)
                if self._pending:
                    P = np.array(self._pending)
                    mean, _ = model.predict(P)
                    model.set_data(np.vstack([X, P]), np.concatenate([y, mean]))
                acq_class = ACQUISITIONS[self.acquisition]
                acq = acq_class(model, float(np.min(y)))
                best_rows = X[np.argsort(y, kind="stable")[:3]]
                x, _ = self._optimizer.maximize(acq, self._rng(n_told, j + 1),
                                                exclude=np.array(taken), incumbents=best_rows,
                                                bounds=bounds)
            params = self.space.decode(x)
            self._pending.append(self.space.encode(params))
            out.append(params)
        return out

    def _fit_surrogate(self, X, told):
        """The surrogate for the next suggestions and the targets it was fitted to: ``told``
        or its warp (or ``told`` standardised, from ``'auto'``'s choice)."""
        n_told = len(self.trials)
        categorical = self.space.categorical_columns if self.mixed_kernel else None

        def make(n):
            return GPSurrogate(self.n_restarts, seed=self._rng(n, 0),
                               categorical_columns=categorical)

        warp = self.output_warping
        if warp == "auto":
            block = WARPING_BLOCK * (n_told // WARPING_BLOCK)
            block = block if block >= WARPING_BLOCK else n_told  # a design under 5 trials
            if self._warping is None or self._warping[0] != block:
                Xb, yb = self._observed(block)
                chosen, model, targets = fit_choosing_warping(Xb, yb, lambda: make(block))
                self._warping = (block, chosen)
                logger.debug("Output warping %s from the first %d trials",
                             "chosen" if chosen else "declined", block)
                if block == n_told:  # fitted to the same trials: keep that fit
                    return model, targets
            warp = self._warping[1]
        # Without warping, told itself: the surrogate standardises it, and the acquisition's
        # optimum does not change under an affine map of the values.
        y = warp_outputs(told) if warp else told
        return make(n_told).fit(X, y), y

    def _design_row(self, k, taken):
        """The ``k``-th row of the initial design; past its end (more suggestions asked
        before the first result than it has rows), a uniform random one."""
        if self._design is None:
            U = sobol_points(self.n_initial, self.space.n_dims, self._rng(2 ** 31))
            self._design = [self.space.encode(self.space.from_uniform(u)) for u in U]
        rng = self._rng(2 ** 31, k)
        if k < len(self._design):
            x = self._design[k]
        else:
            x = self.space.encode(self.space.from_uniform(rng.random(self.space.n_dims)))
        for _ in range(100):  # discrete spaces may map two design points to one
            if not self._is_taken(x, taken):
                break
            x = self.space.encode(self.space.from_uniform(rng.random(self.space.n_dims)))
        return x

    def tell(self, params, value, seconds=None, error=None):
        """Record the result of a trial.

        ``value`` is a real number; NaN, inf, None or an exception instance mark the trial as
        failed (recorded, and the surrogate treats it as the worst value seen so far).
        ``error`` says why a trial told with ``value=None`` failed, when its exception is not
        at hand (e.g. it was raised on a worker): ``'ValueError: ...'``.
        """
        params = self.space.check_params(params)
        if error is not None and value is not None:
            raise InvalidParameterError(
                f"error describes a failed trial, told with value=None; got value={value!r}.")
        if isinstance(value, BaseException):
            status, error = "failed", f"{type(value).__name__}: {value}"
            value = None
        elif value is None:
            status, error = "failed", "no value" if error is None else str(error)
        elif is_number(value):  # finite
            status, value = "ok", float(value)
        elif isinstance(value, (float, np.floating)):  # NaN or inf
            status, error, value = "failed", repr(float(value)), None
        else:
            raise InvalidParameterError(
                f"value must be a real number (or NaN/None/an exception for a failed trial), "
                f"got {value!r} of type {type(value).__name__}.")
        self._drop_pending(params)
        trial = Trial(params, value, status, None if seconds is None else float(seconds), error)
        self.trials.append(trial)
        logger.log(self.trial_log_level, "Trial %d: %s -> %s", len(self.trials), params,
                   value if status == "ok" else f"failed ({error})")
        if self._journal is not None:
            self._journal.write(dataclasses.asdict(trial))
        return trial

    def cancel(self, params):
        """Forget a pending suggestion that will never be told (its trial was abandoned), so
        later suggestions are those a study without it would make.

        Examples
        --------
        >>> from repurpose.bo import Real, SearchSpace
        >>> opt = BayesianOptimizer(SearchSpace({'x': Real(0.0, 1.0)}), seed=0)
        >>> first = opt.ask()
        >>> opt.cancel(first)
        >>> opt.ask() == first
        True
        """
        if not self._drop_pending(self.space.check_params(params)):
            raise InvalidParameterError(
                f"{params} is not a pending suggestion of this optimiser.")

    def _drop_pending(self, params):
        """Remove ``params`` (checked) from the pending suggestions; False if not there."""
        x = self.space.encode(params)
        for i, row in enumerate(self._pending):
            if np.max(np.abs(row - x)) < 1e-12:
                del self._pending[i]
                return True
        return False

    def result(self):
        """The best trial so far and the history, as an :class:`OptimizeResult`."""
        ok = [t for t in self.trials if t.status == "ok"]
        if not ok:
            return OptimizeResult(None, None, list(self.trials))
        pick = max if self.maximize else min
        best = pick(ok, key=lambda t: t.value)
        return OptimizeResult(dict(best.params), best.value, list(self.trials))

    def run(self, objective, n_trials, callback=None):
        """Evaluate ``objective`` until ``n_trials`` trials are recorded (counting any told
        before, e.g. in a resumed study), one at a time in this process; exceptions become
        failed trials, and ``callback(trial)`` is called after each ``tell``. An interrupted
        trial (``KeyboardInterrupt``) is forgotten, as :meth:`cancel` does
        (:func:`repurpose.bo.driver.drive` runs the loop). With a journal, its lock is held
        while this runs (another process on it: :class:`~repurpose.exceptions.LockedError`)."""
        n_trials = check_positive_int(n_trials, "n_trials")
        return run_optimizer(self, objective, n_trials, callback=callback)


def minimize(objective: Callable[[Dict[str, Any]], float], space: SearchSpace, n_trials: int,
             seed: Optional[int] = None, maximize: bool = False, acquisition: str = "ei",
             n_initial: Optional[int] = None, state_path=None,
             callback: Optional[Callable[[Trial], None]] = None,
             n_workers: Optional[int] = None, client=None) -> OptimizeResult:
    """Minimise (or maximise) ``objective(params)`` with ``n_trials`` evaluations.

    Trials run one after another, or with ``n_workers`` (or a ``client``) several at once
    on a pool of workers: each new suggestion is conditioned on the trials still running
    (:meth:`BayesianOptimizer.ask`), and each result is told as soon as it arrives, so no
    worker waits for a batch to finish (:mod:`repurpose.bo.parallel`). Both run through
    :func:`repurpose.bo.driver.drive`.

    Parameters
    ----------
    objective : callable
        ``objective(params) -> float`` for a dict of parameter values. An exception or a
        NaN/inf/None value records a failed trial and the study goes on; any other return
        type is an error. Run in parallel, it is sent to the workers, so it must pickle
        (closures do, through Dask).
    space : SearchSpace
        The parameters to search.
    n_trials : int
        Trials recorded in total, counting those of a resumed study.
    seed : int, default=None
        Seeds the initial design and the optimiser; None draws one (kept in the journal).
    maximize : bool, default=False
        Maximise the objective instead.
    acquisition : {'ei', 'ucb', 'pi'}, default='ei'
        See :class:`BayesianOptimizer`.
    n_initial : int, default=None
        Size of the Sobol initial design; ``max(2 * n_dims + 1, 5)`` if None.
    state_path : str or path-like, default=None
        A JSON-lines journal (:mod:`repurpose.bo.state`): every finished trial is appended
        there as it is told, and an existing journal is resumed. Its folder must exist. The
        journal is locked while the study runs (``.<name>.lock`` beside it), so a second
        process on it is refused instead of running the same trials again.
    callback : callable, default=None
        ``callback(trial)`` with each :class:`Trial` once it is told.
    n_workers : int, default=None
        Trials running at once. None: 1 without ``client``, else every worker thread of the
        Dask cluster. More than 1 without ``client`` starts a local Dask cluster of that
        many single-threaded processes for the run (``pip install -c constraints.txt '.[dask]'``
        from a checkout).
    client : distributed.Client, str or concurrent.futures.Executor, default=None
        Where the trials run: a Dask client, the address of a Dask scheduler
        (``'tcp://HOST:8786'``), or an executor (then ``n_workers`` is required). Dask
        workers are first checked to import this version of repurpose.

    Returns
    -------
    OptimizeResult
        The best parameters and value (None if every trial failed) and every trial, in the
        order they were told.

    Raises
    ------
    InvalidParameterError
        For a bad setting, a resumed journal with another space or other settings, an
        objective whose signature cannot take ``params`` (before any trial), or one that
        returns a non-number.
    LockedError
        If another process is running a study on ``state_path``; the message names it
        (process, host, since when). A ``RuntimeError``.
    ModelFileError
        If ``state_path`` holds a corrupted or foreign file.
    ClusterError
        If no scheduler answers at the ``client`` address within 5 s (also a
        ``ConnectionError``), or Dask workers lack repurpose or have another version of it,
        naming them (also a ``RuntimeError``).

    See Also
    --------
    BayesianOptimizer : The ask/tell interface this runs.
    minimize_with_early_stopping : Trials that report as they go and may be stopped early.

    Notes
    -----
    With ``state_path``, trials already in the journal are not repeated, so the objective is
    called ``n_trials`` times over all runs together; run sequentially, the suggestions are
    those of an uninterrupted study. A parallel run is reproducible only up to the order in
    which trials finish (each suggestion depends on the results told before it). Trials that
    were running when the driver died are not in the journal: the resumed study asks afresh
    for them, so only unfinished trials run again. Resuming with another space or other
    settings is an error.

    Examples
    --------
    >>> from repurpose.bo import Real, SearchSpace
    >>> res = minimize(lambda p: (p['x'] - 0.5) ** 2, SearchSpace({'x': Real(0.0, 1.0)}),
    ...                n_trials=8, seed=0)
    >>> len(res.history), res.best_value < 0.01
    (8, True)

    Two trials at a time on a pool of threads (a Dask cluster is used the same way):

    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(2) as pool:
    ...     res = minimize(lambda p: (p['x'] - 0.5) ** 2, SearchSpace({'x': Real(0.0, 1.0)}),
    ...                    n_trials=8, seed=0, n_workers=2, client=pool)
    >>> len(res.history)
    8
    """
    # Long for its docstring; the code is the resume checks and one call of the driver.
    if n_workers is not None:
        n_workers = check_positive_int(n_workers, "n_workers")
    n_trials = check_positive_int(n_trials, "n_trials")
    check_objective(objective, space, ("params",))
    # The journal's lock first: a second process on it is refused before it reads anything.
    with journal_lock(None if state_path is None else os.fspath(state_path)):
        if state_path is not None and os.path.exists(state_path):
            opt = BayesianOptimizer.load(state_path)
            if opt.space != space:
                raise InvalidParameterError(
                    f"state_path {os.fspath(state_path)!r} holds a study over {opt.space!r}, "
                    f"not over the given space. Pass the same space or another state_path.")
            given = {"seed": seed, "maximize": maximize, "acquisition": acquisition,
                     "n_initial": n_initial}
            check_same_settings(state_path, [(key, value, getattr(opt, key))
                                             for key, value in given.items()
                                             if value is not None])
            logger.info("Resuming from %s with %d trials", state_path, len(opt.trials))
        else:
            opt = BayesianOptimizer(space, acquisition=acquisition, n_initial=n_initial,
                                    seed=seed, maximize=maximize, state_path=state_path)
        return run_optimizer(opt, objective, n_trials, callback=callback,
                             parallel=client is not None or n_workers not in (None, 1),
                             n_workers=n_workers, client=client)
