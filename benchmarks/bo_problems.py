"""Problem suite for benchmarking ``repurpose.bo``: shifted synthetic functions, noisy variants,
mixed spaces with a known optimum, and real tuning tasks on data scikit-learn ships.

    from bo_problems import PROBLEMS, make     # with benchmarks/ on sys.path
    problem = make("levy6", seed=3)
    value = problem.objective(problem.space.from_uniform(u))

Each entry of :data:`PROBLEMS` maps a name to a factory ``factory(seed) -> Problem``; use
:func:`make`. A :class:`Problem` carries the search space, the objective (one params dict in,
one float to minimise out), the known minimum ``optimum`` and a point ``argmin`` reaching it
(None for the real tasks), the evaluation budget ``n_evals`` (30 for d <= 2 and for the
4-parameter mixed space the issue measured at 30, otherwise 50), the noise level, the tags, and
``clean``: the noise-free objective, to score the regret of a noisy run at its best point.

Synthetic functions follow the Virtual Library of Simulation Experiments (VLSE,
https://www.sfu.ca/~ssurjano/optimization.html; the page name is given with each one). Every
one except Michalewicz is SHIFTED: ``f_shifted(x) = f(x - shift)`` on the box given, so the
minimiser moves from ``argmin_standard`` to ``argmin_standard + shift`` and is neither the
centre nor a corner of the box. The shift vectors are fixed (listed with each function) and
the minimum value ``f*`` is unchanged: each function's minimum over the whole shifted box is
its standard ``f*`` (for Hartmann-3/6 and Shekel checked by multi-start L-BFGS over a region
wider than the box; the others are non-negative sums or have their minimum over all of R^d).
Where a minimiser is only known to a few digits, the argmin and ``f*`` below were refined by
local optimisation to ~1e-12, so ``objective(argmin) == optimum`` holds to 1e-9.

Noisy variants add Gaussian noise of standard deviation ``noise``; the k-th call of a
problem built with ``seed`` draws from ``numpy.random.default_rng([seed, k])``, so a run
that evaluates the same points in the same order gets the same values, and another seed
gets other values.
"""
import dataclasses
import difflib
import math
import os
import sys
import warnings
from functools import lru_cache

import numpy as np

try:
    from repurpose.bo import Categorical, Integer, Real, SearchSpace
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    from repurpose.bo import Categorical, Integer, Real, SearchSpace

__all__ = ["Problem", "PROBLEMS", "TAGS", "make"]

#: The words a problem's ``tags`` are drawn from.
TAGS = frozenset({"multimodal", "unimodal", "valley", "plate", "bowl", "separable",
                  "non-separable", "mixed", "noisy", "real"})


@dataclasses.dataclass(frozen=True)
class Problem:
    """One benchmark problem.

    Attributes
    ----------
    name : str
        Its key in :data:`PROBLEMS`.
    space : SearchSpace
        Where to search.
    objective : callable
        ``objective(params) -> float``, to minimise; noisy for the noisy variants.
    optimum : float or None
        The known minimum of the noise-free objective over ``space``; None for real tasks.
    argmin : dict or None
        A params dict where the noise-free objective equals ``optimum``; None if unknown.
    n_evals : int
        Evaluation budget.
    noise : float
        Standard deviation of the additive Gaussian noise (0.0 for noise-free problems).
    tags : tuple of str
        Character of the problem, words from :data:`TAGS`.
    clean : callable
        The noise-free objective (the same as ``objective`` when ``noise == 0``).
    shift : tuple of float or None
        The shift applied to the standard function's argument (None where not shifted).
    source : str
        Where the function comes from.
    """

    name: str
    space: SearchSpace
    objective: object
    optimum: object
    argmin: object
    n_evals: int
    noise: float
    tags: tuple
    clean: object = None
    shift: object = None
    source: str = ""

    @property
    def dim(self):
        """Number of parameters."""
        return self.space.n_dims


