"""Import ONNX files into an MXNet symbol and parameters.

What PyTorch, timm and other frameworks export today comes in: files with their weights in
an external ``.onnx.data`` file, opsets 7 to 21 (``torch.onnx.export(..., dynamo=True)``
writes 20), graphs that compute shapes at run time (``Shape -> Gather -> Concat ->
Reshape``), operators MXNet's own importer lacks (GELU, LayerNormalization, HardSwish,
Einsum, ...) and attention blocks. The work is split in three:

* this module reads and checks the file: external data beside it, the opset, exactly one
  data input and its shape, and, before any conversion work, that every node can be
  converted (all problems listed at once, each with its operator, node, opset and what to
  try);
* :mod:`._onnx_convert` walks the graph: folds every node whose inputs are known (shape
  arithmetic, Identity nodes on weights, weight transposes) with onnx's reference
  implementation, and keeps the batch axis free so that the graph built for the file's
  example batch runs any batch size;
* :mod:`._onnx_ops` translates the remaining nodes, in front of MXNet's own conversion table
  (``mxnet.contrib.onnx.onnx2mx._import_helper._convert_map``, which is used for the
  operators we do not translate ourselves).

Every MXNet operator is named after the ONNX node it comes from, so a model's layer table
lists the ONNX node names. The user's file is never written: :func:`onnx.load` gives us our
own copy of the model.
"""
import json
import logging
import os
import time

import mxnet as mx
from .._validation import brief_list
from ..exceptions import ModelFileError, UnsupportedOperatorError
from . import _onnx_ops  # noqa: F401  (registers the translations)
from ._onnx_convert import FOLD_ONLY, Converter, conversion_table
from ._onnx_fuse import fuse_decompositions

__all__ = ["import_onnx", "supported_onnx_operators", "SUPPORTED_OPSETS"]

logger = logging.getLogger(__name__)

#: Opsets of the default ONNX domain that ``import_onnx`` accepts (inclusive). Operators are
#: read with the meaning they have at the file's opset; opsets 20 and 21 changed only the
#: types of the operators translated here, except GroupNormalization (handled) and Gelu (new
#: in 20, translated).
SUPPORTED_OPSETS = (7, 21)

#: Batch size at which the shape arithmetic of a file without a fixed batch size is
#: evaluated while converting (the graph built keeps the batch size free).
DEFAULT_BATCH = 2

_DEFAULT_DOMAINS = ("", "ai.onnx")
_INSTALL_HINT = ("pip install -c constraints.txt '.[onnx]' from a checkout of repurpose-mxnet "
                 "(that is onnx==1.14.1 and protobuf<4)")
_REEXPORT_HINT = (
    "Re-export the model with an opset in that range, e.g. "
    "torch.onnx.export(..., opset_version=17)"
)


