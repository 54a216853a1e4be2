"""Shared fixtures: seed, device context, tiny real MXNet models and data.

``REPURPOSE_TEST_CTX`` picks the default context for the whole suite (``cpu`` unless set),
so the unit tests rerun unchanged on a GPU machine: ``REPURPOSE_TEST_CTX=gpu pytest``.
``REPURPOSE_TEST_SEED`` changes the default seed (42) to sweep others.
"""
import os

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
