"""Save and load estimators as a folder: ``manifest.json`` + ``arrays.npz`` (+ the source model
as a symbol+params checkpoint). JSON and arrays only, never pickle.

A saved folder::

    manifest.json   format, format_version, repurpose version, class, get_params() as JSON,
                    fitted state (JSON), SHA-256 of every array file, source model reference
    arrays.npz      fitted arrays (np.savez, read back with allow_pickle=False)
    source/         the source model, if the estimator has one (SourceModel.save_checkpoint)

Older ``format_version`` files are migrated forward step by step by :data:`MIGRATIONS`; a newer
one than this code knows is an error naming both versions.
"""
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile

import numpy as np

from .._validation import brief_list, suggest
from .._version import __version__
from ..exceptions import ModelFileError
from ._format import FileFormat, strict_json
from ._io import confined_path, explain_full_disk, remove_temporaries
from ._lock import FolderLock
from ._registry import registered_class

logger = logging.getLogger(__name__)

__all__ = ["save", "load", "migrate", "register_source_class", "FORMAT", "FORMAT_VERSION",
           "MIGRATIONS"]

FORMAT = "repurpose.estimator"
#: The ``format_version`` that :func:`save` writes; :func:`load` migrates older ones forward
#: and refuses newer ones.
FORMAT_VERSION = 1
#: Ordered ``(from_version, function)`` steps; each turns a manifest of ``from_version`` into
#: one of ``from_version + 1``. Empty while only version 1 exists.
MIGRATIONS = []
#: The format's header (migrations are read from :data:`MIGRATIONS` at each load).
_SAVED = FileFormat(FORMAT, FORMAT_VERSION, what="saved estimator")

_SOURCE_DIR = "source"
_SOURCE_PREFIX = "model"


#: The source-model class, registered by ``repurpose.source`` (persist sits below source in
#: the import chain, so it is told the class instead of importing it).
_SOURCE_CLASS = []


def register_source_class(cls):
    """Tell persist which class is the source model (embedded as a checkpoint when saved).

    ``repurpose.source`` calls it at import; persist sits below source in the import chain.

    Parameters
    ----------
    cls : type
        The source-model class.

    Returns
    -------
    type
        ``cls`` itself, so this works as a decorator.

    Examples
    --------
    >>> from repurpose.source import SourceModel
    >>> register_source_class(SourceModel) is SourceModel
    True
    """
    _SOURCE_CLASS[:] = [cls]
    return cls


def _encode_param(name, value, source_models):
    if _SOURCE_CLASS and isinstance(value, _SOURCE_CLASS[0]):
        source_models.append(value)
        return {"__source_model__": value.sha256}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode_param(name, v, source_models) for v in value]}
    if isinstance(value, list):
        return [_encode_param(name, v, source_models) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode_param(name, v, source_models) for k, v in value.items()}
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"Parameter {name!r} is a {type(value).__name__}, which cannot be saved as JSON. Use "
        f"plain values (numbers, strings, tuples); e.g. random_state=0, not a RandomState.")


def _decode_param(value, source_model):
    if isinstance(value, dict):
        if "__source_model__" in value:
            return source_model
        if "__tuple__" in value:
            return tuple(_decode_param(v, source_model) for v in value["__tuple__"])
        return {k: _decode_param(v, source_model) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_param(v, source_model) for v in value]
    return value


