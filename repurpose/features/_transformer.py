"""``FeatureExtractor``: a source model and layers as a scikit-learn transformer."""
import logging

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import check_choice, check_layer_names
from ..exceptions import InvalidParameterError
from ..source import SourceModel
from ._cache import array_fingerprint, default_cache
from ._checks import POOLS, PRECISIONS
from ._extract import extract_features

logger = logging.getLogger(__name__)

__all__ = ["FeatureExtractor", "resolve_layers"]


def resolve_layers(source, layers):
    """Return ``layers`` as a list, or the model card's feature layer when None."""
    if layers is None:
        feature_layer = source.metadata.get("feature_layer")
        if feature_layer is None:
            raise InvalidParameterError(
                "layers=None needs a model whose metadata names a 'feature_layer' (zoo models "
                "do); pass layers=('layer_name', ...) from source.layer_names.")
        return [feature_layer]
    if isinstance(layers, str):
        return [layers]
    return list(layers)


def _check_source(source, owner):
    if not isinstance(source, SourceModel):
        raise InvalidParameterError(
            f"{owner} needs source=SourceModel(...), got {type(source).__name__}. Load one "
            f"with SourceModel.from_zoo / from_checkpoint / from_gluon / from_onnx.")


def cached_features(source, X, layers, pool, batch_size, ctx, precision, progress, cache):
    """Features of ``X`` per layer, from the feature cache when the same input was seen."""
    key = None
    if cache:
        fingerprint = array_fingerprint(X)
        if fingerprint is not None:
            key = (source.sha256, tuple(layers), pool, precision, fingerprint)
            hit = default_cache.get(key)
            if hit is not None:
                logger.debug("Feature cache hit for %d samples", len(X))
                return hit
    features = extract_features(source, X, layers, batch_size=batch_size, ctx=ctx, pool=pool,
                                progress=progress, precision=precision)
    if key is not None:
        default_cache.put(key, features)
    return features


class FeatureExtractor(TransformerMixin, BaseEstimator):
    """Features of a source model's layers as a scikit-learn transformer.

    ``fit`` checks the parameters and learns nothing; ``transform`` returns the features of
    ``layers``, concatenated in that order, so any scikit-learn estimator can follow it in a
    ``Pipeline``.

    Parameters
    ----------
    source : SourceModel
    layers : tuple of str, default=None
        Layer names; None takes the model card's ``feature_layer``.
    pool : {None, 'avg', 'max'}, default=None
    batch_size : int, default=64
    ctx : str, mx.Context or list, default='cpu'
    precision : {'float32', 'int8', 'bf16'}, default='float32'
    progress : bool, default=False
    cache : bool, default=True
        Reuse features of identical input arrays (see :mod:`repurpose.features._cache`).

    Attributes
    ----------
    layers_ : list of str
    layer_dims_ : dict of str -> int
        Width of each layer's features; filled by the first ``transform``.

    Examples
    --------
    >>> from repurpose import SourceModel
    >>> from repurpose.data import load_digits_images
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_digits_images(classes=range(5, 10))
    >>> pipe = make_pipeline(FeatureExtractor(SourceModel.from_zoo('digits_cnn')),
    ...                      LogisticRegression(max_iter=500))
    >>> pipe.fit(X[:100], y[:100]).score(X[100:200], y[100:200]) > 0.7
    True
    """

    def __init__(self, source, layers=None, pool=None, batch_size=64, ctx="cpu",
                 precision="float32", progress=False, cache=True):
        self.source = source
        self.layers = layers
        self.pool = pool
        self.batch_size = batch_size
        self.ctx = ctx
        self.precision = precision
        self.progress = progress
        self.cache = cache

    def fit(self, X=None, y=None):
        """Check the parameters; returns ``self``."""
        _check_source(self.source, type(self).__name__)
        layers = resolve_layers(self.source, self.layers)
        if not layers:
            raise InvalidParameterError("layers is empty; name at least one layer.")
        check_layer_names(layers, self.source.layer_names, "SourceModel.layer_names")
        check_choice(self.pool, "pool", POOLS)
        check_choice(self.precision, "precision", PRECISIONS)
        self.layers_ = layers
        self.layer_dims_ = {}
        return self

    def extract(self, X):
        """Features of ``X`` as a dict layer -> (n_samples, n_features) array."""
        check_is_fitted(self, "layers_")
        features = cached_features(self.source, X, self.layers_, self.pool, self.batch_size,
                                   self.ctx, self.precision, self.progress, self.cache)
        self.layer_dims_ = {layer: int(features[layer].shape[1]) for layer in self.layers_}
        return features

    def transform(self, X):
        """Concatenated features of ``X``: ndarray of shape (n_samples, sum of widths)."""
        features = self.extract(X)
        parts = [features[layer] for layer in self.layers_]
        return parts[0].copy() if len(parts) == 1 else np.hstack(parts)

    def get_feature_names_out(self, input_features=None):
        """Names ``'<layer>_<i>'`` of the output columns (after a transform)."""
        check_is_fitted(self, "layers_")
        return np.array([f"{layer}_{i}" for layer in self.layers_
                         for i in range(self.layer_dims_.get(layer, 0))], dtype=object)
