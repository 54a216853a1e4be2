"""The command line, run as a user would: a subprocess of the installed console script's module."""
import json
import socket
import subprocess
import sys
import threading
import time

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
    # In the command's words: its flags, not the Python arguments behind them.
    assert f"--out {str(out)!r} already exists" in again.stderr
    assert "pass --overwrite" in again.stderr and "overwrite=True" not in again.stderr


def test_scheduler_that_does_not_answer_is_one_line_at_once(tmp_path):
    pytest.importorskip("distributed")
    # A port where something answers that is not Dask (a web server, a proxy).
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.05)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        for address, words in ((f"tcp://127.0.0.1:{server.getsockname()[1]}",
                                "does not speak Dask's protocol"),
                               ("tcp://127.0.0.1:1", "connection refused")):
            start = time.monotonic()
            result = _run("extract", "digits_cnn", "--data", "digits", "--layers",
                          "fc1_relu_fwd", "--out", str(tmp_path / "store"), "--no-progress",
                          "--scheduler", address, cwd=tmp_path)
            assert time.monotonic() - start < 30  # no wait for a half-made client to close
            assert result.returncode == 1
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
            assert lines[0].startswith(f"repurpose extract: failed: ClusterError: No Dask "
                                       f"scheduler answered at {address!r}")
            assert words in lines[0] and "dask scheduler" in lines[0]
            assert not (tmp_path / "store").exists()
    finally:
        stop.set()
        thread.join(5)
        server.close()


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


def test_help_and_flags_do_not_load_the_library(tmp_path):
    # The CLI module, its parser and --help load neither MXNet nor scikit-learn.
    code = ("import sys\nfrom repurpose.cli import build_parser\n"
            "args = build_parser().parse_args(['models', '-v'])\n"
            "print(args.verbose, sorted(m for m in ('mxnet', 'sklearn', 'gluoncv') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "True []", out.stderr
    helped = _run("--help")
    assert helped.returncode == 0 and "finetune" in helped.stdout
    # -q/-v after the command as before it; both at once is a usage error.
    assert _run("models", "-q").returncode == 0 and _run("-v", "models").returncode == 0
    both = _run("models", "-v", "-q")
    assert both.returncode == 2 and "not both" in both.stderr


def test_extract_writes_files_and_labels_and_takes_every_builtin_set(tmp_path):
    from PIL import Image

    for name in ("cat", "dog"):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(2):
            Image.new("L", (8, 8), color=40 * i).save(tmp_path / "imgs" / name / f"{i}.png")
    out = tmp_path / "feats"
    result = _run("extract", "digits_cnn", "--data", "imgs", "--layers", "fc1_relu_fwd",
                  "--grayscale", "--out", str(out), "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = (out / "samples.csv").read_text().splitlines()
    assert rows[0] == "index,file,label" and rows[1] == "0,cat/0.png,cat" and len(rows) == 5
    assert np.load(out / "fc1_relu_fwd.npy").shape == (4, 64)
    # Without --grayscale the images are RGB: the error names the flag that fixes it.
    rgb = _run("extract", "digits_cnn", "--data", "imgs", "--layers", "fc1_relu_fwd",
               "--out", str(tmp_path / "rgb"), cwd=tmp_path)
    assert rgb.returncode == 2 and "pass --grayscale" in rgb.stderr, rgb.stderr
    shifted = _run("extract", "digits_cnn", "--data", "shifted_digits", "--layers",
                   "fc1_relu_fwd", "--out", str(tmp_path / "shifted"), "-q", cwd=tmp_path)
    assert shifted.returncode == 0, shifted.stderr


def test_layers_of_a_saved_model_folder(tmp_path):
    from repurpose import LogisticRepurposer, SourceModel
    from repurpose.data import load_digits_images

    X, y = load_digits_images(classes=[5, 6])
    model = LogisticRepurposer(SourceModel.from_zoo("digits_cnn"),
                               layers=("fc1_relu_fwd",)).fit(X[:40], y[:40])
    model.save(tmp_path / "saved")
    result = _run("layers", str(tmp_path / "saved"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "fc1_relu_fwd" in result.stdout
