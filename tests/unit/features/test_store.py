"""extract_to_store in this process (client=None) and FeatureStore: layout, resume, errors."""
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from repurpose.data import ImageFolder
from repurpose.exceptions import DataError, InvalidParameterError, UnknownLayerError
from repurpose.features import (ClusterError, FeatureStore, ShardedArray, StoreMismatchError,
                                connect_scheduler, extract_features, extract_to_store)
from repurpose.features import _sharded
from repurpose.persist import file_sha256
from repurpose.source import SourceModel

LAYERS = ["tiny_relu2_fwd", "tiny_fc1_fwd"]


@pytest.fixture
def model(tiny_net):
    return SourceModel.from_gluon(tiny_net, input_shape=(1, 8, 8))


@pytest.fixture
def other_model(make_tiny_cnn):
    return SourceModel.from_gluon(make_tiny_cnn(seed=1), input_shape=(1, 8, 8))


@pytest.fixture
def X(digits_images):
    return digits_images[0][:100]


def _files(folder):
    """Every file under ``folder`` (relative path -> bytes)."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, folder)] = handle.read()
    return found


def _make_folder(root, n_per_class=5, size=10):
    rng = np.random.RandomState(0)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(n_per_class):
            pixels = rng.randint(0, 255, (size, size), dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(root / cls / f"{i}.png")
    return root


# ---------------------------------------------------------------------- results and layout
def test_store_equals_extract_features(model, X, tmp_path):
    store = extract_to_store(model, X, LAYERS, tmp_path / "s", shard_size=32, batch_size=16,
                             progress=False)
    reference = extract_features(model, X, LAYERS, batch_size=16, progress=False)
    assert store.layers == LAYERS and store.n_samples == 100 and store.n_shards == 4
    for layer in LAYERS:
        # shard_size is a multiple of batch_size: the same batches, the same bytes.
        np.testing.assert_array_equal(store.to_numpy(layer), reference[layer])
        assert store[layer].shape == reference[layer].shape
    assert store.dims == {layer: reference[layer].shape[1] for layer in LAYERS}


def test_store_with_unaligned_shards_matches_to_rounding(model, X, tmp_path):
    store = extract_to_store(model, X, LAYERS, tmp_path / "s", shard_size=30, batch_size=16,
                             progress=False)
    reference = extract_features(model, X, LAYERS, batch_size=16, progress=False)
    for layer in LAYERS:
        np.testing.assert_allclose(store.to_numpy(layer), reference[layer], rtol=1e-5,
                                   atol=1e-6)


def test_manifest_records_shards_checksums_and_source(model, X, tmp_path):
    out = tmp_path / "s"
    extract_to_store(model, X, LAYERS, out, shard_size=40, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "repurpose.feature_store" and manifest["complete"]
    assert manifest["source_sha256"] == model.sha256
    assert manifest["layers"] == LAYERS and manifest["n_shards"] == 3
    assert [(s["index"], s["start"], s["stop"]) for s in manifest["shards"]] == \
        [(0, 0, 40), (1, 40, 80), (2, 80, 100)]
    for shard in manifest["shards"]:
        for layer, info in shard["files"].items():
            path = out / info["file"]
            assert info["nbytes"] == path.stat().st_size
            assert info["sha256"] == file_sha256(path)
            assert info["shape"][0] == shard["stop"] - shard["start"]
    assert not list(out.rglob("*.tmp"))
    loaded = FeatureStore.open(out).load_source()
    assert loaded.sha256 == model.sha256


def test_image_folder_records_sample_ids_labels_and_classes(model, tmp_path):
    root = _make_folder(tmp_path / "images")
    options = {"resize": 8, "crop": 8, "grayscale": True}
    store = extract_to_store(model, str(root), LAYERS, tmp_path / "s", shard_size=3,
                             image_options=options, progress=False)
    folder = ImageFolder(root, resize=8, crop=8, grayscale=True)
    assert store.sample_ids == [os.path.join(c, f"{i}.png") for c in ("cat", "dog")
                                for i in range(5)]
    assert store.labels.tolist() == [0] * 5 + [1] * 5 and store.classes == ["cat", "dog"]
    reference = extract_features(model, folder, LAYERS, batch_size=3, progress=False)
    np.testing.assert_array_equal(store.to_numpy(LAYERS[0]), reference[LAYERS[0]])
    # The same folder as an ImageFolder object gives the same store.
    again = extract_to_store(model, folder, LAYERS, tmp_path / "s2", shard_size=3,
                             progress=False)
    assert _files(tmp_path / "s") == _files(tmp_path / "s2")


def test_list_of_files_and_npy_inputs(model, X, tmp_path):
    root = _make_folder(tmp_path / "images")
    paths = sorted(str(p) for p in root.rglob("*.png"))
    store = extract_to_store(model, paths, LAYERS, tmp_path / "f", shard_size=4,
                             image_options={"grayscale": True, "resize": 8}, progress=False)
    assert store.sample_ids == paths and store.labels is None and store.n_shards == 3
    np.save(tmp_path / "x.npy", X)
    from_path = extract_to_store(model, str(tmp_path / "x.npy"), LAYERS, tmp_path / "n",
                                 shard_size=32, progress=False)
    memmap = np.load(tmp_path / "x.npy", mmap_mode="r")
    from_map = extract_to_store(model, memmap, LAYERS, tmp_path / "m", shard_size=32,
                                progress=False)
    np.testing.assert_array_equal(from_path.to_numpy(LAYERS[1]), from_map.to_numpy(LAYERS[1]))
    assert from_path.sample_ids == range(100)


# ---------------------------------------------------------------------- resume
def test_rerun_skips_complete_shards(model, X, tmp_path, monkeypatch):
    out = tmp_path / "s"
    extract_to_store(model, X, LAYERS, out, shard_size=25, progress=False)
    before = _files(out)
    calls = []
    original = _sharded.run_shard
    monkeypatch.setattr(_sharded, "run_shard",
                        lambda job, shard, source=None: calls.append(shard["index"])
                        or original(job, shard, source))
    store = extract_to_store(model, X, LAYERS, out, shard_size=25, progress=False)
    assert calls == [] and _files(out) == before and store.n_samples == 100


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "delete"])
def test_rerun_redoes_torn_shards(model, X, tmp_path, monkeypatch, damage):
    out = tmp_path / "s"
    extract_to_store(model, X, LAYERS, out, shard_size=25, progress=False)
    before = _files(out)
    manifest = json.loads((out / "manifest.json").read_text())
    victim = out / manifest["shards"][2]["files"][LAYERS[1]]["file"]
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "flip_byte":
        victim.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    else:
        victim.unlink()
    calls = []
    original = _sharded.run_shard
    monkeypatch.setattr(_sharded, "run_shard",
                        lambda job, shard, source=None: calls.append(shard["index"])
                        or original(job, shard, source))
    extract_to_store(model, X, LAYERS, out, shard_size=25, progress=False)
    assert calls == [2]
    assert _files(out) == before


def test_interrupted_run_resumes_to_the_same_store(model, X, tmp_path, monkeypatch):
    clean = tmp_path / "clean"
    extract_to_store(model, X, LAYERS, clean, shard_size=10, progress=False)
    out = tmp_path / "s"
    original = _sharded.run_shard
    monkeypatch.setattr(_sharded, "MANIFEST_INTERVAL_S", 0.0)

    def dies_at_shard_6(job, shard, source=None):
        if shard["index"] == 6:
            raise KeyboardInterrupt  # as if the driver was stopped here
        return original(job, shard, source)

    monkeypatch.setattr(_sharded, "run_shard", dies_at_shard_6)
    with pytest.raises(KeyboardInterrupt):
        extract_to_store(model, X, LAYERS, out, shard_size=10, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"]
    assert [s is not None for s in manifest["shards"]] == [True] * 6 + [False] * 4
    with pytest.raises(StoreMismatchError, match="unfinished: 4 of 10 shards missing"):
        FeatureStore.open(out)
    monkeypatch.setattr(_sharded, "run_shard", original)
    extract_to_store(model, X, LAYERS, out, shard_size=10, progress=False)
    assert _files(out) == _files(clean)


def test_overwrite_starts_over(model, other_model, X, tmp_path):
    out = tmp_path / "s"
    extract_to_store(model, X, LAYERS, out, shard_size=50, progress=False)
    store = extract_to_store(other_model, X, LAYERS, out, shard_size=50, overwrite=True,
                             progress=False)
    assert store.source_sha256 == other_model.sha256


# ---------------------------------------------------------------------- mismatches
def test_store_of_another_source_model_error(model, other_model, X, tmp_path):
    out = tmp_path / "s"
    extract_to_store(model, X, LAYERS, out, shard_size=50, progress=False)
    with pytest.raises(StoreMismatchError, match="written by another source model"):
        extract_to_store(other_model, X, LAYERS, out, shard_size=50, progress=False)


def test_store_with_another_layer_set_error(model, X, tmp_path):
    out = tmp_path / "s"
    extract_to_store(model, X, LAYERS, out, shard_size=50, progress=False)
    with pytest.raises(StoreMismatchError, match=r"holds layers \['tiny_relu2_fwd', "
                                                 r"'tiny_fc1_fwd'\], not \['tiny_fc1_fwd'\]"):
        extract_to_store(model, X, ["tiny_fc1_fwd"], out, shard_size=50, progress=False)


@pytest.mark.parametrize("change, match", [
    ({"shard_size": 20}, "shard_size 50"),
    ({"pool": "avg"}, "pool None"),
    ({"X": "other"}, "input"),
    ({"X": "shorter"}, "number of samples"),
])
def test_store_with_other_settings_error(model, X, tmp_path, change, match):
    out = tmp_path / "s"
    extract_to_store(model, X, LAYERS, out, shard_size=50, progress=False)
    kwargs = {"shard_size": change.get("shard_size", 50), "pool": change.get("pool")}
    data = {"other": X[::-1].copy(), "shorter": X[:60]}.get(change.get("X"), X)
    with pytest.raises(StoreMismatchError, match=match):
        extract_to_store(model, data, LAYERS, out, progress=False, **kwargs)


def test_out_that_is_not_a_store_error(model, X, tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not a feature store"):
        extract_to_store(model, X, LAYERS, tmp_path / "s", progress=False)
    with pytest.raises(FileExistsError, match="only deletes feature stores"):
        extract_to_store(model, X, LAYERS, tmp_path / "s", overwrite=True, progress=False)
    assert (tmp_path / "s" / "notes.txt").read_text() == "mine"


def test_bad_input_is_refused_before_anything_is_written(model, X, tmp_path):
    out = tmp_path / "s"
    with pytest.raises(UnknownLayerError, match="tiny_fc1_fwd"):
        extract_to_store(model, X, ["tiny_fc1"], out, progress=False)
    with pytest.raises(DataError, match=r"expects input shape \(1, 8, 8\)"):
        extract_to_store(model, np.zeros((4, 1, 6, 6), np.float32), LAYERS, out,
                         progress=False)
    with pytest.raises(InvalidParameterError, match="shard_size"):
        extract_to_store(model, X, LAYERS, out, shard_size=0, progress=False)
    with pytest.raises(TypeError, match="extract_to_store takes an image folder"):
        extract_to_store(model, {"x": X}, LAYERS, out, progress=False)
    with pytest.raises(InvalidParameterError, match="not to arrays"):
        extract_to_store(model, X, LAYERS, out, image_options={"resize": 8}, progress=False)
    with pytest.raises(InvalidParameterError, match="unknown key.*'rezise'.*resize"):
        extract_to_store(model, [str(tmp_path)], LAYERS, out, image_options={"rezise": 8},
                         progress=False)
    with pytest.raises(FileNotFoundError, match="do not exist"):
        extract_to_store(model, [str(tmp_path / "nope.png")], LAYERS, out, progress=False)
    assert not out.exists()


@pytest.mark.parametrize("change, match", [
    ({"format": "repurpose.estimator"}, "is not a feature-store file"),
    ({"format_version": 2}, "format_version 2, newer than this repurpose"),
    (None, "is not valid JSON"),
])
def test_damaged_or_newer_manifest_error(model, X, tmp_path, change, match):
    out = tmp_path / "s"
    extract_to_store(model, X, LAYERS, out, shard_size=50, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    text = json.dumps(dict(manifest, **change)) if change else "{truncated"
    (out / "manifest.json").write_text(text)
    with pytest.raises(StoreMismatchError, match=match):
        FeatureStore.open(out)
    with pytest.raises(StoreMismatchError, match=match):
        extract_to_store(model, X, LAYERS, out, shard_size=50, progress=False)


def test_open_errors(model, X, tmp_path):
    with pytest.raises(FileNotFoundError, match="No feature store"):
        FeatureStore.open(tmp_path)
    out = tmp_path / "s"
    store = extract_to_store(model, X, LAYERS, out, shard_size=50, progress=False)
    with pytest.raises(UnknownLayerError, match="no layer 'tiny_fc1'.*Did you mean "
                                                "'tiny_fc1_fwd'"):
        store["tiny_fc1"]
    victim = next((out / "tiny_fc1_fwd").glob("*.npy"))
    victim.write_bytes(victim.read_bytes() + b"x")
    with pytest.raises(StoreMismatchError, match="is torn"):
        FeatureStore.open(out)
    victim.write_bytes(victim.read_bytes()[:-3] + b"yy")
    with pytest.raises(StoreMismatchError, match="does not match its SHA-256"):
        FeatureStore.open(out).verify()


def test_unreachable_scheduler_error_is_quick():
    started = time.monotonic()
    with pytest.raises(ClusterError, match="No Dask scheduler answered at "
                                           "'tcp://127.0.0.1:9'"):
        connect_scheduler("tcp://127.0.0.1:9", timeout=1.0)
    assert time.monotonic() - started < 10


# ---------------------------------------------------------------------- reading
def test_sharded_array_indexing_matches_numpy(tmp_path):
    rng = np.random.RandomState(0)
    full = rng.rand(23, 4).astype(np.float32)
    bounds = [0, 5, 10, 20, 23]
    paths = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        paths.append(str(tmp_path / f"{i}.npy"))
        np.save(paths[-1], full[a:b])
    array = ShardedArray(paths, [(b - a, 4) for a, b in zip(bounds, bounds[1:])])
    assert array.shape == (23, 4) and len(array) == 23
    mask = rng.rand(23) > 0.5
    for key in [3, -1, slice(None), slice(4, 12), slice(2, 21, 3), slice(20, 3, -2),
                [22, 0, 7, 7], np.array([5, 4]), mask, (slice(3, 17), 2),
                ([1, 21], slice(1, 3)), (6, 0), slice(30, 40)]:
        np.testing.assert_array_equal(array[key], full[key])
    np.testing.assert_array_equal(np.asarray(array), full)
    batches = list(array.iter_batches(7))
    assert [len(b) for b in batches] == [7, 7, 7, 2]
    np.testing.assert_array_equal(np.concatenate(batches), full)
    for bad in (23, -24, [0, 23]):
        with pytest.raises(IndexError):
            array[bad]


def test_sgd_head_fits_batch_by_batch(digits_images, tmp_path):
    """A linear SVM trained by SGD over the store's batches: the same model as in memory."""
    from sklearn.linear_model import SGDClassifier

    X, y = digits_images
    model = SourceModel.from_zoo("digits_cnn")
    store = extract_to_store(model, X, ["fc1_relu_fwd"], tmp_path / "s", shard_size=256,
                             progress=False)
    streamed = SGDClassifier(loss="hinge", random_state=0)
    in_memory = SGDClassifier(loss="hinge", random_state=0)
    features = store.to_numpy("fc1_relu_fwd")
    for epoch in range(3):
        for rows, Xb in store.iter_batches(batch_size=100):
            streamed.partial_fit(Xb, y[rows], classes=np.arange(10))
            in_memory.partial_fit(features[rows], y[rows], classes=np.arange(10))
    np.testing.assert_array_equal(streamed.coef_, in_memory.coef_)
    assert streamed.score(features, y) > 0.8
