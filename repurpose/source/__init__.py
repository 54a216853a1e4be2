"""Source models: loaders (checkpoint, Gluon, zoo, ONNX, and model specs such as
``zoo:NAME``), the layer table, and surgery that returns new models."""
from ._graph import Layer
from ._model import SourceModel
from ._onnx import supported_onnx_operators
from ._spec import parse_spec

__all__ = ["SourceModel", "Layer", "supported_onnx_operators", "parse_spec"]
