"""Data sets the toolkit can use without downloading: scikit-learn's digits as images."""
import numbers

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import check_random_state

from .._validation import brief_list, suggest
from ..exceptions import InvalidParameterError

__all__ = ["load_digits_images", "load_shifted_digits_images", "load_builtin",
           "BUILTIN_DATASETS"]

#: Names of the data sets that ship with the package (no download): every command and job
#: file takes these (:func:`load_builtin`).
BUILTIN_DATASETS = ("digits", "shifted_digits")


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


def load_shifted_digits_images(classes=None, max_shift=1, noise=0.0, random_state=0):
    """scikit-learn's 8x8 digits, each moved by a random offset: a harder target task.

    Every image of :func:`load_digits_images` is shifted by ``(dy, dx)``, each drawn uniformly
    from ``-max_shift .. max_shift`` pixels; pixels moved out of the 8x8 frame are lost and
    the uncovered border is 0. Optional Gaussian pixel noise (standard deviation ``noise``)
    is added afterwards and the result clipped to [0, 1]. Labels and order are those of
    ``load_digits_images(classes)``; the same ``random_state`` gives the same images.

    Raw pixels lose most of their power on this task (a logistic regression on 50 labels of
    shifted digits 5-9 scores about 0.54), while features of ``digits_cnn``, which was trained
    with random shifts on digits 0-4, keep it (about 0.80): see ``model_zoo/README.md``.

    Parameters
    ----------
    classes : sequence of int, default=None
        Keep only these digits (e.g. ``range(5, 10)``); None keeps all ten.
    max_shift : int, default=1
        Largest shift in pixels along each axis (0 to 3).
    noise : float, default=0.0
        Standard deviation of the added pixel noise; 0 adds none.
    random_state : int or numpy.random.RandomState, default=0
        Seed of the offsets and the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, 1, 8, 8), float32 in [0, 1]
    y : ndarray of shape (n_samples,)

    Raises
    ------
    InvalidParameterError
        For a ``max_shift`` outside 0..3 or a negative or non-finite ``noise``.

    Examples
    --------
    >>> X, y = load_shifted_digits_images(classes=range(5, 10), max_shift=1)
    >>> X.shape[1:], X.dtype.name, sorted(set(y))
    ((1, 8, 8), 'float32', [5, 6, 7, 8, 9])
    """
    if (isinstance(max_shift, (bool, np.bool_)) or not isinstance(max_shift, numbers.Integral)
            or not 0 <= max_shift <= 3):
        raise InvalidParameterError(
            f"max_shift must be an integer from 0 to 3, got {max_shift!r}.")
    if (isinstance(noise, (bool, np.bool_)) or not isinstance(noise, numbers.Real)
            or not 0 <= noise < np.inf):
        raise InvalidParameterError(f"noise must be a finite number >= 0, got {noise!r}.")
    X, y = load_digits_images(classes)
    rng = check_random_state(random_state)
    n, size = len(X), X.shape[-1]
    offsets = rng.randint(-max_shift, max_shift + 1, size=(n, 2))
    padded = np.pad(X, ((0, 0), (0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    # Output pixel (r, c) of image i reads padded pixel (r + m - dy_i, c + m - dx_i).
    rows = max_shift - offsets[:, 0, None] + np.arange(size)    # (n, 8)
    cols = max_shift - offsets[:, 1, None] + np.arange(size)    # (n, 8)
    X = padded[np.arange(n)[:, None, None], 0, rows[:, :, None], cols[:, None, :]][:, None]
    if noise > 0:
        X = np.clip(X + rng.normal(0.0, noise, size=X.shape), 0.0, 1.0)
    return np.ascontiguousarray(X, dtype=np.float32), y


def load_builtin(name, classes=None, max_shift=1, random_state=0):
    """Load the built-in data set ``name`` (one of :data:`BUILTIN_DATASETS`).

    Parameters
    ----------
    name : {'digits', 'shifted_digits'}
        :func:`load_digits_images` or :func:`load_shifted_digits_images`.
    classes : sequence of int, default=None
        Keep only these digits; None keeps all ten.
    max_shift : int, default=1
        ``shifted_digits``: largest shift in pixels.
    random_state : int, default=0
        ``shifted_digits``: seed of the shifts.

    Returns
    -------
    X : ndarray of shape (n_samples, 1, 8, 8), float32
    y : ndarray of shape (n_samples,)

    Raises
    ------
    InvalidParameterError
        For another name, with the close match.

    Examples
    --------
    >>> X, y = load_builtin('shifted_digits', classes=[5, 6])
    >>> X.shape[1:], sorted(set(y))
    ((1, 8, 8), [5, 6])
    """
    if name == "digits":
        return load_digits_images(classes=classes)
    if name == "shifted_digits":
        return load_shifted_digits_images(classes=classes, max_shift=max_shift,
                                          random_state=random_state)
    hint = suggest(name, BUILTIN_DATASETS) if isinstance(name, str) else ""
    raise InvalidParameterError(f"{name!r} is not a built-in data set; they are "
                                f"{brief_list(BUILTIN_DATASETS)}." + (f" {hint}" if hint else ""))
