"""Source model -> features: one forward pass per batch, pooling, streaming to disk, a
feature cache, and :class:`FeatureExtractor` (a scikit-learn transformer)."""
from ._cache import FeatureCache, default_cache
from ._extract import extract_features, feature_block
from ._transformer import FeatureExtractor

__all__ = ["extract_features", "feature_block", "FeatureExtractor", "FeatureCache",
           "default_cache"]
