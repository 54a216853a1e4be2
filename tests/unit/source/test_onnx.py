"""Tests of ONNX import (repurpose.source._onnx.import_onnx).

Models are built here with ``onnx.helper`` and compared with a numpy implementation of the
same graph; a file written by PyTorch's exporter (tests/data/make_torch_onnx.py) is compared
with the logits PyTorch computed; an MXNet export is imported back.
"""
import hashlib
import pathlib
import sys

import mxnet as mx
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from repurpose.exceptions import ModelFileError, UnsupportedOperatorError  # noqa: E402
from repurpose.source._onnx import SUPPORTED_OPSETS, import_onnx  # noqa: E402

DATA = pathlib.Path(__file__).resolve().parents[2] / "data"
TORCH_ONNX = DATA / "torch_tiny_resnet.onnx"
TORCH_EXPECTED = DATA / "torch_tiny_resnet_expected.npz"
EPS = 1e-5
BN_AUX = {"bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"}


# ---------------------------------------------------------------------------------------------
# A tiny residual CNN as an ONNX graph, and the same network in numpy
# ---------------------------------------------------------------------------------------------
def make_resnet_params(seed=0):
    """Weights of the tiny residual CNN: 3 -> 4 channels, 5 classes."""
    rng = np.random.RandomState(seed)

    def normal(*shape, scale=0.3):
        return (rng.randn(*shape) * scale).astype(np.float32)

    params = {
        "conv1_w": normal(4, 3, 3, 3),
        "conv1_b": normal(4, scale=0.1),
        "conv2_w": normal(4, 4, 3, 3),
        "fc_w": normal(5, 4),
        "fc_b": normal(5, scale=0.1),
    }
    for bn in ("bn1", "bn2"):
        params[f"{bn}_gamma"] = rng.uniform(0.5, 1.5, 4).astype(np.float32)
        params[f"{bn}_beta"] = rng.uniform(-0.2, 0.2, 4).astype(np.float32)
        params[f"{bn}_mean"] = rng.uniform(-0.5, 0.5, 4).astype(np.float32)
        params[f"{bn}_var"] = rng.uniform(0.5, 2.0, 4).astype(np.float32)
    return params


def make_resnet_model(
    params, layout="pytorch", opset=13, input_dims=("N", 3, 8, 8), extra_output=False
):
    """Conv-BN-Relu-Conv-BN + residual Add, Relu, GlobalAveragePool, Flatten, Gemm.

    ``layout='pytorch'`` lists only the data among the graph inputs (as PyTorch writes
    files); ``layout='classic'`` also lists every initializer (ONNX IR < 4).
    """
    bn_attrs = {"epsilon": EPS, "momentum": 0.9}
    if opset >= 14:
        bn_attrs["training_mode"] = 0  # as written from opset 14 on

    def bn(name, x, y):
        inputs = [x] + [f"{name}_{p}" for p in ("gamma", "beta", "mean", "var")]
        return helper.make_node("BatchNormalization", inputs, [y], name=name, **bn_attrs)

    nodes = [
        helper.make_node(
            "Conv", ["x", "conv1_w", "conv1_b"], ["c1"], name="conv1",
            kernel_shape=[3, 3], pads=[1, 1, 1, 1],
        ),
        bn("bn1", "c1", "b1"),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node(
            "Conv", ["r1", "conv2_w"], ["c2"], name="conv2", kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
        ),
        bn("bn2", "c2", "b2"),
        helper.make_node("Add", ["b2", "r1"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    initializers = [numpy_helper.from_array(value, name) for name, value in params.items()]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_dims))]
    if layout == "classic":
        inputs += [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, value.shape)
            for name, value in params.items()
        ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])]
    if extra_output:
        outputs.append(helper.make_tensor_value_info("r1", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "tiny_resnet", inputs, outputs, initializer=initializers)
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="onnx.helper"
    )


def conv2d(x, w, b=None, pad=1):
    """Stride-1 2-D convolution (cross-correlation, as in ONNX) with zero padding."""
    n, _, h, wd = x.shape
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    out = np.zeros((n, w.shape[0], ho, wo))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nchw,mc->nmhw", xp[:, :, i : i + ho, j : j + wo], w[:, :, i, j])
    if b is not None:
        out += b[None, :, None, None]
    return out


def batch_norm(x, p, name):
    """Inference-mode batch norm with the running statistics."""

    def ch(a):
        return a[None, :, None, None]

    scale = ch(p[f"{name}_gamma"]) / np.sqrt(ch(p[f"{name}_var"]) + EPS)
    return (x - ch(p[f"{name}_mean"])) * scale + ch(p[f"{name}_beta"])


