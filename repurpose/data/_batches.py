"""Turn what users hold (numpy arrays, ``mx.nd.NDArray``, ``mx.io.DataIter``, Gluon
``Dataset`` / ``DataLoader``, :class:`~repurpose.data.ImageFolder`) into one stream of float32
numpy batches, and check the first batch before any long work starts.
"""
import logging

import mxnet as mx
import numpy as np
from mxnet.gluon.data import DataLoader, Dataset

from .._validation import check_finite_batch, check_positive_int
from ..exceptions import DataError
from ._image_folder import ImageFiles

logger = logging.getLogger(__name__)

__all__ = ["BatchStream", "as_batch_stream"]

SUPPORTED = ("a numpy array, an mx.nd.NDArray, an mx.io.DataIter, a Gluon Dataset or "
             "DataLoader, or a repurpose.data.ImageFolder")


def _first_field(item):
    """Datasets and loaders yield ``(data, label)`` pairs or bare data; keep the data."""
    if isinstance(item, (tuple, list)):
        if not item:
            raise DataError("A data batch is an empty tuple; expected (data, label) or data.")
        return item[0]
    return item


def _to_numpy(x):
    if isinstance(x, mx.nd.NDArray):
        return x.asnumpy()
    return np.asarray(x)


class BatchStream:
    """Batches of samples as float32 numpy arrays, with what is known about them up front.

    Build it with :func:`as_batch_stream`. Iterating yields ``(start, batch)`` pairs, where
    ``start`` is the index of the batch's first sample. Every batch is checked (numeric,
    finite, a sample axis, the first batch's sample shape) and converted to contiguous
    float32; each pass over the stream starts the source again.

    Parameters
    ----------
    make_iter : callable
        ``make_iter()`` returns a new iterator over the raw batches (numpy arrays or
        ``mx.nd.NDArray`` with the sample axis first).
    n_samples : int or None
        Number of samples, if the source tells (arrays, datasets); None for iterators.
    n_batches : int or None
        Number of batches, if known.
    description : str
        How error messages call the input (e.g. ``'data'``).

    Attributes
    ----------
    n_samples : int or None
        Number of samples, if the source tells (arrays, datasets); None for iterators.
    n_batches : int or None
        Number of batches, if known.
    sample_shape : tuple of int or None
        Shape of one sample, read from the first batch (None until :meth:`peek` or the
        first iteration).

    Raises
    ------
    DataError
        From :meth:`peek` or iteration: no batch at all, an empty batch, a non-numeric
        dtype, NaN or inf, or a sample shape that differs from the first batch's.

    Examples
    --------
    >>> stream = as_batch_stream(np.zeros((5, 1, 8, 8)), batch_size=2)
    >>> stream.n_samples, stream.n_batches, stream.sample_shape
    (5, 3, None)
    >>> stream.peek().dtype, stream.sample_shape
    (dtype('float32'), (1, 8, 8))
    >>> [(start, len(batch)) for start, batch in stream]
    [(0, 2), (2, 2), (4, 1)]

    Any callable giving batches will do:

    >>> def batches():
    ...     yield np.ones((2, 3))
    ...     yield np.full((1, 3), np.nan)
    >>> list(BatchStream(batches, None, None, 'my_loader'))
    Traceback (most recent call last):
    ...
    repurpose.exceptions.DataError: my_loader[2:3] contains NaN values ...
    """

    def __init__(self, make_iter, n_samples, n_batches, description):
        self._make_iter = make_iter
        self.n_samples = n_samples
        self.n_batches = n_batches
        self.description = description
        self._first = None
        self.sample_shape = None

    def peek(self):
        """Read and check the first batch (cached, so it is read once) and return it."""
        if self._first is None:
            iterator = self._make_iter()
            try:
                first = next(iterator)
            except StopIteration:
                raise DataError(f"{self.description} is empty: it yielded no batch. Pass at "
                                f"least 1 sample.") from None
            first = self._check(first, 0)
            self._first = (first, iterator)
            self.sample_shape = tuple(first.shape[1:])
        return self._first[0]

    def _check(self, batch, start):
        batch = _to_numpy(batch)
        if batch.dtype.kind not in "biuf":
            raise DataError(
                f"{self.description} has dtype {batch.dtype}; expected numeric data (float32 "
                f"images of shape (n_samples, channels, height, width))."
            )
        if batch.ndim < 2:
            raise DataError(
                f"{self.description} gives batches of shape {batch.shape}; expected an array "
                f"with a sample axis first, e.g. (n_samples, channels, height, width)."
            )
        if len(batch) == 0:
            raise DataError(f"{self.description} yielded an empty batch (0 samples).")
        check_finite_batch(batch, f"{self.description}[{start}:{start + len(batch)}]")
        if self.sample_shape is not None and tuple(batch.shape[1:]) != self.sample_shape:
            raise DataError(
                f"{self.description}[{start}:{start + len(batch)}] has samples of shape "
                f"{tuple(batch.shape[1:])}, but earlier samples had {self.sample_shape}. All "
                f"samples must have the same shape (resize or crop images to one size)."
            )
        return np.ascontiguousarray(batch, dtype=np.float32)

    def __iter__(self):
        first = self.peek()
        _, iterator = self._first
        self._first = None  # a second pass restarts the source
        start = 0
        yield start, first
        start += len(first)
        for batch in iterator:
            batch = self._check(batch, start)
            yield start, batch
            start += len(batch)


