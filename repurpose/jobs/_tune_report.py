"""What a tuning run (:mod:`repurpose.jobs._tune`) writes besides the journal: a line of
``trials.jsonl`` per finished trial, and at the end the plots and ``best.json``."""
import json
import logging
import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..bo.plots import plot_convergence, plot_learning_curves, plot_parameters
from ..persist import atomic_write
from ._tune_config import BEST_NAME, MODEL_NAME, PLOT_NAMES

logger = logging.getLogger(__name__)

__all__ = ["write_text", "clean", "TrialLog", "snippet", "python_call", "one_line",
           "metric_label", "write_plots", "finished_report"]


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (replacing it)."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    atomic_write(path, write, overwrite=True)


def clean(value):
    """JSON-able: numpy scalars to Python, tuples to lists, non-finite floats to None.

    Examples
    --------
    >>> clean({'C': np.float64(0.5), 'layers': ('a',), 'loss': float('nan')})
    {'C': 0.5, 'layers': ['a'], 'loss': None}
    """
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _trial_row(number, trial):
    row = {"trial": number, "params": trial.params}
    if hasattr(trial, "bracket"):
        row.update(value=trial.values[-1] if trial.values else None, status=trial.status,
                   stop_reason=trial.stop_reason, epochs=trial.budget_used,
                   told_value=trial.told_value, error=trial.error, seconds=trial.seconds)
    else:
        row.update(value=trial.value, status=trial.status, error=trial.error,
                   seconds=trial.seconds)
    return clean(row)


class TrialLog:
    """``trials.jsonl``: one line per finished trial, appended as it finishes (a study's
    callback); ``bar`` (tqdm) advances by one per trial."""

    def __init__(self, path, history, bar):
        self.path, self.bar = path, bar
        write_text(path, "".join(json.dumps(_trial_row(i + 1, t)) + "\n"
                                 for i, t in enumerate(history)))
        self.n = len(history)

    def __call__(self, trial):
        self.n += 1
        with open(self.path, "a", encoding="utf-8", newline="\n") as handle:
            handle.write(json.dumps(_trial_row(self.n, trial)) + "\n")
        self.bar.update(1)


def snippet(cfg, best_params):
    """A config fragment that uses the best configuration."""
    if best_params is None:
        return None
    if not cfg.is_finetune:
        params = dict(cfg.tune.params)
        params.update(best_params)
        return {"estimator": cfg.tune.estimator, "params": clean(params)}
    job = cfg.job().to_dict()
    sections = {"model": job["model"], "train": job["train"]}
    if cfg.tune.early_stopping is not None:
        sections["train"]["n_epochs"] = cfg.tune.early_stopping["max_budget"]
    names = {"random_state": ("train", "seed")}
    for key, value in best_params.items():
        section, field = names.get(key, ("model" if key in job["model"] else "train", key))
        sections[section][field] = value
    return clean(sections)


def python_call(cfg, best_params):
    """The constructor call of the best configuration, as text."""
    if best_params is None:
        return None
    cls = cfg.estimator_class.__name__
    params = {} if cfg.is_finetune else dict(cfg.tune.params)
    params.update(best_params)
    args = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f"{cls}(source{', ' if args else ''}{args})"


def one_line(err):
    """``'TypeName: first line of the message'`` (MXNet's messages run to many lines).

    Examples
    --------
    >>> one_line(ValueError('bad value\\nmore detail'))
    'ValueError: bad value'
    """
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def metric_label(cfg):
    """What a trial's value is, for plot axes: ``'accuracy (CV)'``, ``'val_loss'``."""
    return cfg.metric if cfg.is_finetune else f"{cfg.metric} (CV)"


def _save_figure(path, figsize, draw):
    """Draw on a new Figure (object API: no pyplot) and write it as a PNG atomically."""
    figure = Figure(figsize=figsize, layout="constrained")
    draw(figure)

    def write(tmp):  # an Agg canvas of its own: no window, whatever the backend
        FigureCanvasAgg(figure).print_figure(tmp, dpi=100, format="png")
    atomic_write(path, write, overwrite=True)


def write_plots(cfg, result, out, only_missing=False):
    """Write the study's plots to ``out``; return their paths.

    ``convergence.png`` (best value so far per trial), ``parameters.png`` (the measured value
    against each tuned parameter) and, with ``tune.early_stopping``, ``learning_curves.png``
    (each trial's value per epoch). ``only_missing`` keeps plots that exist. A plot that cannot
    be drawn is a warning: the study's result stands without it.
    """
    label, maximize, n = metric_label(cfg), cfg.maximize, len(cfg.space.names)
    convergence, parameters, curves = PLOT_NAMES
    drawings = {
        convergence: ((6.0, 3.6), lambda fig: plot_convergence(
            result, ax=fig.subplots(), maximize=maximize, metric=label)),
        parameters: ((max(3.4 * n, 4.0), 3.6), lambda fig: plot_parameters(
            result, ax=fig.subplots(1, n, squeeze=False)[0], space=cfg.space,
            maximize=maximize, metric=label))}
    if cfg.is_finetune and cfg.tune.early_stopping is not None:
        drawings[curves] = ((7.0, 4.0), lambda fig: plot_learning_curves(
            result, ax=fig.subplots(), maximize=maximize, metric=label, budget="epoch"))
    paths = []
    for name, (figsize, draw) in drawings.items():
        path = os.path.join(out, name)
        if not (only_missing and os.path.exists(path)):
            try:
                _save_figure(path, figsize, draw)
            except Exception as err:  # noqa: BLE001 - reported; the study's result stands
                logger.warning("Could not draw %s: %s", path, one_line(err))
                continue
        paths.append(path)
    return paths


def finished_report(out, history, best_params):
    """The ``best.json`` in ``out`` if it is that of this study, finished: the same trials and
    best configuration, refitted and saved without error to ``out/model``. None otherwise (the
    end of the study then runs again)."""
    try:
        with open(os.path.join(out, BEST_NAME), encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, ValueError):
        return None
    if (isinstance(report, dict) and report.get("n_trials") == len(history)
            and report.get("best_params") == clean(best_params)
            and report.get("test_error") is None and report.get("model") is not None
            and os.path.isdir(os.path.join(out, MODEL_NAME))):
        return report
    return None