def resnet_reference(p, x):
    """The tiny residual CNN in float64 numpy; returns (logits, r1)."""
    p = {k: v.astype(np.float64) for k, v in p.items()}
    c1 = conv2d(x.astype(np.float64), p["conv1_w"], p["conv1_b"])
    r1 = np.maximum(batch_norm(c1, p, "bn1"), 0)
    r2 = np.maximum(batch_norm(conv2d(r1, p["conv2_w"]), p, "bn2") + r1, 0)
    pooled = r2.mean(axis=(2, 3))
    return pooled @ p["fc_w"].T + p["fc_b"], r1


def save(model, path):
    onnx.save(model, str(path))
    return path


def run_bound(imported, x):
    """Forward ``x`` through the imported symbol with Symbol.bind (inference mode)."""
    args = dict(imported["arg_params"])
    args[imported["input_name"]] = mx.nd.array(x)
    executor = imported["symbol"].bind(
        mx.cpu(), args=args, aux_states=dict(imported["aux_params"]), grad_req="null"
    )
    return [out.asnumpy() for out in executor.forward(is_train=False)]


def run_symbol_block(imported, x):
    """Forward ``x`` through a gluon SymbolBlock built from the import (as SourceModel would)."""
    data = mx.sym.var(imported["input_name"], dtype="float32")
    net = mx.gluon.SymbolBlock(imported["symbol"], data)
    net.collect_params().load_dict(
        {**imported["arg_params"], **imported["aux_params"]}, ctx=mx.cpu()
    )
    return net(mx.nd.array(x)).asnumpy()


@pytest.fixture
def resnet_params():
    return make_resnet_params()


@pytest.fixture
def x_batch():
    return np.random.RandomState(1).rand(2, 3, 8, 8).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Numbers: imported graphs compute what the ONNX graph means
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["pytorch", "classic"])
@pytest.mark.parametrize("opset", [7, 9, 11, 13, 14, 15, 17, 19])
def test_import_matches_numpy_reference(tmp_path, resnet_params, x_batch, layout, opset):
    path = save(make_resnet_model(resnet_params, layout, opset), tmp_path / "m.onnx")
    imported = import_onnx(path)
    (logits,) = run_bound(imported, x_batch)
    expected, _ = resnet_reference(resnet_params, x_batch)
    assert logits.shape == (2, 5)
    assert np.abs(logits - expected).max() < 1e-4
    assert imported["opset"] == opset


def test_import_returns_documented_keys(tmp_path, resnet_params):
    imported = import_onnx(save(make_resnet_model(resnet_params), tmp_path / "m.onnx"))
    assert set(imported) == {
        "symbol", "arg_params", "aux_params", "input_name", "input_shape", "opset", "producer"
    }
    assert isinstance(imported["symbol"], mx.sym.Symbol)
    assert imported["input_name"] == "x"
    assert imported["producer"] == "onnx.helper"
    assert all(isinstance(v, mx.nd.NDArray) for v in imported["arg_params"].values())


@pytest.mark.parametrize("layout", ["pytorch", "classic"])
def test_batchnorm_running_stats_are_aux_params(tmp_path, resnet_params, layout):
    """Each BatchNormalization node gets its own parameters, named after the node."""
    imported = import_onnx(save(make_resnet_model(resnet_params, layout), tmp_path / "m.onnx"))
    assert set(imported["aux_params"]) == BN_AUX
    assert set(imported["aux_params"]).isdisjoint(imported["arg_params"])
    assert set(imported["arg_params"]) == {
        "conv1_w", "conv1_b", "conv2_w", "bn1.gamma", "bn1.beta", "bn2.gamma", "bn2.beta",
        "fc.weight", "fc.bias"}
    for bn in ("bn1", "bn2"):
        for suffix, key in (("running_mean", "mean"), ("running_var", "var"),
                            ("gamma", "gamma"), ("beta", "beta")):
            params = imported["aux_params"] if suffix.startswith("running") else \
                imported["arg_params"]
            np.testing.assert_array_equal(params[f"{bn}.{suffix}"].asnumpy(),
                                          resnet_params[f"{bn}_{key}"])
    assert imported["symbol"].list_auxiliary_states() == [
        "bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"]


