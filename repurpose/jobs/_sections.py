"""The sections of a fine-tuning job file, each a dataclass of typed, documented keys.

``source`` (the pretrained model), ``data`` (train / validation / test data), ``model``
(surgery and the new head), ``train`` (hyper-parameters), ``run`` (devices, output folder)
and ``distributed``. ``model`` and ``train`` are not written here: they are
:class:`~repurpose.repurposers.FineTuneRepurposer`'s own parameters (see
:func:`~repurpose.jobs._schema.estimator_section`).
"""
import dataclasses
import functools
import inspect
import os
from typing import Optional

from .._validation import Boolean, Custom, Integer, Nullable, Options, Problem, Text, brief_list
from ..data import BUILTIN_DATASETS, NORMALIZATIONS, ON_DAMAGED
from ..repurposers import FineTuneRepurposer
from ..repurposers._distributed import KVSTORE_TYPES
from ._output import OutputFolder
from ._schema import CTX, DIGITS, SHAPE, SIZE, Bad, estimator_section, field

__all__ = ["JobConfig", "SourceConfig", "DataConfig", "ModelConfig", "TrainConfig",
           "RunConfig", "DistributedConfig", "job_sections", "RESOLVED_CONFIG_NAME",
           "DATA_KINDS", "FINETUNE_OUTPUT"]

#: The file a job writes to its output folder, and ``--resume`` compares.
RESOLVED_CONFIG_NAME = "config.resolved.yaml"
#: What a fine-tuning job writes to ``run.output_dir`` (all that ``--overwrite`` removes).
FINETUNE_OUTPUT = OutputFolder(RESOLVED_CONFIG_NAME, "job", (
    RESOLVED_CONFIG_NAME, "checkpoints", "model", "metrics.json", "training_curve.png"),
    finished="model/", label="repurpose job")
#: The values of ``data.kind``: an image folder, ``{X: x.npy, y: y.npy}``, or a built-in set.
DATA_KINDS = ("image_folder", "npy", "builtin")

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
                      f"({brief_list(BUILTIN_DATASETS)}) or {{X: x.npy, y: y.npy}}")


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

    >>> from repurpose.jobs import read_section

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
    on_damaged : {'error', 'skip'}, default='error'
        Image folder: a damaged (truncated or undecodable) image stops the job naming it,
        or (``'skip'``) is left out with a warning and counted in ``metrics.json``.
    seed : int >= 0, default=0
        Built-in data: seed of the shifts and of the ``n_per_class`` draw.

    Examples
    --------
    >>> from repurpose.jobs import config_from_dict, read_section
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
    on_damaged: str = field("error", Options(*ON_DAMAGED),
                            "image_folder: a damaged (truncated or undecodable) image stops "
                            "the job (error) or is left out with a warning and counted (skip)")
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
    >>> from repurpose.jobs import config_from_dict, read_section
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
    >>> from repurpose.jobs import config_from_dict, read_section
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
    >>> from repurpose.jobs import config_from_dict, read_section
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