# ----------------------------------------------------------------------------- helpers
def _names(d):
    return [f"x{i}" for i in range(d)]


def _box(lows, highs):
    return SearchSpace({n: Real(float(lo), float(hi))
                        for n, lo, hi in zip(_names(len(lows)), lows, highs)})


def _vector_objective(f, d, shift):
    """Objective of params ``{'x0': .., 'x{d-1}': ..}``: ``f(x - shift)`` as a Python float."""
    names, shift = _names(d), np.asarray(shift, dtype=float)

    def objective(params):
        return float(f(np.array([params[n] for n in names], dtype=float) - shift))
    return objective


class _Noisy:
    """``clean(params) + noise * N(0, 1)``; the k-th call draws from ``default_rng([seed, k])``."""

    def __init__(self, clean, noise, seed):
        self.clean, self.noise, self.seed, self.n_calls = clean, float(noise), int(seed), 0

    def __call__(self, params):
        eps = np.random.default_rng([self.seed, self.n_calls]).standard_normal()
        self.n_calls += 1
        return float(self.clean(params) + self.noise * eps)


def _synthetic(name, f, lows, highs, argmin_standard, optimum, shift, n_evals, tags, source):
    """Factory of a shifted synthetic problem on the box ``[lows, highs]``."""
    d = len(lows)
    shift = (0.0,) * d if shift is None else tuple(float(s) for s in shift)
    argmin = {n: float(a + s) for n, a, s in zip(_names(d), argmin_standard, shift)}

    def factory(seed=0):
        obj = _vector_objective(f, d, shift)
        return Problem(name, _box(lows, highs), obj, float(optimum), argmin, n_evals, 0.0,
                       tuple(tags), clean=obj, shift=None if not any(shift) else shift,
                       source=source)
    return factory


def _noisy(base_factory, name, noise):
    """Factory of a noisy variant of ``base_factory``'s problem."""
    def factory(seed=0):
        base = base_factory(seed)
        return dataclasses.replace(base, name=name, objective=_Noisy(base.clean, noise, seed),
                                   noise=float(noise), tags=base.tags + ("noisy",))
    return factory


# ----------------------------------------------------------------------------- functions
# VLSE "Branin Function": x1 in [-5, 10], x2 in [0, 15]; f* = 0.397887 at (-pi, 12.275),
# (pi, 2.275), (9.42478, 2.475) (its minimum over all of R^2). Shift (1.0, 1.5): the
# minimisers move to (-2.1416, 13.775) and (4.1416, 3.775) (the third leaves the box).
def branin(x):
    x1, x2 = x
    return ((x2 - 5.1 / (4 * math.pi ** 2) * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


# VLSE "Six-Hump Camel Function": x1 in [-3, 3], x2 in [-2, 2]; f* = -1.0316 at
# +-(0.0898, -0.7126), next to the centre. Shift (1.1, -0.6).
def six_hump_camel(x):
    x1, x2 = x
    return ((4 - 2.1 * x1 ** 2 + x1 ** 4 / 3) * x1 ** 2 + x1 * x2
            + (-4 + 4 * x2 ** 2) * x2 ** 2)


_CAMEL_ARGMIN = (0.08984201368301331, -0.7126564032704135)
_CAMEL_MIN = -1.0316284534898774


# VLSE "Goldstein-Price Function": x in [-2, 2]^2; f* = 3 at (0, -1). We use log(f),
# f* = log 3, to tame its range of about 1e6. Shift (0.7, 0.5): argmin (0.7, -0.5).
def goldstein_price_log(x):
    x1, x2 = x
    a = 1 + (x1 + x2 + 1) ** 2 * (19 - 14 * x1 + 3 * x1 ** 2 - 14 * x2 + 6 * x1 * x2
                                  + 3 * x2 ** 2)
    b = 30 + (2 * x1 - 3 * x2) ** 2 * (18 - 32 * x1 + 12 * x1 ** 2 + 48 * x2 - 36 * x1 * x2
                                       + 27 * x2 ** 2)
    return math.log(a * b)


# VLSE "Hartmann 3-D Function": x in [0, 1]^3; f* = -3.86278 at (0.114614, 0.555649,
# 0.852547). Shift (0.35, -0.2, -0.3). Argmin and f* refined by BFGS.
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547],
                         [381, 5743, 8828]])
