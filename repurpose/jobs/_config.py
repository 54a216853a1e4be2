"""Job configs for ``repurpose finetune``: typed sections, every problem reported at once.

A job file (YAML, or JSON, which is YAML) has five sections, each a dataclass below:
``source`` (the pretrained model), ``data`` (train / validation / test data), ``model``
(which layers to keep, freeze, re-initialise, and the new head), ``train``
(hyper-parameters) and ``run`` (devices and the output folder). :func:`load_config` reads a
file, applies ``--set section.key=value`` overrides, checks every key, type, choice and path,
and raises one :class:`~repurpose.exceptions.InvalidParameterError` listing all problems::

    job.yaml has 3 problems: train.lr: unknown key. Did you mean 'learning_rate'?; ...

Relative paths in the file are relative to the file's folder; relative paths given in
overrides are relative to the current folder. The resolved config (absolute paths, every
default filled in) is what a job writes to ``config.resolved.yaml`` and what ``--resume``
compares. See ``docs/guide/jobs.md`` for the reference.
"""
import dataclasses
import functools
import inspect
import json
import logging
import os
from typing import Optional

import numpy as np
import yaml

from .. import zoo
from .._validation import (Boolean, Custom, Integer, Nullable, Options, Problem, Text,
                           brief_list, suggest)
from ..exceptions import DataError, InvalidParameterError
from ..repurposers import FineTuneRepurposer
from ..repurposers._distributed import KVSTORE_TYPES
from ..source import parse_spec
from ._output import OutputFolder
from ._schema import (CTX, DIGITS, SHAPE, SIZE, Bad, apply_overrides, estimator_section, field,
                      parse_overrides, problems_message, read_section, unknown_key)

logger = logging.getLogger(__name__)

__all__ = ["JobConfig", "SourceConfig", "DataConfig", "ModelConfig", "TrainConfig",
           "RunConfig", "DistributedConfig", "load_config", "config_from_dict",
           "parse_overrides", "dump_config",
           "check_layers", "check_output_dir", "with_added_defaults", "load_job_data",
           "read_image_folder",
           "make_image_folder", "field_reference", "read_section", "check_paths",
           "read_config_file", "problems_message",
           "RESOLVED_CONFIG_NAME", "DATA_KINDS", "BUILTIN_JOB_DATASETS"]

#: The file a job writes to its output folder, and ``--resume`` compares.
RESOLVED_CONFIG_NAME = "config.resolved.yaml"
#: What a fine-tuning job writes to ``run.output_dir`` (all that ``--overwrite`` removes).
FINETUNE_OUTPUT = OutputFolder(RESOLVED_CONFIG_NAME, "job", (
    RESOLVED_CONFIG_NAME, "checkpoints", "model", "metrics.json", "training_curve.png"),
    finished="model/", label="repurpose job")
#: The values of ``data.kind``: an image folder, ``{X: x.npy, y: y.npy}``, or a built-in set.
DATA_KINDS = ("image_folder", "npy", "builtin")
#: The built-in data sets a job's ``data.train`` may name.
BUILTIN_JOB_DATASETS = ("digits", "shifted_digits")
#: The values of ``data.normalize``.
NORMALIZATIONS = ("none", "imagenet")

#: FineTuneRepurposer parameters the ``model`` section holds (surgery and the new head).
MODEL_PARAMS = ("transfer_layer", "hidden_units", "dropout", "batchnorm", "fixed_layers",
                "fixed_below", "random_layers")
#: FineTuneRepurposer parameters the job sets itself (from other sections), so not in
#: ``train``: every other parameter of the estimator is a ``train`` key.
SET_BY_JOB = ("source", "ctx", "kvstore", "checkpoint_dir", "progress", "random_state")


