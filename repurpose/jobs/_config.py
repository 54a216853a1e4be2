"""Reading fine-tuning job files: every key, type, choice and path checked, all problems
reported at once.

:func:`load_config` reads a file, applies ``--set section.key=value`` overrides, checks it and
raises one :class:`~repurpose.exceptions.InvalidParameterError` listing all problems::

    job.yaml has 3 problems: train.lr: unknown key. Did you mean 'learning_rate'?; ...

Relative paths in the file are relative to the file's folder; relative paths given in
overrides are relative to the current folder. The resolved config (absolute paths, every
default filled in) is what a job writes to ``config.resolved.yaml`` and what ``--resume``
compares. See ``docs/guide/jobs.md`` for the reference.
"""
import dataclasses
import json
import os

import yaml

from .. import zoo
from .._validation import brief_list, suggest
from ..data import BUILTIN_DATASETS
from ..exceptions import InvalidParameterError
from ..repurposers import FineTuneRepurposer
from ..source import parse_spec
from ._schema import (apply_overrides, parse_overrides, problems_message, read_section,
                      unknown_key)
from ._sections import (FINETUNE_OUTPUT, SECTION_NAMES, DataConfig, JobConfig, job_sections)
from ._sections import RESOLVED_CONFIG_NAME, RunConfig, SourceConfig  # noqa: F401 - doctests

__all__ = ["load_config", "config_from_dict", "dump_config", "check_layers",
           "check_output_dir", "with_added_defaults", "field_reference", "check_paths",
           "read_config_file", "check_cross"]


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
            return yaml.load(handle, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
        except _DuplicateKey as err:
            raise InvalidParameterError(f"{path}: {err}") from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(err, "problem", None) or str(err)
            raise InvalidParameterError(
                f"{path} is not valid YAML{where}: {problem}. Fix the syntax (JSON is YAML "
                f"too).") from err


class _DuplicateKey(yaml.YAMLError):
    """A mapping of a job file names the same key twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, except that a key given twice in one mapping is an error naming
    the key and both lines (YAML says keys are unique; PyYAML silently keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(f"key {key!r} is given twice, at lines {seen[key]} and "
                                        f"{line}. Keep one of them")
            except TypeError:  # an unhashable key: SafeLoader's own error follows
                break
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


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
    if isinstance(train, str) and train in BUILTIN_DATASETS:
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
            "image_folder": ("resize", "crop", "normalize", "grayscale", "on_damaged")}
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
            elif value not in BUILTIN_DATASETS:
                hint = suggest(value, BUILTIN_DATASETS) if isinstance(value, str) else ""
                problems.append(f"{where}: {value!r} is not a built-in data set (choose "
                                f"{brief_list(BUILTIN_DATASETS)}). {hint}".rstrip())
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
                hint = suggest(value, BUILTIN_DATASETS) if data.kind is None or \
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
