import json

import mxnet as mx
import numpy as np
import pytest

from repurpose import SourceModel
from repurpose.exceptions import InvalidParameterError, ModelFileError, UnknownLayerError
from repurpose.features import extract_features

X = np.random.RandomState(1).rand(9, 1, 8, 8).astype(np.float32)


@pytest.fixture
def model(tiny_net):
    return SourceModel.from_gluon(tiny_net, (1, 8, 8), metadata={"name": "tiny"})


def test_truncate_returns_new_model_and_keeps_source(model):
    before = model.sha256
    cut = model.truncate("tiny_pool1_fwd")
    assert cut.layer_names == model.layer_names[:4]
    assert cut.output_layers == ["tiny_pool1_fwd"]
    assert set(cut.arg_params) == {"tiny_conv1_weight", "tiny_conv1_bias", "tiny_bn1_gamma",
                                   "tiny_bn1_beta"}
    assert model.sha256 == before and len(model.layer_names) == 9
    np.testing.assert_allclose(
        extract_features(cut, X, ["tiny_pool1_fwd"], progress=False)["tiny_pool1_fwd"],
        extract_features(model, X, ["tiny_pool1_fwd"], progress=False)["tiny_pool1_fwd"], atol=1e-6)


def test_add_layers_specs(model):
    cut = model.truncate("tiny_fc1_fwd")
    new = cut.add_layers([{"type": "batchnorm"}, {"type": "activation", "activation": "tanh"},
                          {"type": "dropout", "rate": 0.3},
                          {"type": "dense", "units": 5, "name": "target"}], random_state=0)
    assert new.layer_names[: len(cut.layer_names)] == cut.layer_names
    assert new.layer_names[-1] == "target_fwd"
    assert new.layers[-1].output_shape == (1, 5) and new.layers[-1].n_params == 10 * 5 + 5
    # The source part is unchanged; the new part is seeded.
    again = cut.add_layers([{"type": "batchnorm"}, {"type": "activation", "activation": "tanh"},
                            {"type": "dropout", "rate": 0.3},
                            {"type": "dense", "units": 5, "name": "target"}], random_state=0)
    assert again.sha256 == new.sha256
    out = extract_features(new, X, ["target_fwd"], progress=False)["target_fwd"]
    fc1 = extract_features(cut, X, ["tiny_fc1_fwd"], progress=False)["tiny_fc1_fwd"]
    w, b = new.arg_params["target_weight"].asnumpy(), new.arg_params["target_bias"].asnumpy()
    # batchnorm starts as identity up to eps (mean 0, var 1, gamma 1, beta 0); dropout is off
    # at inference.
    expected = np.tanh(fc1 / np.sqrt(1 + 1e-5)) @ w.T + b
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_add_gluon_block(model):
    block = mx.gluon.nn.Dense(2, prefix="mine_")
    new = model.add_layers(block, random_state=3)
    assert new.layer_names[-1] == "mine_fwd" and "mine_weight" in new.arg_params


@pytest.mark.parametrize("layers, match", [
    ([], "at least one layer"),
    ([{"type": "dense"}], "needs 'units'"),
    ([{"type": "conv"}], "type 'conv'; expected one of"),
    ([{"type": "dense", "units": 3, "bias": 1}], "unknown keys 'bias'"),
    ([{"type": "dropout", "rate": 1.5}], r"rate must be in \[0, 1\)"),
    ([{"type": "dropout", "rate": 1e-308}], "too small for float32"),
    ([{"type": "dense", "units": 3, "name": "tiny_fc1"}], "already uses"),
    (["dense"], "expected a dict spec"),
    ([mx.gluon.nn.Dense(3, prefix="tiny_out_")], "already uses"),
])
def test_add_layers_error(model, layers, match):
    with pytest.raises(InvalidParameterError, match=match):
        model.add_layers(layers)


def test_freeze_and_unfreeze(model):
    frozen = model.freeze(up_to="tiny_bn1_fwd").freeze(["tiny_fc1_fwd"])
    assert frozen.frozen_layers == ("tiny_conv1_fwd", "tiny_bn1_fwd", "tiny_fc1_fwd")
    assert frozen.frozen_params == {"tiny_conv1_weight", "tiny_conv1_bias", "tiny_bn1_gamma",
                                    "tiny_bn1_beta", "tiny_bn1_running_mean",
                                    "tiny_bn1_running_var", "tiny_fc1_weight", "tiny_fc1_bias"}
    assert model.frozen_layers == ()
    block = frozen.to_gluon()
    reqs = {name: p.grad_req for name, p in block.collect_params().items()}
    assert reqs["tiny_conv1_weight"] == "null" and reqs["tiny_conv2_weight"] == "write"
    assert frozen.unfreeze(["tiny_fc1_fwd"]).frozen_layers == ("tiny_conv1_fwd", "tiny_bn1_fwd")
    assert frozen.unfreeze().frozen_layers == ()
    # Truncation drops frozen layers that are gone.
    assert frozen.truncate("tiny_pool1_fwd").frozen_layers == ("tiny_conv1_fwd", "tiny_bn1_fwd")
    with pytest.raises(UnknownLayerError, match="Did you mean 'tiny_fc1_fwd'"):
        model.freeze(["tiny_fc_fwd"])
    with pytest.raises(InvalidParameterError, match="needs layers"):
        model.freeze()


