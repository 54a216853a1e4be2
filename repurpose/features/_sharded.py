"""Sharded feature extraction, in-process or on a Dask cluster, into a resumable store.

:func:`extract_to_store` cuts the input into shards of ``shard_size`` samples. Each shard is
one task: load the source model (once per worker process, from a checkpoint saved in the
store and keyed by its SHA-256), extract the shard's features with
:func:`~repurpose.features.extract_features`, and write one ``.npy`` file per layer through a
temporary file and ``os.replace``. Workers return each file's size and SHA-256; only the
driver writes ``manifest.json`` (atomically), so a task that dies leaves at worst an orphan
temporary file, and a retried task writes the same bytes again.

A store::

    manifest.json            format, version, source SHA-256, layers, pool, input, shard table
    samples.json             sample ids (file paths), labels and classes of image inputs
    source/model-*           the source model as a checkpoint (what the workers load)
    <layer>/shard-000000.npy (n_i, D) float32 features of shard 0 for that layer, ...

:class:`FeatureStore` reads it back: ``store[layer]`` is a :class:`ShardedArray`, the (N, D)
features in input order, backed by memory-mapped shard files.

Why ``.npy`` shards and not Zarr: one ``.npy`` file per shard and layer is exactly the unit
of work that succeeds or fails; it is written with ``os.replace`` (atomic on POSIX), checked
with one SHA-256, read with ``np.load(mmap_mode='r')`` without a new dependency, and a shard
of 1,024 x 512 float32 (2 MiB) is a sensible object-store and file-system object. Zarr would
add a dependency and chunk files whose atomicity is per chunk, not per shard.
"""
import copy
import hashlib
import io
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict

import mxnet as mx
import numpy as np
from mxnet.gluon.data import Dataset

from .._dask import check_workers, connect_scheduler, import_distributed
from .._progress import tqdm
from .._validation import brief_list, check_choice, check_positive_int, suggest
from .._version import __version__
from ..context import resolve_contexts
from ..data import ImageFolder, as_batch_stream, image_transform
from ..exceptions import (ClusterError, DataError, InvalidParameterError, RepurposeError,
                          StoreMismatchError, UnknownLayerError)
from ..persist import atomic_write
from ._extract import POOLS, _check_input_shape, _check_layers, extract_features
from ._store import layer_file_name

logger = logging.getLogger(__name__)

__all__ = ["extract_to_store", "FeatureStore", "ShardedArray", "StoreMismatchError",
           "ClusterError", "connect_scheduler", "check_workers"]

STORE_FORMAT = "repurpose.feature_store"
STORE_VERSION = 1
MANIFEST = "manifest.json"
SAMPLES = "samples.json"
SOURCE_PREFIX = os.path.join("source", "model")
#: Seconds between manifest writes while shards complete (and always at the end).
MANIFEST_INTERVAL_S = 1.0
#: Source models kept loaded per worker process (keyed by SHA-256).
WORKER_CACHE_SIZE = 2


# ---------------------------------------------------------------------- inputs
class _ImageFiles(Dataset):
    """A list of image files, decoded and transformed on access (items: (image, -1))."""

    def __init__(self, paths, image_options):
        self.paths = list(paths)
        self.image_options = dict(image_options)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, idx):
        options = dict(self.image_options)
        flag = 0 if options.pop("grayscale", False) else 1
        if not hasattr(self, "_transform"):
            self._transform = image_transform(**options)
        path = self.paths[idx]
        try:
            image = mx.image.imread(path, flag=flag)
        except mx.base.MXNetError as err:
            raise DataError(f"Cannot decode image {path!r}: {err}") from err
        return self._transform(image).asnumpy(), -1

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_transform", None)  # rebuilt on the worker
        return state

    def subset(self, start, stop):
        return _ImageFiles(self.paths[start:stop], self.image_options)


class _NpyRows:
    """Rows ``start:stop`` of a ``.npy`` file, read where the task runs."""

    def __init__(self, path, start, stop):
        self.path, self.start, self.stop = path, start, stop

    def load(self):
        return np.load(self.path, mmap_mode="r", allow_pickle=False)[self.start:self.stop]


class _Input:
    """What the driver knows about the input: size, ids, identity, and shard readers."""

    def __init__(self, kind, n_samples, description, identity, shard, sample_ids=None,
                 labels=None, classes=None):
        self.kind = kind
        self.n_samples = n_samples
        self.description = description
        self.identity = identity
        self.shard = shard  # shard(start, stop) -> ndarray, _NpyRows or Dataset
        self.sample_ids = sample_ids
        self.labels = labels
        self.classes = classes


_IMAGE_OPTIONS = ("resize", "crop", "mean", "std", "grayscale")


