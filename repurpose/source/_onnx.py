"""Import ONNX files into an MXNet symbol and parameters, through MXNet's own importer.

MXNet 1.9.1 still ships the ONNX importer in ``mxnet.contrib.onnx`` (``mxnet.onnx`` only
exports). Its public ``import_model`` prints deprecation notices to stdout and only reads a
path, so we call the class it wraps, ``mxnet.contrib.onnx.onnx2mx.import_onnx.GraphProto``,
on a graph we have checked and prepared in memory:

* PyTorch's exporter (and ONNX since IR version 4) does not list initializers among the graph
  inputs; MXNet's importer then fails with a bare ``KeyError`` on the first weight. We add a
  graph input (a ``ValueInfoProto`` with the initializer's dtype and shape) for each such
  initializer.
* ``Constant`` nodes become initializers, since the importer maps them to an identity of
  nothing and reads shapes, pads and axes only from initializers.
* BatchNormalization's ``training_mode=0`` (opset 14 and later) is dropped: it is what MXNet
  does in inference anyway, and MXNet's operator rejects the unknown attribute.

Before that, every node is checked against the importer's conversion table and against the
operator versions it knows (the file's opset decides which version of each operator a node
means), so an unsupported model fails with the list of its unsupported nodes rather than a
``KeyError`` from deep inside the importer. The user's file is never written:
:func:`onnx.load` gives us our own copy of the model.
"""
import logging
import os
import warnings

import mxnet as mx
import numpy as np

from .._validation import brief_list
from ..exceptions import ModelFileError, UnsupportedOperatorError

__all__ = ["import_onnx", "SUPPORTED_OPSETS"]

logger = logging.getLogger(__name__)

#: Opsets of the default ONNX domain that ``import_onnx`` accepts (inclusive). 19 is the newest
#: opset onnx 1.14.1 knows, and the one MXNet 1.9.1's exporter writes into its files.
SUPPORTED_OPSETS = (7, 19)

#: MXNet's importer was written for the operator versions of opsets up to this one (its
#: translations know the changes of opsets 10, 11 and 12; opset 13 works for CNNs, checked
#: against PyTorch's exporter). Newer operator versions pass only if listed below.
_IMPORTER_OPSET = 13

#: Operator versions newer than _IMPORTER_OPSET that the importer reads correctly, because
#: they only add tensor types or an attribute we check (see _version_problem).
_LATER_VERSIONS_OK = {
    "Add": {14},  # more integer types
    "Sub": {14},
    "Mul": {14},
    "Div": {14},
    "Relu": {14},
    "Identity": {14, 16, 19},  # sequence, optional and float8 types
    "Pow": {15},  # bfloat16
    "LeakyRelu": {16},
    "PRelu": {16},
    "BatchNormalization": {14, 15},  # training_mode (must be 0), more types
    "Reshape": {14, 19},  # allowzero (must be 0), float8 types
    "AveragePool": {19},  # dilations (must be 1)
}

#: Operators whose opset-13 version takes axes/splits as an input, where the importer still
#: reads the opset-12 attribute: they fail when that input is given.
_AXES_AS_INPUT_SINCE_13 = frozenset({"Squeeze", "Unsqueeze", "ReduceSum", "Split"})

_DEFAULT_DOMAINS = ("", "ai.onnx")
_INSTALL_HINT = "pip install 'repurpose[onnx]' (that is onnx==1.14.1 and protobuf<4)"
_REEXPORT_HINT = (
    "Re-export the model with an opset in that range, e.g. "
    "torch.onnx.export(..., opset_version=13), or convert it with "
    "onnx.version_converter.convert_version(model, 13)"
)


