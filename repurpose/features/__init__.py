"""Source model -> features: one forward pass per batch, pooling, streaming to disk, a
feature cache, :class:`FeatureExtractor` (a scikit-learn transformer), and sharded extraction
(in-process or on Dask) into a resumable :class:`FeatureStore`.

Imports run one way: _checks, _store <- _quantize <- _extract <- _transformer; feature
stores: _inputs, _manifest <- _worker, _reader <- _sharded (the driver, in-process or Dask).
"""
from .._dask import check_workers, connect_scheduler
from ..exceptions import ClusterError, StoreMismatchError
from ._cache import FeatureCache, default_cache
from ._extract import extract_features, feature_block
from ._reader import FeatureStore, ShardedArray
from ._sharded import extract_to_store
from ._transformer import FeatureExtractor

__all__ = ["extract_features", "feature_block", "FeatureExtractor", "FeatureCache",
           "default_cache", "extract_to_store", "FeatureStore", "ShardedArray",
           "StoreMismatchError", "ClusterError", "connect_scheduler", "check_workers"]
