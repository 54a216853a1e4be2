"""The command line, run as a user would: a subprocess of the installed console script's module."""
import json
import subprocess
import sys

import numpy as np
import pytest


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "repurpose.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_layers_of_zoo_model(tmp_path):
    result = _run("layers", "digits_cnn", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "fc1_relu_fwd" in result.stdout and "28,229 parameters" in result.stdout
    as_json = json.loads(_run("layers", "digits_cnn", "--json", cwd=tmp_path).stdout)
    assert as_json[-1]["name"] == "fc2_fwd" and as_json[-1]["output_shape"] == [1, 5]


def test_extract_digits_to_folder_then_refuse_overwrite(tmp_path):
    out = tmp_path / "feats"
    args = ("extract", "digits_cnn", "--data", "digits", "--layers", "fc1_relu_fwd,relu3_fwd",
            "--pool", "avg", "--out", str(out), "--no-progress")
    result = _run(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    feats = np.load(out / "fc1_relu_fwd.npy")
    assert feats.shape == (1797, 64) and np.load(out / "relu3_fwd.npy").shape == (1797, 64)
    again = _run(*args, cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr


def test_extract_from_checkpoint_and_npy(tmp_path, tiny_checkpoint):
    prefix, epoch, net = tiny_checkpoint
    X = np.random.RandomState(0).rand(6, 1, 8, 8).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    result = _run("extract", prefix, "--data", str(tmp_path / "x.npy"), "--layers",
                  "tiny_out_fwd", "--out", str(tmp_path / "o"), "--no-progress")
    assert result.returncode == 0, result.stderr
    import mxnet as mx

    np.testing.assert_allclose(np.load(tmp_path / "o" / "tiny_out_fwd.npy"),
                               net(mx.nd.array(X)).asnumpy(), atol=1e-4)


@pytest.mark.parametrize("args, code, words", [
    (("layers", "digits_cn"), 2, "Did you mean 'digits_cnn'"),
    (("extract", "digits_cnn", "--data", "digits", "--layers", "fc1", "--out", "o"), 2,
     "Unknown layer 'fc1'"),
    (("layers", "resnet18_v1"), 2, "`repurpose fetch resnet18_v1`"),
    (("frobnicate",), 2, "invalid choice"),
])
def test_bad_usage_exits_2_with_one_line(tmp_path, args, code, words):
    result = _run(*args, cwd=tmp_path)
    assert result.returncode == code
    assert words in result.stderr and "Traceback" not in result.stderr


def test_random_weights_lists_gluon_architecture(tmp_path):
    result = _run("layers", "resnet18_v1", "--random-weights", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Convolution" in result.stdout and "input shape (3, 224, 224)" in result.stdout


def test_models_lists_all_sources():
    result = _run("models")
    names = result.stdout.split()
    assert "digits_cnn" in names and "resnet18_v1" in names
