"""Shapes from the data in the repurposers: a source loaded without ``input_shape`` (a plain
MXNet checkpoint) is fine-tuned as if it had been loaded with the shape of the training
samples, whatever form they come in; a source given a shape keeps its clear error for data
of another shape.
"""
import mxnet as mx
import numpy as np
import pytest

from repurpose import (BnnRepurposer, GpRepurposer, LogisticRepurposer, SourceModel,
                       SvmRepurposer, load)
from repurpose.data import ImageFolder
from repurpose.exceptions import DataError
from repurpose.repurposers._finetune import FineTuneRepurposer, RandomFreezeRepurposer

FAST = dict(n_epochs=2, batch_size=8, random_state=0)
PARAMS = {FineTuneRepurposer: dict(FAST, transfer_layer="tiny_fc1_fwd", hidden_units=(4,)),
          RandomFreezeRepurposer: dict(FAST, fixed_layers=("tiny_conv1_fwd",))}
RNG = np.random.RandomState(0)
X = RNG.rand(24, 1, 8, 8).astype(np.float32)
Y = np.array(["a", "b", "c"])[np.arange(24) % 3]


@pytest.fixture
def prefix(make_tiny_cnn, tmp_path):
    """The tiny CNN exported as most checkpoints in the wild are: no shape on 'data'."""
    net = make_tiny_cnn(seed=0)
    net.hybridize()
    net(mx.nd.zeros((1, 1, 8, 8)))
    prefix = str(tmp_path / "plain")
    net.export(prefix)
    return prefix


@pytest.fixture
def plain(prefix):
    return SourceModel.from_checkpoint(prefix)


@pytest.fixture
def shaped(prefix):
    return SourceModel.from_checkpoint(prefix, input_shape=(1, 8, 8))


def _weights(model):
    net = model.network_
    return {k: v.asnumpy() for k, v in {**net.arg_params, **net.aux_params}.items()}


def _assert_same_network(a, b):
    assert a.network_.sha256 == b.network_.sha256
    wa, wb = _weights(a), _weights(b)
    assert set(wa) == set(wb)
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


