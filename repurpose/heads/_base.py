"""The contract every head honours: a scikit-learn classifier on feature arrays.

Subclasses implement :meth:`BaseHead._fit` and :meth:`BaseHead._predict_proba` on labels
already mapped to ``0 .. n_classes - 1``, and :meth:`BaseHead._get_fitted_state` /
:meth:`BaseHead._set_fitted_state` for persistence. Validation, label handling, the
feature-count check, ``predict`` and ``score`` live here once.
"""
import contextlib
import logging
import numbers
from abc import ABC, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._validation import brief_list, check_params
from ..exceptions import DataError

logger = logging.getLogger(__name__)

__all__ = ["BaseHead", "check_labels", "unseen_labels", "fit_standardizer", "softmax"]


class BaseHead(ClassifierMixin, BaseEstimator, ABC):
    """Base class of the heads: validation, labels, prediction, scoring and state.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in fit, sorted; ``predict_proba`` columns follow them. Set by ``fit``
        in every head.
    n_features_in_ : int
        Number of features seen in fit. Set by ``fit`` in every head.

    Examples
    --------
    A head implements four methods on validated features and labels already mapped to
    ``0 .. n_classes - 1``; ``fit``, ``predict``, ``predict_proba`` and ``score`` come from
    here:

    >>> class NearestMeanHead(BaseHead):
    ...     def _fit(self, X, y, n_classes, random_state):
    ...         self.means_ = np.stack([X[y == k].mean(axis=0) for k in range(n_classes)])
    ...     def _predict_proba(self, X):
    ...         return softmax(-((X[:, None, :] - self.means_) ** 2).sum(axis=2))
    ...     def _get_fitted_state(self):
    ...         return {}, {'means_': self.means_}
    ...     def _set_fitted_state(self, state, arrays):
    ...         self.means_ = arrays['means_']
    >>> X = np.array([[0.0, 0.0], [0.2, 0.0], [1.0, 1.0], [0.8, 1.0]])
    >>> head = NearestMeanHead().fit(X, ['cat', 'cat', 'dog', 'dog'])
    >>> head.classes_, head.n_features_in_
    (array(['cat', 'dog'], dtype='<U3'), 2)
    >>> head.predict([[0.9, 0.8], [0.1, 0.2]])
    array(['dog', 'cat'], dtype='<U3')
    >>> head.predict([[0.5, 0.5, 0.5]])
    Traceback (most recent call last):
    ...
    repurpose.exceptions.DataError: X has 3 features, but NearestMeanHead is expecting 2 features as input. ...
    """

    #: The allowed values of each constructor parameter, declared once (scikit-learn's name):
    #: ``fit`` checks them with :func:`~repurpose._validation.check_params` before any work,
    #: and the repurposers built on the head use the same constraint objects.
    _parameter_constraints = {}
    #: Fewest training samples of each class the head can fit on.
    _min_samples_per_class = 1
    #: Where the features came from (set by repurposers), for error messages.
    _feature_origin = None

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def _fit(self, X, y, n_classes, random_state):
        """Fit on float ``X`` (n, d) and integer labels ``y`` in ``0 .. n_classes - 1``."""

    @abstractmethod
    def _predict_proba(self, X):
        """Return class probabilities of shape (n, n_classes) for validated ``X``."""

    @abstractmethod
    def _get_fitted_state(self):
        """Return ``(json_dict, arrays_dict)`` holding everything ``fit`` learned."""

    @abstractmethod
    def _set_fitted_state(self, state, arrays):
        """Restore what :meth:`_get_fitted_state` returned."""

    # ------------------------------------------------------------------ sklearn contract
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

    def _validate_X_predict(self, X):
        check_is_fitted(self)
        # Zero samples pass (predict_proba answers with zero rows); a wrong width does not.
        with _finite(f"{type(self).__name__}.predict"):
            X = check_array(X, dtype=[np.float64, np.float32], ensure_min_samples=0)
        if X.shape[1] != self.n_features_in_:
            origin = f" (fitted on layers {self._feature_origin})" if self._feature_origin \
                else ""
            raise DataError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input{origin}. Pass features of the same "
                f"layers (and pooling) as in fit.")
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32],
                             ensure_min_samples=0)

    def fit(self, X, y):
        """Fit the head on features ``X`` and labels ``y`` (any label values).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self

        Raises
        ------
        DataError
            For ``y=None``, zero samples, or labels that mix types (``[1, 'a']``).
        DataError
            Also for NaN/inf in ``X``.
        ValueError
            For a single class in ``y``, or fewer samples of a class than the head needs.
        """
        self._validate_params()
        y = check_labels(y, f"{type(self).__name__}.fit")
        if y.size == 0:
            shape = getattr(X, "shape", None)
            raise DataError(
                f"{type(self).__name__}.fit got 0 labels (X{f' of shape {shape}' if shape else ''}"
                f"); it needs labelled samples of at least 2 classes. Pass a non-empty X and "
                f"one label per sample as y.")
        with _finite(f"{type(self).__name__}.fit"):
            X, y = validate_data(self, X, y, reset=True, dtype=[np.float64, np.float32])
        classes, y_idx = self._check_targets(y)
        self.classes_ = classes
        self._fit(X, y_idx.astype(np.int64), len(classes), self._resolved_random_state())
        return self

    def _validate_params(self):
        """Check the hyper-parameters against :attr:`_parameter_constraints` (cheap, before
        any work); return them normalised. Heads extend this with the checks between
        parameters that a table cannot say."""
        return check_params(self.get_params(deep=False), self._parameter_constraints)

    def _check_targets(self, y):
        """Check labels: classification targets, 2+ classes, enough samples of each.

        Returns
        -------
        classes : ndarray of shape (n_classes,)
        y_idx : ndarray of shape (n_samples,)
            Index of each label in ``classes``.
        """
        y = check_labels(y, f"{type(self).__name__}.fit")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.size == 0:
            raise DataError(f"y is empty; {type(self).__name__} needs labelled samples of at "
                            f"least 2 classes to fit.")
        check_classification_targets(y)
        classes, y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes to fit; got 1 "
                f"class ({classes[0]!r}).")
        too_few = classes[counts < self._min_samples_per_class]
        if len(too_few):
            raise ValueError(
                f"{type(self).__name__} needs at least {self._min_samples_per_class} samples "
                f"of every class; class(es) {brief_list(too_few.tolist())} have "
                f"{brief_list(counts[counts < self._min_samples_per_class].tolist())}. Add "
                f"labelled samples or drop those classes.")
        self._check_label_params(classes)
        return classes, y_idx

    def _check_label_params(self, classes):
        """Check parameters that name labels (e.g. ``class_weight`` keys) against
        ``classes``; heads with such parameters override this. Runs before any work."""

    def _resolved_random_state(self):
        from sklearn.utils import check_random_state

        return check_random_state(getattr(self, "random_state", None))

    def predict_proba(self, X):
        """Class probabilities; columns follow :attr:`classes_`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        X = self._validate_X_predict(X)
        if len(X) == 0:
            return np.zeros((0, len(self.classes_)))
        return self._predict_proba(X)

    def predict(self, X):
        """Most probable class of each sample.

        Returns
        -------
        ndarray of shape (n_samples,)
            Values from :attr:`classes_` (an empty array of their dtype for zero samples).
        """
        proba = self.predict_proba(X)  # checks fitted state before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Accuracy on ``(X, y)``; labels not seen in fit are an error, not a silent miss."""
        check_is_fitted(self)
        y = check_labels(y, f"{type(self).__name__}.score")
        unseen = unseen_labels(y, self.classes_)
        if len(unseen):
            raise DataError(
                f"y holds label(s) {brief_list(unseen.tolist())} that {type(self).__name__} "
                f"never saw in fit (classes_: {brief_list(self.classes_.tolist())}). Score on "
                f"the classes it was fitted on, or refit with them.")
        return super().score(X, y, sample_weight=sample_weight)

    # ------------------------------------------------------------------ state
    def save(self, path, overwrite=False):
        """Save the fitted head to the folder ``path`` (JSON manifest + arrays, no pickle).

        ``repurpose.load(path)`` returns a head of the same class that predicts the same.
        """
        from ..persist import save

        return save(self, path, overwrite=overwrite)

    def _get_state(self):
        """Return ``(json_dict, arrays)``: the fitted state, for :mod:`repurpose.persist`."""
        check_is_fitted(self)
        state, arrays = self._get_fitted_state()
        arrays = dict(arrays)
        arrays["classes_"] = self.classes_
        return {"n_features_in_": int(self.n_features_in_), "head": state}, arrays

    def _set_state(self, state, arrays):
        """Restore a state from :meth:`_get_state` on an unfitted head with the same params."""
        arrays = dict(arrays)
        self.classes_ = arrays.pop("classes_")
        self.n_features_in_ = int(state["n_features_in_"])
        self._set_fitted_state(state["head"], arrays)
        return self