def import_onnx(path, input_shape=None) -> dict:
    """Import an ONNX file as an MXNet symbol with its parameters.

    The file is checked before anything is converted: its opset against
    :data:`SUPPORTED_OPSETS`, the graph for exactly one data input with a known sample shape,
    and every node for a translation (all unconvertible nodes are listed in one error). Files
    written by PyTorch's exporters (TorchScript and dynamo, external weight files included)
    are supported; the file itself is never modified.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.onnx`` file. Weights stored as external data are read from beside it.
    input_shape : tuple of int, default=None
        Shape of one sample without the batch axis, e.g. ``(3, 224, 224)``. Needed only when
        the file leaves some of those axes dynamic; otherwise the file's own shape is used.

    Returns
    -------
    dict
        With the keys

        - ``'symbol'`` : :class:`mxnet.symbol.Symbol`, the network; a ``Group`` if the graph
          has several outputs. Operators carry their ONNX node's name.
        - ``'arg_params'`` : dict of str to :class:`mxnet.nd.NDArray`, learned weights.
        - ``'aux_params'`` : dict of str to :class:`mxnet.nd.NDArray`, BatchNorm running
          means and variances.
        - ``'input_name'`` : str, the name of the symbol's data input.
        - ``'input_shape'`` : tuple of int, the shape of one sample (without the batch axis).
        - ``'opset'`` : int, the opset of the default ONNX domain.
        - ``'producer'`` : str, the program that wrote the file, e.g. ``'pytorch 2.11.0'``
          (``''`` if the file does not say).

    Raises
    ------
    FileNotFoundError
        If ``path`` (or an external data file it names) does not exist.
    ImportError
        If the optional ``onnx`` package is not installed.
    ModelFileError
        If the file is not a readable ONNX model, has no input or more than one, or a node
        fails to convert (the message names the node, its operator and the opset).
    UnsupportedOperatorError
        If the opset is outside :data:`SUPPORTED_OPSETS`, or nodes use operators that cannot
        be converted (all of them are listed with their node names).

    Examples
    --------
    >>> import numpy as np
    >>> import os, tempfile, pytest
    >>> onnx = pytest.importorskip('onnx')
    >>> from onnx import helper, numpy_helper, TensorProto
    >>> w = numpy_helper.from_array(np.eye(3, dtype=np.float32), 'w')
    >>> graph = helper.make_graph(
    ...     [helper.make_node('MatMul', ['x', 'w'], ['y'], name='matmul')], 'tiny',
    ...     [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['batch', 3])],
    ...     [helper.make_tensor_value_info('y', TensorProto.FLOAT, ['batch', 3])],
    ...     initializer=[w])
    >>> model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     onnx.save(model, os.path.join(tmp, 'tiny.onnx'))
    ...     imported = import_onnx(os.path.join(tmp, 'tiny.onnx'))
    >>> imported['input_name'], imported['input_shape'], imported['opset']
    ('x', (3,), 13)
    >>> imported['symbol'].name
    'matmul'
    """
    # Long for its docstring; the body is the import's steps in order (checks before any work).
    started = time.perf_counter()
    path = os.fspath(path)
    _check_file(path)
    onnx = _import_onnx_package()
    model = _load_model(onnx, path)
    graph = model.graph

    opset = _default_opset(model, path)
    input_info = _single_input(graph, path)
    input_name = input_info.name
    batch, declared = _declared_shape(input_info)
    sample_shape = _sample_shape_for(declared, input_shape, input_name, path)
    if not graph.output:
        raise ModelFileError(
            f"The ONNX graph in {path} has no outputs, so there is nothing to compute. "
            "Export the model with its output tensors listed."
        )
    fused = fuse_decompositions(graph)
    if any(fused.values()):
        logger.debug("%s: fused %s", path, ", ".join(f"{n} {op}" for op, n in fused.items()))
    _check_operators(graph, opset, path)

    converter = Converter(graph, opset, input_name, sample_shape, batch or DEFAULT_BATCH, path)
    symbol, arg_params, aux_params, renames = converter.convert()
    symbol = _rename_operators(symbol, renames)
    _check_params_complete(symbol, arg_params, aux_params, input_name, path)

    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    logger.info(
        "Imported %s (opset %d, producer %r) in %.1f s: input %r of sample shape %s, %d "
        "weights, %d auxiliary states", path, opset, producer, time.perf_counter() - started,
        input_name, sample_shape, len(arg_params), len(aux_params),
    )
    return {
        "symbol": symbol,
        "arg_params": arg_params,
        "aux_params": aux_params,
        "input_name": input_name,
        "input_shape": sample_shape,
        "opset": opset,
        "producer": producer,
    }


def supported_onnx_operators() -> list:
    """The ONNX operators (default domain) that :meth:`SourceModel.from_onnx` converts.

    Our own translations and those of MXNet's importer that we use as they are. Operators
    whose inputs are all known when the file is loaded (shape arithmetic, constants) are
    evaluated at import instead, whatever their type, and need no translation.

    Returns
    -------
    list of str
        Sorted operator names.

    Examples
    --------
    >>> from repurpose.source import supported_onnx_operators
    >>> ops = supported_onnx_operators()
    >>> all(op in ops for op in ('Conv', 'Gelu', 'LayerNormalization', 'MatMul', 'Softmax'))
    True
    >>> 'LSTM' in ops
    False
    """
    return sorted(op for op in conversion_table() if op not in FOLD_ONLY)


def _check_file(path):
    """Raise FileNotFoundError / ModelFileError unless ``path`` is an existing regular file."""
    if not os.path.exists(path):
        absolute = os.path.abspath(path)
        shown = path if absolute == path else f"{path} (absolute path {absolute})"
        raise FileNotFoundError(
            f"ONNX file not found: {shown}. Check the path, or export the model first, "
            "e.g. with torch.onnx.export."
        )
    if os.path.isdir(path):
        raise ModelFileError(
            f"{path} is a directory, but an ONNX file was expected. "
            "Pass the path of the .onnx file itself."
        )