def test_import_works_in_symbol_block(tmp_path, resnet_params, x_batch):
    imported = import_onnx(save(make_resnet_model(resnet_params), tmp_path / "m.onnx"))
    expected, _ = resnet_reference(resnet_params, x_batch)
    assert np.abs(run_symbol_block(imported, x_batch) - expected).max() < 1e-4


@pytest.mark.parametrize(
    "input_dims, sample_shape",
    [
        (("N", 3, 8, 8), (3, 8, 8)),  # dynamic batch axis only
        ((2, 3, 8, 8), (3, 8, 8)),
    ],
)
def test_input_shape_is_per_sample(tmp_path, resnet_params, input_dims, sample_shape):
    model = make_resnet_model(resnet_params, input_dims=input_dims)
    assert import_onnx(save(model, tmp_path / "m.onnx"))["input_shape"] == sample_shape


def _without_shape(model):
    model.graph.input[0].type.tensor_type.ClearField("shape")
    return model


@pytest.mark.parametrize("dims", [("N", 3, "H", "W"), (2, 3, 0, 8), None],
                         ids=["dynamic", "zero", "no-shape"])
def test_dynamic_sample_shape_ok(tmp_path, resnet_params, x_batch, dims):
    model = make_resnet_model(resnet_params, input_dims=dims or ("N", 3, 8, 8))
    model = model if dims else _without_shape(model)
    imported = import_onnx(save(model, tmp_path / "m.onnx"), input_shape=(3, 8, 8))
    assert imported["input_shape"] == (3, 8, 8)
    (logits,) = run_bound(imported, x_batch)
    assert np.abs(logits - resnet_reference(resnet_params, x_batch)[0]).max() < 1e-4


@pytest.mark.parametrize("dims", [("N", 3, "H", "W"), (2, 3, 0, 8), None],
                         ids=["dynamic", "zero", "no-shape"])
def test_dynamic_sample_shape_error(tmp_path, resnet_params, dims):
    model = make_resnet_model(resnet_params, input_dims=dims or ("N", 3, 8, 8))
    model = model if dims else _without_shape(model)
    with pytest.raises(ModelFileError, match=r"does not fix the shape of a sample.*Pass "
                                             r"input_shape=\(channels, height, width\)"):
        import_onnx(save(model, tmp_path / "m.onnx"))


def test_input_shape_of_other_rank_error(tmp_path, resnet_params):
    model = make_resnet_model(resnet_params)
    with pytest.raises(ModelFileError, match=r"input_shape \(8, 8\) has 2 axes.*\(3, 8, 8\)"):
        import_onnx(save(model, tmp_path / "m.onnx"), input_shape=(8, 8))


