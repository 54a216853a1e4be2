"""Plots of optimisation runs: best value against trial, observed values per parameter, and
the learning curves of a Hyperband study.

The functions take what :func:`~repurpose.bo.minimize`, :class:`BayesianOptimizer` and
:func:`~repurpose.bo.minimize_with_early_stopping` produce: an
:class:`~repurpose.bo.OptimizeResult` or :class:`~repurpose.bo.EarlyStoppingResult`, the
optimiser or scheduler itself (which also knows ``maximize`` and the search space), or the
path of a study's journal (``state_path``; read, never written). Without ``ax`` they draw on a
new pyplot figure; pass axes of a :class:`matplotlib.figure.Figure` to stay off pyplot (as
``repurpose tune`` does). matplotlib is imported when a function is called, so
``import repurpose.bo`` never needs it.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from repurpose.bo import Real, SearchSpace, minimize
>>> res = minimize(lambda p: (p['x'] - 0.3) ** 2, SearchSpace({'x': Real(0.0, 1.0)}),
...                n_trials=6, seed=0)
>>> ax = plot_convergence({'BO': res}, metric='squared error')
>>> len(ax.lines), ax.get_ylabel()
(1, 'best squared error so far')
>>> len(plot_parameters(res))
1
"""
import json
import numbers
import os
import warnings

import numpy as np

from ..exceptions import InvalidParameterError
from .loop import BayesianOptimizer, OptimizeResult, Trial
from .scheduler import EarlyStoppingResult, HyperbandScheduler, ScheduledTrial
from .space import Categorical, Integer, SearchSpace
from .state import SCHEDULE, SCHEDULE_FORMAT, read_journal, read_state, schedule_trials

__all__ = ["plot_convergence", "plot_parameters", "plot_learning_curves", "best_so_far"]

# Categorical tick labels longer than this are shortened (the full value is in the journal).
_MAX_LABEL = 14


def _read_study(path):
    """``(history, maximize, space)`` of the study journalled at ``path``: a list of
    ScheduledTrial for a Hyperband journal, an OptimizeResult for an optimiser's."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InvalidParameterError(
            f"Expected an OptimizeResult, a BayesianOptimizer, a fitted BayesSearchCV, an "
            f"EarlyStoppingResult, a HyperbandScheduler or a journal's path, got {path!r}, "
            f"which is not a file.")
    with open(path, "rb") as handle:
        first = handle.readline()
    try:
        header = json.loads(first)
    except ValueError:  # an indented version 1 state file: read_state reads it
        header = {}
    if isinstance(header, dict) and header.get("format") == SCHEDULE_FORMAT:
        journal = read_journal(path, SCHEDULE)
        space = SearchSpace.from_dict(journal.header["space"])
        trials = [ScheduledTrial(**fields)
                  for fields, _ in schedule_trials(path, journal, space.check_params)]
        return trials, bool(journal.header["settings"].get("maximize")), space
    opt = BayesianOptimizer.from_state(read_state(path)[0])
    return opt.result(), opt.maximize, opt.space


def _scheduled(history, maximize):
    """An OptimizeResult of a Hyperband history: a completed trial is ``'ok'`` with its final
    value, a stopped one ``'stopped'`` with its last (partial-budget) value."""
    trials = []
    for t in history:
        value = t.values[-1] if t.values else None
        status = ("ok" if t.status == "completed" and value is not None else
                  "stopped" if t.status == "stopped" else "failed")
        trials.append(Trial(dict(t.params), value if status != "failed" else None, status,
                            t.seconds, t.error))
    done = [t for t in trials if t.status == "ok"]
    best = (max if maximize else min)(done, key=lambda t: t.value) if done else None
    return OptimizeResult(None if best is None else best.params,
                          None if best is None else best.value, trials)


def _unpack(run, maximize):
    """(OptimizeResult, maximize, space or None) of a result, an optimiser, a scheduler or
    a journal's path."""
    space = None
    if isinstance(run, (str, os.PathLike)):
        run, stored, space = _read_study(run)
        maximize = stored if maximize is None else maximize
    if hasattr(run, "optimizer_") and isinstance(run.optimizer_, BayesianOptimizer):
        run = run.optimizer_  # a fitted BayesSearchCV
    if isinstance(run, (BayesianOptimizer, HyperbandScheduler)):
        maximize = run.maximize if maximize is None else maximize
        space = run.space
        run = run.history if isinstance(run, HyperbandScheduler) else run.result()
    if isinstance(run, EarlyStoppingResult):
        run = run.history
    if isinstance(run, list) and all(isinstance(t, ScheduledTrial) for t in run):
        run = _scheduled(run, bool(maximize))
    if isinstance(run, OptimizeResult):
        return run, bool(maximize), space
    raise InvalidParameterError(
        f"Expected an OptimizeResult, a BayesianOptimizer, a fitted BayesSearchCV, an "
        f"EarlyStoppingResult, a HyperbandScheduler or a journal's path, got "
        f"{type(run).__name__}.")


