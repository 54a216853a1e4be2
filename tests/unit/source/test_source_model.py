import copy
import json
import os
import pickle

import mxnet as mx
import numpy as np
import pytest

from repurpose import SourceModel
from repurpose.exceptions import DataError, InvalidParameterError, ModelFileError, UnknownLayerError
from repurpose.features import extract_features

X = np.random.RandomState(0).rand(13, 1, 8, 8).astype(np.float32)


def test_from_checkpoint_matches_gluon_forward(tiny_checkpoint):
    prefix, epoch, net = tiny_checkpoint
    model = SourceModel.from_checkpoint(prefix, epoch, input_shape=(1, 8, 8))
    out = extract_features(model, X, [model.output_layers[0]], batch_size=5, progress=False)
    np.testing.assert_allclose(out[model.output_layers[0]], net(mx.nd.array(X)).asnumpy(),
                               atol=1e-4)


def test_from_files_equals_from_checkpoint(tiny_checkpoint):
    prefix, epoch, _ = tiny_checkpoint
    a = SourceModel.from_checkpoint(prefix, epoch)
    b = SourceModel.from_files(f"{prefix}-symbol.json", f"{prefix}-{epoch:04d}.params")
    assert a.sha256 == b.sha256 and a.input_shape is None


def test_layer_table(tiny_net):
    model = SourceModel.from_gluon(tiny_net, (1, 8, 8))
    table = {layer.name: layer for layer in model.layers}
    assert model.layer_names[0] == "tiny_conv1_fwd" and model.output_layers == ["tiny_out_fwd"]
    assert table["tiny_conv1_fwd"] == ("tiny_conv1_fwd", "Convolution", (1, 4, 8, 8), 4 * 9 + 4)
    assert table["tiny_bn1_fwd"].n_params == 4 * 4  # gamma, beta + running mean, var
    assert table["tiny_pool1_fwd"].output_shape == (1, 4, 4, 4)
    assert table["tiny_out_fwd"].output_shape == (1, 3)
    assert sum(layer.n_params for layer in model.layers) == sum(
        p.data().size for p in tiny_net.collect_params().values())
    text = model.describe()
    assert "tiny_fc1_fwd" in text and "FullyConnected" in text and "1,281 parameters" in text


def test_layer_table_needs_shape_for_shapes(tiny_checkpoint):
    model = SourceModel.from_checkpoint(*tiny_checkpoint[:2])
    assert all(layer.output_shape is None for layer in model.layers)
    assert model.layer_table(input_shape=(1, 8, 8))[0].output_shape == (1, 4, 8, 8)


def test_value_semantics(tiny_net):
    model = SourceModel.from_gluon(tiny_net, (1, 8, 8))
    assert copy.deepcopy(model) is model and copy.copy(model) is model
    clone = pickle.loads(pickle.dumps(model))  # in-memory pickling (joblib workers)
    assert clone.sha256 == model.sha256
    params = model.arg_params
    params.clear()
    assert model.arg_params  # the model's own dict is untouched


def test_legacy_symbol_json_is_upgraded(tmp_path):
    # An MXNet 0.8-era graph: no mxnet_version, "param" instead of "attrs", and the
    # FullyConnected node lists only its data input. MXNet adds fc1_weight / fc1_bias on load.
    legacy = {
        "nodes": [
            {"op": "null", "param": {}, "name": "data", "inputs": [], "backward_source_id": -1},
            {"op": "FullyConnected", "param": {"no_bias": "False", "num_hidden": "3"},
             "name": "fc1", "inputs": [[0, 0]], "backward_source_id": -1},
            {"op": "Activation", "param": {"act_type": "relu"}, "name": "relu1",
             "inputs": [[1, 0]], "backward_source_id": -1},
        ],
        "arg_nodes": [0],
        "heads": [[2, 0]],
    }
    (tmp_path / "old-symbol.json").write_text(json.dumps(legacy))
    weight = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
    bias = np.array([0.5, -9.0, 0.0], dtype=np.float32)
    mx.nd.save(str(tmp_path / "old-0007.params"),
               {"arg:fc1_weight": mx.nd.array(weight), "arg:fc1_bias": mx.nd.array(bias)})
    model = SourceModel.from_checkpoint(str(tmp_path / "old"), 7, input_shape=(4,))
    assert model.layer_names == ["fc1", "relu1"]
    x = np.random.RandomState(0).rand(5, 4).astype(np.float32)
    out = extract_features(model, x, ["relu1"], progress=False)["relu1"]
    np.testing.assert_allclose(out, np.maximum(x @ weight.T + bias, 0), atol=1e-5)


def test_extract_has_moved_error():
    model = SourceModel.from_zoo("digits_cnn")
    with pytest.raises(AttributeError, match=r"SourceModel.extract has moved: use "
                                             r"repurpose.features.extract_features\(model, "
                                             r"data, layers, ...\) \(same arguments\)"):
        model.extract(np.zeros((2, 1, 8, 8), np.float32), ["fc1_fwd"], progress=False)


# ----------------------------------------------------------------- bad input
def test_missing_files_error(tiny_checkpoint, tmp_path):
    prefix, epoch, _ = tiny_checkpoint
    with pytest.raises(FileNotFoundError, match=r"tiny-0004.params' does not exist. Did you "
                                                r"mean 'tiny-0003.params'\?"):
        SourceModel.from_checkpoint(prefix, 4)
    with pytest.raises(FileNotFoundError, match="nor does its folder"):
        SourceModel.from_checkpoint(str(tmp_path / "nowhere" / "x"))


