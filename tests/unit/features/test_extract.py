import json
import os

import mxnet as mx
import numpy as np
import pytest

from repurpose import SourceModel
from repurpose.exceptions import DataError, InvalidParameterError, UnknownLayerError
from repurpose.features import extract_features

X = np.random.RandomState(2).rand(23, 1, 8, 8).astype(np.float32)
LAYERS = ["tiny_relu1_fwd", "tiny_pool1_fwd", "tiny_fc1_fwd", "tiny_out_fwd"]


@pytest.fixture
def model(tiny_net):
    return SourceModel.from_gluon(tiny_net, (1, 8, 8))


def _reference(net, x, upto):
    """A plain imperative forward through the Gluon children up to ``upto`` (inclusive)."""
    out = mx.nd.array(x)
    for child in net._children.values():
        out = child(out)
        if child.name + "_fwd" == upto or child.prefix + "fwd" == upto:
            return out.asnumpy().reshape(len(x), -1)
    raise AssertionError(upto)


def test_all_layers_from_one_pass_equal_plain_forward(model, tiny_net, ctx):
    feats = model.extract(X, LAYERS, batch_size=7, ctx=ctx, progress=False)
    assert list(feats) == LAYERS
    for layer in LAYERS:
        ref = _reference(tiny_net, X, layer)
        assert feats[layer].dtype == np.float32 and feats[layer].shape == ref.shape
        assert np.abs(feats[layer] - ref).max() < 1e-4


@pytest.mark.parametrize("contexts", ["cpu:0,1,2", [mx.cpu(0), mx.cpu(1)], "cpu:0,1,2,3,4"])
@pytest.mark.parametrize("batch_size", [1, 4, 23, 64])
def test_multi_context_equals_single_context(model, contexts, batch_size):
    single = model.extract(X, LAYERS, batch_size=batch_size, ctx="cpu", progress=False)
    multi = model.extract(X, LAYERS, batch_size=batch_size, ctx=contexts, progress=False)
    for layer in LAYERS:
        np.testing.assert_allclose(multi[layer], single[layer], atol=1e-6)


@pytest.mark.parametrize("pool, fn", [("avg", np.mean), ("max", np.max)])
def test_global_pooling(model, tiny_net, pool, fn):
    feats = model.extract(X, ["tiny_relu1_fwd", "tiny_fc1_fwd"], pool=pool, progress=False)
    maps = _reference(tiny_net, X, "tiny_relu1_fwd").reshape(len(X), 4, 8, 8)
    np.testing.assert_allclose(feats["tiny_relu1_fwd"], fn(maps, axis=(2, 3)), atol=1e-5)
    assert feats["tiny_fc1_fwd"].shape == (len(X), 10)  # 2-D outputs are left as they are


def test_every_data_kind_gives_the_same_features(model, tmp_path):
    expected = model.extract(X, ["tiny_fc1_fwd"], progress=False)["tiny_fc1_fwd"]
    dataset = mx.gluon.data.ArrayDataset(X, np.arange(len(X)))
    kinds = {
        "ndarray": mx.nd.array(X),
        "float64": X.astype(np.float64),
        "dataiter": mx.io.NDArrayIter(X, batch_size=10, last_batch_handle="pad"),
        "dataset": dataset,
        "loader": mx.gluon.data.DataLoader(dataset, batch_size=6),
    }
    for name, data in kinds.items():
        got = model.extract(data, ["tiny_fc1_fwd"], batch_size=5, progress=False)
        np.testing.assert_allclose(got["tiny_fc1_fwd"], expected, atol=1e-5, err_msg=name)


