"""Tests of repurpose.zoo: the project's checkpoints, the Gluon/gluoncv names, local weight
files and the errors for missing, tampered or mismatched files.

The project-model tests are parametrised over ``list_models(source='repurpose')``, so a new
zoo model is tested without editing this file (register its source data in SOURCE_DATA).
"""
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from repurpose import zoo
from repurpose.zoo import _cards
from repurpose.exceptions import InvalidParameterError, MissingWeightsError, ModelFileError

PROJECT_MODELS = zoo.list_models(source="repurpose")


def _load_digits_source(card):
    """Images and labels of load_digits(), preprocessed as the card says."""
    digits = load_digits()
    X = (digits.images / card["pixel_scale"]).astype(np.float32)[:, None, :, :]
    return X, digits.target


# card['source_dataset'] -> loader returning (X, y) of the whole dataset.
SOURCE_DATA = {"sklearn.datasets.load_digits": _load_digits_source}


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _files(name):
    found = zoo.resolve_zoo_model(name)
    return found["symbol_file"], found["params_file"], found["card"]


@pytest.fixture
def no_network(monkeypatch):
    """Fail any attempt to open a network connection or resolve a host name."""
    def refuse(*args, **kwargs):
        raise AssertionError("repurpose.zoo tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def zoo_copy(tmp_path, monkeypatch):
    """A copy of the project's zoo folder that tests may damage; zoo reads it instead."""
    copy = tmp_path / "model_zoo"
    shutil.copytree(_cards._zoo_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(_cards, "_zoo_dir", lambda: copy)
    return copy


# ------------------------------------------------------------------------------------------
# Project models
# ------------------------------------------------------------------------------------------

def test_project_zoo_has_digits_cnn():
    assert "digits_cnn" in PROJECT_MODELS


def test_project_zoo_is_small():
    total = sum(p.stat().st_size for p in _cards._zoo_dir().rglob("*") if p.is_file()
                and "__pycache__" not in p.parts)
    assert total < 5 * 2**20


@pytest.mark.parametrize("name", PROJECT_MODELS)
def test_card_has_required_keys(name):
    card = zoo.get_model_card(name)
    assert set(zoo.REQUIRED_CARD_KEYS) <= set(card)
    assert card["name"] == name and card["family"] == "repurpose"
    assert card["format_version"] == 1
    assert len(card["input_shape"]) == 3 and all(int(d) > 0 for d in card["input_shape"])
    assert len(card["class_names"]) == len(card["source_classes"])
    assert card["n_test"] == len(card["source_split"]["test_indices"])
    assert set(card["sha256"]) == {"symbol", "params"} == set(card["files"])


@pytest.mark.parametrize("name", PROJECT_MODELS)
def test_sha256_matches_card(name):
    symbol_file, params_file, card = _files(name)
    assert _sha256(symbol_file) == card["sha256"]["symbol"]
    assert _sha256(params_file) == card["sha256"]["params"]


@pytest.mark.parametrize("name", PROJECT_MODELS)
def test_checkpoint_loads_with_symbol_and_ndarray_load(name):
    symbol_file, params_file, card = _files(name)
    sym = mx.sym.load(symbol_file)
    saved = mx.nd.load(params_file)
    args = {k[4:] for k in saved if k.startswith("arg:")}
    aux = {k[4:] for k in saved if k.startswith("aux:")}
    assert args == set(sym.list_arguments()) - {card["input_name"]}
    assert aux == set(sym.list_auxiliary_states())
    outputs = sym.get_internals().list_outputs()
    for layer in (card["feature_layer"], card["classifier_layer"]):
        assert layer + "_output" in outputs
    assert sym.list_outputs() == [card["classifier_layer"] + "_output"]


@pytest.mark.parametrize("name", PROJECT_MODELS)
def test_committed_weights_reproduce_source_accuracy(name):
    symbol_file, params_file, card = _files(name)
    assert card["source_dataset"] in SOURCE_DATA, "register the model's data in SOURCE_DATA"
    X, y = SOURCE_DATA[card["source_dataset"]](card)
    test_idx = np.asarray(card["source_split"]["test_indices"])
    assert set(np.unique(y[test_idx])) == set(card["source_classes"])

    sym = mx.sym.load(symbol_file)
    saved = mx.nd.load(params_file)
    args = {k[4:]: v for k, v in saved.items() if k.startswith("arg:")}
    aux = {k[4:]: v for k, v in saved.items() if k.startswith("aux:")}
    args[card["input_name"]] = mx.nd.array(X[test_idx])
    exe = sym.bind(mx.cpu(), args=args, aux_states=aux, grad_req="null")
    scores = exe.forward(is_train=False)[0].asnumpy()
    predicted = np.asarray(card["source_classes"])[scores.argmax(axis=1)]
    n_correct = int((predicted == y[test_idx]).sum())
    assert n_correct == card["n_test_correct"]
    assert n_correct / len(test_idx) == pytest.approx(card["source_test_accuracy"])


def test_digits_cnn_split_follows_recipe_and_holds_out_target_classes():
    card = zoo.get_model_card("digits_cnn")
    y = load_digits().target
    source_idx = np.flatnonzero(np.isin(y, card["source_classes"]))
    train_idx, test_idx = train_test_split(
        source_idx, test_size=card["source_split"]["test_size"], stratify=y[source_idx],
        random_state=card["seed"])
    assert sorted(test_idx.tolist()) == card["source_split"]["test_indices"]
    assert (card["n_train"], card["n_test"]) == (len(train_idx), len(test_idx))
    assert not set(card["source_classes"]) & set(card["target_classes"])
    assert card["source_test_accuracy"] >= 0.97


def test_resolve_checkpoint_ok():
    found = zoo.resolve_zoo_model("digits_cnn")
    assert found["kind"] == "checkpoint"
    assert found["input_shape"] == (1, 8, 8)
    assert os.path.isfile(found["symbol_file"]) and os.path.isfile(found["params_file"])


def test_resolve_checkpoint_not_pretrained_has_no_params():
    found = zoo.resolve_zoo_model("digits_cnn", pretrained=False)
    assert found["params_file"] is None and os.path.isfile(found["symbol_file"])


def test_resolve_checkpoint_tampered_params_error(zoo_copy):
    params = zoo_copy / "digits_cnn" / "digits_cnn-0000.params"
    data = bytearray(params.read_bytes())
    data[-1] ^= 0xFF
    params.write_bytes(bytes(data))
    expected = zoo.get_model_card("digits_cnn")["sha256"]["params"]
    with pytest.raises(ModelFileError, match=rf"digits_cnn-0000\.params has SHA-256 "
                                             rf"[0-9a-f]{{64}}, but .* records {expected}"):
        zoo.resolve_zoo_model("digits_cnn")


def test_resolve_checkpoint_tampered_symbol_error(zoo_copy):
    symbol = zoo_copy / "digits_cnn" / "digits_cnn-symbol.json"
    symbol.write_text(symbol.read_text() + "\n")
    with pytest.raises(ModelFileError, match=r"digits_cnn-symbol\.json has SHA-256"):
        zoo.resolve_zoo_model("digits_cnn")


def test_resolve_checkpoint_missing_params_error(zoo_copy):
    (zoo_copy / "digits_cnn" / "digits_cnn-0000.params").unlink()
    with pytest.raises(MissingWeightsError, match=r"params file of zoo model 'digits_cnn' "
                                                  r"is missing.*train_digits_cnn\.py"):
        zoo.resolve_zoo_model("digits_cnn")


@pytest.mark.parametrize("key, value", [("params", "../digits_cnn_elsewhere.params"),
                                        ("symbol", "/etc/digits_cnn-symbol.json")])
def test_card_file_outside_its_folder_error(zoo_copy, key, value):
    # A card whose files lead out of its folder is refused even where the file is there.
    folder = zoo_copy / "digits_cnn"
    shutil.copy(folder / "digits_cnn-0000.params", zoo_copy / "digits_cnn_elsewhere.params")
    card_path = folder / "model_card.json"
    card = json.loads(card_path.read_text())
    card["files"][key] = value
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelFileError, match=rf"model_card\.json: files\.{key} is '{value}'"):
        zoo.resolve_zoo_model("digits_cnn")


def test_resolve_checkpoint_weights_override_ok(tmp_path):
    own = zoo.resolve_zoo_model("digits_cnn")["params_file"]
    other = tmp_path / "finetuned.params"
    shutil.copy(own, other)
    found = zoo.resolve_zoo_model("digits_cnn", weights=other)
    assert found["params_file"] == str(other)


def test_card_of_newer_format_error(zoo_copy):
    card_path = zoo_copy / "digits_cnn" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["format_version"] = 99
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelFileError, match=r"format_version 99, newer than this repurpose .* reads \(1\)"):
        zoo.get_model_card("digits_cnn")