_H3_ARGMIN = (0.11458889702441237, 0.5556488967529246, 0.8525469840241771)
_H3_MIN = -3.862779787332663
# VLSE "Hartmann 6-D Function": x in [0, 1]^6; f* = -3.32237 at (0.20169, 0.150011, 0.476874,
# 0.275332, 0.311652, 0.6573). Shift (0.4, 0.25, -0.2, 0.3, 0.2, -0.25). Refined by BFGS.
_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886],
                         [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650],
                         [4047, 8828, 8732, 5743, 1091, 381]])
_H6_ARGMIN = (0.2016895139776094, 0.1500106901994652, 0.4768739709136298,
              0.2753324302396454, 0.3116516154723294, 0.6573005311849265)
_H6_MIN = -3.3223680114155147


def _hartmann(A, P):
    def f(x):
        return -np.sum(_H_ALPHA * np.exp(-np.sum(A * (x - P) ** 2, axis=1)))
    return f


# VLSE "Ackley Function" (a=20, b=0.2, c=2 pi): x in [-32.768, 32.768]^d; f* = 0 at 0.
# d = 5, shift (7.3, -12.1, 3.4, 18.6, -5.5).
def ackley(x):
    return (-20 * np.exp(-0.2 * np.sqrt(np.mean(x ** 2)))
            - np.exp(np.mean(np.cos(2 * np.pi * x))) + 20 + math.e)


# VLSE "Rastrigin Function": x in [-5.12, 5.12]^d; f* = 0 at 0. d = 4, shift
# (1.23, -2.47, 0.61, 3.05).
def rastrigin(x):
    return 10 * len(x) + np.sum(x ** 2 - 10 * np.cos(2 * np.pi * x))


# VLSE "Levy Function": x in [-10, 10]^d; f* = 0 at (1, ..., 1). d = 6, shift
# (-3.2, 2.5, 4.1, -1.7, 0.9, -5.3).
def levy(x):
    w = 1 + (x - 1) / 4
    return (np.sin(np.pi * w[0]) ** 2
            + np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:-1] + 1) ** 2))
            + (w[-1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[-1]) ** 2))


# VLSE "Rosenbrock Function": x in [-5, 10]^d; f* = 0 at (1, ..., 1). d = 4, shift
# (-2.0, 1.7, 3.0, -0.5).
def rosenbrock(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (x[:-1] - 1) ** 2)


# VLSE "Styblinski-Tang Function": x in [-5, 5]^d; f* = -39.16617 d at x_i = -2.903534
# (-39.16599 d on the VLSE page, from the rounded argmin). d = 8, shift
# (5.5, 0.4, 4.9, 1.2, 6.1, -1.3, 3.7, 0.8): five coordinates' minimisers move to the
# positive side, where the standard function has its local minimum.
def styblinski_tang(x):
    return 0.5 * np.sum(x ** 4 - 16 * x ** 2 + 5 * x)


_ST_ARGMIN_1D = -2.9035340276126953
_ST_MIN_1D = 0.5 * (_ST_ARGMIN_1D ** 4 - 16 * _ST_ARGMIN_1D ** 2 + 5 * _ST_ARGMIN_1D)


# VLSE "Zakharov Function": x in [-5, 10]^d; f* = 0 at 0. d = 10, shift
# (1.5, -2.0, 3.2, 0.4, -1.1, 4.5, 2.2, -3.4, 0.9, 5.6).
def zakharov(x):
    s = np.sum(0.5 * np.arange(1, len(x) + 1) * x)
    return np.sum(x ** 2) + s ** 2 + s ** 4