def _short(value):
    """A tick label: ``str(value)``, shortened to ``_MAX_LABEL`` characters."""
    text = str(value)
    return text if len(text) <= _MAX_LABEL else text[:_MAX_LABEL - 1] + "\u2026"


def _integer_ticks(axis):
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _new_axes(ax, n=None, figsize=None):
    """``ax``, or new pyplot axes (one, or a row of ``n``) when it is None."""
    import matplotlib.pyplot as plt

    if n is None:
        return ax if ax is not None else plt.subplots()[1]
    return list(plt.subplots(1, n, figsize=figsize, squeeze=False)[1][0])


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


def plot_convergence(result_or_results, ax=None, maximize=None, optimum=None, log=False,
                     metric=None):
    """Best value found against the number of trials, one line per run.

    Parameters
    ----------
    result_or_results : run, list of runs, or dict
        One run (an OptimizeResult, BayesianOptimizer, fitted BayesSearchCV,
        EarlyStoppingResult, HyperbandScheduler, or a journal's path); a list of runs (one
        line each); or a dict of label -> run or list of runs (e.g. ``{'BO': [...], 'random
        search': [...]}`` over seeds), drawn as the median line with the inter-quartile range
        shaded. A Hyperband trial counts once it completed (stopped trials never become the
        best).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure if None.
    maximize : bool, default=None
        Whether larger is better; taken from an optimiser, scheduler or journal if None
        (False for a result).
    optimum : float, default=None
        If given, plot the simple regret ``|best - optimum|`` instead of the best value.
    log : bool, default=False
        Logarithmic y axis (useful with ``optimum``).
    metric : str, default=None
        What the values are (``'accuracy (CV)'``, ``'val_loss'``); the y axis then reads
        ``'best <metric> so far'``.

    Returns
    -------
    ax : matplotlib Axes

    Raises
    ------
    InvalidParameterError
        For an empty run list or something that is not a run.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from repurpose.bo import OptimizeResult, Trial
    >>> run = OptimizeResult({}, 0.9, [Trial({}, 0.7, 'ok'), Trial({}, 0.9, 'ok')])
    >>> ax = plot_convergence(run, maximize=True, metric='accuracy (CV)')
    >>> ax.get_ylabel(), ax.lines[0].get_ydata().tolist()
    ('best accuracy (CV) so far', [0.7, 0.9])
    """
    runs = _runs(result_or_results)
    if not runs or any(not v for v in runs.values()):
        raise InvalidParameterError("plot_convergence needs at least one run per label.")
    ax = _new_axes(ax)
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
    _integer_ticks(ax.xaxis)
    if optimum is not None:
        ax.set_ylabel("simple regret" if metric is None else f"simple regret ({metric})")
    elif metric is not None:
        ax.set_ylabel(f"best {metric} so far")
    else:
        ax.set_ylabel("best value (max)" if maximize else "best value")
    if log:
        ax.set_yscale("log")
    if any(runs):  # labels given
        ax.legend()
    return ax


def _panel_axes(ax, names):
    if ax is None:
        return _new_axes(None, len(names), (3.2 * len(names), 3))
    axes = list(np.ravel(np.array(ax, dtype=object)))
    if len(axes) != len(names):
        raise InvalidParameterError(
            f"ax has {len(axes)} entries but there are {len(names)} parameters "
            f"{names}; pass one Axes per parameter.")
    return axes


