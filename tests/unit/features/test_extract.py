import json
import os

import mxnet as mx
import numpy as np
import pytest

from repurpose import SourceModel
from repurpose.exceptions import DataError, InvalidParameterError, UnknownLayerError
from repurpose.features import extract_features, feature_block

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
    feats = extract_features(model, X, LAYERS, batch_size=7, ctx=ctx, progress=False)
    assert list(feats) == LAYERS
    for layer in LAYERS:
        ref = _reference(tiny_net, X, layer)
        assert feats[layer].dtype == np.float32 and feats[layer].shape == ref.shape
        assert np.abs(feats[layer] - ref).max() < 1e-4


@pytest.mark.parametrize("contexts", ["cpu:0,1,2", [mx.cpu(0), mx.cpu(1)], "cpu:0,1,2,3,4"])
@pytest.mark.parametrize("batch_size", [1, 4, 23, 64])
def test_multi_context_equals_single_context(model, contexts, batch_size):
    single = extract_features(model, X, LAYERS, batch_size=batch_size, ctx="cpu", progress=False)
    multi = extract_features(model, X, LAYERS, batch_size=batch_size, ctx=contexts, progress=False)
    for layer in LAYERS:
        np.testing.assert_allclose(multi[layer], single[layer], atol=1e-6)


@pytest.mark.parametrize("pool, fn", [("avg", np.mean), ("max", np.max)])
def test_global_pooling(model, tiny_net, pool, fn):
    feats = extract_features(model, X, ["tiny_relu1_fwd", "tiny_fc1_fwd"], pool=pool,
                             progress=False)
    maps = _reference(tiny_net, X, "tiny_relu1_fwd").reshape(len(X), 4, 8, 8)
    np.testing.assert_allclose(feats["tiny_relu1_fwd"], fn(maps, axis=(2, 3)), atol=1e-5)
    assert feats["tiny_fc1_fwd"].shape == (len(X), 10)  # 2-D outputs are left as they are


def test_every_data_kind_gives_the_same_features(model, tmp_path):
    expected = extract_features(model, X, ["tiny_fc1_fwd"], progress=False)["tiny_fc1_fwd"]
    dataset = mx.gluon.data.ArrayDataset(X, np.arange(len(X)))
    kinds = {
        "ndarray": mx.nd.array(X),
        "float64": X.astype(np.float64),
        "dataiter": mx.io.NDArrayIter(X, batch_size=10, last_batch_handle="pad"),
        "dataset": dataset,
        "loader": mx.gluon.data.DataLoader(dataset, batch_size=6),
    }
    for name, data in kinds.items():
        got = extract_features(model, data, ["tiny_fc1_fwd"], batch_size=5, progress=False)
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
    feats = extract_features(model, folder, ["tiny_out_fwd"], batch_size=4, progress=False)
    images = np.stack([folder[i][0] for i in range(len(folder))])
    expected = extract_features(model, images, ["tiny_out_fwd"], progress=False)
    np.testing.assert_allclose(feats["tiny_out_fwd"], expected["tiny_out_fwd"], atol=1e-6)


def test_stream_to_disk(model, tmp_path):
    in_memory = extract_features(model, X, LAYERS[1:3], batch_size=5, progress=False)
    out = tmp_path / "features"
    on_disk = extract_features(model, X, LAYERS[1:3], batch_size=5, out=out, progress=False)
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
    streamed = extract_features(model, it, ["tiny_fc1_fwd"], out=tmp_path / "it", progress=False)
    np.testing.assert_array_equal(streamed["tiny_fc1_fwd"], in_memory["tiny_fc1_fwd"])


def test_stream_to_disk_never_overwrites(model, tmp_path):
    out = tmp_path / "features"
    extract_features(model, X, ["tiny_fc1_fwd"], out=out, progress=False)
    before = (out / "tiny_fc1_fwd.npy").read_bytes()
    with pytest.raises(FileExistsError, match="already exists.*overwrite=True"):
        extract_features(model, X[:3], ["tiny_fc1_fwd"], out=out, progress=False)
    assert (out / "tiny_fc1_fwd.npy").read_bytes() == before
    extract_features(model, X[:3], ["tiny_fc1_fwd"], out=out, overwrite=True, progress=False)
    assert np.load(out / "tiny_fc1_fwd.npy").shape == (3, 10)


def test_failed_stream_leaves_no_files(model, tmp_path):
    bad = X.copy()
    bad[20] = np.nan
    it = mx.io.NDArrayIter(bad, batch_size=4)  # NaN found in the 6th batch, mid-run
    with pytest.raises(DataError, match=r"data\[20:23\] contains NaN"):
        extract_features(model, it, ["tiny_fc1_fwd"], out=tmp_path / "f", progress=False)
    assert os.listdir(tmp_path) == []