def test_card_missing_keys_error(zoo_copy):
    card_path = zoo_copy / "digits_cnn" / "model_card.json"
    card = json.loads(card_path.read_text())
    del card["feature_layer"]
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelFileError, match="lacks the keys 'feature_layer'"):
        zoo.get_model_card("digits_cnn")


def test_get_model_card_returns_a_copy():
    zoo.get_model_card("digits_cnn")["input_shape"].append(99)
    zoo.get_model_card("resnet18_v1")["mean"].append(99)
    assert zoo.get_model_card("digits_cnn")["input_shape"] == [1, 8, 8]
    assert len(zoo.get_model_card("resnet18_v1")["mean"]) == 3


# ------------------------------------------------------------------------------------------
# Names
# ------------------------------------------------------------------------------------------

def test_list_models_sources():
    gluon_names = zoo.list_models(source="gluon")
    gluoncv_names = zoo.list_models(source="gluoncv")
    everything = zoo.list_models()
    assert len(gluon_names) == 34 and "resnet18_v1" in gluon_names
    assert "resnet18_v1b" in gluoncv_names and "resnet18_v1b" not in gluon_names
    assert set(gluon_names) <= set(gluoncv_names)
    assert everything[:len(PROJECT_MODELS)] == PROJECT_MODELS
    assert len(everything) == len(set(everything))
    assert set(everything) == set(PROJECT_MODELS) | set(gluon_names) | set(gluoncv_names)