def _data_source(value):
    """A path string (image folder, X .npy file, built-in name) or ``{X: path, y: path}``."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"X", "y"})
        if unknown:
            raise Bad(f"unknown key(s) {brief_list(unknown)}. npy data is {{X: x.npy, "
                      f"y: y.npy}}")
        missing = [k for k in ("X", "y") if k not in value]
        if missing:
            raise Bad(f"npy data needs both X and y files, but {missing[0]} is missing")
        for key in ("X", "y"):
            if not isinstance(value[key], str) or not value[key].strip():
                raise Bad(f"{key}: must be a path to a .npy file, got {value[key]!r}")
        return {"X": value["X"], "y": value["y"]}
    raise Problem()


_DATA_SOURCE = Custom(_data_source, f"a folder, a built-in name "
                      f"({brief_list(BUILTIN_JOB_DATASETS)}) or {{X: x.npy, y: y.npy}}")


# ---------------------------------------------------------------------- sections
@dataclasses.dataclass
class SourceConfig:
    """``source``: the pretrained model, as :meth:`repurpose.SourceModel.from_spec` loads it.

    Parameters
    ----------
    model : str
        Required. Zoo name (``repurpose models``), checkpoint prefix, ``-symbol.json`` file
        or ``.onnx`` file.
    epoch : int >= 0, default=None
        Checkpoint epoch; None takes the newest ``.params`` file.
    input_shape : list of int, default=None
        Shape of one sample, e.g. ``[3, 224, 224]``.
    weights : str, default=None
        Weights file for zoo names, instead of the library's cached file.
    download : bool, default=False
        Gluon / gluoncv zoo names: download the weights into the library's cache folder if
        they are not there (``SourceModel.from_zoo(name, download=True)``). False never
        touches the network. Not with ``weights`` or a model file.

    Examples
    --------
    :func:`read_section` builds a section from its YAML mapping and collects problems:

    >>> problems = []
    >>> read_section('source', SourceConfig, {'model': 'digits_cnn', 'epoch': -1}, problems)
    SourceConfig(model='digits_cnn', epoch=None, input_shape=None, weights=None, download=False)
    >>> problems
    ['source.epoch: must be an integer >= 0 or None, got -1']
    """

    model: Optional[str] = field(None, Text(), "zoo name (`repurpose models`), checkpoint "
                                  "prefix, -symbol.json file or .onnx file", required=True)
    epoch: Optional[int] = field(None, Nullable(Integer(0)),
                                  "checkpoint epoch; null takes the newest .params file")
    input_shape: Optional[list] = field(None, Nullable(SHAPE), "shape of one sample, e.g. [3, 224, 224]")
    weights: Optional[str] = field(None, Nullable(Text()),
                                    "weights file for zoo names, instead of the cached one")
    download: bool = field(False, Boolean(), "zoo names: download missing weights from the "
                            "library's model store (MXNET_GLUON_REPO picks a mirror)")


@dataclasses.dataclass
class DataConfig:
    """``data``: what to train, validate and test on.

    Parameters
    ----------
    train : str or dict
        Required. An image folder, a built-in name (``'digits'``, ``'shifted_digits'``) or
        ``{X: x.npy, y: y.npy}``.
    validation : str or dict, default=None
        Same form as ``train``; None holds out ``train.validation_fraction`` of ``train``.
    test : str or dict, default=None
        Same form as ``train``; scored into ``metrics.json`` (built-in data: the images
        not drawn by ``n_per_class``).
    kind : {'image_folder', 'npy', 'builtin'}, default=None
        None infers it from ``train``: builtin for a built-in name, npy for ``{X, y}``,
        image_folder otherwise.
    classes : list of int, default=None
        Built-in data: keep only these digits, e.g. ``[5, 6, 7, 8, 9]``.
    n_per_class : int >= 2, default=None
        Built-in data: labelled training images per class, the rest is test data; None
        trains on everything.
    max_shift : int in 0..3, default=1
        Built-in ``shifted_digits``: largest shift in pixels.
    resize : int or [width, height], default=None
        Image folder: shorter side, or both sides.
    crop : int or [width, height], default=None
        Image folder: centre crop after resizing.
    normalize : {'none', 'imagenet'}, default='none'
        Image folder: per-channel normalisation.
    grayscale : bool, default=False
        Image folder: decode as one channel.
    seed : int >= 0, default=0
        Built-in data: seed of the shifts and of the ``n_per_class`` draw.

    Examples
    --------
    >>> problems = []
    >>> data = read_section('data', DataConfig, {'train': 'digits', 'clases': [5, 6]},
    ...                     problems)
    >>> data.train, data.classes, data.max_shift
    ('digits', None, 1)
    >>> problems
    ["data.clases: unknown key. Did you mean 'classes' or 'n_per_class'?"]
    """

    train: object = field(None, _DATA_SOURCE, "image folder, built-in name ('digits', "
                           "'shifted_digits') or {X: x.npy, y: y.npy}", required=True)
    validation: object = field(None, Nullable(_DATA_SOURCE),
                                "same form as train; null holds out train.validation_fraction "
                                "of train")
    test: object = field(None, Nullable(_DATA_SOURCE),
                          "same form as train; scored into metrics.json (built-in data: the "
                          "images not drawn by n_per_class)")
    kind: Optional[str] = field(None, Nullable(Options(*DATA_KINDS)),
                                 "null infers it from train: builtin for a built-in name, npy "
                                 "for {X, y}, image_folder otherwise")
    classes: Optional[list] = field(None, Nullable(DIGITS),
                                     "builtin: keep only these digits, e.g. [5, 6, 7, 8, 9]")
    n_per_class: Optional[int] = field(None, Nullable(Integer(2)),
                                        "builtin: labelled training images per class; the "
                                        "rest is test data. null trains on everything")
    max_shift: int = field(1, Integer(0, 3), "builtin shifted_digits: largest shift in pixels")
    resize: object = field(None, Nullable(SIZE), "image_folder: shorter side, or "
                            "[width, height]")
    crop: object = field(None, Nullable(SIZE), "image_folder: centre crop after resizing")
    normalize: str = field("none", Options(*NORMALIZATIONS),
                            "image_folder: per-channel normalisation")
    grayscale: bool = field(False, Boolean(), "image_folder: decode as one channel")
    seed: int = field(0, Integer(0), "builtin: seed of the shifts and of the n_per_class draw")


@functools.lru_cache(maxsize=None)
def _sections(estimator):
    """``model`` and ``train`` section classes of ``estimator`` (FineTuneRepurposer or a
    subclass): ``model`` holds :data:`MODEL_PARAMS`, ``train`` every other parameter but
    :data:`SET_BY_JOB`, plus ``seed`` (the estimator's ``random_state``)."""
    names = [p for p in inspect.signature(estimator.__init__).parameters if p != "self"]
    seed = ("seed", field(0, Nullable(Integer(0)), "random_state of the repurposer; null: not "
                          "seeded (not reproducible)"))
    model = estimator_section("ModelConfig", estimator, [p for p in MODEL_PARAMS
                                                         if p in names])
    train = estimator_section("TrainConfig", estimator,
                              [p for p in names if p not in MODEL_PARAMS + SET_BY_JOB],
                              extra=[seed])
    return model, train


#: ``model``: surgery on the source network and the new head (FineTuneRepurposer's
#: transfer_layer, hidden_units, dropout, batchnorm, fixed_layers, fixed_below,
#: random_layers), and ``train``: its other hyper-parameters and ``seed``.
ModelConfig, TrainConfig = _sections(FineTuneRepurposer)


@dataclasses.dataclass
class RunConfig:
    """``run``: where the job runs and writes.

    Parameters
    ----------
    ctx : str or list of str, default='cpu'
        ``'cpu'``, ``'gpu'``, ``'gpu:0,1'``, ... or a list of them; the GPUs must exist.
    output_dir : str
        Required. Folder for the job's files: new or empty, or this job's own with
        ``--resume``.

    Examples
    --------
    >>> problems = []
    >>> read_section('run', RunConfig, {'ctx': 'cpu:0,1', 'output_dir': 'out'}, problems)
    RunConfig(ctx='cpu:0,1', output_dir='out')
    >>> problems
    []
    >>> run = read_section('run', RunConfig, {'ctx': 'tpu'}, problems)
    >>> [problem.partition(':')[0] for problem in problems]  # where; then what and what to do
    ['run.ctx', 'run.output_dir']
    """

    ctx: object = field("cpu", CTX, "devices; each batch is split over them (the GPUs "
                                  "must exist)")
    output_dir: Optional[str] = field(None, Text(), "folder for the job's files; new or "
                                       "empty, or this job's own with --resume", required=True)


@dataclasses.dataclass
class DistributedConfig:
    """``distributed``: data-parallel training across processes on MXNet's parameter server.

    With ``kvstore`` set, the job runs as ``workers`` processes started by ``repurpose launch``
    (or MXNet's launcher on several machines) with ``servers`` parameter servers; see
    ``docs/guide/distributed_finetuning.md``. ``repurpose finetune`` checks that the
    launcher's ``DMLC_*`` environment agrees with these counts before loading any data.

    Parameters
    ----------
    kvstore : {None, 'dist_sync', 'dist_async'}, default=None
        ``FineTuneRepurposer(kvstore=...)``; None trains in one process.
    workers : int, default=None
        Worker processes; required with ``kvstore``.
    servers : int, default=None
        Parameter servers, at least 1; required with ``kvstore``.

    Examples
    --------
    >>> import tempfile
    >>> job = config_from_dict({'source': {'model': 'digits_cnn'},
    ...                         'data': {'train': 'digits'},
    ...                         'run': {'output_dir': tempfile.mkdtemp()},
    ...                         'distributed': {'kvstore': 'dist_sync', 'workers': 2}})
    Traceback (most recent call last):
    ...
    repurpose.exceptions.InvalidParameterError: config has 1 problem: distributed.servers: ...
    """

    kvstore: Optional[str] = field(None, Nullable(Options(*KVSTORE_TYPES)),
                                    "null trains in one process; dist_sync sums the workers' "
                                    "gradients every step (matches one process); dist_async "
                                    "lets workers step without waiting")
    workers: Optional[int] = field(None, Nullable(Integer(1)),
                                    "worker processes; must equal the launcher's --workers "
                                   "(required with kvstore)")
    servers: Optional[int] = field(None, Nullable(Integer(1)),
                                    "parameter-server processes (at least 1); must equal the "
                                    "launcher's --servers (required with kvstore)")


SECTION_NAMES = ("source", "data", "model", "train", "run", "distributed")


def job_sections(estimator=FineTuneRepurposer):
    """``{section name: section class}`` of a fine-tuning job training ``estimator``."""
    model, train = (ModelConfig, TrainConfig) if estimator is FineTuneRepurposer \
        else _sections(estimator)
    return {"source": SourceConfig, "data": DataConfig, "model": model, "train": train,
            "run": RunConfig, "distributed": DistributedConfig}


@dataclasses.dataclass
class JobConfig:
    """A validated job: one instance of each section.

    Build it with :func:`load_config` (a file) or :func:`config_from_dict`.

    Parameters
    ----------
    source : SourceConfig
        The pretrained model.
    data : DataConfig
        Training, validation and test data.
    model : ModelConfig
        Surgery on the source network and the new head.
    train : TrainConfig
        Training hyper-parameters.
    run : RunConfig
        Devices and the output folder.
    distributed : DistributedConfig, default=DistributedConfig()
        Data-parallel training across processes (off by default).

    Examples
    --------
    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> job = config_from_dict({'source': {'model': 'digits_cnn'},
    ...                         'data': {'train': 'shifted_digits', 'n_per_class': 10},
    ...                         'train': {'n_epochs': 3}, 'run': {'output_dir': out}})
    >>> job.data.kind, job.train.n_epochs, job.train.learning_rate
    ('builtin', 3, 0.01)
    >>> kwargs = job.to_repurposer_kwargs()
    >>> kwargs['n_epochs'], kwargs['random_state'], kwargs['checkpoint_dir'] == out + '/checkpoints'
    (3, 0, True)
    """

    source: SourceConfig
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    run: RunConfig
    distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)
    #: The estimator the job trains (FineTuneRepurposer or a subclass): ``model`` and
    #: ``train`` are its parameters.
    estimator: type = dataclasses.field(default=FineTuneRepurposer, repr=False)

    def to_dict(self):
        """The config as plain lists, dicts, strings and numbers (what YAML writes)."""
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTION_NAMES}

    @property
    def checkpoint_dir(self):
        """``<run.output_dir>/checkpoints``."""
        return os.path.join(self.run.output_dir, "checkpoints")

    def to_repurposer_kwargs(self):
        """Keyword arguments of ``FineTuneRepurposer`` (all but ``source``).

        Lists become tuples (immutable defaults, STYLE.md §2), ``train.seed`` becomes
        ``random_state``, ``run.ctx`` becomes ``ctx``, ``distributed.kvstore`` becomes
        ``kvstore``; ``checkpoint_dir`` is
        ``<output_dir>/checkpoints`` and ``progress`` is False (the job logs each epoch).
        """
        kwargs = {}
        for section in (self.model, self.train):
            for f in dataclasses.fields(section):
                value = getattr(section, f.name)
                name = "random_state" if section is self.train and f.name == "seed" else f.name
                kwargs[name] = tuple(value) if isinstance(value, list) else value
        ctx = self.run.ctx
        kwargs.update(ctx=tuple(ctx) if isinstance(ctx, list) else ctx,
                      checkpoint_dir=self.checkpoint_dir, progress=False,
                      kvstore=self.distributed.kvstore)
        return kwargs


