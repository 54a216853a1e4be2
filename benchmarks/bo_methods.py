"""The optimisers benchmarks/bo.py compares, each behind one function
``run(problem, seed, **options) -> History``.

    from bo_methods import METHODS, run_method     # with benchmarks/ on sys.path
    history = run_method("optuna-gp", make("branin", seed=0), seed=0)

Every method sees the problem's own search space, with log-scale, integer and categorical
parameters declared as such where the method has a way to say so, and evaluates the
objective ``problem.n_evals`` times. Each keeps its own default initial design, and
:data:`INITIAL_DESIGN` says what it is (the issue asks that the benchmark say it):

- ``repurpose.bo``: scrambled Sobol points, ``max(2 d + 1, 5)``.
- ``random``: uniform draws (log-uniform on log scales) for the whole budget.
- Optuna TPE and GPSampler: 10 independent random points (``n_startup_trials=10``).
- scikit-optimize ``Optimizer``: 10 random points (``n_initial_points=10``), GP with its
  default kernel, ``gp_hedge`` acquisition.
- emukit: 10 uniform random points (this adapter; emukit's loop has no design of its own),
  GPy Matern-5/2 ARD GP with normalised outputs, expected improvement.
- HEBO 0.3.6: its default, ``rand_sample = 1 + number of parameters`` random points, then
  the MACE acquisition ensemble with input and output warping.

The peers are imported only when run; build their environment with
``benchmarks/make_bo_peers.sh``.
"""
import dataclasses
import math
import os
import sys
import time
import warnings

import numpy as np

try:
    from repurpose.bo import BayesianOptimizer, Categorical, Integer
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    from repurpose.bo import BayesianOptimizer, Categorical, Integer
from repurpose.bo import loop  # noqa: E402
from repurpose.bo.acquisition import ExpectedImprovement  # noqa: E402

__all__ = ["History", "METHODS", "PEER_MODULES", "INITIAL_DESIGN", "available", "run_method",
           "incumbent_curve", "regret_curve"]


@dataclasses.dataclass
class History:
    """What one run evaluated, in order: the params, the values the objective returned and
    the seconds each suggestion took (model refit included)."""
    params: list = dataclasses.field(default_factory=list)
    values: list = dataclasses.field(default_factory=list)
    ask_s: list = dataclasses.field(default_factory=list)
    #: Why the method stopped before the budget (its own error), or None.
    crashed: object = None

    def add(self, params, value, seconds):
        self.params.append(dict(params))
        self.values.append(float(value))
        self.ask_s.append(float(seconds))


def _plain(params, space):
    """Python scalars of the right kind (peers hand back numpy or pandas scalars)."""
    out = {}
    for name, dim in space.dimensions.items():
        v = params[name]
        if isinstance(dim, Categorical):
            out[name] = next(c for c in dim.choices if c == v or str(c) == str(v))
        elif isinstance(dim, Integer):
            out[name] = int(round(float(v)))
        else:
            out[name] = float(min(max(float(v), dim.low), dim.high))
    return out


def _ask_tell(problem, ask, tell):
    """Run the budget through ``ask() -> (handle, params)`` and ``tell(handle, value)``,
    timing each suggestion as ask plus tell (some methods refit their model in ``tell``)."""
    history = History()
    for _ in range(problem.n_evals):
        t0 = time.perf_counter()
        handle, params = ask()
        seconds = time.perf_counter() - t0
        value = problem.objective(params)
        t0 = time.perf_counter()
        tell(handle, value)
        history.add(params, value, seconds + time.perf_counter() - t0)
    return history


# ----------------------------------------------------------------------------- ours
def run_repurpose(problem, seed, **options):
    """``options``: BayesianOptimizer keywords, ``max_rounds`` of its acquisition optimiser
    (set on the private attribute) and ``plain_ei`` (expected improvement instead of its
    logarithm): ablations of settings that are not BayesianOptimizer keywords."""
    max_rounds = options.pop("max_rounds", None)
    plain_ei = options.pop("plain_ei", False)
    opt = BayesianOptimizer(problem.space, seed=seed, **options)
    if max_rounds is not None:
        opt._optimizer.max_rounds = max_rounds

    def ask():
        params = opt.ask()
        return params, params

    if not plain_ei:
        return _ask_tell(problem, ask, opt.tell)
    # EI itself in place of log-EI (the same maximiser in exact arithmetic; the acquisition
    # optimiser sees another landscape): the optimiser's table, swapped for this run only.
    saved = loop.ACQUISITIONS["ei"]
    loop.ACQUISITIONS["ei"] = ExpectedImprovement
    try:
        return _ask_tell(problem, ask, opt.tell)
    finally:
        loop.ACQUISITIONS["ei"] = saved