def test_import_leaves_the_file_unchanged(tmp_path, resnet_params):
    path = save(make_resnet_model(resnet_params, "pytorch"), tmp_path / "m.onnx")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    import_onnx(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert [i.name for i in onnx.load(str(path)).graph.input] == ["x"]


def test_import_accepts_pathlike_and_str(tmp_path, resnet_params):
    path = save(make_resnet_model(resnet_params), tmp_path / "m.onnx")
    assert import_onnx(str(path))["input_name"] == import_onnx(path)["input_name"]


def test_import_is_deterministic(tmp_path, resnet_params):
    path = save(make_resnet_model(resnet_params), tmp_path / "m.onnx")
    mx.sym.Convolution(mx.sym.var("unrelated"), kernel=(1, 1), num_filter=1)  # bumps counters
    first = import_onnx(path)["symbol"].tojson()
    assert import_onnx(path)["symbol"].tojson() == first
    assert '"name": "conv1"' in first  # named after the ONNX node, whatever MXNet counted


def test_import_prints_nothing(tmp_path, resnet_params, capsys):
    import_onnx(save(make_resnet_model(resnet_params), tmp_path / "m.onnx"))
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_several_outputs_give_a_group(tmp_path, resnet_params, x_batch):
    model = make_resnet_model(resnet_params, extra_output=True)
    imported = import_onnx(save(model, tmp_path / "m.onnx"))
    assert len(imported["symbol"].list_outputs()) == 2
    logits, r1 = run_bound(imported, x_batch)
    expected_logits, expected_r1 = resnet_reference(resnet_params, x_batch)
    assert np.abs(logits - expected_logits).max() < 1e-4
    assert np.abs(r1 - expected_r1).max() < 1e-4


@pytest.mark.parametrize("opset", [13, 19])
def test_constant_nodes_become_initializers(tmp_path, opset):
    """A Reshape whose shape comes from a Constant node (the importer alone cannot)."""
    w = np.arange(48 * 2, dtype=np.float32).reshape(48, 2) / 100
    nodes = [
        helper.make_node(
            "Constant", [], ["shape"], name="shape_const",
            value=numpy_helper.from_array(np.array([0, -1], dtype=np.int64)),
        ),
        helper.make_node("Reshape", ["x", "shape"], ["flat"], name="reshape"),
        helper.make_node("MatMul", ["flat", "w"], ["y"], name="matmul"),
    ]
    graph = helper.make_graph(
        nodes, "reshape_const",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    imported = import_onnx(save(model, tmp_path / "m.onnx"))
    x = np.random.RandomState(0).rand(2, 3, 4, 4).astype(np.float32)
    (y,) = run_bound(imported, x)
    assert np.abs(y - x.reshape(2, -1) @ w).max() < 1e-4
    assert "shape" not in imported["arg_params"]


def test_batchnorm_training_mode_zero_is_dropped_in_memory_only(tmp_path, resnet_params):
    path = save(make_resnet_model(resnet_params, opset=15), tmp_path / "m.onnx")
    import_onnx(path)
    bn = [n for n in onnx.load(str(path)).graph.node if n.op_type == "BatchNormalization"]
    assert all("training_mode" in [a.name for a in n.attribute] for n in bn)


# ---------------------------------------------------------------------------------------------
# Real files: PyTorch's exporter and MXNet's exporter
# ---------------------------------------------------------------------------------------------
def test_torch_exported_file_is_small_and_in_pytorch_layout():
    assert TORCH_ONNX.stat().st_size < 200_000 and TORCH_EXPECTED.stat().st_size < 200_000
    model = onnx.load(str(TORCH_ONNX))
    assert [i.name for i in model.graph.input] == ["input"]  # initializers not listed
    assert "BatchNormalization" in {n.op_type for n in model.graph.node}


def test_torch_exported_file_matches_pytorch_logits():
    imported = import_onnx(TORCH_ONNX)
    expected = np.load(TORCH_EXPECTED, allow_pickle=False)
    assert imported["input_name"] == "input"
    assert imported["input_shape"] == tuple(expected["input"].shape[1:])
    assert imported["opset"] == 13
    assert imported["producer"].startswith("pytorch")
    assert {n for n in imported["aux_params"] if n.endswith(("running_mean", "running_var"))}
    logits = run_symbol_block(imported, expected["input"])
    assert np.abs(logits - expected["logits"]).max() < 1e-4
    (bound,) = run_bound(imported, expected["input"])
    assert np.abs(bound - expected["logits"]).max() < 1e-4


def test_mxnet_exported_file_round_trips(tmp_path, tiny_checkpoint):
    prefix, epoch, net = tiny_checkpoint
    onnx_path = tmp_path / "tiny.onnx"
    mx.onnx.export_model(
        f"{prefix}-symbol.json", f"{prefix}-{epoch:04d}.params", in_shapes=[(2, 1, 8, 8)],
        in_types=[np.float32], onnx_file_path=str(onnx_path),
    )
    imported = import_onnx(onnx_path)
    assert imported["input_name"] == "data"
    assert imported["input_shape"] == (1, 8, 8)
    assert sorted(name.rpartition(".")[2] for name in imported["aux_params"]) == [
        "running_mean", "running_var"]
    x = np.random.RandomState(0).rand(2, 1, 8, 8).astype(np.float32)
    expected = net(mx.nd.array(x)).asnumpy()
    (bound,) = run_bound(imported, x)
    assert np.abs(bound - expected).max() < 1e-4
    assert np.abs(run_symbol_block(imported, x) - expected).max() < 1e-4


# ---------------------------------------------------------------------------------------------
# Bad input: _ok / _error pairs
# ---------------------------------------------------------------------------------------------
def test_missing_file_ok(tmp_path, resnet_params):
    import_onnx(save(make_resnet_model(resnet_params), tmp_path / "m.onnx"))


def test_missing_file_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ONNX file not found: .*nope\.onnx"):
        import_onnx(tmp_path / "nope.onnx")


def test_directory_error(tmp_path):
    with pytest.raises(ModelFileError, match="is a directory"):
        import_onnx(tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff\xfe garbage, not protobuf \x07\x08" * 20,
        b"this is a text file, not an ONNX model\n",
        b"",
    ],
    ids=["binary", "text", "empty"],
)
def test_not_onnx_file_error(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=r"bad\.onnx.*(not an ONNX file|does not hold)"):
        import_onnx(path)


def test_truncated_file_error(tmp_path):
    path = tmp_path / "truncated.onnx"
    path.write_bytes(TORCH_ONNX.read_bytes()[:3000])
    with pytest.raises(ModelFileError, match=r"truncated\.onnx.*truncated"):
        import_onnx(path)


def test_onnx_not_installed_ok(tmp_path, resnet_params):
    assert import_onnx(save(make_resnet_model(resnet_params), tmp_path / "m.onnx"))


def test_onnx_not_installed_error(tmp_path, resnet_params, monkeypatch):
    path = save(make_resnet_model(resnet_params), tmp_path / "m.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ImportError, match=r"pip install -c constraints\.txt '\.\[onnx\]'"):
        import_onnx(path)


def _replace_node(model, index, node):
    model.graph.node[index].CopyFrom(node)
    return model


@pytest.mark.parametrize("op_type", ["Relu", "Sigmoid", "Tanh"])
def test_unsupported_operator_ok(tmp_path, resnet_params, op_type):
    model = _replace_node(
        make_resnet_model(resnet_params), 2, helper.make_node(op_type, ["b1"], ["r1"], name="act")
    )
    import_onnx(save(model, tmp_path / "m.onnx"))


def test_unsupported_operator_error(tmp_path, resnet_params):
    model = make_resnet_model(resnet_params)
    _replace_node(model, 2, helper.make_node("NonExistentOp", ["b1"], ["r1"], name="weird"))
    _replace_node(model, 6, helper.make_node("LSTM", ["s"], ["r2"], name="recurrent"))
    with pytest.raises(UnsupportedOperatorError) as info:
        import_onnx(save(model, tmp_path / "m.onnx"))
    message = str(info.value)
    assert "(opset 13) has 2 node(s) that cannot be converted" in message
    assert "NonExistentOp (node 'weird')" in message
    assert "LSTM (node 'recurrent')" in message
    assert "replace the operators listed in the source framework" in message


def test_unsupported_operator_error_is_value_error(tmp_path, resnet_params):
    model = _replace_node(
        make_resnet_model(resnet_params), 2, helper.make_node("LSTM", ["b1"], ["r1"], name="e")
    )
    with pytest.raises(ValueError, match="LSTM"):
        import_onnx(save(model, tmp_path / "m.onnx"))


def test_custom_domain_operator_error(tmp_path, resnet_params):
    model = make_resnet_model(resnet_params)
    _replace_node(model, 2, helper.make_node("Relu", ["b1"], ["r1"], name="r", domain="com.x"))
    model.opset_import.append(helper.make_opsetid("com.x", 1))
    with pytest.raises(UnsupportedOperatorError, match=r"com\.x::Relu \(node 'r', custom"):
        import_onnx(save(model, tmp_path / "m.onnx"))


def _unsqueeze_model(opset):
    """Unsqueeze with axes as an attribute (opset < 13) or an input (opset 13)."""
    if opset < 13:
        node = helper.make_node("Unsqueeze", ["x"], ["y"], name="unsq", axes=[1])
        initializers = []
    else:
        node = helper.make_node("Unsqueeze", ["x", "axes"], ["y"], name="unsq")
        initializers = [numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")]
    graph = helper.make_graph(
        [node], "unsq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, 3])],
        initializer=initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("opset", [12, 13])
def test_axes_as_attribute_or_input_ok(tmp_path, opset):
    """Unsqueeze's axes: an attribute up to opset 12, an input from opset 13."""
    imported = import_onnx(save(_unsqueeze_model(opset), tmp_path / "m.onnx"))
    (y,) = run_bound(imported, np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(y, np.arange(6, dtype=np.float32).reshape(2, 1, 3))


def test_axes_computed_from_data_error(tmp_path):
    """Axes that depend on the data values cannot be fixed when the graph is built."""
    model = _unsqueeze_model(13)
    model.graph.node.insert(0, helper.make_node("Cast", ["x"], ["axes_f"], name="to_int", to=7))
    model.graph.node.insert(1, helper.make_node("ReduceMax", ["axes_f"], ["axes_m"], name="peak",
                                                keepdims=0, axes=[1]))
    model.graph.node[2].input[1] = "axes_m"
    del model.graph.initializer[:]
    with pytest.raises(UnsupportedOperatorError,
                       match=r"Node 'unsq' \(Unsqueeze, opset 13\) of .* cannot be converted: its "
                             r"axes \(input 1\) is computed from the data"):
        import_onnx(save(model, tmp_path / "m.onnx"))


def test_newer_operator_version_matches_numpy(tmp_path):
    """ReduceMean version 18 takes its axes as an input (MXNet's importer reads an attribute)."""
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean", keepdims=0)],
        "reduce",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(np.array([2], dtype=np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = np.random.RandomState(0).rand(2, 3, 4).astype(np.float32)
    (y,) = run_bound(import_onnx(save(model, tmp_path / "m.onnx")), x)
    np.testing.assert_allclose(y, x.mean(axis=2), rtol=1e-6)


def test_batchnorm_training_mode_error(tmp_path, resnet_params):
    model = make_resnet_model(resnet_params, opset=14)
    bn = model.graph.node[1]
    for attribute in bn.attribute:
        if attribute.name == "training_mode":
            attribute.i = 1
    with pytest.raises(UnsupportedOperatorError,
                       match=r"Node 'bn1' \(BatchNormalization, opset 14\).*training_mode=1"):
        import_onnx(save(model, tmp_path / "m.onnx"))


@pytest.mark.parametrize("opset", list(SUPPORTED_OPSETS))
def test_opset_ok(tmp_path, resnet_params, opset):
    assert import_onnx(save(make_resnet_model(resnet_params, opset=opset), tmp_path / "m.onnx"))


@pytest.mark.parametrize("opset", [SUPPORTED_OPSETS[0] - 1, SUPPORTED_OPSETS[1] + 1])
def test_opset_error(tmp_path, resnet_params, opset):
    model = make_resnet_model(resnet_params, opset=13)
    model.opset_import[0].version = opset
    low, high = SUPPORTED_OPSETS
    expected = rf"opset {opset}, but repurpose imports opsets {low} to {high}"
    with pytest.raises(UnsupportedOperatorError, match=expected):
        import_onnx(save(model, tmp_path / "m.onnx"))


def test_missing_default_opset_error(tmp_path, resnet_params):
    model = make_resnet_model(resnet_params)
    model.opset_import[0].domain = "com.x"
    with pytest.raises(ModelFileError, match="no opset for the default ONNX domain"):
        import_onnx(save(model, tmp_path / "m.onnx"))


def test_multiple_inputs_ok(tmp_path, resnet_params):
    """Initializers listed as inputs (classic layout) do not count as data inputs."""
    model = make_resnet_model(resnet_params, layout="classic")
    assert import_onnx(save(model, tmp_path / "m.onnx"))["input_name"] == "x"


def test_multiple_inputs_error(tmp_path, resnet_params):
    model = make_resnet_model(resnet_params)
    model.graph.input.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 5]))
    with pytest.raises(ModelFileError, match=r"2 data inputs \('x', 'mask'\).*exactly one"):
        import_onnx(save(model, tmp_path / "m.onnx"))


def test_no_input_error(tmp_path, resnet_params):
    model = make_resnet_model(resnet_params)
    del model.graph.input[:]
    with pytest.raises(ModelFileError, match="has no data input"):
        import_onnx(save(model, tmp_path / "m.onnx"))


def test_conversion_failure_ok(tmp_path, resnet_params):
    import_onnx(save(make_resnet_model(resnet_params), tmp_path / "m.onnx"))


def test_conversion_failure_error_names_the_node(tmp_path, resnet_params):
    """A node MXNet cannot build: the error names node, operator and opset."""
    model = make_resnet_model(resnet_params)
    _replace_node(model, 7, helper.make_node("MaxPool", ["r2"], ["p"], name="dilated",
                                             kernel_shape=[2, 2], dilations=[2, 2]))
    with pytest.raises(UnsupportedOperatorError,
                       match=r"Node 'dilated' \(MaxPool, opset 13\) of .*m\.onnx cannot be "
                             r"converted: dilated pooling is not supported"):
        import_onnx(save(model, tmp_path / "m.onnx"))


def test_mxnet_failure_is_wrapped_with_the_node(tmp_path, resnet_params):
    """A failure inside MXNet's own translation table is wrapped with the node and opset."""
    model = make_resnet_model(resnet_params)
    # MXNet's LRN translation needs the 'size' attribute, which this node lacks.
    _replace_node(model, 6, helper.make_node("LRN", ["s"], ["r2"], name="norm"))
    with pytest.raises(ModelFileError,
                       match=r"Converting node 'norm' \(LRN, opset 13, inputs 's \(2, 4, 8, 8\)'"
                             r"\) of .*m\.onnx failed") as info:
        import_onnx(save(model, tmp_path / "m.onnx"))
    assert info.value.__cause__ is not None
