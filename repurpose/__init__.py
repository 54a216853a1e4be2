"""repurpose: transfer learning on Apache MXNet.

Take a pretrained network, look inside and cut it, extract features from any layers, and
repurpose it for a new task.
"""
from ._version import __version__
from .source import SourceModel
from .zoo import list_models

__all__ = ["SourceModel", "list_models", "__version__"]