def test_image_folder_extraction(tmp_path, model):
    from PIL import Image

    rng = np.random.RandomState(0)
    for cls in ("x", "y"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(rng.randint(0, 255, (10, 10), dtype=np.uint8)).save(
                tmp_path / cls / f"{i}.png")
    from repurpose.data import ImageFolder

    folder = ImageFolder(tmp_path, crop=8, grayscale=True)
    feats = model.extract(folder, ["tiny_out_fwd"], batch_size=4, progress=False)
    images = np.stack([folder[i][0] for i in range(len(folder))])
    np.testing.assert_allclose(feats["tiny_out_fwd"],
                               model.extract(images, ["tiny_out_fwd"], progress=False)[
                                   "tiny_out_fwd"], atol=1e-6)


def test_stream_to_disk(model, tmp_path):
    in_memory = model.extract(X, LAYERS[1:3], batch_size=5, progress=False)
    out = tmp_path / "features"
    on_disk = model.extract(X, LAYERS[1:3], batch_size=5, out=out, progress=False)
    for layer in LAYERS[1:3]:
        assert isinstance(on_disk[layer], np.memmap)
        np.testing.assert_array_equal(on_disk[layer], in_memory[layer])
        reread = np.load(out / f"{layer}.npy", allow_pickle=False)
        np.testing.assert_array_equal(reread, in_memory[layer])
    manifest = json.loads((out / "features.json").read_text())
    assert manifest["n_samples"] == len(X) and manifest["layers"] == LAYERS[1:3]
    assert manifest["source_sha256"] == model.sha256 and manifest["format_version"] == 1
    # Streams of unknown length (a DataIter) are written too.
    it = mx.io.NDArrayIter(X, batch_size=4)
    streamed = model.extract(it, ["tiny_fc1_fwd"], out=tmp_path / "it", progress=False)
    np.testing.assert_array_equal(streamed["tiny_fc1_fwd"], in_memory["tiny_fc1_fwd"])


def test_stream_to_disk_never_overwrites(model, tmp_path):
    out = tmp_path / "features"
    model.extract(X, ["tiny_fc1_fwd"], out=out, progress=False)
    before = (out / "tiny_fc1_fwd.npy").read_bytes()
    with pytest.raises(FileExistsError, match="already exists.*overwrite=True"):
        model.extract(X[:3], ["tiny_fc1_fwd"], out=out, progress=False)
    assert (out / "tiny_fc1_fwd.npy").read_bytes() == before
    model.extract(X[:3], ["tiny_fc1_fwd"], out=out, overwrite=True, progress=False)
    assert np.load(out / "tiny_fc1_fwd.npy").shape == (3, 10)


def test_failed_stream_leaves_no_files(model, tmp_path):
    bad = X.copy()
    bad[20] = np.nan
    it = mx.io.NDArrayIter(bad, batch_size=4)  # NaN found in the 6th batch, mid-run
    with pytest.raises(DataError, match=r"data\[20:23\] contains NaN"):
        model.extract(it, ["tiny_fc1_fwd"], out=tmp_path / "f", progress=False)
    assert os.listdir(tmp_path) == []


def test_model_without_input_shape_takes_it_from_data(tiny_checkpoint, tiny_net):
    model = SourceModel.from_checkpoint(*tiny_checkpoint[:2])
    feats = model.extract(X, ["tiny_out_fwd"], progress=False)
    np.testing.assert_allclose(feats["tiny_out_fwd"], tiny_net(mx.nd.array(X)).asnumpy(),
                               atol=1e-4)
    with pytest.raises(DataError, match=r"Inputs of shape \(2, 8, 8\) do not fit this model"):
        model.extract(np.zeros((2, 2, 8, 8), np.float32), ["tiny_out_fwd"], progress=False)


def test_progress_bar_goes_to_stderr(model, capsys):
    model.extract(X, ["tiny_fc1_fwd"], batch_size=5, progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "extract" in captured.err


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, error, match", [
    ({"layers": ["relu1"]}, UnknownLayerError, "Did you mean 'tiny_relu1_fwd'"),
    ({"layers": []}, InvalidParameterError, "layers is empty"),
    ({"layers": ["tiny_fc1_fwd", "tiny_fc1_fwd"]}, InvalidParameterError, "more than once"),
    ({"layers": [3]}, InvalidParameterError, "must be strings"),
    ({"pool": "mean"}, InvalidParameterError, "pool must be one of"),
    ({"precision": "fp16"}, InvalidParameterError, "precision must be one of"),
    ({"batch_size": 0}, InvalidParameterError, "batch_size must be an integer >= 1"),
    ({"ctx": "gpu:7"}, ValueError, "asks for GPU 7"),
])
def test_bad_parameters_error(model, kwargs, error, match):
    args = dict(layers=["tiny_fc1_fwd"], progress=False)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        extract_features(model, X, **args)


@pytest.mark.parametrize("data, match", [
    (np.zeros((4, 3, 8, 8), np.float32), r"expects input shape \(1, 8, 8\)"),
    (np.zeros((4, 64), np.float32), r"shape \(64,\), but this model expects"),
    (np.zeros((0, 1, 8, 8), np.float32), "empty"),
    (np.full((4, 1, 8, 8), np.inf, np.float32), "contains inf"),
    (np.array([["a"]]), "dtype"),
])
def test_bad_data_error(model, data, match):
    with pytest.raises(DataError, match=match):
        model.extract(data, ["tiny_fc1_fwd"], progress=False)


def test_bad_data_raised_before_any_forward_pass(model, monkeypatch):
    calls = []
    import repurpose.features._extract as engine

    real = engine.feature_block
    monkeypatch.setattr(engine, "feature_block", lambda *a, **k: calls.append(1) or real(*a, **k))
    with pytest.raises(DataError):
        model.extract(np.zeros((4, 3, 8, 8), np.float32), ["tiny_fc1_fwd"], progress=False)
    assert calls == []
