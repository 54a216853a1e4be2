"""issue 13, case 5: every path read from a file the toolkit wrote stays inside that file's
folder (after ``..`` and symlinks; absolute paths refused), or loading stops with
ModelFileError naming the file, the key and the value."""
import json
import os
import shutil

import numpy as np
import pytest

import repurpose
from repurpose import LogisticRepurposer, SourceModel
from repurpose.exceptions import ModelFileError
from repurpose.features import FeatureStore, extract_to_store
from repurpose.persist import confined_path


@pytest.fixture(scope="module")
def saved_repurposer(tmp_path_factory):
    from repurpose.data import load_digits_images

    X, y = load_digits_images(classes=[5, 6])
    model = LogisticRepurposer(SourceModel.from_zoo("digits_cnn")).fit(X[:40], y[:40])
    return model.save(tmp_path_factory.mktemp("saved") / "model")


@pytest.fixture
def model_copy(saved_repurposer, tmp_path):
    """A fresh copy of the saved repurposer, in ``tmp_path/work/model``, with a complete
    source checkpoint one folder up (``tmp_path/work/outside``) for the manifest to point at."""
    work = tmp_path / "work"
    shutil.copytree(saved_repurposer, work / "model")
    shutil.copytree(os.path.join(saved_repurposer, "source"), work / "outside")
    return work / "model"


def _edit(path, change, name="manifest.json"):
    file = path / name
    document = json.loads(file.read_text())
    change(document)
    file.write_text(json.dumps(document))


def test_confined_path_ok(tmp_path):
    assert confined_path(tmp_path, "a/b.npy", "m.json", "file") == str(tmp_path / "a/b.npy")
    assert confined_path(tmp_path, "a/../b.npy", "m.json", "file") == str(tmp_path / "b.npy")


@pytest.mark.parametrize("value, why", [("../x.npy", "outside"), ("a/../../x", "outside"),
                                        ("/etc/passwd", "absolute"), ("", "not a relative"),
                                        (3, "not a relative")])
def test_confined_path_error(tmp_path, value, why):
    with pytest.raises(ModelFileError) as info:
        confined_path(tmp_path, value, "'m.json'", "shards[0].file")
    message = str(info.value)
    assert "'m.json'" in message and "shards[0].file" in message and repr(value) in message
    assert why in message


def test_confined_path_follows_symlinks(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "folder").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "folder" / "link")
    with pytest.raises(ModelFileError, match="outside"):
        confined_path(tmp_path / "folder", "link/x.npy", "m.json", "file")


@pytest.mark.parametrize("prefix", ["../outside/model", "ABSOLUTE"])
def test_saved_model_source_prefix_outside_error(model_copy, prefix):
    value = str(model_copy.parent / "outside" / "model") if prefix == "ABSOLUTE" else prefix
    assert SourceModel.from_checkpoint(model_copy.parent / "outside" / "model")  # loadable
    _edit(model_copy, lambda m: m["source"].update(prefix=value))
    with pytest.raises(ModelFileError) as info:
        repurpose.load(model_copy)
    message = str(info.value)
    assert "manifest.json" in message and "source.prefix" in message and repr(value) in message


def test_saved_model_source_folder_symlinked_outside_error(model_copy):
    shutil.rmtree(model_copy / "source")
    os.symlink(model_copy.parent / "outside", model_copy / "source")
    with pytest.raises(ModelFileError, match=r"source\.prefix.*'source/model'"):
        repurpose.load(model_copy)


def test_saved_model_arrays_file_symlinked_outside_error(model_copy):
    os.replace(model_copy / "arrays.npz", model_copy.parent / "arrays.npz")
    os.symlink(model_copy.parent / "arrays.npz", model_copy / "arrays.npz")
    with pytest.raises(ModelFileError, match=r"arrays\.file.*'arrays\.npz'.*outside"):
        repurpose.load(model_copy)


def test_saved_model_inside_its_folder_still_loads(model_copy):
    assert repurpose.load(model_copy).classes_.tolist() == [5, 6]


@pytest.fixture
def store(tmp_path):
    X = np.random.RandomState(0).rand(12, 1, 8, 8).astype("float32")
    out = tmp_path / "deep" / "store"
    out.parent.mkdir()
    extract_to_store(SourceModel.from_zoo("digits_cnn"), X, ["fc1_relu_fwd"], out,
                     shard_size=8, progress=False)
    return out


def test_store_shard_file_outside_error(store, tmp_path):
    secret = tmp_path / "secret.npy"
    np.save(secret, np.full((8, 64), 7.0, np.float32))

    def point_outside(manifest):
        info = manifest["shards"][0]["files"]["fc1_relu_fwd"]
        info.update(file="../../secret.npy", nbytes=os.path.getsize(secret))
    _edit(store, point_outside)
    with pytest.raises(ModelFileError) as info:
        FeatureStore.open(store)
    message = str(info.value)
    assert "manifest.json" in message and "'../../secret.npy'" in message
    assert "shards[0].files.fc1_relu_fwd.file" in message
    # A rerun of the call that wrote it reads the manifest too: refused the same way.
    with pytest.raises(ModelFileError, match=r"secret\.npy"):
        extract_to_store(SourceModel.from_zoo("digits_cnn"),
                         np.random.RandomState(0).rand(12, 1, 8, 8).astype("float32"),
                         ["fc1_relu_fwd"], store, shard_size=8, progress=False)


def test_store_shard_file_absolute_error(store, tmp_path):
    _edit(store, lambda m: m["shards"][1]["files"]["fc1_relu_fwd"].update(
        file=str(tmp_path / "secret.npy")))
    with pytest.raises(ModelFileError, match=r"shards\[1\]\.files\.fc1_relu_fwd\.file.*"
                                             r"absolute"):
        FeatureStore.open(store)
