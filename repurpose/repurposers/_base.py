"""Repurposers: a source model's features (``FeatureExtractor``) composed with a head.

Each concrete repurposer spells out, in its constructor, the extraction parameters and its
head's hyper-parameters (scikit-learn's ``get_params`` reads the signature, so there is no
``**head_params``), with the head's defaults. The head stays their one home: the
repurposer's constraint table holds the head's own constraint objects, so values, checks and
messages are the head's. ``fit`` extracts features once (through the feature cache, so other
heads on the same data reuse them) and fits a fresh head; predictions flow source ->
features -> head.
"""
import logging
from abc import ABC

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import Integer, Options, check_params
from ..exceptions import DataError
from ..features import FeatureExtractor
from ..features._checks import POOLS, PRECISIONS, check_input_shape, known_length
from ..heads._base import check_labels
from ..persist import save as _save

logger = logging.getLogger(__name__)

__all__ = ["BaseRepurposer", "EXTRACTION_PARAMS", "EXTRACTION_CONSTRAINTS"]

#: Constructor parameters that belong to feature extraction, not to the head.
EXTRACTION_PARAMS = ("source", "layers", "pool", "batch_size", "ctx", "precision",
                     "cache_features", "progress")
#: Constraints of the extraction parameters that need no source model (``FeatureExtractor``
#: checks the source and the layer names).
EXTRACTION_CONSTRAINTS = {"pool": Options(*POOLS), "batch_size": Integer(1),
                          "precision": Options(*PRECISIONS)}


