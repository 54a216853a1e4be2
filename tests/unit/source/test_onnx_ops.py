"""Every ONNX translation and fold, checked against onnxruntime on a small graph.

Each case is a graph built here with ``onnx.helper``. onnxruntime (the reference engine)
runs it at batch sizes 2 and 3; the graph imported by ``import_onnx`` runs the same inputs,
and the outputs must agree to a relative difference of 1e-4 (of the output's scale). Both
batch sizes go through ONE imported graph: the import fixes shapes for folding, yet the
graph built must serve any batch size.

Files with a fixed batch size (as ``torch.onnx.export(..., dynamo=True)`` writes them) are
checked by running the imported graph at another batch size than the file's and comparing
each sample with onnxruntime's output for the file's batch.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
import mxnet as mx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from repurpose.exceptions import UnsupportedOperatorError  # noqa: E402
from repurpose.source._onnx import import_onnx  # noqa: E402

RTOL = 1e-4
FLOAT, BOOL, INT64 = TensorProto.FLOAT, TensorProto.BOOL, TensorProto.INT64


# ---------------------------------------------------------------------------------------------
# Harness
# ---------------------------------------------------------------------------------------------
def make_model(nodes, sample_shape, outputs=("y",), inits=None, opset=17, batch="N",
               out_type=FLOAT):
    """A graph with one float input ``x`` of shape (batch, *sample_shape)."""
    initializers = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    graph = helper.make_graph(
        nodes, "case",
        [helper.make_tensor_value_info("x", FLOAT, [batch] + list(sample_shape))],
        [helper.make_tensor_value_info(name, out_type, None) for name in outputs],
        initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def one(op, attrs=None, consts=(), sample_shape=(3, 5, 5), opset=17, out_type=FLOAT,
        n_outputs=1, **kwargs):
    """A graph of one ``op`` node reading ``x`` and the named constants, in order."""
    names = ["x"]
    inits = {}
    for i, value in enumerate(consts):
        if value is None:
            names.append("")
            continue
        names.append(f"c{i}")
        inits[f"c{i}"] = value
    outputs = [f"y{i}" for i in range(n_outputs)] if n_outputs > 1 else ["y"]
    node = helper.make_node(op, names, outputs, name=f"the_{op.lower()}", **(attrs or {}))
    return make_model([node], sample_shape, outputs, inits, opset, out_type=out_type, **kwargs)


def ort_run(model, x):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, {"x": x})]


def mx_run(imported, x):
    args = dict(imported["arg_params"])
    args[imported["input_name"]] = mx.nd.array(x)
    executor = imported["symbol"].bind(mx.cpu(), args=args,
                                       aux_states=dict(imported["aux_params"]), grad_req="null")
    return [o.asnumpy() for o in executor.forward(is_train=False)]


def assert_close(ours, reference, what):
    reference = np.asarray(reference, dtype=np.float64)
    ours = np.asarray(ours, dtype=np.float64)
    assert ours.shape == reference.shape, f"{what}: shape {ours.shape} != {reference.shape}"
    scale = max(np.abs(reference).max(initial=0.0), 1e-6)
    difference = np.abs(ours - reference).max(initial=0.0) / scale
    assert difference <= RTOL, f"{what}: max relative difference {difference:.2e}"


def sample(shape, rng, positive=False):
    x = rng.randn(*shape).astype(np.float32)
    return np.abs(x) + 0.1 if positive else x


def check(model, tmp_path, positive=False, batches=(2, 3), input_shape=None):
    """Import ``model`` once and compare with onnxruntime at every batch size."""
    path = tmp_path / "case.onnx"
    onnx.save(model, str(path))
    imported = import_onnx(path, input_shape=input_shape)
    rng = np.random.RandomState(0)
    for batch in batches:
        x = sample((batch,) + imported["input_shape"], rng, positive)
        for k, (ours, reference) in enumerate(zip(mx_run(imported, x), ort_run(model, x))):
            assert_close(ours, reference, f"output {k} at batch {batch}")
    return imported


def check_fixed_batch(model, tmp_path, batch=2, positive=False):
    """A file written for batch ``batch``: run ours at batch + 1; each sample must match."""
    path = tmp_path / "case.onnx"
    onnx.save(model, str(path))
    imported = import_onnx(path)
    rng = np.random.RandomState(0)
    x = sample((batch,) + imported["input_shape"], rng, positive)
    references = ort_run(model, x)
    bigger = np.concatenate([x, x[:1]])
    for k, (ours, reference) in enumerate(zip(mx_run(imported, bigger), references)):
        assert_close(ours[:batch], reference, f"output {k}, file's samples")
        assert_close(ours[batch:], reference[:1], f"output {k}, extra sample")
    return imported


def const(*shape, seed=1, positive=False):
    return sample(shape, np.random.RandomState(seed), positive)


# ---------------------------------------------------------------------------------------------
# Elementwise operators
# ---------------------------------------------------------------------------------------------
UNARY = ["Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Neg", "Abs", "Floor", "Ceil", "Sin", "Cos",
         "Softsign", "Softplus", "Round", "Sign"]


@pytest.mark.parametrize("op", UNARY)
def test_unary(tmp_path, op):
    check(one(op), tmp_path)


@pytest.mark.parametrize("op", ["Log", "Sqrt", "Reciprocal"])
def test_unary_positive(tmp_path, op):
    check(one(op), tmp_path, positive=True)


@pytest.mark.parametrize("op, attrs, opset", [
    ("Elu", {"alpha": 0.7}, 17), ("Selu", {}, 17), ("Selu", {"alpha": 1.2, "gamma": 0.9}, 17),
    ("LeakyRelu", {}, 17), ("LeakyRelu", {"alpha": 0.2}, 17), ("HardSigmoid", {}, 17),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, 17), ("HardSwish", {}, 17),
    ("Mish", {}, 18), ("Gelu", {}, 20), ("Gelu", {"approximate": "tanh"}, 20),
])
def test_activation(tmp_path, op, attrs, opset):
    check(one(op, attrs, opset=opset), tmp_path)


@pytest.mark.parametrize("consts, opset, attrs", [
    ((np.float32(0.0), np.float32(6.0)), 13, {}),  # ReLU6 as PyTorch writes it
    ((np.float32(-0.5), None), 13, {}),
    ((None, np.float32(0.5)), 13, {}),
    ((), 7, {"min": -0.3, "max": 0.4}),
])
def test_clip(tmp_path, consts, opset, attrs):
    check(one("Clip", attrs, consts, opset=opset), tmp_path)


BINARY = ["Add", "Sub", "Mul", "Div"]


@pytest.mark.parametrize("op", BINARY + ["Pow"])
@pytest.mark.parametrize("operand", ["scalar", "vector", "channel", "first"])
def test_binary_with_constant(tmp_path, op, operand):
    value = {"scalar": np.float32(1.7), "vector": const(5, positive=True),
             "channel": const(3, 1, 1, positive=True), "first": np.float32(2.5)}[operand]
    if operand == "first":
        node = helper.make_node(op, ["c", "x"], ["y"], name="binary")
        model = make_model([node], (3, 5, 5), inits={"c": value})
    else:
        model = one(op, consts=(value,))
    check(model, tmp_path, positive=True)


@pytest.mark.parametrize("op", BINARY + ["Pow", "Equal", "Less", "Greater", "Max", "Min",
                                         "Sum", "Mean"])
def test_binary_of_two_tensors(tmp_path, op):
    out_type = BOOL if op in ("Equal", "Less", "Greater") else FLOAT
    second = "Round" if out_type == BOOL else "Exp"  # Exp: no division by zero
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node(second, ["x"], ["q"], name="second"),
             helper.make_node(op, ["r", "q"] if op != "Pow" else ["x", "q"], ["y"], name="op")]
    check(make_model(nodes, (3, 4), out_type=out_type), tmp_path, positive=op == "Pow")


@pytest.mark.parametrize("exponent", [2.0, 0.5, 1.0, 3.0])
def test_pow_with_constant_exponent(tmp_path, exponent):
    check(one("Pow", consts=(np.float32(exponent),)), tmp_path, positive=True)


def test_mod_of_floats(tmp_path):
    """fmod=1: the sign of the dividend (C's fmod); the only mode ONNX allows for floats."""
    nodes = [helper.make_node("Floor", ["x"], ["f"], name="floor"),
             helper.make_node("Mod", ["f", "c"], ["y"], name="mod", fmod=1)]
    check(make_model(nodes, (3, 4), inits={"c": np.float32(3.0)}), tmp_path)


def test_mod_of_integers(tmp_path):
    """fmod=0: the sign of the divisor (Python's %)."""
    nodes = [helper.make_node("Floor", ["x"], ["f"], name="floor"),
             helper.make_node("Cast", ["f"], ["i"], name="to_int", to=TensorProto.INT64),
             helper.make_node("Mod", ["i", "c"], ["m"], name="mod", fmod=0),
             helper.make_node("Cast", ["m"], ["y"], name="to_float", to=FLOAT)]
    check(make_model(nodes, (3, 4), inits={"c": np.int64(3)}), tmp_path)


def test_where_with_constant_branch(tmp_path):
    nodes = [helper.make_node("Greater", ["x", "zero"], ["cond"], name="positive"),
             helper.make_node("Where", ["cond", "x", "fill"], ["y"], name="where")]
    inits = {"zero": np.float32(0.0), "fill": const(4)}
    check(make_model(nodes, (3, 4), inits=inits), tmp_path)


@pytest.mark.parametrize("slope", ["channel", "scalar"])
def test_prelu(tmp_path, slope):
    value = const(3, 1, 1) if slope == "channel" else np.array([0.25], np.float32)
    check(one("PRelu", consts=(value,)), tmp_path)


@pytest.mark.parametrize("op", ["Identity", "Dropout"])
def test_no_op_nodes_disappear(tmp_path, op):
    nodes = [helper.make_node(op, ["x"], ["i"], name="noop"),
             helper.make_node("Relu", ["i"], ["y"], name="relu")]
    imported = check(make_model(nodes, (3, 4)), tmp_path)
    assert imported["symbol"].name == "relu"
    assert "noop" not in imported["symbol"].tojson()


@pytest.mark.parametrize("to", [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT32])
def test_cast(tmp_path, to):
    nodes = [helper.make_node("Cast", ["x"], ["c"], name="cast", to=to),
             helper.make_node("Cast", ["c"], ["y"], name="back", to=FLOAT)]
    check(make_model(nodes, (3, 4)), tmp_path)


# ---------------------------------------------------------------------------------------------
# Softmax and normalisation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset, axis", [(11, 1), (11, -1), (13, 1), (13, -1), (13, 2)])
def test_softmax(tmp_path, op, opset, axis):
    check(one(op, {"axis": axis}, opset=opset), tmp_path)


@pytest.mark.parametrize("opset", [9, 15])
def test_batch_normalization(tmp_path, opset):
    attrs = {"epsilon": 1e-3}
    if opset >= 14:
        attrs["training_mode"] = 0
    consts = (const(3, positive=True), const(3, seed=2), const(3, seed=3),
              const(3, seed=4, positive=True))
    check(one("BatchNormalization", attrs, consts, opset=opset), tmp_path)


def test_shared_batch_norm_statistics(tmp_path):
    """Exporters share identical tensors between layers; MXNet needs them apart."""
    ones, zeros = np.ones(3, np.float32), np.zeros(3, np.float32)
    nodes = [helper.make_node("BatchNormalization", ["x", "ones", "zeros", "zeros", "ones"],
                              ["b1"], name="bn1"),
             helper.make_node("BatchNormalization", ["b1", "ones", "zeros", "zeros", "ones"],
                              ["y"], name="bn2")]
    check(make_model(nodes, (3, 4, 4), inits={"ones": ones, "zeros": zeros}), tmp_path)


def test_instance_normalization(tmp_path):
    check(one("InstanceNormalization", {"epsilon": 1e-4}, (const(3), const(3, seed=2))),
          tmp_path)


@pytest.mark.parametrize("axis", [-1, -2, 2])
def test_layer_normalization(tmp_path, axis):
    shape = (3, 4, 5)
    width = shape[axis:] if axis < 0 else shape[axis - 1:]
    check(one("LayerNormalization", {"axis": axis, "epsilon": 1e-5},
              (const(*width), const(*width, seed=2)), sample_shape=shape), tmp_path)


@pytest.mark.parametrize("opset, per", [(18, "group"), (21, "channel")])
def test_group_normalization(tmp_path, opset, per):
    size = 2 if per == "group" else 4
    check(one("GroupNormalization", {"num_groups": 2, "epsilon": 1e-5},
              (const(size), const(size, seed=2)), sample_shape=(4, 3, 3), opset=opset),
          tmp_path)


def test_lp_normalization(tmp_path):
    check(one("LpNormalization", {"axis": 1, "p": 2}), tmp_path)


# ---------------------------------------------------------------------------------------------
# Linear algebra
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("attrs, c", [
    ({"transB": 1}, "vector"), ({"transB": 0}, "vector"), ({"alpha": 0.5, "beta": 2.0}, "vector"),
    ({}, "matrix"), ({}, None), ({"transA": 1}, "vector"),
])
def test_gemm(tmp_path, attrs, c):
    b = const(6, 4) if attrs.get("transB") else const(4, 6)
    consts = [b]
    if c == "vector":
        consts.append(const(6, seed=3))
    elif c == "matrix":
        consts.append(const(1, 6, seed=3))
    if attrs.get("transA"):
        nodes = [helper.make_node("Transpose", ["x"], ["t"], name="t", perm=[1, 0]),
                 helper.make_node("Gemm", ["t", "b"] + (["c"] if c else []), ["y"], name="g",
                                  **attrs)]
        check(make_model(nodes, (4,), inits={"b": b, "c": consts[-1]}), tmp_path,
              batches=(4,))  # the transposed operand: (4, batch), the product (batch, 6)
        return
    check(one("Gemm", attrs, consts, sample_shape=(4,)), tmp_path)


@pytest.mark.parametrize("shape", [(4,), (7, 4), (2, 7, 4)])
def test_matmul_with_weight_matrix(tmp_path, shape):
    check(one("MatMul", consts=(const(4, 6),), sample_shape=shape), tmp_path)


def test_matmul_constant_on_the_left(tmp_path):
    check(make_model([helper.make_node("MatMul", ["w", "x"], ["y"], name="mm")], (4, 3),
                     inits={"w": const(5, 4)}), tmp_path)


def test_attention_block(tmp_path):
    """Multi-head self-attention as PyTorch writes it: q k^T, scale, softmax, times v."""
    heads, tokens, dim = 2, 5, 4
    nodes = [
        helper.make_node("MatMul", ["x", "w_qkv"], ["qkv"], name="qkv"),
        helper.make_node("Reshape", ["qkv", "split_heads"], ["h"], name="split_heads"),
        helper.make_node("Transpose", ["h"], ["t"], name="to_heads", perm=[2, 0, 3, 1, 4]),
        helper.make_node("Gather", ["t", "i0"], ["q"], name="q", axis=0),
        helper.make_node("Gather", ["t", "i1"], ["k"], name="k", axis=0),
        helper.make_node("Gather", ["t", "i2"], ["v"], name="v", axis=0),
        helper.make_node("Transpose", ["k"], ["kt"], name="kt", perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"], name="scores"),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"], name="scale"),
        helper.make_node("Softmax", ["scaled"], ["attn"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["attn", "v"], ["o"], name="weighted"),
        helper.make_node("Transpose", ["o"], ["ot"], name="merge", perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ot", "merge_heads"], ["y"], name="merge_heads"),
    ]
    inits = {"w_qkv": const(dim * heads, 3 * dim * heads),
             "split_heads": np.array([0, 0, 3, heads, dim], np.int64),
             "merge_heads": np.array([0, 0, -1], np.int64),
             "i0": np.array(0, np.int64), "i1": np.array(1, np.int64),
             "i2": np.array(2, np.int64), "scale": np.float32(dim ** -0.5)}
    check(make_model(nodes, (tokens, dim * heads), inits=inits), tmp_path)


def test_matmul_of_two_tensors(tmp_path):
    """(B, 4, 5) @ (B, 5, 4): both operands computed."""
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], name="t", perm=[0, 2, 1]),
             helper.make_node("MatMul", ["x", "xt"], ["y"], name="mm")]
    check(make_model(nodes, (4, 5)), tmp_path)


