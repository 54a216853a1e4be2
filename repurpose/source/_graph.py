"""Read-only views of an MXNet symbol graph (its layers in order, their outputs, which
parameters each one owns) and the checks that a graph, its parameters and an input shape fit
together.
"""
import json
from collections import namedtuple

import mxnet as mx

from .._validation import brief_list, suggest
from ..exceptions import DataError, InvalidParameterError, ModelFileError

__all__ = ["Layer", "graph_nodes", "layer_outputs", "layer_params", "per_sample_layers",
           "shape_tuple", "param_shapes", "check_graph", "infer_output_shapes"]

Layer = namedtuple("Layer", ["name", "op", "output_shape", "n_params"])
Layer.__doc__ = """One operator node of a source model.

A named tuple, as listed by :attr:`SourceModel.layers` and :meth:`SourceModel.layer_table`;
the fields are also its attributes.

Parameters
----------
name : str
    Node name, as used by ``extract(layers=...)`` and the surgery methods.
op : str
    MXNet operator, e.g. ``'Convolution'``.
output_shape : tuple of int or None
    Shape of the (first) output for one sample, batch axis included as 1; None where the
    model's input shape is unknown.
n_params : int
    Number of parameters (weights and batch-norm statistics) the node owns.

Examples
--------
>>> from repurpose import SourceModel
>>> layer = SourceModel.from_zoo('digits_cnn').layers[0]
>>> layer
Layer(name='conv1_fwd', op='Convolution', output_shape=(1, 16, 8, 8), n_params=160)
>>> layer.n_params == 16 * 1 * 3 * 3 + 16  # 16 filters of 1x3x3 weights, 16 biases
True
"""


def graph_nodes(symbol):
    """Return the nodes of ``symbol``'s JSON graph (list of dicts, topological order)."""
    return json.loads(symbol.tojson())["nodes"]


def layer_outputs(symbol):
    """Map every operator node name to the names of its outputs in ``get_internals()``.

    Returns
    -------
    dict of str -> list of str
        In topological order of the nodes.
    """
    op_names = [n["name"] for n in graph_nodes(symbol) if n["op"] != "null"]
    outputs = {name: [] for name in op_names}
    for out in symbol.get_internals().list_outputs():
        for suffix in ("_output",):
            head, sep, tail = out.rpartition(suffix)
            if sep and (tail == "" or tail.isdigit()) and head in outputs:
                outputs[head].append(out)
    return outputs


def layer_params(symbol, input_names):
    """Map every operator node name to the names of the parameter variables it reads directly.

    Parameters
    ----------
    symbol : mx.sym.Symbol
    input_names : collection of str
        Free variables that are data, not parameters (e.g. ``'data'``, labels).
    """
    nodes = graph_nodes(symbol)
    owned = {}
    for node in nodes:
        if node["op"] == "null":
            continue
        names = []
        for source_id, *_ in node["inputs"]:
            source = nodes[source_id]
            if source["op"] == "null" and source["name"] not in input_names:
                names.append(source["name"])
        owned[node["name"]] = names
    return owned


def per_sample_layers(symbol, input_name, sample_shape, param_shapes):
    """Names of the operator nodes whose (first) output holds one row per sample.

    Shape inference at batch sizes 1 and 2: a node's output is per sample when its first
    axis is the batch (1, then 2) and no other axis changes. Nodes whose shape cannot be
    inferred are kept (nothing says they are not).

    Parameters
    ----------
    symbol : mx.sym.Symbol
    input_name : str
    sample_shape : tuple of int
        Shape of one input sample.
    param_shapes : dict of str -> tuple
        Shapes of the parameters (help inference where the graph alone cannot tell).

    Returns
    -------
    set of str
    """
    internals = symbol.get_internals()
    names = internals.list_outputs()
    shapes = []
    for batch in (1, 2):
        given = dict(param_shapes)
        given[input_name] = (batch,) + tuple(sample_shape)
        try:
            _, out_shapes, _ = internals.infer_shape_partial(**given)
        except mx.base.MXNetError:  # a graph written for one batch size: nothing to tell
            return set(layer_outputs(symbol))
        shapes.append(dict(zip(names, out_shapes)))
    kept = set()
    for layer, outputs in layer_outputs(symbol).items():
        if not outputs:
            continue
        one, two = shapes[0].get(outputs[0]), shapes[1].get(outputs[0])
        if not one or not two or 0 in one or 0 in two:
            kept.add(layer)  # unknown: keep
        elif len(one) == len(two) and one[0] == 1 and two[0] == 2 and one[1:] == two[1:]:
            kept.add(layer)
    return kept


