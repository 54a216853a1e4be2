"""The ONNX -> MXNet graph conversion loop: constant folding, static shapes, the batch axis.

MXNet's importer (``mxnet.contrib.onnx.onnx2mx.import_onnx.GraphProto``) walks the ONNX
nodes in order and turns each into MXNet symbols through its conversion table
(``_import_helper._convert_map``). That walk assumes what old exporters wrote: shapes, axes
and pads as attributes or initializers, and no shape arithmetic. What PyTorch writes today
needs three things more, which :class:`Converter` (a ``GraphProto`` subclass, so that
MXNet's own translations keep working unchanged) adds around the same table:

* **Constant folding.** A node whose inputs are all known values is evaluated at import time
  by onnx's reference implementation of that operator (``onnx.reference``, exact ONNX
  semantics at every opset), never turned into MXNet operators. ``Shape`` and ``Size`` of a
  computed tensor are known values too: the model's static sample shape is known, so the
  ``Shape -> Gather -> Concat -> Reshape`` chains PyTorch writes, ``ConstantOfShape``, pads,
  axes, starts and ends all become plain numbers. Identity nodes on weights disappear, which
  is also why a weight never shows up as a layer.
* **A symbolic batch axis.** Folding needs concrete shapes, so the batch size is fixed at
  ``batch0`` while converting (the file's own batch size when it declares one, as
  ``torch.onnx.export(..., dynamo=True)`` does). The graph built must still work for any
  batch size: every computed tensor's *batch axis* is tracked (found by shape inference at
  two batch sizes), and every translation that bakes a size into the graph (reshape
  targets, broadcasts) writes the batch-dependent entry in a batch-free way (``-1``, ``0``,
  ``broadcast_like`` against the input). A reshape target is matched to its input by the
  row-major stride of the batch index, so ``[197, 2, 3, 768]`` or ``[394, 768]`` written for
  a batch of 2 become ``[197, -1, 3, 768]`` and ``[-1, 768]``.
* **Names and errors.** Every MXNet operator a node becomes is named after the node (its
  last operator takes the node's own name, helpers ``<node>/<op><k>``), so ``layers`` lists
  the ONNX node names; a failure names the node, its operator and the opset.

The translations themselves live in :mod:`._onnx_ops`, registered in :data:`TRANSLATIONS`
and looked up before MXNet's own table (a ``ChainMap`` over both: MXNet's table is used,
not copied, and is not modified).
"""
import collections
import logging
import warnings

import mxnet as mx
import numpy as np
from mxnet.contrib.onnx.onnx2mx._import_helper import _convert_map as MXNET_CONVERT_MAP
from mxnet.contrib.onnx.onnx2mx.import_onnx import GraphProto

from .._validation import brief_list
from ..exceptions import ModelFileError, UnsupportedOperatorError

logger = logging.getLogger(__name__)

__all__ = ["Converter", "TRANSLATIONS", "FOLD_ONLY", "ConversionError", "translation"]

#: Our translations by ONNX operator name, filled by :func:`translation` in ``_onnx_ops``.
#: They take precedence over MXNet's table, with the same calling convention.
TRANSLATIONS = {}

#: Operators that are only ever folded (evaluated on known inputs): on a computed tensor they
#: are unsupported (shape arithmetic, index generation and scatter ops).
FOLD_ONLY = frozenset({
    "Shape", "Size", "ConstantOfShape", "Range", "NonZero", "ScatterND", "ScatterElements",
    "CumSum", "OneHot", "EyeLike", "Trilu", "Constant", "ReverseSequence", "Unique",
    "Compress", "GatherND", "GatherElements", "Det", "IsNaN", "IsInf", "BitShift",
})

#: Operators that draw random numbers: never folded (the result would be frozen).
_RANDOM_OPS = frozenset({"RandomUniform", "RandomNormal", "RandomUniformLike",
                         "RandomNormalLike", "Multinomial", "Bernoulli"})

