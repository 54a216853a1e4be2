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

:func:`run_tuning` writes to ``run.output_dir``: ``tune.resolved.yaml`` (the resolved config),
``journal.jsonl`` (the BO journal; a killed study resumes from it), ``trials.jsonl`` (one
readable line per finished trial) and, at the end, ``best.json`` (best parameters and value,
test-set metrics of the best configuration refitted on all training data, and a config
snippet to use it). See ``docs/guide/tuning.md`` ("Scripted tuning") for the reference.
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
from .._validation import brief_list, check_positive_int, suggest
from ..bo import Categorical, SearchSpace, minimize
from ..bo import Integer as IntegerDimension
from ..bo import Real as RealDimension
from ..bo.scheduler import minimize_with_early_stopping
from ._config import (DataConfig, JobConfig, ModelConfig, RunConfig, SourceConfig, TrainConfig,
                     check_layers, check_paths, load_job_data, problems_message,
                     read_config_file, read_section, with_added_defaults)
from .. import repurposers
from ..repurposers import FineTuneRepurposer
from ._config import check_cross, job_sections
from ._output import OutputFolder
from ._schema import Bad, field, unknown_key
from .._validation import Custom, Integer, Nullable, Options, Problem
from ..exceptions import DataError, InvalidParameterError
from ..persist import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["TuneConfig", "TuneSection", "TuneResult", "load_tune_config",
           "tune_config_from_dict", "check_tune_output_dir", "run_tuning", "ESTIMATORS",
           "RESOLVED_TUNE_CONFIG_NAME", "JOURNAL_NAME", "TRIALS_NAME", "BEST_NAME"]

#: The resolved config a tuning run writes to ``run.output_dir``; ``--resume`` compares it.
RESOLVED_TUNE_CONFIG_NAME = "tune.resolved.yaml"
#: The study's BO journal in ``run.output_dir``, one fsynced JSON line per trial; a killed
#: study resumes from it.
JOURNAL_NAME = "journal.jsonl"
#: One readable JSON line per finished trial, in ``run.output_dir``.
TRIALS_NAME = "trials.jsonl"
#: Written to ``run.output_dir`` at the end: the best parameters and value, test-set metrics
#: of the best configuration and a config snippet to use it.
BEST_NAME = "best.json"
#: What a tuning run writes to ``run.output_dir`` (all that ``--overwrite`` removes).
TUNE_OUTPUT = OutputFolder(RESOLVED_TUNE_CONFIG_NAME, "tuning run", (
    RESOLVED_TUNE_CONFIG_NAME, JOURNAL_NAME, TRIALS_NAME, BEST_NAME))

#: ``tune.estimator`` names -> class names in :mod:`repurpose.repurposers`.
ESTIMATORS = {"logistic": "LogisticRepurposer", "svm": "SvmRepurposer", "gp": "GpRepurposer",
              "bnn": "BnnRepurposer", "finetune": "FineTuneRepurposer"}
HEADS = ("logistic", "svm", "gp", "bnn")
SCORINGS = ("accuracy", "neg_log_loss")
ACQUISITIONS = ("ei", "ucb", "pi")
DIMENSION_TYPES = ("real", "integer", "categorical")
# Constructor parameters that are not hyper-parameters: where it runs and what it shows.
_NOT_TUNABLE = ("source", "ctx", "progress", "checkpoint_dir", "cache_features")
# Data sets by name in ``data.train`` beyond config.BUILTIN_JOB_DATASETS.
_DEMO = "demo"


def _mapping(value):
    if not isinstance(value, dict):
        raise Problem()
    return dict(value)


_MAPPING = Custom(_mapping, "a mapping")


def _space_mapping(value):
    value = _mapping(value)
    if not value:
        raise Bad("must name at least one parameter, e.g. {C: {type: real, low: 0.001, "
                  "high: 1000, log: true}}")
    return value


