"""Scripted hyper-parameter tuning, behind ``repurpose tune --config tune.yaml``.

A tuning config is a job config (:mod:`repurpose.jobs`: ``source``, ``data``, ``run``, and
for fine-tuning ``model`` and ``train``) plus a ``tune`` section: which estimator to tune,
its fixed parameters, the search space, the budget. Two kinds of studies:

* a **head** (``estimator: logistic | svm | gp | bnn``) on the source model's features,
  each configuration scored by stratified k-fold cross-validation on the training data, the
  configurations chosen by :func:`repurpose.bo.minimize`;
* **fine-tuning** (``estimator: finetune``, a
  :class:`~repurpose.repurposers.FineTuneRepurposer` with the ``model``/``train`` sections as
  fixed values), each configuration scored on the validation data; with
  ``tune.early_stopping: {max_budget: EPOCHS, eta: 3}`` the epochs are the budget of
  :func:`repurpose.bo.minimize_with_early_stopping`, which stops poor configurations early.

Either kind runs its trials one at a time, or several at once on a Dask cluster
(``scheduler``/``n_workers`` of :func:`run_tuning`, ``--scheduler``/``--workers`` of
``repurpose tune``).

:func:`run_tuning` writes to ``run.output_dir``: ``tune.resolved.yaml`` (the resolved config),
``journal.jsonl`` (the BO journal; a killed study resumes from it), ``trials.jsonl`` (one
readable line per finished trial) and, at the end, ``model/`` (the best configuration
refitted on all training data, for ``repurpose.load``), ``convergence.png``,
``parameters.png`` (and ``learning_curves.png`` with early stopping), and ``best.json`` (best
parameters and value, the model's folder and test-set metrics, and a config snippet). See
``docs/guide/tuning.md`` ("Scripted tuning") for the reference.
"""
import contextlib
import dataclasses
import json
import logging
import math
import os
import time
from typing import Any, Dict, List, Optional

import numpy as np
import yaml

from .. import metrics
from .._validation import check_positive_int
from ..bo import Categorical, minimize
from ..bo.scheduler import minimize_with_early_stopping
from ..bo.state import SCHEDULE, read_journal
from ..exceptions import DataError, InvalidParameterError
from ..repurposers import learning_rate_at
from ._config import check_layers
from ._data import load_job_data
from ._schema import problems_message
from ._tune_config import (BEST_NAME, JOURNAL_NAME, MODEL_NAME, RESOLVED_TUNE_CONFIG_NAME,
                           TRIALS_NAME, TUNE_OUTPUT, check_tune_output_dir)
from ._tune_report import (TrialLog, clean, finished_report, one_line, python_call, snippet,
                           write_plots, write_text)

logger = logging.getLogger(__name__)

__all__ = ["TuneResult", "run_tuning"]