#: The newest opset of the default domain onnx's reference implementation knows here (onnx
#: 1.14.1: 19). Folding a node of a newer file uses the operator's version at this opset,
#: which is correct for the operators PyTorch folds (their opset-20/21 versions only add
#: types).
try:
    import onnx.defs as _onnx_defs

    REFERENCE_OPSET = _onnx_defs.onnx_opset_version()
except ImportError:  # onnx is an optional extra; import_onnx says how to install it
    REFERENCE_OPSET = 19

_DEFAULT_DOMAINS = ("", "ai.onnx")


class ConversionError(ValueError):
    """A node cannot be converted; the message says why (the loop adds node and opset)."""


def translation(*op_types):
    """Register a translation for ``op_types`` in :data:`TRANSLATIONS`.

    The decorated function takes ``(attrs, inputs, converter)`` as MXNet's table entries do
    and returns a symbol (one output or several); the registered entry wraps it in MXNet's
    ``(symbol, attrs, inputs)`` convention, so both tables are interchangeable.
    """
    def register(func):
        def entry(attrs, inputs, proto_obj):
            return func(attrs, inputs, proto_obj), attrs, inputs

        entry.__name__ = func.__name__
        entry.__doc__ = func.__doc__
        entry.translate = func
        for op_type in op_types:
            TRANSLATIONS[op_type] = entry
        return func

    return register


def conversion_table():
    """Our translations in front of MXNet's own table (neither is copied or changed)."""
    return collections.ChainMap(TRANSLATIONS, MXNET_CONVERT_MAP)


class _NodeNames(mx.name.NameManager):
    """Names MXNet's unnamed operators ``<onnx node>/<op><k>`` while a node is converted."""

    def __init__(self):
        super().__init__()
        self.prefix = ""

    def get(self, name, hint):
        if name:
            return name
        return super().get(None, f"{self.prefix}/{hint}" if self.prefix else hint)


class Value:
    """What the converter knows of one ONNX tensor: a known value, or a computed symbol."""

    __slots__ = ("const", "sym", "shapes", "inner", "parents", "linear", "swapped")

    def __init__(self, const=None, sym=None, inner=None):
        self.const = const
        self.sym = sym
        self.shapes = None  # (shape at batch0, shape at batch1) of a computed tensor
        # Stride of the batch index inside the batch axis (see Converter.batch); None means
        # "as the input it came from", worked out when asked.
        self.inner = inner
        self.parents = ()  # the computed inputs of the node that made it
        # (input, weight symbol, weight array) of a FullyConnected without bias, so that a
        # following bias Add can be folded into it.
        self.linear = None
        # The input of a transpose of the last two axes, so that a following product can
        # read it transposed instead.
        self.swapped = None

    @property
    def is_const(self):
        return self.const is not None