# ---------------------------------------------------------------------- validation
def check_paths(source, data, run, base, problems):
    """Check and resolve the paths of the ``source``, ``data`` and ``run`` sections.

    Zoo names stay as they are; other paths become absolute (relative to ``base(key)``),
    ``data.kind`` is inferred when null, and every missing file or folder, misplaced key
    or file given for ``run.output_dir`` is appended to ``problems``.

    Parameters
    ----------
    source : SourceConfig
    data : DataConfig
    run : RunConfig
        Sections from :func:`read_section`; changed in place.
    base : callable
        ``base(key) -> folder`` that a relative path at config key ``key`` is relative to.
    problems : list of str
        Problems are appended here.

    Examples
    --------
    >>> problems = []
    >>> data = DataConfig(train='digits')
    >>> run = RunConfig(output_dir='out')
    >>> check_paths(SourceConfig(model='digits_cnn'), data, run, lambda key: '/jobs', problems)
    >>> data.kind, run.output_dir, problems
    ('builtin', '/jobs/out', [])
    """
    _check_source_paths(source, base, problems)
    _check_data(data, base, problems)
    if run.output_dir is not None:
        run.output_dir = _resolve(run.output_dir, base("run.output_dir"))
        if os.path.exists(run.output_dir) and not os.path.isdir(run.output_dir):
            problems.append(f"run.output_dir: {run.output_dir!r} is a file. Name a folder")


