"""Train the ``digits_cnn`` zoo model: a small CNN on scikit-learn's 8x8 digits, classes 0-4.

The source task is digits 0-4 only; digits 5-9 are held back as the *target* task of the
transfer-learning demos and tests, so this script never trains (or evaluates) on them.

What it does, in order:

1. Seeds Python's ``random``, numpy and ``mx.random`` with ``--seed``.
2. Loads ``sklearn.datasets.load_digits()``, keeps the samples of classes 0-4, scales the
   pixels by 1/16 to [0, 1] (float32, shape ``(N, 1, 8, 8)``; no mean/std normalisation).
3. Splits them 75/25 with ``train_test_split(stratify=y, random_state=seed)``.
4. Trains the CNN below with Adam (lr 1e-3, batch 64) for ``--epochs`` epochs on CPU.
5. Hybridizes and exports ``<out>/digits_cnn/digits_cnn-symbol.json`` and
   ``digits_cnn-0000.params``, reloads the exported files, measures the test accuracy with
   them, and writes ``<out>/digits_cnn/model_card.json`` (metadata + SHA-256 of both files).

Architecture (node names of the exported symbol in brackets)::

    conv 16, 3x3, pad 1 [conv1_fwd] - BN [bn1_fwd] - relu [relu1_fwd]
    conv 32, 3x3, pad 1 [conv2_fwd] - BN [bn2_fwd] - relu [relu2_fwd]
    max-pool 2 -> 4x4 [pool1_fwd]
    conv 64, 3x3, pad 1 [conv3_fwd] - BN [bn3_fwd] - relu [relu3_fwd]
    global average pool [gap_fwd] - flatten [flatten_fwd]
    dense 64 [fc1_fwd] + relu [fc1_relu_fwd]    <- feature layer
    dense 5 [fc2_fwd]                           <- classifier layer

Usage, from the repository root::

    python model_zoo/scripts/train_digits_cnn.py --seed 0 --epochs 30

Run it twice and compare the ``sha256`` entries of the two model cards to check that training
is reproducible on your machine.
"""
import argparse
import hashlib
import json
import logging
import os
import platform
import random
import sys
import time

import mxnet as mx
import numpy as np
import sklearn
from mxnet import autograd, gluon
from mxnet.gluon import nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

logger = logging.getLogger("train_digits_cnn")

MODEL_NAME = "digits_cnn"
SOURCE_CLASSES = [0, 1, 2, 3, 4]
TARGET_CLASSES = [5, 6, 7, 8, 9]
TEST_SIZE = 0.25
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
PIXEL_SCALE = 16.0  # load_digits() pixels are integers 0..16
DEFAULT_OUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # model_zoo/


def parse_args(argv=None):
    """Parse the command line.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; None reads ``sys.argv``.

    Returns
    -------
    argparse.Namespace
        With ``out``, ``seed`` and ``epochs``.
    """
    parser = argparse.ArgumentParser(
        description="Train the digits_cnn zoo model on scikit-learn digits 0-4.")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help="model-zoo folder; files go to OUT/digits_cnn/ "
                             "(default: the model_zoo folder this script sits in)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every RNG (default 0)")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if not 0 <= args.seed < 2**31:
        parser.error(f"--seed must be in [0, 2**31), got {args.seed}")
    return args


def seed_everything(seed):
    """Seed Python's ``random``, numpy's global generator and ``mx.random`` with ``seed``."""
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


def load_source_data(seed):
    """Return the stratified train/test split of digits 0-4, scaled to [0, 1].

    Parameters
    ----------
    seed : int
        ``random_state`` of ``train_test_split``.

    Returns
    -------
    dict
        ``X_train``, ``X_test`` (float32 ndarrays of shape (n, 1, 8, 8)), ``y_train``,
        ``y_test`` (int ndarrays) and ``test_indices`` (sorted indices of the test samples
        in ``load_digits()``).
    """
    digits = load_digits()
    X = (digits.images / PIXEL_SCALE).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    source_idx = np.flatnonzero(np.isin(y, SOURCE_CLASSES))
    train_idx, test_idx = train_test_split(
        source_idx, test_size=TEST_SIZE, stratify=y[source_idx], random_state=seed)
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return {
        "X_train": X[train_idx], "y_train": y[train_idx],
        "X_test": X[test_idx], "y_test": y[test_idx],
        "test_indices": test_idx,
    }