def test_params_from_other_network_error(tiny_checkpoint, tmp_path):
    prefix, epoch, _ = tiny_checkpoint
    other = mx.gluon.nn.HybridSequential(prefix="other_")
    other.add(mx.gluon.nn.Dense(4, prefix="fc_"))
    other.initialize()
    other(mx.nd.zeros((1, 3)))
    other.save_parameters(str(tmp_path / "other.params"))
    with pytest.raises(ModelFileError, match=r"other.params' does not fit .*tiny-symbol.json'"
                                             r".*lack .* the graph needs"):
        SourceModel.from_files(f"{prefix}-symbol.json", tmp_path / "other.params")


def test_params_missing_names_error(tiny_checkpoint, tmp_path):
    prefix, epoch, _ = tiny_checkpoint
    params = mx.nd.load(f"{prefix}-{epoch:04d}.params")
    del params["arg:tiny_fc1_weight"]
    mx.nd.save(str(tmp_path / "cut.params"), params)
    with pytest.raises(ModelFileError, match=r"lack 1 variable\(s\) the graph needs: "
                                             r"'tiny_fc1_weight'.*Pass the params file saved "
                                             r"with this symbol file"):
        SourceModel.from_files(f"{prefix}-symbol.json", tmp_path / "cut.params")


def test_params_wrong_shape_error(tiny_checkpoint, tmp_path):
    prefix, epoch, _ = tiny_checkpoint
    params = mx.nd.load(f"{prefix}-{epoch:04d}.params")
    params["arg:tiny_fc1_weight"] = mx.nd.zeros((10, 7))
    mx.nd.save(str(tmp_path / "bad.params"), params)
    with pytest.raises(ModelFileError, match="shapes do not fit the graph"):
        SourceModel.from_files(f"{prefix}-symbol.json", tmp_path / "bad.params",
                               input_shape=(1, 8, 8))


@pytest.mark.parametrize("which, content, match", [
    ("params", b"\x00garbage" * 10, "not a readable MXNet params file"),
    ("symbol", b"{not json", "not a readable MXNet symbol file"),
])
def test_corrupted_files_error(tiny_checkpoint, tmp_path, which, content, match):
    prefix, epoch, _ = tiny_checkpoint
    sym, params = f"{prefix}-symbol.json", f"{prefix}-{epoch:04d}.params"
    bad = tmp_path / f"bad.{which}"
    bad.write_bytes(content)
    with pytest.raises(ModelFileError, match=match):
        SourceModel.from_files(bad if which == "symbol" else sym,
                               bad if which == "params" else params)


def test_truncated_params_error(tiny_checkpoint, tmp_path):
    prefix, epoch, _ = tiny_checkpoint
    with open(f"{prefix}-{epoch:04d}.params", "rb") as handle:
        data = handle.read()
    (tmp_path / "half.params").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated"):
        SourceModel.from_files(f"{prefix}-symbol.json", tmp_path / "half.params")


def test_wrong_input_name_error(tiny_checkpoint):
    with pytest.raises(ModelFileError, match="no input named 'image'"):
        SourceModel.from_checkpoint(*tiny_checkpoint[:2], input_name="image")


@pytest.mark.parametrize("shape", [(), (0, 8, 8), "abc", (1, -1)])
def test_bad_input_shape_error(tiny_net, shape):
    with pytest.raises(InvalidParameterError, match="ONE sample, without the batch axis"):
        SourceModel.from_gluon(tiny_net, shape)


def test_input_shape_that_does_not_fit_error(tiny_net):
    with pytest.raises(InvalidParameterError, match=r"does not accept inputs of shape \(3, 8, 8\)"):
        SourceModel.from_gluon(tiny_net, (3, 8, 8))


def test_from_gluon_needs_hybrid_block_and_initialised_params():
    with pytest.raises(TypeError, match="needs a mx.gluon.HybridBlock"):
        SourceModel.from_gluon(mx.gluon.Block(), (3,))
    net = mx.gluon.nn.Dense(3)
    with pytest.raises(InvalidParameterError, match="call block.initialize"):
        SourceModel.from_gluon(net, (4,))


def test_from_gluon_deferred_init_is_finished(seed):
    net = mx.gluon.nn.HybridSequential(prefix="d_")
    with net.name_scope():
        net.add(mx.gluon.nn.Dense(3, prefix="fc_"))
    net.initialize()  # in_units unknown until the first forward
    model = SourceModel.from_gluon(net, (5,))
    assert model.arg_params["d_fc_weight"].shape == (3, 5)


def test_unknown_layer_error(tiny_net):
    model = SourceModel.from_gluon(tiny_net, (1, 8, 8))
    with pytest.raises(UnknownLayerError, match=r"Unknown layer 'relu1'\. Did you mean "
                                                r"'tiny_relu1_fwd'"):
        model.truncate("relu1")


def test_from_spec(tiny_checkpoint):
    prefix, epoch, _ = tiny_checkpoint
    assert SourceModel.from_spec(prefix).layer_names[-1] == "tiny_out_fwd"
    assert SourceModel.from_spec(prefix + "-symbol.json", epoch=epoch).input_shape is None
    with pytest.raises(FileNotFoundError, match="neither an .onnx file"):
        SourceModel.from_spec(prefix + "x")
