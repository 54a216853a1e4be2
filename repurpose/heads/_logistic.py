"""Logistic-regression head (scikit-learn's ``LogisticRegression`` on standardised features)."""
import logging
import warnings

import numpy as np
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from .._validation import (AnyOf, Boolean, Custom, Integer, Options, Problem, Real, brief_list,
                           store_params)
from ..exceptions import InvalidParameterError
from ..persist import register
from ._base import BaseHead, fit_standardizer, softmax

logger = logging.getLogger(__name__)

__all__ = ["LogisticHead"]


def _weights_by_class(value):
    if not isinstance(value, dict):
        raise Problem()
    return value


def _class_weight_by_index(class_weight, classes):
    """``class_weight`` for class indices 0..n-1 (what ``_fit`` sees) from one keyed by the
    user's labels; a key that is not a label of ``classes`` is an error naming it."""
    if not isinstance(class_weight, dict):
        return class_weight
    index = {label: i for i, label in enumerate(np.asarray(classes).tolist())}
    unknown = [key for key in class_weight if key not in index]
    if unknown:
        raise InvalidParameterError(
            f"class_weight has key(s) {brief_list(unknown)}, which are not labels of y (its "
            f"labels: {brief_list(list(index))}). Key class_weight by the labels, e.g. "
            f"{{{next(iter(index))!r}: 2.0}}.")
    return {index[key]: float(weight) for key, weight in class_weight.items()}


@register
class LogisticHead(BaseHead):
    """Multinomial logistic regression on standardised features.

    Parameters
    ----------
    C : float, default=1.0
        Inverse strength of the L2 penalty (scikit-learn's ``C``).
    standardize : bool, default=True
        Centre and scale every feature with the training mean and standard deviation.
    max_iter : int, default=1000
        Iterations of L-BFGS.
    class_weight : None, 'balanced' or dict, default=None
        Weight of each class in the loss: equal (None), inversely proportional to the class
        frequencies ('balanced'), or ``{label: weight}`` (scikit-learn's ``class_weight``).
    random_state : int, RandomState or None, default=None
        Unused by L-BFGS (deterministic); kept for a uniform interface.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    coef_ : ndarray of shape (1 or n_classes, n_features)
        Weights on the standardised features.
    intercept_ : ndarray of shape (1 or n_classes,)
    n_iter_ : int

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> X, y = make_blobs(60, centers=3, random_state=0)
    >>> head = LogisticHead().fit(X, y)
    >>> head.predict_proba(X[:2]).round(2).sum(axis=1)
    array([1., 1.])
    """

    #: The allowed values of each constructor parameter (checked by ``fit``).
    _parameter_constraints = {
        "C": Real(0, None, low_open=True),
        "standardize": Boolean(),
        "max_iter": Integer(1),
        "class_weight": AnyOf(Options(None, "balanced"),
                              Custom(_weights_by_class, "a dict of class -> weight"),
                              what="None, 'balanced' or a dict of class -> weight"),
    }

    def __init__(self, C=1.0, standardize=True, max_iter=1000, class_weight=None,
                 random_state=None):
        store_params(self, locals())

    def _check_label_params(self, classes):
        _class_weight_by_index(self.class_weight, classes)

    def _fit(self, X, y, n_classes, random_state):
        self.mean_, self.scale_ = fit_standardizer(X, enabled=self.standardize)
        # y holds class indices here: a {label: weight} dict is re-keyed to match.
        model = LogisticRegression(C=self.C, max_iter=self.max_iter,
                                   class_weight=_class_weight_by_index(self.class_weight,
                                                                       self.classes_))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit((X - self.mean_) / self.scale_, y)
        for warning in caught:
            if issubclass(warning.category, ConvergenceWarning):
                warnings.warn(f"LogisticHead did not converge in max_iter={self.max_iter} "
                              f"iterations; raise max_iter or lower C.", ConvergenceWarning,
                              stacklevel=3)
        self.coef_, self.intercept_ = model.coef_, model.intercept_
        self.n_iter_ = int(np.max(model.n_iter_))

    def decision_function(self, X):
        """Logits (multi-class) or the log-odds of ``classes_[1]`` (two classes)."""
        X = self._validate_X_predict(X)
        z = ((X - self.mean_) / self.scale_) @ self.coef_.T + self.intercept_
        return z[:, 0] if z.shape[1] == 1 else z

    def _predict_proba(self, X):
        z = ((X - self.mean_) / self.scale_) @ self.coef_.T + self.intercept_
        if z.shape[1] == 1:
            p = expit(z[:, 0])
            return np.column_stack([1 - p, p])
        return softmax(z)

    def _get_fitted_state(self):
        return {"n_iter_": self.n_iter_}, {"mean_": self.mean_, "scale_": self.scale_,
                                          "coef_": self.coef_, "intercept_": self.intercept_}

    def _set_fitted_state(self, state, arrays):
        self.n_iter_ = int(state["n_iter_"])
        for name in ("mean_", "scale_", "coef_", "intercept_"):
            setattr(self, name, arrays[name])