class Flatten(nn.HybridBlock):
    """``nn.Flatten`` whose symbol node is named ``<prefix>fwd`` (``nn.Flatten`` leaves the
    operator unnamed, so MXNet calls it ``flatten_flatten0`` with a process-wide counter)."""

    def hybrid_forward(self, F, x):  # noqa: D102 (Gluon's signature)
        return F.flatten(x, name="fwd")


def build_network(n_classes=len(SOURCE_CLASSES)):
    """Build the CNN with short, readable block prefixes (see the module docstring)."""
    net = nn.HybridSequential(prefix="")
    with net.name_scope():
        net.add(nn.Conv2D(16, 3, padding=1, prefix="conv1_"),
                nn.BatchNorm(prefix="bn1_"),
                nn.Activation("relu", prefix="relu1_"),
                nn.Conv2D(32, 3, padding=1, prefix="conv2_"),
                nn.BatchNorm(prefix="bn2_"),
                nn.Activation("relu", prefix="relu2_"),
                nn.MaxPool2D(pool_size=2, strides=2, prefix="pool1_"),
                nn.Conv2D(64, 3, padding=1, prefix="conv3_"),
                nn.BatchNorm(prefix="bn3_"),
                nn.Activation("relu", prefix="relu3_"),
                nn.GlobalAvgPool2D(prefix="gap_"),
                Flatten(prefix="flatten_"),
                nn.Dense(64, activation="relu", prefix="fc1_"),
                nn.Dense(n_classes, prefix="fc2_"))
    return net


def train(net, X, y, epochs, seed):
    """Train ``net`` in place with Adam and softmax cross-entropy; batches in seeded order."""
    net.initialize(mx.init.Xavier(), ctx=mx.cpu())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": LEARNING_RATE})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    order_rng = np.random.RandomState(seed)
    n = len(X)
    for epoch in range(epochs):
        perm = order_rng.permutation(n)
        total_loss, n_correct = 0.0, 0
        for start in range(0, n, BATCH_SIZE):
            idx = perm[start:start + BATCH_SIZE]
            data, label = mx.nd.array(X[idx]), mx.nd.array(y[idx])
            with autograd.record():
                out = net(data)
                loss = loss_fn(out, label)
            loss.backward()
            trainer.step(len(idx))
            total_loss += float(loss.sum().asscalar())
            n_correct += int((out.argmax(axis=1) == label).sum().asscalar())
        logger.info("epoch %2d/%d  loss %.4f  train accuracy %.4f",
                    epoch + 1, epochs, total_loss / n, n_correct / n)


