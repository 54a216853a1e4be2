"""Sharded feature extraction, in-process or on a Dask cluster, into a resumable store.

:func:`extract_to_store` cuts the input (:mod:`._inputs`) into shards of ``shard_size``
samples. Each shard is one task (:func:`._worker.run_shard`): load the source model (once
per worker process, from a checkpoint saved in the store and keyed by its SHA-256), extract
the shard's features with :func:`~repurpose.features.extract_features`, and write one
``.npy`` file per layer through a temporary file and ``os.replace``. Workers return each
file's size and SHA-256; only the driver (this module) writes ``manifest.json``
(:mod:`._manifest`, atomically), so a task that dies leaves at worst an orphan temporary
file (removed by the next run, which holds the store's lock), and a retried task writes the
same bytes again. :class:`FeatureStore`
(:mod:`._reader`) reads the store back.
"""
import logging
import os
import shutil
import time
import uuid

from .._dask import check_workers, connect_scheduler, import_distributed
from .._progress import tqdm
from .._validation import check_choice, check_positive_int
from .._version import __version__
from ..context import resolve_contexts
from ..data import as_batch_stream
from ..persist import FolderLock, explain_full_disk, remove_temporaries
from ._checks import POOLS, check_input_shape, check_layers
from ._inputs import load_part, plan_input
from ._manifest import (MANIFEST, SAMPLES, SOURCE_PREFIX, check_same_store, file_ok,
                        new_manifest, read_manifest, samples_document, shard_file,
                        write_store_json)
from ._reader import FeatureStore
from ._worker import run_shard

logger = logging.getLogger(__name__)

__all__ = ["extract_to_store"]