def _check_image_options(image_options):
    if image_options is None:
        return {}
    if not isinstance(image_options, dict):
        raise InvalidParameterError(
            f"image_options must be a dict with keys from {brief_list(_IMAGE_OPTIONS)}, got "
            f"{type(image_options).__name__}.")
    unknown = sorted(set(image_options) - set(_IMAGE_OPTIONS))
    if unknown:
        raise InvalidParameterError(
            f"image_options has unknown key(s) {brief_list(unknown)}. "
            f"{suggest(unknown[0], _IMAGE_OPTIONS)} Valid keys: "
            f"{brief_list(_IMAGE_OPTIONS)}.".replace("  ", " "))
    options = dict(image_options)
    image_transform(**{k: v for k, v in options.items() if k != "grayscale"})  # checks values
    return options


def _array_identity(array):
    first = np.ascontiguousarray(array[:1])
    return {"shape": list(array.shape), "dtype": str(array.dtype),
            "first_row_sha256": hashlib.sha256(first.tobytes()).hexdigest()}


def _plan_input(data, image_options):
    options = _check_image_options(image_options)
    if isinstance(data, os.PathLike):
        data = os.fspath(data)
    if isinstance(data, mx.nd.NDArray):
        data = data.asnumpy()
    if isinstance(data, str):
        if data.endswith(".npy") and os.path.isfile(data):
            if options:
                raise InvalidParameterError("image_options applies to image folders and "
                                            "lists of image files, not to a .npy file.")
            array = np.load(data, mmap_mode="r", allow_pickle=False)
            return _npy_input(os.path.abspath(data), array)
        if os.path.isdir(data):
            return _folder_input(ImageFolder(data, **options))
        raise FileNotFoundError(f"data={data!r} is neither a .npy file nor an image folder. "
                                f"Pass an existing path, a list of image files or an array.")
    if isinstance(data, ImageFolder):
        if options:
            raise InvalidParameterError(
                "image_options applies to a folder path or a list of image files; an "
                "ImageFolder carries its own resize / crop / mean / std. Pass the folder's "
                "path instead, or drop image_options.")
        return _folder_input(data)
    if isinstance(data, (list, tuple)) and data and all(
            isinstance(p, (str, os.PathLike)) for p in data):
        paths = [os.fspath(p) for p in data]
        absent = [p for p in paths if not os.path.isfile(p)]
        if absent:
            raise FileNotFoundError(f"{len(absent)} of the {len(paths)} image files do not "
                                    f"exist: {brief_list(absent)}.")
        dataset = _ImageFiles(paths, options)
        return _Input("files", len(paths), f"{len(paths)} image files",
                      {"kind": "files"}, dataset.subset, sample_ids=paths)
    if isinstance(data, np.ndarray):
        if options:
            raise InvalidParameterError("image_options applies to image folders and lists "
                                        "of image files, not to arrays.")
        if data.ndim < 2 or len(data) == 0:
            raise DataError(f"data has shape {data.shape}; expected at least 1 sample and a "
                            f"sample axis first, e.g. (n_samples, channels, height, width).")
        filename = getattr(data, "filename", None)
        if isinstance(data, np.memmap) and filename and str(filename).endswith(".npy"):
            reopened = np.load(filename, mmap_mode="r", allow_pickle=False)
            # The same shape, dtype and a C-contiguous layout: the whole file, not a view.
            if reopened.shape == data.shape and reopened.dtype == data.dtype \
                    and data.flags.c_contiguous and reopened.flags.c_contiguous:
                return _npy_input(os.path.abspath(filename), reopened)
        return _Input("array", len(data), f"an array of shape {data.shape}",
                      dict(_array_identity(data), kind="array"),
                      lambda start, stop: data[start:stop])
    raise TypeError(
        f"data is of type {type(data).__name__}; extract_to_store takes an image folder "
        f"(its path or a repurpose.data.ImageFolder), a list of image file paths, a numpy "
        f"array, or the path of a .npy file.")


def _npy_input(path, array):
    if array.ndim < 2 or len(array) == 0:
        raise DataError(f"{path!r} holds an array of shape {array.shape}; expected at least "
                        f"1 sample and a sample axis first.")
    return _Input("npy", len(array), f"{path} {tuple(array.shape)}",
                  dict(_array_identity(array), kind="npy"),
                  lambda start, stop: _NpyRows(path, start, stop))


def _drop_compiled_graphs(block):
    if isinstance(block, mx.gluon.HybridBlock):
        block._clear_cached_op()
    for child in getattr(block, "_children", {}).values():
        _drop_compiled_graphs(child)


def _folder_input(folder):
    ids = [os.path.relpath(path, folder.root) for path, _ in folder.items]

    def shard(start, stop):
        # Tasks carry a copy holding only the shard's items. Gluon drops the compiled graph
        # of its transforms first: a hybridized transform that has run holds C handles,
        # which cannot be pickled (it compiles again on its next call).
        _drop_compiled_graphs(getattr(folder, "_transform", None))
        part = copy.copy(folder)
        part.items = folder.items[start:stop]
        return part

    return _Input("image_folder", len(folder), f"image folder {folder.root!r}",
                  {"kind": "image_folder"}, shard, sample_ids=ids,
                  labels=[int(label) for _, label in folder.items], classes=list(folder.classes))


