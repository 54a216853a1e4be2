"""What :func:`~repurpose.features.extract_to_store` takes as input, planned for shards.

:func:`plan_input` turns an image folder (path or :class:`~repurpose.data.ImageFolder`), a
list of image files, an array or a ``.npy`` path into a :class:`PlannedInput`: its size, its
sample ids and labels, an identity recorded in the store's manifest (so that a resumed run
is refused for other data), and ``shard(start, stop)``, which gives what one task reads:
an array, a :class:`NpyRows` (rows of a ``.npy`` file, read where the task runs) or a
picklable dataset holding only the shard's images.
"""
import hashlib
import os

import mxnet as mx
import numpy as np

from .._validation import brief_list, suggest
from ..data import ImageFiles, ImageFolder, image_transform
from ..exceptions import DataError, InvalidParameterError

__all__ = ["plan_input", "PlannedInput", "NpyRows", "load_part"]


class NpyRows:
    """Rows ``start:stop`` of a ``.npy`` file, read where the task runs."""

    def __init__(self, path, start, stop):
        self.path, self.start, self.stop = path, start, stop

    def load(self):
        return np.load(self.path, mmap_mode="r", allow_pickle=False)[self.start:self.stop]


def load_part(part):
    """What ``PlannedInput.shard`` gave, ready for extraction (a NpyRows is read here)."""
    return part.load() if isinstance(part, NpyRows) else part


class PlannedInput:
    """What the driver knows about the input: size, ids, identity, and shard readers."""

    def __init__(self, kind, n_samples, description, identity, shard, sample_ids=None,
                 labels=None, classes=None):
        self.kind = kind
        self.n_samples = n_samples
        self.description = description
        self.identity = identity
        self.shard = shard  # shard(start, stop) -> ndarray, NpyRows or Dataset
        self.sample_ids = sample_ids
        self.labels = labels
        self.classes = classes


_IMAGE_OPTIONS = ("resize", "crop", "mean", "std", "grayscale", "normalize")


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
    image_transform(**{k: v for k, v in options.items()
                       if k in ("resize", "crop", "mean", "std")})  # checks values
    return options


def _array_identity(array):
    first = np.ascontiguousarray(array[:1])
    return {"shape": list(array.shape), "dtype": str(array.dtype),
            "first_row_sha256": hashlib.sha256(first.tobytes()).hexdigest()}


def plan_input(data, image_options):
    """Check ``data`` and ``image_options`` and return the :class:`PlannedInput`.

    Raises
    ------
    TypeError, FileNotFoundError, InvalidParameterError, DataError
        For an input of another kind, missing files, image options that do not apply or
        are unknown, and arrays without samples.
    """
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
        dataset = ImageFiles(paths, **options)
        return PlannedInput("files", len(paths), f"{len(paths)} image files",
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
        return PlannedInput("array", len(data), f"an array of shape {data.shape}",
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
    return PlannedInput("npy", len(array), f"{path} {tuple(array.shape)}",
                  dict(_array_identity(array), kind="npy"),
                  lambda start, stop: NpyRows(path, start, stop))


def _folder_input(folder):
    ids = [os.path.relpath(path, folder.root) for path, _ in folder.items]

    # Tasks carry a copy holding only the shard's items (without the compiled transform).
    return PlannedInput("image_folder", len(folder), f"image folder {folder.root!r}",
                  {"kind": "image_folder"}, folder.subset, sample_ids=ids,
                  labels=[int(label) for _, label in folder.items], classes=list(folder.classes))
