"""One shard of sharded extraction, as a task: load the model, extract, write the files.

:func:`run_shard` runs on a Dask worker or in the driver's process. On a worker the source
model is loaded from the checkpoint saved in the store, once per process (a small cache
keyed by SHA-256, :data:`WORKER_CACHE_SIZE`); each layer's features go to one ``.npy`` file
through a temporary sibling and ``os.replace``, and the task returns the files' sizes and
SHA-256 for the driver to record. A task that dies leaves at worst an orphan temporary
file; a retried task writes the same bytes again.
"""
import hashlib
import io
import logging
import os
import threading
import time
from collections import OrderedDict

import numpy as np

from .._version import __version__
from ..exceptions import ClusterError, DataError, RepurposeError, StoreMismatchError
from ..persist import atomic_write
from ..source import SourceModel
from ._extract import extract_features
from ._inputs import load_part
from ._manifest import SOURCE_PREFIX, shard_file

logger = logging.getLogger(__name__)

__all__ = ["run_shard", "worker_source", "save_npy", "WORKER_CACHE_SIZE"]

#: Source models kept loaded per worker process (keyed by SHA-256).
WORKER_CACHE_SIZE = 2
_WORKER_MODELS = OrderedDict()
_WORKER_LOCK = threading.Lock()


def worker_source(prefix, sha256):
    """The source model of a task, loaded once per worker process (keyed by SHA-256)."""
    with _WORKER_LOCK:
        if sha256 in _WORKER_MODELS:
            _WORKER_MODELS.move_to_end(sha256)
            return _WORKER_MODELS[sha256]
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


def save_npy(path, array):
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


def run_shard(job, shard, source=None):
    """Extract one shard and write its files; returns the shard's manifest entry.

    Runs on a Dask worker (``source=None``: loaded from the store's checkpoint) or in the
    driver's process (``source`` given).
    """
    if job["repurpose_version"] != __version__:
        raise ClusterError(
            f"This worker (process {os.getpid()}) runs repurpose {__version__}, the driver "
            f"{job['repurpose_version']}. Install the same version everywhere.")
    if source is None:
        source = worker_source(os.path.join(job["out"], SOURCE_PREFIX), job["source_sha256"])
    index, start, stop = shard["index"], shard["start"], shard["stop"]
    data = load_part(shard["data"])
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
        name = shard_file(layer, index)
        nbytes, sha256 = save_npy(os.path.join(job["out"], name), array)
        files[layer] = {"file": name, "shape": list(array.shape), "nbytes": nbytes,
                        "sha256": sha256}
    logger.debug("Shard %d (%d samples) done in %.2f s in process %d", index, stop - start,
                 time.perf_counter() - started, os.getpid())
    return {"index": index, "start": start, "stop": stop, "files": files}
