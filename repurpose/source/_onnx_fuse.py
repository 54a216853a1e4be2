"""Fuse the GELU and LayerNorm decompositions that PyTorch's TorchScript exporter writes.

Before opset 17 (LayerNormalization) and 20 (Gelu), ``torch.onnx.export(..., dynamo=False)``
writes ``nn.LayerNorm`` as nine elementwise and reduction nodes and ``nn.GELU`` as five.
Run one by one, each of them reads and writes the whole activation tensor; as MXNet's
``LayerNorm`` and erf-based ``gelu`` they are one pass each (the same rewrite onnxruntime's
graph optimiser applies). On torchvision's convnext_tiny exported at opset 13 it took
extraction from 6.0 to 11.1 images/s, 0.37x to 0.71x of onnxruntime on the same file
(``benchmarks/onnx_intake.py``, batch 32, 2 threads).

The rewrite works on the ONNX graph before conversion and only where the match is exact:
the constants must have the values of the decomposition (1/sqrt(2) or sqrt(2), 1, 0.5, the
exponent 2), every intermediate tensor must be read by the pattern alone, and the normalised
axes must be the trailing ones. Anything else is left as it is and converted node by node.
"""
import numpy as np

__all__ = ["fuse_decompositions"]

_SQRT2 = float(np.sqrt(2.0))


def fuse_decompositions(graph):
    """Replace GELU and LayerNorm decompositions in ``graph`` (in place); return the counts.

    Parameters
    ----------
    graph : onnx.GraphProto

    Returns
    -------
    dict of str -> int
        ``{'Gelu': n, 'LayerNormalization': m}``.
    """
    view = _GraphView(graph)
    counts = {"Gelu": 0, "LayerNormalization": 0}
    for node in list(graph.node):
        if node.op_type == "Erf" and view.alive(node) and _fuse_gelu(view, node):
            counts["Gelu"] += 1
    for node in list(graph.node):
        if node.op_type == "ReduceMean" and view.alive(node) and _fuse_layer_norm(view, node):
            counts["LayerNormalization"] += 1
    view.commit()
    return counts


class _GraphView:
    """Producers, readers and small constant values of a graph, and the pending rewrite."""

    def __init__(self, graph):
        from onnx import numpy_helper

        self.graph = graph
        self.producer = {}
        self.readers = {}
        self.position = {id(node): i for i, node in enumerate(graph.node)}
        for node in graph.node:
            for name in node.output:
                self.producer[name] = node
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
        self.outputs = {output.name for output in graph.output}
        self.scalars = {}
        for tensor in graph.initializer:
            if int(np.prod(tensor.dims, dtype=np.int64)) <= 1:
                self.scalars[tensor.name] = numpy_helper.to_array(tensor)
        self.arrays = {tensor.name: tensor for tensor in graph.initializer}
        self.removed = set()
        self.added = {}  # id of the node it replaces -> new node
        self.new_initializers = []

    def alive(self, node):
        return id(node) not in self.removed

    def scalar(self, name):
        """The value of a one-element constant (initializer or Constant node), or None."""
        if name in self.scalars:
            return float(np.asarray(self.scalars[name]).reshape(-1)[0])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            from onnx import numpy_helper

            for attribute in node.attribute:
                if attribute.name == "value" and int(np.prod(attribute.t.dims,
                                                             dtype=np.int64)) <= 1:
                    return float(numpy_helper.to_array(attribute.t).reshape(-1)[0])
                if attribute.name == "value_float":
                    return float(attribute.f)
        return None

    def only_reader(self, name, op_type):
        """The one node reading ``name`` if it is an ``op_type`` (and ``name`` is no graph
        output), else None."""
        readers = self.readers.get(name, [])
        if len(readers) != 1 or name in self.outputs or readers[0].op_type != op_type:
            return None
        return readers[0]

    def other_input(self, node, name):
        """The input of a two-input ``node`` that is not ``name`` (None if both are)."""
        a, b = node.input[0], node.input[1]
        return b if a == name else a if b == name else None

    def replace(self, matched, new_node):
        """Drop ``matched`` nodes; ``new_node`` takes the place of the last of them in graph
        order (where all its inputs exist)."""
        for node in matched:
            self.removed.add(id(node))
        last = max(matched, key=lambda node: self.position[id(node)])
        self.added[id(last)] = new_node

    def commit(self):
        if not self.removed:
            return
        kept = []
        for node in self.graph.node:
            if id(node) in self.added:
                kept.append(self.added[id(node)])
            elif id(node) not in self.removed:
                kept.append(node)
        del self.graph.node[:]
        self.graph.node.extend(kept)
        self.graph.initializer.extend(self.new_initializers)


def _close(value, expected):
    return value is not None and abs(value - expected) <= 1e-4 * abs(expected)


def _common_name(nodes, suffix):
    names = [n.name for n in nodes if n.name]
    if not names:
        return suffix
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    prefix = prefix[: prefix.rfind("/") + 1] if "/" in prefix else prefix
    return f"{prefix}{suffix}"