class Converter(GraphProto):
    """Convert one (prepared) ONNX graph to an MXNet symbol with its parameters.

    Parameters
    ----------
    graph : onnx.GraphProto
        The graph; ``Constant`` nodes may remain (they are folded).
    opset : int
        Opset of the default domain.
    input_name : str
    sample_shape : tuple of int
        Shape of one input sample (without the batch axis).
    batch0 : int
        Batch size at which the graph's shape arithmetic is evaluated.
    path : str
        For messages.
    """

    def __init__(self, graph, opset, input_name, sample_shape, batch0, path):
        super().__init__()
        self.graph = graph
        self.opset = int(opset)
        self.opset_version = self.opset  # read by MXNet's own translations
        self.input_name = input_name
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.batch0 = int(batch0)
        self.batch1 = self.batch0 + 1
        self.path = path
        self._table = conversion_table()
        self._values = {}
        self._const_vars = {}  # const name -> (symbol, value)
        self._aux_values = {}
        self._extra_args = {}
        self._used_names = set()
        self._renames = {}  # MXNet head operator name -> ONNX node name
        self._renamed_nodes = set()
        self._names = _NodeNames()
        self._readers = collections.Counter(
            name for node in graph.node for name in node.input if name)
        self._readers.update(output.name for output in graph.output)
        self.node = None
        self.node_name = ""
        self._node_values = []
        self.data = mx.sym.var(input_name, dtype="float32")
        # MXNet's own translations look up initializer values here by symbol name.
        self._params = _ParamView(self)
        self.model_metadata = {
            "input_tensor_data": [(input_name, (self.batch0,) + self.sample_shape, 1)],
            "output_tensor_data": [],
        }

    # ------------------------------------------------------------------ main loop
    def convert(self):
        """Run the conversion; return ``(symbol, arg_params, aux_params, renames)``."""
        from onnx import numpy_helper

        for tensor in self.graph.initializer:
            self._values[tensor.name] = Value(const=_as_array(numpy_helper.to_array(tensor)))
        data_value = Value(sym=self.data, inner=1)
        self._values[self.input_name] = data_value
        with warnings.catch_warnings(), self._names:
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            for index, node in enumerate(self.graph.node):
                self._convert_node(node, index)
        outputs = []
        for output in self.graph.output:
            value = self._values.get(output.name)
            if value is None or value.is_const:
                raise ModelFileError(
                    f"The output {output.name!r} of {self.path} does not depend on the input "
                    f"{self.input_name!r} (it is a constant), so there is nothing to compute "
                    "per sample. Export the model with its real outputs.")
            outputs.append(value.sym)
        symbol = outputs[0] if len(outputs) == 1 else mx.sym.Group(outputs)
        arguments = set(symbol.list_arguments())
        arg_params = {name: mx.nd.array(value, dtype=value.dtype)
                      for name, (_, value) in self._const_vars.items() if name in arguments}
        arg_params.update({name: mx.nd.array(value, dtype=value.dtype)
                           for name, value in self._extra_args.items() if name in arguments})
        auxiliary = set(symbol.list_auxiliary_states())
        aux_params = {name: mx.nd.array(value, dtype=value.dtype)
                      for name, value in self._aux_values.items() if name in auxiliary}
        return symbol, arg_params, aux_params, dict(self._renames)

    def _convert_node(self, node, index):
        self.node = node
        self.node_name = self._unique_node_name(node, index)
        op = node.op_type
        values = [self._input_value(name) for name in node.input]
        self._node_values = values
        try:
            if op == "Constant":
                results = [Value(const=_constant_value(node))]
            elif self._foldable(op, values):
                results = [Value(const=v) for v in self._fold(node, values)]
            elif op in ("Shape", "Size"):
                results = [Value(const=self._shape_op(node, values[0]))]
            else:
                results = self._translate(node, values)
        except ConversionError as err:
            raise UnsupportedOperatorError(
                f"Node {self.node_name!r} ({op}, opset {self.opset}) of {self.path} cannot be "
                f"converted: {err}") from None
        except (UnsupportedOperatorError, ModelFileError):
            raise
        except Exception as err:  # MXNet's translations fail with anything
            inputs = [self._describe(name, v) for name, v in zip(node.input, values)]
            raise ModelFileError(
                f"Converting node {self.node_name!r} ({op}, opset {self.opset}, inputs "
                f"{brief_list(inputs)}) of {self.path} failed: {type(err).__name__}: "
                f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}. If the node "
                "only computes shapes, export with a fixed input shape and constant folding "
                "(torch.onnx.export(..., do_constant_folding=True)); otherwise replace the "
                "operation in the source framework.") from err
        for name, value in zip(node.output, results):
            if name:
                self._values[name] = value

    def _unique_node_name(self, node, index):
        name = node.name.strip() or (node.output[0] if node.output else "") or \
            f"{node.op_type}_{index}"
        base, k = name, 1
        while name in self._used_names:
            name = f"{base}_{k}"
            k += 1
        self._used_names.add(name)
        return name

    def _input_value(self, name):
        if not name:
            return None
        try:
            return self._values[name]
        except KeyError:
            raise ModelFileError(
                f"Node {self.node.name!r} ({self.node.op_type}) of {self.path} reads "
                f"{name!r}, which no earlier node, initializer or graph input defines: the "
                "graph is not in topological order or is incomplete. Re-export the model, "
                "or check it with onnx.checker.check_model.") from None

    def _describe(self, name, value):
        if value is None:
            return "(none)"
        if value.is_const:
            return f"{name} (constant {tuple(value.const.shape)})"
        return f"{name} {self.shape(value)}"

    # ------------------------------------------------------------------ folding
    def _foldable(self, op, values):
        if op in _RANDOM_OPS or not values:
            return False
        return all(v is None or v.is_const for v in values)

    def _fold(self, node, values):
        """Evaluate ``node`` on known inputs with onnx's reference implementation."""
        from onnx.reference.ops import load_op

        inputs = [None if v is None else v.const for v in values]
        if node.op_type in _FOLD_WITH_MXNET and node.op_type in self._table:
            return self._fold_with_mxnet(node, values)
        if node.op_type in _FOLD_FIXES:
            attrs = {a.name: a for a in node.attribute}
            return [_as_array(o) for o in _FOLD_FIXES[node.op_type](attrs, *inputs)]
        version = min(self.opset, REFERENCE_OPSET)
        try:
            op_class = load_op(node.domain or "", node.op_type, version)
        except Exception as err:
            raise ConversionError(
                f"its inputs are all constants, but onnx {_onnx_version()} has no reference "
                f"implementation of {node.op_type} to evaluate it ({err})") from err
        run_params = {"log": lambda *args: None, "opsets": {"": version}, "verbose": 0,
                      "new_ops": None}
        instance = op_class(node, run_params)
        while inputs and inputs[-1] is None:
            inputs.pop()
        outputs = instance.run(*inputs)
        if not isinstance(outputs, (tuple, list)):
            outputs = (outputs,)
        return [_as_array(np.asarray(o)) for o in outputs]

    def _fold_with_mxnet(self, node, values):
        """Evaluate a heavy operator on known inputs with its MXNet translation (numpy's
        reference convolution takes tens of seconds where MXNet takes milliseconds)."""
        results = self._translate(node, values)
        outputs = mx.sym.Group([r.sym for r in results])
        args, aux = {}, {}
        for name in outputs.list_arguments():
            array = self._const_vars[name][1] if name in self._const_vars \
                else self._extra_args[name]
            args[name] = mx.nd.array(array, dtype=array.dtype)
        for name in outputs.list_auxiliary_states():
            aux[name] = mx.nd.array(self._aux_values[name])
        executor = outputs.bind(mx.cpu(), args=args, aux_states=aux, grad_req="null")
        return [o.asnumpy() for o in executor.forward(is_train=False)]

    def _shape_op(self, node, value):
        shape = np.array(self.shape(value), dtype=np.int64)
        if node.op_type == "Size":
            return np.array(int(np.prod(shape)), dtype=np.int64)
        attrs = {a.name: a.i for a in node.attribute}
        start, end = attrs.get("start", 0), attrs.get("end", None)
        return shape[start:end]

    # ------------------------------------------------------------------ translation
    def _translate(self, node, values):
        op = node.op_type
        if node.domain not in _DEFAULT_DOMAINS:
            raise ConversionError(f"the operator comes from the custom domain {node.domain!r}")
        if op in FOLD_ONLY:
            raise ConversionError(
                f"{op} is only supported on constants (it is folded at import), but its input "
                "is computed from the data")
        entry = self._table.get(op)
        if entry is None:
            raise ConversionError(f"no translation to MXNet exists for {op}")
        attrs = self._parse_attr(node.attribute)
        inputs = [None if v is None else self._symbol_of(name, v)
                  for name, v in zip(node.input, values)]
        self._names.prefix = self.node_name
        try:
            if op in TRANSLATIONS:
                result = entry.translate(attrs, inputs, self)
            else:
                if any(v is None for v in values):
                    raise ConversionError("MXNet's translation of it takes no empty inputs")
                result = self._convert_operator(self.node_name, op, attrs, inputs)
        finally:
            self._names.prefix = ""
        results = list(result) if isinstance(result, (list, tuple)) else [result]
        if len(results) == 1 and not isinstance(results[0], Value) and \
                len(results[0].list_outputs()) > 1:
            results = [results[0][i] for i in range(len(results[0].list_outputs()))]
        parents = [v for v in values if v is not None and not v.is_const]
        converted = []
        for item in results:
            if isinstance(item, Value) and any(item is v for v in values):
                converted.append(item)  # an input passed through (Identity, no-op reshape)
                continue
            value = item if isinstance(item, Value) else Value(sym=item)
            value.parents = parents
            self._register_head(value.sym)
            converted.append(value)
        return converted

    def _convert_operator(self, node_name, op_name, attrs, inputs):
        """MXNet's ``GraphProto._convert_operator``, looking in our table first."""
        op_name, new_attrs, inputs = self._table[op_name](attrs, inputs, self)
        if isinstance(op_name, str):
            new_op = getattr(mx.sym, op_name, None)
            if not new_op:
                raise ConversionError(f"MXNet has no operator {op_name!r}")
            return new_op(*inputs, name=node_name, **new_attrs)
        return op_name

    def _register_head(self, sym):
        """Name the operator that computes ``sym`` after the ONNX node (renamed at the end:
        MXNet symbols cannot be renamed in place)."""
        head = sym.name
        if head != self.node_name and head.startswith(f"{self.node_name}/") and \
                self.node_name not in self._renamed_nodes:
            self._renames[head] = self.node_name
            self._renamed_nodes.add(self.node_name)

    def _symbol_of(self, name, value):
        if not value.is_const:
            return value.sym
        return self.const_symbol(name, value.const)

    # ------------------------------------------------------------------ helpers for translations
    def const_symbol(self, name, array):
        """A variable holding ``array`` as a parameter of the graph (one per name)."""
        if name in self._const_vars:
            return self._const_vars[name][0]
        array = _as_array(array)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        if array.ndim == 0:
            array = array.reshape(1)
        symbol = mx.sym.var(name, shape=array.shape, dtype=array.dtype)
        self._const_vars[name] = (symbol, array)
        return symbol

    def new_param(self, suffix, array, aux=False):
        """A fresh parameter named after the current node: ``<node>.<suffix>``."""
        name = f"{self.node_name}.{suffix}"
        base, k = name, 1
        while name in self._const_vars or name in self._aux_values or name in self._extra_args:
            name = f"{base}{k}"
            k += 1
        array = np.ascontiguousarray(_as_array(array), dtype=np.float32)
        (self._aux_values if aux else self._extra_args)[name] = array
        return mx.sym.var(name, shape=array.shape, dtype="float32")

    def n_readers(self, index):
        """How many nodes (and graph outputs) read the current node's input ``index``."""
        return self._readers[self.node.input[index]]

    def value(self, index):
        """The :class:`Value` of the current node's input ``index`` (None if absent)."""
        values = self._node_values
        return values[index] if index < len(values) else None

    def const(self, index):
        """The known value of input ``index``, or None if it is computed or absent."""
        value = self.value(index)
        return None if value is None else value.const

    def require_const(self, index, what):
        """The known value of input ``index``; ConversionError if it is computed."""
        value = self.value(index)
        if value is None:
            return None
        if not value.is_const:
            raise ConversionError(
                f"its {what} (input {index}) is computed from the data; MXNet needs it to be "
                "known when the graph is built")
        return value.const

    def shape(self, value):
        """Shape of a value (a computed one at batch size ``batch0``)."""
        if isinstance(value, int):
            value = self.value(value)
        if value.is_const:
            return tuple(value.const.shape)
        return self.batch_shapes(value)[0]

    def batch_shapes(self, value):
        """A computed value's shapes at batch sizes ``batch0`` and ``batch1``."""
        if value.shapes is None:
            shapes = []
            for batch in (self.batch0, self.batch1):
                _, out_shapes, _ = value.sym.infer_shape_partial(
                    **{self.input_name: (batch,) + self.sample_shape})
                if not out_shapes or not out_shapes[0] or 0 in out_shapes[0]:
                    raise ConversionError("MXNet cannot infer the shape of its result")
                shapes.append(tuple(int(s) for s in out_shapes[0]))
            value.shapes = tuple(shapes)
        return value.shapes

    def batch(self, value):
        """``(axis, inner)`` of a computed value's batch axis, or None if it has none.

        The batch axis of a computed tensor has size ``outer * N * inner`` for batch size N;
        ``inner`` is the stride of the batch index inside that axis (1 unless a reshape
        merged the batch with axes after it).
        """
        if isinstance(value, int):
            value = self.value(value)
        if value is None or value.is_const:
            return None
        shape0, shape1 = self.batch_shapes(value)
        axes = [i for i, (a, b) in enumerate(zip(shape0, shape1)) if a != b]
        if len(shape0) != len(shape1) or len(axes) > 1:
            raise ConversionError(
                f"its result's shape depends on the batch size in more than one axis "
                f"({shape0} for a batch of {self.batch0}, {shape1} for {self.batch1})")
        if not axes:
            return None
        if value.inner is None:
            multiple = shape0[axes[0]] // self.batch0
            value.inner = 1
            if multiple != 1:
                for parent in value.parents:
                    batch = self.batch(parent)
                    if batch is not None and self.batch_multiple(parent) == multiple:
                        value.inner = batch[1]
                        break
        return axes[0], value.inner

    def batch_multiple(self, value):
        """``outer * inner`` of the batch axis (its size is that times the batch size)."""
        axis, _ = self.batch(value)
        return self.shape(value)[axis] // self.batch0