# ---------------------------------------------------------------------- manifest
def _write_json_atomic(path, obj):
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(obj, handle, indent=1, sort_keys=True)

    atomic_write(path, write, overwrite=True)


def _read_manifest(out):
    path = os.path.join(out, MANIFEST)
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except ValueError as err:
        raise StoreMismatchError(f"{path!r} is not valid JSON ({err}); the store is damaged. "
                                 f"Delete {out!r} and extract again.") from err
    if manifest.get("format") != STORE_FORMAT:
        raise StoreMismatchError(f"{path!r} is not a feature-store manifest (format "
                                 f"{manifest.get('format')!r}, expected {STORE_FORMAT!r}).")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > STORE_VERSION:
        raise StoreMismatchError(
            f"{path!r} has format_version {version!r}, newer than this repurpose reads "
            f"({STORE_VERSION}). Upgrade repurpose to read it.")
    return manifest


def _shard_file(layer, index):
    return f"{layer_file_name(layer)[:-len('.npy')]}/shard-{index:06d}.npy"


def _file_ok(out, entry, check_sha256):
    path = os.path.join(out, entry["file"])
    try:
        if os.path.getsize(path) != entry["nbytes"]:
            return False
    except OSError:
        return False
    if check_sha256:
        from ..persist import file_sha256

        return file_sha256(path) == entry["sha256"]
    return True


def _check_same_store(out, manifest, expected):
    """Raise StoreMismatchError unless the store at ``out`` was made by the same call."""
    where = f"The feature store {out!r}"
    if manifest["source_sha256"] != expected["source_sha256"]:
        raise StoreMismatchError(
            f"{where} was written by another source model (SHA-256 "
            f"{manifest['source_sha256'][:16]}... in its manifest, this model is "
            f"{expected['source_sha256'][:16]}...). Extract into another folder, or delete "
            f"{out!r} (or pass overwrite=True) to start over with this model.")
    if list(manifest["layers"]) != list(expected["layers"]):
        raise StoreMismatchError(
            f"{where} holds layers {manifest['layers']}, not {expected['layers']} as asked. "
            f"Pass layers={manifest['layers']} to finish it, or extract the other layers into "
            f"another folder.")
    for key, what in (("pool", "pool"), ("shard_size", "shard_size"),
                      ("n_samples", "number of samples"), ("input", "input")):
        if manifest[key] != expected[key]:
            raise StoreMismatchError(
                f"{where} was written with {what} {manifest[key]!r}, this call has "
                f"{expected[key]!r}; shards of the two cannot be mixed. Repeat the first "
                f"call to finish it, or use another folder.")


# ---------------------------------------------------------------------- the shard task
_WORKER_MODELS = OrderedDict()
_WORKER_LOCK = threading.Lock()


def _worker_source(prefix, sha256):
    """The source model of a task, loaded once per worker process (keyed by SHA-256)."""
    with _WORKER_LOCK:
        if sha256 in _WORKER_MODELS:
            _WORKER_MODELS.move_to_end(sha256)
            return _WORKER_MODELS[sha256]
        from ..source import SourceModel

        source = SourceModel.from_checkpoint(prefix)
        if source.sha256 != sha256:
            raise StoreMismatchError(
                f"The checkpoint {prefix!r} holds a model with SHA-256 {source.sha256[:16]}..., "
                f"but the store was started for {sha256[:16]}...; the store's source folder "
                f"was changed. Delete the store and extract again.")
        _WORKER_MODELS[sha256] = source
        while len(_WORKER_MODELS) > WORKER_CACHE_SIZE:
            _WORKER_MODELS.popitem(last=False)
        logger.info("Loaded source model %s... from %s in process %d", sha256[:12], prefix,
                    os.getpid())
        return source