def _label_kind(value):
    """The kind of one label, for the one-kind check: 'str', 'bytes', 'number' (bool, int,
    float of Python or numpy) or the type's name."""
    if isinstance(value, str):
        return "str"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, (numbers.Number, np.bool_)) and not isinstance(value, complex):
        return "number"
    return type(value).__name__


def check_labels(y, where="fit", name="y"):
    """Labels as a numpy array of one kind: strings or numbers, never a mix.

    A list, or an array of dtype object (what a pandas column of strings gives), is checked
    element by element and converted to the 1-d array numpy makes of its values (a column
    of shape (n, 1) is flattened): strings become a fixed-width unicode array, which saves
    without pickle. Other arrays pass unchanged, for the caller's shape checks.

    Parameters
    ----------
    y : array-like or None
    where : str, default='fit'
        The call the labels were passed to, for messages (``'LogisticHead.fit'``).
    name : str, default='y'
        The argument's name, for messages (``'y_val'``).

    Returns
    -------
    ndarray

    Raises
    ------
    DataError
        For ``y=None`` (also saying scikit-learn's "requires y to be passed"), or labels
        of more than one kind (``[1, 'a', 2]``), or of a kind that is neither (``None``).

    Examples
    --------
    >>> check_labels(np.array(['cat', 'dog'], dtype=object))
    array(['cat', 'dog'], dtype='<U3')
    >>> check_labels([1, 'a', 2])
    Traceback (most recent call last):
    ...
    repurpose.exceptions.DataError: y mixes label types int (2 labels, e.g. 1) and str ...
    """
    if y is None:
        raise DataError(
            f"{name} is required: {where} learns from labels (it requires y to be passed, but "
            f"the target y is None). Pass one label per sample of X.")
    array = np.asarray(y) if getattr(y, "dtype", object) != object else None
    if array is None or array.dtype == object:  # a list, or object values (pandas)
        objects = np.asarray(y, dtype=object)
        if objects.ndim == 2 and objects.shape[1] == 1:
            objects = objects.ravel()
        if objects.ndim != 1 or len(objects) == 0:
            return np.asarray(y)  # shapes that the callers' checks report
        _check_one_label_kind(objects, where, name)
        array = np.array(objects.tolist())
    return array