def _scatter_nd(attrs, data, indices, updates):
    """ScatterND. onnx 1.14.1's reference indexes with ``output[indices[i]]``, which numpy
    reads as a selection of whole rows, not as one element's coordinates (torchvision's
    Swin builds its attention mask with ScatterND, and got a wrong mask)."""
    from onnx import helper

    reduction = attrs.get("reduction")
    reduction = helper.get_attribute_value(reduction).decode() if reduction else "none"
    output = np.array(data, copy=True)
    combine = {"none": lambda old, new: new, "add": np.add, "mul": np.multiply,
               "max": np.maximum, "min": np.minimum}[reduction]
    for i in np.ndindex(indices.shape[:-1]):
        where = tuple(int(k) for k in indices[i])
        output[where] = combine(output[where], updates[i])
    return (output,)


#: Folded with their MXNet translation rather than onnx's (slow, numpy) reference.
_FOLD_WITH_MXNET = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum",
                              "MaxPool", "AveragePool"})

#: Folds where onnx's reference implementation (1.14.1) is wrong, by operator.
_FOLD_FIXES = {"ScatterND": _scatter_nd}


def _constant_value(node):
    from onnx import helper, numpy_helper

    for attribute in node.attribute:
        if attribute.name == "value":
            return _as_array(numpy_helper.to_array(attribute.t))
        if attribute.name in ("value_float", "value_floats"):
            return np.asarray(helper.get_attribute_value(attribute), dtype=np.float32)
        if attribute.name in ("value_int", "value_ints"):
            return np.asarray(helper.get_attribute_value(attribute), dtype=np.int64)
    names = [a.name for a in node.attribute]
    raise ConversionError(f"the Constant holds {brief_list(names) or 'nothing'}; only tensors "
                          "and numbers can be imported")


def _as_array(value):
    array = np.asarray(value)
    if array.dtype == object:
        raise ConversionError("it holds strings or other non-numeric values")
    return array


def _onnx_version():
    try:
        import onnx

        return onnx.__version__
    except ImportError:
        return "(not installed)"


class _ParamView(dict):
    """``GraphProto._params`` for MXNet's own translations: known values as NDArrays, made
    on first access (most are never read, and weights need no second copy)."""

    def __init__(self, converter):
        super().__init__()
        self._converter = converter

    def __missing__(self, name):
        value = self._converter._values.get(name)
        if value is None or not value.is_const:
            raise KeyError(name)
        array = mx.nd.array(value.const, dtype=value.const.dtype)
        self[name] = array
        return array

    def __contains__(self, name):
        value = self._converter._values.get(name)
        return value is not None and value.is_const