def test_matmul_broadcasts_leading_axes(tmp_path):
    """(B, 3, 4, 5) @ (B, 1, 5, 4), and (B, 3, 4, 5) @ a constant (3, 5, 2)."""
    nodes = [helper.make_node("Slice", ["x", "zero", "one", "one"], ["first"], name="first"),
             helper.make_node("Transpose", ["first"], ["ft"], name="t", perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["x", "ft"], ["y0"], name="mm"),
             helper.make_node("MatMul", ["x", "w"], ["y1"], name="mm_const")]
    inits = {"zero": np.array([0], np.int64), "one": np.array([1], np.int64),
             "w": const(3, 5, 2)}
    check(make_model(nodes, (3, 4, 5), outputs=("y0", "y1"), inits=inits), tmp_path)


@pytest.mark.parametrize("equation, sample_shape, other", [
    ("bgid,bgjd->bgij", (2, 5, 4), "slice"),
    ("bgij,bgjd->bgid", (2, 3, 5), "project"),
    ("bij,bjk->bik", (3, 5), "project"),
    ("bij,bkj->bki", (3, 5), "self"),
])
def test_einsum(tmp_path, equation, sample_shape, other):
    """Two-operand Einsum as maxvit writes attention (both operands computed)."""
    inits = {}
    if other == "slice":  # a = x[..., :3, :], b = x[..., 3:, :]
        nodes = [helper.make_node("Slice", ["x", "zero", "three", "axis"], ["a"], name="a"),
                 helper.make_node("Slice", ["x", "three", "five", "axis"], ["b"], name="b")]
        inits = {"zero": np.array([0], np.int64), "three": np.array([3], np.int64),
                 "five": np.array([5], np.int64), "axis": np.array([-2], np.int64)}
    elif other == "project":  # b = x^T @ w
        perm = list(range(len(sample_shape) + 1))
        perm[-1], perm[-2] = perm[-2], perm[-1]
        nodes = [helper.make_node("Identity", ["x"], ["a"], name="a"),
                 helper.make_node("Transpose", ["x"], ["xt"], name="xt", perm=perm),
                 helper.make_node("MatMul", ["xt", "w"], ["b"], name="b")]
        inits = {"w": const(sample_shape[-2], 4)}
    else:
        nodes = [helper.make_node("Identity", ["x"], ["a"], name="a"),
                 helper.make_node("Sigmoid", ["x"], ["b"], name="b")]
    nodes.append(helper.make_node("Einsum", ["a", "b"], ["y"], name="einsum",
                                  equation=equation))
    check(make_model(nodes, sample_shape, inits=inits), tmp_path)


