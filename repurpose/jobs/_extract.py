"""The extraction runner behind ``repurpose extract``: features of a model's layers for the
samples a user names, to ``.npy`` files (or a sharded, resumable store), with the file and
label of every sample beside them."""
import contextlib
import csv
import dataclasses
import os

import numpy as np

from ..data import BUILTIN_DATASETS, ImageFiles, ImageFolder, load_builtin
from ..features import extract_features, extract_to_store
from ..persist import FolderLock, atomic_write
from ._predict import ImageOptions, _images_in, check_sample_shape

__all__ = ["ExtractResult", "extract_job", "SAMPLES_NAME"]

#: The table of samples (index, file, label) written beside the features.
SAMPLES_NAME = "samples.csv"


@dataclasses.dataclass
class ExtractResult:
    """What :func:`extract_job` wrote.

    Parameters
    ----------
    shapes : dict of str -> tuple
        ``(n_samples, n_features)`` per layer.
    n_shards : int, default=0
        Shards of a store (0 for plain ``.npy`` files).
    samples_file : str, default=None
        The file in the output folder that names every sample's file and label.

    Examples
    --------
    See :func:`extract_job`.

    >>> ExtractResult({'fc1_relu_fwd': (10, 64)}).n_shards
    0
    """

    shapes: dict
    n_shards: int = 0
    samples_file: str = None


def _open(data, options):
    """``(input for the engine, files, labels)`` of a ``--data`` string."""
    if data in BUILTIN_DATASETS:
        X, y = load_builtin(data)
        return X, None, y
    if data.lower().endswith(".npy") and os.path.isfile(data):
        return np.load(data, mmap_mode="r", allow_pickle=False), None, None
    if os.path.isdir(data):
        flat = _images_in(data)
        if flat:
            return ImageFiles(flat, **options), [os.path.relpath(p, data) for p in flat], None
        folder = ImageFolder(data, **options)
        labels = np.array(folder.classes)[folder.targets]
        return folder, [os.path.relpath(p, data) for p in folder.paths], labels
    raise FileNotFoundError(
        f"--data {data!r} is neither a .npy file, an image folder nor a built-in data set "
        f"({', '.join(BUILTIN_DATASETS)}).")


def extract_job(model, data, layers, out, store=False, image_options=None, scheduler=None,
                shard_size=None, batch_size=64, ctx="cpu", pool=None, precision="float32",
                overwrite=False, progress=True):
    """Extract ``layers`` of ``model`` for ``data`` into the folder ``out``.

    Parameters
    ----------
    model : SourceModel
    data : str
        A built-in data set name, a ``.npy`` file, or an image folder (one sub-folder per
        class, or flat).
    layers : list of str
    out : str
        The folder to write: one ``.npy`` per layer and ``samples.csv``; with ``store`` a
        sharded store (:func:`~repurpose.features.extract_to_store`), which lists its
        samples in its own ``samples.json``.
    store, image_options, scheduler, shard_size, batch_size, ctx, pool, precision, overwrite,
    progress
        As the command line's options.

    Returns
    -------
    ExtractResult

    Raises
    ------
    DataError
        If the samples do not fit the model (naming ``--grayscale`` or ``--resize``).
    LockedError
        If another process is writing to ``out`` (naming it).

    Examples
    --------
    >>> import os, tempfile
    >>> from repurpose import SourceModel
    >>> out = os.path.join(tempfile.mkdtemp(), 'features')
    >>> result = extract_job(SourceModel.from_zoo('digits_cnn'), 'digits', ['fc1_relu_fwd'],
    ...                      out, progress=False)
    >>> result.shapes, sorted(os.listdir(out))
    ({'fc1_relu_fwd': (1797, 64)}, ['fc1_relu_fwd.npy', 'features.json', 'samples.csv'])
    """
    options = ImageOptions.merged(image_options or {})
    source, files, labels = _open(data, options)
    first = source[0][0] if isinstance(source, ImageFiles) else np.asarray(source[:1])[0]
    check_sample_shape(np.asarray(first)[None], model.input_shape)
    # Held from before the folder is looked at to the end: a second writer is refused. (In a
    # folder that does not exist, the writers below say so.)
    lock = FolderLock(out, what="feature store" if store else "features folder") \
        if os.path.isdir(os.path.dirname(os.path.abspath(out))) else contextlib.nullcontext()
    with lock:
        if store:
            store_options = None
            if isinstance(source, np.memmap):
                source = data  # read by each task where it runs, not shipped
            elif isinstance(source, ImageFiles) and not isinstance(source, ImageFolder):
                source, store_options = source.paths, dict(options)  # a list of files
            result = extract_to_store(model, source, layers, out, client=scheduler,
                                      shard_size=shard_size or 1024, batch_size=batch_size,
                                      pool=pool, ctx=ctx, image_options=store_options,
                                      overwrite=overwrite, progress=progress)
            shapes = {layer: (result[layer].shape[0], result.dims[layer]) for layer in
                      result.layers}
            return ExtractResult(shapes, result.n_shards, "samples.json")
        features = extract_features(model, source, layers, batch_size=batch_size, ctx=ctx,
                                    pool=pool, out=out, overwrite=overwrite, progress=progress,
                                    precision=precision)
        shapes = {layer: array.shape for layer, array in features.items()}
        n = len(next(iter(features.values())))
        path = os.path.join(out, SAMPLES_NAME)

        def write(tmp):
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(["index", "file", "label"])
                for i in range(n):
                    writer.writerow([i, "" if files is None else files[i],
                                     "" if labels is None else labels[i]])
        atomic_write(path, write, overwrite=True)
        return ExtractResult(shapes, 0, SAMPLES_NAME)