def _import_onnx_package():
    """Import and return the optional ``onnx`` package, or raise ImportError saying how."""
    try:
        import onnx
    except ImportError as err:
        raise ImportError(
            f"Importing ONNX models needs the optional 'onnx' package, which is not "
            f"installed ({err}). Install it with: {_INSTALL_HINT}."
        ) from err
    return onnx


def _load_model(onnx, path):
    """Parse ``path`` (and its external data) into a fresh in-memory ``ModelProto``."""
    try:
        model = onnx.load_model(path, load_external_data=False)
    except Exception as err:  # DecodeError, RuntimeError...
        raise ModelFileError(
            f"Could not read {path} as an ONNX model ({type(err).__name__}: {err}). "
            "The file is corrupted, truncated, or not an ONNX file; export the model again "
            "or check that it is the right file."
        ) from err
    # Protobuf can parse some garbage into an almost empty message without complaint.
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise ModelFileError(
            f"{path} does not hold an ONNX model: it has no graph nodes "
            f"(ir_version={model.ir_version}, {len(model.opset_import)} opset imports). "
            "The file is corrupted, truncated, or not an ONNX file; export the model again "
            "or check that it is the right file."
        )
    _load_external_data(onnx, model, path)
    return model


def _load_external_data(onnx, model, path):
    """Read weights kept in files beside the model (``torch.onnx.export(..., dynamo=True)``
    writes ``<name>.onnx.data``), after checking that each file is there and inside the
    model's folder."""
    from onnx.external_data_helper import _get_all_tensors, load_external_data_for_model

    folder = os.path.dirname(os.path.abspath(path))
    locations = set()
    for tensor in _get_all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entry = {e.key: e.value for e in tensor.external_data}
            locations.add(entry.get("location", ""))
    for location in sorted(locations):
        full = os.path.abspath(os.path.join(folder, location))
        if os.path.isabs(location) or os.path.commonpath([folder, full]) != folder:
            raise ModelFileError(
                f"{path} keeps weights in {location!r}, outside its own folder {folder}. "
                "Keep the external data file beside the model, as the exporter wrote it.")
        if not os.path.isfile(full):
            raise FileNotFoundError(
                f"{path} keeps its weights in the external data file {full}, which does not "
                "exist. Copy it (the exporter writes it beside the .onnx file) next to the "
                "model.")
    if locations:
        try:
            load_external_data_for_model(model, folder)
        except Exception as err:
            raise ModelFileError(
                f"Could not read the external weights of {path} ({brief_list(sorted(locations))}"
                f"): {type(err).__name__}: {err}. The data file is truncated or belongs to "
                "another export; export the model again.") from err
        logger.debug("%s: read weights from %s", path, brief_list(sorted(locations)))


def _default_opset(model, path):
    """Return the opset of the default domain, checked against SUPPORTED_OPSETS."""
    versions = [o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS]
    low, high = SUPPORTED_OPSETS
    if not versions:
        domains = [o.domain for o in model.opset_import]
        raise ModelFileError(
            f"{path} declares no opset for the default ONNX domain (opset imports: "
            f"{brief_list(domains) or 'none'}), so its operators cannot be interpreted. "
            f"Export the model with an opset from {low} to {high}."
        )
    opset = max(versions)
    if not low <= opset <= high:
        raise UnsupportedOperatorError(
            f"{path} uses ONNX opset {opset}, but repurpose imports opsets {low} to {high}. "
            f"{_REEXPORT_HINT}."
        )
    return opset