def _early_stopping(value):
    value = _mapping(value)
    unknown = sorted(set(value) - {"max_budget", "eta", "min_budget"})
    if unknown:
        raise Bad(f"unknown key(s) {brief_list(unknown)}; expected max_budget (epochs), eta "
                  f"and min_budget")
    if "max_budget" not in value:
        raise Bad("max_budget (the epochs of a full trial) is missing")
    out = {}
    for key, constraint, default in (("max_budget", Integer(1), None),
                                     ("eta", Integer(2), 3),
                                     ("min_budget", Integer(1), 1)):
        out[key] = value.get(key, default)
        if not constraint.contains(out[key]):
            raise Bad(f"{key} must be {constraint.what}, got {out[key]!r}")
        out[key] = int(out[key])
    if out["min_budget"] > out["max_budget"]:
        raise Bad(f"min_budget={out['min_budget']} exceeds max_budget={out['max_budget']}")
    return out


@dataclasses.dataclass
class TuneSection:
    """``tune``: what to tune and how.

    Parameters
    ----------
    estimator : {'logistic', 'svm', 'gp', 'bnn', 'finetune'}
        Required. A head on the source's features, or fine-tuning.
    search_space : dict
        Required. Parameter name -> ``{type: real|integer|categorical, low, high, log,
        choices}``.
    params : dict, default=None
        Heads: fixed constructor parameters (``layers``, ``pool``, ...); ``finetune`` takes
        them from the ``model`` and ``train`` sections.
    n_trials : int >= 1, default=20
        Configurations to evaluate (over all runs of a resumed study).
    cv : int >= 2, default=3
        Heads: folds of the stratified cross-validation.
    scoring : {'accuracy', 'neg_log_loss'}, default='accuracy'
        What to maximise (fine-tuning: ``val_accuracy`` or ``val_loss``).
    seed : int >= 0, default=0
        Seeds the optimiser, the folds and (heads) ``random_state``.
    acquisition : {'ei', 'ucb', 'pi'}, default='ei'
        Acquisition function of :class:`~repurpose.bo.BayesianOptimizer`.
    n_initial : int >= 1, default=None
        Size of the Sobol initial design; None: ``max(2 d + 1, 5)``.
    early_stopping : dict, default=None
        ``finetune``: ``{max_budget: EPOCHS, eta: 3, min_budget: 1}`` stops poor trials
        early (Hyperband).

    Examples
    --------
    >>> from repurpose.jobs import read_section
    >>> problems = []
    >>> tune = read_section('tune', TuneSection, {
    ...     'estimator': 'finetune', 'n_trial': 5, 'early_stopping': {'max_budget': 9},
    ...     'search_space': {'learning_rate': {'type': 'real', 'low': 1e-3, 'high': 0.1}}},
    ...     problems)
    >>> tune.n_trials, tune.early_stopping
    (20, {'max_budget': 9, 'eta': 3, 'min_budget': 1})
    >>> problems
    ["tune.n_trial: unknown key. Did you mean 'n_trials' or 'n_initial'?"]
    """

    estimator: Optional[str] = field(None, Options(*ESTIMATORS),
                                      "logistic, svm, gp, bnn (a head on the source's "
                                      "features) or finetune", required=True)
    search_space: Optional[dict] = field(None, Custom(_space_mapping, "a mapping of parameter name -> {type, low, high, log, choices}"), "parameter name -> {type: "
                                          "real|integer|categorical, low, high, log, choices}",
                                          required=True)
    params: Optional[dict] = field(None, Nullable(_MAPPING),
                          "heads: fixed constructor parameters (layers, pool, ...); "
                          "finetune takes them from the model and train sections")
    n_trials: int = field(20, Integer(1), "configurations to evaluate (over all runs of "
                           "a resumed study)")
    cv: int = field(3, Integer(2), "heads: folds of the stratified cross-validation")
    scoring: str = field("accuracy", Options(*SCORINGS), "what to maximise: accuracy, or "
                          "neg_log_loss (fine-tuning: val_accuracy or val_loss)")
    seed: int = field(0, Integer(0), "seeds the optimiser, the folds and (heads) "
                       "random_state")
    acquisition: str = field("ei", Options(*ACQUISITIONS), "acquisition function")
    n_initial: Optional[int] = field(None, Nullable(Integer(1)),
                                      "Sobol initial design size; null: max(2 d + 1, 5)")
    early_stopping: Optional[dict] = field(None, Nullable(Custom(_early_stopping, "{max_budget: EPOCHS, eta: 3, min_budget: 1}")),
                                            "finetune: {max_budget: EPOCHS, eta: 3} stops "
                                            "poor trials early (Hyperband)")


