"""Plots of optimisation runs: best value against trial, and observed values per parameter.

Both functions take what :func:`~repurpose.bo.minimize` and :class:`BayesianOptimizer`
produce: an :class:`~repurpose.bo.OptimizeResult` or the optimiser itself (which also knows
``maximize`` and the search space). matplotlib is imported when a function is called, so
``import repurpose.bo`` never needs it.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from repurpose.bo import Real, SearchSpace, minimize
>>> res = minimize(lambda p: (p['x'] - 0.3) ** 2, SearchSpace({'x': Real(0.0, 1.0)}),
...                n_trials=6, seed=0)
>>> ax = plot_convergence({'BO': res})
>>> len(ax.lines)
1
>>> len(plot_parameters(res))
1
"""
import numbers
import warnings

import numpy as np

from ..exceptions import InvalidParameterError
from .loop import BayesianOptimizer, OptimizeResult
from .space import Categorical, SearchSpace

__all__ = ["plot_convergence", "plot_parameters", "best_so_far"]


def _unpack(run, maximize):
    """(OptimizeResult, maximize, space or None) of a result or an optimiser."""
    if isinstance(run, BayesianOptimizer):
        return run.result(), run.maximize if maximize is None else maximize, run.space
    if hasattr(run, "optimizer_") and isinstance(run.optimizer_, BayesianOptimizer):
        opt = run.optimizer_  # a fitted BayesSearchCV
        return opt.result(), opt.maximize if maximize is None else maximize, opt.space
    if isinstance(run, OptimizeResult):
        return run, bool(maximize), None
    raise InvalidParameterError(
        f"Expected an OptimizeResult, a BayesianOptimizer or a fitted BayesSearchCV, got "
        f"{type(run).__name__}.")


def best_so_far(result, maximize=False):
    """Best value after each trial (failed trials repeat the previous best; NaN before the
    first successful trial).

    Examples
    --------
    >>> from repurpose.bo import OptimizeResult, Trial
    >>> hist = [Trial({}, 3.0, 'ok'), Trial({}, None, 'failed'), Trial({}, 1.0, 'ok')]
    >>> best_so_far(OptimizeResult({}, 1.0, hist)).tolist()
    [3.0, 3.0, 1.0]
    """
    result, maximize, _ = _unpack(result, maximize)
    values = np.array([t.value if t.status == "ok" else np.nan for t in result.history],
                      dtype=float)
    out = np.full(len(values), np.nan)
    best = np.nan
    for i, v in enumerate(values):
        if np.isfinite(v) and (np.isnan(best) or (v > best if maximize else v < best)):
            best = v
        out[i] = best
    return out


def _runs(result_or_results):
    """{label: [run, ...]} from one run, a list of runs, or a dict of label -> run(s)."""
    if isinstance(result_or_results, dict):
        return {str(k): list(v) if isinstance(v, (list, tuple)) else [v]
                for k, v in result_or_results.items()}
    if isinstance(result_or_results, (list, tuple)):
        return {f"run {i}": [r] for i, r in enumerate(result_or_results)}
    return {"": [result_or_results]}


