"""Source model -> features: one forward pass per batch, pooling, streaming to disk, a
feature cache, :class:`FeatureExtractor` (a scikit-learn transformer), and sharded extraction
(in-process or on Dask) into a resumable :class:`FeatureStore`."""
from ._cache import FeatureCache, default_cache
from ._extract import extract_features, feature_block
from ._sharded import (ClusterError, FeatureStore, ShardedArray, StoreMismatchError,
                       check_workers, connect_scheduler, extract_to_store)
from ._transformer import FeatureExtractor

__all__ = ["extract_features", "feature_block", "FeatureExtractor", "FeatureCache",
           "default_cache", "extract_to_store", "FeatureStore", "ShardedArray",
           "StoreMismatchError", "ClusterError", "connect_scheduler", "check_workers"]