@dataclasses.dataclass
class TuneConfig:
    """A validated tuning config: the job sections (``model``/``train`` are None for a head)
    and ``tune``; ``space`` is the parsed :class:`~repurpose.bo.SearchSpace`.

    Build it with :func:`load_tune_config` (a file) or :func:`tune_config_from_dict`.

    Parameters
    ----------
    source : SourceConfig
        The pretrained model.
    data : DataConfig
        Training (and test) data; ``train: demo`` is the demo task.
    run : RunConfig
        Devices and the output folder.
    tune : TuneSection
        What to tune and how.
    space : SearchSpace
        ``tune.search_space``, parsed.
    model : ModelConfig, default=None
        Fine-tuning only: the fixed surgery.
    train : TrainConfig, default=None
        Fine-tuning only: the fixed hyper-parameters.

    Examples
    --------
    >>> import tempfile
    >>> cfg = tune_config_from_dict({
    ...     'source': {'model': 'digits_cnn'},
    ...     'data': {'train': 'demo', 'n_per_class': 6},
    ...     'run': {'output_dir': tempfile.mkdtemp()},
    ...     'tune': {'estimator': 'logistic', 'n_trials': 4,
    ...              'params': {'layers': ['fc1_relu_fwd']},
    ...              'search_space': {'C': {'type': 'real', 'low': 0.01, 'high': 100,
    ...                                     'log': True}}}})
    >>> cfg.space
    SearchSpace({'C': Real(0.01, 100.0, log=True)})
    >>> cfg.tune.params, cfg.data.train, cfg.data.classes
    ({'layers': ('fc1_relu_fwd',), 'random_state': 0}, 'shifted_digits', [5, 6, 7, 8, 9])
    """

    source: SourceConfig
    data: DataConfig
    run: RunConfig
    tune: TuneSection
    space: SearchSpace
    model: Optional[ModelConfig] = None
    train: Optional[TrainConfig] = None
    #: The class 'finetune' trains (FineTuneRepurposer or a subclass).
    finetune_estimator: type = dataclasses.field(default=FineTuneRepurposer, repr=False)

    @property
    def estimator_class(self):
        """The class ``tune.estimator`` names."""
        return _estimator_class(self.tune.estimator, self.finetune_estimator)

    @property
    def is_finetune(self):
        return self.tune.estimator == "finetune"

    @property
    def maximize(self):
        """Whether the tuned value is maximised (accuracy, neg_log_loss, val_accuracy)."""
        return not (self.is_finetune and self.tune.scoring == "neg_log_loss")

    @property
    def metric(self):
        """The value a trial reports: the CV scoring, or for fine-tuning 'val_accuracy' or
        'val_loss'."""
        if not self.is_finetune:
            return self.tune.scoring
        return "val_accuracy" if self.tune.scoring == "accuracy" else "val_loss"

    def job(self):
        """The fine-tuning job config (finetune only)."""
        return JobConfig(self.source, self.data, self.model, self.train, self.run,
                         estimator=self.finetune_estimator)

    def to_dict(self):
        """The resolved config as plain YAML-able values."""
        out = {"source": dataclasses.asdict(self.source), "data": dataclasses.asdict(self.data)}
        if self.is_finetune:
            out["model"] = dataclasses.asdict(self.model)
            out["train"] = dataclasses.asdict(self.train)
        out["run"] = dataclasses.asdict(self.run)
        tune = dataclasses.asdict(self.tune)
        tune["params"] = _yaml_values(self.tune.params)
        tune["search_space"] = {name: dim for name, dim in
                                self.space.to_dict()["dimensions"].items()}
        out["tune"] = tune
        return out


def _yaml_values(params):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in (params or {}).items()}


def _immutable(value):
    """YAML lists -> tuples (constructor parameters are immutable, STYLE.md §2)."""
    if isinstance(value, list):
        return tuple(_immutable(v) for v in value)
    return value


# ---------------------------------------------------------------------- validation
_JOB_SECTIONS = {"source": SourceConfig, "data": DataConfig, "model": ModelConfig,
                 "train": TrainConfig, "run": RunConfig}
_SECTIONS = dict(_JOB_SECTIONS, tune=TuneSection)


