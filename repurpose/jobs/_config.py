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
import json
import logging
import math
import numbers
import os
from typing import Optional

import numpy as np
import yaml

from .. import zoo
from .._validation import brief_list, suggest
from ..context import resolve_contexts
from ..exceptions import ContextError, DataError, InvalidParameterError

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
#: The values of ``data.kind``: an image folder, ``{X: x.npy, y: y.npy}``, or a built-in set.
DATA_KINDS = ("image_folder", "npy", "builtin")
#: The built-in data sets a job's ``data.train`` may name.
BUILTIN_JOB_DATASETS = ("digits", "shifted_digits")
# The choices of FineTuneRepurposer (repurpose.repurposers._training), mirrored so the config
# validates without building anything; tests/unit/test_config.py checks they agree.
OPTIMIZERS = ("sgd", "nag", "adam", "rmsprop", "adagrad")
LR_SCHEDULES = ("constant", "step", "cosine")
MONITORS = ("val_loss", "val_accuracy", "train_loss", "train_accuracy")
AUGMENTATIONS = (False, True, "shift", "flip", "shift+flip")
NORMALIZATIONS = ("none", "imagenet")
# repurpose.repurposers._distributed.KVSTORE_TYPES, mirrored (tests/unit/test_distributed.py).
KVSTORES = ("dist_sync", "dist_async")

# Names people type from habit (timm, Keras, PyTorch) -> ours; difflib alone misses them.
_ALIASES = {"lr": "learning_rate", "epochs": "n_epochs", "num_epochs": "n_epochs",
            "wd": "weight_decay", "bs": "batch_size", "random_state": "seed",
            "scheduler": "lr_schedule", "lr_scheduler": "lr_schedule", "warmup": "warmup_epochs",
            "device": "ctx", "devices": "ctx", "gpus": "ctx", "output": "output_dir",
            "out": "output_dir", "out_dir": "output_dir", "layer": "transfer_layer",
            "freeze": "fixed_layers", "frozen_layers": "fixed_layers", "val": "validation"}


class _Bad(Exception):
    """One problem with one value (turned into ``'key: message'``)."""


# ---------------------------------------------------------------------- value checkers
def _is_number(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value))


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _number(low=None, high=None, low_open=False, high_open=False, what=None):
    """Check a finite number in a (half-)open or closed interval."""
    if what is None:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        what = f"a number in {left}{low}, {high}{right}"

    def check(value):
        ok = _is_number(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        if not ok:
            raise _Bad(f"expected {what}, got {value!r}")
        return float(value)
    check.what = what
    return check


def _positive_number():
    return _number(0, None, low_open=True, what="a positive number")


def _integer(minimum=0, maximum=None):
    what = f"an integer >= {minimum}" if maximum is None else \
        f"an integer from {minimum} to {maximum}"

    def check(value):
        if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
            raise _Bad(f"expected {what}, got {value!r}")
        return int(value)
    check.what = what
    return check


def _boolean(value):
    if not isinstance(value, (bool, np.bool_)):
        raise _Bad(f"expected true or false, got {value!r}")
    return bool(value)


_boolean.what = "true or false"


def _string(value):
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"expected a non-empty string, got {value!r}")
    return value


_string.what = "a string"


def _choice(choices):
    def check(value):
        if value not in choices:
            hint = suggest(value, choices) if isinstance(value, str) else ""
            raise _Bad(f"expected one of {brief_list(choices, 12)}, got {value!r}"
                       + (f". {hint}" if hint else ""))
        return value
    check.what = "one of " + ", ".join(repr(c) for c in choices)
    return check


def _optional(check):
    def optional(value):
        return None if value is None else check(value)
    optional.what = f"{check.what} or null"
    return optional


def _list_of(check, what):
    """A list of values each passing ``check``; a single value stands for a list of one."""
    def check_list(value):
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        out = []
        for i, item in enumerate(items):
            try:
                out.append(check(item))
            except _Bad as bad:
                raise _Bad(f"expected {what}, but item {i}: {bad}") from None
        return out
    check_list.what = what
    return check_list