def _arrays_bytes(arrays):
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.dtype == object:
            raise TypeError(f"Array {name!r} has dtype object, which needs pickle; store "
                            f"numbers or fixed-width strings.")
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def save(estimator, path, overwrite=False):
    """Save a fitted estimator (head, repurposer) to the folder ``path``.

    Parameters
    ----------
    estimator : object with ``_get_state()`` and ``get_params()``
    path : str or path-like
        A folder to create.
    overwrite : bool, default=False
        Replace an existing saved model at ``path`` (a folder holding a ``manifest.json``
        this function wrote). Anything else at ``path`` is never replaced.

    Returns
    -------
    str
        The folder written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False, or ``path`` is not a saved model
        (a file, or a folder without our manifest): nothing is written or removed.
    LockedError
        If another process (or thread) is saving to ``path``; it is named.
    DiskFullError
        (an ``OSError``) If the disk has no room: the message names ``path`` and the free
        space, and no temporary folder is left.

    Notes
    -----
    The save holds ``path``'s :class:`~repurpose.persist.FolderLock` while it writes, and
    first removes the hidden temporary folders (``.<name>.XXXXXXXX.tmp``) that a save killed
    mid-write left beside ``path``.

    Examples
    --------
    >>> import os, tempfile
    >>> from repurpose.heads import LogisticHead
    >>> head = LogisticHead().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    >>> folder = save(head, os.path.join(tempfile.mkdtemp(), "head"))
    >>> sorted(os.listdir(folder))
    ['arrays.npz', 'manifest.json']
    >>> load(folder).predict([[3.0]]).tolist()
    [1]
    """
    # Long for its docstring; the body writes the folder's files in one temporary folder.
    path = os.fspath(path)
    _check_target(path, overwrite)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"Folder {parent!r} for {path!r} does not exist; create it "
                                f"first.")
    state, arrays = estimator._get_state()
    source_models = []
    params = {k: _encode_param(k, v, source_models)
              for k, v in estimator.get_params(deep=False).items()}
    if len({m.sha256 for m in source_models}) > 1:
        raise TypeError("An estimator with several different source models cannot be saved.")
    data = _arrays_bytes(arrays)
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "repurpose_version": __version__,
        "class": type(estimator).__name__, "params": params, "state": state,
        "arrays": {"file": "arrays.npz", "sha256": hashlib.sha256(data).hexdigest(),
                   "names": sorted(arrays)},
        "source": None,
    }
    with FolderLock(path, what="saved model"):
        # What a save killed mid-write left; a swapped-out old folder only once the new
        # one is in place (before that, it is the only copy).
        remove_temporaries(parent, os.path.basename(path),
                           ("tmp", "old") if os.path.exists(path) else ("tmp",))
        _check_target(path, overwrite)  # again, now that no other save can change it
        tmp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=parent)
        try:
            with explain_full_disk(path):
                _write_folder(tmp, manifest, data, source_models)
            _swap_in(tmp, path, parent)
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
    logger.info("Saved %s to %s", type(estimator).__name__, path)
    return path


def _check_target(path, overwrite):
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path!r} already exists. Choose another path, remove it, or "
                              f"pass overwrite=True.")
    if os.path.lexists(path) and not _SAVED.wrote_folder(path, "manifest.json"):
        raise FileExistsError(
            f"{path!r} exists and is not a saved model (no manifest.json of ours in it), so "
            f"overwrite=True does not replace it: it could hold your own files. Choose "
            f"another path, or remove it yourself.")


def _write_folder(tmp, manifest, data, source_models):
    """Write the source checkpoint, ``arrays.npz`` and ``manifest.json`` into ``tmp``."""
    if source_models:
        os.mkdir(os.path.join(tmp, _SOURCE_DIR))
        source_models[0].save_checkpoint(os.path.join(tmp, _SOURCE_DIR, _SOURCE_PREFIX))
        manifest["source"] = {"prefix": f"{_SOURCE_DIR}/{_SOURCE_PREFIX}", "epoch": 0,
                              "sha256": source_models[0].sha256}
    for name, payload in (("arrays.npz", data),
                          ("manifest.json", json.dumps(strict_json(manifest), indent=2,
                                                       allow_nan=False).encode())):
        with open(os.path.join(tmp, name), "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())


def _swap_in(tmp, path, parent):
    """Move the written folder ``tmp`` to ``path``; an old saved model there is swapped out
    first and dropped only after the new one is in place."""
    if os.path.exists(path):  # overwrite=True
        old = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", suffix=".old",
                               dir=parent)
        os.rmdir(old)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old) if os.path.isdir(old) else os.remove(old)
    else:
        os.replace(tmp, path)


