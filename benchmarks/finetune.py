"""Benchmark of fine-tuning: loop overhead against plain Gluon, and transfer against scratch.

    python benchmarks/finetune.py [--quick] [--resnet] [--json PATH]

Part 1 (overhead): seconds per epoch of ``FineTuneRepurposer`` against a hand-written Gluon
loop (``gluon.Trainer``, same network from the same ``SourceModel.to_gluon``, hybridized the
same way, same data, batch size, optimizer, shuffling, no validation, no checkpoints), run
interleaved in the same process, median over epochs 2.. of every round (epoch 1 includes
graph building). The repurposer's epoch time is its own ``history_[i]['seconds']``, which
covers shuffling, batching, the step, and the per-epoch metrics and log line. Target: ratio
<= 1.1. Networks: digits_cnn (8x8 inputs) at batch 32 on N shifted digit images; with
``--resnet`` also resnet18_v1 with random weights at 64x64 on a few hundred random images.

Part 2 (transfer): test accuracy on the demo task (shifted digits 5-9, 10 labels per class,
``repurpose.demo.make_demo_task``) of fine-tuning digits_cnn against training the same
architecture from random weights with the same settings, over seeds 0-2.
"""
import argparse
import json
import platform
import statistics
import sys
import time

import mxnet as mx
import numpy as np


def digits_data(n, seed=0):
    from repurpose.data import load_shifted_digits_images

    X, y = load_shifted_digits_images(max_shift=1, random_state=seed)
    reps = -(-n // len(X))
    rng = np.random.RandomState(seed)
    X = np.concatenate([X] * reps)[:n]
    y = np.concatenate([y] * reps)[:n]
    X = np.clip(X + rng.normal(0, 0.05, X.shape).astype(np.float32), 0, 1)
    return X.astype(np.float32), y


def plain_gluon_epochs(model, X, y, n_epochs, seed):
    """The hand-written baseline: the same network and settings, with gluon.Trainer."""
    classes, y_idx = np.unique(y, return_inverse=True)
    network, _ = model._build_network(len(classes), 0, 0)
    block = network.to_gluon(ctx=mx.cpu())
    block.hybridize(static_alloc=True)
    params = {k: p for k, p in block.collect_params().items() if p.grad_req != "null"}
    trainer = mx.gluon.Trainer(params, model.optimizer,
                               {"learning_rate": model.learning_rate,
                                "momentum": model.momentum, "wd": model.weight_decay})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    rng = np.random.RandomState(seed)
    times = []
    bs = model.batch_size
    for _ in range(n_epochs):
        started = time.perf_counter()
        order = rng.permutation(len(X))
        Xe, ye = X[order], y_idx[order].astype(np.float32)
        for start in range(0, len(X), bs):
            xb = mx.nd.array(Xe[start:start + bs])
            yb = mx.nd.array(ye[start:start + bs])
            with mx.autograd.record():
                loss = loss_fn(block(xb), yb)
            loss.backward()
            trainer.step(len(xb))
        mx.nd.waitall()
        times.append(time.perf_counter() - started)
    return times


def overhead(source, X, y, batch_size, n_epochs, n_rounds, label):
    from repurpose import FineTuneRepurposer

    ours, plain = [], []
    for r in range(n_rounds):
        model = FineTuneRepurposer(source, n_epochs=n_epochs, batch_size=batch_size,
                                   validation_fraction=0.0, early_stopping=False,
                                   lr_schedule="constant", random_state=r)
        plain.extend(plain_gluon_epochs(model, X, y, n_epochs, r)[1:])
        model.fit(X, y)
        ours.extend(row["seconds"] for row in model.history_[1:])
    row = {"network": label, "n_samples": len(X), "batch_size": batch_size,
           "repurposer_s_per_epoch": statistics.median(ours),
           "gluon_s_per_epoch": statistics.median(plain)}
    row["ratio"] = row["repurposer_s_per_epoch"] / row["gluon_s_per_epoch"]
    print(f"{label}: N={len(X)}, batch {batch_size}: FineTuneRepurposer "
          f"{row['repurposer_s_per_epoch']:.3f} s/epoch, plain Gluon "
          f"{row['gluon_s_per_epoch']:.3f} s/epoch, ratio {row['ratio']:.3f} (target <= 1.1)")
    return row


def transfer_vs_scratch(seeds, n_epochs):
    from repurpose import SourceModel
    from repurpose.demo import make_demo_task

    from repurpose import FineTuneRepurposer

    pretrained = SourceModel.from_zoo("digits_cnn")
    X, y, X_test, y_test = make_demo_task(n_per_class=10, random_state=0)
    # 50 labels: holding 10 out for early stopping costs more than it saves (see the docs).
    settings = dict(n_epochs=n_epochs, learning_rate=0.01, augment=True,
                    validation_fraction=0.0, early_stopping=False)
    rows = []
    for name, make_source in (
            ("fine-tuned digits_cnn", lambda s: pretrained),
            ("same architecture from scratch",
             lambda s: SourceModel.from_zoo("digits_cnn", pretrained=False, random_state=s))):
        scores = []
        for seed in seeds:
            model = FineTuneRepurposer(make_source(seed), random_state=seed, **settings)
            scores.append(model.fit(X, y).score(X_test, y_test))
        rows.append({"model": name, "accuracy_mean": float(np.mean(scores)),
                     "accuracy_std": float(np.std(scores)), "scores": scores})
        print(f"{name}: test accuracy {np.mean(scores):.3f} +- {np.std(scores):.3f} "
              f"(seeds {list(seeds)}; {len(X)} training, {len(X_test)} test images; {settings})")
    return {"settings": settings, "rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--resnet", action="store_true", help="also resnet18_v1 at 64x64")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    from repurpose import SourceModel

    n, rounds, epochs = (1000, 2, 3) if args.quick else (4000, 3, 4)
    report = {"machine": platform.processor() or platform.machine(),
              "python": sys.version.split()[0], "mxnet": mx.__version__, "overhead": []}
    X, y = digits_data(n)
    report["overhead"].append(overhead(SourceModel.from_zoo("digits_cnn"), X, y, 32, epochs,
                                       rounds, "digits_cnn"))
    if args.resnet:
        base = SourceModel.from_zoo("resnet18_v1", pretrained=False, random_state=0)
        resnet = SourceModel(base.symbol, base.arg_params, base.aux_params,
                             input_name=base.input_name, input_shape=(3, 64, 64),
                             metadata={"name": "resnet18_v1"})
        rng = np.random.RandomState(0)
        m = 128 if args.quick else 256
        Xr = rng.rand(m, 3, 64, 64).astype(np.float32)
        yr = rng.randint(0, 10, m)
        report["overhead"].append(overhead(resnet, Xr, yr, 32, 3, 1 if args.quick else 2,
                                           "resnet18_v1 (random weights, 64x64)"))
    report["transfer"] = transfer_vs_scratch((0,) if args.quick else (0, 1, 2),
                                             20 if args.quick else 40)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
    return report


if __name__ == "__main__":
    main()