def _estimator_class(name, finetune=FineTuneRepurposer):
    """The class of ``tune.estimator`` ``name``; ``finetune`` (FineTuneRepurposer or a
    subclass) for 'finetune'."""
    return finetune if name == "finetune" else getattr(repurposers, ESTIMATORS[name])


def _parse_dimension(name, spec, problems):
    where = f"tune.search_space.{name}"
    if not isinstance(spec, dict):
        problems.append(f"{where}: must be {{type: real|integer|categorical, ...}}, got "
                        f"{spec!r}")
        return None
    kind = spec.get("type")
    if kind not in DIMENSION_TYPES:
        hint = suggest(kind, DIMENSION_TYPES) if isinstance(kind, str) else ""
        problems.append(f"{where}.type: must be one of {brief_list(DIMENSION_TYPES)}, got "
                        f"{kind!r}" + (f". {hint}" if hint else ""))
        return None
    allowed = {"type", "choices"} if kind == "categorical" else {"type", "low", "high", "log"}
    bad_keys = [k for k in spec if k not in allowed]
    for key in bad_keys:
        problems.append(unknown_key(where, key, sorted(allowed)).replace(
            "unknown key", f"unknown key for type {kind}"))
    if bad_keys:
        return None
    try:
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list):
                problems.append(f"{where}.choices: must be a list of values, got {choices!r}")
                return None
            scalar = (str, int, float, bool, type(None))
            odd = [c for c in choices if not isinstance(c, scalar)]
            if odd:
                problems.append(f"{where}.choices: must be numbers, strings, booleans or "
                                f"null, got {odd[0]!r}")
                return None
            return Categorical(choices)
        missing = [k for k in ("low", "high") if k not in spec]
        if missing:
            problems.append(f"{where}: {' and '.join(missing)} missing for type {kind}")
            return None
        dim_class = RealDimension if kind == "real" else IntegerDimension
        low, high = spec["low"], spec["high"]
        if kind == "real":  # YAML reads 1e-3 (no dot) as a string
            low, high = (_yaml_number(v) for v in (low, high))
        return dim_class(low, high, log=spec.get("log", False))
    except InvalidParameterError as err:
        problems.append(f"{where}: {err}")
        return None


def _yaml_number(value):
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _demo_data(raw_data, problems):
    """``data.train: demo`` is the demo task (make_demo_task): shifted digits 5-9."""
    if not isinstance(raw_data, dict) or raw_data.get("train") != _DEMO:
        return raw_data
    data = dict(raw_data)
    for key in ("validation", "test"):
        if data.get(key) is not None:
            problems.append(f"data.{key}: the demo task's test data are the images not drawn "
                            f"for training. Set data.{key} to null")
            data[key] = None
    if data.get("kind") not in (None, "builtin"):
        problems.append(f"data.kind: the demo task is built in, got {data['kind']!r}. Remove "
                        f"data.kind")
    data.update(train="shifted_digits", kind="builtin")
    data.setdefault("classes", [5, 6, 7, 8, 9])
    data.setdefault("n_per_class", 10)
    return data


