import json
import os
import pathlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import repurpose
from repurpose import LogisticRepurposer, SourceModel
from repurpose.exceptions import ModelFileError
from repurpose.heads import LogisticHead, SvmHead
from repurpose.persist import _save as save_module


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import make_blobs

    X, y = make_blobs(60, n_features=4, centers=3, random_state=1)
    return X, np.array(["a", "b", "c"])[y]


@pytest.fixture
def saved_head(tmp_path, data):
    X, y = data
    head = SvmHead(C=2.0, random_state=3).fit(X, y)
    return head, head.save(tmp_path / "head")


def test_head_round_trip(saved_head, data):
    head, path = saved_head
    loaded = repurpose.load(path)
    assert type(loaded) is SvmHead and loaded.get_params() == head.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(data[0]), head.predict_proba(data[0]))
    np.testing.assert_array_equal(loaded.classes_, head.classes_)
    manifest = json.loads(pathlib.Path(path, "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["class"] == "SvmHead"
    assert manifest["repurpose_version"] == repurpose.__version__


def test_repurposer_round_trip_embeds_source(tmp_path):
    from repurpose.data import load_digits_images

    X, y = load_digits_images(classes=range(5, 10))
    source = SourceModel.from_zoo("digits_cnn")
    model = LogisticRepurposer(source, layers=("fc1_relu_fwd", "relu3_fwd"), pool="avg",
                               C=0.5).fit(X[:80], y[:80])
    path = model.save(tmp_path / "model")
    assert sorted(os.listdir(path)) == ["arrays.npz", "manifest.json", "source"]
    loaded = repurpose.load(path)
    assert loaded.source.sha256 == source.sha256 and loaded.layers == ("fc1_relu_fwd",
                                                                       "relu3_fwd")
    np.testing.assert_array_equal(loaded.predict_proba(X[80:]), model.predict_proba(X[80:]))


def test_never_overwrites(saved_head, data):
    head, path = saved_head
    before = pathlib.Path(path, "arrays.npz").read_bytes()
    other = LogisticHead().fit(*data)
    with pytest.raises(FileExistsError, match="already exists.*overwrite=True"):
        other.save(path)
    assert pathlib.Path(path, "arrays.npz").read_bytes() == before
    other.save(path, overwrite=True)
    assert type(repurpose.load(path)) is LogisticHead
    assert [f for f in os.listdir(os.path.dirname(path)) if f.startswith(".")] == []


def _edit_manifest(path, change):
    file = pathlib.Path(path, "manifest.json")
    manifest = json.loads(file.read_text())
    change(manifest)
    file.write_text(json.dumps(manifest))


def test_future_version_error(saved_head):
    _, path = saved_head
    _edit_manifest(path, lambda m: m.update(format_version=7))
    with pytest.raises(ModelFileError, match=r"format_version 7, newer than this repurpose "
                                             r".* reads \(1\)\. Upgrade"):
        repurpose.load(path)


def test_corrupted_arrays_error(saved_head):
    _, path = saved_head
    file = pathlib.Path(path, "arrays.npz")
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match the SHA-256"):
        repurpose.load(path)


def test_truncated_manifest_error(saved_head):
    _, path = saved_head
    file = pathlib.Path(path, "manifest.json")
    text = file.read_text()
    file.write_text(text[: len(text) // 2])
    with pytest.raises(ModelFileError, match="not valid JSON"):
        repurpose.load(path)


def test_unknown_class_error(saved_head):
    _, path = saved_head
    _edit_manifest(path, lambda m: m.update({"class": "os.system"}))
    with pytest.raises(ValueError, match="holds a 'os.system', which this version of "
                                         "repurpose cannot load"):
        repurpose.load(path)


def test_missing_folder_and_not_a_save_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        repurpose.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="no manifest.json"):
        repurpose.load(tmp_path / "empty")


def test_tampered_source_model_error(tmp_path):
    from repurpose.data import load_digits_images

    X, y = load_digits_images(classes=[5, 6])
    model = LogisticRepurposer(SourceModel.from_zoo("digits_cnn")).fit(X[:40], y[:40])
    path = model.save(tmp_path / "m")
    other = SourceModel.from_zoo("digits_cnn").reinitialize(["fc2_fwd"], random_state=0)
    other.save_checkpoint(os.path.join(path, "source", "model"), overwrite=True)
    with pytest.raises(ModelFileError, match="does not match the SHA-256 recorded"):
        repurpose.load(path)


def test_migrations_run_step_by_step(saved_head, monkeypatch, data):
    head, path = saved_head
    calls = []

    def v1_to_v2(manifest):
        calls.append(1)
        manifest["state"]["migrated"] = True
        return manifest

    monkeypatch.setattr(save_module, "FORMAT_VERSION", 2)
    monkeypatch.setattr(save_module, "MIGRATIONS", [(1, v1_to_v2)])
    loaded = repurpose.load(path)
    assert calls == [1]
    np.testing.assert_array_equal(loaded.predict_proba(data[0]), head.predict_proba(data[0]))


def test_unsaveable_param_error(tmp_path, data):
    head = LogisticHead(random_state=np.random.RandomState(0)).fit(*data)
    with pytest.raises(TypeError, match="'random_state' is a RandomState.*random_state=0"):
        head.save(tmp_path / "x")
    assert not os.path.exists(tmp_path / "x")


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=5)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5),
                                                                       children, max_size=3),
    max_leaves=8)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["format_version", "class", "params", "state",
                                        "arrays", "source", "x"]), json_value, max_size=8),
       st.booleans())