def test_reinitialize(model):
    fresh = model.reinitialize(["tiny_conv1_fwd", "tiny_bn1_fwd"], random_state=0)
    old, new = model.arg_params, fresh.arg_params
    assert not np.allclose(old["tiny_conv1_weight"].asnumpy(), new["tiny_conv1_weight"].asnumpy())
    np.testing.assert_array_equal(new["tiny_conv1_bias"].asnumpy(), 0)
    np.testing.assert_array_equal(new["tiny_bn1_gamma"].asnumpy(), 1)
    np.testing.assert_array_equal(fresh.aux_params["tiny_bn1_running_var"].asnumpy(), 1)
    np.testing.assert_array_equal(fresh.aux_params["tiny_bn1_running_mean"].asnumpy(), 0)
    np.testing.assert_array_equal(old["tiny_fc1_weight"].asnumpy(),
                                  new["tiny_fc1_weight"].asnumpy())
    assert model.reinitialize(["tiny_conv1_fwd"], random_state=0).sha256 == \
        model.reinitialize(["tiny_conv1_fwd"], random_state=0).sha256
    with pytest.raises(InvalidParameterError, match="no parameters to re-initialise"):
        model.reinitialize(["tiny_relu1_fwd"])


def test_save_checkpoint_round_trip(model, tmp_path):
    edited = (model.truncate("tiny_fc1_fwd")
              .add_layers([{"type": "dense", "units": 4, "name": "new"}], random_state=1)
              .freeze(up_to="tiny_pool1_fwd"))
    files = edited.save_checkpoint(tmp_path / "edited", epoch=2)
    assert [f.rsplit("/", 1)[1] for f in files] == ["edited-symbol.json", "edited-0002.params",
                                                    "edited-repurpose.json"]
    loaded = SourceModel.from_checkpoint(tmp_path / "edited", 2)
    assert loaded.sha256 == edited.sha256
    assert loaded.input_shape == (1, 8, 8) and loaded.metadata == {"name": "tiny"}
    assert loaded.frozen_layers == edited.frozen_layers
    a = extract_features(loaded, X, ["new_fwd"], progress=False)["new_fwd"]
    b = extract_features(edited, X, ["new_fwd"], progress=False)["new_fwd"]
    np.testing.assert_array_equal(a, b)
    # Loading also works with MXNet's own loader (arg:/aux: layout).
    sym, args, auxs = mx.model.load_checkpoint(str(tmp_path / "edited"), 2)
    assert set(args) == set(edited.arg_params) and set(auxs) == set(edited.aux_params)


def test_save_checkpoint_never_overwrites(model, tmp_path):
    model.save_checkpoint(tmp_path / "m")
    before = (tmp_path / "m-0000.params").read_bytes()
    other = model.reinitialize(["tiny_out_fwd"], random_state=5)
    with pytest.raises(FileExistsError, match="already exists.*overwrite=True"):
        other.save_checkpoint(tmp_path / "m")
    assert (tmp_path / "m-0000.params").read_bytes() == before
    other.save_checkpoint(tmp_path / "m", overwrite=True)
    assert SourceModel.from_checkpoint(tmp_path / "m").sha256 == other.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-0000.params", "m-repurpose.json",
                                                          "m-symbol.json"]


def test_sidecar_from_the_future_error(model, tmp_path):
    model.save_checkpoint(tmp_path / "m")
    path = tmp_path / "m-repurpose.json"
    sidecar = json.loads(path.read_text())
    sidecar["format_version"] = 99
    path.write_text(json.dumps(sidecar))
    with pytest.raises(ModelFileError, match=r"format_version 99, newer than this repurpose "
                                             r"\(.*\) reads \(1\)"):
        SourceModel.from_checkpoint(tmp_path / "m")


def test_sidecar_of_another_format_error(model, tmp_path):
    model.save_checkpoint(tmp_path / "m")
    (tmp_path / "m-repurpose.json").write_text(json.dumps({"format": "other", "x": 1}))
    with pytest.raises(ModelFileError, match="is not a repurpose checkpoint sidecar file "
                                             r"\(format 'other'"):
        SourceModel.from_checkpoint(tmp_path / "m")
