"""Tuning job files: a job config (``source``, ``data``, ``run``, for fine-tuning ``model``
and ``train``) plus a ``tune`` section: which estimator to tune, its fixed parameters, the
search space, the budget. :func:`load_tune_config` checks it all at once, the search space
against the estimator's own parameters; see :mod:`repurpose.jobs._tune` for the runs.
"""
import dataclasses
import json
import os
from typing import Optional

from .. import repurposers
from .._validation import Custom, Integer, Nullable, Options, Problem, brief_list, suggest
from ..bo import Categorical, SearchSpace
from ..bo import Integer as IntegerDimension
from ..bo import Real as RealDimension
from ..exceptions import InvalidParameterError
from ..repurposers import FineTuneRepurposer
from ._config import check_cross, check_paths, read_config_file, with_added_defaults
from ._output import OutputFolder
from ._schema import (Bad, apply_overrides, field, parse_overrides, problems_message,
                      read_section, unknown_key)
from ._sections import DataConfig, JobConfig, ModelConfig, RunConfig, SourceConfig, TrainConfig
from ._sections import job_sections

__all__ = ["TuneConfig", "TuneSection", "load_tune_config", "tune_config_from_dict",
           "check_tune_output_dir", "ESTIMATORS", "RESOLVED_TUNE_CONFIG_NAME", "JOURNAL_NAME",
           "TRIALS_NAME", "BEST_NAME", "MODEL_NAME", "PLOT_NAMES"]

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
#: At the end: the best configuration refitted on all training data (``repurpose.load`` reads
#: it) and the plots (convergence, parameters, learning curves with ``tune.early_stopping``).
MODEL_NAME, PLOT_NAMES = "model", ("convergence.png", "parameters.png", "learning_curves.png")
#: What a tuning run writes to ``run.output_dir`` (all that ``--overwrite`` removes).
TUNE_OUTPUT = OutputFolder(RESOLVED_TUNE_CONFIG_NAME, "tuning run", (
    RESOLVED_TUNE_CONFIG_NAME, JOURNAL_NAME, TRIALS_NAME, BEST_NAME, MODEL_NAME, *PLOT_NAMES))

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


def tune_config_from_dict(raw, name="config", base_dir=None, estimator=FineTuneRepurposer,
                          overrides=None):
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
    overrides : list of str or dict, default=None
        ``['tune.n_trials=40', ...]`` (``--set``) or ``{'tune.n_trials': 40}``, applied
        before validation.

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
    # Long for its docstring; the body reads each section once, in the order problems are listed.
    base_dir = os.path.abspath(base_dir or os.getcwd())
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidParameterError(problems_message(name, [
            f"top level: must be a mapping of sections ({', '.join(_SECTIONS)}), got "
            f"{type(raw).__name__} {raw!r}"]))
    problems, tune_problems = [], []  # the tune section's are listed last
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    if isinstance(overrides, (list, tuple)):
        overrides = parse_overrides(overrides)
    apply_overrides(raw, dict(overrides or {}), problems)
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


def load_tune_config(path, overrides=None):
    """Read, override and validate a tuning config file (YAML or JSON).

    Parameters
    ----------
    path : str or path-like
        The file. Relative paths inside it are relative to its folder.
    overrides : list of str or dict, default=None
        ``['tune.n_trials=40', ...]`` (as ``--set`` gives them); they replace the file's
        values before validation.

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
    return tune_config_from_dict(raw, name=path, base_dir=os.path.dirname(os.path.abspath(path)),
                                 overrides=overrides)


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