# ---------------------------------------------------------------------- running
@dataclasses.dataclass
class TuneResult:
    """What :func:`run_tuning` found: the best parameters and value, the history
    (:class:`~repurpose.bo.Trial` or :class:`~repurpose.bo.ScheduledTrial` objects), test-set
    metrics of the best configuration (None without test data), the ``best.json`` content,
    the folder, the saved model's folder and the plots.

    Parameters
    ----------
    best_params : dict or None
        The best configuration found.
    best_value : float or None
        Its value (the CV score, or the validation metric for fine-tuning).
    history : list of Trial or ScheduledTrial
        Every trial, resumed ones included.
    test : dict or None
        ``n_samples``, ``accuracy``, ``nll``, ``brier``, ``ece`` of the best configuration
        refitted on all training data, on the test data.
    report : dict
        What ``best.json`` holds (also a config snippet and the Python call for the best
        configuration).
    output_dir : str
        The study's folder.
    model_dir : str, default=None
        The best configuration refitted on all training data and saved
        (``repurpose.load(model_dir)``).
    plots : list of str, default=[]
        The plots written: ``convergence.png``, ``parameters.png`` and, with
        ``tune.early_stopping``, ``learning_curves.png``.
    already_finished : bool, default=False
        True when ``resume`` found the study finished (all trials run, model saved): nothing
        was run or refitted.

    Examples
    --------
    >>> from repurpose.jobs import tune_config_from_dict
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     cfg = tune_config_from_dict({
    ...         'source': {'model': 'digits_cnn'},
    ...         'data': {'train': 'demo', 'n_per_class': 6},
    ...         'run': {'output_dir': os.path.join(tmp, 'study')},
    ...         'tune': {'estimator': 'logistic', 'n_trials': 3, 'cv': 2,
    ...                  'params': {'layers': ['fc1_relu_fwd']},
    ...                  'search_space': {'C': {'type': 'real', 'low': 0.01, 'high': 100,
    ...                                         'log': True}}}})
    ...     result = run_tuning(cfg)
    ...     sorted(os.listdir(result.output_dir))
    ['best.json', 'convergence.png', 'journal.jsonl', 'model', 'parameters.png',
     'trials.jsonl', 'tune.resolved.yaml']
    >>> result.best_value == max(trial.value for trial in result.history)
    True
    >>> result.report['python']
    "LogisticRepurposer(source, layers=('fc1_relu_fwd',), random_state=0, C=...)"
    """

    best_params: Optional[Dict[str, Any]]
    best_value: Optional[float]
    history: List[Any]
    test: Optional[Dict[str, Any]]
    report: Dict[str, Any]
    output_dir: str
    model_dir: Optional[str] = None
    plots: List[str] = dataclasses.field(default_factory=list)
    already_finished: bool = False


def _load_data(cfg):
    data = load_job_data(cfg.data)
    X, y = data["train"]
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"data.train has 1 class ({classes[0]!r}); tuning a classifier needs "
                        f"at least 2.")
    if not cfg.is_finetune:
        if data["validation"] is not None:  # heads are cross-validated on everything
            X = np.concatenate([X, data["validation"][0]])
            y = np.concatenate([y, data["validation"][1]])
            classes, counts = np.unique(y, return_counts=True)
        if counts.min() < cfg.tune.cv:
            raise DataError(f"tune.cv={cfg.tune.cv} folds, but class {classes[counts.argmin()]!r} "
                            f"has only {counts.min()} training samples. Lower tune.cv or give "
                            f"more data.")
    for split, pair in data.items():
        if pair is not None and pair[0].dtype.kind in "fc" and not np.isfinite(pair[0]).all():
            raise DataError(f"data.{split} holds NaN or inf values. Remove or impute them.")
    data["train"] = (X, y)
    return data


def _source_model(cfg):
    from ..source import SourceModel

    src = cfg.source
    return SourceModel.from_spec(src.model, epoch=src.epoch,
                                 input_shape=tuple(src.input_shape) if src.input_shape else None,
                                 weights=src.weights, download=src.download)


def _fixed_params(cfg):
    if not cfg.is_finetune:
        fixed = dict(cfg.tune.params)
        fixed["ctx"] = tuple(cfg.run.ctx) if isinstance(cfg.run.ctx, list) else cfg.run.ctx
        return fixed
    fixed = cfg.job().to_repurposer_kwargs()
    fixed.update(checkpoint_dir=None, progress=False)  # a killed trial simply runs again
    if cfg.tune.early_stopping is not None:
        fixed["n_epochs"] = cfg.tune.early_stopping["max_budget"]
    return fixed


_SCHEDULE_SETTINGS = ("lr_schedule", "warmup_epochs", "step_epochs", "step_factor")


