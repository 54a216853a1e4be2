"""Logistic-regression head (scikit-learn's ``LogisticRegression`` on standardised features)."""
import logging
import numbers
import warnings

import numpy as np
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from .._validation import check_positive_int
from ..exceptions import InvalidParameterError
from ..persist import register
from ._base import BaseHead, fit_standardizer, softmax

logger = logging.getLogger(__name__)

__all__ = ["LogisticHead"]


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
    class_weight : {None, 'balanced'}, default=None
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

    def __init__(self, C=1.0, standardize=True, max_iter=1000, class_weight=None,
                 random_state=None):
        self.C = C
        self.standardize = standardize
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.random_state = random_state

    def _validate_params(self):
        """The checks that need no data (run before any feature extraction)."""
        C = self.C
        if (isinstance(C, (bool, np.bool_)) or not isinstance(C, numbers.Real)
                or not np.isfinite(C) or C <= 0):
            raise InvalidParameterError(f"C must be a positive number (e.g. 1.0), got {C!r}.")
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise InvalidParameterError(f"standardize must be True or False, got "
                                        f"{self.standardize!r}.")
        check_positive_int(self.max_iter, "max_iter")
        if not (self.class_weight is None or self.class_weight == "balanced"
                or isinstance(self.class_weight, dict)):
            raise InvalidParameterError(f"class_weight must be None, 'balanced' or a dict of "
                                        f"class -> weight, got {self.class_weight!r}.")

    def _fit(self, X, y, n_classes, random_state):
        if self.standardize:
            self.mean_, self.scale_ = fit_standardizer(X)
        else:
            self.mean_, self.scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        model = LogisticRegression(C=self.C, max_iter=self.max_iter,
                                   class_weight=self.class_weight)
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
