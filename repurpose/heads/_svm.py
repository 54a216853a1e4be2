"""Support-vector-machine head with calibrated probabilities.

One binary SVM per class (one-vs-rest) gives a decision vector per sample; a multinomial
logistic regression fitted on *cross-validated* decision vectors turns it into probabilities
(Platt scaling, generalised from two classes to several as a calibration map on the decision
values). Each binary SVM is kept as its support vectors, dual coefficients and intercept, so
predictions are computed here from plain arrays: that is what makes the head saveable as JSON +
arrays without pickling scikit-learn's libsvm objects, whose state is private.
"""
import logging
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC, LinearSVC

from .._validation import AnyOf, Integer, Options, Real, store_params
from ..persist import register
from ._base import BaseHead, fit_standardizer, softmax

logger = logging.getLogger(__name__)

__all__ = ["SvmHead"]

KERNELS = ("rbf", "linear")


class _OvrSvm:
    """K binary SVMs as arrays: decision values from support vectors (rbf) or weights (linear)."""

    def __init__(self, kernel, C, gamma, max_iter, random_state):
        self.kernel, self.C, self.gamma = kernel, C, gamma
        self.max_iter, self.random_state = max_iter, random_state

    def fit(self, X, y, n_classes):
        self.parts = []
        targets = range(n_classes) if n_classes > 2 else [1]
        for k in targets:
            yk = (y == k).astype(int)
            if self.kernel == "linear":
                # dual="auto" solves the primal when n_samples > n_features, which converges
                # in tens of iterations where the dual needs thousands.
                model = LinearSVC(C=self.C, dual="auto", max_iter=self.max_iter,
                                  random_state=self.random_state)
                model.fit(X, yk)
                self.n_iter = max(getattr(self, "n_iter", 0), int(np.max(model.n_iter_)))
                self.parts.append((model.coef_[0], float(model.intercept_[0])))
            else:
                model = SVC(C=self.C, kernel="rbf", gamma=self.gamma, max_iter=-1)
                model.fit(X, yk)
                self.n_iter = max(getattr(self, "n_iter", 0), int(np.max(model.n_iter_)))
                self.parts.append((model.support_vectors_, model.dual_coef_[0],
                                   float(model.intercept_[0])))
        return self

    def decision(self, X):
        columns = []
        for part in self.parts:
            if self.kernel == "linear":
                weights, intercept = part
                columns.append(X @ weights + intercept)
            else:
                vectors, dual, intercept = part
                columns.append(rbf_kernel(X, vectors, gamma=self.gamma) @ dual + intercept)
        return np.column_stack(columns)


def _fit_vector_scaling(decisions, y, n_classes):
    """Fit ``logits = a * decision + b`` per class by minimising the NLL (L-BFGS).

    With two classes this is Platt scaling; with more, "vector scaling" (Guo et al., 2017):
    one slope and one offset per class, then a softmax. Only 2K numbers are fitted, so the
    map cannot overfit the cross-validated decisions the way a full K x K logistic map does
    on small data; written out here (30 lines) because scikit-learn exposes no public
    function for it.
    """
    from scipy.optimize import minimize

    k = decisions.shape[1]
    onehot = np.eye(n_classes)[y] if k > 1 else y[:, None].astype(float)

    def nll(theta):
        a, b = theta[:k], theta[k:]
        z = decisions * a + b
        if k == 1:
            p = 1.0 / (1.0 + np.exp(-z))
            p = np.clip(p, 1e-12, 1 - 1e-12)
            loss = -np.mean(onehot * np.log(p) + (1 - onehot) * np.log(1 - p))
            grad_z = (p - onehot) / len(z)
        else:
            p = softmax(z)
            loss = -np.mean(np.log(np.clip(np.sum(p * onehot, axis=1), 1e-300, None)))
            grad_z = (p - onehot) / len(z)
        grad = np.concatenate([np.sum(grad_z * decisions, axis=0), np.sum(grad_z, axis=0)])
        # A weak Gaussian prior (ridge on slopes towards 1, offsets towards 0) keeps the map
        # finite when the decisions separate the classes perfectly.
        loss += 1e-3 * (np.sum((a - 1) ** 2) + np.sum(b ** 2))
        grad += 2e-3 * np.concatenate([a - 1, b])
        return loss, grad

    result = minimize(nll, np.concatenate([np.ones(k), np.zeros(k)]), jac=True,
                      method="L-BFGS-B")
    return result.x[:k], result.x[k:]


