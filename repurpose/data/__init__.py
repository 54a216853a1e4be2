"""Anything -> batches: numpy arrays, ``mx.io.DataIter``, Gluon ``Dataset`` / ``DataLoader`` and
image folders, with resize / crop / normalise transforms.
"""
from ._batches import BatchStream, as_batch_stream
from ._builtin import BUILTIN_DATASETS, load_digits_images, load_shifted_digits_images
from ._image_folder import ImageFolder
from .transforms import image_transform

__all__ = ["BatchStream", "as_batch_stream", "ImageFolder", "image_transform",
           "load_digits_images", "load_shifted_digits_images", "BUILTIN_DATASETS"]