def _training_schedule(cfg, journal):
    """The learning rate every fine-tuning trial follows over its epochs, as the early-
    stopping scheduler takes it (``schedule=``: budget -> rate, any scale), or None: for a
    constant rate without warm-up (the scheduler's default rules), when a schedule setting is
    searched (trials follow different schedules), or when ``journal`` holds a run written
    without a schedule (it resumes as it ran)."""
    searched = [name for name in _SCHEDULE_SETTINGS if name in cfg.space.names]
    if searched:
        logger.info("The early-stopping scheduler is not told the learning-rate schedule: "
                    "%s is searched, so trials follow different schedules.",
                    ", ".join(searched))
        return None
    fixed = _fixed_params(cfg)
    lr_schedule = fixed.get("lr_schedule", "constant")
    warmup = int(fixed.get("warmup_epochs") or 0)
    if lr_schedule == "constant" and warmup == 0:
        return None
    if os.path.exists(journal) and "schedule" not in read_journal(
            journal, SCHEDULE).header["settings"]:
        logger.info("%s was written without the learning-rate schedule; it resumes without.",
                    journal)
        return None
    n_epochs = int(fixed["n_epochs"])
    step_epochs = tuple(fixed.get("step_epochs") or ())
    step_factor = float(fixed.get("step_factor", 0.1))

    def schedule(budget):  # the rate of the epoch that ends at `budget`
        return learning_rate_at(max(math.ceil(budget) - 1, 0), 1.0, lr_schedule, n_epochs,
                                warmup, step_epochs, step_factor)
    return schedule


def _param_key(cfg, name):
    """The config key that sets the estimator parameter ``name``."""
    if name == "ctx":
        return "run.ctx"
    if not cfg.is_finetune:
        return f"tune.params.{name}"
    if name == "random_state":
        return "train.seed"
    if name == "n_epochs" and cfg.tune.early_stopping is not None:
        return "tune.early_stopping.max_budget"
    return f"model.{name}" if hasattr(cfg.model, name) else f"train.{name}"


def _space_values(dim):
    """``(key, value)`` of the values that bound a dimension: low and high, or each choice."""
    if isinstance(dim, Categorical):
        return [(f"choices[{i}]", choice) for i, choice in enumerate(dim.choices)]
    return [("low", dim.low), ("high", dim.high)]


def _check_estimator_params(cfg, source):
    """Run the estimator's own parameter checks (no data, nothing fitted) on the fixed
    parameters and on every end and choice of the search space, so that a value no trial
    could use is an error naming its config key before the first trial, not a failed study.

    Raises
    ------
    InvalidParameterError
        Listing every bad value with its key path and what the estimator accepts.
    """
    cls = cfg.estimator_class
    fixed = _fixed_params(cfg)

    def error(params):
        try:
            cls(source, **params)._validate_params()
        except (ValueError, TypeError) as err:
            return str(err)
        return None

    problems = []
    whole = error(fixed)
    if whole is not None:
        # Name the culprit: a fixed value that fails next to the defaults of the others.
        culprits = [(_param_key(cfg, k), error({k: v})) for k, v in fixed.items()]
        problems += [f"{key}: {err}" for key, err in culprits if err is not None]
        if not problems:
            where = "tune.params" if not cfg.is_finetune else "the model and train sections"
            problems.append(f"{where}: {whole}")
    else:
        for name, dim in cfg.space.dimensions.items():
            for key, value in _space_values(dim):
                err = error({**fixed, name: value})
                if err is not None:
                    problems.append(f"tune.search_space.{name}.{key}: {err}")
    if problems:
        raise InvalidParameterError(problems_message("The tuning config", problems))


def _head_objective(cfg, source, X, y):
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    base = cfg.estimator_class(source, **_fixed_params(cfg))
    folds = StratifiedKFold(n_splits=cfg.tune.cv, shuffle=True, random_state=cfg.tune.seed)

    def objective(params):
        model = clone(base).set_params(**params)
        scores = cross_val_score(model, X, y, cv=folds, scoring=cfg.tune.scoring,
                                 error_score="raise")
        return float(np.mean(scores))
    return objective


def _finetune_value(cfg, model):
    history = model.history_
    row = history[-1]
    if model.early_stopping and model.best_epoch_ is not None:
        row = history[model.best_epoch_ - 1]  # the weights early stopping kept
    return row[cfg.metric]