# ---------------------------------------------------------------------------------------------
# Convolution and pooling
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("attrs, bias", [
    ({"pads": [1, 1, 1, 1]}, True), ({"pads": [0, 1, 1, 2]}, True),
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, False),
    ({"auto_pad": "SAME_LOWER", "strides": [2, 2]}, False), ({"auto_pad": "VALID"}, True),
    ({"pads": [2, 2, 2, 2], "dilations": [2, 2]}, False), ({"group": 3, "pads": [1, 1, 1, 1]}, True),
])
def test_conv_2d(tmp_path, attrs, bias):
    groups = attrs.get("group", 1)
    consts = [const(6, 3 // groups, 3, 3)] + ([const(6, seed=2)] if bias else [])
    check(one("Conv", {"kernel_shape": [3, 3], **attrs}, consts, sample_shape=(3, 7, 7)),
          tmp_path)


def test_conv_1d(tmp_path):
    check(one("Conv", {"kernel_shape": [3], "pads": [1, 1]}, (const(4, 3, 3), const(4)),
              sample_shape=(3, 9)), tmp_path)


def test_conv_transpose(tmp_path):
    check(one("ConvTranspose", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                "output_padding": [1, 1]}, (const(3, 4, 3, 3), const(4))),
          tmp_path)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3, 3], "strides": [2, 2]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1},
    {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1], "count_include_pad": 1},
    {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
])
def test_pooling(tmp_path, op, attrs):
    if op == "MaxPool":
        attrs = {k: v for k, v in attrs.items() if k != "count_include_pad"}
        if attrs.get("auto_pad") is None and attrs.get("pads", [0])[0] == 0 and \
                "pads" in attrs:
            pass
    elif attrs.get("auto_pad"):
        attrs = dict(attrs, count_include_pad=1)
    check(one(op, attrs, sample_shape=(3, 7, 7)), tmp_path)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pooling(tmp_path, op):
    check(one(op, sample_shape=(3, 4, 5)), tmp_path)


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------
REDUCE = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
          "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp"]