def tune_config_from_dict(raw, name="config", base_dir=None, estimator=FineTuneRepurposer):
    """Validate a tuning config mapping and return a :class:`TuneConfig`.

    Parameters
    ----------
    raw : dict
        Sections as read from YAML.
    name : str, default='config'
        How messages name the config (the file name).
    base_dir : str, default=None
        Folder that relative paths are relative to; None is the current folder.
    estimator : type, default=FineTuneRepurposer
        What ``tune.estimator: finetune`` trains (a subclass brings its own parameters to
        the ``model``/``train`` sections and the search space).

    Returns
    -------
    TuneConfig

    Raises
    ------
    InvalidParameterError
        Listing every problem with its key path:
        ``'tune.yaml has 2 problems: tune.search_space.c: not a parameter of ...'``.

    See Also
    --------
    load_tune_config : The same, from a file.

    Examples
    --------
    >>> import tempfile
    >>> raw = {'source': {'model': 'digits_cnn'}, 'data': {'train': 'demo'},
    ...        'run': {'output_dir': tempfile.mkdtemp()},
    ...        'tune': {'estimator': 'svm', 'cv': 1,
    ...                 'search_space': {'c': {'type': 'real', 'low': 0.1, 'high': 10}}}}
    >>> tune_config_from_dict(raw, name='tune.yaml')
    Traceback (most recent call last):
    ...
    repurpose.exceptions.InvalidParameterError: tune.yaml has 2 problems: tune.cv: must be an
    integer >= 2, got 1; tune.search_space.c: not a parameter of SvmRepurposer. Did you mean
    'C'?
    >>> raw['tune'].update(cv=2, search_space={'C': {'type': 'real', 'low': 0.1, 'high': 10}})
    >>> tune_config_from_dict(raw).space
    SearchSpace({'C': Real(0.1, 10.0, log=False)})
    """
    base_dir = os.path.abspath(base_dir or os.getcwd())
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidParameterError(problems_message(name, [
            f"top level: must be a mapping of sections ({', '.join(_SECTIONS)}), got "
            f"{type(raw).__name__} {raw!r}"]))
    problems, tune_problems = [], []  # the tune section's are listed last
    for key in raw:
        if key not in _SECTIONS:
            problems.append(unknown_key("", key, list(_SECTIONS)))
    tune = read_section("tune", TuneSection, raw.get("tune"), tune_problems)
    finetune = tune.estimator == "finetune"
    sections = {}
    job_classes = job_sections(estimator)
    for section in _JOB_SECTIONS:
        cls = job_classes[section]
        values = raw.get(section)
        if section == "data":
            values = _demo_data(values, problems)
        if section in ("model", "train") and not finetune:
            if values and tune.estimator is not None:
                problems.append(f"{section}: applies to estimator 'finetune' only, but "
                                f"tune.estimator is {tune.estimator!r}. Give a head's fixed "
                                f"parameters in tune.params")
            continue
        sections[section] = read_section(section, cls, values, problems)
    source, data, run = sections["source"], sections["data"], sections["run"]
    # Every path is relative to the file's folder.
    check_paths(source, data, run, lambda key: base_dir, problems)
    if finetune:
        job = JobConfig(source, data, sections["model"], sections["train"], run,
                        estimator=estimator)
        check_cross(job, problems)
        if data.validation is None and job.train.validation_fraction == 0:
            problems.append("train.validation_fraction: fine-tuning trials are scored on "
                            "validation data, but it is 0 and data.validation is null. Give "
                            "one of them")
    space = _check_tune(tune, finetune, tune_problems, estimator)
    problems += tune_problems
    if problems:
        raise InvalidParameterError(problems_message(name, problems))
    return TuneConfig(source, data, run, tune, space, sections.get("model"),
                      sections.get("train"), finetune_estimator=estimator)


def _suggest_name(name, valid):
    same = [v for v in valid if str(name).lower() == v.lower()]
    return f"Did you mean {same[0]!r}?" if same else suggest(name, valid)


def _check_tune(tune, finetune, problems, estimator):
    if tune.estimator is None:
        return None
    cls = _estimator_class(tune.estimator, estimator)
    valid = [n for n in cls(None).get_params(deep=False) if n not in _NOT_TUNABLE]
    params = dict(tune.params or {})
    if finetune and params:
        problems.append("tune.params: finetune takes its fixed parameters from the model and "
                        "train sections. Move them there")
    for key in list(params):
        if key not in valid:
            hint = _suggest_name(key, valid)
            problems.append(f"tune.params.{key}: not a parameter of {cls.__name__}. "
                            + (hint or f"Known: {brief_list(valid, 8)}"))
            del params[key]
    tune.params = {k: _immutable(v) for k, v in params.items()}
    if not finetune:
        for key in ("early_stopping",):
            if getattr(tune, key) is not None:
                problems.append(f"tune.{key}: applies to estimator 'finetune' only. Remove it")
        if "random_state" in valid and "random_state" not in tune.params:
            tune.params["random_state"] = tune.seed
    if not isinstance(tune.search_space, dict):
        return None
    dims = {}
    for name, spec in tune.search_space.items():
        if name not in valid:
            hint = _suggest_name(name, valid)
            problems.append(f"tune.search_space.{name}: not a parameter of {cls.__name__}. "
                            + (hint or f"Known: {brief_list(valid, 8)}"))
            continue
        if name in tune.params:
            problems.append(f"tune.search_space.{name}: also fixed in tune.params. Keep one")
        if finetune and name == "n_epochs" and tune.early_stopping is not None:
            problems.append("tune.search_space.n_epochs: with tune.early_stopping the epochs "
                            "are the budget (tune.early_stopping.max_budget). Remove it")
        dim = _parse_dimension(name, spec, problems)
        if dim is not None:
            dims[name] = dim
    if len(dims) != len(tune.search_space) or not dims:
        return None
    return SearchSpace(dims)


