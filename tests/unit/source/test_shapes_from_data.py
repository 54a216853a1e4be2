"""Shapes from the data: a source model loaded without ``input_shape`` (a plain MXNet
checkpoint) takes its shapes from the first batch it sees, for extraction and surgery.

Layers added to such a model wait for the input shape, as Gluon's deferred initialisation
does; with_input_shape() or the first batch extracted makes them, with the values the same
add_layers call gives a model loaded with that shape.
"""
import json
import pathlib

import mxnet as mx
import numpy as np
import pytest

from repurpose import SourceModel
from repurpose.exceptions import DataError, InvalidParameterError
from repurpose.features import extract_features

X = np.random.RandomState(1).rand(9, 1, 8, 8).astype(np.float32)
X10 = np.random.RandomState(2).rand(3, 1, 10, 10).astype(np.float32)
HEAD = [{"type": "dense", "units": 5, "name": "new"}, {"type": "batchnorm", "name": "new_bn"},
        {"type": "activation", "activation": "tanh", "name": "new_act"}]


def _export(net, prefix, how):
    """Write the network as most checkpoints in the wild are: a shape-less 'data' input."""
    if how == "export":
        net.hybridize()
        net(mx.nd.zeros((1, 1, 8, 8)))
        net.export(prefix)
    else:  # what Module.save_checkpoint writes: arg:/aux: names
        symbol = net(mx.sym.var("data"))
        params = {name: p.data() for name, p in net.collect_params().items()}
        aux_names = set(symbol.list_auxiliary_states())
        mx.model.save_checkpoint(prefix, 0, symbol,
                                 {k: v for k, v in params.items() if k not in aux_names},
                                 {k: v for k, v in params.items() if k in aux_names})
    return prefix


@pytest.fixture
def net(make_tiny_cnn):
    return make_tiny_cnn(seed=0)


@pytest.fixture
def prefix(net, tmp_path):
    return _export(net, str(tmp_path / "plain"), "export")


@pytest.fixture
def plain(prefix):
    return SourceModel.from_checkpoint(prefix)


@pytest.fixture
def shaped(prefix):
    return SourceModel.from_checkpoint(prefix, input_shape=(1, 8, 8))


def _values(model):
    return {k: v.asnumpy() for k, v in {**model.arg_params, **model.aux_params}.items()}


# ---------------------------------------------------------------- plain checkpoints
@pytest.mark.parametrize("how", ["export", "save_checkpoint"])
def test_plain_checkpoint_extracts_with_the_data_shape(net, tmp_path, how):
    prefix = _export(net, str(tmp_path / how), how)
    graph = json.loads(pathlib.Path(f"{prefix}-symbol.json").read_text())
    data_node = [n for n in graph["nodes"] if n["name"] == "data"][0]
    assert "__shape__" not in data_node.get("attrs", {})
    model = SourceModel.from_checkpoint(prefix)
    assert model.input_shape is None
    feats = extract_features(model, X, ["tiny_out_fwd"], progress=False)["tiny_out_fwd"]
    np.testing.assert_allclose(feats, net(mx.nd.array(X)).asnumpy(), atol=1e-5)
    assert model.input_shape is None  # a model without added layers keeps taking any shape


def test_with_input_shape_ok(plain):
    shaped = plain.with_input_shape((1, 8, 8))
    assert shaped.input_shape == (1, 8, 8) and plain.input_shape is None
    assert shaped.sha256 == plain.sha256  # the same graph and weights
    assert shaped.with_input_shape([1, 8, 8]) is shaped
    assert shaped.layers[-1].output_shape == (1, 3)


@pytest.mark.parametrize("shape, error, match", [
    ((1, 10, 10), DataError, r"Inputs of shape \(1, 10, 10\) do not fit this model"),
    ((0, 8, 8), InvalidParameterError, "tuple of positive ints"),
    (None, InvalidParameterError, "needs the shape of one sample"),
])
def test_with_input_shape_error(plain, shape, error, match):
    with pytest.raises(error, match=match):
        plain.with_input_shape(shape)


def test_with_input_shape_of_a_shaped_model_error(shaped):
    with pytest.raises(DataError, match=r"Samples of shape \(1, 10, 10\) do not fit this "
                                        r"model: it expects input shape \(1, 8, 8\)"):
        shaped.with_input_shape((1, 10, 10))


def test_extract_of_a_shaped_model_with_other_shape_error(shaped):
    with pytest.raises(DataError, match=r"samples of shape \(1, 10, 10\), but this model "
                                        r"expects input shape \(1, 8, 8\)"):
        extract_features(shaped, X10, ["tiny_fc1_fwd"], progress=False)


