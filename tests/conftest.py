"""Shared fixtures: seed, device context, tiny real MXNet models and data.

``REPURPOSE_TEST_CTX`` picks the default context for the whole suite (``cpu`` unless set),
so the unit tests rerun unchanged on a GPU machine: ``REPURPOSE_TEST_CTX=gpu pytest``.
``REPURPOSE_TEST_SEED`` changes the default seed (42) to sweep others.
"""
import hashlib
import http.server
import io
import os
import threading
import zipfile

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from repurpose import seeding

DEFAULT_SEED = int(os.environ.get("REPURPOSE_TEST_SEED", "42"))


@pytest.fixture(autouse=True)
def _seed_every_test():
    """Every test starts from the same RNG state (rerun a failure with REPURPOSE_TEST_SEED)."""
    seeding.seed_everything(DEFAULT_SEED)


@pytest.fixture
def seed():
    """The test's seed; every RNG is already seeded with it when the test runs."""
    return DEFAULT_SEED


@pytest.fixture(scope="session")
def ctx():
    """The default context spec for the suite, from REPURPOSE_TEST_CTX (default 'cpu')."""
    return os.environ.get("REPURPOSE_TEST_CTX", "cpu")


def build_tiny_cnn(seed=0, n_classes=3, in_channels=1):
    """A two-conv HybridBlock on 8x8 inputs with batch norm (so aux states exist)."""
    mx.random.seed(seed)
    net = nn.HybridSequential(prefix="tiny_")
    with net.name_scope():
        net.add(nn.Conv2D(4, 3, padding=1, prefix="conv1_"))
        net.add(nn.BatchNorm(prefix="bn1_"))
        net.add(nn.Activation("relu", prefix="relu1_"))
        net.add(nn.MaxPool2D(prefix="pool1_"))
        net.add(nn.Conv2D(6, 3, padding=1, prefix="conv2_"))
        net.add(nn.Activation("relu", prefix="relu2_"))
        net.add(nn.Flatten(prefix="flat_"))
        net.add(nn.Dense(10, prefix="fc1_"))
        net.add(nn.Dense(n_classes, prefix="out_"))
    net.initialize(mx.init.Xavier(magnitude=2.0))
    net(mx.nd.zeros((1, in_channels, 8, 8)))
    # Non-trivial batch-norm statistics, so tests notice if aux states are dropped.
    bn = net[1]
    bn.running_mean.set_data(mx.nd.array(np.linspace(-0.5, 0.5, 4)))
    bn.running_var.set_data(mx.nd.array(np.linspace(0.5, 2.0, 4)))
    return net


@pytest.fixture
def make_tiny_cnn():
    """``build_tiny_cnn`` itself, for tests that need several distinct networks (test
    modules cannot import conftest when the installed package is tested)."""
    return build_tiny_cnn


@pytest.fixture
def tiny_net():
    """A fresh tiny CNN (HybridBlock) for inputs of shape (1, 8, 8)."""
    return build_tiny_cnn()


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """The tiny CNN exported as a symbol+params checkpoint; returns (prefix, epoch, net)."""
    net = build_tiny_cnn()
    net.hybridize()
    net(mx.nd.zeros((1, 1, 8, 8)))
    prefix = str(tmp_path / "tiny")
    net.export(prefix, epoch=3)
    return prefix, 3, net


@pytest.fixture
def digits_images():
    """scikit-learn's digits as float32 images of shape (n, 1, 8, 8) in [0, 1], and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    return X, digits.target


# ---------------------------------------------------------------------------------------------
# A Gluon model-store mirror on 127.0.0.1 (zoo downloads: unit and command-line tests)
# ---------------------------------------------------------------------------------------------
GLUON_NAME = "mobilenet0.25"


class _ModelStoreHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files[path]``; paths in ``server.truncate`` stop after half the body."""

    def do_GET(self):
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.server.truncate:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def gluon_mirror(monkeypatch):
    """A model-store mirror on 127.0.0.1 (port 0), set as ``MXNET_GLUON_REPO``; its
    ``files`` (path -> bytes), ``truncate`` (paths) and ``requests`` (paths) are the test's."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ModelStoreHandler)
    server.files, server.truncate, server.requests = {}, set(), []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url)  # no trailing slash: the store adds it
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="session")
def gluon_params_bytes(tmp_path_factory):
    """The bytes of a real ``mobilenet0.25`` .params file with seeded Xavier weights."""
    from repurpose import zoo

    seeding.seed_everything(0)
    block = zoo.resolve_zoo_model(GLUON_NAME, pretrained=False)["block"]
    path = tmp_path_factory.mktemp("net") / "net.params"
    block.save_parameters(str(path))
    return path.read_bytes()


@pytest.fixture
def published_gluon_weights(gluon_mirror, gluon_params_bytes, monkeypatch):
    """Publish the weights as MXNet's store's file for mobilenet0.25 (zipped, with the SHA-1
    the store checks set to theirs); return (url, file name, sha1)."""
    from mxnet.gluon.model_zoo import model_store

    sha1 = hashlib.sha1(gluon_params_bytes).hexdigest()
    monkeypatch.setitem(model_store._model_sha1, GLUON_NAME, sha1)
    file_name = f"{GLUON_NAME}-{sha1[:8]}.params"
    path = f"/gluon/models/{GLUON_NAME}-{sha1[:8]}.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(file_name, gluon_params_bytes)
    gluon_mirror.files[path] = buffer.getvalue()
    return gluon_mirror.url + path, file_name, sha1