# ---------------------------------------------------------------------------- checks
def shape_tuple(shape, name="input_shape"):
    """``shape`` as a tuple of positive ints (the shape of one sample), or None for None.

    Raises
    ------
    InvalidParameterError
        If it is not a non-empty sequence of positive ints.
    """
    if shape is None:
        return None
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(
            f"{name} must be a tuple of positive ints for ONE sample, without the batch axis "
            f"(e.g. (3, 224, 224)); got {shape!r}.") from err
    if not shape or any(s <= 0 for s in shape):
        raise InvalidParameterError(
            f"{name} must be a non-empty tuple of positive ints for ONE sample, without the "
            f"batch axis (e.g. (3, 224, 224)); got {shape!r}.")
    return shape


def param_shapes(symbol, arg_params, aux_params):
    """Shapes of every parameter ``symbol`` uses, by name (parameters it does not use left
    out)."""
    arguments = set(symbol.list_arguments())
    aux_names = set(symbol.list_auxiliary_states())
    shapes = {k: v.shape for k, v in arg_params.items() if k in arguments}
    shapes.update({k: v.shape for k, v in aux_params.items() if k in aux_names})
    return shapes


def check_graph(symbol, arg_params, aux_params, input_name, input_shape, deferred=frozenset()):
    """Check that the parameters (and the input shape, if known) fit the graph.

    Parameters
    ----------
    symbol : mx.sym.Symbol
    arg_params, aux_params : dict of str -> NDArray
    input_name : str
    input_shape : tuple of int or None
    deferred : frozenset of str, default=frozenset()
        Parameters that do not exist yet (they wait for the input shape).

    Returns
    -------
    list of str
        The label variables: free inputs that are neither the data, a parameter nor
        deferred.

    Raises
    ------
    ModelFileError
        If the data input is missing, parameters the graph needs are missing, or the
        shapes do not fit (MXNet's complaint quoted).
    """
    arguments = symbol.list_arguments()
    if input_name not in arguments:
        hint = suggest(input_name, arguments)
        raise ModelFileError(
            f"The graph has no input named {input_name!r}. "
            f"{hint + ' ' if hint else ''}Pass input_name= one of its free inputs: "
            f"{brief_list([a for a in arguments if a not in arg_params])}."
        )
    missing = [a for a in arguments if a != input_name and a not in arg_params
               and a not in deferred and not a.endswith("label")]
    missing += [a for a in symbol.list_auxiliary_states()
                if a not in aux_params and a not in deferred]
    if missing:
        have = sorted(arg_params) + sorted(aux_params)
        raise ModelFileError(
            f"The parameters lack {len(missing)} variable(s) the graph needs: "
            f"{brief_list(missing)}. The parameters hold {len(have)}: {brief_list(have)}. "
            f"Pass the params file saved with this symbol file."
        )
    shapes = param_shapes(symbol, arg_params, aux_params)
    if input_shape is not None:
        shapes[input_name] = (1,) + input_shape
    try:
        # MXNet checks every given shape against the graph and raises on a mismatch.
        symbol.infer_shape_partial(**shapes)
    except mx.base.MXNetError as err:
        first_line = str(err).strip().splitlines()[0]
        raise ModelFileError(
            "The parameter shapes do not fit the graph"
            + (f" for input shape {input_shape}" if input_shape else "")
            + f": {first_line}. Check that the params file belongs to this symbol file"
            + (" and that input_shape is right." if input_shape else ".")
        ) from err
    return [a for a in arguments if a != input_name and a not in arg_params
            and a not in deferred]


def infer_output_shapes(symbol, shapes, input_name, sample_shape, expected=None):
    """Shape of every internal output of ``symbol`` for one sample of ``sample_shape``.

    Parameters
    ----------
    symbol : mx.sym.Symbol
    shapes : dict of str -> tuple
        Parameter shapes (see :func:`param_shapes`).
    input_name : str
    sample_shape : tuple of int
    expected : tuple of int, default=None
        The model's own input shape, named in the error.

    Returns
    -------
    dict of str -> tuple
        ``{'<node>_output': (1, ...)}``; shapes MXNet cannot infer are empty tuples.

    Raises
    ------
    DataError
        If the graph does not accept samples of ``sample_shape``.
    """
    internals = symbol.get_internals()
    shapes = dict(shapes)
    shapes[input_name] = (1,) + tuple(sample_shape)
    try:
        _, out_shapes, _ = internals.infer_shape_partial(**shapes)
    except mx.base.MXNetError as err:
        raise DataError(
            f"Inputs of shape {tuple(sample_shape)} do not fit this model: "
            f"{str(err).strip().splitlines()[0]}"
            + (f" The model expects input shape {expected}."
               if expected else " Pass samples of the shape the model was trained on.")
        ) from err
    return dict(zip(internals.list_outputs(), out_shapes))