def run_random(problem, seed):
    rng = np.random.default_rng(seed)
    history = History()
    for _ in range(problem.n_evals):
        t0 = time.perf_counter()
        params = problem.space.from_uniform(rng.random(problem.space.n_dims))
        seconds = time.perf_counter() - t0
        history.add(params, problem.objective(params), seconds)
    return history


# ----------------------------------------------------------------------------- Optuna
def _optuna_distributions(space):
    import optuna

    out = {}
    for name, dim in space.dimensions.items():
        if isinstance(dim, Categorical):
            out[name] = optuna.distributions.CategoricalDistribution(list(dim.choices))
        elif isinstance(dim, Integer):
            out[name] = optuna.distributions.IntDistribution(int(dim.low), int(dim.high),
                                                             log=dim.log)
        else:
            out[name] = optuna.distributions.FloatDistribution(dim.low, dim.high, log=dim.log)
    return out


def _run_optuna(problem, seed, sampler_name):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GPSampler is marked experimental in some releases
        sampler = (optuna.samplers.TPESampler(seed=seed) if sampler_name == "tpe"
                   else optuna.samplers.GPSampler(seed=seed))
    study = optuna.create_study(sampler=sampler)
    dists = _optuna_distributions(problem.space)

    def ask():
        trial = study.ask(dists)
        return trial, _plain(trial.params, problem.space)

    return _ask_tell(problem, ask, study.tell)


def run_optuna_tpe(problem, seed):
    return _run_optuna(problem, seed, "tpe")


def run_optuna_gp(problem, seed):
    return _run_optuna(problem, seed, "gp")


# ----------------------------------------------------------------------------- scikit-optimize
def run_skopt(problem, seed):
    import skopt

    space = problem.space
    dims = []
    for dim in space.dimensions.values():
        if isinstance(dim, Categorical):
            dims.append(skopt.space.Categorical(list(dim.choices)))
        elif isinstance(dim, Integer):
            dims.append(skopt.space.Integer(int(dim.low), int(dim.high),
                                            prior="log-uniform" if dim.log else "uniform"))
        else:
            dims.append(skopt.space.Real(dim.low, dim.high,
                                         prior="log-uniform" if dim.log else "uniform"))
    opt = skopt.Optimizer(dims, random_state=seed)

    def ask():
        x = opt.ask()
        return x, _plain(dict(zip(space.names, x)), space)

    return _ask_tell(problem, ask, opt.tell)  # it refits its GP in tell: timed too


# ----------------------------------------------------------------------------- emukit
def run_emukit(problem, seed, n_initial=10):
    """emukit's BO loop: GPy GP (Matern-5/2 ARD, normalised outputs), expected improvement,
    its gradient acquisition optimiser. Real parameters live on the unit interval (log10
    scale for log dimensions), integers are DiscreteParameters, categoricals one-hot."""
    import GPy
    from emukit.bayesian_optimization.acquisitions import ExpectedImprovement
    from emukit.bayesian_optimization.loops import BayesianOptimizationLoop
    from emukit.core import (CategoricalParameter, ContinuousParameter, DiscreteParameter,
                             OneHotEncoding, ParameterSpace)
    from emukit.core.loop import UserFunctionResult
    from emukit.model_wrappers import GPyModelWrapper

    space = problem.space
    params, decoders = [], []
    for name, dim in space.dimensions.items():
        if isinstance(dim, Categorical):
            params.append(CategoricalParameter(name, OneHotEncoding(list(dim.choices))))
            decoders.append(("cat", dim, len(dim.choices)))
        elif isinstance(dim, Integer):
            params.append(DiscreteParameter(name, list(range(int(dim.low), int(dim.high) + 1))))
            decoders.append(("int", dim, 1))
        else:
            params.append(ContinuousParameter(name, 0.0, 1.0))
            decoders.append(("real", dim, 1))
    emu_space = ParameterSpace(params)

    def decode(row):
        out, i = {}, 0
        for name, (kind, dim, width) in zip(space.names, decoders):
            if kind == "cat":
                out[name] = dim.choices[int(np.argmax(row[i:i + width]))]
            elif kind == "int":
                out[name] = int(round(row[i]))
            else:
                u = float(row[i])
                out[name] = (dim.low * (dim.high / dim.low) ** u if dim.log
                             else dim.low + u * (dim.high - dim.low))
            i += width
        return _plain(out, space)

    history = History()

    def evaluate(X, seconds):
        out = []
        for row in X:
            p = decode(row)
            value = problem.objective(p)
            history.add(p, value, seconds)
            out.append([value])
        return np.array(out)

    np.random.seed(seed)  # emukit's optimiser draws anchor points from the global state
    X0 = emu_space.sample_uniform(n_initial)
    Y0 = evaluate(X0, 0.0)
    kernel = GPy.kern.Matern52(X0.shape[1], ARD=True)
    gp = GPy.models.GPRegression(X0, Y0, kernel, normalizer=True)
    gp.likelihood.variance.constrain_bounded(1e-6, 1.0, warning=False)
    model = GPyModelWrapper(gp, n_restarts=2)
    loop = BayesianOptimizationLoop(emu_space, model, ExpectedImprovement(model))
    results = None
    for _ in range(problem.n_evals - n_initial):
        t0 = time.perf_counter()
        try:  # Adds the previous results, refits the model (not on an empty list), suggests.
            x = loop.get_next_points(results)
        except np.linalg.LinAlgError as err:  # GPy's Cholesky fails on some runs: the run
            history.crashed = f"{type(err).__name__}: {err}"  # ends there, as a user's would
            break
        seconds = time.perf_counter() - t0
        results = [UserFunctionResult(row, evaluate(row[None], seconds)[0]) for row in x]
    return history