def test_model_without_input_shape_takes_it_from_data(tiny_checkpoint, tiny_net):
    model = SourceModel.from_checkpoint(*tiny_checkpoint[:2])
    feats = extract_features(model, X, ["tiny_out_fwd"], progress=False)
    np.testing.assert_allclose(feats["tiny_out_fwd"], tiny_net(mx.nd.array(X)).asnumpy(),
                               atol=1e-4)
    with pytest.raises(DataError, match=r"Inputs of shape \(2, 8, 8\) do not fit this model"):
        extract_features(model, np.zeros((2, 2, 8, 8), np.float32), ["tiny_out_fwd"],
                         progress=False)


def test_progress_bar_goes_to_stderr(model, capsys):
    extract_features(model, X, ["tiny_fc1_fwd"], batch_size=5, progress=True)
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
        extract_features(model, data, ["tiny_fc1_fwd"], progress=False)


def test_bad_data_raised_before_any_forward_pass(model, monkeypatch):
    calls = []
    import repurpose.features._extract as engine

    real = engine.feature_block
    monkeypatch.setattr(engine, "feature_block", lambda *a, **k: calls.append(1) or real(*a, **k))
    with pytest.raises(DataError):
        extract_features(model, np.zeros((4, 3, 8, 8), np.float32), ["tiny_fc1_fwd"],
                         progress=False)
    assert calls == []


# ---------------------------------------------------------------- float32 MKLDNN fusion
MKLDNN = mx.runtime.Features().is_enabled("MKLDNN")
needs_mkldnn = pytest.mark.skipif(not MKLDNN, reason="MXNet without MKLDNN is never fused")