def _fuse_gelu(view, erf):
    """``0.5 * x * (1 + erf(x / sqrt(2)))`` in either order of the products."""
    from onnx import helper

    scaled = view.producer.get(erf.input[0])
    if scaled is None or view.only_reader(erf.input[0], "Erf") is None:
        return False
    if scaled.op_type == "Div" and _close(view.scalar(scaled.input[1]), _SQRT2):
        x = scaled.input[0]
    elif scaled.op_type == "Mul":
        x = next((i for i in scaled.input if not _close(view.scalar(i), 1 / _SQRT2)), None)
        if x is None or not _close(view.scalar(view.other_input(scaled, x)), 1 / _SQRT2):
            return False
    else:
        return False
    plus = view.only_reader(erf.output[0], "Add")
    if plus is None or not _close(view.scalar(view.other_input(plus, erf.output[0])), 1.0):
        return False
    product = view.only_reader(plus.output[0], "Mul")
    if product is None:
        return False
    other = view.other_input(product, plus.output[0])
    if other == x:  # x * (1 + erf), then * 0.5
        half = view.only_reader(product.output[0], "Mul")
        if half is None or not _close(view.scalar(view.other_input(half, product.output[0])),
                                      0.5):
            return False
        matched = [scaled, erf, plus, product, half]
    else:  # (x * 0.5) * (1 + erf)
        half = view.producer.get(other)
        if half is None or half.op_type != "Mul" or view.only_reader(other, "Mul") is None \
                or x not in half.input or not _close(view.scalar(view.other_input(half, x)),
                                                     0.5):
            return False
        matched = [scaled, erf, plus, half, product]
    output = matched[-1].output[0]
    view.replace(matched, helper.make_node("Gelu", [x], [output],
                                           name=_common_name(matched, "Gelu")))
    return True


def _reduce_axes(view, node):
    """The axes of a ReduceMean (attribute, or a constant input at opset 18), or None."""
    from onnx import helper

    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if int(attributes.get("keepdims", 1)) != 1:
        return None
    if "axes" in attributes:
        return [int(a) for a in attributes["axes"]]
    if len(node.input) > 1 and node.input[1] in view.arrays:
        from onnx import numpy_helper

        return [int(a) for a in numpy_helper.to_array(view.arrays[node.input[1]]).reshape(-1)]
    return None


def _fuse_layer_norm(view, mean):
    """``(x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) * gamma + beta`` over trailing
    axes (PyTorch's decomposition of ``nn.LayerNorm``)."""
    from onnx import helper, numpy_helper

    axes = _reduce_axes(view, mean)
    if not axes or sorted(axes) != list(range(-len(axes), 0)):
        return False
    x = mean.input[0]
    centre = view.only_reader(mean.output[0], "Sub")
    if centre is None or centre.input[0] != x or centre.input[1] != mean.output[0]:
        return False
    readers = view.readers.get(centre.output[0], [])
    square = next((r for r in readers if r.op_type == "Pow"), None)
    divide = next((r for r in readers if r.op_type == "Div"), None)
    if len(readers) != 2 or square is None or divide is None or \
            centre.output[0] in view.outputs or divide.input[0] != centre.output[0] or \
            square.input[0] != centre.output[0] or not _close(view.scalar(square.input[1]), 2.0):
        return False
    variance = view.only_reader(square.output[0], "ReduceMean")
    if variance is None or _reduce_axes(view, variance) is None or \
            sorted(_reduce_axes(view, variance)) != sorted(axes):
        return False
    plus = view.only_reader(variance.output[0], "Add")
    eps = None if plus is None else view.scalar(view.other_input(plus, variance.output[0]))
    root = None if plus is None else view.only_reader(plus.output[0], "Sqrt")
    if eps is None or root is None or view.only_reader(root.output[0], "Div") is not divide \
            or divide.input[1] != root.output[0]:
        return False
    matched = [mean, centre, square, variance, plus, root, divide]
    output = divide.output[0]
    scale = view.only_reader(output, "Mul")
    gamma = None if scale is None else view.other_input(scale, output)
    if gamma is not None and gamma in view.arrays:
        matched.append(scale)
        output = scale.output[0]
        shift = view.only_reader(output, "Add")
        beta = None if shift is None else view.other_input(shift, output)
        if beta is not None and beta in view.arrays:
            matched.append(shift)
            output = shift.output[0]
        else:
            beta = None
    else:
        gamma = beta = None
    name = _common_name(matched, "LayerNormalization")
    inputs = [x]
    for role, value, fill in (("gamma", gamma, 1.0), ("beta", beta, 0.0)):
        if value is None:
            width = _trailing_width(view, gamma or beta)
            if width is None:
                return False
            value = f"{name}.{role}"
            view.new_initializers.append(
                numpy_helper.from_array(np.full(width, fill, np.float32), value))
        inputs.append(value)
    view.replace(matched, helper.make_node(
        "LayerNormalization", inputs, [output], name=name, axis=-len(axes), epsilon=eps))
    return True


def _trailing_width(view, other):
    """The size of a scale or shift created for a LayerNorm that lacks it, from the other
    one's shape (None when neither is there: the width is then unknown here)."""
    if other is None or other not in view.arrays:
        return None
    return tuple(int(d) for d in view.arrays[other].dims)