@pytest.mark.parametrize("op", REDUCE + ["ReduceLogSum"])
@pytest.mark.parametrize("axes, keepdims", [([2, 3], 1), ([-1], 0), ([1, 2, 3], 1)])
@pytest.mark.parametrize("opset", [13, 18])
def test_reduce(tmp_path, op, axes, keepdims, opset):
    as_input = opset >= 18 or (op == "ReduceSum" and opset >= 13)
    attrs = {"keepdims": keepdims} if as_input else {"keepdims": keepdims, "axes": axes}
    consts = (np.array(axes, np.int64),) if as_input else ()
    check(one(op, attrs, consts, opset=opset), tmp_path, positive=op == "ReduceLogSum")


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_arg_reduce(tmp_path, op, keepdims):
    check(one(op, {"axis": 1, "keepdims": keepdims}, out_type=INT64), tmp_path)


def test_reduce_over_the_batch_error(tmp_path):
    with pytest.raises(UnsupportedOperatorError, match=r"reduces along the batch axis"):
        check(one("ReduceMean", {"axes": [0, 1]}, opset=13), tmp_path)


# ---------------------------------------------------------------------------------------------
# Shapes and layout
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [[0, -1], [0, 3, -1], [-1, 25], [0, 15, 5], [0, 0, 5, 5]])
def test_reshape(tmp_path, target):
    check(one("Reshape", consts=(np.array(target, np.int64),)), tmp_path)


@pytest.mark.parametrize("axis", [1, 2, 3])
def test_flatten(tmp_path, axis):
    check(one("Flatten", {"axis": axis}), tmp_path)


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_unsqueeze(tmp_path, opset):
    if opset >= 13:
        nodes = [helper.make_node("Unsqueeze", ["x", "ax"], ["u"], name="unsqueeze"),
                 helper.make_node("Squeeze", ["u", "ax2"], ["y"], name="squeeze")]
    else:
        nodes = [helper.make_node("Unsqueeze", ["x"], ["u"], name="unsqueeze", axes=[1, -1]),
                 helper.make_node("Squeeze", ["u"], ["y"], name="squeeze", axes=[1])]
    inits = {"ax": np.array([1, -1], np.int64), "ax2": np.array([1], np.int64)}
    check(make_model(nodes, (3, 4), inits=inits if opset >= 13 else {}, opset=opset), tmp_path)


def test_squeeze_without_axes_keeps_the_batch_axis(tmp_path):
    """At batch 1 onnxruntime would drop the batch axis too; the import keeps it."""
    check(one("Squeeze", sample_shape=(1, 4, 1), opset=13), tmp_path, batches=(2, 3))