@pytest.mark.parametrize("name", [
    "ssd_300_vgg16_atrous_voc", "yolo3_darknet53_coco", "faster_rcnn_resnet50_v1b_voc",
    "fcn_resnet50_voc", "deeplab_resnet101_ade", "hrnet_w18_small_v1_s",
    "simple_pose_resnet18_v1b", "i3d_resnet50_v1_kinetics400", "resnet50_v1_int8",
    "resnet18_v1b_0.89", "monodepth2_resnet18_kitti_stereo_640x192",
])
def test_gluoncv_non_classification_names_are_left_out(name):
    assert name not in zoo.list_models(source="gluoncv")


def test_list_models_bad_source_error():
    with pytest.raises(InvalidParameterError, match=r"source must be None or one of .*"
                                                    r"Did you mean 'gluoncv'"):
        zoo.list_models(source="gluon-cv")


def test_unknown_name_error_lists_close_matches():
    with pytest.raises(InvalidParameterError,
                       match=r"Unknown zoo model 'resnet18v1'\. Did you mean 'resnet18_v1'.*"
                             r"\(list_models\(\): \d+ names"):
        zoo.resolve_zoo_model("resnet18v1")


def test_unknown_name_error_is_a_value_error():
    with pytest.raises(ValueError, match=r"Did you mean 'digits_cnn'"):
        zoo.get_model_card("digit_cnn")


def test_qualified_name_picks_the_family():
    gluon_card = zoo.get_model_card("resnet50_v1")
    gluoncv_card = zoo.get_model_card("gluoncv:resnet50_v1")
    assert (gluon_card["family"], gluoncv_card["family"]) == ("gluon", "gluoncv")
    # gluoncv republished resnet50_v1 with better weights, under another hash.
    assert gluon_card["weights_file"] != gluoncv_card["weights_file"]
    assert zoo.get_model_card("gluon:resnet50_v1") == gluon_card