@register
class SvmHead(BaseHead):
    """Support vector machine with probabilities calibrated on cross-validated decisions.

    Parameters
    ----------
    C : float, default=1.0
        Penalty of the margin violations.
    kernel : {'rbf', 'linear'}, default='rbf'
        ``'linear'`` trains in the primal with liblinear: the path for large numbers of
        samples.
    gamma : 'scale' or float, default='scale'
        RBF width; ``'scale'`` is 1 / (n_features * variance of the standardised X), which
        is 1 / n_features after standardisation.
    n_folds : int, default=3
        Folds of the cross-validation that produces the decisions the calibration map is
        fitted on (reduced to the smallest class count if that is lower).
    standardize : bool, default=True
    max_iter : int, default=10000
        Iterations of liblinear (``kernel='linear'``).
    random_state : int, RandomState or None, default=None
        Folds of the calibration and liblinear's coordinate order.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    gamma_ : float
        The RBF width used.
    n_iter_ : int
        Most iterations any of the binary SVMs took.
    calibration_coef_, calibration_intercept_ : ndarray of shape (n_classes,) (1 for 2 classes)
        The calibration map from decision values to logits: ``a * d + b`` per class.

    References
    ----------
    .. [1] J. Platt. "Probabilistic outputs for support vector machines and comparisons to
       regularized likelihood methods". Advances in Large Margin Classifiers, 1999.
    .. [2] C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger. "On Calibration of Modern Neural
       Networks". ICML 2017 (vector scaling).

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> X, y = make_blobs(60, centers=3, cluster_std=0.5, random_state=0)
    >>> head = SvmHead(random_state=0).fit(X, y)
    >>> head.score(X, y) > 0.9
    True
    """

    _min_samples_per_class = 2

    #: The allowed values of each constructor parameter (checked by ``fit``).
    _parameter_constraints = {
        "C": Real(0, None, low_open=True),
        "kernel": Options(*KERNELS),
        "gamma": AnyOf(Options("scale"), Real(0, None, low_open=True),
                       what="'scale' or a positive number"),
        "n_folds": Integer(2),
    }

    def __init__(self, C=1.0, kernel="rbf", gamma="scale", n_folds=3, standardize=True,
                 max_iter=10000, random_state=None):
        store_params(self, locals())

    def _fit(self, X, y, n_classes, random_state):
        self.mean_, self.scale_ = fit_standardizer(X, enabled=self.standardize)
        Xs = (X - self.mean_) / self.scale_
        variance = Xs.var()
        self.gamma_ = float(1.0 / (X.shape[1] * variance) if self.gamma == "scale" and variance > 0
                            else 1.0 if self.gamma == "scale" else self.gamma)
        seed = int(random_state.randint(0, 2**31 - 1))
        make = lambda: _OvrSvm(self.kernel, self.C, self.gamma_, self.max_iter, seed)  # noqa: E731
        n_folds = min(self.n_folds, int(np.bincount(y).min()))
        decisions = np.zeros((len(y), n_classes if n_classes > 2 else 1))
        folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            for train, test in folds.split(Xs, y):
                if len(np.unique(y[train])) < n_classes:
                    continue  # cannot happen with stratified folds of >= n_folds per class
                decisions[test] = make().fit(Xs[train], y[train], n_classes).decision(Xs[test])
            self._svm = make().fit(Xs, y, n_classes)
            self.n_iter_ = self._svm.n_iter
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            warnings.warn(f"SvmHead's liblinear did not converge in max_iter={self.max_iter}; "
                          f"raise max_iter or lower C.", ConvergenceWarning, stacklevel=3)
        self.calibration_coef_, self.calibration_intercept_ = _fit_vector_scaling(
            decisions, y, n_classes)

    def decision_function(self, X):
        """Calibrated logits: shape (n_samples, n_classes), or (n_samples,) for 2 classes
        (the log-odds of ``classes_[1]``). Their argmax is ``predict``."""
        z = self._logits(self._validate_X_predict(X))
        return z[:, 0] if z.shape[1] == 1 else z

    def svm_decision_function(self, X):
        """Raw one-vs-rest SVM decision values, before calibration."""
        X = self._validate_X_predict(X)
        return self._svm.decision((X - self.mean_) / self.scale_)

    def _logits(self, X):
        decisions = self._svm.decision((X - self.mean_) / self.scale_)
        return decisions * self.calibration_coef_ + self.calibration_intercept_

    def _predict_proba(self, X):
        z = self._logits(X)
        if z.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.column_stack([1 - p, p])
        return softmax(z)

    def _get_fitted_state(self):
        arrays = {"mean_": self.mean_, "scale_": self.scale_,
                  "calibration_coef_": self.calibration_coef_,
                  "calibration_intercept_": self.calibration_intercept_}
        for i, part in enumerate(self._svm.parts):
            for j, value in enumerate(part):
                arrays[f"svm{i}_{j}"] = np.asarray(value)
        return {"gamma_": self.gamma_, "n_parts": len(self._svm.parts),
                "n_iter_": self.n_iter_}, arrays

    def _set_fitted_state(self, state, arrays):
        for name in ("mean_", "scale_", "calibration_coef_", "calibration_intercept_"):
            setattr(self, name, arrays[name])
        self.gamma_ = float(state["gamma_"])
        self.n_iter_ = int(state["n_iter_"])
        svm = _OvrSvm(self.kernel, self.C, self.gamma_, self.max_iter, None)
        n_values = 2 if self.kernel == "linear" else 3
        svm.parts = [tuple(arrays[f"svm{i}_{j}"] if j < n_values - 1
                           else float(arrays[f"svm{i}_{j}"]) for j in range(n_values))
                     for i in range(state["n_parts"])]
        self._svm = svm
