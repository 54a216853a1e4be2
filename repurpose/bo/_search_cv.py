"""Hyper-parameter search with cross-validation driven by :class:`BayesianOptimizer`.

:class:`BayesSearchCV` plugs the ask/tell loop into scikit-learn's ``BaseSearchCV`` through
its ``_run_search(evaluate_candidates)`` hook (the same hook ``GridSearchCV`` and
``RandomizedSearchCV`` use), so ``cv_results_``, ``best_params_``, ``best_score_``,
``best_estimator_``, ``refit`` and parallel fold evaluation behave as in scikit-learn.

With ``state_path``, every evaluated candidate is journalled (:mod:`repurpose.bo._search_journal`)
and a later ``fit`` resumes: ``BaseSearchCV.fit`` builds ``cv_results_`` only from what
``evaluate_candidates`` evaluated in that call, so :meth:`BayesSearchCV._format_results` (the
method it builds them with) puts the journalled candidates' results first, and the optimiser
is rebuilt from the journalled trials, so the search continues as if never stopped.

A round whose fits all fail, which ``BaseSearchCV`` ends the search for, is recorded by
:mod:`repurpose.bo._search_failures` and the search goes on; ``_format_results`` puts such
rounds in their place among the candidates. Only a search in which every fit failed ends
with scikit-learn's error.
"""
import collections.abc
import dataclasses
import logging
import numbers
import os
import time
import warnings
from typing import Any, Dict, List, Optional

import numpy as np
import sklearn
from sklearn.base import clone, is_classifier
from sklearn.model_selection import check_cv
from sklearn.model_selection._search import BaseSearchCV
from sklearn.utils import check_random_state, indexable

from .._validation import check_choice, check_positive_int, is_integer
from ..exceptions import InvalidParameterError, ModelFileError
from ._search_failures import (all_fits_failed, candidate_error, failed_round_outs,
                               raise_if_every_fit_failed, with_metric_names)
from ._search_journal import (candidate_record, check_header_settings, check_same_data,
                              check_same_estimator, check_same_space, data_fingerprint,
                              describe_scoring, estimator_fingerprint, read_candidates,
                              search_header, unfinished_batch)
from .acquisition import ACQUISITIONS
from .loop import BayesianOptimizer
from .space import SearchSpace
from .state import (SEARCH_CV, JournalWriter, check_same_settings, encode_float,
                    journal_lock, read_journal)

logger = logging.getLogger(__name__)

__all__ = ["BayesSearchCV"]


@dataclasses.dataclass
class _SearchRun:
    """What one call of :meth:`BayesSearchCV.fit` hands to ``_run_search`` and
    ``_format_results``: the optimiser, the journal, and the journalled candidates."""

    optimizer: BayesianOptimizer
    n_iter: int
    n_points: int
    key: str
    n_splits: Optional[int] = None
    writer: Optional[JournalWriter] = None
    replay_params: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    replay_out: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    tail: list = dataclasses.field(default_factory=list)  # an unfinished batch's candidates
    tail_size: int = 0
    test_sizes: Optional[List[int]] = None  # each CV split's test size; None: cv is one-shot
    # This fit's rounds, in order: (candidates, None) for one BaseSearchCV recorded, or
    # (candidates, fold results) for one whose fits all failed, which it did not.
    rounds: list = dataclasses.field(default_factory=list)
    sk_params: list = dataclasses.field(default_factory=list)  # what BaseSearchCV recorded
    sk_out: list = dataclasses.field(default_factory=list)

    @property
    def complete(self):
        return len(self.replay_params) >= self.n_iter

    def merged(self):
        """Every candidate of the search, in the order they were suggested, and their fold
        results: the journalled ones, then this fit's rounds."""
        params, out = list(self.replay_params), list(self.replay_out)
        done, n = 0, self.n_splits
        for candidates, failed in self.rounds:
            if failed is None:
                params += self.sk_params[done:done + len(candidates)]
                out += self.sk_out[done * n:(done + len(candidates)) * n]
                done += len(candidates)
            else:
                params += candidates
                out += failed
        return params, with_metric_names(out)


