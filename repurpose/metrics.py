"""Accuracy and calibration metrics of probabilistic classifiers.

Every function takes true labels and a probability matrix whose columns follow ``classes``
(a head's ``classes_``); when ``classes`` is None the labels must be ``0 .. n_classes - 1``.
"""
import numpy as np

from ._validation import brief_list, check_positive_int
from .exceptions import DataError

__all__ = ["accuracy", "negative_log_likelihood", "brier_score",
           "expected_calibration_error", "reliability_diagram", "summary"]


def _label_index(y_true, proba, classes):
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true)
    if proba.ndim != 2:
        raise DataError(f"proba must have shape (n_samples, n_classes), got {proba.shape}.")
    if len(y_true) != len(proba):
        raise DataError(f"y_true has {len(y_true)} labels but proba has {len(proba)} rows.")
    if len(y_true) == 0:
        raise DataError("Metrics need at least 1 sample; got 0.")
    if not np.isfinite(proba).all():
        raise DataError("proba contains NaN or inf.")
    if classes is None:
        classes = np.arange(proba.shape[1])
    classes = np.asarray(classes)
    if len(classes) != proba.shape[1]:
        raise DataError(f"classes has {len(classes)} entries but proba has {proba.shape[1]} "
                        f"columns; pass the classes_ of the model that made proba.")
    order = np.argsort(classes, kind="stable")
    pos = np.searchsorted(classes[order], y_true)
    pos = np.clip(pos, 0, len(classes) - 1)
    index = order[pos]
    unknown = classes[index] != y_true
    if unknown.any():
        raise DataError(f"y_true holds label(s) {brief_list(np.unique(y_true[unknown]).tolist())} "
                        f"that are not among the classes {brief_list(classes.tolist())}.")
    return index, proba


def accuracy(y_true, proba, classes=None):
    """Fraction of samples whose most probable class is the true one.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, values of ``classes``.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities; columns follow ``classes``.
    classes : array-like of shape (n_classes,), default=None
        The labels of the columns (a model's ``classes_``); None means ``0 .. n_classes - 1``.

    Returns
    -------
    float
        Accuracy in [0, 1].

    Raises
    ------
    DataError
        If the shapes disagree, ``proba`` is not finite, or ``y_true`` holds a label that is
        not in ``classes``.

    Examples
    --------
    >>> accuracy([0, 1], [[0.9, 0.1], [0.8, 0.2]])
    0.5
    """
    index, proba = _label_index(y_true, proba, classes)
    return float(np.mean(proba.argmax(axis=1) == index))


def negative_log_likelihood(y_true, proba, classes=None, eps=1e-12):
    """Mean negative log probability of the true class (natural log; lower is better).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, values of ``classes``.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities; columns follow ``classes``.
    classes : array-like of shape (n_classes,), default=None
        The labels of the columns (a model's ``classes_``); None means ``0 .. n_classes - 1``.
    eps : float, default=1e-12
        Probabilities are clipped to at least ``eps`` so a zero gives a finite value.

    Returns
    -------
    float
        Mean NLL in nats, 0 for certain and correct predictions.

    Raises
    ------
    DataError
        If the shapes disagree, ``proba`` is not finite, or ``y_true`` holds a label that is
        not in ``classes``.

    Examples
    --------
    >>> round(negative_log_likelihood(['a', 'b'], [[0.5, 0.5], [0.5, 0.5]], classes=['a', 'b']), 4)
    0.6931
    """
    index, proba = _label_index(y_true, proba, classes)
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(index)), index], eps, 1.0))))