def test_plain_save_checkpoint_writes_null_shape(plain, tmp_path):
    plain.save_checkpoint(tmp_path / "again")
    sidecar = json.loads((tmp_path / "again-repurpose.json").read_text())
    assert sidecar["input_shape"] is None
    loaded = SourceModel.from_checkpoint(tmp_path / "again")
    assert loaded.input_shape is None and loaded.sha256 == plain.sha256


# ---------------------------------------------------------------- surgery without a shape
def test_add_layers_without_shape_defers_the_new_parameters(plain):
    cut = plain.truncate("tiny_fc1_fwd")
    new = cut.add_layers(HEAD, random_state=0)
    assert new.input_shape is None and cut.input_shape is None
    assert new.layer_names == cut.layer_names + ["new_fwd", "new_bn_fwd", "new_act_fwd"]
    assert [(l.output_shape, l.n_params) for l in new.layers[-3:]] == [(None, 0)] * 3
    assert not {"new_weight", "new_bias", "new_bn_gamma"} & set(new.arg_params)
    assert "new_bn_running_mean" not in new.aux_params
    # Freezing works on names alone; the new parameters belong to their layers already.
    frozen = new.freeze(["new_fwd"])
    assert frozen.frozen_params == {"new_weight", "new_bias"}
    # Each pending surgery has its own SHA-256, so feature caches never mix two up.
    assert new.sha256 != cut.add_layers(HEAD, random_state=0).sha256


def test_deferred_extract_equals_shape_given_up_front(plain, shaped, tmp_path):
    deferred = plain.truncate("tiny_fc1_fwd").add_layers(HEAD, random_state=0)
    up_front = shaped.truncate("tiny_fc1_fwd").add_layers(HEAD, random_state=0)
    layers = ["new_act_fwd", "tiny_fc1_fwd"]
    got = extract_features(deferred, X, layers, progress=False)
    want = extract_features(up_front, X, layers, progress=False)
    for layer in layers:
        np.testing.assert_array_equal(got[layer], want[layer])
    # The first batch sized the new layers, once: the model now is the up-front one.
    assert deferred.input_shape == (1, 8, 8)
    assert deferred.sha256 == up_front.sha256
    assert deferred.layers == up_front.layers
    deferred.save_checkpoint(tmp_path / "done")
    loaded = SourceModel.from_checkpoint(tmp_path / "done")
    assert loaded.sha256 == up_front.sha256 and loaded.input_shape == (1, 8, 8)


@pytest.mark.parametrize("data", ["iter", "dataset", "loader"])
def test_deferred_takes_the_shape_from_any_batch_stream(plain, shaped, data):
    deferred = plain.truncate("tiny_fc1_fwd").add_layers(HEAD, random_state=3)
    up_front = shaped.truncate("tiny_fc1_fwd").add_layers(HEAD, random_state=3)
    dataset = mx.gluon.data.ArrayDataset(X, np.zeros(len(X)))
    inputs = {"iter": mx.io.NDArrayIter(X, batch_size=4),
              "dataset": dataset,
              "loader": mx.gluon.data.DataLoader(dataset, batch_size=4)}[data]
    got = extract_features(deferred, inputs, ["new_act_fwd"], batch_size=4, progress=False)
    want = extract_features(up_front, X, ["new_act_fwd"], batch_size=4, progress=False)
    np.testing.assert_array_equal(got["new_act_fwd"], want["new_act_fwd"])
    assert deferred.input_shape == (1, 8, 8) and deferred.sha256 == up_front.sha256


def test_deferred_first_batch_fixes_the_shape_error(net, tmp_path):
    # A fully convolutional trunk takes 8x8 and 10x10 alike; its added dense layer is sized
    # by the first batch and then takes only that shape, as a Gluon block would.
    plain = SourceModel.from_checkpoint(_export(net, str(tmp_path / "p"), "export"))
    deferred = plain.truncate("tiny_relu2_fwd").add_layers(
        [{"type": "dense", "units": 4, "name": "new"}], random_state=0)
    assert deferred.with_input_shape((1, 10, 10)).arg_params["new_weight"].shape == (4, 150)
    extract_features(deferred, X, ["new_fwd"], progress=False)
    assert deferred.arg_params["new_weight"].shape == (4, 96)
    with pytest.raises(DataError, match=r"samples of shape \(1, 10, 10\), but this model "
                                        r"expects input shape \(1, 8, 8\)"):
        extract_features(deferred, X10, ["new_fwd"], progress=False)
    with pytest.raises(DataError, match=r"it expects input shape \(1, 8, 8\)"):
        deferred.with_input_shape((1, 10, 10))


