"""repurpose: transfer learning on Apache MXNet.

Take a pretrained network, look inside and cut it, extract features from any layers, and
repurpose it for a new task with a head that says how sure it is.
"""
from . import heads, metrics
from ._version import __version__
from .features import FeatureExtractor, extract_features
from .persist import load
from .repurposers import (BnnRepurposer, FineTuneRepurposer, GpRepurposer, LogisticRepurposer,
                          RandomFreezeRepurposer, SvmRepurposer)
from .source import SourceModel
from .zoo import list_models

__all__ = ["SourceModel", "FeatureExtractor", "extract_features", "LogisticRepurposer", "SvmRepurposer",
           "GpRepurposer", "BnnRepurposer", "FineTuneRepurposer", "RandomFreezeRepurposer",
           "load",
           "list_models", "heads", "metrics", "__version__"]
