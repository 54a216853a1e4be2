"""Read-only views of an MXNet symbol graph: its layers (operator nodes) in order, their
outputs, and which parameters each one owns.
"""
import json
from collections import namedtuple

import mxnet as mx

__all__ = ["Layer", "graph_nodes", "layer_outputs", "layer_params", "per_sample_layers"]

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
