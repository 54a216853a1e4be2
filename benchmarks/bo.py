"""Benchmark of repurpose.bo against random search (and optional peers) on standard test
functions, plus BayesSearchCV on the demo task.

    python benchmarks/bo.py [--quick] [--seeds N] [--peer-seeds N] [--problems a,b]
                            [--json PATH] [--no-demo]

Part 1 runs, in one process, this package's BayesianOptimizer (default settings: log-EI,
Sobol initial design of max(2d+1, 5) points) and uniform random search on Branin (2-d, 30
evaluations), Hartmann-6 (50), Ackley-5 (50) and a mixed space (log-scale real, integer and
categorical parameters, 30 evaluations; a smooth function whose minimum, 0, is known), for
``--seeds`` seeds each (10; 3 with ``--quick``, which also drops Ackley-5 and Hartmann-6).
It prints the median and inter-quartile range of the simple regret (best value found minus
the known minimum) and the mean seconds per suggestion (``ask``). Optuna (TPE, GP),
scikit-optimize and emukit run on the same problems only if they can be imported (each
with 10 uniform random initial points, its default), on the first ``--peer-seeds`` seeds.
Part 2 times one suggestion with 100 observations told (Hartmann-6 and the mixed space).
Part 3 tunes LogisticRepurposer (feature layer, pooling, C) with BayesSearchCV (20 trials,
5-fold CV) on the demo task with 30 labels per class and compares held-out accuracy with
the repurposer's defaults.
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from repurpose.bo import BayesianOptimizer, Categorical, Integer, Real, SearchSpace  # noqa


# ----------------------------------------------------------------------------- problems
def branin(p):
    x, y = p["x"], p["y"]
    return ((y - 5.1 / (4 * math.pi ** 2) * x ** 2 + 5 / math.pi * x - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10)


_H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                 [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(p):
    x = np.array([p[f"x{i}"] for i in range(6)])
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


def ackley5(p):
    x = np.array([p[f"x{i}"] for i in range(5)])
    return float(-20 * np.exp(-0.2 * np.sqrt(np.mean(x ** 2)))
                 - np.exp(np.mean(np.cos(2 * np.pi * x))) + 20 + math.e)


_MIXED_COST = {"sgd": 0.6, "adam": 0.0, "rmsprop": 0.3}


def mixed(p):
    """Minimum 0 at lr = 10**-2.5, layers = 7, optimizer = 'adam'."""
    return ((math.log10(p["lr"]) + 2.5) ** 2 + 0.05 * (p["layers"] - 7) ** 2
            + _MIXED_COST[p["optimizer"]])


PROBLEMS = {  # name -> (function, space, known minimum, evaluations)
    "branin": (branin, SearchSpace({"x": Real(-5.0, 10.0), "y": Real(0.0, 15.0)}),
               0.397887357729739, 30),
    "hartmann6": (hartmann6, SearchSpace({f"x{i}": Real(0.0, 1.0) for i in range(6)}),
                  -3.322368011391339, 50),
    "ackley5": (ackley5, SearchSpace({f"x{i}": Real(-32.768, 32.768) for i in range(5)}),
                0.0, 50),
    "mixed": (mixed, SearchSpace({"lr": Real(1e-5, 1.0, log=True), "layers": Integer(1, 20),
                                  "optimizer": Categorical(["sgd", "adam", "rmsprop"])}),
              0.0, 30),
}
TARGETS = {"branin": 2.9e-4, "hartmann6": 0.004, "ackley5": 2.6}


# ----------------------------------------------------------------------------- methods
def run_bo(f, space, n, seed):
    opt = BayesianOptimizer(space, seed=seed)
    ask_s = []
    for _ in range(n):
        t0 = time.perf_counter()
        params = opt.ask()
        ask_s.append(time.perf_counter() - t0)
        opt.tell(params, f(params))
    return opt.result().best_value, float(np.mean(ask_s))


def run_random(f, space, n, seed):
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    best = min(f(space.from_uniform(rng.random(space.n_dims))) for _ in range(n))
    return best, (time.perf_counter() - t0) / n


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


def _make_optuna(sampler_name):
    def run(f, space, n, seed):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = (optuna.samplers.TPESampler(seed=seed) if sampler_name == "tpe"
                   else optuna.samplers.GPSampler(seed=seed))
        study = optuna.create_study(sampler=sampler)
        dists = _optuna_distributions(space)
        ask_s = []
        for _ in range(n):
            t0 = time.perf_counter()
            trial = study.ask(dists)
            ask_s.append(time.perf_counter() - t0)
            study.tell(trial, f(trial.params))
        return study.best_value, float(np.mean(ask_s))
    return run


def _run_skopt(f, space, n, seed):
    import skopt

    dims, names = [], space.names
    for dim in space.dimensions.values():
        if isinstance(dim, Categorical):
            dims.append(skopt.space.Categorical(list(dim.choices)))
        elif isinstance(dim, Integer):
            dims.append(skopt.space.Integer(int(dim.low), int(dim.high)))
        else:
            dims.append(skopt.space.Real(dim.low, dim.high,
                                         prior="log-uniform" if dim.log else "uniform"))
    opt = skopt.Optimizer(dims, random_state=seed)
    ask_s, best = [], np.inf
    for _ in range(n):
        t0 = time.perf_counter()
        x = opt.ask()
        ask_s.append(time.perf_counter() - t0)
        value = f(dict(zip(names, x)))
        best = min(best, value)
        t0 = time.perf_counter()
        opt.tell(x, value)  # scikit-optimize refits its GP here, not in ask: count both
        ask_s[-1] += time.perf_counter() - t0
    return best, float(np.mean(ask_s))


def _run_emukit(f, space, n, seed, n_initial=10):
    """emukit's BO loop: GPy GP (Matern-5/2 ARD on the unit cube, as ours), expected
    improvement, its gradient acquisition optimiser; ``n_initial`` uniform random points.
    Integers are DiscreteParameters, categoricals one-hot CategoricalParameters."""
    import GPy
    from emukit.bayesian_optimization.acquisitions import ExpectedImprovement
    from emukit.bayesian_optimization.loops import BayesianOptimizationLoop
    from emukit.core import (CategoricalParameter, ContinuousParameter, DiscreteParameter,
                             OneHotEncoding, ParameterSpace)
    from emukit.model_wrappers import GPyModelWrapper

    params, decoders = [], []
    for name, dim in space.dimensions.items():
        if isinstance(dim, Categorical):
            params.append(CategoricalParameter(name, OneHotEncoding(list(dim.choices))))
            decoders.append(("cat", dim, len(dim.choices)))
        elif isinstance(dim, Integer):
            params.append(DiscreteParameter(name, list(range(int(dim.low), int(dim.high) + 1))))
            decoders.append(("int", dim, 1))
        else:  # the unit interval (log10 scale for log dimensions), mapped back in decode
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
        return out

    def evaluate(X):
        return np.array([[f(decode(row))] for row in X])

    np.random.seed(seed)  # emukit's optimiser draws anchor points from the global state
    X0 = emu_space.sample_uniform(n_initial)
    Y0 = evaluate(X0)
    kernel = GPy.kern.Matern52(X0.shape[1], ARD=True)
    gp = GPy.models.GPRegression(X0, Y0, kernel, normalizer=True)
    gp.likelihood.variance.constrain_bounded(1e-6, 1.0, warning=False)
    model = GPyModelWrapper(gp, n_restarts=2)
    loop = BayesianOptimizationLoop(emu_space, model, ExpectedImprovement(model))
    from emukit.core.loop import UserFunctionResult

    ask_s, results = [], None
    for _ in range(n - n_initial):
        t0 = time.perf_counter()
        # Adds the previous results, refits the model (not on an empty list), suggests.
        x = loop.get_next_points(results)
        ask_s.append(time.perf_counter() - t0)
        results = [UserFunctionResult(row, evaluate(row[None])[0]) for row in x]
    loop.loop_state.update(results)
    return float(np.min(loop.loop_state.Y)), float(np.mean(ask_s))


PEERS = {"optuna-tpe": ("optuna", _make_optuna("tpe")),
         "optuna-gp": ("optuna", _make_optuna("gp")),
         "scikit-optimize": ("skopt", _run_skopt),
         "emukit": ("emukit", _run_emukit)}


def _importable(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


# ----------------------------------------------------------------------------- parts
def test_functions(problems, seeds, peer_seeds=None):
    methods = {"repurpose.bo": run_bo, "random search": run_random}
    for name, (module, fn) in PEERS.items():
        if not _importable(module):
            print(f"  {name}: not installed")
        elif fn is None:
            print(f"  {name}: installed, but no adapter in this script")
        else:
            methods[name] = fn
    summary = {}
    print(f"{'problem':10s} {'method (seeds)':20s} {'median regret':>10s} {'IQR':>23s} "
          f"{'s/suggestion':>13s} {'target':>8s}")
    for pname in problems:
        f, space, fmin, n = PROBLEMS[pname]
        for mname, method in methods.items():
            regrets, secs = [], []
            run_seeds = seeds if mname in ("repurpose.bo", "random search") or not peer_seeds \
                else seeds[:peer_seeds]
            for seed in run_seeds:
                best, sec = method(f, space, n, seed)
                regrets.append(best - fmin)
                secs.append(sec)
            q1, med, q3 = np.percentile(regrets, [25, 50, 75])
            target = TARGETS.get(pname) if mname == "repurpose.bo" else None
            summary.setdefault(pname, {})[mname] = {
                "n_evaluations": n, "n_seeds": len(run_seeds),
                "regrets": [float(r) for r in regrets],
                "median": float(med), "q1": float(q1), "q3": float(q3),
                "seconds_per_suggestion": float(np.mean(secs)), "target": target}
            print(f"{pname:10s} {mname + f' ({len(run_seeds)})':20s} {med:10.3g} "
                  f"[{q1:9.3g}, {q3:9.3g}] "
                  f"{np.mean(secs):13.4f} {'' if target is None else format(target, '8.2g')}"
                  + ("" if target is None else ("  met" if med <= target else "  missed")),
                  flush=True)
    return summary


def suggestion_time(n_obs=100, repeats=3):
    out = {}
    for pname in ("hartmann6", "mixed"):
        f, space, _, _ = PROBLEMS[pname]
        rng = np.random.default_rng(0)
        opt = BayesianOptimizer(space, seed=0)
        for _ in range(n_obs):
            p = space.from_uniform(rng.random(space.n_dims))
            opt.tell(p, f(p))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            opt.ask()
            times.append(time.perf_counter() - t0)
            opt._pending.clear()  # same state each repeat
        out[pname] = float(np.median(times))
        print(f"{pname:10s} one suggestion with {n_obs} observations: "
              f"{out[pname]:.3f} s (median of {repeats}; target < 0.5 s)", flush=True)
    return out


def demo_task(seeds, n_iter=20, n_per_class=30):
    """BayesSearchCV over the transfer choices that matter most (which layer's features, how
    to pool them, the logistic head's C) against LogisticRepurposer's defaults (the layer
    below the classifier, no pooling, C=1), on held-out test images of the demo task."""
    from repurpose import SourceModel
    from repurpose.bo import BayesSearchCV
    from repurpose.demo import make_demo_task
    from repurpose.repurposers import LogisticRepurposer

    source = SourceModel.from_zoo("digits_cnn")
    space = {"layers": Categorical(["fc1_relu_fwd", "fc1_fwd", "relu3_fwd", "relu2_fwd",
                                    "pool1_fwd"]),
             "pool": Categorical(["avg", "max"]), "C": Real(1e-3, 1e2, log=True)}
    rows = []
    for seed in seeds:
        X_train, y_train, X_test, y_test = make_demo_task(n_per_class, seed)
        default = LogisticRepurposer(source, random_state=seed).fit(X_train, y_train)
        t0 = time.perf_counter()
        search = BayesSearchCV(LogisticRepurposer(source, random_state=seed), space,
                               n_iter=n_iter, cv=5, random_state=seed).fit(X_train, y_train)
        row = {"seed": seed, "n_per_class": n_per_class,
               "default_acc": float(default.score(X_test, y_test)),
               "tuned_acc": float(search.score(X_test, y_test)),
               "best_params": search.best_params_, "cv_score": float(search.best_score_),
               "search_s": time.perf_counter() - t0}
        rows.append(row)
        print(f"seed {seed}: default acc {row['default_acc']:.3f} | tuned "
              f"{row['best_params']} (CV {row['cv_score']:.3f}) acc {row['tuned_acc']:.3f} "
              f"| search {row['search_s']:.1f} s", flush=True)
    d = np.mean([r["default_acc"] for r in rows])
    t = np.mean([r["tuned_acc"] for r in rows])
    wins = sum(r["tuned_acc"] > r["default_acc"] for r in rows)
    print(f"{n_per_class} labels per class, mean held-out accuracy over {len(rows)} seed(s): "
          f"default {d:.3f}, tuned {t:.3f}; tuned better on {wins} of {len(rows)}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 seeds, Branin and the mixed space only, 1 demo seed")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per problem (10)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo-task part")
    parser.add_argument("--peer-seeds", type=int, default=None,
                        help="run the installed peers on only the first N seeds (all)")
    parser.add_argument("--problems", default=None,
                        help="comma-separated subset of " + ",".join(PROBLEMS))
    args = parser.parse_args(argv)
    n_seeds = args.seeds or (3 if args.quick else 10)
    problems = ["branin", "mixed"] if args.quick else list(PROBLEMS)
    if args.problems:
        problems = args.problems.split(",")
        unknown = sorted(set(problems) - set(PROBLEMS))
        if unknown:
            parser.error(f"unknown problem(s) {unknown}; choose from {list(PROBLEMS)}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs; "
          f"seeds 0..{n_seeds - 1}")
    started = time.perf_counter()
    out = {"seeds": n_seeds,
           "problems": test_functions(problems, list(range(n_seeds)), args.peer_seeds),
           "suggestion_s_at_100": suggestion_time()}
    if not args.no_demo:
        out["demo_task"] = demo_task(range(1 if args.quick else 5))
    out["total_s"] = time.perf_counter() - started
    print(f"total {out['total_s']:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