def _check_one_label_kind(values, where, name):
    kinds, by_type = set(), {}
    for value in values:
        kinds.add(_label_kind(value))
        by_type.setdefault(type(value).__name__, []).append(value)
    if len(kinds) == 1 and kinds <= {"str", "bytes", "number"}:
        return
    found = " and ".join(f"{name} ({len(v)} label{'s' if len(v) > 1 else ''}, e.g. {v[0]!r})"
                         for name, v in by_type.items())
    raise DataError(
        f"{name} {'mixes label types' if len(kinds) > 1 else 'holds labels of type'} {found}, "
        f"in {where}. Labels must all be of one type, str or numbers: convert them to one "
        f"(e.g. [str(v) for v in {name}]) and fill in any missing label.")


def unseen_labels(y, classes):
    """The distinct labels of ``y`` that are not in ``classes``: all of them when one holds
    strings and the other numbers (which numpy cannot compare element-wise).

    Examples
    --------
    >>> unseen_labels(np.array([5, 7]), np.array([5, 6]))
    array([7])
    >>> unseen_labels(np.array([5]), np.array(['5']))  # numbers are not the strings
    array([5])
    """
    y, classes = np.asarray(y), np.asarray(classes)
    if (y.dtype.kind in "US") != (classes.dtype.kind in "US"):
        return np.unique(y)
    return np.setdiff1d(np.unique(y), classes)


@contextlib.contextmanager
def _finite(where):
    """scikit-learn's NaN / infinity check, said as a :class:`DataError` with what to do."""
    try:
        yield
    except ValueError as err:
        if isinstance(err, DataError) or not ("NaN" in str(err) or "infinity" in str(err)):
            raise
        raise DataError(f"{where}: {err} Features must be finite: find the samples with "
                        f"np.isfinite(X).all(axis=1), then remove them or impute their values "
                        f"(e.g. sklearn.impute.SimpleImputer) before fitting.") from err


def fit_standardizer(X, enabled=True):
    """Per-feature mean and scale of ``X`` (scale 1 for constant features), as float64;
    zeros and ones (the identity) when not ``enabled``."""
    if not enabled:
        return np.zeros(X.shape[1]), np.ones(X.shape[1])
    mean = X.mean(axis=0, dtype=np.float64)
    scale = X.std(axis=0, dtype=np.float64)
    scale[scale < 1e-12] = 1.0
    return mean, scale


def softmax(z):
    """Row-wise softmax, stable for large values."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