def _image_folder(root):
    from PIL import Image

    labels = []
    for k, name in enumerate("abc"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            pixels = (RNG.rand(8, 8) * 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(root / name / f"{i}.png")
            labels.append(name)
    return ImageFolder(root, grayscale=True), np.array(labels)


# ---------------------------------------------------------------- fine-tuning
@pytest.mark.parametrize("cls", [FineTuneRepurposer, RandomFreezeRepurposer])
def test_fit_on_plain_checkpoint_equals_shape_given_up_front(cls, plain, shaped, tmp_path):
    model = cls(plain, **PARAMS[cls]).fit(X, Y)
    assert plain.input_shape is None  # the parameter is not modified
    assert model.network_.input_shape == (1, 8, 8)
    _assert_same_network(model, cls(shaped, **PARAMS[cls]).fit(X, Y))
    # What save() writes carries the shape; the loaded model predicts the same.
    loaded = load(model.save(tmp_path / "saved"))
    assert loaded.source.input_shape is None and loaded.network_.input_shape == (1, 8, 8)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert (loaded.predict(X) == model.predict(X)).all()


@pytest.mark.parametrize("data", ["iter", "dataset", "loader"])
def test_fit_takes_the_shape_from_any_batch_stream(plain, shaped, data):
    dataset = mx.gluon.data.ArrayDataset(X, np.arange(len(X)))
    inputs = {"iter": mx.io.NDArrayIter(X, batch_size=5),
              "dataset": dataset,
              "loader": mx.gluon.data.DataLoader(dataset, batch_size=5)}[data]
    model = FineTuneRepurposer(plain, **PARAMS[FineTuneRepurposer]).fit(inputs, Y)
    assert model.network_.input_shape == (1, 8, 8)
    _assert_same_network(model, FineTuneRepurposer(shaped, **PARAMS[FineTuneRepurposer])
                         .fit(X, Y))


def test_fit_takes_the_shape_from_an_image_folder(plain, tmp_path):
    folder, labels = _image_folder(tmp_path / "images")
    model = RandomFreezeRepurposer(plain, **PARAMS[RandomFreezeRepurposer]).fit(folder, labels)
    assert model.network_.input_shape == (1, 8, 8)
    assert model.predict(folder).shape == (len(labels),)


def test_fit_on_a_source_with_deferred_layers(plain, shaped, tmp_path):
    head = [{"type": "dense", "units": 6, "name": "extra"},
            {"type": "activation", "name": "extra_act"},
            {"type": "dense", "units": 3, "name": "extra_out"}]
    deferred = plain.add_layers(head, random_state=1)
    params = dict(FAST, transfer_layer="extra_act_fwd")
    model = FineTuneRepurposer(deferred, **params).fit(X, Y)
    # The source took the shape of its first batch (as extraction would) ...
    assert deferred.input_shape == (1, 8, 8)
    up_front = FineTuneRepurposer(shaped.add_layers(head, random_state=1), **params).fit(X, Y)
    _assert_same_network(model, up_front)
    # ... so it can be saved with the repurposer.
    loaded = load(model.save(tmp_path / "saved"))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_resume_on_plain_checkpoint(prefix, tmp_path):
    params = dict(PARAMS[FineTuneRepurposer], checkpoint_dir=str(tmp_path / "ckpt"))
    whole = FineTuneRepurposer(SourceModel.from_checkpoint(prefix), **params).fit(X, Y)
    again = FineTuneRepurposer(SourceModel.from_checkpoint(prefix), **params)
    again.fit(X, Y, resume=True)  # the same job: its fingerprint did not depend on the shape
    _assert_same_network(again, whole)


@pytest.mark.parametrize("cls", [FineTuneRepurposer, RandomFreezeRepurposer])
def test_fit_data_of_another_shape_than_given_error(cls, shaped):
    with pytest.raises(DataError, match=r"X has samples of shape \(1, 10, 10\), but the source "
                                        r"model takes \(1, 8, 8\)"):
        cls(shaped, **PARAMS[cls]).fit(np.zeros((6, 1, 10, 10), np.float32), Y[:6])


@pytest.mark.parametrize("cls", [FineTuneRepurposer, RandomFreezeRepurposer])
def test_fit_data_the_graph_rejects_error(cls, plain):
    with pytest.raises(DataError, match=r"Inputs of shape \(1, 10, 10\) do not fit this model"):
        cls(plain, **PARAMS[cls]).fit(np.zeros((6, 1, 10, 10), np.float32), Y[:6])


def test_validation_data_of_another_shape_error(plain):
    X_val = np.zeros((3, 1, 10, 10), np.float32)
    with pytest.raises(DataError, match=r"X_val has samples of shape \(1, 10, 10\), but X "
                                        r"\(whose shape the source takes\) takes \(1, 8, 8\)"):
        FineTuneRepurposer(plain, **PARAMS[FineTuneRepurposer]).fit(X, Y, X_val, Y[:3])


def test_predict_data_of_another_shape_error(plain):
    model = FineTuneRepurposer(plain, **PARAMS[FineTuneRepurposer]).fit(X, Y)
    with pytest.raises(DataError, match=r"samples of shape \(1, 10, 10\), but the fitted "
                                        r"network .* takes \(1, 8, 8\)"):
        model.predict(np.zeros((2, 1, 10, 10), np.float32))


# ---------------------------------------------------------------- feature repurposers
FEATURE_PARAMS = {LogisticRepurposer: {}, SvmRepurposer: dict(n_folds=2),
                  GpRepurposer: dict(n_inducing=8, n_mc_samples=20),
                  BnnRepurposer: dict(hidden_units=(4,), n_epochs=3)}


@pytest.mark.parametrize("cls", list(FEATURE_PARAMS))
def test_feature_repurposers_on_plain_checkpoint(cls, plain, shaped, tmp_path):
    params = dict(FEATURE_PARAMS[cls], layers=("tiny_fc1_fwd",), cache_features=False,
                  random_state=0)
    model = cls(plain, **params).fit(X, Y)
    assert plain.input_shape is None
    # MXNet's float32 results for a graph bound with and without a known input shape may
    # differ in the last bit (~2e-7 here), so the two paths agree to float round-off.
    np.testing.assert_allclose(model.predict_proba(X),
                               cls(shaped, **params).fit(X, Y).predict_proba(X), atol=1e-4)
    loaded = load(model.save(tmp_path / "saved"))
    assert loaded.source.input_shape is None
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-6)


def test_feature_repurposer_on_deferred_layers(plain, shaped, tmp_path):
    head = [{"type": "dense", "units": 4, "name": "extra"}]
    deferred = plain.add_layers(head, random_state=2)
    model = LogisticRepurposer(deferred, layers=("extra_fwd",), random_state=0).fit(X, Y)
    assert deferred.input_shape == (1, 8, 8)
    up_front = LogisticRepurposer(shaped.add_layers(head, random_state=2), layers=("extra_fwd",),
                                  random_state=0).fit(X, Y)
    np.testing.assert_array_equal(model.predict_proba(X), up_front.predict_proba(X))
    loaded = load(model.save(tmp_path / "saved"))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_feature_repurposer_data_of_another_shape_than_given_error(shaped):
    with pytest.raises(DataError, match=r"samples of shape \(1, 10, 10\), but this model "
                                        r"expects input shape \(1, 8, 8\)"):
        LogisticRepurposer(shaped, layers=("tiny_fc1_fwd",)).fit(
            np.zeros((6, 1, 10, 10), np.float32), Y[:6])