# ----------------------------------------------------------------------------- HEBO
def run_hebo(problem, seed):
    """HEBO 0.3.6 with its defaults (GP with input warping, power-transformed outputs, the
    MACE ensemble of EI, PI and UCB searched by NSGA-II). Log-scale reals are its 'pow'
    type, log-scale integers 'pow_int'."""
    import torch
    from hebo.design_space.design_space import DesignSpace
    from hebo.optimizers.hebo import HEBO

    space = problem.space
    spec = []
    for name, dim in space.dimensions.items():
        if isinstance(dim, Categorical):
            spec.append({"name": name, "type": "cat",
                         "categories": [str(c) for c in dim.choices]})
        elif isinstance(dim, Integer):
            spec.append({"name": name, "type": "pow_int" if dim.log else "int",
                         "lb": int(dim.low), "ub": int(dim.high)})
        elif dim.log:
            spec.append({"name": name, "type": "pow", "lb": float(dim.low),
                         "ub": float(dim.high), "base": 10})
        else:
            spec.append({"name": name, "type": "num", "lb": float(dim.low),
                         "ub": float(dim.high)})
    np.random.seed(seed)  # HEBO draws from numpy's and torch's global generators
    torch.manual_seed(seed)
    opt = HEBO(DesignSpace().parse(spec), scramble_seed=seed)

    def ask():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rec = opt.suggest(n_suggestions=1)
        return rec, _plain(rec.iloc[0].to_dict(), space)

    return _ask_tell(problem, ask, lambda rec, value: opt.observe(rec, np.array([[value]])))


#: name -> (module it needs, function)
METHODS = {
    "repurpose.bo": (None, run_repurpose),
    "random": (None, run_random),
    "optuna-tpe": ("optuna", run_optuna_tpe),
    "optuna-gp": ("optuna", run_optuna_gp),
    "scikit-optimize": ("skopt", run_skopt),
    "emukit": ("emukit", run_emukit),
    "hebo": ("hebo", run_hebo),
}
PEER_MODULES = {name: module for name, (module, _) in METHODS.items() if module}

INITIAL_DESIGN = {
    "repurpose.bo": "Sobol, max(2d+1, 5)",
    "random": "uniform, whole budget",
    "optuna-tpe": "10 random",
    "optuna-gp": "10 random",
    "scikit-optimize": "10 random",
    "emukit": "10 random",
    "hebo": "1 + d random",
}


def available(name):
    module = METHODS[name][0]
    if module is None:
        return True
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def run_method(name, problem, seed, **options):
    """Run method ``name`` (a key of :data:`METHODS`) on ``problem`` with ``seed``."""
    fn = METHODS[name][1]
    if options and name != "repurpose.bo":
        raise ValueError(f"only repurpose.bo takes options, got {options} for {name}")
    with np.errstate(all="ignore"):
        return fn(problem, seed, **options)


def incumbent_curve(history, problem):
    """After each evaluation, the noise-free value of the point with the best observed
    value so far (what a user would pick)."""
    out, best, best_clean = [], math.inf, math.inf
    for params, value in zip(history.params, history.values):
        if value < best:
            best = value
            best_clean = value if problem.noise == 0 else float(problem.clean(params))
        out.append(best_clean)
    return out


def regret_curve(history, problem, optimum):
    """Simple regret after each evaluation: :func:`incumbent_curve` minus ``optimum``."""
    return [v - optimum for v in incumbent_curve(history, problem)]
