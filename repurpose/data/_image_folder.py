"""Images on disk as Gluon ``Dataset`` s: a list of files (:class:`ImageFiles`) or a folder
with one sub-folder per class (:class:`ImageFolder`). The one place images are found,
decoded, transformed (resize, crop, normalisation by name or by numbers, grayscale) and
read into arrays; the command line, jobs and sharded extraction all build them here.
"""
import logging
import os

import mxnet as mx
import numpy as np
from mxnet.gluon.data import Dataset

from .._validation import Options, brief_list
from ..exceptions import DataError, InvalidParameterError
from .transforms import IMAGENET_MEAN, IMAGENET_STD, image_transform

logger = logging.getLogger(__name__)

__all__ = ["ImageFiles", "ImageFolder", "NORMALIZATIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff")
#: Names ``normalize=`` takes: none, or ImageNet's per-channel mean and standard deviation
#: (averaged over the channels for grayscale images).
NORMALIZATIONS = ("none", "imagenet")


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

    Raises
    ------
    FileNotFoundError
        If a file does not exist (the message names them).

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
                 normalize=None, labels=None):
        self.items = [(os.fspath(p), -1 if labels is None else int(label))
                      for p, label in zip(paths, labels if labels is not None
                                          else [None] * len(paths))]
        absent = [p for p, _ in self.items if not os.path.isfile(p)]
        if absent:
            raise FileNotFoundError(f"{len(absent)} of the {len(self.items)} image files do "
                                    f"not exist: {brief_list(absent)}.")
        mean, std = _mean_std(normalize, mean, std, grayscale)
        self.options = {"resize": resize, "crop": crop, "mean": mean, "std": std}
        self.flag = 0 if grayscale else 1
        self._transform = image_transform(**self.options)

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
        try:
            image = mx.image.imread(path, flag=self.flag)
        except mx.base.MXNetError as err:
            raise DataError(f"Cannot decode image {path!r} (item {idx}): {err}") from err
        return self._transform(image).asnumpy(), label

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

    def to_array(self, hint="resize and crop"):
        """Decode every image into one array.

        Parameters
        ----------
        hint : str, default='resize and crop'
            Names the settings that make the images one size, for the error message.

        Returns
        -------
        ndarray of shape (n_samples, C, H, W), float32

        Raises
        ------
        DataError
            If there are no images, or two differ in shape after the transforms.
        """
        if not self.items:
            raise DataError("There are no images to read.")
        images = []
        for i in range(len(self)):
            image = self[i][0]
            if images and image.shape != images[0].shape:
                channels = "" if image.shape[0] == images[0].shape[0] else (
                    " (a different number of channels: decode all as one with grayscale)")
                raise DataError(
                    f"Image {self.items[i][0]!r} has shape {image.shape} after the transforms, "
                    f"but {self.items[0][0]!r} has {images[0].shape}{channels}. Set {hint} so "
                    f"that every image gets the same size.")
            images.append(image)
        return np.stack(images).astype(np.float32)


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

    Attributes
    ----------
    classes : list of str
        Class folder names, sorted.
    items : list of (str, int)
        Every image path with its label index.

    Raises
    ------
    DataError
        If ``root`` is missing, is not a folder, has no class sub-folders, or holds no images.

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
                 normalize=None, extensions=IMAGE_EXTENSIONS):
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
                         grayscale=grayscale, normalize=normalize, labels=labels)

    @property
    def targets(self):
        """ndarray of shape (n_samples,): the label index of every image, in item order."""
        return np.array([label for _, label in self.items], dtype=np.int64)

    def to_arrays(self, hint="resize and crop"):
        """Decode every image: ``(X, y)`` with ``y`` the class folder name of each.

        Parameters
        ----------
        hint : str, default='resize and crop'
            Names the settings that make the images one size, for the error message.

        Returns
        -------
        X : ndarray of shape (n_samples, C, H, W), float32
        y : ndarray of shape (n_samples,) of str

        Raises
        ------
        DataError
            If two images differ in shape after the transforms (the message names both).
        """
        return self.to_array(hint), np.array(self.classes)[self.targets]