def brier_score(y_true, proba, classes=None):
    """Mean squared distance between the probability vector and the one-hot truth (0 best, 2
    worst), summed over classes as in Brier (1950).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, values of ``classes``.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities; columns follow ``classes``.
    classes : array-like of shape (n_classes,), default=None
        The labels of the columns (a model's ``classes_``); None means ``0 .. n_classes - 1``.

    Returns
    -------
    float
        Brier score in [0, 2].

    Raises
    ------
    DataError
        If the shapes disagree, ``proba`` is not finite, or ``y_true`` holds a label that is
        not in ``classes``.

    Examples
    --------
    >>> brier_score([0], [[1.0, 0.0]])
    0.0
    """
    index, proba = _label_index(y_true, proba, classes)
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(index)), index] = 1.0
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def reliability_diagram(y_true, proba, classes=None, n_bins=15):
    """Data of a reliability diagram: accuracy against confidence in equal-width bins.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    proba : array-like of shape (n_samples, n_classes)
    classes : array-like of shape (n_classes,), default=None
    n_bins : int, default=15

    Returns
    -------
    dict
        ``bin_edges`` (n_bins + 1), and per bin ``confidence`` (mean top probability),
        ``accuracy`` and ``count``; empty bins have NaN confidence and accuracy.

    Examples
    --------
    >>> d = reliability_diagram([0, 1], [[0.9, 0.1], [0.4, 0.6]], n_bins=2)
    >>> d['count'].tolist(), d['accuracy'].tolist()
    ([0, 2], [nan, 1.0])
    """
    n_bins = check_positive_int(n_bins, "n_bins")
    index, proba = _label_index(y_true, proba, classes)
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == index
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, weights=confidence, minlength=n_bins) / count
        acc = np.bincount(which, weights=correct.astype(float), minlength=n_bins) / count
    return {"bin_edges": edges, "confidence": conf, "accuracy": acc, "count": count}


def expected_calibration_error(y_true, proba, classes=None, n_bins=15):
    """Expected calibration error: the count-weighted mean gap between accuracy and
    confidence over equal-width confidence bins (Guo et al., 2017).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, values of ``classes``.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities; columns follow ``classes``.
    classes : array-like of shape (n_classes,), default=None
        The labels of the columns (a model's ``classes_``); None means ``0 .. n_classes - 1``.
    n_bins : int, default=15
        Number of equal-width confidence bins.

    Returns
    -------
    float
        ECE in [0, 1]; 0 when confidence matches accuracy in every bin.

    Raises
    ------
    DataError
        If the shapes disagree, ``proba`` is not finite, or ``y_true`` holds a label that is
        not in ``classes``.

    See Also
    --------
    reliability_diagram : the per-bin data behind this number.

    References
    ----------
    .. [1] C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger. "On Calibration of Modern Neural
       Networks". ICML 2017.

    Examples
    --------
    >>> expected_calibration_error([0, 0], [[1.0, 0.0], [1.0, 0.0]])
    0.0
    """
    d = reliability_diagram(y_true, proba, classes, n_bins)
    filled = d["count"] > 0
    gaps = np.abs(d["accuracy"][filled] - d["confidence"][filled])
    return float(np.sum(gaps * d["count"][filled]) / np.sum(d["count"]))


def summary(y_true, proba, classes=None, n_bins=15):
    """All scalar metrics at once: ``{'accuracy', 'nll', 'brier', 'ece'}``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, values of ``classes``.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities; columns follow ``classes``.
    classes : array-like of shape (n_classes,), default=None
        The labels of the columns (a model's ``classes_``); None means ``0 .. n_classes - 1``.
    n_bins : int, default=15
        Number of confidence bins of the ECE.

    Returns
    -------
    dict of str -> float
        ``accuracy``, ``nll`` (:func:`negative_log_likelihood`), ``brier``
        (:func:`brier_score`) and ``ece`` (:func:`expected_calibration_error`).

    Raises
    ------
    DataError
        If the shapes disagree, ``proba`` is not finite, or ``y_true`` holds a label that is
        not in ``classes``.

    Examples
    --------
    >>> summary([0, 1], [[0.9, 0.1], [0.2, 0.8]])['accuracy']
    1.0
    """
    return {"accuracy": accuracy(y_true, proba, classes),
            "nll": negative_log_likelihood(y_true, proba, classes),
            "brier": brier_score(y_true, proba, classes),
            "ece": expected_calibration_error(y_true, proba, classes, n_bins)}