def test_deferred_data_the_graph_rejects_error(plain):
    deferred = plain.add_layers([{"type": "dense", "units": 2}], random_state=0)
    with pytest.raises(DataError, match=r"Inputs of shape \(1, 10, 10\) do not fit this model"):
        extract_features(deferred, X10, ["added0_fwd"], progress=False)
    assert deferred.input_shape is None  # still waiting for a shape that fits
    extract_features(deferred, X, ["added0_fwd"], progress=False)
    assert deferred.input_shape == (1, 8, 8)


@pytest.mark.parametrize("edit", ["freeze", "reinit_new_and_old", "reinit_old", "stack",
                                  "truncate_inside", "truncate_below"])
def test_surgery_chains_equal_shape_given_up_front(plain, shaped, edit):
    def chain(model):
        model = model.truncate("tiny_fc1_fwd").add_layers(HEAD, random_state=0)
        if edit == "freeze":
            return model.freeze(up_to="new_fwd")
        if edit == "reinit_new_and_old":
            return model.reinitialize(["tiny_conv2_fwd", "new_fwd"], random_state=1)
        if edit == "reinit_old":
            return model.reinitialize(["tiny_conv1_fwd"], random_state=1)
        if edit == "stack":
            return model.add_layers([{"type": "dense", "units": 2}], random_state=2)
        if edit == "truncate_inside":
            return model.truncate("new_bn_fwd")
        return model.truncate("tiny_pool1_fwd")

    deferred, up_front = chain(plain), chain(shaped)
    assert deferred.layer_names == up_front.layer_names
    assert deferred.frozen_layers == up_front.frozen_layers
    made = deferred.with_input_shape((1, 8, 8))
    assert made.sha256 == up_front.sha256
    assert made.frozen_layers == up_front.frozen_layers
    assert deferred.input_shape is None  # with_input_shape returns a new model


def test_reinitialize_of_existing_layers_is_immediate(plain):
    deferred = plain.add_layers([{"type": "dense", "units": 2}], random_state=0)
    fresh = deferred.reinitialize(["tiny_conv1_fwd"], random_state=1)
    assert "tiny_conv1_weight" in fresh.arg_params and "added0_weight" not in fresh.arg_params
    np.testing.assert_array_equal(fresh.arg_params["tiny_conv1_bias"].asnumpy(), 0)


def test_save_checkpoint_of_deferred_model_error(plain, tmp_path):
    deferred = plain.add_layers([{"type": "dense", "units": 2, "name": "new"}])
    folder = tmp_path / "saved"
    folder.mkdir()
    with pytest.raises(InvalidParameterError, match=r"save_checkpoint needs every parameter, "
                                                    r"but 2 .*'new_bias', 'new_weight'.*"
                                                    r"with_input_shape.*extract features once"):
        deferred.save_checkpoint(folder / "pending")
    assert list(folder.iterdir()) == []  # nothing written
    deferred.with_input_shape((1, 8, 8)).save_checkpoint(folder / "done")  # the _ok case
    assert SourceModel.from_checkpoint(folder / "done").input_shape == (1, 8, 8)


def test_to_gluon_of_deferred_model_error(plain):
    deferred = plain.add_layers([{"type": "dense", "units": 2}])
    with pytest.raises(InvalidParameterError, match="to_gluon needs every parameter"):
        deferred.to_gluon()
    block = deferred.with_input_shape((1, 8, 8)).to_gluon()
    assert block(mx.nd.array(X)).shape == (9, 2)


def test_add_gluon_block_without_shape_ok(plain, shaped):
    block = mx.gluon.nn.Dense(2, prefix="mine_")
    deferred = plain.add_layers(block, random_state=3)
    assert deferred.layer_names[-1] == "mine_fwd"
    assert block.weight.shape == (2, 0)  # the caller's block is left as it was
    up_front = shaped.add_layers(mx.gluon.nn.Dense(2, prefix="mine_"), random_state=3)
    assert deferred.with_input_shape((1, 8, 8)).sha256 == up_front.sha256


def test_add_gluon_block_without_shape_error(plain):
    block = mx.gluon.nn.Dense(2, prefix="ran_")
    block.initialize()
    block.hybridize()
    block(mx.nd.zeros((1, 3)))
    with pytest.raises(InvalidParameterError, match=r"layers\[0\].*cannot be copied.*"
                                                    r"with_input_shape"):
        plain.add_layers([block])
