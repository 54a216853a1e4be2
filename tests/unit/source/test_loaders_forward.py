"""Features from ``extract`` equal a plain MXNet forward for every kind of source."""
import pathlib

import mxnet as mx
import numpy as np
import pytest

from repurpose import SourceModel
from repurpose.data import load_digits_images
from repurpose.exceptions import MissingWeightsError
from repurpose.features import extract_features

DATA = pathlib.Path(__file__).resolve().parents[2] / "data"


def test_zoo_digits_matches_plain_module_forward(ctx):
    model = SourceModel.from_zoo("digits_cnn")
    X, y = load_digits_images(classes=range(5))
    card = model.metadata
    feats = extract_features(model, X, [card["feature_layer"], card["classifier_layer"]], ctx=ctx,
                             batch_size=100, progress=False)
    # A plain MXNet forward of the same checkpoint, with the symbol API's executor.
    sym = model.symbol
    exe = sym.simple_bind(mx.cpu(), data=X.shape, grad_req="null")
    for name, value in {**model.arg_params, **model.aux_params}.items():
        (exe.arg_dict if name in exe.arg_dict else exe.aux_dict)[name][:] = value
    exe.forward(is_train=False, data=mx.nd.array(X))
    logits = exe.outputs[0].asnumpy()
    assert np.abs(feats[card["classifier_layer"]] - logits).max() < 1e-4
    assert feats[card["feature_layer"]].shape == (len(X), 64)
    # The recorded source accuracy is what these weights give on the source classes.
    accuracy = (logits.argmax(1) == y).mean()
    assert accuracy >= card["source_test_accuracy"] - 0.02


def test_zoo_random_weights_are_seeded():
    a = SourceModel.from_zoo("digits_cnn", pretrained=False, random_state=0)
    b = SourceModel.from_zoo("digits_cnn", pretrained=False, random_state=0)
    c = SourceModel.from_zoo("digits_cnn", pretrained=False, random_state=1)
    trained = SourceModel.from_zoo("digits_cnn")
    assert a.sha256 == b.sha256 != c.sha256 != trained.sha256
    assert a.layer_names == trained.layer_names


def test_gluon_zoo_architecture_matches_gluon_forward(seed):
    model = SourceModel.from_zoo("resnet18_v1", pretrained=False, random_state=0)
    assert model.input_shape == (3, 224, 224)
    net = mx.gluon.model_zoo.vision.get_model("resnet18_v1", pretrained=False)
    # Rebuild the same network from the model's own weights and compare a forward.
    x = np.random.RandomState(0).rand(2, 3, 224, 224).astype(np.float32)
    out_layer = model.output_layers[0]
    feats = extract_features(model, x, [out_layer], progress=False)[out_layer]
    block = model.to_gluon()
    np.testing.assert_allclose(feats, block(mx.nd.array(x)).asnumpy(), atol=1e-4)
    assert len(model.layer_names) > 50 and net is not None


def test_gluon_zoo_weights_loaded_from_local_file(tmp_path, seed):
    net = mx.gluon.model_zoo.vision.get_model("squeezenet1.0", pretrained=False)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 224, 224)))
    weights = tmp_path / "sq.params"
    net.save_parameters(str(weights))
    model = SourceModel.from_zoo("squeezenet1.0", weights=weights)
    x = np.random.RandomState(1).rand(2, 3, 224, 224).astype(np.float32)
    out_layer = model.output_layers[0]
    out = extract_features(model, x, [out_layer], progress=False)[out_layer]
    np.testing.assert_allclose(out, net(mx.nd.array(x)).asnumpy(), atol=1e-4)


def test_missing_pretrained_weights_error(tmp_path):
    with pytest.raises(MissingWeightsError, match=r"Weights for 'resnet18_v1' not found at "
                                                  r".*resnet18_v1-a0666292\.params\. Download "
                                                  r"them with from_zoo\('resnet18_v1', "
                                                  r"download=True\)"):
        SourceModel.from_zoo("resnet18_v1", root=str(tmp_path))


def test_onnx_from_pytorch_matches_pytorch_logits():
    pytest.importorskip("onnx")
    model = SourceModel.from_onnx(DATA / "torch_tiny_resnet.onnx")
    expected = np.load(DATA / "torch_tiny_resnet_expected.npz")
    x, logits = expected["input"], expected["logits"]
    out_layer = model.output_layers[0]
    feats = extract_features(model, x, [out_layer], progress=False)[out_layer]
    assert np.abs(feats - logits).max() < 1e-4
    assert model.metadata["format"] == "onnx"
    # Several layers of an ONNX graph in one pass, split over contexts.
    convs = [l.name for l in model.layers if l.op == "Convolution"][:2]
    multi = extract_features(model, x, convs + [out_layer], ctx="cpu:0,1", progress=False)
    np.testing.assert_allclose(multi[out_layer], feats, atol=1e-6)
