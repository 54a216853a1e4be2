"""Bayesian optimisation of a callable over a named search space (ask/tell and ``minimize``).

search space -> GP surrogate -> acquisition -> acquisition optimiser -> loop, with the state
rewritten atomically after every ``tell`` so that an interrupted study resumes.
"""
from .acquisition import (Acquisition, ExpectedImprovement, LogExpectedImprovement,
                          ProbabilityOfImprovement, UpperConfidenceBound)
from .loop import BayesianOptimizer, OptimizeResult, Trial, minimize
from .optimizer import AcquisitionOptimizer
from .space import Categorical, Integer, Real, SearchSpace
from .surrogate import GPSurrogate

__all__ = ["Real", "Integer", "Categorical", "SearchSpace", "BayesianOptimizer", "minimize",
           "OptimizeResult", "Trial", "GPSurrogate", "Acquisition", "ExpectedImprovement",
           "LogExpectedImprovement", "ProbabilityOfImprovement", "UpperConfidenceBound",
           "AcquisitionOptimizer"]