def load_tune_config(path):
    """Read and validate a tuning config file (YAML or JSON).

    Parameters
    ----------
    path : str or path-like
        The file. Relative paths inside it are relative to its folder.

    Returns
    -------
    TuneConfig

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    InvalidParameterError
        If it is not YAML, or listing every problem in it.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, 'tune.yaml'), 'w') as handle:
    ...     _ = handle.write('''
    ... source: {model: digits_cnn}
    ... data: {train: demo, n_per_class: 6}
    ... run: {output_dir: out}
    ... tune:
    ...   estimator: logistic
    ...   search_space: {C: {type: real, low: 1.0e-3, high: 1.0e+3, log: true}}
    ... ''')
    >>> cfg = load_tune_config(os.path.join(folder, 'tune.yaml'))
    >>> cfg.run.output_dir == os.path.join(folder, 'out'), cfg.tune.n_trials, cfg.metric
    (True, 20, 'accuracy')
    """
    path = os.fspath(path)
    raw = read_config_file(path, "the tuning config's")
    return tune_config_from_dict(raw, name=path, base_dir=os.path.dirname(os.path.abspath(path)))


# ---------------------------------------------------------------------- output folder
def _comparable(resolved):
    resolved = json.loads(json.dumps(resolved))
    resolved.get("tune", {}).pop("n_trials", None)  # a resumed study may be extended
    return resolved


def check_tune_output_dir(cfg, resume=False, overwrite=False):
    """Check that ``run.output_dir`` may hold this study; return ``'new'`` or ``'resume'``.

    A new or empty folder starts a study. A folder holding this study (its
    ``tune.resolved.yaml`` equals this config, ``tune.n_trials`` aside) is continued with
    ``resume=True``, or started again with ``overwrite=True`` (which removes only the files a
    tuning run writes).

    Parameters
    ----------
    cfg : TuneConfig
    resume : bool, default=False
        Continue the study in the folder (``--resume``).
    overwrite : bool, default=False
        Start again in a folder that holds an earlier run of this or another study
        (``--overwrite``); not with ``resume``.

    Returns
    -------
    {'new', 'resume'}
        Start a new study, or continue the one in the folder.

    Raises
    ------
    FileExistsError
        For another study's or foreign files, or this study's files without ``resume`` or
        ``overwrite``.
    FileNotFoundError
        With ``resume`` but nothing to resume.
    InvalidParameterError
        With both ``resume`` and ``overwrite``.

    Examples
    --------
    >>> import os, tempfile
    >>> cfg = tune_config_from_dict({
    ...     'source': {'model': 'digits_cnn'}, 'data': {'train': 'demo'},
    ...     'run': {'output_dir': tempfile.mkdtemp()},
    ...     'tune': {'estimator': 'logistic', 'search_space': {'C': {
    ...         'type': 'real', 'low': 0.01, 'high': 100}}}})
    >>> check_tune_output_dir(cfg)
    'new'
    >>> with open(os.path.join(cfg.run.output_dir, 'notes.txt'), 'w') as handle:
    ...     _ = handle.write('mine')
    >>> check_tune_output_dir(cfg, overwrite=True)
    Traceback (most recent call last):
    ...
    FileExistsError: run.output_dir '...' is not empty and holds no tune.resolved.yaml ...
    """
    return TUNE_OUTPUT.check(cfg.run.output_dir, _comparable(cfg.to_dict()), resume=resume,
                             overwrite=overwrite,
                             upgrade=lambda theirs: _comparable(with_added_defaults(theirs, cfg)))


