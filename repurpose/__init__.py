"""repurpose: transfer learning on Apache MXNet.

Take a pretrained network, look inside and cut it, extract features from any layers, and
repurpose it for a new task with a head that says how sure it is.

The names below are imported on first use (PEP 562), so ``import repurpose`` (and the
command line's ``--help``) does not load MXNet or scikit-learn until something needs them.
"""
import importlib

from ._version import __version__

#: Public name -> the module that defines it.
_EXPORTS = {
    "SourceModel": "repurpose.source", "FeatureExtractor": "repurpose.features",
    "extract_features": "repurpose.features", "LogisticRepurposer": "repurpose.repurposers",
    "SvmRepurposer": "repurpose.repurposers", "GpRepurposer": "repurpose.repurposers",
    "BnnRepurposer": "repurpose.repurposers", "FineTuneRepurposer": "repurpose.repurposers",
    "RandomFreezeRepurposer": "repurpose.repurposers", "load": "repurpose.persist",
    "list_models": "repurpose.zoo",
}
_MODULES = ("heads", "metrics")

__all__ = ["SourceModel", "FeatureExtractor", "extract_features", "LogisticRepurposer",
           "SvmRepurposer", "GpRepurposer", "BnnRepurposer", "FineTuneRepurposer",
           "RandomFreezeRepurposer", "load", "list_models", "heads", "metrics", "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"repurpose.{name}")
    else:
        raise AttributeError(f"module 'repurpose' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
