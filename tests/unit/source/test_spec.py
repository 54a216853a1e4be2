"""Model specs (``SourceModel.from_spec``): ``zoo:``, ``onnx:`` and ``checkpoint:`` prefixes,
bare strings where they are unambiguous, and an error naming both readings where not."""
import pathlib

import mxnet as mx
import pytest

from repurpose import SourceModel
from repurpose.exceptions import InvalidParameterError
from repurpose.source._spec import parse_spec

USAGE = r"zoo:NAME, onnx:PATH or checkpoint:PREFIX"


def _save_checkpoint(prefix, epochs=(0,)):
    """A real two-node MXNet graph (dense + relu) saved as ``prefix`` at ``epochs``; the
    weights of epoch e are all e, so the epoch loaded can be told."""
    symbol = mx.sym.relu(mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=3, name="fc"),
                         name="relu")
    for epoch in epochs:
        args = {"fc_weight": mx.nd.full((3, 4), epoch), "fc_bias": mx.nd.zeros(3)}
        mx.model.save_checkpoint(str(prefix), epoch, symbol, args, {})
    return str(prefix)


def _weight(model):
    return float(model.arg_params["fc_weight"].asnumpy()[0, 0])


@pytest.fixture
def checkpoint(tmp_path):
    return _save_checkpoint(tmp_path / "small", epochs=(1, 2))


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the test in an empty folder (bare names are read relative to it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ----------------------------------------------------------------------- prefixes
def test_zoo_prefix():
    model = SourceModel.from_spec("zoo:digits_cnn")
    assert model.metadata["name"] == "digits_cnn" and model.input_shape == (1, 8, 8)
    assert SourceModel.from_spec("zoo:repurpose:digits_cnn").sha256 == model.sha256


@pytest.mark.parametrize("suffix", ["", "-symbol.json"])
def test_checkpoint_prefix_takes_the_newest_epoch(checkpoint, suffix):
    model = SourceModel.from_spec(f"checkpoint:{checkpoint}{suffix}")
    assert model.layer_names == ["fc", "relu"] and _weight(model) == 2.0
    assert _weight(SourceModel.from_spec(f"checkpoint:{checkpoint}", epoch=1)) == 1.0


def test_onnx_prefix_reads_a_file_whatever_its_name(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "exported.model"  # not '.onnx': only the prefix says what it is
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    model = SourceModel.from_spec(f"onnx:{path}")
    assert model.layer_names == ["relu"] and model.metadata["format"] == "onnx"
    assert parse_spec(str(path.with_suffix(".onnx"))) == ("onnx", str(path.with_suffix(".onnx")))


# ----------------------------------------------------------------------- bare strings
def test_bare_strings_where_unambiguous(checkpoint, in_tmp):
    assert _weight(SourceModel.from_spec(checkpoint)) == 2.0  # a prefix with a folder part
    assert _weight(SourceModel.from_spec(checkpoint + "-symbol.json", epoch=1)) == 1.0
    assert _weight(SourceModel.from_spec(pathlib.Path(checkpoint))) == 2.0  # a path object
    _save_checkpoint(in_tmp / "mine")
    assert parse_spec("mine") == ("checkpoint", "mine")  # a prefix in this folder
    assert parse_spec("digits_cnn") == ("zoo", "digits_cnn")
    assert parse_spec("model.ONNX") == ("onnx", "model.ONNX")
    assert parse_spec("C:/models/model.onnx") == ("onnx", "C:/models/model.onnx")  # a drive


def test_bare_string_with_a_colon_that_names_a_checkpoint(in_tmp):
    _save_checkpoint(in_tmp / "run:3")
    assert parse_spec("run:3") == ("checkpoint", "run:3")
    assert SourceModel.from_spec("run:3").layer_names == ["fc", "relu"]


@pytest.mark.parametrize("clash", ["checkpoint", "file"])
def test_zoo_name_that_is_also_a_file_here_error(in_tmp, clash):
    if clash == "checkpoint":
        _save_checkpoint(in_tmp / "digits_cnn")
        what = r"the checkpoint 'digits_cnn-symbol.json' exists"
    else:
        (in_tmp / "digits_cnn").write_bytes(b"\x08\x01")
        what = r"the file 'digits_cnn' exists"
    with pytest.raises(InvalidParameterError, match=rf"'digits_cnn' is ambiguous: it is a "
                                                    rf"model-zoo name, and {what} in .*Write "
                                                    rf"'zoo:digits_cnn' for the zoo model, or "
                                                    rf"'checkpoint:digits_cnn'.*{USAGE}"):
        SourceModel.from_spec("digits_cnn")
    assert SourceModel.from_spec("zoo:digits_cnn").metadata["name"] == "digits_cnn"
    if clash == "checkpoint":
        assert SourceModel.from_spec("checkpoint:digits_cnn").layer_names == ["fc", "relu"]
        assert parse_spec("./digits_cnn") == ("checkpoint", "./digits_cnn")


# ----------------------------------------------------------------------- bad specs
@pytest.mark.parametrize("spec, match", [
    ("hub:resnet", rf"'hub:resnet' has the unknown prefix 'hub:'; expected {USAGE}\.$"),
    ("onxx:m.onnx", r"unknown prefix 'onxx:'.*Did you mean 'onnx'"),
    ("gluoncv:resnet18_v1", r"For a gluoncv zoo model write 'zoo:gluoncv:resnet18_v1'"),
    ("zoo:", rf"'zoo:' names nothing after 'zoo:'; write {USAGE}"),
    ("checkpoint:", "names nothing after 'checkpoint:'"),
    (None, "A model spec must be a str or path, got NoneType"),
])
def test_bad_spec_error(spec, match, in_tmp):
    with pytest.raises(InvalidParameterError, match=match):
        SourceModel.from_spec(spec)


def test_missing_things_error(checkpoint, in_tmp):
    with pytest.raises(FileNotFoundError, match=r"'digits_cn' is neither an .onnx file, a "
                                                r"checkpoint .* Did you mean 'digits_cnn'"):
        SourceModel.from_spec("digits_cn")
    with pytest.raises(FileNotFoundError, match=r"small2-symbol.json' does not exist. Did you "
                                                r"mean 'small-symbol.json'"):
        SourceModel.from_spec(f"checkpoint:{checkpoint}2")
    with pytest.raises(FileNotFoundError, match="small2-symbol.json' does not exist"):
        SourceModel.from_spec(f"{checkpoint}2-symbol.json")
    with pytest.raises(InvalidParameterError, match="Unknown zoo model 'digits_cn'. Did you "
                                                    "mean 'digits_cnn'"):
        SourceModel.from_spec("zoo:digits_cn")


@pytest.mark.parametrize("spec", ["checkpoint:{}", "onnx:{}.onnx", "{}.onnx"])
def test_download_of_a_model_file_error(checkpoint, spec):
    with pytest.raises(InvalidParameterError, match="only model-zoo weights are downloaded"):
        SourceModel.from_spec(spec.format(checkpoint), download=True)