def _check_operators(graph, opset, path):
    """Raise UnsupportedOperatorError listing every node that cannot be converted.

    Follows which tensors will be known at import time (initializers, Constant nodes,
    shapes, and everything computed from those alone): such nodes are folded and need no
    translation; every other node needs one, ours or MXNet's.
    """
    table = conversion_table()
    known = {tensor.name for tensor in graph.initializer}
    known.add("")
    problems, hints = [], []
    for index, node in enumerate(graph.node):
        where = f"node {node.name or '#' + str(index)!r}"
        if node.domain not in _DEFAULT_DOMAINS:
            problems.append(f"{node.domain}::{node.op_type} ({where}, custom domain)")
            hints.append("replace custom operators in the source framework (or export "
                         "without operator fusion, e.g. onnxruntime's optimizer off)")
            continue
        if node.op_type == "Constant":
            attributes = {a.name for a in node.attribute}
            if not attributes & {"value", "value_float", "value_floats", "value_int",
                                 "value_ints"}:
                held = brief_list(sorted(attributes)) or "nothing"
                problems.append(f"Constant ({where}, holds {held}; only tensors and numbers "
                                "can be imported)")
                hints.append("export with constant folding (do_constant_folding=True)")
            known.update(node.output)
            continue
        if node.op_type in ("Shape", "Size") or all(name in known for name in node.input):
            if not node.op_type.startswith("Random"):
                known.update(node.output)
                continue
        if node.op_type in FOLD_ONLY:
            problems.append(f"{node.op_type} ({where}, on a tensor computed from the data)")
            hints.append("export with a fixed input shape and constant folding so that it "
                         "is computed at export time")
        elif node.op_type not in table:
            problems.append(f"{node.op_type} ({where})")
            hints.append("replace the operators listed in the source framework "
                         "(repurpose.source.supported_onnx_operators() lists the ones that "
                         "convert)")
        elif any(a.type in (10, 5) for a in node.attribute):  # GRAPH, GRAPHS
            problems.append(f"{node.op_type} ({where}, holds subgraphs)")
            hints.append("export without control flow (if/loops on data)")
    if problems:
        shown = "; ".join(problems[:10]) + ("; ..." if len(problems) > 10 else "")
        what_to_do = "; or ".join(dict.fromkeys(hints))  # unique, in order
        raise UnsupportedOperatorError(
            f"{path} (opset {opset}) has {len(problems)} node(s) that cannot be converted to "
            f"MXNet: {shown}. To import the model, {what_to_do}."
        )


def _single_input(graph, path):
    """Return the ValueInfo of the one graph input that is not an initializer."""
    initializer_names = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializer_names]
    if len(inputs) != 1:
        names = [value.name for value in inputs]
        what = "no data input" if not inputs else f"{len(inputs)} data inputs ({brief_list(names)})"
        raise ModelFileError(
            f"The ONNX graph in {path} has {what}, but repurpose imports models with exactly "
            "one input tensor (graph inputs that are not initializers). Export the model with "
            "a single input, e.g. torch.onnx.export(model, (x,), ...)."
        )
    return inputs[0]


def _declared_shape(value_info):
    """``(batch size or None, sample shape or None)`` as the input's type declares them."""
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape") or len(tensor_type.shape.dim) < 1:
        return None, None
    dims = [int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in tensor_type.shape.dim]
    sample = None if any(d is None for d in dims[1:]) else tuple(dims[1:])
    return dims[0], sample


def _sample_shape_for(declared, input_shape, input_name, path):
    """The sample shape to convert for: the user's, else the file's; an error if neither."""
    if input_shape is not None:
        try:
            shape = tuple(int(s) for s in input_shape)
        except (TypeError, ValueError):
            shape = ()
        if not shape or any(s <= 0 for s in shape):
            raise ModelFileError(
                f"input_shape must be the shape of one sample as positive ints, e.g. "
                f"(3, 224, 224); got {input_shape!r}.")
        if declared is not None and len(declared) != len(shape):
            raise ModelFileError(
                f"input_shape {shape} has {len(shape)} axes, but the input {input_name!r} of "
                f"{path} has samples of {len(declared)} axes {declared}.")
        return shape
    if declared is None:
        raise ModelFileError(
            f"The input {input_name!r} of {path} does not fix the shape of a sample (some axes "
            "after the batch axis are dynamic or missing), and converting the graph needs it. "
            "Pass input_shape=(channels, height, width) (the shape of one sample, e.g. "
            "(3, 224, 224)), or export the model with fixed spatial axes.")
    return declared


def _rename_operators(symbol, renames):
    """Give operators their ONNX node's name (MXNet symbols cannot be renamed in place)."""
    if not renames:
        return symbol
    graph = json.loads(symbol.tojson())
    for node in graph["nodes"]:
        if node["op"] != "null" and node["name"] in renames:
            node["name"] = renames[node["name"]]
    return mx.sym.load_json(json.dumps(graph))


def _check_params_complete(symbol, arg_params, aux_params, input_name, path):
    """Raise ModelFileError if a symbol argument other than the input has no value."""
    missing = [
        name
        for name in symbol.list_arguments()
        if name != input_name and name not in arg_params
    ]
    missing += [name for name in symbol.list_auxiliary_states() if name not in aux_params]
    if missing:
        raise ModelFileError(
            f"After importing {path}, {len(missing)} variable(s) of the MXNet graph have no "
            f"value: {brief_list(missing)}. The model has an input that is neither its data "
            f"input {input_name!r} nor an initializer; export it with its weights included "
            "(e.g. torch.onnx.export(..., export_params=True))."
        )