def _size(value):
    """An int (shorter side) or a [width, height] pair."""
    if _is_int(value) and value >= 1:
        return int(value)
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(_is_int(v) and v >= 1 for v in value)):
        return [int(v) for v in value]
    raise _Bad(f"expected a positive integer or a [width, height] pair, got {value!r}")


_size.what = "a positive integer or a [width, height] pair"


def _ctx(value):
    if isinstance(value, (list, tuple)):
        if not value or not all(isinstance(v, str) for v in value):
            raise _Bad(f"expected 'cpu', 'gpu:0,1', ... or a list of such strings, got {value!r}")
        value = list(value)
    elif not isinstance(value, str):
        raise _Bad(f"expected 'cpu', 'gpu', 'gpu:0,1', ... or a list of them, got {value!r}")
    try:
        resolve_contexts(value)
    except ContextError as err:
        raise _Bad(str(err)) from None
    return value


_ctx.what = "'cpu', 'gpu', 'gpu:0,1', ... or a list of them"


def _data_source(value):
    """A path string (image folder, X .npy file, built-in name) or ``{X: path, y: path}``."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"X", "y"})
        if unknown:
            raise _Bad(f"unknown key(s) {brief_list(unknown)}. npy data is {{X: x.npy, "
                       f"y: y.npy}}")
        missing = [k for k in ("X", "y") if k not in value]
        if missing:
            raise _Bad(f"npy data needs both X and y files, but {missing[0]} is missing")
        for key in ("X", "y"):
            if not isinstance(value[key], str) or not value[key].strip():
                raise _Bad(f"{key}: expected a path to a .npy file, got {value[key]!r}")
        return {"X": value["X"], "y": value["y"]}
    raise _Bad(f"expected a folder, a built-in name ({brief_list(BUILTIN_JOB_DATASETS)}) "
               f"or {{X: x.npy, y: y.npy}}, got {value!r}")


_data_source.what = "a path, a built-in name or {X: x.npy, y: y.npy}"


def _augment(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value in AUGMENTATIONS:
        return value
    strings = [a for a in AUGMENTATIONS if isinstance(a, str)]
    hint = suggest(value, strings) if isinstance(value, str) else ""
    raise _Bad(f"expected true, false, {brief_list(strings)}, got {value!r}"
               + (f". {hint}" if hint else ""))


_augment.what = "true, false, 'shift', 'flip' or 'shift+flip'"


def _digits(value):
    return _list_of(_integer(0, 9), "a list of digits 0-9")(value)


_digits.what = "a list of digits 0-9"


def _field(default, check, doc, required=False):
    return dataclasses.field(default=default, metadata={"check": check, "doc": doc,
                                                         "required": required})


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
    ['source.epoch: expected an integer >= 0, got -1']
    """

    model: Optional[str] = _field(None, _string, "zoo name (`repurpose models`), checkpoint "
                                  "prefix, -symbol.json file or .onnx file", required=True)
    epoch: Optional[int] = _field(None, _optional(_integer(0)),
                                  "checkpoint epoch; null takes the newest .params file")
    input_shape: Optional[list] = _field(None, _optional(_list_of(
        _integer(1), "a list of positive integers")), "shape of one sample, e.g. [3, 224, 224]")
    weights: Optional[str] = _field(None, _optional(_string),
                                    "weights file for zoo names, instead of the cached one")
    download: bool = _field(False, _boolean, "zoo names: download missing weights from the "
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

    train: object = _field(None, _data_source, "image folder, built-in name ('digits', "
                           "'shifted_digits') or {X: x.npy, y: y.npy}", required=True)
    validation: object = _field(None, _optional(_data_source),
                                "same form as train; null holds out train.validation_fraction "
                                "of train")
    test: object = _field(None, _optional(_data_source),
                          "same form as train; scored into metrics.json (built-in data: the "
                          "images not drawn by n_per_class)")
    kind: Optional[str] = _field(None, _optional(_choice(DATA_KINDS)),
                                 "null infers it from train: builtin for a built-in name, npy "
                                 "for {X, y}, image_folder otherwise")
    classes: Optional[list] = _field(None, _optional(_digits),
                                     "builtin: keep only these digits, e.g. [5, 6, 7, 8, 9]")
    n_per_class: Optional[int] = _field(None, _optional(_integer(2)),
                                        "builtin: labelled training images per class; the "
                                        "rest is test data. null trains on everything")
    max_shift: int = _field(1, _integer(0, 3), "builtin shifted_digits: largest shift in pixels")
    resize: object = _field(None, _optional(_size), "image_folder: shorter side, or "
                            "[width, height]")
    crop: object = _field(None, _optional(_size), "image_folder: centre crop after resizing")
    normalize: str = _field("none", _choice(NORMALIZATIONS),
                            "image_folder: per-channel normalisation")
    grayscale: bool = _field(False, _boolean, "image_folder: decode as one channel")
    seed: int = _field(0, _integer(0), "builtin: seed of the shifts and of the n_per_class draw")


@dataclasses.dataclass
class ModelConfig:
    """``model``: surgery on the source network and the new head.

    Parameters
    ----------
    transfer_layer : str, default=None
        Last kept source layer; the new head goes on top. None: the model card's feature
        layer, else the layer feeding the classifier.
    hidden_units : list of int, default=()
        Sizes of new hidden dense layers of the head.
    dropout : float in [0, 1), default=0.0
        Dropout after each new hidden layer and before the output layer.
    batchnorm : bool, default=False
        Batch norm after each new hidden layer.
    fixed_layers : list of str, default=()
        Source layers whose weights stay fixed.
    fixed_below : str, default=None
        Fix every source layer up to and including this one.
    random_layers : list of str, default=()
        Source layers re-initialised at random before training.

    Examples
    --------
    >>> problems = []
    >>> read_section('model', ModelConfig, {'fixed_below': 'relu2_fwd', 'hidden_units': [64],
    ...                                     'dropout': 1.5}, problems)
    ModelConfig(transfer_layer=None, hidden_units=[64], dropout=0.0, batchnorm=False,
                fixed_layers=[], fixed_below='relu2_fwd', random_layers=[])
    >>> problems
    ['model.dropout: expected a number in [0, 1), got 1.5']
    """

    transfer_layer: Optional[str] = _field(None, _optional(_string),
                                           "last kept source layer; the new head goes on top. "
                                           "null: the model card's feature layer, else the "
                                           "layer feeding the classifier")
    hidden_units: list = _field((), _list_of(_integer(1), "a list of positive integers"),
                                "sizes of new hidden dense layers of the head")
    dropout: float = _field(0.0, _number(0, 1, high_open=True), "dropout after each new hidden "
                            "layer and before the output layer")
    batchnorm: bool = _field(False, _boolean, "batch norm after each new hidden layer")
    fixed_layers: list = _field((), _list_of(_string, "a list of layer names"),
                                "source layers whose weights stay fixed")
    fixed_below: Optional[str] = _field(None, _optional(_string),
                                        "fix every source layer up to and including this one")
    random_layers: list = _field((), _list_of(_string, "a list of layer names"),
                                 "source layers re-initialised at random before training")


@dataclasses.dataclass
class TrainConfig:
    """``train``: hyper-parameters of :class:`repurpose.repurposers.FineTuneRepurposer`.

    Parameters
    ----------
    optimizer : {'sgd', 'nag', 'adam', 'rmsprop', 'adagrad'}, default='sgd'
        MXNet optimizer.
    learning_rate : float > 0, default=0.01
        Base learning rate (of the new layers).
    momentum : float in [0, 1), default=0.9
        Momentum of 'sgd' and 'nag'.
    weight_decay : float >= 0, default=1e-4
        L2 penalty.
    transferred_lr_mult : float >= 0, default=1.0
        Learning-rate multiplier of the transferred layers.
    lr_schedule : {'constant', 'step', 'cosine'}, default='cosine'
        Learning-rate schedule.
    warmup_epochs : int >= 0, default=0
        Epochs of linear warm-up.
    step_epochs : list of int, default=()
        'step' schedule: epochs after which the rate is multiplied by ``step_factor``.
    step_factor : float in (0, 1], default=0.1
        'step' schedule factor.
    n_epochs : int >= 1, default=20
        Training epochs (at most).
    batch_size : int >= 1, default=32
        Images per batch (over all contexts).
    validation_fraction : float in [0, 1), default=0.2
        Share of ``train`` held out (stratified, seeded) when ``data.validation`` is None.
    early_stopping : bool, default=True
        Stop when ``monitor`` has not improved for ``patience`` epochs; keep the best
        epoch's weights.
    patience : int >= 1, default=5
        Epochs without improvement before stopping.
    monitor : {'val_loss', 'val_accuracy', 'train_loss', 'train_accuracy'}, default='val_loss'
        What early stopping watches.
    freeze_bn_stats : bool, default=True
        Keep the source's batch-norm statistics in fixed layers.
    augment : {False, True, 'shift', 'flip', 'shift+flip'}, default=False
        Random augmentation of training images; True is 'shift' (up to 1 pixel).
    seed : int >= 0, default=0
        ``random_state`` of the repurposer; None: not seeded (not reproducible).

    Examples
    --------
    >>> problems = []
    >>> train = read_section('train', TrainConfig, {'lr': 0.1, 'n_epochs': 5}, problems)
    >>> train.n_epochs, train.learning_rate, train.lr_schedule
    (5, 0.01, 'cosine')
    >>> problems
    ["train.lr: unknown key. Did you mean 'learning_rate'?"]
    """

    optimizer: str = _field("sgd", _choice(OPTIMIZERS), "MXNet optimizer")
    learning_rate: float = _field(0.01, _positive_number(), "base learning rate (new layers)")
    momentum: float = _field(0.9, _number(0, 1, high_open=True), "sgd/nag momentum")
    weight_decay: float = _field(1e-4, _number(0, None, what="a number >= 0"), "L2 penalty")
    transferred_lr_mult: float = _field(1.0, _number(0, None, what="a number >= 0"),
                                        "learning-rate multiplier of transferred layers")
    lr_schedule: str = _field("cosine", _choice(LR_SCHEDULES), "learning-rate schedule")
    warmup_epochs: int = _field(0, _integer(0), "linear warm-up epochs")
    step_epochs: list = _field((), _list_of(_integer(1), "a list of epochs (integers >= 1)"),
                               "step schedule: epochs after which the rate is multiplied by "
                               "step_factor")
    step_factor: float = _field(0.1, _number(0, 1, low_open=True), "step schedule factor")
    n_epochs: int = _field(20, _integer(1), "training epochs (at most)")
    batch_size: int = _field(32, _integer(1), "images per batch (over all contexts)")
    validation_fraction: float = _field(0.2, _number(0, 1, high_open=True),
                                        "share of train held out (stratified, seeded) when "
                                        "data.validation is null")
    early_stopping: bool = _field(True, _boolean, "stop when monitor has not improved for "
                                  "patience epochs; keep the best epoch's weights")
    patience: int = _field(5, _integer(1), "epochs without improvement before stopping")
    monitor: str = _field("val_loss", _choice(MONITORS), "what early stopping watches")
    freeze_bn_stats: bool = _field(True, _boolean, "keep the source's batch-norm statistics")
    augment: object = _field(False, _augment, "random augmentation of training "
                             "images: true is 'shift' (up to 1 pixel)")
    seed: Optional[int] = _field(0, _optional(_integer(0)), "random_state of the repurposer; "
                                 "null: not seeded (not reproducible)")


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

    ctx: object = _field("cpu", _ctx, "'cpu', 'gpu', 'gpu:0,1', ... or a list of them")
    output_dir: Optional[str] = _field(None, _string, "folder for the job's files; new or "
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

    kvstore: Optional[str] = _field(None, _optional(_choice(KVSTORES)),
                                    "null trains in one process; dist_sync sums the workers' "
                                    "gradients every step (matches one process); dist_async "
                                    "lets workers step without waiting")
    workers: Optional[int] = _field(None, _optional(_integer(1)),
                                    "worker processes; must equal the launcher's --workers")
    servers: Optional[int] = _field(None, _optional(_integer(1)),
                                    "parameter-server processes (at least 1); must equal the "
                                    "launcher's --servers")


_SECTIONS = {"source": SourceConfig, "data": DataConfig, "model": ModelConfig,
             "train": TrainConfig, "run": RunConfig, "distributed": DistributedConfig}


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

    def to_dict(self):
        """The config as plain lists, dicts, strings and numbers (what YAML writes)."""
        return {name: dataclasses.asdict(getattr(self, name)) for name in _SECTIONS}

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
        m, t = self.model, self.train
        ctx = self.run.ctx
        return {
            "transfer_layer": m.transfer_layer, "hidden_units": tuple(m.hidden_units),
            "dropout": m.dropout, "batchnorm": m.batchnorm,
            "fixed_layers": tuple(m.fixed_layers), "fixed_below": m.fixed_below,
            "random_layers": tuple(m.random_layers),
            "optimizer": t.optimizer, "learning_rate": t.learning_rate, "momentum": t.momentum,
            "weight_decay": t.weight_decay, "transferred_lr_mult": t.transferred_lr_mult,
            "lr_schedule": t.lr_schedule, "warmup_epochs": t.warmup_epochs,
            "step_epochs": tuple(t.step_epochs), "step_factor": t.step_factor,
            "n_epochs": t.n_epochs, "batch_size": t.batch_size,
            "validation_fraction": t.validation_fraction, "early_stopping": t.early_stopping,
            "patience": t.patience, "monitor": t.monitor, "freeze_bn_stats": t.freeze_bn_stats,
            "augment": t.augment, "ctx": tuple(ctx) if isinstance(ctx, list) else ctx,
            "checkpoint_dir": self.checkpoint_dir, "progress": False,
            "random_state": t.seed, "kvstore": self.distributed.kvstore,
        }


# ---------------------------------------------------------------------- overrides
def parse_overrides(items):
    """Parse ``['train.n_epochs=3', 'model.hidden_units=[64]']`` into ``{key: value}``.

    Values are read as YAML, so ``3`` is an int, ``null`` is None and ``[64, 32]`` a list.

    Parameters
    ----------
    items : sequence of str or None
        ``section.key=value`` items, as ``--set`` gives them (deeper keys such as
        ``tune.space.lr=...`` too); None or empty gives ``{}``.

    Returns
    -------
    dict of str -> object
        The parsed value of each dotted key, in order.

    Raises
    ------
    InvalidParameterError
        Listing every item that is not ``section.key=value``.

    Examples
    --------
    >>> parse_overrides(['train.n_epochs=3', 'run.ctx=gpu:0,1', 'model.hidden_units=[64]'])
    {'train.n_epochs': 3, 'run.ctx': 'gpu:0,1', 'model.hidden_units': [64]}
    """
    parsed, problems = {}, []
    for item in items or ():
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or "." not in key or not all(key.split(".")):
            problems.append(f"--set {item!r}: expected section.key=value, e.g. "
                            f"train.n_epochs=3")
            continue
        try:
            parsed[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            parsed[key] = text  # not YAML on its own (e.g. 'a: b'): take the text as is
    if problems:
        raise InvalidParameterError(problems_message("--set", problems))
    return parsed


def _apply_overrides(raw, overrides, problems):
    for key, value in overrides.items():
        parts = key.split(".")
        node = raw
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                problems.append(f"{'.'.join(parts[:depth + 1])}: --set {key} needs a mapping "
                                f"here, the config has {child!r}")
                break
            node = child
        else:
            node[parts[-1]] = value


# ---------------------------------------------------------------------- validation
# Shared with repurpose.tuning, whose tuning configs are job configs plus a ``tune`` section:
# problems_message, read_section, check_paths and read_config_file below, and the section
# schema (_field with the value checkers _choice, _integer, _optional, ..., which raise _Bad).
def problems_message(name, problems):
    """One message listing every problem of a config.

    Parameters
    ----------
    name : str
        What has the problems (a file name, ``'--set'``, ``'the model section'``).
    problems : list of str
        One ``'key: what is wrong'`` sentence per problem.

    Returns
    -------
    str
        ``'<name> has <n> problem(s): <problems joined by "; ">.'``

    Examples
    --------
    >>> problems_message('job.yaml', ['train.n_epochs: expected an integer >= 1, got 0',
    ...                               'train.lr: unknown key'])
    'job.yaml has 2 problems: train.n_epochs: expected an integer >= 1, got 0; train.lr: ...'
    """
    n = len(problems)
    text = "; ".join(p.rstrip(". ") for p in problems)
    return f"{name} has {n} problem{'s' if n != 1 else ''}: {text}" + (
        "" if text.endswith(("?", "!")) else ".")


def _unknown_key(where, key, known):
    alias = _ALIASES.get(str(key))
    hint = f"Did you mean {alias!r}?" if alias in known else suggest(key, known)
    kind = "section" if not where else "key"
    path = f"{where}.{key}" if where else str(key)
    if hint:
        return f"{path}: unknown {kind}. {hint}"
    return f"{path}: unknown {kind} (known: {brief_list(known, 8)})"


def read_section(section, cls, values, problems):
    """Build one section's dataclass from its raw mapping, checking every key.

    Each value goes through its field's check (``_field(..., check, ...)``); unknown keys
    (with close matches), bad values and missing required keys are appended to ``problems``
    as ``'section.key: ...'``, and the key keeps its default. Tuple defaults become lists,
    as YAML writes them.

    Parameters
    ----------
    section : str
        The section's name in the config (``'train'``).
    cls : type
        Its dataclass (:class:`TrainConfig`).
    values : dict or None
        The raw mapping; None is an empty section.
    problems : list of str
        Problems are appended here.

    Returns
    -------
    object
        An instance of ``cls``.

    Examples
    --------
    >>> problems = []
    >>> train = read_section('train', TrainConfig, {'n_epochs': 3, 'lr': 0.1}, problems)
    >>> train.n_epochs, train.step_epochs, problems
    (3, [], ["train.lr: unknown key. Did you mean 'learning_rate'?"])
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        problems.append(f"{section}: expected a mapping of keys, got {values!r}")
        values = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    obj = cls()
    for key, value in values.items():
        if key not in fields:
            problems.append(_unknown_key(section, key, list(fields)))
            continue
        try:
            setattr(obj, key, fields[key].metadata["check"](value))
        except _Bad as bad:
            problems.append(f"{section}.{key}: {bad}")
    for key, f in fields.items():
        if f.metadata["required"] and values.get(key) is None:
            problems.append(f"{section}.{key}: missing. Give {f.metadata['doc']}")
        if isinstance(getattr(obj, key), tuple):
            setattr(obj, key, list(getattr(obj, key)))
    return obj


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
        base_dir = base("source.model")
        names = _zoo_names()
        if spec not in names:
            resolved = _resolve(spec, base_dir)
            prefix = resolved[:-len("-symbol.json")] if resolved.endswith("-symbol.json") \
                else resolved
            if resolved.lower().endswith(".onnx"):
                exists = os.path.isfile(resolved)
            else:
                exists = os.path.isfile(prefix + "-symbol.json")
            if exists:
                source.model = model_file = resolved
            else:
                hint = suggest(spec, names)
                problems.append(
                    f"source.model: {spec!r} is neither a model-zoo name, an .onnx file nor a "
                    f"checkpoint ({resolved}-symbol.json not found). "
                    f"{hint + ' ' if hint else ''}See `repurpose models` for zoo names")
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


def _check_cross(job, problems):
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


def config_from_dict(raw, name="config", base_dir=None, overrides=None):
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
    problems = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidParameterError(problems_message(name, [
            f"top level: expected a mapping of sections ({', '.join(_SECTIONS)}), "
            f"got {type(raw).__name__} {raw!r}"]))
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    if isinstance(overrides, (list, tuple)):
        overrides = parse_overrides(overrides)
    overrides = dict(overrides or {})
    _apply_overrides(raw, overrides, problems)
    cwd = os.getcwd()
    from_cwd = {k for k in overrides}
    sections = {}
    for key in raw:
        if key not in _SECTIONS:
            problems.append(_unknown_key("", key, list(_SECTIONS)))
    for section, cls in _SECTIONS.items():
        sections[section] = read_section(section, cls, raw.get(section), problems)
    job = JobConfig(**sections)

    def base(key):  # overrides' paths are relative to where the command runs
        overridden = any(key == k or key.startswith(k + ".") for k in from_cwd)
        return cwd if overridden else base_dir

    check_paths(job.source, job.data, job.run, base, problems)
    _check_cross(job, problems)
    if problems:
        raise InvalidParameterError(problems_message(name, problems))
    return job


def load_config(path, overrides=None):
    """Read, override and validate a job file (YAML or JSON).

    Parameters
    ----------
    path : str or path-like
        The job file. Relative paths inside it are relative to its folder.
    overrides : list of str or dict, default=None
        ``['train.n_epochs=3', ...]`` (as ``--set`` gives them) or ``{'train.n_epochs': 3}``;
        they replace the file's values before validation.

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
                            overrides=overrides)


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
        for field in dataclasses.fields(value):
            if field.name not in filled[section.name] and \
                    field.default is not dataclasses.MISSING:
                filled[section.name][field.name] = json.loads(json.dumps(field.default))
    return filled


def _differences(a, b, prefix=""):
    out = []
    for key in sorted(set(a) | set(b), key=str):
        va, vb = a.get(key, "<missing>"), b.get(key, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key} ({va!r} here, {vb!r} there)")
    return out


def check_output_dir(job, resume=False):
    """Check that ``run.output_dir`` may hold this job; return ``'new'`` or ``'resume'``.

    A new or empty folder starts a new job. A folder holding this job's files (its
    ``config.resolved.yaml`` equals this config) is continued with ``resume=True``.

    Parameters
    ----------
    job : JobConfig
    resume : bool, default=False
        Whether the job is to continue an earlier, unfinished run (``--resume``).

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
    out = job.run.output_dir
    entries = sorted(os.listdir(out)) if os.path.isdir(out) else []
    resolved = os.path.join(out, RESOLVED_CONFIG_NAME)
    if not entries:
        if resume:
            raise FileNotFoundError(
                f"--resume: run.output_dir {out!r} holds no job to resume"
                f"{'' if os.path.isdir(out) else ' (it does not exist)'}. Run without "
                f"--resume to start the job.")
        return "new"
    if not os.path.isfile(resolved):
        raise FileExistsError(
            f"run.output_dir {out!r} is not empty and holds no {RESOLVED_CONFIG_NAME} (found "
            f"{brief_list(entries)}): those are not a repurpose job's files. Choose a new or "
            f"empty folder.")
    try:
        with open(resolved, encoding="utf-8") as handle:
            theirs = yaml.safe_load(handle)
    except yaml.YAMLError as err:
        raise FileExistsError(f"run.output_dir {out!r} holds an unreadable {RESOLVED_CONFIG_NAME}"
                              f" ({err}). Choose a new or empty folder.") from err
    ours = yaml.safe_load(dump_config(job))
    if isinstance(theirs, dict):
        theirs = with_added_defaults(theirs, job)
    if not isinstance(theirs, dict) or theirs != ours:
        diff = _differences(ours, theirs if isinstance(theirs, dict) else {})
        raise FileExistsError(
            f"run.output_dir {out!r} holds another job's files: its {RESOLVED_CONFIG_NAME} "
            f"differs in {', '.join(diff[:6])}{' ...' if len(diff) > 6 else ''}. Choose "
            f"another run.output_dir (or remove that folder).")
    if os.path.exists(os.path.join(out, "model")):
        raise FileExistsError(
            f"run.output_dir {out!r} holds this job, finished (model/ exists). Nothing to "
            f"resume; choose another run.output_dir to train again.")
    if not resume:
        raise FileExistsError(
            f"run.output_dir {out!r} holds this job's files from an earlier, unfinished run. "
            f"Pass --resume to continue it, or choose another run.output_dir.")
    return "resume"


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


def field_reference():
    """Rows ``(key, default, accepts, description)`` of every key, for the docs.

    Returns
    -------
    list of tuple
        One ``(dotted key, default or 'required', what values it accepts, description)``
        per key of every section, in schema order.

    Examples
    --------
    >>> key, default, accepts, description = field_reference()[1]
    >>> key, default, accepts
    ('source.epoch', None, 'an integer >= 0 or null')
    >>> description
    'checkpoint epoch; null takes the newest .params file'
    """
    rows = []
    for section, cls in _SECTIONS.items():
        for f in dataclasses.fields(cls):
            default = "required" if f.metadata["required"] else f.default
            rows.append((f"{section}.{f.name}", default, f.metadata["check"].what,
                         f.metadata["doc"]))
    return rows
