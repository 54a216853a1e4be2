"""ONNX files as source models: layer names, what ``layers`` lists, extraction, freezing."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from repurpose import SourceModel  # noqa: E402
from repurpose.features import extract_features  # noqa: E402


def _const(*shape, seed=0):
    return np.random.RandomState(seed).randn(*shape).astype(np.float32)


def _save(nodes, inits, sample_shape, path, outputs=("y",)):
    graph = helper.make_graph(
        nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                   ["N"] + list(sample_shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _sequence_first_block(path):
    """An attention-like block that works on (tokens, batch, dim) as torchvision's MHA does,
    with an Identity on a weight as the TorchScript exporter writes shared weights."""
    nodes = [
        helper.make_node("Identity", ["w"], ["w_alias"], name="weight_alias"),
        helper.make_node("MatMul", ["x", "w_alias"], ["h"], name="proj"),
        helper.make_node("Transpose", ["h"], ["t"], name="seq_first", perm=[1, 0, 2]),
        helper.make_node("Relu", ["t"], ["r"], name="inner_relu"),
        helper.make_node("Transpose", ["r"], ["b"], name="batch_first", perm=[1, 0, 2]),
        helper.make_node("Add", ["b", "h"], ["s"], name="residual"),
        helper.make_node("ReduceMean", ["s"], ["y"], name="pool", axes=[1], keepdims=0),
    ]
    return _save(nodes, {"w": _const(4, 4)}, (5, 4), path)


def test_layers_list_only_per_sample_nodes(tmp_path):
    model = SourceModel.from_onnx(_sequence_first_block(tmp_path / "m.onnx"))
    assert model.layer_names == ["proj", "batch_first", "residual", "pool"]
    assert [layer.name for layer in model.layers] == model.layer_names
    assert model.layers[0].output_shape == (1, 5, 4)
    assert model.layers[0].n_params == 16
    text = model.describe()
    assert "seq_first" not in text and "weight_alias" not in text and "proj" in text


@pytest.mark.parametrize("layer", ["proj", "batch_first", "residual", "pool"])
def test_every_listed_layer_extracts_per_sample(tmp_path, layer):
    path = _sequence_first_block(tmp_path / "m.onnx")
    model = SourceModel.from_onnx(path)
    x = np.random.RandomState(0).randn(3, 5, 4).astype(np.float32)
    together = extract_features(model, x, [layer], batch_size=3, progress=False)[layer]
    alone = np.concatenate([extract_features(model, x[i:i + 1], [layer], batch_size=1,
                                             progress=False)[layer] for i in range(3)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
    # ... and equal to what onnxruntime computes for that node's tensor.
    tensor = {"proj": "h", "batch_first": "b", "residual": "s", "pool": "y"}[layer]
    reference = onnx.load(str(path))
    reference.graph.output.append(helper.make_empty_tensor_value_info(tensor))
    session = ort.InferenceSession(reference.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    expected = session.run([tensor], {"x": x})[0].reshape(3, -1)
    np.testing.assert_allclose(together, expected, rtol=1e-4, atol=1e-5)


def test_hidden_nodes_cannot_be_extracted(tmp_path):
    model = SourceModel.from_onnx(_sequence_first_block(tmp_path / "m.onnx"))
    with pytest.raises(ValueError, match=r"Layer 'seq_first' does not hold one row per sample"
                                         r".*e\.g\. the next one: 'batch_first'"):
        extract_features(model, np.zeros((2, 5, 4), np.float32), ["seq_first"], progress=False)


def test_freeze_up_to_includes_hidden_nodes(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="first"),
             helper.make_node("Transpose", ["h"], ["t"], name="seq_first", perm=[1, 0, 2]),
             helper.make_node("MatMul", ["t", "w2"], ["m"], name="hidden_proj"),
             helper.make_node("Transpose", ["m"], ["b"], name="batch_first", perm=[1, 0, 2]),
             helper.make_node("MatMul", ["b", "w3"], ["y"], name="last")]
    inits = {"w1": _const(4, 4), "w2": _const(4, 4, seed=1), "w3": _const(4, 2, seed=2)}
    model = SourceModel.from_onnx(_save(nodes, inits, (5, 4), tmp_path / "m.onnx"))
    assert "hidden_proj" not in model.layer_names
    frozen = model.freeze(up_to="batch_first")
    assert frozen.frozen_params == {"first.weight", "hidden_proj.weight"}
    assert "last.weight" in model.arg_params


def test_conv_layers_pool_like_native_models(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="stem/conv",
                              kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="stem/relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["y"], name="flatten")]
    path = _save(nodes, {"w": _const(6, 3, 3, 3), "b": _const(6, seed=1)}, (3, 8, 8),
                 tmp_path / "m.onnx")
    model = SourceModel.from_onnx(path)
    x = np.random.RandomState(0).rand(4, 3, 8, 8).astype(np.float32)
    features = extract_features(model, x, ["stem/relu", "flatten"], pool="avg", progress=False)
    assert features["stem/relu"].shape == (4, 6)
    np.testing.assert_allclose(features["stem/relu"], features["flatten"], rtol=1e-5)


def test_input_shape_for_dynamic_spatial_axes(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3]),
             helper.make_node("GlobalMaxPool", ["c"], ["y"], name="pool")]
    graph = helper.make_graph(
        nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(_const(2, 3, 3, 3), "w")])
    path = tmp_path / "dynamic.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ValueError, match=r"Pass input_shape="):
        SourceModel.from_onnx(path)
    model = SourceModel.from_onnx(path, input_shape=(3, 10, 12))
    assert model.input_shape == (3, 10, 12)
    assert model.metadata["opset"] == 17 and model.metadata["format"] == "onnx"


def test_graph_written_for_one_batch_size_hides_nothing():
    """A graph that only runs one batch size (a parameter of that many rows added to the
    data) cannot be told apart at batch sizes 1 and 2: no layer is hidden."""
    import mxnet as mx

    from repurpose.source._graph import per_sample_layers

    fc = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=3, name="fc")
    out = mx.sym.elemwise_add(fc, mx.sym.var("per_row"), name="add")
    shapes = {"fc_weight": (3, 2), "fc_bias": (3,), "per_row": (4, 3)}
    assert per_sample_layers(out, "data", (2,), shapes) == {"fc", "add"}