def test_qualified_name_unknown_in_family_error():
    with pytest.raises(InvalidParameterError, match=r"Unknown zoo model 'gluon:resnet18_v1b'\."
                                                    r".*list_models\(source='gluon'\)"):
        zoo.get_model_card("gluon:resnet18_v1b")


@pytest.mark.parametrize("name, size, n_classes", [
    ("resnet18_v1", 224, 1000), ("inceptionv3", 299, 1000), ("gluoncv:inceptionv3", 299, 1000),
    ("cifar_resnet20_v1", 32, 10), ("resnest269", 416, 1000), ("mobilenetv3_small", 224, 1000),
])
def test_library_card_input_shape(name, size, n_classes):
    card = zoo.get_model_card(name)
    assert card["input_shape"] == [3, size, size]
    assert card["n_classes"] == n_classes
    assert len(card["mean"]) == len(card["std"]) == 3


def test_library_card_weights_file_names():
    assert zoo.get_model_card("resnet18_v1")["weights_file"] == "resnet18_v1-a0666292.params"
    assert zoo.get_model_card("resnet18_v1b")["weights_file"] == "resnet18_v1b-2d9d980c.params"
    # gluoncv publishes HRNet classifiers as hrnet_<spec>_cls.
    assert zoo.get_model_card("hrnet_w18_c")["weights_file"].startswith("hrnet_w18_cls-")
    assert zoo.get_model_card("nasnet_4_1056")["weights_file"] is None


# ------------------------------------------------------------------------------------------
# Gluon / gluoncv networks and their weight files
# ------------------------------------------------------------------------------------------

LIBRARY_NETS = [("resnet18_v1", "gluon:resnet18_v1"), ("resnet18_v1b", "gluoncv:resnet18_v1b")]
# For each network, a network of another architecture whose params file must not load.
OTHER_ARCHITECTURE = {"resnet18_v1": "gluoncv:resnet18_v1b",
                      "resnet18_v1b": "gluon:resnet18_v1"}


@pytest.mark.parametrize("name, qualified", LIBRARY_NETS)
def test_resolve_library_not_pretrained_builds(name, qualified, seed):
    found = zoo.resolve_zoo_model(name, pretrained=False)
    assert found["kind"] == "gluon" and found["params_file"] is None
    assert isinstance(found["block"], gluon.HybridBlock)
    assert found["input_shape"] == (3, 224, 224)
    out = found["block"](mx.nd.zeros((2,) + found["input_shape"]))
    assert out.shape == (2, 1000)
    assert found["card"]["family"] == qualified.split(":")[0]
    # A fresh NameManager per build: the same layer names on every call.
    assert zoo.resolve_zoo_model(name, pretrained=False)["block"].prefix == found["block"].prefix


def test_resolve_library_not_pretrained_is_seeded():
    mx.random.seed(3)
    first = zoo.resolve_zoo_model("resnet18_v1", pretrained=False)["block"]
    mx.random.seed(3)
    second = zoo.resolve_zoo_model("resnet18_v1", pretrained=False)["block"]
    w1 = first.collect_params()[first.prefix + "dense0_weight"].data().asnumpy()
    w2 = second.collect_params()[second.prefix + "dense0_weight"].data().asnumpy()
    np.testing.assert_array_equal(w1, w2)


@pytest.mark.parametrize("name, qualified", LIBRARY_NETS)
def test_resolve_library_missing_weights_error(name, qualified, tmp_path, no_network):
    root = tmp_path / "models"
    expected = root / zoo.get_model_card(qualified)["weights_file"]
    with pytest.raises(MissingWeightsError,
                       match=rf"^Weights for '{name}' not found at {re.escape(str(expected))}\. "
                             rf"Download them with from_zoo\('{name}', download=True\) or "
                             rf"`repurpose fetch {name}`, put the file there, or pass "
                             r"weights=PATH\.$") as info:
        zoo.resolve_zoo_model(name, root=root)
    assert isinstance(info.value, FileNotFoundError)
    assert not root.exists()  # nothing was created (the libraries' downloaders would)