# VLSE "Michalewicz Function" (m = 10): x in [0, pi]^d; f* = -4.687658 for d = 5. Not
# shifted: outside [0, pi] the function goes lower than f*, and its minimiser is already
# away from the centre and the corners. The minimiser, coordinate by coordinate (it is
# separable), found on a grid of 2e5 points and refined.
def michalewicz(x):
    i = np.arange(1, len(x) + 1)
    return -np.sum(np.sin(x) * np.sin(i * x ** 2 / np.pi) ** 20)


_MICH_ARGMIN = (2.2029055201651713, 1.5707963267910152, 1.2849915705402861,
                1.9230584698594912, 1.7204697725773481)
_MICH_MIN = -4.687658179088148


# VLSE "Griewank Function": x in [-600, 600]^d; f* = 0 at 0. d = 6 on [-60, 60]^6 (a tenth
# of VLSE's box, so that the ripples, not the bowl, decide the regret at 50 evaluations),
# shift (13.1, -21.7, 8.4, -4.9, 17.3, 6.2).
def griewank(x):
    i = np.arange(1, len(x) + 1)
    return 1 + np.sum(x ** 2) / 4000 - np.prod(np.cos(x / np.sqrt(i)))


# VLSE "Sum of Different Powers Function": x in [-1, 1]^d; f* = 0 at 0. d = 5, shift
# (0.3, -0.45, 0.2, 0.55, -0.25).
def sum_powers(x):
    return np.sum(np.abs(x) ** np.arange(2, len(x) + 2))


# VLSE "Dixon-Price Function": x in [-10, 10]^d; f* = 0 at x_i = 2^(-(2^i - 2) / 2^i)
# (and with the last coordinate's sign flipped). d = 5, shift (-3.1, 2.4, -1.6, 4.2, 0.8).
def dixon_price(x):
    i = np.arange(2, len(x) + 1)
    return (x[0] - 1) ** 2 + np.sum(i * (2 * x[1:] ** 2 - x[:-1]) ** 2)


_DP_ARGMIN = tuple(2.0 ** (-(2 ** i - 2) / 2 ** i) for i in range(1, 6))


# VLSE "Shekel Function" (m = 10), the rugged one: x in [0, 10]^4; f* = -10.5364 near
# (4, 4, 4, 4), nine more narrow basins. Shift (1.7, -1.2, 2.3, 0.6). Refined by BFGS.
_SHEKEL_C = np.array([[4, 1, 8, 6, 3, 2, 5, 8, 6, 7], [4, 1, 8, 6, 7, 9, 3, 1, 2, 3.6],
                      [4, 1, 8, 6, 3, 2, 5, 8, 6, 7], [4, 1, 8, 6, 7, 9, 3, 1, 2, 3.6]]).T
_SHEKEL_BETA = 0.1 * np.array([1, 2, 2, 4, 4, 6, 3, 7, 5, 5])
_SHEKEL_ARGMIN = (4.000746868467659, 3.9995094800723576, 4.000746865838082,
                  3.9995094816139893)
_SHEKEL_MIN = -10.53644315348353


def shekel(x):
    return -np.sum(1 / (np.sum((x - _SHEKEL_C) ** 2, axis=1) + _SHEKEL_BETA))


def _vlse(page):
    return f"VLSE, {page} (https://www.sfu.ca/~ssurjano/optimization.html)"


