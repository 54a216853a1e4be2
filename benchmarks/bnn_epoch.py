"""Benchmark: seconds per training epoch of ``BnnHead`` against a deterministic network.

Goal (issue): a BNN epoch costs at most 2.5x an epoch of a deterministic network of the same
shape trained with the same optimiser in the same run.

* Data: 2,000 x 512 float32 features in 10 classes (seeded Gaussian clusters).
* BNN: ``BnnHead(hidden_units=(64,), batch_size=64, optimizer='adam', learning_rate=1e-2)``
  with its defaults (reparameterisation gradient, local reparameterisation, Gaussian prior,
  one draw per step); variants without local reparameterisation and with the Laplace prior
  (Monte-Carlo KL) are reported beside it. An epoch's time is read from the timestamps of the
  head's per-epoch log records, so it covers exactly the training loop (minibatch slicing,
  copies to the context, noise, forward, backward, optimiser step); the first epoch of each
  fit (graph building) is left out.
* Deterministic: the same shape as a hybridized Gluon ``HybridSequential`` (Dense(64, relu),
  Dense(10)), ``gluon.Trainer`` with Adam at the same learning rate, softmax cross-entropy,
  the same batch size and the same per-batch path (permutation, numpy slice,
  ``split_batch`` onto the context).

Variants run interleaved (deterministic, BNN, BNN variants, deterministic, ...) after a
warm-up round; medians over all timed epochs are reported.

Usage::

    PYTHONPATH=. python benchmarks/bnn_epoch.py [--quick] [--ctx cpu] [--json out.json]
"""
import argparse
import json
import logging
import os
import platform
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from repurpose.context import resolve_contexts, split_batch
from repurpose.heads._bnn import BnnHead

N, D, K, HIDDEN, BATCH, LR = 2000, 512, 10, 64, 64, 1e-2


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((K, D)) * 0.5
    y = rng.integers(0, K, N)
    X = (centres[y] + rng.standard_normal((N, D))).astype(np.float32)
    return X, y


class _EpochClock(logging.Handler):
    """Collects the creation time of every per-epoch log record of the head."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.times = []

    def emit(self, record):
        if "epoch" in record.getMessage():
            self.times.append(record.created)


def bnn_epoch_times(X, y, n_epochs, ctx, **params):
    """Seconds of epochs 2..n_epochs of one BnnHead fit."""
    logger = logging.getLogger("repurpose.heads._bnn")
    clock = _EpochClock()
    logger.addHandler(clock)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        start = time.time()
        head = BnnHead(hidden_units=(HIDDEN,), batch_size=BATCH, learning_rate=LR,
                       optimizer="adam", n_epochs=n_epochs, ctx=ctx, random_state=0, **params)
        head.fit(X, y)
    finally:
        logger.removeHandler(clock)
        logger.setLevel(old_level)
    stamps = [start] + clock.times
    return list(np.diff(stamps)[1:]), head


def deterministic_epoch_times(X, y, n_epochs, ctx, seed=0):
    """Seconds of epochs 2..n_epochs of a deterministic Gluon network of the same shape."""
    contexts = resolve_contexts(ctx)
    mx.random.seed(seed)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(HIDDEN, activation="relu"), gluon.nn.Dense(K))
    net.initialize(mx.init.Xavier(), ctx=contexts)
    net.hybridize(static_alloc=True)
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": LR})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    mean, scale = X.mean(0), X.std(0) + 1e-12
    Xs = ((X - mean) / scale).astype(np.float32)
    ys = y.astype(np.float32)
    rng = np.random.default_rng(seed)
    times = []
    for _ in range(n_epochs):
        start = time.time()
        order = rng.permutation(N)
        total = None
        for first in range(0, N, BATCH):
            index = order[first:first + BATCH]
            parts = zip(split_batch(Xs[index], contexts), split_batch(ys[index], contexts))
            losses = []
            with autograd.record():
                for (_, x), (_, t) in parts:
                    losses.append(loss_fn(net(x), t).sum())
            autograd.backward(losses)
            trainer.step(len(index))
            batch_loss = losses[0].detach()
            total = batch_loss if total is None else total + batch_loss
        float(total.asscalar())  # wait for the epoch, as the head does for its history
        times.append(time.time() - start)
    return times[1:]


def machine_info():
    return {"cpu": platform.processor() or platform.machine(), "n_cpus": os.cpu_count(),
            "python": platform.python_version(), "mxnet": mx.__version__,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and rounds")
    parser.add_argument("--ctx", default="cpu", help="context spec, e.g. cpu or gpu:0")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    n_epochs = 4 if args.quick else 6
    rounds = args.rounds or (2 if args.quick else 4)
    X, y = make_data()
    variants = {
        "bnn (default: local reparam, gaussian)": {},
        "bnn (weight-space reparam)": {"local_reparam": False},
        "bnn (laplace prior, MC KL)": {"prior": "laplace"},
    }
    times = {"deterministic": []}
    times.update({name: [] for name in variants})
    # Warm-up round (MKL/OpenMP threads, allocator), not recorded.
    deterministic_epoch_times(X, y, 2, args.ctx)
    for params in variants.values():
        bnn_epoch_times(X, y, 2, args.ctx, **params)
    accuracy = {}
    for _ in range(rounds):
        times["deterministic"] += deterministic_epoch_times(X, y, n_epochs, args.ctx)
        for name, params in variants.items():
            epoch_times, head = bnn_epoch_times(X, y, n_epochs, args.ctx, **params)
            times[name] += epoch_times
            accuracy[name] = float(head.score(X, y))
    medians = {name: float(np.median(t)) for name, t in times.items()}
    base = medians["deterministic"]
    print(f"BnnHead epoch vs deterministic network: {N} x {D} features, {K} classes, "
          f"hidden {HIDDEN}, batch {BATCH}, adam lr {LR}, ctx {args.ctx}")
    print(f"{rounds} interleaved rounds x {n_epochs - 1} timed epochs; medians")
    print(f"{'variant':42s} {'s/epoch':>9s} {'ratio':>7s}")
    for name, value in medians.items():
        print(f"{name:42s} {value:9.4f} {value / base:7.2f}x")
    ratio = medians["bnn (default: local reparam, gaussian)"] / base
    print(f"goal: default BNN epoch <= 2.5x deterministic -> {ratio:.2f}x "
          f"({'met' if ratio <= 2.5 else 'NOT met'})")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine_info(), "medians_s": medians, "ratio": ratio,
                       "train_accuracy_after_timing": accuracy,
                       "epochs": {k: v for k, v in times.items()}}, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