@pytest.mark.parametrize("name, qualified", LIBRARY_NETS)
def test_resolve_library_weights_in_root_ok(name, qualified, tmp_path, seed, no_network):
    random_net = zoo.resolve_zoo_model(name, pretrained=False)["block"]
    root = tmp_path / "models"
    root.mkdir()
    path = root / zoo.get_model_card(qualified)["weights_file"]
    random_net.save_parameters(str(path))

    found = zoo.resolve_zoo_model(name, root=root)
    assert found["params_file"] == str(path)
    x = mx.nd.random.uniform(shape=(1,) + found["input_shape"])
    np.testing.assert_allclose(found["block"](x).asnumpy(), random_net(x).asnumpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, qualified", LIBRARY_NETS)
def test_resolve_library_weights_argument_ok(name, qualified, tmp_path, seed):
    path = tmp_path / "mine.params"
    zoo.resolve_zoo_model(name, pretrained=False)["block"].save_parameters(str(path))
    found = zoo.resolve_zoo_model(name, weights=path, root=tmp_path / "elsewhere")
    assert found["params_file"] == str(path)


@pytest.mark.parametrize("name, qualified", LIBRARY_NETS)
def test_resolve_library_wrong_architecture_error(name, qualified, tmp_path, seed):
    root = tmp_path / "models"
    root.mkdir()
    path = root / zoo.get_model_card(qualified)["weights_file"]
    other = zoo.resolve_zoo_model(OTHER_ARCHITECTURE[name], pretrained=False)["block"]
    other.save_parameters(str(path))
    with pytest.raises(ModelFileError, match=rf"{re.escape(str(path))} cannot be loaded into "
                                             rf"\w+ network '{name}': Parameter .* missing"
                       ) as info:
        zoo.resolve_zoo_model(name, root=root)
    assert info.value.__cause__ is not None


def test_resolve_library_corrupt_file_error(tmp_path):
    path = tmp_path / "corrupt.params"
    path.write_bytes(b"not an ndarray file" * 4)
    with pytest.raises(ModelFileError, match=r"cannot be loaded into gluon network "
                                             r"'resnet18_v1': .*Invalid NDArray file format"):
        zoo.resolve_zoo_model("resnet18_v1", weights=path)


def test_resolve_library_no_published_weights_error(tmp_path):
    with pytest.raises(MissingWeightsError, match="gluoncv publishes no pretrained weights "
                                                  "for 'nasnet_4_1056'.*weights=PATH"):
        zoo.resolve_zoo_model("nasnet_4_1056", root=tmp_path)


def test_resolve_missing_weights_argument_error(tmp_path):
    with pytest.raises(MissingWeightsError, match=r"nope\.params \(weights= for 'resnet18_v1'\)"
                                                  r" does not exist"):
        zoo.resolve_zoo_model("resnet18_v1", weights=tmp_path / "nope.params")


@pytest.mark.parametrize("kwargs, match", [
    ({"weights": "x.params", "pretrained": False}, "with pretrained=False"),
    ({"pretrained": "yes"}, "pretrained must be True or False"),
    ({"weights": 3}, "weights must be a path"),
    ({"root": 1.5}, "root must be a folder path"),
])
def test_resolve_bad_arguments_error(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        zoo.resolve_zoo_model("resnet18_v1", **kwargs)


def test_resolve_name_not_a_string_error():
    with pytest.raises(InvalidParameterError, match="must be a str, got 18"):
        zoo.resolve_zoo_model(18)


def test_gluoncv_is_imported_lazily_and_installs_no_logging_handlers():
    code = (
        "import logging, sys\n"
        "from repurpose import zoo\n"
        "zoo.list_models(source='gluon'); zoo.get_model_card('resnet18_v1')\n"
        "zoo.resolve_zoo_model('resnet18_v1', pretrained=False)\n"
        "assert 'gluoncv' not in sys.modules, 'gluoncv imported for a gluon name'\n"
        "zoo.list_models(source='gluoncv')\n"
        "assert 'gluoncv' in sys.modules\n"
        "assert logging.getLogger().handlers == [], logging.getLogger().handlers\n"
    )
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