def _finetune_objectives(cfg, source, data):
    X, y = data["train"]
    X_val, y_val = data["validation"] or (None, None)
    fixed = _fixed_params(cfg)

    def objective(params):
        model = cfg.finetune_estimator(source, **{**fixed, **params})
        model.fit(X, y, X_val=X_val, y_val=y_val)
        return _finetune_value(cfg, model)

    def reported(params, report):
        def callback(row):
            value = row[cfg.metric]
            if value is None or not math.isfinite(value):
                raise FloatingPointError(f"{cfg.metric} became {value} in epoch {row['epoch']}")
            report(row["epoch"], value)
        model = cfg.finetune_estimator(source, **{**fixed, **params})
        model.fit(X, y, X_val=X_val, y_val=y_val, epoch_callback=callback)
    return objective, reported


def _refit(cfg, source, data, best_params):
    """The best configuration fitted on all training data (fine-tuning: with the validation
    data), and its test-set metrics (None without test data)."""
    X, y = data["train"]
    model = cfg.estimator_class(source, **{**_fixed_params(cfg), **best_params})
    logger.info("Refitting the best configuration on all %d training samples", len(y))
    if cfg.is_finetune:
        X_val, y_val = data["validation"] or (None, None)
        model.fit(X, y, X_val=X_val, y_val=y_val)
    else:
        model.fit(X, y)
    if data["test"] is None:
        return model, None
    X_test, y_test = data["test"]
    proba = model.predict_proba(X_test)
    return model, {"n_samples": int(len(y_test)),
                   **metrics.summary(y_test, proba, model.classes_)}


def run_tuning(cfg, resume=False, overwrite=False, progress=False, scheduler=None,
               n_workers=None):
    """Run (or resume) the study of a tuning config and write its files.

    Parameters
    ----------
    cfg : TuneConfig
        From :func:`load_tune_config` or :func:`tune_config_from_dict`.
    resume : bool, default=False
        Continue the study in ``run.output_dir``: finished trials are read from its journal
        and not run again; the suggestions are those of an uninterrupted study. A study that
        had finished (all trials run, the best model saved) is left as it is.
    overwrite : bool, default=False
        Start again in a folder that holds an earlier run of a tuning study (only the files
        a tuning run writes are removed).
    progress : bool, default=False
        A tqdm bar over trials (stderr).
    scheduler : str, default=None
        Run the trials on the Dask cluster of this scheduler (``'tcp://HOST:8786'``),
        ``n_workers`` (default: all its worker threads) at a time, each told as it finishes.
        Connected to, and its workers checked to import this version of repurpose, before
        anything is written.
    n_workers : int, default=None
        Trials running at once; more than 1 without ``scheduler`` starts a local Dask
        cluster of that many processes. With ``tune.early_stopping`` too: every report of a
        running trial comes back to this process, which alone decides which trials go on
        (:meth:`repurpose.bo.HyperbandScheduler.run`).

    Returns
    -------
    TuneResult

    Raises
    ------
    FileExistsError, FileNotFoundError
        For the output folder, see :func:`check_tune_output_dir`.
    LockedError
        If another process runs a study in ``run.output_dir`` (the folder is locked from
        before it is checked to the end of the run); the message names it.
    InvalidParameterError, UnknownLayerError, DataError
        Before any trial: for layers the config names that the source lacks, for fixed or
        searched values the estimator rejects (naming their config keys), or for unusable
        data.
    RuntimeError
        If every trial failed, or if refitting the best configuration on all training data
        (to save it and score it on the test data) failed (``best.json`` and the plots are
        written first, ``test_error`` holding the cause).
    ClusterError
        If no scheduler answers at ``scheduler`` within 5 s, or Dask workers lack repurpose
        or have another version (naming them).

    Examples
    --------
    >>> from repurpose.jobs import tune_config_from_dict
    >>> import tempfile
    >>> cfg = tune_config_from_dict({
    ...     'source': {'model': 'digits_cnn'},
    ...     'data': {'train': 'demo', 'n_per_class': 6},
    ...     'run': {'output_dir': tempfile.mkdtemp()},
    ...     'tune': {'estimator': 'logistic', 'n_trials': 3, 'cv': 2,
    ...              'params': {'layers': ['fc1_relu_fwd']},
    ...              'search_space': {'C': {'type': 'real', 'low': 0.01, 'high': 100,
    ...                                     'log': True}}}})
    >>> result = run_tuning(cfg)
    >>> len(result.history), sorted(result.best_params), result.test['n_samples']
    (3, ['C'], 866)
    """
    if n_workers is not None:
        n_workers = check_positive_int(n_workers, "n_workers")
    if scheduler is None:
        return _run_tuning(cfg, resume, overwrite, progress, None, n_workers)
    from .._dask import check_workers, connect_scheduler

    # Before anything is written, so that a wrong address leaves no run to --resume.
    with connect_scheduler(scheduler) as client:
        n_threads = check_workers(client)
        logger.info("Running trials on the Dask cluster at %s (%d worker threads)",
                    scheduler, n_threads)
        return _run_tuning(cfg, resume, overwrite, progress, client, n_workers)