def import_onnx(path) -> dict:
    """Import an ONNX file as an MXNet symbol with its parameters.

    The file is checked before anything is converted: its opset against
    :data:`SUPPORTED_OPSETS`, every node's operator against MXNet's conversion table, and the
    graph for exactly one input. Files written by PyTorch's exporter (initializers not listed
    among the graph inputs) are supported; the file itself is never modified.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.onnx`` file. Weights stored as external data are read from beside it.

    Returns
    -------
    dict
        With the keys

        - ``'symbol'`` : :class:`mxnet.symbol.Symbol`, the network; a ``Group`` if the graph
          has several outputs. Convolutions and dense layers get MXNet's automatic names
          (``convolution0``, ...), numbered from 0 in each import; other operators keep their
          ONNX node names.
        - ``'arg_params'`` : dict of str to :class:`mxnet.nd.NDArray`, learned weights
          (float32).
        - ``'aux_params'`` : dict of str to :class:`mxnet.nd.NDArray`, BatchNorm running
          means and variances (float32).
        - ``'input_name'`` : str, the name of the symbol's data input.
        - ``'input_shape'`` : tuple of int or None, the shape of one sample (without the
          batch axis); None when any of those axes is dynamic or unknown.
        - ``'opset'`` : int, the opset of the default ONNX domain.
        - ``'producer'`` : str, the program that wrote the file, e.g. ``'pytorch 2.13.0'``
          (``''`` if the file does not say).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ImportError
        If the optional ``onnx`` package is not installed.
    ModelFileError
        If the file is not a readable ONNX model, has no input or more than one, or MXNet's
        importer fails on it (the message names the node).
    UnsupportedOperatorError
        If the opset is outside :data:`SUPPORTED_OPSETS`, or nodes use operators MXNet
        cannot import (all of them are listed with their node names).

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
    >>> sorted(imported['arg_params'])
    ['w']
    """
    path = os.fspath(path)
    _check_file(path)
    onnx = _import_onnx_package()
    model = _load_model(onnx, path)
    graph = model.graph

    opset = _default_opset(model, path)
    _check_operators(onnx, graph, opset, path)
    input_info = _single_input(graph, path)
    input_name = input_info.name
    input_shape = _sample_shape(input_info)
    if not graph.output:
        raise ModelFileError(
            f"The ONNX graph in {path} has no outputs, so there is nothing to compute. "
            "Export the model with its output tensors listed."
        )

    n_constants = _constants_to_initializers(graph)
    _drop_default_attributes(graph)
    n_added = _add_initializers_as_inputs(graph)
    if n_added:
        logger.debug(
            "%s lists %d initializers not among its graph inputs (as PyTorch writes them); "
            "added them as inputs for MXNet's importer",
            path,
            n_added,
        )
    if n_constants:
        logger.debug("%s: turned %d Constant nodes into initializers", path, n_constants)

    symbol, arg_params, aux_params = _run_importer(graph, opset, path)
    _check_params_complete(symbol, arg_params, aux_params, input_name, path)

    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    logger.info(
        "Imported %s (opset %d, producer %r): input %r of sample shape %s, %d weights, "
        "%d auxiliary states",
        path,
        opset,
        producer,
        input_name,
        input_shape,
        len(arg_params),
        len(aux_params),
    )
    return {
        "symbol": symbol,
        "arg_params": arg_params,
        "aux_params": aux_params,
        "input_name": input_name,
        "input_shape": input_shape,
        "opset": opset,
        "producer": producer,
    }


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
    """Parse ``path`` into a fresh in-memory ``ModelProto``; ModelFileError if it is not one."""
    try:
        model = onnx.load_model(path)
    except Exception as err:  # DecodeError, RuntimeError, OSError for missing external data
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
    return model


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
            f"{path} uses ONNX opset {opset}, but repurpose imports opsets {low} to {high} "
            f"(through MXNet's importer). {_REEXPORT_HINT}."
        )
    return opset