@pytest.mark.parametrize("perm", [[0, 2, 3, 1], [0, 3, 1, 2], None])
def test_transpose(tmp_path, perm):
    attrs = {"perm": perm} if perm else {}
    if perm is None:  # a full reversal moves the batch axis: its result is not per sample
        with pytest.raises(UnsupportedOperatorError):
            nodes = [helper.make_node("Transpose", ["x"], ["t"], name="t"),
                     helper.make_node("ReduceSum", ["t"], ["y"], name="sum", axes=[3],
                                      keepdims=0)]
            check(make_model(nodes, (3, 4, 5), opset=11), tmp_path)
        return
    check(one("Transpose", attrs), tmp_path)


def test_concat_of_tensors(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Concat", ["x", "r"], ["y"], name="cat", axis=1)]
    check(make_model(nodes, (3, 4)), tmp_path)


@pytest.mark.parametrize("attrs, consts, opset, n", [
    ({"axis": 1}, (), 13, 3),
    ({"axis": 1}, (np.array([1, 2], np.int64),), 13, 2),
    ({"axis": 2, "split": [2, 3]}, (), 11, 2),
    ({"axis": 2, "num_outputs": 2}, (), 18, 2),
])
def test_split(tmp_path, attrs, consts, opset, n):
    check(one("Split", attrs, consts, opset=opset, n_outputs=n), tmp_path)


@pytest.mark.parametrize("starts, ends, axes, steps", [
    ([1], [3], [1], None), ([0, 1], [2, -1], [2, 3], None), ([4], [-10], [3], [-2]),
    ([0], [9223372036854775807], [1], [2]), ([-2], [100], [-1], None),
])
def test_slice(tmp_path, starts, ends, axes, steps):
    consts = [np.array(starts, np.int64), np.array(ends, np.int64), np.array(axes, np.int64)]
    if steps:
        consts.append(np.array(steps, np.int64))
    check(one("Slice", consts=tuple(consts)), tmp_path)


@pytest.mark.parametrize("indices, axis", [
    (np.array(1, np.int64), 1), (np.array([2, 0], np.int64), 2), (np.array([1, 2], np.int64), 1),
    (np.array(-1, np.int64), 3), (np.array([[0, 1], [2, 2]], np.int64), 2),
])
def test_gather(tmp_path, indices, axis):
    check(one("Gather", {"axis": axis}, (indices,)), tmp_path)


def test_gather_from_a_constant_table(tmp_path):
    nodes = [helper.make_node("Abs", ["x"], ["a"], name="abs"),
             helper.make_node("Floor", ["a"], ["f"], name="floor"),
             helper.make_node("Clip", ["f", "lo", "hi"], ["c"], name="clip"),
             helper.make_node("Cast", ["c"], ["i"], name="to_int", to=TensorProto.INT64),
             helper.make_node("Gather", ["table", "i"], ["y"], name="lookup", axis=0)]
    inits = {"table": const(4, 3), "lo": np.float32(0), "hi": np.float32(3)}
    check(make_model(nodes, (5,), inits=inits, opset=13), tmp_path)


@pytest.mark.parametrize("target", [[1, 3, 1, 5], [3, 4, 5], [1, 1, 4, 5]])
def test_expand(tmp_path, target):
    check(one("Expand", consts=(np.array(target, np.int64),), sample_shape=(3, 1, 5)), tmp_path)


def test_tile(tmp_path):
    check(one("Tile", consts=(np.array([1, 2, 1, 3], np.int64),)), tmp_path)


@pytest.mark.parametrize("mode, pads, opset", [
    ("constant", [0, 0, 1, 2, 0, 0, 2, 1], 13), ("reflect", [0, 0, 1, 1, 0, 0, 1, 1], 13),
    ("edge", [0, 0, 2, 0, 0, 0, 0, 2], 13), ("constant", [0, 1, 0, 0, 0, 2, 0, 0], 13),
    ("constant", [0, 1, 1, 0, 0, 1, 1, 0], 7),
])
def test_pad(tmp_path, mode, pads, opset):
    if opset >= 11:
        model = one("Pad", {"mode": mode}, (np.array(pads, np.int64), np.float32(0.5)),
                    opset=opset)
    else:
        model = one("Pad", {"mode": mode, "pads": pads, "value": 0.5}, opset=opset)
    check(model, tmp_path)


def test_pad_of_three_dimensional_tensors(tmp_path):
    check(one("Pad", {}, (np.array([0, 1, 2, 0, 0, 1], np.int64),), sample_shape=(4, 5)),
          tmp_path)


@pytest.mark.parametrize("opset", [11, 13, 19])
def test_resize_nearest(tmp_path, opset):
    consts = (None, np.array([1, 1, 2, 2], np.float32)) if opset >= 13 else \
        (np.array([], np.float32), np.array([1, 1, 2, 2], np.float32))
    check(one("Resize", {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                         "nearest_mode": "floor"}, consts, opset=opset), tmp_path)


# ---------------------------------------------------------------------------------------------
# Folding: shape arithmetic and constant-only subgraphs
# ---------------------------------------------------------------------------------------------
def test_shape_arithmetic_is_folded(tmp_path):
    """x.view(x.size(0), -1) as the TorchScript exporter writes it."""
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "zero"], ["n"], name="batch", axis=0),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="n1"),
             helper.make_node("Concat", ["n1", "minus_one"], ["target"], name="target", axis=0),
             helper.make_node("Reshape", ["x", "target"], ["y"], name="flatten")]
    inits = {"zero": np.array(0, np.int64), "axes": np.array([0], np.int64),
             "minus_one": np.array([-1], np.int64)}
    imported = check(make_model(nodes, (3, 4, 5), inits=inits, opset=13), tmp_path)
    assert imported["symbol"].name == "flatten"
    assert '"name": "shape"' not in imported["symbol"].tojson()