def _run_tuning(cfg, resume, overwrite, progress, client, n_workers):
    started = time.perf_counter()
    source = _source_model(cfg)
    if cfg.is_finetune:
        check_layers(cfg.job(), source.layer_names)
    _check_estimator_params(cfg, source)
    # The folder's lock, then its check: a second run on it is refused before it looks.
    with TUNE_OUTPUT.lock(cfg.run.output_dir):
        # After the checks, so that --overwrite removes nothing for a config that cannot run.
        state = check_tune_output_dir(cfg, resume=resume, overwrite=overwrite)
        TUNE_OUTPUT.remove_leftovers(cfg.run.output_dir)
        return _run_in_folder(cfg, source, state, progress, client, n_workers, started)


def _run_in_folder(cfg, source, state, progress, client, n_workers, started):
    """The rest of :func:`run_tuning`, in a checked and locked output folder."""
    data = _load_data(cfg)
    out = cfg.run.output_dir
    os.makedirs(out, exist_ok=True)
    # Written on resume too: a resumed study may have been extended (tune.n_trials).
    write_text(os.path.join(out, RESOLVED_TUNE_CONFIG_NAME),
               yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    if state == "resume":
        logger.info("Resuming the tuning run in %s", out)
    res = _run_study(cfg, source, data, progress, client, n_workers)
    history = list(res.history)
    if res.best_params is None:
        errors = [trial.error for trial in history if trial.error]
        raise RuntimeError(f"every one of the {len(history)} trials failed (first error: "
                           f"{errors[0] if errors else 'no value'}). See {TRIALS_NAME} in {out}.")
    model_dir = os.path.join(out, MODEL_NAME)
    report = finished_report(out, history, res.best_params) if state == "resume" else None
    if report is not None:
        logger.info("The study in %s had already finished (%d trials) and saved its best "
                    "model to %s: nothing to run or refit.", out, len(history), model_dir)
        plots = write_plots(cfg, res, out, only_missing=True)
        return TuneResult(res.best_params, res.best_value, history, report["test"], report,
                          out, model_dir, plots, already_finished=True)
    refit_error = None
    try:
        model, test = _refit(cfg, source, data, res.best_params)
        # The folder is this study's: new (empty, or emptied by --overwrite) or resumed.
        model.save(model_dir, overwrite=state == "resume")
    except Exception as err:  # the study's result stands: write it, then fail (exit 1)
        test, refit_error = None, err
    plots = write_plots(cfg, res, out)
    report = clean({
        "estimator": cfg.tune.estimator, "metric": cfg.metric, "maximize": cfg.maximize,
        "best_params": res.best_params, "best_value": res.best_value,
        "n_trials": len(history), "n_failed": sum(t.status == "failed" for t in history),
        "epochs_used": getattr(res, "total_budget_used", None),
        "model": None if refit_error is not None else os.path.abspath(model_dir),
        "test": test, "test_error": None if refit_error is None else one_line(refit_error),
        "config": snippet(cfg, res.best_params), "python": python_call(cfg, res.best_params),
        "seconds": time.perf_counter() - started})
    best_path = os.path.join(out, BEST_NAME)
    write_text(best_path, json.dumps(report, indent=2) + "\n")
    if refit_error is not None:
        # A RuntimeError, not the ValueError etc. it may wrap: the CLI's exit 1 (a failure
        # during the run), not 2 (bad usage).
        raise RuntimeError(
            f"refitting the best configuration on all training data (to save it and score "
            f"it on the test data) failed: {report['test_error']}. The study's result is in "
            f"{best_path}; --debug shows the traceback.") from refit_error
    return TuneResult(res.best_params, res.best_value, history, test, report, out, model_dir,
                      plots)


def _run_study(cfg, source, data, progress, client, n_workers):
    """Run the trials the journal in ``run.output_dir`` lacks; return the study's result
    (an OptimizeResult, or an EarlyStoppingResult with ``tune.early_stopping``)."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from .._progress import tqdm

    out, t = cfg.run.output_dir, cfg.tune
    journal = os.path.join(out, JOURNAL_NAME)
    X, y = data["train"]
    logger.info("Tuning %s (%s) on %d samples: %d trials, %s %s, output %s", t.estimator,
                ", ".join(cfg.space.names), len(y), t.n_trials,
                "maximising" if cfg.maximize else "minimising", cfg.metric, out)
    history = _journal_history(cfg, journal)
    bar = tqdm(total=t.n_trials, initial=min(len(history), t.n_trials), desc="tune",
               unit="trial", disable=not progress, leave=False)
    trial_log = TrialLog(os.path.join(out, TRIALS_NAME), history, bar)
    # Log through tqdm while the bar is open: the CLI's handler on 'repurpose' if there is
    # one, else whatever the application put on the root logger.
    package_logger = logging.getLogger("repurpose")
    loggers = [package_logger] if package_logger.handlers else [logging.root]
    redirect = logging_redirect_tqdm(loggers=loggers) if progress else contextlib.nullcontext()
    options = {"acquisition": t.acquisition, "n_initial": t.n_initial}
    try:
        with redirect:
            if cfg.is_finetune and t.early_stopping is not None:
                _, reported = _finetune_objectives(cfg, source, data)
                es = t.early_stopping
                return minimize_with_early_stopping(
                    reported, cfg.space, es["max_budget"], n_trials=t.n_trials, eta=es["eta"],
                    min_budget=es["min_budget"], seed=t.seed, maximize=cfg.maximize,
                    optimizer_options=options, state_path=journal, callback=trial_log,
                    n_workers=n_workers, client=client,
                    schedule=_training_schedule(cfg, journal))
            if cfg.is_finetune:
                objective, _ = _finetune_objectives(cfg, source, data)
            else:
                objective = _head_objective(cfg, source, X, y)
            return minimize(objective, cfg.space, t.n_trials, seed=t.seed,
                            maximize=cfg.maximize, state_path=journal, callback=trial_log,
                            n_workers=n_workers, client=client, **options)
    finally:
        bar.close()


def _journal_history(cfg, path):
    """The finished trials already in the journal (for trials.jsonl on resume)."""
    if not os.path.exists(path):
        return []
    from ..bo import BayesianOptimizer
    from ..bo.scheduler import HyperbandScheduler

    if cfg.is_finetune and cfg.tune.early_stopping is not None:
        es = cfg.tune.early_stopping
        return HyperbandScheduler(cfg.space, es["max_budget"], eta=es["eta"],
                                  min_budget=es["min_budget"], seed=cfg.tune.seed,
                                  maximize=cfg.maximize,
                                  optimizer_options={"acquisition": cfg.tune.acquisition,
                                                     "n_initial": cfg.tune.n_initial},
                                  state_path=path).history
    return BayesianOptimizer.load(path).trials