_SYNTHETIC = [  # name, f, lows, highs, standard argmin, f*, shift, budget, tags, source page
    ("branin", branin, [-5, 0], [10, 15], (math.pi, 2.275),
     0.39788735772973816, (1.0, 1.5), 30, ("multimodal", "non-separable"), "Branin Function"),
    ("six_hump_camel", six_hump_camel, [-3, -2], [3, 2], _CAMEL_ARGMIN,
     _CAMEL_MIN, (1.1, -0.6), 30, ("multimodal", "non-separable"), "Six-Hump Camel Function"),
    ("goldstein_price_log", goldstein_price_log, [-2, -2], [2, 2], (0.0, -1.0),
     math.log(3.0), (0.7, 0.5), 30, ("multimodal", "non-separable"),
     "Goldstein-Price Function (log)"),
    ("hartmann3", _hartmann(_H3_A, _H3_P), [0] * 3, [1] * 3, _H3_ARGMIN, _H3_MIN,
     (0.35, -0.2, -0.3), 50, ("multimodal", "non-separable"), "Hartmann 3-D Function"),
    ("hartmann6", _hartmann(_H6_A, _H6_P), [0] * 6, [1] * 6, _H6_ARGMIN, _H6_MIN,
     (0.4, 0.25, -0.2, 0.3, 0.2, -0.25), 50, ("multimodal", "non-separable"),
     "Hartmann 6-D Function"),
    ("ackley5", ackley, [-32.768] * 5, [32.768] * 5, (0.0,) * 5, 0.0,
     (7.3, -12.1, 3.4, 18.6, -5.5), 50, ("multimodal", "non-separable"), "Ackley Function"),
    ("rastrigin4", rastrigin, [-5.12] * 4, [5.12] * 4, (0.0,) * 4, 0.0,
     (1.23, -2.47, 0.61, 3.05), 50, ("multimodal", "separable"), "Rastrigin Function"),
    ("levy6", levy, [-10] * 6, [10] * 6, (1.0,) * 6, 0.0, (-3.2, 2.5, 4.1, -1.7, 0.9, -5.3),
     50, ("multimodal", "non-separable"), "Levy Function"),
    ("rosenbrock4", rosenbrock, [-5] * 4, [10] * 4, (1.0,) * 4, 0.0, (-2.0, 1.7, 3.0, -0.5),
     50, ("valley", "non-separable"), "Rosenbrock Function"),
    ("styblinski_tang8", styblinski_tang, [-5] * 8, [5] * 8, (_ST_ARGMIN_1D,) * 8,
     8 * _ST_MIN_1D, (5.5, 0.4, 4.9, 1.2, 6.1, -1.3, 3.7, 0.8), 50,
     ("multimodal", "separable"), "Styblinski-Tang Function"),
    ("zakharov10", zakharov, [-5] * 10, [10] * 10, (0.0,) * 10, 0.0,
     (1.5, -2.0, 3.2, 0.4, -1.1, 4.5, 2.2, -3.4, 0.9, 5.6), 50,
     ("plate", "unimodal", "non-separable"), "Zakharov Function"),
    ("michalewicz5", michalewicz, [0] * 5, [math.pi] * 5, _MICH_ARGMIN, _MICH_MIN, None, 50,
     ("multimodal", "separable"), "Michalewicz Function"),
    ("griewank6", griewank, [-60] * 6, [60] * 6, (0.0,) * 6, 0.0,
     (13.1, -21.7, 8.4, -4.9, 17.3, 6.2), 50, ("multimodal", "non-separable"),
     "Griewank Function"),
    ("sum_powers5", sum_powers, [-1] * 5, [1] * 5, (0.0,) * 5, 0.0,
     (0.3, -0.45, 0.2, 0.55, -0.25), 50, ("bowl", "unimodal", "separable"),
     "Sum of Different Powers Function"),
    ("dixon_price5", dixon_price, [-10] * 5, [10] * 5, _DP_ARGMIN, 0.0,
     (-3.1, 2.4, -1.6, 4.2, 0.8), 50, ("valley", "non-separable"), "Dixon-Price Function"),
    ("shekel4", shekel, [0] * 4, [10] * 4, _SHEKEL_ARGMIN, _SHEKEL_MIN, (1.7, -1.2, 2.3, 0.6),
     50, ("multimodal", "non-separable"), "Shekel Function"),
]

PROBLEMS = {}
for _name, _f, _lo, _hi, _arg, _fmin, _shift, _n, _tags, _page in _SYNTHETIC:
    PROBLEMS[_name] = _synthetic(_name, _f, _lo, _hi, _arg, _fmin, _shift, _n, _tags,
                                 _vlse(_page))