def read_config_file(path, whose="the"):
    """Read a YAML (or JSON) config file into plain values.

    Parameters
    ----------
    path : str
        The file.
    whose : str, default='the'
        Names the file in the message when it is missing (``"the job's"``).

    Returns
    -------
    object
        What ``yaml.safe_load`` read (a dict for a config; checked by the caller).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    InvalidParameterError
        If it is not valid YAML, naming the line and column.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), 'job.yaml')
    >>> with open(path, 'w') as handle:
    ...     _ = handle.write('train: {n_epochs: 3}')
    >>> read_config_file(path)
    {'train': {'n_epochs': 3}}
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file {path!r} does not exist"
                                + (" (it is a folder)" if os.path.isdir(path) else "")
                                + f". Pass {whose} YAML or JSON file.")
    with open(path, encoding="utf-8") as handle:
        try:
            return yaml.safe_load(handle)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(err, "problem", None) or str(err)
            raise InvalidParameterError(
                f"{path} is not valid YAML{where}: {problem}. Fix the syntax (JSON is YAML "
                f"too).") from err


def _resolve(path, base):
    path = os.path.expanduser(path)
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(base, path))


def _check_source_paths(source, base, problems):
    spec = source.model
    model_file = None
    if spec is not None:
        try:  # the command line's own reading (zoo:/onnx:/checkpoint:), paths from base
            kind, target = parse_spec(spec, base=base("source.model"))
        except (InvalidParameterError, FileNotFoundError) as err:
            problems.append(f"source.model: {err}")
            kind = target = None
        prefixed = isinstance(spec, str) and spec.startswith(tuple(f"{p}:" for p in
                                                                  ("zoo", "onnx", "checkpoint")))
        if kind == "zoo" and target.split(":")[-1] not in _zoo_names():
            hint = suggest(target, _zoo_names())
            problems.append(f"source.model: {target!r} is not a model-zoo name. "
                            f"{hint + ' ' if hint else ''}See `repurpose models`")
        elif kind in ("onnx", "checkpoint"):
            path = target if kind == "onnx" else target + "-symbol.json"
            if not os.path.isfile(path):
                problems.append(f"source.model: {kind} file {path!r} does not exist")
            source.model = model_file = f"{kind}:{target}" if prefixed else \
                (target if kind == "checkpoint" else path)
    if source.weights is not None:
        source.weights = _resolve(source.weights, base("source.weights"))
        if not os.path.isfile(source.weights):
            problems.append(f"source.weights: file {source.weights!r} does not exist")
    if source.download is True:
        if source.weights is not None:
            problems.append("source.download: true, but source.weights names a file: there "
                            "is nothing to download. Drop one of them")
        elif model_file is not None:
            problems.append(f"source.download: true, but source.model {spec!r} is a model "
                            f"file; only zoo weights are downloaded. Drop download or name "
                            f"a zoo model")


_ZOO_NAMES = []


def _zoo_names():
    if not _ZOO_NAMES:
        _ZOO_NAMES.extend(zoo.list_models())
    return _ZOO_NAMES


def _infer_kind(train):
    if isinstance(train, dict):
        return "npy"
    if isinstance(train, str) and train in BUILTIN_JOB_DATASETS:
        return "builtin"
    if isinstance(train, str) and train.lower().endswith(".npy"):
        return "npy"
    return "image_folder"


def _check_data(data, base, problems):
    if data.train is None:
        return
    if data.kind is None:
        data.kind = _infer_kind(data.train)
    defaults = DataConfig()
    only = {"builtin": ("classes", "n_per_class", "max_shift", "seed"),
            "image_folder": ("resize", "crop", "normalize", "grayscale")}
    for kind, keys in only.items():
        if data.kind == kind:
            continue
        for key in keys:
            if getattr(data, key) != getattr(defaults, key):
                problems.append(f"data.{key}: applies to {kind} data only, but data.kind is "
                                f"{data.kind!r}. Remove it")
    for split in ("train", "validation", "test"):
        value = getattr(data, split)
        if value is None:
            continue
        where = f"data.{split}"
        if data.kind == "builtin":
            if split != "train":
                problems.append(
                    f"{where}: built-in data sets are split by data.n_per_class (the rest is "
                    f"test data) and train.validation_fraction. Set {where} to null")
            elif value not in BUILTIN_JOB_DATASETS:
                hint = suggest(value, BUILTIN_JOB_DATASETS) if isinstance(value, str) else ""
                problems.append(f"{where}: {value!r} is not a built-in data set (choose "
                                f"{brief_list(BUILTIN_JOB_DATASETS)}). {hint}".rstrip())
        elif data.kind == "npy":
            if not isinstance(value, dict):
                problems.append(f"{where}: npy data is {{X: x.npy, y: y.npy}}, got {value!r}")
                continue
            resolved = {}
            for key in ("X", "y"):
                path = _resolve(value[key], base(f"{where}.{key}"))
                resolved[key] = path
                if not os.path.isfile(path):
                    problems.append(f"{where}.{key}: file {path!r} does not exist")
                elif not path.lower().endswith(".npy"):
                    problems.append(f"{where}.{key}: {path!r} is not a .npy file")
            setattr(data, split, resolved)
        else:  # image_folder
            if not isinstance(value, str):
                problems.append(f"{where}: an image folder is a path, got {value!r}")
                continue
            path = _resolve(value, base(where))
            setattr(data, split, path)
            if not os.path.exists(path):
                hint = suggest(value, BUILTIN_JOB_DATASETS) if data.kind is None or \
                    os.sep not in value else ""
                problems.append(f"{where}: image folder {path!r} does not exist"
                                + (f". {hint[:-1]} (a built-in data set)?" if hint else ""))
            elif not os.path.isdir(path):
                problems.append(f"{where}: {path!r} is a file, not a folder with one "
                                f"sub-folder per class")


def _check_distributed(d, problems):
    if d.kvstore is None:
        for key in ("workers", "servers"):
            if getattr(d, key) is not None:
                problems.append(f"distributed.{key}: set to {getattr(d, key)}, but "
                                f"distributed.kvstore is null (one process). Set kvstore: "
                                f"dist_sync to train across processes, or remove {key}")
        return
    if d.servers is None:
        problems.append(f"distributed.servers: missing. distributed.kvstore {d.kvstore!r} "
                        f"needs parameter servers to sum the workers' gradients; give "
                        f"servers: 1 (or more) and start the job with `repurpose launch "
                        f"--workers N --servers M -- repurpose finetune --config ...`")
    if d.workers is None:
        problems.append(f"distributed.workers: missing. Give the number of worker processes "
                        f"of the {d.kvstore} job (the launcher's --workers)")


def check_cross(job, problems):
    _check_distributed(job.distributed, problems)
    t = job.train
    if t.warmup_epochs >= t.n_epochs and t.warmup_epochs > 0:
        problems.append(f"train.warmup_epochs: {t.warmup_epochs} warm-up epochs leave none of "
                        f"train.n_epochs={t.n_epochs}. Use fewer")
    late = [e for e in t.step_epochs if e >= t.n_epochs]
    if late and t.lr_schedule == "step":
        problems.append(f"train.step_epochs: {brief_list(late)} not below train.n_epochs="
                        f"{t.n_epochs}, so those steps never happen")
    if t.step_epochs and t.lr_schedule != "step":
        problems.append(f"train.step_epochs: only used by lr_schedule 'step', but "
                        f"lr_schedule is {t.lr_schedule!r}. Set lr_schedule: step or remove "
                        f"step_epochs")
    no_validation = job.data.validation is None and t.validation_fraction == 0
    if t.early_stopping and t.monitor.startswith("val_") and no_validation:
        problems.append(f"train.early_stopping: monitors {t.monitor!r}, but there is no "
                        f"validation data (data.validation is null and "
                        f"train.validation_fraction is 0). Give one, or set early_stopping: false")


def config_from_dict(raw, name="config", base_dir=None, overrides=None,
                     estimator=FineTuneRepurposer):
    """Validate a config mapping and return a :class:`JobConfig`.

    Parameters
    ----------
    raw : dict
        Sections as read from YAML; missing sections and keys take their defaults.
    name : str, default='config'
        How messages name the config (the file name).
    base_dir : str, default=None
        Folder that relative paths in ``raw`` are relative to; None is the current folder.
    overrides : dict or list of str, default=None
        ``{'train.n_epochs': 3}`` or ``['train.n_epochs=3']``; relative paths in them are
        relative to the current folder.
    estimator : type, default=FineTuneRepurposer
        The estimator the job trains (a subclass adds its own parameters to ``train``).

    Raises
    ------
    InvalidParameterError
        Listing every problem: ``'<name> has 3 problems: train.lr: unknown key. ...'``.

    Returns
    -------
    JobConfig
        Every default filled in and every path absolute.

    Examples
    --------
    >>> job = config_from_dict({'source': {'model': 'digits_cnn'},
    ...                         'data': {'train': 'digits'}, 'run': {'output_dir': 'out'}},
    ...                        base_dir='/jobs', overrides=['train.n_epochs=3'])
    >>> job.train.n_epochs, job.run.output_dir, job.data.kind
    (3, '/jobs/out', 'builtin')
    >>> config_from_dict({'source': {}, 'train': {'epochs': 3}}, name='job.yaml')
    Traceback (most recent call last):
    ...
    repurpose.exceptions.InvalidParameterError: job.yaml has 4 problems: source.model: missing. ...
    """
    base_dir = os.path.abspath(base_dir or os.getcwd())
    sections_cls = job_sections(estimator)
    problems = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidParameterError(problems_message(name, [
            f"top level: must be a mapping of sections ({', '.join(SECTION_NAMES)}), "
            f"got {type(raw).__name__} {raw!r}"]))
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    if isinstance(overrides, (list, tuple)):
        overrides = parse_overrides(overrides)
    overrides = dict(overrides or {})
    apply_overrides(raw, overrides, problems)
    cwd = os.getcwd()
    from_cwd = {k for k in overrides}
    sections = {}
    for key in raw:
        if key not in sections_cls:
            problems.append(unknown_key("", key, list(sections_cls)))
    for section, cls in sections_cls.items():
        sections[section] = read_section(section, cls, raw.get(section), problems)
    job = JobConfig(**sections, estimator=estimator)

    def base(key):  # overrides' paths are relative to where the command runs
        overridden = any(key == k or key.startswith(k + ".") for k in from_cwd)
        return cwd if overridden else base_dir

    check_paths(job.source, job.data, job.run, base, problems)
    check_cross(job, problems)
    if problems:
        raise InvalidParameterError(problems_message(name, problems))
    return job


def load_config(path, overrides=None, estimator=FineTuneRepurposer):
    """Read, override and validate a job file (YAML or JSON).

    Parameters
    ----------
    path : str or path-like
        The job file. Relative paths inside it are relative to its folder.
    overrides : list of str or dict, default=None
        ``['train.n_epochs=3', ...]`` (as ``--set`` gives them) or ``{'train.n_epochs': 3}``;
        they replace the file's values before validation.
    estimator : type, default=FineTuneRepurposer
        The estimator the job trains.

    Returns
    -------
    JobConfig

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    InvalidParameterError
        If the file is not YAML, or for any problem in it: all of them in one message,
        ``'job.yaml has 3 problems: train.lr: unknown key. Did you mean ...'``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, 'job.yaml')
    ...     with open(path, 'w') as handle:
    ...         yaml.safe_dump({'source': {'model': 'digits_cnn'}, 'data': {'train': 'digits'},
    ...                         'run': {'output_dir': 'out'}}, handle)
    ...     job = load_config(path, overrides=['train.n_epochs=3'])
    ...     job.run.output_dir == os.path.join(tmp, 'out'), job.train.n_epochs
    (True, 3)
    """
    path = os.fspath(path)
    raw = read_config_file(path, "the job's")
    return config_from_dict(raw, name=path, base_dir=os.path.dirname(os.path.abspath(path)),
                            overrides=overrides, estimator=estimator)


def dump_config(job):
    """The resolved config as YAML text (what ``config.resolved.yaml`` holds).

    Parameters
    ----------
    job : JobConfig

    Returns
    -------
    str
        YAML of :meth:`JobConfig.to_dict`, sections and keys in schema order.

    Examples
    --------
    >>> job = config_from_dict({'source': {'model': 'digits_cnn'},
    ...                         'data': {'train': 'digits'}, 'run': {'output_dir': '/out'}})
    >>> dump_config(job).splitlines()[:4]
    ['source:', '  model: digits_cnn', '  epoch: null', '  input_shape: null']
    >>> config_from_dict(yaml.safe_load(dump_config(job))) == job
    True
    """
    return yaml.safe_dump(job.to_dict(), sort_keys=False, default_flow_style=False)


# ---------------------------------------------------------------------- job checks
def check_layers(job, layer_names):
    """Check every layer the ``model`` section names against the source's ``layer_names``.

    Parameters
    ----------
    job : JobConfig
    layer_names : list of str
        The source model's layers (``SourceModel.layer_names``).

    Raises
    ------
    InvalidParameterError
        Listing every unknown layer with close matches.

    Examples
    --------
    >>> job = config_from_dict({'source': {'model': 'digits_cnn'},
    ...                         'data': {'train': 'digits'}, 'run': {'output_dir': '/out'},
    ...                         'model': {'fixed_layers': ['conv1_fwd', 'conv9_fwd']}})
    >>> check_layers(job, ['conv1_fwd', 'conv2_fwd', 'conv3_fwd'])
    Traceback (most recent call last):
    ...
    repurpose.exceptions.InvalidParameterError: the model section has 1 problem:
    model.fixed_layers[1]: unknown layer 'conv9_fwd'. Did you mean 'conv3_fwd', ...
    """
    m = job.model
    named = [("model.transfer_layer", m.transfer_layer), ("model.fixed_below", m.fixed_below)]
    named += [(f"model.fixed_layers[{i}]", n) for i, n in enumerate(m.fixed_layers)]
    named += [(f"model.random_layers[{i}]", n) for i, n in enumerate(m.random_layers)]
    known = set(layer_names)
    problems = []
    for where, name in named:
        if name is not None and name not in known:
            hint = suggest(name, layer_names)
            problems.append(f"{where}: unknown layer {name!r}. {hint + ' ' if hint else ''}"
                            f"(`repurpose layers {job.source.model}` lists "
                            f"{len(layer_names)} layers)")
    if problems:
        raise InvalidParameterError(problems_message("the model section", problems))


def with_added_defaults(theirs, config):
    """A resolved config an earlier version wrote, with the keys added since set to their
    defaults, so that a job started before an upgrade still resumes.

    Only keys the file lacks are filled, each with its field's default: a job whose value
    for a new key is not the default still differs.

    Parameters
    ----------
    theirs : dict
        The resolved config read from the output folder.
    config : dataclass instance
        This job's config (its sections are dataclasses).

    Returns
    -------
    dict
        A copy of ``theirs``.

    Examples
    --------
    >>> import tempfile
    >>> job = config_from_dict({'source': {'model': 'digits_cnn'},
    ...                         'data': {'train': 'shifted_digits'},
    ...                         'run': {'output_dir': tempfile.mkdtemp()}})
    >>> old = job.to_dict()
    >>> del old['source']['download']  # written before the key existed
    >>> with_added_defaults(old, job)['source']['download']
    False
    """
    filled = json.loads(json.dumps(theirs))
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if not dataclasses.is_dataclass(value) or not isinstance(filled.get(section.name),
                                                                  dict):
            continue
        for f in dataclasses.fields(value):
            if f.name not in filled[section.name] and f.default is not dataclasses.MISSING:
                filled[section.name][f.name] = json.loads(json.dumps(f.default))
    return filled


def check_output_dir(job, resume=False, overwrite=False):
    """Check that ``run.output_dir`` may hold this job; return ``'new'`` or ``'resume'``.

    A new or empty folder starts a new job. A folder holding this job's files (its
    ``config.resolved.yaml`` equals this config) is continued with ``resume=True``;
    ``overwrite=True`` starts again there, removing only the files a fine-tuning job writes
    (the protocol every job follows: :class:`~repurpose.jobs._output.OutputFolder`).

    Parameters
    ----------
    job : JobConfig
    resume : bool, default=False
        Whether the job is to continue an earlier, unfinished run (``--resume``).
    overwrite : bool, default=False
        Start again in a folder that holds an earlier run of this or another job
        (``--overwrite``); not with ``resume``.

    Returns
    -------
    {'new', 'resume'}
        Start a new job, or continue the one in the folder.

    Raises
    ------
    FileExistsError
        If the folder holds another job's files or files that are no job's, or this job's
        files without ``resume``, or a finished job.
    FileNotFoundError
        With ``resume`` but nothing to resume.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     job = config_from_dict({'source': {'model': 'digits_cnn'},
    ...                             'data': {'train': 'digits'}, 'run': {'output_dir': tmp}})
    ...     first = check_output_dir(job)
    ...     with open(os.path.join(tmp, RESOLVED_CONFIG_NAME), 'w') as handle:
    ...         _ = handle.write(dump_config(job))  # what a started job writes first
    ...     first, check_output_dir(job, resume=True)
    ('new', 'resume')
    """
    return FINETUNE_OUTPUT.check(job.run.output_dir, yaml.safe_load(dump_config(job)),
                                 resume=resume, overwrite=overwrite,
                                 upgrade=lambda theirs: with_added_defaults(theirs, job))


# ---------------------------------------------------------------------- data
def read_image_folder(folder):
    """Decode every image of an :class:`~repurpose.data.ImageFolder` into memory.

    Parameters
    ----------
    folder : ImageFolder
        Its transforms must give every image the same shape.

    Returns
    -------
    X : ndarray of shape (n_samples, C, H, W), float32
    y : ndarray of shape (n_samples,) of str
        Class folder names.

    Raises
    ------
    DataError
        If the folder holds no images, or two images differ in shape after the transforms.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> from repurpose.data import ImageFolder
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ('cat', 'dog'):
    ...         os.makedirs(os.path.join(tmp, name))
    ...         Image.new('RGB', (6, 4)).save(os.path.join(tmp, name, '0.png'))
    ...     X, y = read_image_folder(ImageFolder(tmp, resize=8, crop=4))
    >>> X.shape, X.dtype, y.tolist()
    ((2, 3, 4, 4), dtype('float32'), ['cat', 'dog'])
    """
    if len(folder) == 0:
        raise DataError(f"Image folder {folder.root!r} holds no images.")
    images = []
    for i in range(len(folder)):
        image = folder[i][0]
        if images and image.shape != images[0].shape:
            raise DataError(
                f"Image {folder.items[i][0]!r} has shape {image.shape} after the transforms, "
                f"but {folder.items[0][0]!r} has {images[0].shape}. Set data.resize and "
                f"data.crop so that every image gets the same size.")
        images.append(image)
    names = np.array(folder.classes)
    return np.stack(images).astype(np.float32), names[folder.targets]


def make_image_folder(data, path):
    """The :class:`~repurpose.data.ImageFolder` at ``path`` with ``data``'s transforms.

    Parameters
    ----------
    data : DataConfig
        Gives ``resize``, ``crop``, ``normalize`` and ``grayscale``.
    path : str
        A folder with one subfolder of images per class.

    Returns
    -------
    ImageFolder
        Lazily decodes and transforms the images (ImageNet mean and standard deviation for
        ``normalize='imagenet'``, averaged over the channels for grayscale images).

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ('cat', 'dog'):
    ...         os.makedirs(os.path.join(tmp, name))
    ...         Image.new('RGB', (6, 4)).save(os.path.join(tmp, name, '0.png'))
    ...     data = DataConfig(train=tmp, kind='image_folder', resize=8, crop=4, grayscale=True)
    ...     folder = make_image_folder(data, tmp)
    ...     len(folder), folder.classes, folder[0][0].shape
    (2, ['cat', 'dog'], (1, 4, 4))
    """
    from ..data import ImageFolder
    from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD

    mean = std = None
    if data.normalize == "imagenet":
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if data.grayscale:
            mean, std = (float(np.mean(mean)),), (float(np.mean(std)),)
    resize = tuple(data.resize) if isinstance(data.resize, list) else data.resize
    crop = tuple(data.crop) if isinstance(data.crop, list) else data.crop
    return ImageFolder(path, resize=resize, crop=crop, mean=mean, std=std,
                       grayscale=data.grayscale)


def _load_npy(spec, where):
    arrays = []
    for key in ("X", "y"):
        try:
            arrays.append(np.load(spec[key], allow_pickle=False))
        except (OSError, ValueError) as err:
            raise DataError(f"{where}.{key}: cannot read {spec[key]!r} as a .npy array "
                            f"({err}).") from err
    X, y = arrays
    if len(X) != len(y):
        raise DataError(f"{where}: X ({spec['X']}) has {len(X)} samples but y ({spec['y']}) "
                        f"has {len(y)}. Give one label per sample.")
    if X.ndim < 2:
        raise DataError(f"{where}.X: expected an array of samples (n, ...), got shape "
                        f"{X.shape}.")
    return X, y


def load_job_data(data):
    """Load the ``data`` section into memory.

    Parameters
    ----------
    data : DataConfig
        A validated section (``kind`` resolved).

    Returns
    -------
    dict
        ``'train'``, ``'validation'``, ``'test'``: each ``(X, y)`` or None.

    Raises
    ------
    DataError
        For unreadable files, X/y of different lengths, images of different sizes, or more
        ``n_per_class`` than a class has.

    Examples
    --------
    >>> job = config_from_dict({'source': {'model': 'digits_cnn'},
    ...                         'data': {'train': 'shifted_digits', 'classes': [5, 6, 7, 8, 9],
    ...                                  'n_per_class': 10},
    ...                         'run': {'output_dir': '/out'}})
    >>> loaded = load_job_data(job.data)
    >>> loaded['train'][0].shape, loaded['validation'], len(loaded['test'][1])
    ((50, 1, 8, 8), None, 846)
    """
    from ..data import load_digits_images, load_shifted_digits_images

    loaded = {"train": None, "validation": None, "test": None}
    if data.kind == "builtin":
        if data.train == "digits":
            X, y = load_digits_images(classes=data.classes)
        else:
            X, y = load_shifted_digits_images(classes=data.classes, max_shift=data.max_shift,
                                              random_state=data.seed)
        if data.n_per_class is None:
            loaded["train"] = (X, y)
            return loaded
        # The same draw as repurpose.demo.make_demo_task (tested to match).
        rng = np.random.RandomState(data.seed)
        picks = []
        for c in np.unique(y):
            members = np.flatnonzero(y == c)
            if len(members) <= data.n_per_class:
                raise DataError(f"data.n_per_class={data.n_per_class}, but class {c} of "
                                f"{data.train!r} has only {len(members)} images. Use fewer.")
            picks.append(rng.permutation(members)[:data.n_per_class])
        train = np.concatenate(picks)
        test = np.setdiff1d(np.arange(len(y)), train)
        loaded["train"] = (X[train], y[train])
        loaded["test"] = (X[test], y[test])
        return loaded
    for split in loaded:
        spec = getattr(data, split)
        if spec is None:
            continue
        if data.kind == "npy":
            loaded[split] = _load_npy(spec, f"data.{split}")
        else:
            loaded[split] = read_image_folder(make_image_folder(data, spec))
    return loaded


def field_reference(estimator=FineTuneRepurposer):
    """Rows ``(key, default, accepts, description)`` of every key, for the docs.

    Parameters
    ----------
    estimator : type, default=FineTuneRepurposer
        The estimator whose parameters make the ``model`` and ``train`` sections.

    Returns
    -------
    list of tuple
        One ``(dotted key, default or 'required', what values it accepts, description)``
        per key of every section, in schema order.

    Examples
    --------
    >>> key, default, accepts, description = field_reference()[1]
    >>> key, default, accepts
    ('source.epoch', None, 'an integer >= 0 or None')
    >>> description
    'checkpoint epoch; null takes the newest .params file'
    """
    rows = []
    for section, cls in job_sections(estimator).items():
        for f in dataclasses.fields(cls):
            default = "required" if f.metadata["required"] else f.default
            rows.append((f"{section}.{f.name}", default, f.metadata["check"].what,
                         f.metadata["doc"]))
    return rows