#: Seconds between manifest writes while shards complete (and always at the end).
MANIFEST_INTERVAL_S = 1.0


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
        read_manifest(out)
        shutil.rmtree(out)
        logger.info("Deleted the feature store %s (overwrite=True)", out)
    if os.path.isfile(manifest_path):
        existing = read_manifest(out)
        check_same_store(out, existing, manifest)
        manifest = existing
    elif os.path.exists(out):
        if not os.path.isdir(out) or os.listdir(out):
            raise FileExistsError(
                f"out={out!r} exists and is not a feature store (no {MANIFEST}). Choose "
                f"another path or remove it.")
    else:
        os.makedirs(out)
    os.makedirs(os.path.join(out, "source"), exist_ok=True)
    for layer in manifest["layers"]:
        os.makedirs(os.path.join(out, os.path.dirname(shard_file(layer, 0))), exist_ok=True)
    # What writers killed mid-write left (temporary shard, manifest and checkpoint files);
    # only now, under the store's lock, can no running writer own them.
    _remove_temporaries(out, manifest["layers"])
    prefix = os.path.join(out, SOURCE_PREFIX)
    checkpoint = [f"{prefix}-symbol.json", f"{prefix}-0000.params", f"{prefix}-repurpose.json"]
    if not all(os.path.isfile(p) for p in checkpoint):
        source.save_checkpoint(prefix, overwrite=True)
    samples = samples_document(plan)
    if samples is not None and not os.path.isfile(os.path.join(out, SAMPLES)):
        # Checked against the manifest's samples_sha256 by check_same_store.
        write_store_json(os.path.join(out, SAMPLES), samples)
    write_store_json(manifest_path, manifest)
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
        ``normalize``, ``grayscale``, as in :class:`~repurpose.data.ImageFolder`.
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
    LockedError
        If another process (or thread) is writing the store at ``out``. The store's
        :class:`~repurpose.persist.FolderLock` is held for the whole call, and temporary
        files a killed run left in the store are removed under it.
    OSError
        If the disk has no room: the message names the file and the free space; rerun the
        call once there is room to resume.
    UnknownLayerError, DataError
        As :func:`~repurpose.features.extract_features`, before any shard runs.

    See Also
    --------
    FeatureStore : reading the store, lazily.
    extract_features : in-memory or single-folder extraction.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from repurpose import SourceModel
    >>> model = SourceModel.from_zoo('digits_cnn')
    >>> X = np.random.RandomState(0).rand(10, 1, 8, 8).astype('float32')
    >>> out = os.path.join(tempfile.mkdtemp(), 'store')
    >>> store = extract_to_store(model, X, ['fc1_relu_fwd'], out, shard_size=4,
    ...                          progress=False)
    >>> store.n_shards, store['fc1_relu_fwd'].shape
    (3, (10, 64))
    """
    # Long by its docstring; the body is the three steps below.
    # 1. Parameters and input, cheapest first; nothing is written yet.
    layers = check_layers(source, layers)
    check_choice(pool, "pool", POOLS)
    shard_size = check_positive_int(shard_size, "shard_size")
    batch_size = check_positive_int(batch_size, "batch_size")
    retries = check_positive_int(retries, "retries", minimum=0)
    out = os.fspath(out)
    if client is None:
        resolve_contexts(ctx)  # on a cluster, the workers' devices count
    plan = plan_input(data, image_options)
    stream = as_batch_stream(load_part(plan.shard(0, 1)), 1, name=plan.description)
    stream.peek()
    check_input_shape(source, stream.sample_shape, plan.description)
    bounds = _shard_bounds(plan.n_samples, shard_size)
    expected = new_manifest(source.sha256, layers, pool, shard_size, plan, len(bounds))
    # 2. The cluster, before touching the store.
    own_client = isinstance(client, str)
    if own_client:
        client = connect_scheduler(client)
    try:
        if client is not None:
            check_workers(client)
        # 3. The store, locked for the whole write: created, or checked against this call
        # and resumed.
        _check_parent(out)
        with FolderLock(out, what="feature store"), explain_full_disk(out):
            manifest = _prepare_store(out, expected, plan, source, overwrite)
            todo, done = _shards_to_do(out, manifest, bounds, verify)
            logger.info("Feature store %s: %d of %d shards complete, %d to extract%s", out,
                        done, len(bounds), len(todo), "" if client is None else
                        f" on {len(client.scheduler_info()['workers'])} Dask worker(s)")
            job = {"out": os.path.abspath(out), "source_sha256": source.sha256,
                   "layers": layers, "pool": pool, "batch_size": batch_size, "ctx": ctx,
                   "repurpose_version": __version__}
            _run_shards(job, plan, todo, manifest, out, client, source, retries, progress,
                        done)
            _remove_temporaries(out, layers)  # of tasks that died on a worker in this run
            manifest["complete"] = True
            manifest["dims"] = {layer: manifest["shards"][0]["files"][layer]["shape"][1:]
                                for layer in layers}
            write_store_json(os.path.join(out, MANIFEST), manifest)
    finally:
        if own_client:
            client.close()
    logger.info("Feature store %s complete: %d samples x %d layer(s) in %d shards", out,
                plan.n_samples, len(layers), len(bounds))
    return FeatureStore.open(out)


def _check_parent(out):
    """Raise FileNotFoundError, naming ``out``, if the folder it goes in does not exist."""
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"Folder {parent!r} for out={out!r} does not exist; "
                                f"create it first.")


def _shards_to_do(out, manifest, bounds, verify):
    """The bounds of the shards still to extract, and how many are done.

    A shard recorded in ``manifest`` whose files are torn or changed on disk (by size, and
    by SHA-256 when ``verify``) is dropped from it, to be extracted again.
    """
    done = 0
    for i, entry in enumerate(manifest["shards"]):
        if entry is None:
            continue
        if all(file_ok(out, f, verify) for f in entry["files"].values()):
            done += 1
        else:
            logger.warning("Shard %d of %s is torn or changed on disk; extracting it again",
                           i, out)
            manifest["shards"][i] = None
    todo = [b for b in bounds if manifest["shards"][b[0]] is None]
    if todo:
        manifest["complete"] = False
    return todo, done


def _remove_temporaries(out, layers):
    """Delete the temporary files left in the store by writers that died mid-write (call
    it holding the store's lock, when no task of this run is writing)."""
    for folder in [out, os.path.join(out, "source")] + [
            os.path.join(out, os.path.dirname(shard_file(layer, 0))) for layer in layers]:
        remove_temporaries(folder)


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
            write_store_json(manifest_path, manifest)
            last_write = time.monotonic()

    def shard_of(index, start, stop):
        return {"index": index, "start": start, "stop": stop, "data": plan.shard(start, stop)}

    try:
        if client is None:
            for index, start, stop in todo:
                record(run_shard(job, shard_of(index, start, stop), source=source))
        else:
            distributed = import_distributed()
            tag = uuid.uuid4().hex[:8]
            futures = [client.submit(run_shard, job, shard_of(index, start, stop),
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
        write_store_json(manifest_path, manifest)
    elapsed = time.perf_counter() - started
    n_rows = sum(stop - start for _, start, stop in todo)
    logger.info("Extracted %d shards (%d samples) in %.2f s (%.1f samples/s)", len(todo),
                n_rows, elapsed, n_rows / max(elapsed, 1e-9))