def sha256_of(path):
    """Return the SHA-256 hex digest of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def evaluate_exported(symbol_file, params_file, X, y):
    """Accuracy of the exported checkpoint on (X, y), computed from the files themselves."""
    block = gluon.SymbolBlock.imports(symbol_file, ["data"], params_file, ctx=mx.cpu())
    pred = block(mx.nd.array(X)).argmax(axis=1).asnumpy().astype(np.int64)
    n_correct = int((pred == y).sum())
    return n_correct, n_correct / len(y)


def main(argv=None):
    """Train, export, evaluate and write the model card; return the card."""
    args = parse_args(argv)
    seed_everything(args.seed)
    out_dir = os.path.join(os.path.abspath(args.out), MODEL_NAME)
    os.makedirs(out_dir, exist_ok=True)

    data = load_source_data(args.seed)
    net = build_network()
    start = time.perf_counter()
    train(net, data["X_train"], data["y_train"], args.epochs, args.seed)
    train_seconds = time.perf_counter() - start

    prefix = os.path.join(out_dir, MODEL_NAME)
    net.export(prefix, epoch=0)
    symbol_file, params_file = prefix + "-symbol.json", prefix + "-0000.params"
    n_correct, accuracy = evaluate_exported(symbol_file, params_file,
                                            data["X_test"], data["y_test"])

    command = f"python model_zoo/scripts/train_digits_cnn.py --seed {args.seed} " \
              f"--epochs {args.epochs}"
    if os.path.abspath(args.out) != DEFAULT_OUT:
        command += f" --out {args.out}"
    card = {
        "format_version": 1,
        "name": MODEL_NAME,
        "family": "repurpose",
        "description": (
            "Small CNN (3 conv+BN+relu, global average pool, dense 64 + relu, dense 5) trained "
            "on scikit-learn's 8x8 digits, classes 0-4 only. Digits 5-9 were never used for "
            "training and are meant as the target task."),
        "input_shape": [1, 8, 8],
        "input_name": "data",
        "preprocessing": (
            "x = load_digits().images / 16.0 as float32, shape (N, 1, 8, 8), values in [0, 1]; "
            "no mean subtraction or std division (mean 0, std 1)."),
        "pixel_scale": PIXEL_SCALE,
        "mean": [0.0],
        "std": [1.0],
        "source_dataset": "sklearn.datasets.load_digits",
        "source_classes": SOURCE_CLASSES,
        "class_names": [str(c) for c in SOURCE_CLASSES],
        "target_task": (
            "Digits 5-9 of sklearn.datasets.load_digits() (never seen in training), e.g. "
            "as a 5-class transfer task; the source test split below holds only digits 0-4."),
        "target_classes": TARGET_CLASSES,
        "classifier_layer": "fc2_fwd",
        "feature_layer": "fc1_relu_fwd",
        "n_classes": len(SOURCE_CLASSES),
        "source_test_accuracy": accuracy,
        "n_test_correct": n_correct,
        "n_train": int(len(data["y_train"])),
        "n_test": int(len(data["y_test"])),
        "source_split": {
            "method": "sklearn.model_selection.train_test_split(source_indices, "
                      f"test_size={TEST_SIZE}, stratify=y[source_indices], "
                      "random_state=seed), source_indices = indices of digits 0-4 in "
                      "load_digits()",
            "test_size": TEST_SIZE,
            "test_indices": [int(i) for i in data["test_indices"]],
        },
        "training": {
            "optimizer": "adam",
            "learning_rate": LEARNING_RATE,
            "batch_size": BATCH_SIZE,
            "loss": "softmax cross-entropy",
            "augmentation": None,
            "initializer": "Xavier",
            "context": "cpu",
        },
        "seed": args.seed,
        "epochs": args.epochs,
        "command": command,
        "mxnet_version": mx.__version__,
        "software": {
            "python": platform.python_version(),
            "mxnet": mx.__version__,
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "files": {
            "symbol": os.path.basename(symbol_file),
            "params": os.path.basename(params_file),
        },
        "sha256": {
            "symbol": sha256_of(symbol_file),
            "params": sha256_of(params_file),
        },
        "notes": (
            "Trained on CPU with the MXNet 1.9.1 pip wheel (MKLDNN on). Reruns with the same "
            "seed gave bit-identical params (same SHA-256), also with OMP_NUM_THREADS=1. "
            "With MKLDNN switched off (MXNET_MKLDNN_ENABLED=0) training gave other params "
            "(another SHA-256) with the same test accuracy (225/226); other CPUs or MXNet "
            "builds may also change the bits, so compare the source test accuracy there."),
    }
    card_path = os.path.join(out_dir, "model_card.json")
    with open(card_path, "w", encoding="utf-8") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    logger.info("trained in %.1f s; source test accuracy %.4f (%d/%d)", train_seconds,
                accuracy, n_correct, len(data["y_test"]))
    logger.info("wrote %s, %s, %s", symbol_file, params_file, card_path)
    logger.info("params sha256 %s", card["sha256"]["params"])
    return card


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    main()
