"""Anything -> batches: numpy arrays, ``mx.io.DataIter``, Gluon ``Dataset`` / ``DataLoader`` and
image folders, with resize / crop / normalise transforms.
"""
from ._batches import BatchStream, as_batch_stream
from ._builtin import (BUILTIN_DATASETS, load_builtin, load_digits_images,
                       load_shifted_digits_images)
from ._image_folder import NORMALIZATIONS, ON_DAMAGED, ImageFiles, ImageFolder
from .transforms import image_transform

__all__ = ["BatchStream", "as_batch_stream", "ImageFiles", "ImageFolder", "NORMALIZATIONS",
           "ON_DAMAGED",
           "image_transform",
           "load_digits_images", "load_shifted_digits_images", "load_builtin",
           "BUILTIN_DATASETS"]
