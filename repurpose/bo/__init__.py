"""Bayesian optimisation of a callable over a named search space (ask/tell and ``minimize``).

search space -> GP surrogate -> acquisition -> acquisition optimiser -> loop, with every
``tell`` appended to a JSON-lines journal (:mod:`repurpose.bo.state`) so that an interrupted
study resumes.
:class:`BayesSearchCV` tunes an estimator by cross-validation with that loop;
:mod:`repurpose.bo.plots` draws convergence and parameter plots (imported on its own, as it
needs matplotlib).
"""
from .acquisition import (Acquisition, ExpectedImprovement, LogExpectedImprovement,
                          ProbabilityOfImprovement, UpperConfidenceBound)
from .loop import BayesianOptimizer, OptimizeResult, Trial, minimize
from .optimizer import AcquisitionOptimizer
from ._search_cv import BayesSearchCV
from .space import Categorical, Integer, Real, SearchSpace
from .surrogate import GPSurrogate, fit_choosing_warping, warp_outputs
from .curves import CurvePrediction, LearningCurveModel
from .scheduler import (EarlyStoppingResult, HyperbandScheduler, ScheduledTrial,
                        minimize_with_early_stopping)

__all__ = ["Real", "Integer", "Categorical", "SearchSpace", "BayesianOptimizer", "minimize",
           "OptimizeResult", "Trial", "GPSurrogate", "warp_outputs", "fit_choosing_warping",
           "Acquisition", "ExpectedImprovement", "LogExpectedImprovement",
           "ProbabilityOfImprovement", "UpperConfidenceBound",
           "AcquisitionOptimizer", "BayesSearchCV",
           "LearningCurveModel", "CurvePrediction", "HyperbandScheduler",
           "minimize_with_early_stopping", "EarlyStoppingResult", "ScheduledTrial"]