def test_shape_with_start_and_end_and_size(tmp_path):
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape", start=1, end=-1),
             helper.make_node("Size", ["x"], ["n"], name="size"),
             helper.make_node("Cast", ["s"], ["sf"], name="sf", to=FLOAT),
             helper.make_node("Cast", ["n"], ["nf"], name="nf", to=FLOAT),
             helper.make_node("ReduceSum", ["sf"], ["total"], name="total", keepdims=0),
             helper.make_node("Div", ["total", "nf"], ["ratio"], name="ratio"),
             helper.make_node("Mul", ["x", "ratio"], ["y"], name="scale")]
    check(make_model(nodes, (3, 4, 5), opset=15), tmp_path, batches=(2,))


def test_class_token_expanded_to_the_batch(tmp_path):
    """cls_token.expand(x.shape[0], -1, -1) then torch.cat((cls, x), dim=1)."""
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "zero"], ["n"], name="batch", axis=0),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="n1"),
             helper.make_node("Concat", ["n1", "minus_ones"], ["target"], name="t", axis=0),
             helper.make_node("ConstantOfShape", ["three"], ["ones"], name="ones",
                              value=numpy_helper.from_array(np.array([1], np.int64))),
             helper.make_node("Mul", ["ones", "minus_one"], ["neg"], name="neg"),
             helper.make_node("Equal", ["target", "neg"], ["is_neg"], name="is_neg"),
             helper.make_node("Where", ["is_neg", "ones", "target"], ["sizes"], name="sizes"),
             helper.make_node("Expand", ["cls", "sizes"], ["cls_n"], name="expand"),
             helper.make_node("Concat", ["cls_n", "x"], ["y"], name="cat", axis=1)]
    inits = {"zero": np.array(0, np.int64), "axes": np.array([0], np.int64),
             "minus_ones": np.array([-1, -1], np.int64), "three": np.array([3], np.int64),
             "minus_one": np.array([-1], np.int64), "cls": const(1, 1, 4)}
    check(make_model(nodes, (5, 4), inits=inits, opset=13), tmp_path)


@pytest.mark.parametrize("op, inputs, attrs, consts, sample_shape", [
    ("Range", ["start", "limit", "delta"], {},
     {"start": np.float32(0), "limit": np.float32(4), "delta": np.float32(1)}, (4,)),
    ("CumSum", ["v", "axis"], {}, {"v": const(4), "axis": np.array(0, np.int64)}, (4,)),
    ("ScatterND", ["data", "idx", "upd"], {},
     {"data": np.zeros((3, 4), np.float32), "idx": np.array([[0, 1], [2, 3]], np.int64),
      "upd": np.array([5.0, -3.0], np.float32)}, (3, 4)),
    ("ConstantOfShape", ["shape4"], {"value": numpy_helper.from_array(np.array([0.5],
                                                                              np.float32))},
     {"shape4": np.array([4], np.int64)}, (4,)),
    ("Trilu", ["square"], {"upper": 0}, {"square": const(4, 4)}, (4, 4)),
])
def test_constant_subgraph_is_folded(tmp_path, op, inputs, attrs, consts, sample_shape):
    nodes = [helper.make_node(op, inputs, ["c"], name="const_op", **attrs),
             helper.make_node("Add", ["x", "c"], ["y"], name="add")]
    imported = check(make_model(nodes, sample_shape, inits=consts, opset=17), tmp_path)
    assert "const_op" not in imported["symbol"].tojson()


def test_convolution_of_constants_is_folded(tmp_path):
    """A positional encoding computed by a convolution of constants (timm's EdgeNeXt)."""
    nodes = [helper.make_node("Conv", ["grid", "w"], ["enc"], name="encode",
                              kernel_shape=[1, 1]),
             helper.make_node("Add", ["x", "enc"], ["y"], name="add")]
    inits = {"grid": const(1, 2, 4, 4), "w": const(3, 2, 1, 1, seed=2)}
    imported = check(make_model(nodes, (3, 4, 4), inits=inits), tmp_path)
    assert "encode" not in imported["symbol"].tojson()


def _save(model, tmp_path):
    path = tmp_path / "case.onnx"
    onnx.save(model, str(path))
    return path


def test_fold_only_operator_on_data_error(tmp_path):
    nodes = [helper.make_node("CumSum", ["x", "axis"], ["y"], name="running")]
    model = make_model(nodes, (4,), inits={"axis": np.array(1, np.int64)})
    with pytest.raises(UnsupportedOperatorError,
                       match=r"CumSum \(node 'running', on a tensor computed from the data\)"):
        import_onnx(_save(model, tmp_path))


# ---------------------------------------------------------------------------------------------
# Files with a fixed batch size (torch.onnx.export(..., dynamo=True))
# ---------------------------------------------------------------------------------------------
def test_fixed_batch_flatten(tmp_path):
    nodes = [helper.make_node("Reshape", ["x", "target"], ["y"], name="view")]
    model = make_model(nodes, (3, 4), inits={"target": np.array([2, 12], np.int64)}, batch=2)
    check_fixed_batch(model, tmp_path)


def test_fixed_batch_heads_merged_with_the_batch(tmp_path):
    """(B, T, H*D) -> (B*H, T, D) and back, as attention written for batch 2."""
    nodes = [helper.make_node("Reshape", ["x", "split"], ["s"], name="split"),
             helper.make_node("Transpose", ["s"], ["t"], name="heads_first", perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["t", "merge"], ["m"], name="merge_batch"),
             helper.make_node("Softmax", ["m"], ["p"], name="softmax", axis=-1),
             helper.make_node("Reshape", ["p", "unmerge"], ["u"], name="unmerge"),
             helper.make_node("Transpose", ["u"], ["v"], name="back", perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["v", "flat"], ["y"], name="flat")]
    inits = {"split": np.array([2, 5, 3, 4], np.int64), "merge": np.array([6, 5, 4], np.int64),
             "unmerge": np.array([2, 3, 5, 4], np.int64), "flat": np.array([2, 60], np.int64)}
    check_fixed_batch(make_model(nodes, (5, 12), inits=inits, batch=2), tmp_path)