def _array_stream(array, batch_size, description):
    n = len(array)
    if n == 0:
        raise DataError(f"{description} is empty (shape {array.shape}). Pass at least 1 sample.")
    if isinstance(array, np.ndarray) and not isinstance(array, np.memmap):
        if array.dtype.kind not in "biuf":
            raise DataError(f"{description} has dtype {array.dtype}; expected numeric data.")
        # In memory: check every value once, before the first forward pass.
        check_finite_batch(array, description)

    def make_iter():
        for start in range(0, n, batch_size):
            yield array[start:start + batch_size]

    return BatchStream(make_iter, n, -(-n // batch_size), description)


def _dataiter_stream(data_iter, description):
    def make_iter():
        data_iter.reset()
        for batch in data_iter:
            x = batch.data[0]
            pad = batch.pad or 0
            yield x[: x.shape[0] - pad] if pad else x

    n = getattr(data_iter, "num_data", None)
    return BatchStream(make_iter, n, None, description)


def _loader_stream(loader, description):
    def make_iter():
        for item in loader:
            yield _first_field(item)

    dataset = getattr(loader, "_dataset", None)
    n = len(dataset) if dataset is not None and hasattr(dataset, "__len__") else None
    try:
        n_batches = len(loader)
    except TypeError:
        n_batches = None
    return BatchStream(make_iter, n, n_batches, description)


def _image_stream(images, batch_size, description):
    """Images read in order; a size that differs from the first image's names both files
    (a DataLoader would stack them with a raw numpy error)."""
    def make_iter():
        batch = []
        for image in images._images():
            batch.append(image)
            if len(batch) == batch_size:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)

    n = len(images)
    return BatchStream(make_iter, n, -(-n // batch_size), description)


def as_batch_stream(data, batch_size=64, name="data"):
    """Wrap ``data`` in a :class:`BatchStream` of float32 numpy batches.

    Parameters
    ----------
    data : ndarray, mx.nd.NDArray, mx.io.DataIter, Dataset or DataLoader
        Arrays are split into batches of ``batch_size``; a ``DataIter`` or ``DataLoader``
        keeps its own batches (padding of a ``DataIter``'s last batch is removed); a
        ``Dataset`` is read in order with a ``DataLoader`` of ``batch_size``; an
        :class:`~repurpose.data.ImageFolder` or :class:`~repurpose.data.ImageFiles` in
        order too, each image checked to have the first one's size. Items that are
        ``(data, label)`` pairs give data.
    batch_size : int, default=64
        Samples per batch for arrays and datasets.
    name : str, default='data'
        How error messages call the input.

    Returns
    -------
    BatchStream

    Raises
    ------
    DataError
        For an empty input, a non-numeric dtype, NaN or inf, or samples of varying shape
        (images: naming two files and their shapes), or a damaged image file.
    TypeError
        For an input of an unsupported type.

    Examples
    --------
    >>> stream = as_batch_stream(np.zeros((5, 1, 2, 2)), batch_size=2)
    >>> [(start, b.shape) for start, b in stream]
    [(0, (2, 1, 2, 2)), (2, (2, 1, 2, 2)), (4, (1, 1, 2, 2))]
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    if isinstance(data, mx.nd.NDArray):
        data = data.asnumpy()
    if isinstance(data, (list, tuple)) and data and all(
            isinstance(x, (np.ndarray, float, int)) for x in data):
        data = np.asarray(data)
    if isinstance(data, np.ndarray):
        if data.ndim < 2:
            raise DataError(
                f"{name} has shape {data.shape}; expected an array with a sample axis first, "
                f"e.g. (n_samples, channels, height, width)."
            )
        return _array_stream(data, batch_size, name)
    if isinstance(data, mx.io.DataIter):
        return _dataiter_stream(data, name)
    if isinstance(data, DataLoader):
        return _loader_stream(data, name)
    if isinstance(data, Dataset):
        if len(data) == 0:
            raise DataError(f"{name} is an empty dataset (0 samples).")
        if isinstance(data, ImageFiles):
            return _image_stream(data, batch_size, name)
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, last_batch="keep")
        return _loader_stream(loader, name)
    raise TypeError(f"{name} is of type {type(data).__name__}; expected {SUPPORTED}.")
