"""Reading a feature store: :class:`FeatureStore` and its lazy :class:`ShardedArray` columns.

``store[layer]`` is the (N, D) features in input order, backed by memory-mapped shard
files; nothing is read until it is indexed.

Why ``.npy`` shards and not Zarr: one ``.npy`` file per shard and layer is exactly the unit
of work that succeeds or fails; it is written with ``os.replace`` (atomic on POSIX), checked
with one SHA-256, read with ``np.load(mmap_mode='r')`` without a new dependency, and a shard
of 1,024 x 512 float32 (2 MiB) is a sensible object-store and file-system object. Zarr would
add a dependency and chunk files whose atomicity is per chunk, not per shard.
"""
import json
import os

import numpy as np

from .._validation import brief_list, check_positive_int, suggest
from ..exceptions import StoreMismatchError, UnknownLayerError
from ..source import SourceModel
from ._manifest import MANIFEST, SAMPLES, SOURCE_PREFIX, file_ok, read_manifest

__all__ = ["FeatureStore", "ShardedArray"]


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
    >>> from repurpose.features import extract_to_store
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
        manifest = read_manifest(path)
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
                if not file_ok(self.path, info, check_sha256=True):
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
        return SourceModel.from_checkpoint(os.path.join(self.path, SOURCE_PREFIX))