# ----------------------------------------------------------------------------- mixed spaces
# The 4-parameter network-like space the issue measured (30 evaluations): log learning
# rate, integer layers, categorical optimiser, dropout. By construction every term is
# >= 0 and all vanish only at lr = 10**-3.3, layers = 5, optimizer = 'adam', dropout = 0.3,
# so f* = 0 there. The best lr depends on the optimiser and the best dropout on the depth
# (non-separable); the runner-up optimiser costs 0.05, so a run on the wrong categorical
# value or with lr a decade off has regret >= 0.05.
_NN_COST = {"sgd": 0.08, "adam": 0.0, "rmsprop": 0.05, "adagrad": 0.15}
_NN_LOG_LR = {"sgd": -1.7, "adam": -3.3, "rmsprop": -3.0, "adagrad": -2.0}


def mixed_nn(p):
    opt = p["optimizer"]
    return (_NN_COST[opt] + 0.5 * (math.log10(p["lr"]) - _NN_LOG_LR[opt]) ** 2
            + 0.05 * (p["layers"] - 5) ** 2 + 2.0 * (p["dropout"] - 0.06 * p["layers"]) ** 2)


def _mixed_nn_factory(seed=0):
    space = SearchSpace({"lr": Real(1e-5, 1e-1, log=True), "layers": Integer(1, 8),
                         "optimizer": Categorical(["sgd", "adam", "rmsprop", "adagrad"]),
                         "dropout": Real(0.0, 0.8)})
    argmin = {"lr": 10 ** -3.3, "layers": 5, "optimizer": "adam", "dropout": 0.3}
    return Problem("mixed_nn", space, mixed_nn, 0.0, argmin, 30, 0.0,
                   ("mixed", "unimodal", "non-separable"), clean=mixed_nn,
                   source="constructed (issue 14's 4-parameter mixed space)")


# A multimodal mixed space: Ackley over two reals, an integer, a log-scale integer, plus a
# categorical offset. f = Ackley(x0 - 1.3, x1 + 0.7, (n - 13) / 4, log2(k) - 3) + cost[mode]
# >= 0, with 0 only at x0 = 1.3, x1 = -0.7, n = 13, k = 8, mode = 'b'.
_ACKLEY_MODE_COST = {"a": 0.8, "b": 0.0, "c": 0.4}


def mixed_ackley(p):
    z = np.array([p["x0"] - 1.3, p["x1"] + 0.7, (p["n"] - 13) / 4, math.log2(p["k"]) - 3])
    return float(ackley(z) + _ACKLEY_MODE_COST[p["mode"]])


def _mixed_ackley_factory(seed=0):
    space = SearchSpace({"x0": Real(-5.0, 5.0), "x1": Real(-5.0, 5.0), "n": Integer(0, 20),
                         "k": Integer(1, 64, log=True), "mode": Categorical(["a", "b", "c"])})
    argmin = {"x0": 1.3, "x1": -0.7, "n": 13, "k": 8, "mode": "b"}
    return Problem("mixed_ackley", space, mixed_ackley, 0.0, argmin, 50, 0.0,
                   ("mixed", "multimodal", "non-separable"), clean=mixed_ackley,
                   source="constructed (VLSE Ackley Function on a mixed space)")


PROBLEMS["mixed_nn"] = _mixed_nn_factory
PROBLEMS["mixed_ackley"] = _mixed_ackley_factory

# ----------------------------------------------------------------------------- noisy variants
PROBLEMS["branin_noisy"] = _noisy(PROBLEMS["branin"], "branin_noisy", 0.5)
PROBLEMS["hartmann6_noisy"] = _noisy(PROBLEMS["hartmann6"], "hartmann6_noisy", 0.1)
PROBLEMS["mixed_nn_noisy"] = _noisy(PROBLEMS["mixed_nn"], "mixed_nn_noisy", 0.02)