def test_fixed_batch_sequence_first_layout(tmp_path):
    """torchvision's attention works on (T, B, E): the batch is axis 1, then merged."""
    nodes = [helper.make_node("Transpose", ["x"], ["t"], name="seq_first", perm=[1, 0, 2]),
             helper.make_node("Reshape", ["t", "m"], ["r"], name="merge"),
             helper.make_node("Reshape", ["r", "b"], ["u"], name="unmerge"),
             helper.make_node("Transpose", ["u"], ["y"], name="batch_first", perm=[1, 0, 2])]
    inits = {"m": np.array([10, 4], np.int64), "b": np.array([5, 2, 4], np.int64)}
    check_fixed_batch(make_model(nodes, (5, 4), inits=inits, batch=2), tmp_path)


def test_fixed_batch_class_token(tmp_path):
    nodes = [helper.make_node("Expand", ["cls", "sizes"], ["c"], name="expand"),
             helper.make_node("Concat", ["c", "x"], ["y"], name="cat", axis=1)]
    inits = {"cls": const(1, 1, 4), "sizes": np.array([2, -1, -1], np.int64)}
    inits["sizes"] = np.array([2, 1, 4], np.int64)
    check_fixed_batch(make_model(nodes, (5, 4), inits=inits, batch=2), tmp_path)


def test_fixed_batch_as_strided_gather(tmp_path):
    """dynamo's as_strided: flatten the whole batch, gather precomputed flat indices."""
    per_sample = np.arange(12).reshape(3, 4).T.reshape(4, 3)
    indices = np.stack([per_sample, per_sample + 12])
    nodes = [helper.make_node("Reshape", ["x", "flat"], ["f"], name="flat"),
             helper.make_node("Gather", ["f", "idx"], ["y"], name="as_strided", axis=0)]
    inits = {"flat": np.array([-1], np.int64), "idx": indices.astype(np.int64)}
    check_fixed_batch(make_model(nodes, (3, 4), inits=inits, batch=2), tmp_path)


def test_fixed_batch_mixing_samples_error(tmp_path):
    nodes = [helper.make_node("Reshape", ["x", "target"], ["y"], name="mix")]
    model = make_model(nodes, (3, 4), inits={"target": np.array([3, 8], np.int64)}, batch=2)
    with pytest.raises(UnsupportedOperatorError,
                       match=r"Node 'mix' \(Reshape, opset 17\).*moves the samples"):
        import_onnx(_save(model, tmp_path))


def test_fixed_batch_of_one(tmp_path):
    nodes = [helper.make_node("Reshape", ["x", "target"], ["r"], name="view"),
             helper.make_node("Unsqueeze", ["r", "axes"], ["y"], name="unsqueeze")]
    inits = {"target": np.array([1, 12], np.int64), "axes": np.array([1], np.int64)}
    check_fixed_batch(make_model(nodes, (3, 4), inits=inits, batch=1), tmp_path, batch=1)


# ---------------------------------------------------------------------------------------------
# External data and names
# ---------------------------------------------------------------------------------------------
def _conv_model():
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="stem/conv",
                              kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="stem/relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1)]
    inits = {"w": const(8, 3, 3, 3), "b": const(8), "fc_w": const(4, 8), "fc_b": const(4)}
    return make_model(nodes, (3, 6, 6), inits=inits, opset=18)


def test_external_data_ok(tmp_path):
    model = _conv_model()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="m.onnx.data",
              size_threshold=0)
    assert (tmp_path / "m.onnx.data").stat().st_size > 0
    imported = import_onnx(path)
    x = np.random.RandomState(0).rand(2, 3, 6, 6).astype(np.float32)
    assert_close(mx_run(imported, x)[0], ort_run(_conv_model(), x)[0], "external data")


def test_external_data_missing_error(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_conv_model(), str(path), save_as_external_data=True, location="m.onnx.data",
              size_threshold=0)
    (tmp_path / "m.onnx.data").unlink()
    with pytest.raises(FileNotFoundError, match=r"external data file .*m\.onnx\.data, which "
                                                r"does not exist"):
        import_onnx(path)


def test_external_data_outside_the_folder_error(tmp_path):
    model = _conv_model()
    (tmp_path / "sub").mkdir()
    onnx.save(model, str(tmp_path / "m.onnx"), save_as_external_data=True,
              location="m.onnx.data", size_threshold=0)
    moved = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False)
    for tensor in moved.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../m.onnx.data"
    onnx.save(moved, str(tmp_path / "sub" / "m.onnx"))
    with pytest.raises(ValueError, match=r"outside its own folder"):
        import_onnx(tmp_path / "sub" / "m.onnx")


def test_operators_are_named_after_their_nodes(tmp_path):
    imported = check(_conv_model(), tmp_path)
    graph = imported["symbol"].tojson()
    for name in ("stem/conv", "stem/relu", "pool", "flatten", "fc"):
        assert f'"name": "{name}"' in graph
    assert imported["symbol"].name == "fc"