def test_arbitrary_manifests_fail_cleanly(tmp_path_factory, fields, versioned):
    manifest = {"format": "repurpose.estimator", "format_version": 1} if versioned else {}
    manifest.update(fields)
    path = tmp_path_factory.mktemp("m")
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError):
        repurpose.load(path)


def test_overwrite_replaces_only_a_saved_model(tmp_path):
    # issue 13: save(path, overwrite=True) deleted any folder, e.g. a project's own files.
    from repurpose.heads import LogisticHead

    head = LogisticHead().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "main.py").write_text("print('mine')")
    (project / "data" / "train.csv").write_text("x,y\n")
    with pytest.raises(FileExistsError, match="is not a saved model"):
        head.save(project, overwrite=True)
    assert (project / "main.py").read_text() == "print('mine')"
    assert (project / "data" / "train.csv").exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(FileExistsError, match="is not a saved model"):
        head.save(a_file, overwrite=True)
    assert a_file.read_text() == "mine"
    saved = head.save(tmp_path / "head")
    head.save(saved, overwrite=True)  # a saved model is replaced
    assert sorted(p.name for p in (tmp_path / "head").iterdir()) == ["arrays.npz",
                                                                   "manifest.json"]


# ---------------------------------------------------------------------- issue 13
@pytest.fixture(scope="module")
def saved_layers_model(tmp_path_factory):
    """A LogisticRepurposer on two layers: params.layers, state.layers_/layer_dims_ and the
    head's per-feature standardizer arrays must agree."""
    from repurpose.data import load_digits_images

    X, y = load_digits_images(classes=[5, 6])
    model = LogisticRepurposer(SourceModel.from_zoo("digits_cnn"),
                               layers=("fc1_relu_fwd", "relu3_fwd"), pool="avg")
    return model.fit(X[:40], y[:40]).save(tmp_path_factory.mktemp("saved") / "model")


@pytest.fixture
def layers_model(saved_layers_model, tmp_path):
    import shutil

    return shutil.copytree(saved_layers_model, tmp_path / "model")


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(comment="mine"), r"comment: unknown key"),
    (lambda m: m.update(clas="LogisticRepurposer"), r"clas: unknown key.*'class'"),
    (lambda m: m["arrays"].update(compression="zip"), r"arrays\.compression: unknown key"),
    (lambda m: m["source"].update(url="http://x"), r"source\.url: unknown key"),
    (lambda m: m["arrays"].update(names=["head/coef_"]),
     r"arrays\.names lists 1 array.*arrays\.npz holds 5.*head/classes_"),
])
def test_unknown_keys_and_array_names_error(layers_model, change, match):
    _edit_manifest(layers_model, change)
    with pytest.raises(ModelFileError, match=match):
        repurpose.load(layers_model)


def _set_params_layers(layers):
    return lambda m: m["params"].update(layers={"__tuple__": layers})


@pytest.mark.parametrize("change, match", [
    # A layer named in params whose features the saved head never saw.
    (_set_params_layers(["fc1_relu_fwd", "relu3_fwd", "relu2_fwd"]),
     r"params\.layers names \['fc1_relu_fwd', 'relu3_fwd', 'relu2_fwd'\].*state\.layers_ "
     r"\['fc1_relu_fwd', 'relu3_fwd'\]"),
    # Saved arrays of a layer that params does not name.
    (_set_params_layers(["fc1_relu_fwd"]), r"params\.layers names \['fc1_relu_fwd'\]"),
    (lambda m: m["params"].update(layers="relu3_fwd"), r"params\.layers names \['relu3_fwd'\]"),
    (lambda m: m["state"]["layer_dims_"].pop("relu3_fwd"),
     r"state\.layer_dims_ has no width for layer\(s\) \['relu3_fwd'\]"),
    (lambda m: m["state"]["layer_dims_"].update(relu2_fwd=32),
     r"state\.layer_dims_ has widths of layer\(s\) \['relu2_fwd'\] not in "),
    (lambda m: m["state"]["layer_dims_"].update(relu3_fwd=60),
     r"add up to 124.*n_features_in_ is 128"),
    (lambda m: (m["state"]["layer_dims_"].update(relu3_fwd=60),
                m["state"]["head"].update(n_features_in_=124)),
     r"'head/mean_' has 128 features, the layers' widths add up to 124"),
])
def test_params_layers_that_disagree_with_the_arrays_error(layers_model, change, match):
    _edit_manifest(layers_model, change)
    with pytest.raises(ModelFileError, match=match):
        repurpose.load(layers_model)


def test_layers_model_still_loads(layers_model):
    assert repurpose.load(layers_model).layers_ == ["fc1_relu_fwd", "relu3_fwd"]
    _edit_manifest(layers_model, lambda m: m["params"].update(layers=None))
    assert repurpose.load(layers_model).layers_ == ["fc1_relu_fwd", "relu3_fwd"]


def test_leftovers_of_a_killed_save_are_removed(saved_head, data, tmp_path, caplog):
    import logging

    _, path = saved_head
    parent = pathlib.Path(path).parent
    leftover = parent / ".head.k1ll3d00.tmp"  # what a save killed mid-write leaves
    (leftover / "source").mkdir(parents=True)
    (leftover / "arrays.npz").write_bytes(b"\0" * 1000)
    other = parent / ".header.abcdefgh.tmp"  # a save of another folder: not ours to remove
    other.mkdir()
    with caplog.at_level(logging.INFO, logger="repurpose"):
        LogisticHead().fit(*data).save(path, overwrite=True)
    assert not leftover.exists() and other.exists()
    assert ".head.k1ll3d00.tmp" in caplog.text and "Removed" in caplog.text
    assert sorted(os.listdir(parent)) == [".header.abcdefgh.tmp", "head"]