def plot_convergence(result_or_results, ax=None, maximize=None, optimum=None, log=False):
    """Best value found against the number of trials, one line per run.

    Parameters
    ----------
    result_or_results : OptimizeResult, BayesianOptimizer, list, or dict
        One run; a list of runs (one line each); or a dict of label -> run or list of runs
        (e.g. ``{'BO': [...], 'random search': [...]}`` over seeds), drawn as the median line
        with the inter-quartile range shaded.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure if None.
    maximize : bool, default=None
        Whether larger is better; taken from an optimiser if None (False for a result).
    optimum : float, default=None
        If given, plot the simple regret ``|best - optimum|`` instead of the best value.
    log : bool, default=False
        Logarithmic y axis (useful with ``optimum``).

    Returns
    -------
    ax : matplotlib Axes
    """
    import matplotlib.pyplot as plt

    runs = _runs(result_or_results)
    if not runs or any(not v for v in runs.values()):
        raise InvalidParameterError("plot_convergence needs at least one run per label.")
    if ax is None:
        _, ax = plt.subplots()
    for label, group in runs.items():
        curves = [best_so_far(r, maximize) for r in group]
        n = max(len(c) for c in curves)
        Y = np.full((len(curves), n), np.nan)
        for i, c in enumerate(curves):
            Y[i, :len(c)] = c
            if len(c) and len(c) < n:
                Y[i, len(c):] = c[-1]
        if optimum is not None:
            Y = np.abs(Y - optimum)
        x = np.arange(1, n + 1)
        with warnings.catch_warnings():  # all-NaN columns (no success yet) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mid = np.nanmedian(Y, axis=0)
            lo, hi = np.nanpercentile(Y, [25, 75], axis=0)
        line, = ax.plot(x, mid, label=label or None, drawstyle="steps-post")
        if len(curves) > 1:
            ax.fill_between(x, lo, hi, step="post", alpha=0.2, color=line.get_color())
    ax.set_xlabel("trial")
    ax.set_ylabel("simple regret" if optimum is not None else
                  ("best value (max)" if maximize else "best value"))
    if log:
        ax.set_yscale("log")
    if any(runs):  # labels given
        ax.legend()
    return ax


def plot_parameters(result, ax=None, space=None, maximize=None):
    """Objective value observed against each parameter, one panel per parameter.

    Parameters
    ----------
    result : OptimizeResult, BayesianOptimizer or fitted BayesSearchCV
        The run to show; successful trials are dots, the best one a star.
    ax : sequence of matplotlib Axes, default=None
        One per parameter (a single Axes if there is one parameter); a new row of panels if None.
    space : SearchSpace, default=None
        Gives log scales and the order of categories; taken from an optimiser if None.
    maximize : bool, default=None
        Which trial is best; taken from an optimiser if None (False for a result).

    Returns
    -------
    axes : list of matplotlib Axes, in the order of the parameters.
    """
    import matplotlib.pyplot as plt

    result, maximize, own_space = _unpack(result, maximize)
    space = own_space if space is None else space
    if space is not None and not isinstance(space, SearchSpace):
        raise InvalidParameterError(f"space must be a SearchSpace, got {type(space).__name__}.")
    ok = [t for t in result.history if t.status == "ok"]
    names = (space.names if space is not None else
             list(result.history[0].params) if result.history else [])
    if not names:
        raise InvalidParameterError("plot_parameters needs a result with at least one trial.")
    if ax is None:
        _, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(np.ravel(np.array(ax, dtype=object)))
        if len(axes) != len(names):
            raise InvalidParameterError(
                f"ax has {len(axes)} entries but there are {len(names)} parameters "
                f"{names}; pass one Axes per parameter.")
    values = np.array([t.value for t in ok], dtype=float)
    best = (int(np.argmax(values) if maximize else np.argmin(values)) if len(ok) else None)
    for panel, name in zip(axes, names):
        raw = [t.params[name] for t in ok]
        dim = space.dimensions[name] if space is not None else None
        numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in raw)
        if isinstance(dim, Categorical) or not numeric:
            choices = list(dim.choices) if isinstance(dim, Categorical) else \
                list(dict.fromkeys(raw))
            x = np.array([choices.index(v) for v in raw], dtype=float)
            panel.set_xticks(range(len(choices)))
            panel.set_xticklabels([str(c) for c in choices])
        else:
            x = np.array(raw, dtype=float)
            if dim is not None and dim.log:
                panel.set_xscale("log")
        panel.scatter(x, values, s=14, alpha=0.7)
        if best is not None:
            panel.scatter([x[best]], [values[best]], marker="*", s=120, color="red")
        panel.set_xlabel(name)
    axes[0].set_ylabel("objective")
    return axes