def test_linear_layer_becomes_one_fully_connected(tmp_path):
    """MatMul + Add (a linear layer on 3-D input as PyTorch writes it): one operator."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="fc/MatMul"),
             helper.make_node("Add", ["m", "b"], ["y"], name="fc/Add")]
    imported = check(make_model(nodes, (5, 4), inits={"w": const(4, 6), "b": const(6)}),
                     tmp_path)
    graph = imported["symbol"].tojson()
    assert graph.count('"op": "FullyConnected"') == 1 and '"no_bias": "True"' not in graph
    assert sorted(imported["arg_params"]) == ["fc/Add.bias", "fc/Add.weight"]


def test_linear_output_read_twice_keeps_the_add(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
             helper.make_node("Add", ["m", "b"], ["a"], name="add"),
             helper.make_node("Mul", ["m", "a"], ["y"], name="mul")]
    check(make_model(nodes, (5, 4), inits={"w": const(4, 6), "b": const(6)}), tmp_path)


# ---------------------------------------------------------------------------------------------
# Decompositions fused at import (repurpose/source/_onnx_fuse.py)
# ---------------------------------------------------------------------------------------------
def _gelu_nodes(order, half=0.5, root=float(np.sqrt(2.0))):
    """nn.GELU as the TorchScript exporter writes it (before opset 20)."""
    nodes = [helper.make_node("Div", ["x", "root"], ["d"], name="act/Div"),
             helper.make_node("Erf", ["d"], ["e"], name="act/Erf"),
             helper.make_node("Add", ["e", "one"], ["a"], name="act/Add")]
    if order == "x_first":
        nodes += [helper.make_node("Mul", ["x", "a"], ["m"], name="act/Mul"),
                  helper.make_node("Mul", ["m", "half"], ["y"], name="act/Mul_1")]
    else:
        nodes += [helper.make_node("Mul", ["x", "half"], ["h"], name="act/Mul"),
                  helper.make_node("Mul", ["h", "a"], ["y"], name="act/Mul_1")]
    inits = {"root": np.float32(root), "one": np.float32(1.0), "half": np.float32(half)}
    return nodes, inits


@pytest.mark.parametrize("order", ["x_first", "half_first"])
def test_gelu_decomposition_is_one_operator(tmp_path, order):
    nodes, inits = _gelu_nodes(order)
    imported = check(make_model(nodes, (3, 4), inits=inits, opset=13), tmp_path)
    graph = imported["symbol"].tojson()
    assert '"act_type": "gelu"' in graph and '"op": "erf"' not in graph
    assert imported["symbol"].name == "act/Gelu"


def test_gelu_lookalike_is_not_fused(tmp_path):
    nodes, inits = _gelu_nodes("x_first", half=0.6)
    imported = check(make_model(nodes, (3, 4), inits=inits, opset=13), tmp_path)
    assert '"op": "erf"' in imported["symbol"].tojson()


def _layer_norm_nodes(axes=(-1,), affine=True):
    """nn.LayerNorm as the TorchScript exporter writes it (before opset 17)."""
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], name="ln/ReduceMean", axes=list(axes)),
             helper.make_node("Sub", ["x", "m"], ["c"], name="ln/Sub"),
             helper.make_node("Pow", ["c", "two"], ["p"], name="ln/Pow"),
             helper.make_node("ReduceMean", ["p"], ["v"], name="ln/ReduceMean_1",
                              axes=list(axes)),
             helper.make_node("Add", ["v", "eps"], ["ve"], name="ln/Add"),
             helper.make_node("Sqrt", ["ve"], ["s"], name="ln/Sqrt"),
             helper.make_node("Div", ["c", "s"], ["n"], name="ln/Div")]
    inits = {"two": np.float32(2.0), "eps": np.float32(1e-6)}
    if affine:
        width = (4, 5)[-len(axes):]
        nodes += [helper.make_node("Mul", ["n", "gamma"], ["g"], name="ln/Mul"),
                  helper.make_node("Add", ["g", "beta"], ["y"], name="ln/Add_1")]
        inits.update(gamma=const(*width), beta=const(*width, seed=2))
    else:
        nodes[-1].output[0] = "y"
    return nodes, inits


@pytest.mark.parametrize("axes", [(-1,), (-2, -1)])
def test_layer_norm_decomposition_is_one_operator(tmp_path, axes):
    nodes, inits = _layer_norm_nodes(axes)
    imported = check(make_model(nodes, (3, 4, 5), inits=inits, opset=13), tmp_path)
    graph = imported["symbol"].tojson()
    assert graph.count('"op": "LayerNorm"') == 1 and '"op": "sqrt"' not in graph
    assert imported["symbol"].name == "ln/LayerNormalization"


def test_layer_norm_over_a_middle_axis_is_not_fused(tmp_path):
    nodes, inits = _layer_norm_nodes(axes=(1,), affine=False)
    imported = check(make_model(nodes, (3, 4, 5), inits=inits, opset=13), tmp_path)
    assert '"op": "LayerNorm"' not in imported["symbol"].tojson()


@pytest.mark.parametrize("coordinates, scales", [
    ("align_corners", [1, 1, 2, 2]), ("align_corners", [1, 1, 0.5, 0.5]),
    ("half_pixel", [1, 1, 2, 2]), ("pytorch_half_pixel", [1, 1, 2, 3]),
])
def test_resize_bilinear(tmp_path, coordinates, scales):
    check(one("Resize", {"mode": "linear", "coordinate_transformation_mode": coordinates},
              (None, np.array(scales, np.float32)), sample_shape=(3, 6, 8)), tmp_path)


def test_resize_bilinear_half_pixel_downsampling_error(tmp_path):
    model = one("Resize", {"mode": "linear"}, (None, np.array([1, 1, 0.5, 0.5], np.float32)),
                sample_shape=(3, 6, 8))
    with pytest.raises(UnsupportedOperatorError, match=r"as half_pixel upsampling"):
        check(model, tmp_path)


@pytest.mark.parametrize("coordinates, rounding, factor", [
    ("asymmetric", "floor", 3), ("half_pixel", "round_prefer_ceil", 2),
    ("pytorch_half_pixel", "round_prefer_floor", 3)])
def test_resize_nearest_integer_factor(tmp_path, coordinates, rounding, factor):
    check(one("Resize", {"mode": "nearest", "coordinate_transformation_mode": coordinates,
                         "nearest_mode": rounding},
              (None, np.array([1, 1, factor, factor], np.float32))), tmp_path)


def test_resize_nearest_that_does_not_repeat_error(tmp_path):
    model = one("Resize", {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                           "nearest_mode": "round_prefer_ceil"},
                (None, np.array([1, 1, 2, 2], np.float32)))
    with pytest.raises(UnsupportedOperatorError, match=r"does not repeat pixels"):
        check(model, tmp_path)


def test_einsum_with_ellipsis(tmp_path):
    nodes = [helper.make_node("Sigmoid", ["x"], ["b"], name="b"),
             helper.make_node("Einsum", ["x", "b"], ["y"], name="einsum",
                              equation="...nd,...md->...nm")]
    check(make_model(nodes, (2, 3, 4)), tmp_path)