def _positions(panel, dim, raw):
    """The x positions of the values ``raw`` of a parameter (dimension ``dim``) on ``panel`` (whose
    scale and ticks this sets): categories at 0, 1, ... with readable labels."""
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in raw)
    if not (isinstance(dim, Categorical) or not numeric):
        if dim is not None and dim.log:  # the searched range, and a margin of 5 %
            panel.set_xscale("log")
            margin = (dim.high / dim.low) ** 0.05
            panel.set_xlim(dim.low / margin, dim.high * margin)
        elif dim is not None:
            margin = 0.05 * (dim.high - dim.low)
            panel.set_xlim(dim.low - margin, dim.high + margin)
        if isinstance(dim, Integer):
            _integer_ticks(panel.xaxis)
        return np.array(raw, dtype=float)
    choices = list(dim.choices) if isinstance(dim, Categorical) else list(dict.fromkeys(raw))
    labels = [_short(c) for c in choices]
    panel.set_xticks(range(len(choices)))
    crowded = len(choices) > 4 or any(len(text) > 4 for text in labels)
    panel.set_xticklabels(labels, rotation=30 if crowded else 0,
                          ha="right" if crowded else "center")
    panel.set_xlim(-0.5, len(choices) - 0.5)
    return np.array([choices.index(v) for v in raw], dtype=float)


def plot_parameters(result, ax=None, space=None, maximize=None, metric=None):
    """Objective value observed against each parameter, one panel per parameter.

    Parameters
    ----------
    result : run
        An OptimizeResult, BayesianOptimizer, fitted BayesSearchCV, EarlyStoppingResult,
        HyperbandScheduler or a journal's path: successful trials are dots, the best one a
        star; Hyperband trials stopped early are grey crosses at the last value they
        measured (at a smaller budget).
    ax : sequence of matplotlib Axes, default=None
        One per parameter (a single Axes if there is one parameter); a new row of panels if
        None.
    space : SearchSpace, default=None
        Gives log scales, integer ticks and the order of categories; taken from an
        optimiser, scheduler or journal if None.
    maximize : bool, default=None
        Which trial is best; taken from an optimiser, scheduler or journal if None (False
        for a result).
    metric : str, default=None
        What the values are, for the y axis (``'objective'`` if None).

    Returns
    -------
    axes : list of matplotlib Axes, in the order of the parameters.

    Raises
    ------
    InvalidParameterError
        For a result without trials, a ``space`` that is not a SearchSpace, or not one Axes
        per parameter.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from repurpose.bo import Categorical, OptimizeResult, SearchSpace, Trial
    >>> space = SearchSpace({'layer': Categorical(['fc1_relu_fwd', 'relu3_fwd'])})
    >>> run = OptimizeResult({'layer': 'relu3_fwd'}, 0.9,
    ...                      [Trial({'layer': 'fc1_relu_fwd'}, 0.7, 'ok'),
    ...                       Trial({'layer': 'relu3_fwd'}, 0.9, 'ok')])
    >>> ax, = plot_parameters(run, space=space, maximize=True, metric='accuracy (CV)')
    >>> [t.get_text() for t in ax.get_xticklabels()], ax.get_ylabel()
    (['fc1_relu_fwd', 'relu3_fwd'], 'accuracy (CV)')
    """
    result, maximize, own_space = _unpack(result, maximize)
    space = own_space if space is None else space
    if space is not None and not isinstance(space, SearchSpace):
        raise InvalidParameterError(f"space must be a SearchSpace, got {type(space).__name__}.")
    names = (space.names if space is not None else
             list(result.history[0].params) if result.history else [])
    if not names:
        raise InvalidParameterError("plot_parameters needs a result with at least one trial.")
    axes = _panel_axes(ax, names)
    ok = [t for t in result.history if t.status == "ok"]
    stopped = [t for t in result.history if t.status == "stopped" and t.value is not None]
    values = np.array([t.value for t in ok], dtype=float)
    best = (int(np.argmax(values) if maximize else np.argmin(values)) if len(ok) else None)
    for panel, name in zip(axes, names):
        dim = space.dimensions[name] if space is not None else None
        x = _positions(panel, dim, [t.params[name] for t in ok + stopped])
        panel.scatter(x[:len(ok)], values, s=14, alpha=0.7)
        if best is not None:
            panel.scatter([x[best]], [values[best]], marker="*", s=120, color="red")
        if stopped:
            panel.scatter(x[len(ok):], [t.value for t in stopped], marker="x", s=14,
                          color="grey", label="stopped early (last value)")
        panel.set_xlabel(name)
    axes[0].set_ylabel("objective" if metric is None else metric)
    if stopped:
        axes[0].legend(fontsize="small")
    return axes