class _SearchEnded(Exception):
    """Raised by ``_run_search`` when ``BaseSearchCV.fit`` does not hold the search's results
    (its last rounds failed), so that :meth:`BayesSearchCV._fit_tail` ends the fit."""


def _tell(optimizer, candidate):
    """Tell ``optimizer`` a journalled candidate's trial, as it was told when evaluated."""
    trial = candidate.trial
    failed = trial["status"] == "failed"
    return optimizer.tell(trial["params"], None if failed else trial["value"],
                          seconds=trial["seconds"], error=trial["error"] if failed else None)


class BayesSearchCV(BaseSearchCV):
    """Bayesian optimisation of an estimator's hyper-parameters on the mean CV score.

    Each of ``n_iter`` candidates is suggested by a :class:`BayesianOptimizer` (maximising
    the mean test score over the ``cv`` folds) and cross-validated by scikit-learn's
    machinery; a candidate whose fits fail (score NaN with ``error_score=np.nan``) is told to
    the optimiser as a failed trial. So is one whose every fit failed, even when its whole
    round failed (which ends scikit-learn's searches): its ``cv_results_`` row holds
    ``error_score``, the errors come in a ``FitFailedWarning``, and the search goes on. Only
    a search in which every fit failed raises scikit-learn's ``ValueError('All the N fits
    failed ...')``, at its end; with ``error_score='raise'`` the first failed fit raises
    (and with ``cv`` a one-shot iterator, whose test sizes cannot be known beforehand, a
    round whose fits all fail still ends the search: pass ``list(cv)``).
    With ``state_path``, every candidate is journalled as it is evaluated, and a ``fit`` on
    an existing journal resumes the search.

    Parameters
    ----------
    estimator : estimator object
        Cloned for each fit; any scikit-learn compatible estimator (a head, a repurposer).
    search_space : SearchSpace or dict of str to Real, Integer or Categorical
        The hyper-parameters to tune, named as in ``estimator.get_params()`` (nested
        ``step__param`` names work).
    n_iter : int, default=20
        Candidates evaluated, exactly; with ``state_path``, in total, counting those already
        journalled (a journal holding more keeps them all, with a warning).
    n_points : int, default=1
        Candidates suggested (and cross-validated in parallel with ``n_jobs``) per round.
    acquisition : {'ei', 'ucb', 'pi'}, default='ei'
        Acquisition of the optimiser.
    n_initial : int, default=None
        Size of the Sobol initial design (the optimiser's default if None; resuming, the
        journal's).
    scoring, n_jobs, refit, cv, verbose, pre_dispatch, error_score, return_train_score
        As in :class:`sklearn.model_selection.RandomizedSearchCV`. With several metrics,
        ``refit`` must name the one to optimise.
    random_state : int, RandomState instance or None, default=None
        Seeds the optimiser; an int makes the search reproducible. Resuming, an int must be
        the journal's seed; None or a RandomState instance continue with the journal's seed.
    state_path : str or path-like, default=None
        A JSON-lines journal of the search (:mod:`repurpose.bo.state`): each candidate is
        appended, and fsynced, once cross-validated, with its parameters, each split's test
        scores (and train scores with ``return_train_score``; every metric with several),
        fit and score times, and the value told to the optimiser. ``fit`` on an existing
        journal resumes the search: journalled candidates are not fitted again, and the new
        ones are those the uninterrupted search would have suggested. Its folder must exist.
        The journal is locked while ``fit`` runs (``.<name>.lock`` beside it), so a second
        process on it is refused. See Notes for what must match to resume.

    Attributes
    ----------
    optimizer_ : BayesianOptimizer
        The optimiser after the search (its ``trials`` are the candidates, in order).
    optimizer_result_ : OptimizeResult
        ``optimizer_.result()``: best parameters, best mean score, history (for
        :func:`repurpose.bo.plots.plot_convergence` with ``maximize=True``).
    cv_results_, best_params_, best_score_, best_estimator_, best_index_, ...
        As in scikit-learn's searches; resumed, they cover the journalled candidates too.

    See Also
    --------
    minimize : The same optimiser on any objective, resumable with ``state_path`` too.

    Notes
    -----
    A journal resumes only the search that wrote it. Before fitting anything, ``fit``
    refuses a journal with another ``search_space`` or other settings
    (:class:`~repurpose.exceptions.InvalidParameterError` naming the setting):
    ``random_state`` (an int), ``acquisition``, ``n_initial`` (if given), ``n_points``,
    ``scoring`` (metric names; a callable by its name), the ``refit`` metric,
    ``return_train_score``, ``error_score``, the number of CV splits, and the estimator's
    class and plain parameters (numbers, strings, booleans, None and lists of them;
    ``n_jobs``, ``verbose``, ``progress`` and ``ctx`` excepted). Objects among the
    estimator's parameters (a source model, a callable) and fit parameters
    (``sample_weight``) are not compared: keep them the same. It also refuses other data
    (:class:`~repurpose.exceptions.DataError` saying what differs): another shape, dtype or
    content (SHA-256) of ``X`` or ``y`` (arrays of numbers or strings; of other inputs only
    the length is compared), or other CV train/test indices. ``n_iter`` is not a setting: a
    resumed search with a larger ``n_iter`` continues.

    A search interrupted after ``k`` candidates and resumed ends with the parameters and
    scores of the uninterrupted search; a batch (``n_points > 1``) journalled in part is
    completed with the suggestions the uninterrupted search made. A search that ended
    because ``n_iter=k`` continues identically when ``k`` is a multiple of ``n_points`` (a
    smaller last batch is suggested differently). A torn last line (the process was killed
    while writing it) is dropped with a warning and that candidate is evaluated again; a
    foreign or corrupted file is a :class:`~repurpose.exceptions.ModelFileError`; nothing is
    overwritten.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from repurpose.bo import Real
    >>> X, y = load_iris(return_X_y=True)
    >>> search = BayesSearchCV(LogisticRegression(max_iter=500),
    ...                        {'C': Real(1e-3, 1e2, log=True)}, n_iter=6, cv=3,
    ...                        random_state=0).fit(X, y)
    >>> len(search.cv_results_['params']), search.best_score_ > 0.9
    (6, True)

    With a journal, a second ``fit`` with a larger ``n_iter`` continues the search, fitting
    only the new candidates:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), 'search.jsonl')
    >>> search = BayesSearchCV(LogisticRegression(max_iter=500),
    ...                        {'C': Real(1e-3, 1e2, log=True)}, n_iter=3, cv=3,
    ...                        random_state=0, state_path=path).fit(X, y)
    >>> search = search.set_params(n_iter=6).fit(X, y)
    >>> len(search.cv_results_['params']), search.best_score_ > 0.9
    (6, True)
    """

    _parameter_constraints: dict = {
        **BaseSearchCV._parameter_constraints,
        # Checked by fit itself, with repurpose's messages and error types.
        "search_space": "no_validation",
        "n_iter": "no_validation",
        "n_points": "no_validation",
        "acquisition": "no_validation",
        "n_initial": "no_validation",
        "random_state": ["random_state"],
        "state_path": "no_validation",
    }

    def __init__(self, estimator, search_space, *, n_iter=20, n_points=1, acquisition="ei",
                 n_initial=None, scoring=None, n_jobs=None, refit=True, cv=None, verbose=0,
                 pre_dispatch="2*n_jobs", random_state=None, error_score=np.nan,
                 return_train_score=False, state_path=None):
        self.search_space = search_space
        self.n_iter = n_iter
        self.n_points = n_points
        self.acquisition = acquisition
        self.n_initial = n_initial
        self.random_state = random_state
        self.state_path = state_path
        super().__init__(estimator=estimator, scoring=scoring, n_jobs=n_jobs, refit=refit,
                         cv=cv, verbose=verbose, pre_dispatch=pre_dispatch,
                         error_score=error_score, return_train_score=return_train_score)

    # ------------------------------------------------------------------------- checks
    def _space(self):
        space = self.search_space
        if isinstance(space, dict):
            space = SearchSpace(space)
        if not isinstance(space, SearchSpace):
            raise InvalidParameterError(
                f"search_space must be a repurpose.bo.SearchSpace or a dict of name -> "
                f"Real/Integer/Categorical, got {type(space).__name__}.")
        valid = self.estimator.get_params(deep=True)
        unknown = [n for n in space.names if n not in valid]
        if unknown:
            raise InvalidParameterError(
                f"search_space names {unknown} are not parameters of "
                f"{type(self.estimator).__name__}; valid names include "
                f"{sorted(valid)[:12]}.")
        return space

    def _score_key(self):
        multi = not (self.scoring is None or isinstance(self.scoring, str)
                     or callable(self.scoring))
        if not multi:
            return "mean_test_score"
        if not isinstance(self.refit, str):
            raise InvalidParameterError(
                f"With several scoring metrics, refit must name the metric BayesSearchCV "
                f"optimises (one of {list(self.scoring)}), got refit={self.refit!r}.")
        return f"mean_test_{self.refit}"

    def _seed(self):
        if isinstance(self.random_state, numbers.Integral) and not isinstance(
                self.random_state, bool) and self.random_state >= 0:
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(2 ** 31 - 1))

    def _state_path(self):
        """``state_path`` as a str after checking it names a file in a writable folder."""
        if self.state_path is None:
            return None
        if not isinstance(self.state_path, (str, os.PathLike)) or isinstance(
                os.fspath(self.state_path), bytes):
            raise InvalidParameterError(
                f"state_path must be a file path (str or path-like) or None, got "
                f"{self.state_path!r} of type {type(self.state_path).__name__}.")
        path = os.fspath(self.state_path)
        if os.path.isdir(path):
            raise InvalidParameterError(
                f"state_path {path!r} is a folder; it must name the journal file, e.g. "
                f"{os.path.join(path, 'search.jsonl')!r}.")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"Folder {folder!r} for state_path {path!r} does not "
                                    f"exist; create it first.")
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"Folder {folder!r} for state_path {path!r} is not "
                                  f"writable; choose a state_path in a folder you can write.")
        return path

    def _cv_splits(self, X, y, params):
        """The CV splits (train, test) as ``BaseSearchCV.fit`` computes them, or None for a
        one-shot iterator, which computing them here would use up."""
        if isinstance(self.cv, collections.abc.Iterator):
            return None
        X, y = indexable(X, y)
        if sklearn.get_config()["enable_metadata_routing"]:
            split_params = self._get_routed_params_for_fit(params).splitter.split
        else:  # as BaseSearchCV.fit: only groups goes to the splitter
            split_params = {"groups": params.get("groups")}
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        return list(cv.split(X, y, **split_params))

    def _journal_settings(self, space, n_points, X, y, splits):
        """Everything but the optimiser's settings that a journal stores to compare on
        resume, the data's fingerprint included (``splits``: :meth:`_cv_splits`)."""
        if splits is None:
            raise InvalidParameterError(
                f"With state_path, cv must be an int, a CV splitter or a list of (train, test) "
                f"splits, got a one-shot iterator ({type(self.cv).__name__}) that comparing "
                f"the splits with the journal's would use up. Pass list(cv).")
        X, y = indexable(X, y)
        error_score = self.error_score
        return {"n_points": n_points, "scoring": describe_scoring(self.scoring),
                "refit": self.refit if isinstance(self.refit, str) else None,
                "return_train_score": bool(self.return_train_score),
                "error_score": error_score if isinstance(error_score, str)
                else encode_float(error_score),
                "n_splits": len(splits),
                "estimator": estimator_fingerprint(self.estimator, space.names),
                "data": data_fingerprint(X, y, splits)}

    # ------------------------------------------------------------------------- fit
    def fit(self, X, y=None, **params):
        """Run the search: cross-validate ``n_iter`` candidates, then refit the best.

        Everything is checked before the first fit: the parameters, and with
        ``state_path`` the journal (resumed if it exists, see the class Notes).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Targets; None for unsupervised estimators.
        **params : dict of str -> object
            Passed to the estimator's ``fit``, the scorer and the CV splitter (``groups``),
            as in scikit-learn's searches.

        Returns
        -------
        self : BayesSearchCV
            Fitted.

        Raises
        ------
        InvalidParameterError
            For a bad setting, or a journal written with another space or other settings.
        DataError
            For a journal written on other data or CV splits.
        LockedError
            If another process is running a search on ``state_path`` (a ``RuntimeError``).
        ModelFileError
            If ``state_path`` holds a corrupted or foreign file.
        FileNotFoundError
            If the folder of ``state_path`` does not exist.
        ValueError
            scikit-learn's ``'All the N fits failed'``, if every fit of the search failed
            (journalled candidates included); with ``error_score='raise'``, the first failed
            fit's error.
        """
        if not sklearn.get_config()["skip_parameter_validation"]:
            self._validate_params()  # scikit-learn's checks of the inherited parameters
        space = self._space()
        n_iter = check_positive_int(self.n_iter, "n_iter")
        n_points = check_positive_int(self.n_points, "n_points")
        check_choice(self.acquisition, "acquisition", tuple(ACQUISITIONS))
        if self.n_initial is not None:
            check_positive_int(self.n_initial, "n_initial")
        key = self._score_key()
        path = self._state_path()
        splits = self._cv_splits(X, y, params)
        settings = None if path is None else self._journal_settings(space, n_points, X, y,
                                                                    splits)
        # The journal's lock first: a second process on it is refused before it reads it.
        with journal_lock(path):
            run = self._start(path, space, settings, _SearchRun(None, n_iter, n_points, key))
            if splits is not None:
                run.test_sizes = [len(test) for _, test in splits]
                run.n_splits = run.n_splits or len(splits)
            self._search_run = run
            try:
                if run.complete:
                    self._fit_tail(X, y, params)
                else:
                    try:
                        super().fit(X, y, **params)
                    except _SearchEnded:
                        self._fit_tail(X, y, params)
            finally:
                del self._search_run
        self.optimizer_ = run.optimizer
        self.optimizer_result_ = run.optimizer.result()
        return self

    def _start(self, path, space, settings, run):
        """Fill ``run`` with a new optimiser (and journal), or with the one resumed from the
        journal at ``path`` and its candidates."""
        if path is None or not os.path.exists(path):
            run.optimizer = BayesianOptimizer(space, acquisition=self.acquisition,
                                              n_initial=self.n_initial, seed=self._seed(),
                                              maximize=True)
            if path is not None:
                header = search_header(space, {"optimizer": run.optimizer.settings(),
                                               **settings})
                run.writer = JournalWriter(path, lambda: header)
            return run
        journal = read_journal(path, SEARCH_CV)
        stored = journal.header["settings"]
        check_header_settings(path, stored)
        check_same_space(path, journal.header["space"], space)
        optimizer = stored["optimizer"]
        given = [("random_state", self.random_state, optimizer.get("seed")),
                 ("acquisition", self.acquisition, optimizer.get("acquisition")),
                 ("n_initial", self.n_initial, optimizer.get("n_initial"))]
        given = [(name, value, old) for name, value, old in given
                 if value is not None and (name != "random_state" or is_integer(value))]
        given += [(name, settings[name], stored[name])
                  for name in ("n_points", "scoring", "refit", "return_train_score",
                               "error_score", "n_splits")]
        check_same_settings(path, given, noun="search")
        check_same_estimator(path, settings["estimator"], stored["estimator"])
        check_same_data(path, settings["data"], stored["data"])
        self._replay(path, journal, space, stored, run)
        run.writer = JournalWriter(path, lambda: journal.header, journal.records, journal.clean)
        logger.info("Resuming the search journalled in %s: %d of %d candidates done", path,
                    len(run.replay_params), run.n_iter)
        return run

    def _replay(self, path, journal, space, stored, run):
        """Rebuild the optimiser from the journal's candidates and queue their results; the
        candidates of a batch the journal holds only part of are told in ``_run_search``, so
        the rest of that batch is suggested as the uninterrupted search suggested it."""
        candidates = read_candidates(path, journal, space, stored["n_splits"])
        if len(candidates) > run.n_iter:
            warnings.warn(f"state_path {path!r} holds {len(candidates)} candidates, more than "
                          f"n_iter={run.n_iter}; cv_results_ keeps them all.", UserWarning,
                          stacklevel=4)
        unfinished = None if len(candidates) >= run.n_iter else unfinished_batch(candidates)
        told = candidates if unfinished is None else candidates[:-unfinished[0]]
        try:
            run.optimizer = BayesianOptimizer.from_state(
                {"space": space.to_dict(), "settings": dict(stored["optimizer"], maximize=True),
                 "trials": [c.trial for c in told]})
        except (InvalidParameterError, TypeError) as err:
            raise ModelFileError(
                f"BayesSearchCV journal file {path!r} holds optimiser settings this repurpose "
                f"cannot use ({type(err).__name__}: {err}); it was written by another version. "
                f"Resume it with that version, or choose another state_path.") from err
        if unfinished is not None:
            run.tail, run.tail_size = candidates[len(told):], unfinished[1]
        run.n_splits = stored["n_splits"]
        run.replay_params = [c.params for c in candidates]
        run.replay_out = [out for c in candidates for out in c.splits]

    def _format_results(self, candidate_params, n_splits, out, more_results=None):
        """``BaseSearchCV.fit`` builds ``cv_results_`` (and from it ``best_index_``, the
        best parameters and the refit) with this method, from the candidates evaluated in
        this call of ``fit`` and their fold results ``out``; the journalled candidates of a
        resumed search go first, and the rounds whose fits all failed (which it did not
        record) in their place, so the results cover the whole search without re-fitting
        anything (BayesSearchCV passes no ``more_results``)."""
        run = getattr(self, "_search_run", None)
        if run is None:  # not within fit
            return super()._format_results(candidate_params, n_splits, out, more_results)
        run.sk_params, run.sk_out, run.n_splits = list(candidate_params), list(out), n_splits
        params, outs = run.merged()
        return super()._format_results(params, n_splits, outs, more_results)

    def _evaluate(self, evaluate_candidates, candidates, key):
        """Cross-validate a round's ``candidates``: ``(key, told, outs)``, ``told`` holding
        each candidate's ``(value, seconds, error)`` for the optimiser and ``outs`` their
        fold results (``key``: the ``cv_results_`` column of the optimised score, as found).
        A round whose fits all failed gives failed trials instead of scikit-learn's error
        (:mod:`repurpose.bo._search_failures` says how, and on what it relies)."""
        run = self._search_run
        run.rounds.append((candidates, None))
        recorded, started = len(run.sk_params), time.perf_counter()
        try:
            results = evaluate_candidates(candidates)
        except ValueError as err:
            if (isinstance(self.error_score, str) or run.test_sizes is None
                    or len(run.sk_params) != recorded
                    or not all_fits_failed(err, len(candidates) * len(run.test_sizes))):
                raise
            failed = failed_round_outs(err, len(candidates), run.test_sizes,
                                       time.perf_counter() - started, self.error_score,
                                       self.return_train_score)
            run.rounds[-1] = (candidates, failed)
            n = len(run.test_sizes)
            told = [(None, float(np.mean([o["fit_time"] for o in failed[i * n:(i + 1) * n]])),
                     candidate_error(failed[i * n:(i + 1) * n])) for i in range(len(candidates))]
            return key, told, failed
        if key not in results:  # a callable scoring that turned out multi-metric
            key = f"mean_test_{self.refit}" if isinstance(self.refit, str) else None
            if key not in results:
                raise InvalidParameterError(
                    "scoring returned several metrics; set refit to the name of the one "
                    "BayesSearchCV should optimise.")
        k = len(candidates)
        seconds = results["mean_fit_time"][-k:] + results["mean_score_time"][-k:]
        told = [(float(score), float(sec), None) for score, sec in zip(results[key][-k:],
                                                                         seconds)]
        return key, told, run.sk_out[len(run.sk_out) - k * run.n_splits:]

    def _run_search(self, evaluate_candidates):
        run = self._search_run
        opt, key = run.optimizer, run.key
        while len(opt.trials) + len(run.tail) < run.n_iter:
            start, known = len(opt.trials), run.tail
            size = min(run.tail_size if known else run.n_points, run.n_iter - start)
            batch = opt.ask(size)
            run.tail = []
            if batch[:len(known)] != [c.params for c in known]:
                # Not the suggestions journalled (another optimiser version): tell those as
                # they are and ask afresh.
                for params in batch:
                    opt.cancel(params)
                for candidate in known:
                    _tell(opt, candidate)
                continue
            new = batch[len(known):]
            key, told, outs = self._evaluate(evaluate_candidates, new, key)
            for candidate in known:  # the start of this batch, evaluated before a restart
                _tell(opt, candidate)
            n_splits = run.n_splits
            for i, (params, (value, sec, error)) in enumerate(zip(new, told)):
                trial = opt.tell(params, value, seconds=sec, error=error)
                if run.writer is not None:
                    run.writer.write(candidate_record(
                        trial, outs[i * n_splits:(i + 1) * n_splits], (start, size)))
        if run.rounds and run.rounds[-1][1] is not None:
            # BaseSearchCV.fit holds the results of its last recorded round (or none): end
            # the fit on all of them instead.
            raise _SearchEnded()

    def _fit_tail(self, X, y, params):
        """The end of ``BaseSearchCV.fit`` (scikit-learn 1.7.2) for a search whose results
        it does not hold: every candidate journalled (it cannot get there without evaluating
        a candidate: it reads the first new one's scores), or the last rounds' fits all
        failed (it holds the results of the round before). Its steps after the search are
        taken here, in the same order, on all of the search's results; if every fit of the
        search failed, scikit-learn's error is raised instead."""
        run = self._search_run
        _, outs = run.merged()
        raise_if_every_fit_failed(outs, self.error_score)
        scorers, refit_metric = self._get_scorers()
        results = self._format_results(run.sk_params, run.n_splits, run.sk_out)
        first_test_score = next(out["test_scores"] for out in outs if out["fit_error"] is None)
        self.multimetric_ = isinstance(first_test_score, dict)
        if callable(self.scoring) and self.multimetric_:
            self._check_refit_for_multimetric(first_test_score)
            refit_metric = self.refit
        if self.refit or not self.multimetric_:
            self.best_index_ = self._select_best_index(self.refit, refit_metric, results)
            if not callable(self.refit):
                self.best_score_ = results[f"mean_test_{refit_metric}"][self.best_index_]
            self.best_params_ = results["params"][self.best_index_]
        if self.refit:
            X, y = indexable(X, y)
            fit_params = self._get_routed_params_for_fit(params).estimator.fit
            self.best_estimator_ = clone(self.estimator).set_params(
                **clone(self.best_params_, safe=False))
            start = time.time()
            if y is None:
                self.best_estimator_.fit(X, **fit_params)
            else:
                self.best_estimator_.fit(X, y, **fit_params)
            self.refit_time_ = time.time() - start
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
        # scikit-learn keeps a single metric's scorer itself, several as their dict.
        self.scorer_ = getattr(scorers, "_scorers", scorers)
        self.cv_results_ = results
        self.n_splits_ = run.n_splits