def _read_manifest(path):
    manifest_path = os.path.join(path, "manifest.json")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path!r} is not a folder saved by repurpose (no such folder).")
    if not os.path.isfile(manifest_path):
        raise ModelFileError(f"{path!r} has no manifest.json; it is not a folder saved by "
                             f"repurpose, or the save was interrupted.")
    try:
        with open(manifest_path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except ValueError as err:
        raise ModelFileError(f"{manifest_path!r} is not valid JSON (truncated or edited?): "
                             f"{err}") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFileError(f"{manifest_path!r} is not a repurpose estimator manifest (format "
                             f"{manifest.get('format') if isinstance(manifest, dict) else None!r}).")
    manifest = migrate(manifest, manifest_path)  # the version, through persist.FileFormat
    _check_manifest(manifest, manifest_path)
    return manifest


_MANIFEST_TYPES = {"class": str, "params": dict, "state": dict, "arrays": dict}
#: Every key a manifest of :data:`FORMAT_VERSION` may hold (older versions are migrated to
#: it first); anything else is an error, not ignored.
_KNOWN_KEYS = {
    "": ("format", "format_version", "repurpose_version", "class", "params", "state",
         "arrays", "source"),
    "arrays.": ("file", "sha256", "names"),
    "source.": ("prefix", "epoch", "sha256"),
}


def _unknown_keys(mapping, where):
    known = _KNOWN_KEYS[where]
    return [f"{where}{key}: unknown key. {suggest(key, known)}".rstrip()
            for key in mapping if key not in known]


def _check_manifest(manifest, where):
    """Check the keys and types ``load`` relies on; name every problem at once."""
    problems = _unknown_keys(manifest, "")
    problems += [f"{key}: expected {kind.__name__}, got {type(manifest.get(key)).__name__}"
                 for key, kind in _MANIFEST_TYPES.items()
                 if not isinstance(manifest.get(key), kind)]
    arrays = manifest.get("arrays")
    if isinstance(arrays, dict):
        problems += _unknown_keys(arrays, "arrays.")
        problems += [f"arrays.{key}: expected str" for key in ("file", "sha256")
                     if not isinstance(arrays.get(key), str)]
        names = arrays.get("names")
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            problems.append("arrays.names: expected a list of str")
    source = manifest.get("source")
    if source is not None:
        if not (isinstance(source, dict) and isinstance(source.get("prefix"), str)
                and isinstance(source.get("sha256"), str)):
            problems.append("source: expected null or {prefix: str, epoch: int, sha256: str}")
        else:
            problems += _unknown_keys(source, "source.")
            epoch = source.get("epoch", 0)
            if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch < 10**4:
                problems.append(f"source.epoch: expected an integer 0..9999, got {epoch!r}")
    if problems:
        raise ModelFileError(f"{where} has {len(problems)} problem(s): {'; '.join(problems)}.")


def _check_arrays(manifest, arrays, where):
    """Check that the saved arrays are the ones the manifest lists, and that an estimator
    of layers (a feature repurposer) names in ``params.layers`` the layers whose features
    its head was fitted on, with standardizer arrays of their total width."""
    listed, found = sorted(manifest["arrays"]["names"]), sorted(arrays)
    if listed != found:
        raise ModelFileError(
            f"{where}: arrays.names lists {len(listed)} array(s) ({brief_list(listed)}) but "
            f"{manifest['arrays']['file']} holds {len(found)} ({brief_list(found)}). The "
            f"folder was edited or mixes two saves; save the model again.")
    state = manifest["state"]
    problems = _layer_problems(manifest["params"].get("layers"), state)
    head = state.get("head")
    if "layers_" in state and isinstance(head, dict) and not problems:
        width = sum(state["layer_dims_"].values())
        problems += _width_problems(head, arrays, "head/", "state.head",
                                    "the layers' widths add up to", width)
    elif isinstance(state.get("n_features_in_"), int):  # a head saved on its own
        problems += _width_problems(state, arrays, "", "state",
                                    "n_features_in_ is", state["n_features_in_"])
    if problems:
        raise ModelFileError(
            f"{where} has {len(problems)} problem(s): {'; '.join(problems)}. The manifest "
            f"does not describe the saved arrays: it was edited or mixes two saves; save the "
            f"model again.")


def _layer_problems(params_layers, state):
    """``params.layers`` (None: the model's feature layer), ``state.layers_`` (the layers
    the head saw, in order) and ``state.layer_dims_`` (their widths) must agree."""
    if "layers_" not in state:
        return []
    layers, dims = state["layers_"], state.get("layer_dims_")
    if not (isinstance(layers, list) and layers and all(isinstance(l, str) for l in layers)
            and len(set(layers)) == len(layers)):
        return [f"state.layers_: expected a list of distinct layer names, got {layers!r}"]
    problems = []
    if params_layers is not None:
        named = _decode_param(params_layers, None)
        named = [named] if isinstance(named, str) else \
            list(named) if isinstance(named, (list, tuple)) else named
        if named != layers:
            problems.append(f"params.layers names {named!r}, but the head was fitted on the "
                            f"features of state.layers_ {layers!r}")
    if not (isinstance(dims, dict) and all(isinstance(v, int) and not isinstance(v, bool)
                                           and v > 0 for v in dims.values())):
        return problems + [f"state.layer_dims_: expected a positive width per layer, got "
                           f"{dims!r}"]
    missing = [layer for layer in layers if layer not in dims]
    extra = [layer for layer in dims if layer not in layers]
    if missing:
        problems.append(f"state.layer_dims_ has no width for layer(s) {missing!r} of "
                        f"state.layers_")
    if extra:
        problems.append(f"state.layer_dims_ has widths of layer(s) {extra!r} not in "
                        f"state.layers_ {layers!r}")
    return problems


def _width_problems(head_state, arrays, prefix, where, what, width):
    """The head's input width and its per-feature standardizer (``mean_``, ``scale_``)
    must be ``width``."""
    problems = []
    n_in = head_state.get("n_features_in_")
    if prefix and n_in != width:
        problems.append(f"{what} {width}, but {where}.n_features_in_ is {n_in!r}")
    for name in (f"{prefix}mean_", f"{prefix}scale_"):
        shape = np.shape(arrays[name]) if name in arrays else (width,)
        if shape != (width,):
            problems.append(f"the array {name!r} has {shape[-1] if shape else 'no'} "
                            f"features, {what} {width}")
    return problems


def migrate(manifest, where="manifest"):
    """Bring ``manifest`` to :data:`FORMAT_VERSION` through :data:`MIGRATIONS`, step by step.

    Parameters
    ----------
    manifest : dict
        A manifest as read from ``manifest.json``.
    where : str, default='manifest'
        The file it was read from, for error messages.

    Returns
    -------
    dict
        The manifest at :data:`FORMAT_VERSION` (a copy).

    Raises
    ------
    ModelFileError
        If ``format_version`` is missing, not an integer >= 1, newer than this code reads,
        or has no migration step.

    Examples
    --------
    >>> migrate({"format_version": FORMAT_VERSION})["format_version"] == FORMAT_VERSION
    True
    >>> migrate({"format_version": FORMAT_VERSION + 1}, "m.json")
    Traceback (most recent call last):
    ...
    repurpose.exceptions.ModelFileError: m.json has format_version ..., newer than this ...
    """
    return FileFormat(FORMAT, FORMAT_VERSION, dict(MIGRATIONS), what="saved estimator").read(
        dict(manifest, format=FORMAT), where)


def load(path):
    """Load an estimator saved by ``save`` (any registered class).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    object
        A fitted estimator of the saved class that predicts what the saved one did.

    Raises
    ------
    FileNotFoundError, ModelFileError
        For a missing, corrupted, truncated or future-version folder; for a manifest with
        unknown keys, or one that does not describe the saved arrays (``arrays.names``,
        and ``params.layers`` / ``state.layers_`` / ``state.layer_dims_`` against the
        head's input width); and for a path in the manifest (``arrays.file``,
        ``source.prefix``) that is absolute or leads outside ``path``.

    Examples
    --------
    See :func:`save`.
    """
    path = os.fspath(path)
    manifest = _read_manifest(path)
    where = repr(os.path.join(path, "manifest.json"))
    cls = registered_class(manifest.get("class"), os.path.join(path, "manifest.json"))
    arrays_info = manifest["arrays"]
    arrays_path = confined_path(path, arrays_info["file"], where, "arrays.file")
    try:
        with open(arrays_path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise ModelFileError(f"{arrays_path!r} is missing or unreadable: {err}") from err
    if hashlib.sha256(data).hexdigest() != arrays_info["sha256"]:
        raise ModelFileError(f"{arrays_path!r} does not match the SHA-256 in its manifest: the "
                             f"file is corrupted or was replaced.")
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    _check_arrays(manifest, arrays, where)
    source_model = None
    if manifest.get("source"):
        info = manifest["source"]
        epoch = info.get("epoch", 0)
        prefix = confined_path(path, info["prefix"], where, "source.prefix")
        for suffix in ("-symbol.json", f"-{epoch:04d}.params", "-repurpose.json"):
            confined_path(path, info["prefix"] + suffix, where, "source.prefix")
        source_model = _SOURCE_CLASS[0].from_checkpoint(prefix, epoch)
        if source_model.sha256 != info["sha256"]:
            raise ModelFileError(
                f"The source model in {os.path.join(path, _SOURCE_DIR)!r} does not match the "
                f"SHA-256 recorded in the manifest: its files were changed or corrupted.")
    params = {k: _decode_param(v, source_model) for k, v in manifest["params"].items()}
    estimator = cls(**params)
    return estimator._set_state(manifest["state"], arrays)
