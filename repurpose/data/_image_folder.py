"""Images on disk as Gluon ``Dataset`` s: a list of files (:class:`ImageFiles`) or a folder
with one sub-folder per class (:class:`ImageFolder`). The one place images are found,
checked for damage, decoded, transformed (resize, crop, normalisation by name or by numbers,
grayscale) and read into arrays; the command line, jobs and sharded extraction all build
them here.
"""
import logging
import os

import mxnet as mx
import numpy as np
from mxnet.gluon.data import Dataset

from .._validation import Options, brief_list, is_number
from ..exceptions import DataError, InvalidParameterError
from ._integrity import bytes_damage, file_damage
from .transforms import IMAGENET_MEAN, IMAGENET_STD, image_transform

logger = logging.getLogger(__name__)

__all__ = ["ImageFiles", "ImageFolder", "NORMALIZATIONS", "ON_DAMAGED"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff")
#: Names ``normalize=`` takes: none, or ImageNet's per-channel mean and standard deviation
#: (averaged over the channels for grayscale images).
NORMALIZATIONS = ("none", "imagenet")
#: What ``on_damaged=`` takes: stop with an error naming every damaged (truncated or
#: undecodable) file, or leave them out with a warning each, recorded in ``skipped``.
ON_DAMAGED = ("error", "skip")
#: The settings that give every image one size, named when two sizes differ.
SIZE_HINT = ("resize= and crop= (data.resize and data.crop in a job file, --resize and "
             "--crop on the command line)")


def _mean_std(normalize, mean, std, grayscale):
    if normalize is None:
        return mean, std
    Options(*NORMALIZATIONS).check(normalize, "normalize")
    if mean is not None or std is not None:
        raise InvalidParameterError("Pass normalize= or mean= and std=, not both.")
    if normalize == "none":
        return None, None
    if grayscale:
        return (float(np.mean(IMAGENET_MEAN)),), (float(np.mean(IMAGENET_STD)),)
    return IMAGENET_MEAN, IMAGENET_STD


def _channel_values(value, name, grayscale):
    """``mean`` or ``std`` as a tuple of one value (for every channel) or one per channel."""
    if value is None:
        return None
    values = (value,) if is_number(value) else value
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if not values or not all(is_number(v) for v in values):
        raise InvalidParameterError(f"{name} must be a number or a sequence of numbers (one "
                                    f"per channel), got {value!r}.")
    channels = 1 if grayscale else 3
    if len(values) not in (1, channels):
        images = ("grayscale images have 1 channel" if grayscale
                  else "RGB images (grayscale=False) have 3 channels")
        give = ("1 value" + (", or decode RGB with grayscale=False" if len(values) == 3 else "")
                if grayscale else "3 values, one per channel (or 1 for all)")
        raise InvalidParameterError(f"{name} has {len(values)} values, but {images}; give "
                                    f"{give}.")
    return values


def _damage_list(damaged, limit=4):
    """``"'a.jpg' (why), 'b.png' (why) and 3 more"``."""
    shown = [f"{path!r} ({why})" for path, why in list(damaged.items())[:limit]]
    more = len(damaged) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


class ImageFiles(Dataset):
    """Image files, decoded and transformed on access; items are ``(image, label)``.

    ``image`` is a float32 array of shape (C, H, W); ``label`` the file's entry of
    ``labels`` (-1 without labels). Picklable: the transform is rebuilt where it is used.

    Parameters
    ----------
    paths : sequence of str or path-like
        The image files.
    resize, crop, mean, std
        See :func:`repurpose.data.image_transform`.
    grayscale : bool, default=False
        Decode as one channel instead of three (RGB).
    normalize : {None, 'none', 'imagenet'}, default=None
        A named normalisation instead of ``mean``/``std``.
    labels : sequence of int, default=None
        One label index per file.
    on_damaged : {'error', 'skip'}, default='error'
        What to do with damaged files (truncated, empty or undecodable), which are looked
        for here, before any image is used: ``'error'`` raises naming them; ``'skip'``
        leaves them out, logs a warning naming each and records them in :attr:`skipped`.

    Attributes
    ----------
    items : list of (str, int)
        Every image path with its label, in order (damaged files left out).
    skipped : dict of str -> str
        The damaged files left out (``on_damaged='skip'``), each with the reason.

    Raises
    ------
    FileNotFoundError
        If a file does not exist (the message names them).
    DataError
        If files are damaged and ``on_damaged='error'`` (the message names them), or all
        are.
    InvalidParameterError
        For a bad ``on_damaged``, ``resize``, ``crop``, or ``mean``/``std`` of another
        length than 1 or the number of channels (1 with ``grayscale``, else 3).

    Notes
    -----
    Damage is found cheaply: a JPEG or PNG that ends with its end marker is whole; only
    other files are decoded in full (with Pillow) to check. Each read checks the file
    again, so one damaged after the dataset was built is a :class:`DataError` naming it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> Image.new('RGB', (12, 10)).save(root / 'a.png')
    >>> files = ImageFiles([root / 'a.png'], resize=8, crop=8, normalize='imagenet')
    >>> len(files), files[0][0].shape, files[0][1]
    (1, (3, 8, 8), -1)
    """

    def __init__(self, paths, resize=None, crop=None, mean=None, std=None, grayscale=False,
                 normalize=None, labels=None, on_damaged="error"):
        self.on_damaged = Options(*ON_DAMAGED).check(on_damaged, "on_damaged")
        mean, std = _mean_std(normalize, mean, std, grayscale)
        mean, std = _channel_values(mean, "mean", grayscale), _channel_values(std, "std",
                                                                              grayscale)
        self.options = {"resize": resize, "crop": crop, "mean": mean, "std": std}
        self.flag = 0 if grayscale else 1
        self._transform = image_transform(**self.options)
        self.items = [(os.fspath(p), -1 if labels is None else int(label))
                      for p, label in zip(paths, labels if labels is not None
                                          else [None] * len(paths))]
        absent = [p for p, _ in self.items if not os.path.isfile(p)]
        if absent:
            raise FileNotFoundError(f"{len(absent)} of the {len(self.items)} image files do "
                                    f"not exist: {brief_list(absent)}.")
        self.skipped = self._check_damage()

    def _check_damage(self):
        """Raise for damaged files, or (``on_damaged='skip'``) leave them out; returns
        ``{path: reason}`` of those left out."""
        damaged = {}
        for path, _ in self.items:
            reason = file_damage(path)
            if reason:
                damaged[path] = reason
        if not damaged:
            return {}
        n = len(self.items)
        if len(damaged) == n:
            raise DataError(f"{'The one image file is' if n == 1 else f'All {n} image files are'}"
                            f" damaged: {_damage_list(damaged)}. Replace "
                            f"{'it' if n == 1 else 'them'} with whole images.")
        if self.on_damaged == "error":
            one = len(damaged) == 1
            raise DataError(
                f"{len(damaged)} of the {n} image files {'is' if one else 'are'} damaged "
                f"(truncated or not decodable): {_damage_list(damaged)}. Replace or remove "
                f"{'it' if one else 'them'}, or pass on_damaged='skip' to leave damaged files "
                f"out with a warning each (in a job file: data.on_damaged: skip).")
        for path, reason in damaged.items():
            logger.warning("Skipping damaged image %s: %s", path, reason)
        self.items = [item for item in self.items if item[0] not in damaged]
        return damaged

    @property
    def paths(self):
        """list of str: the files, in item order."""
        return [path for path, _ in self.items]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        path, label = self.items[idx]
        if self._transform is None:
            self._transform = image_transform(**self.options)
        return self._transform(self._decode(path, idx)).asnumpy(), label

    def _decode(self, path, idx):
        """The image at ``path`` as an (H, W, C) uint8 NDArray, checked for damage first."""
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as err:
            raise DataError(f"Cannot read image {path!r} (item {idx}): "
                            f"{err.strerror or err}.") from err
        reason = bytes_damage(data)
        if reason:
            raise DataError(f"Image {path!r} (item {idx}) is damaged: {reason}. It changed "
                            f"after the dataset was built; replace it with a whole image.")
        try:
            image = mx.image.imdecode(data, flag=self.flag)
            image.wait_to_read()  # OpenCV's errors surface here, not in a later call
        except mx.base.MXNetError as err:
            lines = [line for line in str(err).splitlines() if line.strip()]
            raise DataError(f"Cannot decode image {path!r} (item {idx}): "
                            f"{lines[-1] if lines else err}") from err
        return image

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_transform"] = None  # holds compiled graphs (C handles); rebuilt on use
        return state

    def subset(self, start, stop):
        """A copy holding items ``start:stop`` (what one shard of work reads)."""
        part = object.__new__(type(self))
        part.__dict__.update(self.__getstate__())
        part.items = self.items[start:stop]
        return part

    def to_array(self, hint=SIZE_HINT):
        """Decode every image into one array.

        Parameters
        ----------
        hint : str, default=SIZE_HINT
            Names the settings that make the images one size, for the error message.

        Returns
        -------
        ndarray of shape (n_samples, C, H, W), float32

        Raises
        ------
        DataError
            If there are no images, one is damaged, or two differ in shape after the
            transforms (the message names both files and their shapes).
        """
        if not self.items:
            raise DataError("There are no images to read.")
        return np.stack(list(self._images(hint))).astype(np.float32)

    def _images(self, hint=SIZE_HINT):
        """Yield the transformed images in order, each checked to have the shape of the
        first.

        Parameters
        ----------
        hint : str, default=SIZE_HINT
            Names the settings that make the images one size, for the error message.

        Yields
        ------
        ndarray of shape (C, H, W), float32

        Raises
        ------
        DataError
            If an image is damaged, or its shape differs from item 0's (the message names
            both files and their shapes).
        """
        first = None
        for i in range(len(self)):
            image = self[i][0]
            first = image.shape if first is None else first
            if image.shape != first:
                channels = "" if image.shape[0] == first[0] else (
                    " (a different number of channels: decode all as one with grayscale)")
                raise DataError(
                    f"Image {self.items[i][0]!r} has shape {image.shape} after the transforms, "
                    f"but {self.items[0][0]!r} has {first}{channels}. Set {hint} so that "
                    f"every image gets the same size.")
            yield image


class ImageFolder(ImageFiles):
    """Images in ``root/<class name>/<file>``, decoded and transformed on access.

    Items are ``(image, label)`` pairs: ``image`` a float32 numpy array of shape (C, H, W),
    ``label`` the index of the class folder in :attr:`classes` (sorted names).

    Parameters
    ----------
    root : str or path-like
        Folder holding one sub-folder per class.
    resize, crop, mean, std
        See :func:`repurpose.data.image_transform`.
    grayscale : bool, default=False
        Decode as one channel instead of three (RGB).
    normalize : {None, 'none', 'imagenet'}, default=None
        A named normalisation instead of ``mean``/``std``.
    extensions : tuple of str, default=IMAGE_EXTENSIONS
        File name endings (lower case) that count as images; other files are skipped.
    on_damaged : {'error', 'skip'}, default='error'
        What to do with damaged image files (truncated, empty or undecodable), looked for
        here: ``'error'`` raises naming them; ``'skip'`` leaves them out with a warning each
        and records them in :attr:`skipped`. See :class:`ImageFiles`.

    Attributes
    ----------
    classes : list of str
        Class folder names, sorted.
    items : list of (str, int)
        Every image path with its label index (damaged files left out).
    skipped : dict of str -> str
        The damaged files left out (``on_damaged='skip'``), each with the reason.

    Raises
    ------
    DataError
        If ``root`` is missing, is not a folder, has no class sub-folders, or holds no
        images; if images are damaged and ``on_damaged='error'`` (naming them), or all are.
    InvalidParameterError
        For bad transform parameters or ``on_damaged``; see :class:`ImageFiles`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for cls in ('cat', 'dog'):
    ...     (root / cls).mkdir()
    ...     Image.new('RGB', (12, 10)).save(root / cls / 'a.png')
    >>> folder = ImageFolder(root, resize=8, crop=8)
    >>> folder.classes, len(folder), folder[1][0].shape, folder[1][1]
    (['cat', 'dog'], 2, (3, 8, 8), 1)
    """

    def __init__(self, root, resize=None, crop=None, mean=None, std=None, grayscale=False,
                 normalize=None, extensions=IMAGE_EXTENSIONS, on_damaged="error"):
        self.root = os.fspath(root)
        if not os.path.exists(self.root):
            raise DataError(f"Image folder {self.root!r} does not exist. Pass the folder that "
                            f"holds one sub-folder per class.")
        if not os.path.isdir(self.root):
            raise DataError(f"Image folder {self.root!r} is a file, not a folder. Pass the "
                            f"folder that holds one sub-folder per class.")
        self.classes = sorted(e.name for e in os.scandir(self.root)
                              if e.is_dir() and not e.name.startswith("."))
        if not self.classes:
            found = sorted(os.listdir(self.root))
            raise DataError(
                f"Image folder {self.root!r} has no class sub-folders (found "
                f"{brief_list(found) if found else 'nothing'}). Put each class's images in a "
                f"sub-folder named after the class."
            )
        self.items = []
        skipped = 0
        for label, name in enumerate(self.classes):
            folder = os.path.join(self.root, name)
            for file_name in sorted(os.listdir(folder)):
                path = os.path.join(folder, file_name)
                if file_name.lower().endswith(tuple(extensions)) and os.path.isfile(path):
                    self.items.append((path, label))
                else:
                    skipped += 1
        if skipped:
            logger.info("ImageFolder %s: skipped %d files that are not images", self.root,
                        skipped)
        if not self.items:
            raise DataError(
                f"Image folder {self.root!r} has class folders {brief_list(self.classes)} but "
                f"no image files ending in {brief_list(extensions)}."
            )
        paths, labels = zip(*self.items)
        super().__init__(paths, resize=resize, crop=crop, mean=mean, std=std,
                         grayscale=grayscale, normalize=normalize, labels=labels,
                         on_damaged=on_damaged)
        emptied = sorted(set(self.classes) - {self.classes[label] for _, label in self.items})
        if emptied:
            logger.warning("ImageFolder %s: no images left in class folder(s) %s after "
                           "skipping damaged files", self.root, brief_list(emptied))

    @property
    def targets(self):
        """ndarray of shape (n_samples,): the label index of every image, in item order."""
        return np.array([label for _, label in self.items], dtype=np.int64)

    def to_arrays(self, hint=SIZE_HINT):
        """Decode every image: ``(X, y)`` with ``y`` the class folder name of each.

        Parameters
        ----------
        hint : str, default=SIZE_HINT
            Names the settings that make the images one size, for the error message.

        Returns
        -------
        X : ndarray of shape (n_samples, C, H, W), float32
        y : ndarray of shape (n_samples,) of str

        Raises
        ------
        DataError
            If an image is damaged, or two differ in shape after the transforms (the
            message names both).
        """
        return self.to_array(hint), np.array(self.classes)[self.targets]