class _Residual(mx.gluon.nn.HybridBlock):
    """conv + bn + relu, conv + bn, the input added back, relu: resnet's fusable patterns."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv1 = mx.gluon.nn.Conv2D(channels, 3, padding=1, use_bias=False)
            self.bn1 = mx.gluon.nn.BatchNorm()
            self.conv2 = mx.gluon.nn.Conv2D(channels, 3, padding=1, use_bias=False)
            self.bn2 = mx.gluon.nn.BatchNorm(scale=False)  # fix_gamma: gamma ignored

    def hybrid_forward(self, F, x):
        y = F.Activation(self.bn1(self.conv1(x)), act_type="relu")
        return F.Activation(self.bn2(self.conv2(y)) + x, act_type="relu")


def _residual_model():
    """A small real network with every pattern the MKLDNN backend fuses (8x8 inputs)."""
    net = mx.gluon.nn.HybridSequential(prefix="res_")
    with net.name_scope():
        net.add(mx.gluon.nn.Conv2D(8, 3, padding=1, prefix="stem_"))
        net.add(mx.gluon.nn.BatchNorm(prefix="stembn_"))
        net.add(mx.gluon.nn.Activation("relu", prefix="stemrelu_"))
        net.add(_Residual(8, prefix="block_"))
        net.add(mx.gluon.nn.Dense(16, activation="relu", prefix="fc_"))
    net.initialize(mx.init.Xavier(magnitude=2.0))
    net(mx.nd.zeros((1, 1, 8, 8)))
    rng = np.random.RandomState(3)
    for name, param in net.collect_params().items():
        # Batch-norm statistics far from (0, 1), so folding them into the weights matters.
        if name.endswith(("running_mean", "beta")):
            param.set_data(mx.nd.array(rng.uniform(-0.5, 0.5, param.shape)))
        elif name.endswith(("running_var", "gamma")):
            param.set_data(mx.nd.array(rng.uniform(0.5, 2.0, param.shape)))
    return SourceModel.from_gluon(net, (1, 8, 8))


def _fused_ops(block):
    ops = {n["op"] for n in json.loads(block._cached_graph[1].tojson())["nodes"]}
    return sorted(op for op in ops if op.startswith("_sg_mkldnn"))


def _max_relative_difference(got, expected):
    return np.abs(got - expected).max() / np.abs(expected).max()


#: Layers at the ends of the fused chains (conv + bn + relu, conv + bn + residual sum +
#: relu, dense + relu all fuse) and layers inside them too (a fused kernel must not swallow
#: an output that is asked for, so those chains fuse less).
FUSION_LAYERS = {
    "chain_ends": ["res_stemrelu_fwd", "res_block_activation1", "res_fc_relu_fwd"],
    "inside_chains": ["res_stem_fwd", "res_stembn_fwd", "res_stemrelu_fwd",
                      "res_block_activation0", "res_block_batchnorm1_fwd", "res_block__plus0",
                      "res_block_activation1", "res_fc_relu_fwd"],
}


@needs_mkldnn
@pytest.mark.parametrize("pool", [None, "avg", "max"])
@pytest.mark.parametrize("which", sorted(FUSION_LAYERS))
def test_fused_block_features_equal_unfused(pool, which):
    model = _residual_model()
    layers = FUSION_LAYERS[which]
    fused = feature_block(model, layers, pool, [mx.cpu()])
    plain = feature_block(model, layers, pool, [mx.cpu()], fuse=False)
    assert fused is not plain
    assert "_sg_mkldnn_conv" in _fused_ops(fused) and _fused_ops(plain) == []
    if which == "chain_ends":  # the residual sum went into the convolution's kernel
        assert '"with_sum"' in fused._cached_graph[1].tojson()
    for batch in (7, 2, 7):  # ragged batches, and back
        x = mx.nd.array(np.random.RandomState(batch).rand(batch, 1, 8, 8))
        for layer, got, expected in zip(layers, fused(x), plain(x)):
            got, expected = got.asnumpy(), expected.asnumpy()
            assert got.shape == expected.shape
            # Folding batch norm into the weights reorders float32 arithmetic, no more.
            assert _max_relative_difference(got, expected) <= 1e-5, layer


@needs_mkldnn
def test_fusion_that_changes_features_is_rejected(caplog):
    # MXNet 1.9.1 fuses dense + relu even when the dense output is asked for as well, and
    # then loses the relu (the relu layer's features come out equal to the dense layer's).
    # The check at build time must catch it and extract unfused, saying so.
    model = _residual_model()
    layers = ["res_fc_fwd", "res_fc_relu_fwd"]
    with caplog.at_level("WARNING", logger="repurpose.features._extract"):
        got = extract_features(model, X, layers, batch_size=7, progress=False)
    plain = feature_block(model, layers, None, [mx.cpu()], fuse=False)
    expected = [out.asnumpy() for out in plain(mx.nd.array(X))]
    for layer, want in zip(layers, expected):
        assert _max_relative_difference(got[layer], want) <= 1e-5, layer
    assert (got["res_fc_relu_fwd"] >= 0).all()
    block = feature_block(model, layers, None, [mx.cpu()])
    if not _fused_ops(block):  # rejected (MXNet 1.9.1), and said why
        assert "differ from unfused ones" in caplog.text and "res_fc_relu_fwd" in caplog.text


@needs_mkldnn
@pytest.mark.parametrize("contexts", ["cpu", "cpu:0,1", "cpu:1,2"])
def test_fused_extraction_equals_unfused_extraction(monkeypatch, contexts):
    model = _residual_model()
    layers = FUSION_LAYERS["chain_ends"]
    fused = extract_features(model, X, layers, batch_size=7, ctx=contexts, pool="avg",
                             progress=False)
    monkeypatch.setenv("REPURPOSE_MKLDNN_FUSION", "0")
    plain = extract_features(model, X, layers, batch_size=7, ctx=contexts, pool="avg",
                             progress=False)
    for layer in layers:
        assert _max_relative_difference(fused[layer], plain[layer]) <= 1e-5, layer


@needs_mkldnn
def test_fusion_turned_off_by_environment(monkeypatch, model):
    monkeypatch.setenv("REPURPOSE_MKLDNN_FUSION", "0")
    block = feature_block(model, ["tiny_relu1_fwd"], "avg", [mx.cpu()])
    assert _fused_ops(block) == []
    monkeypatch.setenv("REPURPOSE_MKLDNN_FUSION", "1")
    assert "_sg_mkldnn_conv" in _fused_ops(feature_block(model, ["tiny_relu1_fwd"], "avg",
                                                         [mx.cpu()]))


@needs_mkldnn
def test_rejected_fusion_falls_back_unfused_with_a_logged_reason(monkeypatch, model, tiny_net,
                                                                 caplog):
    import repurpose.features._extract as engine

    expected = extract_features(model, X, LAYERS, batch_size=7, progress=False)  # fused
    fresh = SourceModel.from_gluon(tiny_net, (1, 8, 8))  # the same network, an empty cache
    monkeypatch.setattr(engine, "FUSION_RTOL", -1.0)  # no fused block can pass the check
    with caplog.at_level("WARNING", logger="repurpose.features._extract"):
        got = extract_features(fresh, X, LAYERS, batch_size=7, progress=False)
    assert "MKLDNN fusion of the float32 block" in caplog.text
    assert "rejected" in caplog.text and "REPURPOSE_MKLDNN_FUSION=0" in caplog.text
    blocks = [b for k, b in fresh._cache.items() if k[0] == "feature_block"]
    assert len(blocks) == 1 and _fused_ops(blocks[0]) == []
    for layer in LAYERS:
        assert _max_relative_difference(got[layer], expected[layer]) <= 1e-5, layer


def test_overwrite_replaces_only_a_features_folder(tmp_path):
    # issue 13: overwrite=True replaced any folder at out, e.g. a project's own files.
    model = SourceModel.from_zoo("digits_cnn")
    X = np.zeros((4, 1, 8, 8), np.float32)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "main.py").write_text("print('mine')")
    with pytest.raises(FileExistsError, match="is not a features folder"):
        extract_features(model, X, ["fc1_relu_fwd"], out=mine, overwrite=True, progress=False)
    assert (mine / "main.py").read_text() == "print('mine')"
    out = tmp_path / "feats"
    extract_features(model, X, ["fc1_relu_fwd"], out=out, progress=False)
    again = extract_features(model, X[:2], ["fc1_relu_fwd"], out=out, overwrite=True,
                             progress=False)
    assert again["fc1_relu_fwd"].shape == (2, 64)
