"""Data sets the toolkit can use without downloading: scikit-learn's digits as images."""
import numpy as np

from .._validation import brief_list
from ..exceptions import InvalidParameterError

__all__ = ["load_digits_images", "BUILTIN_DATASETS"]

BUILTIN_DATASETS = ("digits",)


def load_digits_images(classes=None):
    """scikit-learn's 8x8 digits as float32 images of shape (n, 1, 8, 8) in [0, 1].

    The same scaling (pixel / 16) the zoo model ``digits_cnn`` was trained with.

    Parameters
    ----------
    classes : sequence of int, default=None
        Keep only these digits (e.g. ``range(5, 10)`` for the target task of
        ``digits_cnn``); None keeps all ten.

    Returns
    -------
    X : ndarray of shape (n_samples, 1, 8, 8)
    y : ndarray of shape (n_samples,)

    Examples
    --------
    >>> X, y = load_digits_images(classes=[5, 6])
    >>> X.shape[1:], sorted(set(y))
    ((1, 8, 8), [5, 6])
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target
    if classes is not None:
        classes = list(classes)
        unknown = [c for c in classes if c not in range(10)]
        if unknown:
            raise InvalidParameterError(f"classes must be digits 0-9, got {brief_list(unknown)}.")
        keep = np.isin(y, classes)
        X, y = X[keep], y[keep]
    return X, y
