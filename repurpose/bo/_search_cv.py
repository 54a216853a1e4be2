"""Hyper-parameter search with cross-validation driven by :class:`BayesianOptimizer`.

:class:`BayesSearchCV` plugs the ask/tell loop into scikit-learn's ``BaseSearchCV`` through
its ``_run_search(evaluate_candidates)`` hook (the same hook ``GridSearchCV`` and
``RandomizedSearchCV`` use), so ``cv_results_``, ``best_params_``, ``best_score_``,
``best_estimator_``, ``refit`` and parallel fold evaluation behave as in scikit-learn.
"""
import numbers

import numpy as np
from sklearn.model_selection._search import BaseSearchCV
from sklearn.utils import check_random_state

from .._validation import check_positive_int
from ..exceptions import InvalidParameterError
from .loop import BayesianOptimizer
from .space import SearchSpace

__all__ = ["BayesSearchCV"]


class BayesSearchCV(BaseSearchCV):
    """Bayesian optimisation of an estimator's hyper-parameters on the mean CV score.

    Each of ``n_iter`` candidates is suggested by a :class:`BayesianOptimizer` (maximising
    the mean test score over the ``cv`` folds) and cross-validated by scikit-learn's
    machinery; a candidate whose fits fail (score NaN with ``error_score=np.nan``) is told to
    the optimiser as a failed trial.

    Parameters
    ----------
    estimator : estimator object
        Cloned for each fit; any scikit-learn compatible estimator (a head, a repurposer).
    search_space : SearchSpace or dict of str to Real, Integer or Categorical
        The hyper-parameters to tune, named as in ``estimator.get_params()`` (nested
        ``step__param`` names work).
    n_iter : int, default=20
        Candidates evaluated, exactly.
    n_points : int, default=1
        Candidates suggested (and cross-validated in parallel with ``n_jobs``) per round.
    acquisition : {'ei', 'ucb', 'pi'}, default='ei'
        Acquisition of the optimiser.
    n_initial : int, default=None
        Size of the Sobol initial design (the optimiser's default if None).
    scoring, n_jobs, refit, cv, verbose, pre_dispatch, error_score, return_train_score
        As in :class:`sklearn.model_selection.RandomizedSearchCV`. With several metrics,
        ``refit`` must name the one to optimise.
    random_state : int, RandomState instance or None, default=None
        Seeds the optimiser; an int makes the search reproducible.

    Attributes
    ----------
    optimizer_ : BayesianOptimizer
        The optimiser after the search (its ``trials`` are the candidates, in order).
    optimizer_result_ : OptimizeResult
        ``optimizer_.result()``: best parameters, best mean score, history (for
        :func:`repurpose.bo.plots.plot_convergence` with ``maximize=True``).
    cv_results_, best_params_, best_score_, best_estimator_, best_index_, ...
        As in scikit-learn's searches.

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
    """

    _parameter_constraints: dict = {
        **BaseSearchCV._parameter_constraints,
        "search_space": "no_validation",
        "n_iter": "no_validation",
        "n_points": "no_validation",
        "acquisition": "no_validation",
        "n_initial": "no_validation",
        "random_state": ["random_state"],
    }

    def __init__(self, estimator, search_space, *, n_iter=20, n_points=1, acquisition="ei",
                 n_initial=None, scoring=None, n_jobs=None, refit=True, cv=None, verbose=0,
                 pre_dispatch="2*n_jobs", random_state=None, error_score=np.nan,
                 return_train_score=False):
        self.search_space = search_space
        self.n_iter = n_iter
        self.n_points = n_points
        self.acquisition = acquisition
        self.n_initial = n_initial
        self.random_state = random_state
        super().__init__(estimator=estimator, scoring=scoring, n_jobs=n_jobs, refit=refit,
                         cv=cv, verbose=verbose, pre_dispatch=pre_dispatch,
                         error_score=error_score, return_train_score=return_train_score)

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

    def _run_search(self, evaluate_candidates):
        space = self._space()
        n_iter = check_positive_int(self.n_iter, "n_iter")
        n_points = check_positive_int(self.n_points, "n_points")
        key = self._score_key()
        opt = BayesianOptimizer(space, acquisition=self.acquisition, n_initial=self.n_initial,
                                seed=self._seed(), maximize=True)
        done = 0
        while done < n_iter:
            batch = opt.ask(min(n_points, n_iter - done))
            results = evaluate_candidates(batch)
            if key not in results:  # a callable scoring that turned out multi-metric
                key = f"mean_test_{self.refit}" if isinstance(self.refit, str) else None
                if key not in results:
                    raise InvalidParameterError(
                        "scoring returned several metrics; set refit to the name of the one "
                        "BayesSearchCV should optimise.")
            scores = results[key][-len(batch):]
            seconds = (results["mean_fit_time"][-len(batch):]
                       + results["mean_score_time"][-len(batch):])
            for params, score, sec in zip(batch, scores, seconds):
                opt.tell(params, float(score), seconds=float(sec))
            done += len(batch)
        self.optimizer_ = opt
        self.optimizer_result_ = opt.result()