# ----------------------------------------------------------------------------- real tasks
# Bayesmark-style: a scikit-learn model on a data set scikit-learn ships, objective
# 1 - mean accuracy of 3-fold stratified CV (shuffled, random_state=0), one thread.
@lru_cache(maxsize=None)
def _data(loader):
    from sklearn import datasets

    X, y = getattr(datasets, loader)(return_X_y=True)
    return X, y


def _cv_error(model, loader):
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    X, y = _data(loader)
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    with warnings.catch_warnings():  # MLP's ConvergenceWarning at small max_iter
        warnings.simplefilter("ignore")
        scores = cross_val_score(model, X, y, cv=cv, n_jobs=1)
    return float(1.0 - np.mean(scores))


def svc_digits(p):
    """SVC (RBF) on load_digits (1797 x 64, 10 classes), pixels scaled to [0, 1]."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler
    from sklearn.svm import SVC

    model = make_pipeline(MinMaxScaler(), SVC(C=p["C"], gamma=p["gamma"]))
    return _cv_error(model, "load_digits")


def rf_breast_cancer(p):
    """RandomForestClassifier on load_breast_cancer (569 x 30, 2 classes)."""
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(
        n_estimators=p["n_estimators"], max_depth=p["max_depth"],
        max_features=p["max_features"], min_samples_leaf=p["min_samples_leaf"],
        criterion=p["criterion"], random_state=0, n_jobs=1)
    return _cv_error(model, "load_breast_cancer")


def mlp_wine(p):
    """MLPClassifier (adam, 200 epochs at most) on standardised load_wine (178 x 13, 3 classes)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), MLPClassifier(
        hidden_layer_sizes=(p["hidden"],), alpha=p["alpha"],
        learning_rate_init=p["learning_rate_init"], activation=p["activation"],
        max_iter=200, random_state=0))
    return _cv_error(model, "load_wine")


def _real(name, objective, space, n_evals, source):
    def factory(seed=0):
        return Problem(name, space, objective, None, None, n_evals, 0.0,
                       ("real", "mixed") if any(type(d) is not Real
                                                for d in space.dimensions.values())
                       else ("real",), clean=objective, source=source)
    return factory


PROBLEMS["svc_digits"] = _real(
    "svc_digits", svc_digits,
    SearchSpace({"C": Real(1e-2, 1e3, log=True), "gamma": Real(1e-4, 1e1, log=True)}), 30,
    "scikit-learn load_digits, SVC; 1 - mean 3-fold CV accuracy")
PROBLEMS["rf_breast_cancer"] = _real(
    "rf_breast_cancer", rf_breast_cancer,
    SearchSpace({"n_estimators": Integer(5, 50, log=True), "max_depth": Integer(1, 12),
                 "max_features": Real(0.05, 1.0), "min_samples_leaf": Integer(1, 20),
                 "criterion": Categorical(["gini", "entropy"])}), 50,
    "scikit-learn load_breast_cancer, RandomForestClassifier; 1 - mean 3-fold CV accuracy")
PROBLEMS["mlp_wine"] = _real(
    "mlp_wine", mlp_wine,
    SearchSpace({"hidden": Integer(2, 64, log=True), "alpha": Real(1e-6, 1e0, log=True),
                 "learning_rate_init": Real(1e-4, 1e-1, log=True),
                 "activation": Categorical(["relu", "tanh"])}), 50,
    "scikit-learn load_wine, MLPClassifier; 1 - mean 3-fold CV accuracy")


def make(name, seed=0):
    """Build the problem ``name`` of :data:`PROBLEMS`; ``seed`` sets a noisy variant's noise.

    Raises
    ------
    KeyError
        If ``name`` is not in :data:`PROBLEMS` (the message lists close matches).
    """
    if name not in PROBLEMS:
        close = difflib.get_close_matches(str(name), PROBLEMS, n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"Unknown benchmark problem {name!r}.{hint} Choose from "
                       f"{sorted(PROBLEMS)}.")
    return PROBLEMS[name](seed)