# ---------------------------------------------------------------------- running
@dataclasses.dataclass
class TuneResult:
    """What :func:`run_tuning` found: the best parameters and value (None if every trial
    failed), the history (:class:`~repurpose.bo.Trial` or
    :class:`~repurpose.bo.ScheduledTrial` objects), test-set metrics of the best
    configuration (None without test data), the ``best.json`` content, and the folder.

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

    Examples
    --------
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
    ['best.json', 'journal.jsonl', 'trials.jsonl', 'tune.resolved.yaml']
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


def _write_text(path, text):
    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    atomic_write(path, write, overwrite=True)


def _clean(value):
    """JSON-able: numpy scalars to Python, tuples to lists, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
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
    return _clean(row)


class _TrialLog:
    """``trials.jsonl``: one line per finished trial, appended as it finishes."""

    def __init__(self, path, history, bar):
        self.path, self.bar = path, bar
        _write_text(path, "".join(json.dumps(_trial_row(i + 1, t)) + "\n"
                                  for i, t in enumerate(history)))
        self.n = len(history)

    def __call__(self, trial):
        self.n += 1
        with open(self.path, "a", encoding="utf-8", newline="\n") as handle:
            handle.write(json.dumps(_trial_row(self.n, trial)) + "\n")
        self.bar.update(1)


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


def _snippet(cfg, best_params):
    """A config fragment that uses the best configuration."""
    if best_params is None:
        return None
    if not cfg.is_finetune:
        params = dict(cfg.tune.params)
        params.update(best_params)
        return {"estimator": cfg.tune.estimator, "params": _clean(params)}
    job = cfg.job().to_dict()
    sections = {"model": job["model"], "train": job["train"]}
    if cfg.tune.early_stopping is not None:
        sections["train"]["n_epochs"] = cfg.tune.early_stopping["max_budget"]
    names = {"random_state": ("train", "seed")}
    for key, value in best_params.items():
        section, field = names.get(key, ("model" if key in job["model"] else "train", key))
        sections[section][field] = value
    return _clean(sections)


def _python_call(cfg, best_params):
    if best_params is None:
        return None
    cls = ESTIMATORS[cfg.tune.estimator]
    params = {} if cfg.is_finetune else dict(cfg.tune.params)
    params.update(best_params)
    args = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f"{cls}(source{', ' if args else ''}{args})"