def plot_learning_curves(run, ax=None, maximize=None, metric=None, budget="budget"):
    """The values each trial of a Hyperband study reported against the budget (epochs), one
    line per trial coloured by trial number.

    Parameters
    ----------
    run : EarlyStoppingResult, HyperbandScheduler, or str or path-like
        The study, or the path of its journal (``state_path``, format
        ``repurpose.bo.hyperband``).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure if None.
    maximize : bool, default=None
        Which completed trial is best (starred); taken from a scheduler or journal if None
        (False for a result).
    metric : str, default=None
        What the values are, for the y axis (``'value'`` if None).
    budget : str, default='budget'
        What the budget is, for the x axis (``'epoch'``).

    Returns
    -------
    ax : matplotlib Axes

    Raises
    ------
    InvalidParameterError
        If ``run`` is not a Hyperband study, or no trial reported a value.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from repurpose.bo import Real, SearchSpace, minimize_with_early_stopping
    >>> def train(params, report):
    ...     for epoch in range(1, 4):
    ...         report(epoch, params["x"] ** 2 + 1.0 / epoch)
    >>> res = minimize_with_early_stopping(train, SearchSpace({"x": Real(-1.0, 1.0)}),
    ...                                    max_budget=3, n_trials=4, seed=0)
    >>> ax = plot_learning_curves(res, metric='loss', budget='epoch')
    >>> len(ax.lines) >= 4, ax.get_xlabel(), ax.get_ylabel()
    (True, 'epoch', 'loss')
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.ticker import MaxNLocator

    history, maximize = _hyperband_history(run, maximize)
    curves = [(i, t) for i, t in enumerate(history, start=1) if t.values]
    if not curves:
        raise InvalidParameterError("plot_learning_curves: no trial reported a value.")
    ax = _new_axes(ax)
    cmap, norm = colormaps["viridis"], Normalize(1, max(len(history), 2))
    for number, t in curves:
        style = {"completed": "o-", "stopped": "--"}.get(t.status, ":")
        ax.plot(t.budgets, t.values, style, color=cmap(norm(number)), markersize=3,
                linewidth=1)
        if t.status == "stopped":
            ax.plot(t.budgets[-1:], t.values[-1:], "x", color=cmap(norm(number)))
    best = _scheduled(history, maximize)
    if best.best_params is not None:
        top = next(t for _, t in curves
                   if t.status == "completed" and t.params == best.best_params)
        ax.plot(top.budgets[-1:], top.values[-1:], "*", color="red", markersize=12)
    _curve_legend(ax)
    ax.figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="trial",
                       ticks=MaxNLocator(integer=True))
    if all(float(b).is_integer() for _, t in curves for b in t.budgets):
        _integer_ticks(ax.xaxis)
    ax.set_xlabel(budget)
    ax.set_ylabel("value" if metric is None else metric)
    return ax


def _hyperband_history(run, maximize):
    """``(list of ScheduledTrial, maximize)`` of a Hyperband result, scheduler or journal."""
    history = None
    if isinstance(run, (str, os.PathLike)):
        history, stored, _ = _read_study(run)
        maximize = stored if maximize is None else maximize
    elif isinstance(run, (EarlyStoppingResult, HyperbandScheduler)):
        history = run.history
        maximize = getattr(run, "maximize", False) if maximize is None else maximize
    if not isinstance(history, list) or not all(isinstance(t, ScheduledTrial)
                                                for t in history):
        raise InvalidParameterError(
            f"plot_learning_curves needs an EarlyStoppingResult, a HyperbandScheduler or the "
            f"path of a Hyperband journal, got {type(run).__name__}.")
    return history, bool(maximize)


def _curve_legend(ax):
    from matplotlib.lines import Line2D

    ax.legend(handles=[
        Line2D([], [], linestyle="-", marker="o", markersize=3, color="grey",
               label="completed"),
        Line2D([], [], linestyle="--", marker="x", color="grey", label="stopped early"),
        Line2D([], [], linestyle="", marker="*", color="red", markersize=10, label="best")],
        fontsize="small")
