"""Translations of ONNX operators into MXNet symbols, registered in front of MXNet's own table.

Each function takes ``(attrs, inputs, cv)`` like the entries of MXNet's
``_import_helper._convert_map``: the node's attributes, its inputs as MXNet symbols (None for
an absent optional input; known values arrive as parameter variables) and the
:class:`~._onnx_convert.Converter`, which knows the inputs' values, shapes and batch axes
(``cv.const(i)``, ``cv.shape(i)``, ``cv.batch(i)``). It returns the output symbol, a list
of them, or an input's :class:`~._onnx_convert.Value` itself for operators that compute
nothing at inference (Identity, Dropout).

Why translations of our own, beside MXNet's table:

* operators MXNet's importer lacks (Erf, Gelu, LayerNormalization, HardSwish, Einsum, Where,
  Expand, Mod, Resize, GroupNormalization, ...);
* newer operator versions whose axes, pads, splits or scales come as inputs (opset 10-18),
  which MXNet's translations read from the older attributes;
* correctness where MXNet's translations differ from the ONNX definitions: reductions
  default to ``keepdims=1``; MatMul broadcasts its batch axes (``linalg_gemm2`` does not);
  pooling honours ``ceil_mode``, ``count_include_pad`` and ``auto_pad``; Softmax below opset
  13 flattens from ``axis``; Gather with a scalar index drops the axis; Reshape keeps the
  batch size free (see :mod:`._onnx_convert`);
* speed: a MatMul or Gemm with a constant weight becomes ``FullyConnected`` (one fused
  GEMM that MKLDNN runs well), an arithmetic op with a scalar constant becomes a scalar op
  without a parameter;
* names: every operator is named after its ONNX node, so the layer table reads like the
  source model.

The translations are written by family: :mod:`._onnx_ops_math` (no-ops, elementwise,
activations, linear algebra), :mod:`._onnx_ops_nn` (convolution, normalisation, pooling,
reductions) and :mod:`._onnx_ops_shape` (shapes and layout, resizing), on the shared helpers
of :mod:`._onnx_ops_helpers`. Importing this module registers them all.
"""
# Imported in this order, the families register their translations in TRANSLATIONS in the
# order of the single module they were first written in.
from . import _onnx_ops_math, _onnx_ops_nn, _onnx_ops_shape  # noqa: F401