def _one_line(err):
    """``'TypeName: first line of the message'`` (MXNet's messages run to many lines)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _test_score(cfg, source, data, best_params):
    if data["test"] is None or best_params is None:
        return None
    X, y = data["train"]
    X_test, y_test = data["test"]
    fixed = _fixed_params(cfg)
    model = cfg.estimator_class(source, **{**fixed, **best_params})
    logger.info("Refitting the best configuration to score it on %d test samples", len(y_test))
    if cfg.is_finetune:
        X_val, y_val = data["validation"] or (None, None)
        model.fit(X, y, X_val=X_val, y_val=y_val)
    else:
        model.fit(X, y)
    proba = model.predict_proba(X_test)
    return {"n_samples": int(len(y_test)), **metrics.summary(y_test, proba, model.classes_)}


def run_tuning(cfg, resume=False, overwrite=False, progress=False, scheduler=None,
               n_workers=None):
    """Run (or resume) the study of a tuning config and write its files.

    Parameters
    ----------
    cfg : TuneConfig
        From :func:`load_tune_config` or :func:`tune_config_from_dict`.
    resume : bool, default=False
        Continue the study in ``run.output_dir``: finished trials are read from its journal
        and not run again; the suggestions are those of an uninterrupted study.
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
        cluster of that many processes. Not with ``tune.early_stopping``.

    Returns
    -------
    TuneResult

    Raises
    ------
    FileExistsError, FileNotFoundError
        For the output folder, see :func:`check_tune_output_dir`.
    InvalidParameterError, UnknownLayerError, DataError
        Before any trial: for layers the config names that the source lacks, for fixed or
        searched values the estimator rejects (naming their config keys), or for unusable
        data.
    RuntimeError
        If every trial failed, or if refitting the best configuration for the test score
        failed (``best.json`` is written first, its ``test_error`` holding the cause).
    ClusterError
        If no scheduler answers at ``scheduler`` within 5 s, or Dask workers lack repurpose
        or have another version (naming them).

    Examples
    --------
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
    parallel = scheduler is not None or (n_workers is not None and n_workers != 1)
    if n_workers is not None:
        n_workers = check_positive_int(n_workers, "n_workers")
    if parallel and cfg.is_finetune and cfg.tune.early_stopping is not None:
        raise InvalidParameterError(
            "tune.early_stopping runs its trials one at a time, so it cannot use --scheduler "
            "or --workers. Remove tune.early_stopping, or run without those options.")
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
    from .._progress import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    started = time.perf_counter()
    source = _source_model(cfg)
    if cfg.is_finetune:
        check_layers(cfg.job(), source.layer_names)
    _check_estimator_params(cfg, source)
    # After the checks, so that --overwrite removes nothing for a config that cannot run.
    state = check_tune_output_dir(cfg, resume=resume, overwrite=overwrite)
    data = _load_data(cfg)
    out = cfg.run.output_dir
    os.makedirs(out, exist_ok=True)
    # Written on resume too: a resumed study may have been extended (tune.n_trials).
    _write_text(os.path.join(out, RESOLVED_TUNE_CONFIG_NAME),
                yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    if state == "resume":
        logger.info("Resuming the tuning run in %s", out)
    journal = os.path.join(out, JOURNAL_NAME)
    n_trials, t = cfg.tune.n_trials, cfg.tune
    X, y = data["train"]
    logger.info("Tuning %s (%s) on %d samples: %d trials, %s %s, output %s", t.estimator,
                ", ".join(cfg.space.names), len(y), n_trials,
                "maximising" if cfg.maximize else "minimising", cfg.metric, out)
    history = _journal_history(cfg, journal)
    bar = tqdm(total=n_trials, initial=min(len(history), n_trials), desc="tune",
               unit="trial", disable=not progress, leave=False)
    trial_log = _TrialLog(os.path.join(out, TRIALS_NAME), history, bar)
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
                res = minimize_with_early_stopping(
                    reported, cfg.space, es["max_budget"], n_trials=n_trials, eta=es["eta"],
                    min_budget=es["min_budget"], seed=t.seed, maximize=cfg.maximize,
                    optimizer_options=options, state_path=journal, callback=trial_log)
            else:
                if cfg.is_finetune:
                    objective, _ = _finetune_objectives(cfg, source, data)
                else:
                    objective = _head_objective(cfg, source, X, y)
                res = minimize(objective, cfg.space, n_trials, seed=t.seed,
                               maximize=cfg.maximize, state_path=journal, callback=trial_log,
                               n_workers=n_workers, client=client, **options)
    finally:
        bar.close()
    history = list(res.history)
    n_failed = sum(trial.status == "failed" for trial in history)
    if res.best_params is None:
        errors = [trial.error for trial in history if trial.error]
        raise RuntimeError(f"every one of the {len(history)} trials failed (first error: "
                           f"{errors[0] if errors else 'no value'}). See {TRIALS_NAME} in {out}.")
    refit_error = None
    try:
        test = _test_score(cfg, source, data, res.best_params)
    except Exception as err:  # the study's result stands: write it, then fail (exit 1)
        test, refit_error = None, err
    report = _clean({
        "estimator": t.estimator, "metric": cfg.metric, "maximize": cfg.maximize,
        "best_params": res.best_params, "best_value": res.best_value,
        "n_trials": len(history), "n_failed": n_failed,
        "epochs_used": (res.total_budget_used if hasattr(res, "total_budget_used") else None),
        "test": test,
        "test_error": None if refit_error is None else _one_line(refit_error),
        "config": _snippet(cfg, res.best_params),
        "python": _python_call(cfg, res.best_params),
        "seconds": time.perf_counter() - started})
    best_path = os.path.join(out, BEST_NAME)
    _write_text(best_path, json.dumps(report, indent=2) + "\n")
    if refit_error is not None:
        # A RuntimeError, not the ValueError etc. it may wrap: the CLI's exit 1 (a failure
        # during the run), not 2 (bad usage).
        raise RuntimeError(
            f"refitting the best configuration on all training data to score it on the test "
            f"data failed: {report['test_error']}. The study's result is in {best_path}; "
            f"--debug shows the traceback.") from refit_error
    return TuneResult(res.best_params, res.best_value, history, test, report, out)


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