def _save_npy(path, array):
    """Write ``array`` to ``path`` via a temporary sibling + fsync + os.replace; return its
    size and SHA-256."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    payload = buffer.getvalue()

    def write(tmp):
        with open(tmp, "wb") as handle:
            handle.write(payload)

    atomic_write(path, write, overwrite=True)
    return len(payload), hashlib.sha256(payload).hexdigest()


def _run_shard(job, shard, source=None):
    """Extract one shard and write its files; returns the shard's manifest entry.

    Runs on a Dask worker (``source=None``: loaded from the store's checkpoint) or in the
    driver's process (``source`` given).
    """
    if job["repurpose_version"] != __version__:
        raise ClusterError(
            f"This worker (process {os.getpid()}) runs repurpose {__version__}, the driver "
            f"{job['repurpose_version']}. Install the same version everywhere.")
    if source is None:
        source = _worker_source(os.path.join(job["out"], SOURCE_PREFIX), job["source_sha256"])
    index, start, stop, data = shard["index"], shard["start"], shard["stop"], shard["data"]
    if isinstance(data, _NpyRows):
        data = data.load()
    started = time.perf_counter()
    try:
        features = extract_features(source, data, job["layers"], batch_size=job["batch_size"],
                                    ctx=job["ctx"], pool=job["pool"], progress=False)
    except RepurposeError as err:
        raise type(err)(f"Shard {index} (samples {start}:{stop} of the input): {err}") from err
    files = {}
    for layer in job["layers"]:
        array = features[layer]
        if len(array) != stop - start:
            raise DataError(f"Shard {index} gave {len(array)} rows of {layer!r} for samples "
                            f"{start}:{stop}.")
        name = _shard_file(layer, index)
        nbytes, sha256 = _save_npy(os.path.join(job["out"], name), array)
        files[layer] = {"file": name, "shape": list(array.shape), "nbytes": nbytes,
                        "sha256": sha256}
    logger.debug("Shard %d (%d samples) done in %.2f s in process %d", index, stop - start,
                 time.perf_counter() - started, os.getpid())
    return {"index": index, "start": start, "stop": stop, "files": files}


# ---------------------------------------------------------------------- the driver
def _shard_bounds(n_samples, shard_size):
    return [(i, start, min(start + shard_size, n_samples))
            for i, start in enumerate(range(0, n_samples, shard_size))]


def _prepare_store(out, manifest, plan, source, overwrite):
    """Create ``out`` or check that it is a store of the same call; returns its manifest."""
    manifest_path = os.path.join(out, MANIFEST)
    if os.path.exists(out) and overwrite:
        if not os.path.isfile(manifest_path):
            raise FileExistsError(
                f"out={out!r} exists and is not a feature store (no {MANIFEST}); "
                f"overwrite=True only deletes feature stores. Choose another path.")
        _read_manifest(out)
        shutil.rmtree(out)
        logger.info("Deleted the feature store %s (overwrite=True)", out)
    if os.path.isfile(manifest_path):
        existing = _read_manifest(out)
        _check_same_store(out, existing, manifest)
        manifest = existing
    elif os.path.exists(out):
        if not os.path.isdir(out) or os.listdir(out):
            raise FileExistsError(
                f"out={out!r} exists and is not a feature store (no {MANIFEST}). Choose "
                f"another path or remove it.")
    else:
        parent = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"Folder {parent!r} for out={out!r} does not exist; "
                                    f"create it first.")
        os.makedirs(out)
    os.makedirs(os.path.join(out, "source"), exist_ok=True)
    for layer in manifest["layers"]:
        os.makedirs(os.path.join(out, os.path.dirname(_shard_file(layer, 0))), exist_ok=True)
    prefix = os.path.join(out, SOURCE_PREFIX)
    checkpoint = [f"{prefix}-symbol.json", f"{prefix}-0000.params", f"{prefix}-repurpose.json"]
    if not all(os.path.isfile(p) for p in checkpoint):
        source.save_checkpoint(prefix, overwrite=True)
    if plan.sample_ids is not None and not os.path.isfile(os.path.join(out, SAMPLES)):
        # Checked against the manifest's samples_sha256 by _check_same_store.
        samples = {"ids": plan.sample_ids, "labels": plan.labels, "classes": plan.classes}
        _write_json_atomic(os.path.join(out, SAMPLES), samples)
    _write_json_atomic(manifest_path, manifest)
    return manifest


def extract_to_store(source, data, layers, out, client=None, shard_size=1024, batch_size=64,
                     pool=None, ctx="cpu", image_options=None, overwrite=False, progress=True,
                     retries=2, verify=True):
    """Extract features shard by shard into a resumable store, in-process or on Dask.

    The input is cut into shards of ``shard_size`` samples. Each shard is one task that
    writes one ``.npy`` file per layer; the driver records each file's size and SHA-256 in
    ``out/manifest.json``. Rerunning the same call skips the shards already complete, redoes
    torn ones, and refuses a store written for another model, layer set or input.

    Parameters
    ----------
    source : SourceModel
        The network. It is saved once as a checkpoint under ``out/source/``, and each Dask
        worker loads it from there once (its path travels with the tasks, not the model).
    data : str, path-like, ImageFolder, list of str or ndarray
        An image folder (its path, or a :class:`~repurpose.data.ImageFolder`), a list of
        image file paths, a numpy array, or the path of a ``.npy`` file. On a cluster,
        files are read by the workers, so ``data`` and ``out`` must be paths every worker
        sees (a shared file system); an in-memory array travels with the tasks.
    layers : sequence of str
        Layer names; all come from one forward pass per batch.
    out : str or path-like
        The store folder (created; an existing store of the same call is resumed).
    client : distributed.Client, str or None, default=None
        None extracts in this process; a ``Client`` or a scheduler address
        (``'tcp://host:8786'``) runs one task per shard on the cluster.
    shard_size : int, default=1024
        Samples per shard (the unit of work, retry and resume).
    batch_size : int, default=64
        Samples per forward pass inside a shard.
    pool : {None, 'avg', 'max'}, default=None
        Global pooling of convolutional maps.
    ctx : str, default='cpu'
        Context spec for each task (see :func:`repurpose.context.resolve_contexts`).
    image_options : dict, default=None
        For a folder path or a list of files: ``resize``, ``crop``, ``mean``, ``std``,
        ``grayscale``, as in :class:`~repurpose.data.ImageFolder`.
    overwrite : bool, default=False
        Delete an existing store at ``out`` first and start over.
    progress : bool, default=True
        Show a progress bar over shards (tqdm, on stderr).
    retries : int, default=2
        Dask retries of a shard whose task raised (a worker that dies is handled by Dask
        itself: its shards run again elsewhere).
    verify : bool, default=True
        On resume, check the SHA-256 of every complete shard (not only its size).

    Returns
    -------
    FeatureStore
        The finished store.

    Raises
    ------
    StoreMismatchError
        If ``out`` holds a store of another source model, layer set, pooling, shard size or
        input.
    ClusterError
        If the scheduler does not answer, or a worker lacks repurpose or runs another
        version of it.
    UnknownLayerError, DataError
        As :func:`~repurpose.features.extract_features`, before any shard runs.

    See Also
    --------
    FeatureStore : reading the store, lazily.
    extract_features : in-memory or single-folder extraction.

    Examples
    --------
    >>> import tempfile, os
    >>> from repurpose import SourceModel
    >>> model = SourceModel.from_zoo('digits_cnn')
    >>> X = np.random.RandomState(0).rand(10, 1, 8, 8).astype('float32')
    >>> out = os.path.join(tempfile.mkdtemp(), 'store')
    >>> store = extract_to_store(model, X, ['fc1_relu_fwd'], out, shard_size=4,
    ...                          progress=False)
    >>> store.n_shards, store['fc1_relu_fwd'].shape
    (3, (10, 64))
    """
    # 1. Parameters and input, cheapest first; nothing is written yet.
    layers = _check_layers(source, layers)
    check_choice(pool, "pool", POOLS)
    shard_size = check_positive_int(shard_size, "shard_size")
    batch_size = check_positive_int(batch_size, "batch_size")
    retries = check_positive_int(retries, "retries", minimum=0)
    out = os.fspath(out)
    if client is None:
        resolve_contexts(ctx)  # on a cluster, the workers' devices count
    plan = _plan_input(data, image_options)
    first = plan.shard(0, 1)
    first = first.load() if isinstance(first, _NpyRows) else first
    stream = as_batch_stream(first, 1, name=plan.description)
    stream.peek()
    _check_input_shape(source, stream.sample_shape, plan.description)
    bounds = _shard_bounds(plan.n_samples, shard_size)
    expected = {
        "format": STORE_FORMAT, "format_version": STORE_VERSION,
        "repurpose_version": __version__, "source_sha256": source.sha256,
        "source_checkpoint": SOURCE_PREFIX.replace(os.sep, "/"), "layers": layers,
        "pool": pool, "precision": "float32", "shard_size": shard_size,
        "n_samples": plan.n_samples, "n_shards": len(bounds), "input": plan.identity,
        "shards": [None] * len(bounds), "complete": False,
    }
    if plan.sample_ids is not None:
        samples = {"ids": plan.sample_ids, "labels": plan.labels, "classes": plan.classes}
        expected["input"] = dict(plan.identity, samples_sha256=hashlib.sha256(
            json.dumps(samples, sort_keys=True).encode()).hexdigest())
    # 2. The cluster, before touching the store.
    own_client = False
    if isinstance(client, str):
        client = connect_scheduler(client)
        own_client = True
    try:
        if client is not None:
            check_workers(client)
        # 3. The store: created, or checked against this call and resumed.
        manifest = _prepare_store(out, expected, plan, source, overwrite)
        done = 0
        for i, entry in enumerate(manifest["shards"]):
            if entry is None:
                continue
            if all(_file_ok(out, f, verify) for f in entry["files"].values()):
                done += 1
            else:
                logger.warning("Shard %d of %s is torn or changed on disk; extracting it "
                               "again", i, out)
                manifest["shards"][i] = None
        todo = [b for b in bounds if manifest["shards"][b[0]] is None]
        if todo:
            manifest["complete"] = False
        logger.info("Feature store %s: %d of %d shards complete, %d to extract%s", out,
                    done, len(bounds), len(todo),
                    "" if client is None else f" on {len(client.scheduler_info()['workers'])} "
                                              f"Dask worker(s)")
        job = {"out": os.path.abspath(out), "source_sha256": source.sha256,
               "layers": layers, "pool": pool, "batch_size": batch_size, "ctx": ctx,
               "repurpose_version": __version__}
        _run_shards(job, plan, todo, manifest, out, client, source, retries, progress, done)
    finally:
        if own_client:
            client.close()
    _remove_orphans(out, layers)
    manifest["complete"] = True
    manifest["dims"] = {layer: manifest["shards"][0]["files"][layer]["shape"][1:]
                        for layer in layers}
    _write_json_atomic(os.path.join(out, MANIFEST), manifest)
    logger.info("Feature store %s complete: %d samples x %d layer(s) in %d shards", out,
                plan.n_samples, len(layers), len(bounds))
    return FeatureStore.open(out)


def _remove_orphans(out, layers):
    """Delete temporary shard files left by tasks that died mid-write (every shard is done)."""
    for layer in layers:
        folder = os.path.join(out, os.path.dirname(_shard_file(layer, 0)))
        for name in os.listdir(folder):
            if name.startswith(".shard-") and name.endswith(".tmp"):
                logger.info("Removing %s, left by a task that died while writing it", name)
                try:
                    os.remove(os.path.join(folder, name))
                except FileNotFoundError:
                    pass


def _run_shards(job, plan, todo, manifest, out, client, source, retries, progress, n_done):
    bar = tqdm(total=len(manifest["shards"]), initial=n_done, unit="shard", desc="extract",
               disable=not progress, leave=False)
    manifest_path = os.path.join(out, MANIFEST)
    last_write = time.monotonic()
    started = time.perf_counter()

    def record(entry):
        nonlocal last_write
        manifest["shards"][entry["index"]] = entry
        bar.update(1)
        if time.monotonic() - last_write >= MANIFEST_INTERVAL_S:
            _write_json_atomic(manifest_path, manifest)
            last_write = time.monotonic()

    def shard_of(index, start, stop):
        return {"index": index, "start": start, "stop": stop, "data": plan.shard(start, stop)}

    try:
        if client is None:
            for index, start, stop in todo:
                record(_run_shard(job, shard_of(index, start, stop), source=source))
        else:
            distributed = import_distributed()
            tag = uuid.uuid4().hex[:8]
            futures = [client.submit(_run_shard, job, shard_of(index, start, stop),
                                     key=f"repurpose-shard-{index}-{tag}", retries=retries,
                                     pure=False)
                       for index, start, stop in todo]
            try:
                with client.as_current():  # as_completed needs a current client
                    for future in distributed.as_completed(futures):
                        record(future.result())
            finally:
                client.cancel(futures)
    finally:
        bar.close()
        _write_json_atomic(manifest_path, manifest)
    elapsed = time.perf_counter() - started
    n_rows = sum(stop - start for _, start, stop in todo)
    logger.info("Extracted %d shards (%d samples) in %.2f s (%.1f samples/s)", len(todo),
                n_rows, elapsed, n_rows / max(elapsed, 1e-9))


# ---------------------------------------------------------------------- reading
class ShardedArray:
    """A read-only (N, D) float32 array made of memory-mapped shard files, in input order.

    Indexing reads only the shards it needs: ``a[i]``, ``a[start:stop]``, ``a[[3, 1, 4]]``,
    boolean masks and ``a[rows, cols]`` return in-memory numpy arrays;
    :meth:`iter_batches` walks the rows in order with bounded memory.

    Parameters
    ----------
    paths : list of str
        The shard files, in order.
    shapes : list of tuple of int
        Shape of each shard's array.

    Attributes
    ----------
    shape : tuple of int
    dtype : numpy.dtype
    ndim : int

    Examples
    --------
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> paths = [os.path.join(folder, f'{i}.npy') for i in range(2)]
    >>> np.save(paths[0], np.zeros((2, 3), np.float32))
    >>> np.save(paths[1], np.ones((1, 3), np.float32))
    >>> a = ShardedArray(paths, [(2, 3), (1, 3)])
    >>> a.shape, a[1:3].tolist(), a[[2, 0], 0].tolist()
    ((3, 3), [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], [1.0, 0.0])
    """

    def __init__(self, paths, shapes):
        self._paths = list(paths)
        shapes = [tuple(int(s) for s in shape) for shape in shapes]
        self._offsets = np.concatenate([[0], np.cumsum([s[0] for s in shapes])]).astype(np.int64)
        self.shape = (int(self._offsets[-1]),) + (shapes[0][1:] if shapes else (0,))
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)
        self._maps = {}

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"ShardedArray(shape={self.shape}, n_shards={len(self._paths)})"

    def _shard(self, i):
        if i not in self._maps:
            self._maps[i] = np.load(self._paths[i], mmap_mode="r", allow_pickle=False)
        return self._maps[i]

    def _rows(self, start, stop):
        """Rows start:stop (0 <= start <= stop <= N) as one in-memory array."""
        parts = []
        first = max(int(np.searchsorted(self._offsets, start, side="right")) - 1, 0)
        i = first
        while i < len(self._paths) and self._offsets[i] < stop:
            lo = max(start, self._offsets[i]) - self._offsets[i]
            hi = min(stop, self._offsets[i + 1]) - self._offsets[i]
            parts.append(self._shard(i)[lo:hi])
            i += 1
        if not parts:
            return np.empty((0,) + self.shape[1:], self.dtype)
        return np.array(parts[0]) if len(parts) == 1 else np.concatenate(parts, axis=0)

    def _take(self, rows):
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if rows.shape != (len(self),):
                raise IndexError(f"A boolean index must have shape ({len(self)},), got "
                                 f"{rows.shape}.")
            rows = np.flatnonzero(rows)
        if rows.dtype.kind not in "iu":
            raise IndexError(f"Row indices must be integers, got dtype {rows.dtype}.")
        rows = rows.astype(np.int64).ravel()
        rows = np.where(rows < 0, rows + len(self), rows)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"Row index out of range for {len(self)} rows.")
        result = np.empty((rows.size,) + self.shape[1:], self.dtype)
        shard_of = np.searchsorted(self._offsets, rows, side="right") - 1
        for i in np.unique(shard_of):
            mask = shard_of == i
            result[mask] = self._shard(int(i))[rows[mask] - self._offsets[i]]
        return result

    def __getitem__(self, key):
        if isinstance(key, tuple):
            rows, rest = key[0], key[1:]
            picked = self[rows]
            return picked[(slice(None),) + rest] if np.ndim(picked) == self.ndim \
                else picked[rest]
        if isinstance(key, (int, np.integer)):
            index = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= index < len(self):
                raise IndexError(f"Row {int(key)} out of range for {len(self)} rows.")
            return self._rows(index, index + 1)[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return self._rows(start, max(start, stop))
            return self._take(np.arange(start, stop, step))
        return self._take(key)

    def __array__(self, dtype=None, copy=None):
        array = self._rows(0, len(self))
        return array if dtype is None else array.astype(dtype)

    def iter_batches(self, batch_size=1024):
        """Yield the rows in order, ``batch_size`` at a time.

        Parameters
        ----------
        batch_size : int, default=1024

        Yields
        ------
        ndarray of shape (n, D)
            In-memory float32 rows; only one batch is held at a time.

        Examples
        --------
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), 's.npy')
        >>> np.save(path, np.arange(10, dtype=np.float32).reshape(5, 2))
        >>> [b.shape for b in ShardedArray([path], [(5, 2)]).iter_batches(2)]
        [(2, 2), (2, 2), (1, 2)]
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        for start in range(0, len(self), batch_size):
            yield self._rows(start, min(start + batch_size, len(self)))


