"""Source model -> features: one forward pass per batch, pooling, streaming to disk."""
from ._extract import extract_features, feature_block

__all__ = ["extract_features", "feature_block"]
