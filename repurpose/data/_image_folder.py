"""An image folder with one sub-folder per class, as a Gluon ``Dataset``."""
import logging
import os

import mxnet as mx
import numpy as np
from mxnet.gluon.data import Dataset

from .._validation import brief_list
from ..exceptions import DataError
from .transforms import image_transform

logger = logging.getLogger(__name__)

__all__ = ["ImageFolder"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff")


class ImageFolder(Dataset):
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
                 extensions=IMAGE_EXTENSIONS):
        self.root = os.fspath(root)
        if not os.path.exists(self.root):
            raise DataError(f"Image folder {self.root!r} does not exist. Pass the folder that "
                            f"holds one sub-folder per class.")
        if not os.path.isdir(self.root):
            raise DataError(f"Image folder {self.root!r} is a file, not a folder. Pass the "
                            f"folder that holds one sub-folder per class.")
        self.flag = 0 if grayscale else 1
        self._transform = image_transform(resize=resize, crop=crop, mean=mean, std=std)
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

    @property
    def targets(self):
        """ndarray of shape (n_samples,): the label index of every image, in item order."""
        return np.array([label for _, label in self.items], dtype=np.int64)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        path, label = self.items[idx]
        try:
            image = mx.image.imread(path, flag=self.flag)
        except mx.base.MXNetError as err:
            raise DataError(f"Cannot decode image {path!r} (item {idx}): {err}") from err
        return self._transform(image).asnumpy(), label