def _check_operators(onnx, graph, opset, path):
    """Raise UnsupportedOperatorError listing every node MXNet's importer cannot convert."""
    convert_map = _importer_convert_map()
    problems = []
    hints = []
    for index, node in enumerate(graph.node):
        where = f"node {node.name or '#' + str(index)!r}"
        if node.domain not in _DEFAULT_DOMAINS:
            problems.append(f"{node.domain}::{node.op_type} ({where}, custom domain)")
            hints.append("replace custom operators in the source framework")
            continue
        if node.op_type == "Constant":
            if _constant_attribute(node) is None:
                names = [a.name for a in node.attribute]
                problems.append(
                    f"Constant ({where}, holds {brief_list(names) or 'nothing'}; only "
                    "tensors and numbers can be imported)"
                )
                hints.append("export with constant folding (do_constant_folding=True)")
            continue
        if node.op_type not in convert_map:
            problems.append(f"{node.op_type} ({where})")
            hints.append(
                "replace operators MXNet lacks in the source framework (the ones it can "
                "import are the keys of mxnet.contrib.onnx.onnx2mx._import_helper._convert_map)"
            )
            continue
        reason, hint = _version_problem(onnx, node, opset)
        if reason:
            problems.append(f"{node.op_type} ({where}, {reason})")
            hints.append(hint)
    if problems:
        shown = "; ".join(problems[:10]) + ("; ..." if len(problems) > 10 else "")
        what_to_do = "; or ".join(dict.fromkeys(hints))  # unique, in order
        raise UnsupportedOperatorError(
            f"{path} has {len(problems)} node(s) that MXNet's ONNX importer cannot convert: "
            f"{shown}. To import the model, {what_to_do}."
        )


def _version_problem(onnx, node, opset):
    """``(why, what to do)`` if the node's operator version cannot be imported, else empty."""
    try:
        since = onnx.defs.get_schema(node.op_type, opset, "").since_version
    except onnx.defs.SchemaError:  # importer-only legacy names such as 'FC', 'SpatialBN'
        return "", ""
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if since > _IMPORTER_OPSET:
        if since not in _LATER_VERSIONS_OK.get(node.op_type, ()):
            return (
                f"version {since} of the operator, which opset {opset} uses; MXNet's importer "
                f"knows its versions up to opset {_IMPORTER_OPSET}",
                f"export with opset {_IMPORTER_OPSET} "
                f"(torch.onnx.export(..., opset_version={_IMPORTER_OPSET}))",
            )
        if node.op_type == "BatchNormalization" and attributes.get("training_mode", 0) != 0:
            return (
                "training_mode=1, which computes batch statistics",
                "export the model in inference mode (model.eval() in PyTorch)",
            )
        if node.op_type == "Reshape" and attributes.get("allowzero", 0) != 0:
            return (
                "allowzero=1, which MXNet's reshape does not have",
                "export without allowzero",
            )
        if node.op_type == "AveragePool" and any(d != 1 for d in attributes.get("dilations", ())):
            return (
                "dilated average pooling, which MXNet's pooling does not have",
                "replace dilated average pooling in the source framework",
            )
    if (
        since >= 13
        and node.op_type in _AXES_AS_INPUT_SINCE_13
        and (len(node.input) > 1 or node.op_type == "Unsqueeze")
    ):
        return (
            f"axes given as an input, as opset {opset} does; the importer reads them only "
            "from the attribute of opset 12 and older",
            "export with opset 12 (torch.onnx.export(..., opset_version=12))",
        )
    return "", ""


def _importer_convert_map():
    """MXNet's table from ONNX operator names to converters (a dict)."""
    from mxnet.contrib.onnx.onnx2mx._import_helper import _convert_map

    return _convert_map


_CONSTANT_VALUE_ATTRIBUTES = ("value", "value_float", "value_floats", "value_int", "value_ints")


def _constant_attribute(node):
    """The attribute of a Constant node that holds its value, or None if unsupported."""
    for attribute in node.attribute:
        if attribute.name in _CONSTANT_VALUE_ATTRIBUTES:
            return attribute
    return None