class FeatureStore:
    """Features written by :func:`extract_to_store`, read lazily from their shard files.

    Open one with :meth:`open`. ``store[layer]`` is a :class:`ShardedArray` of shape
    (n_samples, D) in input order; nothing is read until it is indexed. Heads trained by
    stochastic gradient (scikit-learn's ``SGDClassifier`` with ``partial_fit``, i.e.
    logistic regression or a linear SVM) can be fitted batch by batch with
    :meth:`iter_batches`, so 1M x 512 features never need to be in memory at once.

    Parameters
    ----------
    path : str
        The store folder.
    manifest : dict
        Its parsed ``manifest.json``.

    Attributes
    ----------
    layers : list of str
    n_samples : int
    n_shards : int
    source_sha256 : str
        SHA-256 of the source model that wrote it.
    sample_ids : list of str or range
        File paths (image inputs, relative to an image folder's root) or row numbers.
    labels : ndarray of shape (n_samples,) or None
        Class indices of an image folder's images (None for other inputs).
    classes : list of str or None
        An image folder's class names.

    Examples
    --------
    >>> import tempfile, os
    >>> from sklearn.linear_model import SGDClassifier
    >>> from repurpose import SourceModel
    >>> model = SourceModel.from_zoo('digits_cnn')
    >>> X = np.random.RandomState(0).rand(40, 1, 8, 8).astype('float32')
    >>> y = np.arange(40) % 2
    >>> out = os.path.join(tempfile.mkdtemp(), 'store')
    >>> _ = extract_to_store(model, X, ['fc1_relu_fwd'], out, shard_size=16, progress=False)
    >>> store = FeatureStore.open(out)
    >>> head = SGDClassifier(loss='log_loss', random_state=0)
    >>> for rows, Xb in store.iter_batches(batch_size=8):
    ...     head = head.partial_fit(Xb, y[rows], classes=[0, 1])
    >>> head.predict(store['fc1_relu_fwd'][:3]).shape
    (3,)
    """

    def __init__(self, path, manifest):
        self.path = os.fspath(path)
        self._manifest = manifest
        self.layers = list(manifest["layers"])
        self.n_samples = int(manifest["n_samples"])
        self.n_shards = int(manifest["n_shards"])
        self.shard_size = int(manifest["shard_size"])
        self.pool = manifest["pool"]
        self.source_sha256 = manifest["source_sha256"]
        self.sample_ids = range(self.n_samples)
        self.labels = None
        self.classes = None
        samples_path = os.path.join(self.path, SAMPLES)
        if os.path.isfile(samples_path):
            with open(samples_path, encoding="utf-8") as handle:
                samples = json.load(handle)
            self.sample_ids = samples["ids"]
            if samples.get("labels") is not None:
                self.labels = np.asarray(samples["labels"], dtype=np.int64)
            self.classes = samples.get("classes")
        self._arrays = {}

    @classmethod
    def open(cls, path):
        """Open the finished store at ``path`` (checks that every shard file is there).

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        FeatureStore

        Raises
        ------
        FileNotFoundError
            If ``path`` has no manifest, or a shard file is missing.
        StoreMismatchError
            If the store is unfinished, damaged (a file of the wrong size) or of a newer
            format.

        Examples
        --------
        >>> FeatureStore.open('/nonexistent/store')  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: No feature store at '/nonexistent/store' ...
        """
        path = os.fspath(path)
        if not os.path.isfile(os.path.join(path, MANIFEST)):
            raise FileNotFoundError(f"No feature store at {path!r} (no {MANIFEST}). Write one "
                                    f"with repurpose.features.extract_to_store.")
        manifest = _read_manifest(path)
        missing = [i for i, entry in enumerate(manifest["shards"]) if entry is None]
        if missing or not manifest.get("complete"):
            raise StoreMismatchError(
                f"The feature store {path!r} is unfinished: {len(missing)} of "
                f"{manifest['n_shards']} shards missing (shards {brief_list(missing)}). Rerun "
                f"the same extract_to_store call to finish it.")
        for entry in manifest["shards"]:
            for layer, info in entry["files"].items():
                file = os.path.join(path, info["file"])
                if not os.path.isfile(file):
                    raise FileNotFoundError(
                        f"Shard file {file!r} of the feature store is missing. Rerun the "
                        f"extract_to_store call that wrote {path!r} to redo it.")
                if os.path.getsize(file) != info["nbytes"]:
                    raise StoreMismatchError(
                        f"Shard file {file!r} has {os.path.getsize(file)} bytes, the "
                        f"manifest says {info['nbytes']}: it is torn. Rerun the "
                        f"extract_to_store call that wrote {path!r} to redo it.")
        return cls(path, manifest)

    def __repr__(self):
        return (f"FeatureStore({self.path!r}, n_samples={self.n_samples}, "
                f"layers={self.layers}, n_shards={self.n_shards})")

    def __contains__(self, layer):
        return layer in self.layers

    def __getitem__(self, layer):
        if layer not in self.layers:
            raise UnknownLayerError(
                f"The feature store {self.path!r} has no layer {layer!r}. "
                f"{suggest(layer, self.layers)} (layers: {brief_list(self.layers)})"
                .replace(". (", ". ").replace("  ", " "))
        if layer not in self._arrays:
            shards = self._manifest["shards"]
            self._arrays[layer] = ShardedArray(
                [os.path.join(self.path, s["files"][layer]["file"]) for s in shards],
                [s["files"][layer]["shape"] for s in shards])
        return self._arrays[layer]

    @property
    def dims(self):
        """dict of str -> int: the number of features of each layer."""
        return {layer: int(np.prod(self[layer].shape[1:])) for layer in self.layers}

    def to_numpy(self, layer):
        """Return all features of ``layer`` as one in-memory array.

        Parameters
        ----------
        layer : str

        Returns
        -------
        ndarray of shape (n_samples, n_features)

        Examples
        --------
        >>> store = FeatureStore.open(out)  # doctest: +SKIP
        >>> store.to_numpy('pool5').shape  # doctest: +SKIP
        (1000000, 512)
        """
        return np.asarray(self[layer])

    def iter_batches(self, batch_size=1024, layers=None):
        """Yield ``(rows, X)`` batches in input order, layers concatenated column-wise.

        Parameters
        ----------
        batch_size : int, default=1024
        layers : list of str, default=None
            Layers to concatenate (default: all, in the store's order).

        Yields
        ------
        rows : slice
            The batch's rows, to index labels with.
        X : ndarray of shape (n, sum of widths)

        Examples
        --------
        >>> for rows, X in store.iter_batches(4096):  # doctest: +SKIP
        ...     head.partial_fit(X, y[rows], classes=classes)
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        layers = self.layers if layers is None else list(layers)
        arrays = [self[layer] for layer in layers]
        for start in range(0, self.n_samples, batch_size):
            stop = min(start + batch_size, self.n_samples)
            parts = [a._rows(start, stop).reshape(stop - start, -1) for a in arrays]
            yield slice(start, stop), parts[0] if len(parts) == 1 else np.hstack(parts)

    def verify(self):
        """Check the SHA-256 of every shard file against the manifest.

        Raises
        ------
        StoreMismatchError
            Naming the first file whose bytes changed.

        Examples
        --------
        >>> FeatureStore.open(out).verify()  # doctest: +SKIP
        """
        for entry in self._manifest["shards"]:
            for info in entry["files"].values():
                if not _file_ok(self.path, info, check_sha256=True):
                    raise StoreMismatchError(
                        f"Shard file {os.path.join(self.path, info['file'])!r} does not match "
                        f"its SHA-256 in the manifest. Rerun the extract_to_store call that "
                        f"wrote {self.path!r} to redo it.")

    def load_source(self):
        """Load the source model that wrote this store (from ``source/`` inside it).

        Returns
        -------
        SourceModel

        Examples
        --------
        >>> FeatureStore.open(out).load_source()  # doctest: +SKIP
        SourceModel('digits_cnn', ...)
        """
        from ..source import SourceModel

        return SourceModel.from_checkpoint(os.path.join(self.path, SOURCE_PREFIX))