class BaseRepurposer(ClassifierMixin, BaseEstimator, ABC):
    """Base of the repurposers: feature extraction + a head of class :attr:`_head_class`.

    Attributes
    ----------
    head_ : BaseHead
        The fitted head (set by ``fit``, like the attributes below).
    classes_ : ndarray of shape (n_classes,)
        The labels seen in fit, sorted; ``predict_proba`` columns follow them.
    layers_ : list of str
        The layers features were extracted from.
    layer_dims_ : dict of str -> int
        Number of features of each layer.

    Examples
    --------
    A new repurposer names its head class and spells out the extraction parameters
    (:data:`EXTRACTION_PARAMS`) and the head's hyper-parameters (none here) in its
    constructor, with the head's defaults; its constraint table is built from the head's
    (:attr:`_parameter_constraints`):

    >>> from scipy.special import softmax
    >>> from repurpose import SourceModel
    >>> from repurpose.data import load_digits_images
    >>> from repurpose.heads import BaseHead
    >>> class NearestMeanHead(BaseHead):
    ...     def _fit(self, X, y, n_classes, random_state):
    ...         self.means_ = np.stack([X[y == k].mean(axis=0) for k in range(n_classes)])
    ...     def _predict_proba(self, X):
    ...         return softmax(-((X[:, None, :] - self.means_) ** 2).sum(axis=2), axis=1)
    ...     def _get_fitted_state(self):
    ...         return {}, {'means_': self.means_}
    ...     def _set_fitted_state(self, state, arrays):
    ...         self.means_ = arrays['means_']
    >>> from repurpose._validation import store_params
    >>> class NearestMeanRepurposer(BaseRepurposer):
    ...     _head_class = NearestMeanHead
    ...     def __init__(self, source, layers=None, pool=None, batch_size=64, ctx='cpu',
    ...                  precision='float32', cache_features=True, progress=False):
    ...         store_params(self, locals())
    >>> X, y = load_digits_images(classes=range(5, 10))
    >>> model = NearestMeanRepurposer(SourceModel.from_zoo('digits_cnn'),
    ...                               layers=('fc1_relu_fwd',)).fit(X[:100], y[:100])
    >>> model.layer_dims_, model.score(X[100:200], y[100:200]) > 0.6
    ({'fc1_relu_fwd': 64}, True)
    """

    #: The head class; its constructor parameters are also this class's.
    _head_class = None
    #: ``{head parameter: this class's name for it}`` where a head parameter's name is taken
    #: by an extraction parameter (``BnnHead.batch_size`` -> ``train_batch_size``).
    _head_renames = {}
    #: The allowed values of each constructor parameter, built for each subclass (see
    #: :meth:`__init_subclass__`): :data:`EXTRACTION_CONSTRAINTS` and the head class's own
    #: constraint objects under this class's names.
    _parameter_constraints = EXTRACTION_CONSTRAINTS

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls._head_class is not None and "_parameter_constraints" not in vars(cls):
            cls._parameter_constraints = {**EXTRACTION_CONSTRAINTS, **{
                cls._head_renames.get(name, name): constraint
                for name, constraint in cls._head_class._parameter_constraints.items()}}

    def _extractor(self, layers=None):
        """The feature extractor; ``layers`` overrides the constructor's (after fit)."""
        return FeatureExtractor(self.source, layers=self.layers if layers is None else layers,
                                pool=self.pool,
                                batch_size=self.batch_size, ctx=self.ctx,
                                precision=self.precision, progress=self.progress,
                                cache=self.cache_features)

    def _head_params(self):
        """The head's constructor parameters (under the head's names) from this object."""
        return {name: getattr(self, self._head_renames.get(name, name))
                for name in self._head_class._get_param_names()}

    def _make_head(self, layer_dims=None):
        head = self._head_class(**self._head_params())
        head._feature_origin = list(self.layers_)
        return head

    def _validate_params(self):
        """Check the extraction and head parameters without data (cheap, before any work).

        Returns
        -------
        FeatureExtractor
            The extractor, checked (``fit()`` on no data).
        """
        extractor = self._extractor().fit()
        check_params(self.get_params(deep=False), self._parameter_constraints)
        # The head's checks between its parameters (its table passes: same constraints).
        self._head_class(**self._head_params())._validate_params()
        return extractor

    def extract_features(self, X):
        """Concatenated features of ``X`` for the head (after ``fit``, or on its own)."""
        extractor = self._extractor().fit()
        features = extractor.transform(X)
        self.layer_dims_ = dict(extractor.layer_dims_)
        return features

    def fit(self, X, y):
        """Extract features of ``X`` and fit a new head on them with labels ``y``.

        Parameters
        ----------
        X : ndarray, NDArray, DataIter, Dataset, DataLoader or ImageFolder
            Inputs of the source model.
        y : array-like of shape (n_samples,)
            Labels of any values.

        Returns
        -------
        self

        Raises
        ------
        DataError
            For ``y=None``, zero samples, or labels that mix types (``[1, 'a']``), before
            any extraction.
        """
        # Everything cheap first: extraction parameters, head parameters, labels.
        extractor = self._validate_params()
        y = check_labels(y, f"{type(self).__name__}.fit")  # object labels -> str array
        self.layers_ = list(extractor.layers_)
        head = self._make_head()
        n_samples = known_length(X)
        if y.size == 0 or n_samples == 0:
            raise DataError(
                f"{type(self).__name__}.fit got 0 samples ({len(y)} labels"
                f"{'' if n_samples is None else f', X of shape {tuple(X.shape)}'}); it needs "
                f"labelled samples of at least 2 classes. Pass non-empty X and y.")
        head._check_targets(y)
        if n_samples is not None and n_samples != len(y):
            raise ValueError(f"X has {n_samples} samples but y has {len(y)} labels.")
        features = extractor.transform(X)
        if len(features) != len(y):
            raise ValueError(f"X has {len(features)} samples but y has {len(y)} labels.")
        self.layer_dims_ = dict(extractor.layer_dims_)
        head = self._make_head(self.layer_dims_)
        head.fit(features, y)
        self.head_ = head
        self.classes_ = head.classes_
        logger.info("%s fitted on %d samples, %d features from %s", type(self).__name__,
                    len(y), features.shape[1], self.layers_)
        return self

    def _features_for_predict(self, X):
        check_is_fitted(self, "head_")
        if known_length(X) == 0:  # zero samples: zero rows of features, no extraction
            check_input_shape(self.source, tuple(X.shape[1:]), f"X (shape {tuple(X.shape)})")
            return np.zeros((0, sum(self.layer_dims_.values())), dtype=np.float32)
        extractor = self._extractor(layers=self.layers_).fit()
        return extractor.transform(X)

    def predict_proba(self, X):
        """Class probabilities of ``X``; columns follow :attr:`classes_` (zero rows for an
        array of zero samples)."""
        features = self._features_for_predict(X)  # NotFittedError before fit
        return self.head_.predict_proba(features)

    def predict(self, X):
        """Most probable class of each sample of ``X``."""
        features = self._features_for_predict(X)
        return self.head_.predict(features)

    def score(self, X, y, sample_weight=None):
        """Accuracy on ``(X, y)``."""
        features = self._features_for_predict(X)
        return self.head_.score(features, y, sample_weight=sample_weight)

    def save(self, path, overwrite=False):
        """Save to the folder ``path`` (JSON manifest + arrays + the source model).

        ``repurpose.load(path)`` returns an object of the same class that predicts the same.
        """
        return _save(self, path, overwrite=overwrite)

    def _get_state(self):
        check_is_fitted(self, "head_")
        head_state, head_arrays = self.head_._get_state()
        state = {"layers_": list(self.layers_), "layer_dims_": self.layer_dims_,
                 "head": head_state}
        return state, {f"head/{k}": v for k, v in head_arrays.items()}

    def _set_state(self, state, arrays):
        self.layers_ = list(state["layers_"])
        self.layer_dims_ = {k: int(v) for k, v in state["layer_dims_"].items()}
        head = self._make_head(self.layer_dims_)
        head._set_state(state["head"], {k[len("head/"):]: v for k, v in arrays.items()
                                        if k.startswith("head/")})
        self.head_ = head
        self.classes_ = head.classes_
        return self