def _constants_to_initializers(graph):
    """Replace each Constant node with an initializer of the same name; return how many."""
    from onnx import helper, numpy_helper

    kept = []
    n_converted = 0
    for node in graph.node:
        if node.op_type != "Constant" or node.domain not in _DEFAULT_DOMAINS:
            kept.append(node)
            continue
        attribute = _constant_attribute(node)
        value = helper.get_attribute_value(attribute)
        if attribute.name == "value":
            array = numpy_helper.to_array(value)
        elif attribute.name.startswith("value_float"):
            array = np.asarray(value, dtype=np.float32)
        else:
            array = np.asarray(value, dtype=np.int64)
        graph.initializer.append(numpy_helper.from_array(array, node.output[0]))
        n_converted += 1
    if n_converted:
        del graph.node[:]
        graph.node.extend(kept)
    return n_converted


def _drop_default_attributes(graph):
    """Remove attributes of newer operator versions that are at their defaults.

    The importer hands unknown attributes on to MXNet's operators, which reject them:
    BatchNormalization's ``training_mode=0`` (opset 14) means what MXNet does in inference.
    """
    for node in graph.node:
        if node.op_type == "BatchNormalization":
            kept = [a for a in node.attribute if a.name != "training_mode"]
            if len(kept) != len(node.attribute):
                del node.attribute[:]
                node.attribute.extend(kept)


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


def _add_initializers_as_inputs(graph):
    """Add a graph input for each initializer missing from the inputs; return how many.

    MXNet's importer creates its variables from ``graph.input`` only (ONNX IR < 4 listed
    every initializer there), so without this it fails with ``KeyError: '<weight name>'``.
    """
    from onnx import helper

    listed = {value.name for value in graph.input}
    added = 0
    for tensor in graph.initializer:
        if tensor.name in listed:
            continue
        graph.input.append(
            helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims))
        )
        listed.add(tensor.name)
        added += 1
    return added


def _run_importer(graph, opset, path):
    """Run MXNet's GraphProto.from_onnx; wrap its failures naming the node it failed on."""
    from mxnet.contrib.onnx.onnx2mx.import_onnx import GraphProto

    importer = GraphProto()
    try:
        # A fresh NameManager numbers the automatic names (convolution0, ...) from 0 in every
        # import, so the layer names of a model do not depend on what was built before.
        with mx.name.NameManager(), warnings.catch_warnings():
            # The importer reads onnx.mapping, deprecated in onnx 1.14 (the newest onnx it
            # works with); nothing for the user to do about it.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"mxnet\.")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"onnx\.")
            symbol, arg_params, aux_params = importer.from_onnx(graph, opset_version=opset)
    except Exception as err:  # the importer fails with KeyError, MXNetError, AssertionError...
        node = _first_unconverted_node(graph, importer)
        where = (
            f"node {node.name!r} (op {node.op_type}, inputs {brief_list(node.input)})"
            if node is not None
            else "the graph outputs"
        )
        raise ModelFileError(
            f"MXNet's ONNX importer failed on {where} of {path} (opset {opset}): "
            f"{type(err).__name__}: {err}. Replace that operation (or its settings) in the "
            "source framework; if the node computes a shape, export with constant folding "
            "and fixed input shapes (torch.onnx.export(..., do_constant_folding=True)) so "
            "that it becomes a constant."
        ) from err
    return symbol, arg_params, aux_params


def _first_unconverted_node(graph, importer):
    """The first node whose outputs the importer had not produced when it stopped."""
    converted = getattr(importer, "_nodes", {})
    for node in graph.node:
        if any(output not in converted for output in node.output if output):
            return node
    return None


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


def _sample_shape(value_info):
    """Shape of one sample (dims after the batch axis), or None if any of them is unknown."""
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape") or len(tensor_type.shape.dim) < 1:
        return None
    dims = []
    for dim in tensor_type.shape.dim[1:]:
        if not dim.HasField("dim_value") or dim.dim_value <= 0:
            return None
        dims.append(int(dim.dim_value))
    return tuple(dims)
