"""Few-shot benchmark of ``SvmHead`` against xfer-ml's SVM: accuracy, NLL and ECE at 2, 4 and
10 labelled samples per class, side by side in one run.

    PYTHONPATH=. python benchmarks/svm_few_shot.py [--seeds 10] [--shots 2,4,10] [--json PATH]

Two feature sets of the target task "digits 5-9" (scikit-learn's 8x8 digits, 896 images):

- ``mlp``: a third-party MXNet network. A Gluon MLP (64-128-64-5, ReLU), seeded, trained for
  30 epochs on digits 0-4; the features are its second hidden layer (64 values).
- ``digits_cnn``: the zoo model's features of the demo layers (``fc1_relu_fwd`` +
  ``relu3_fwd``, average-pooled, 128 values) on shifted digits 5-9 (the demo's task).

For each seed, ``shots`` images per class are drawn for training; every other image is test
data. The rows:

- ``SVC linear (xfer)``: xfer-ml's ``SvmRepurposer`` defaults, ``SVC(C=1.0,
  kernel='linear', gamma='auto', decision_function_shape='ovr', random_state=1)`` on the raw
  features, predicting with ``.predict``; it has no probabilities (``NLL``/``ECE`` '-').
- ``SVC linear + Platt (xfer, probability=True)``: the same with
  ``enable_probability_estimates=True``: labels from ``.predict``, NLL/ECE from libsvm's
  internal 5-fold Platt scaling.
- ``SvmHead <kernel> before``: the earlier calibration of ``SvmHead``, rebuilt here from its
  parts: one slope and one offset per class fitted on one 3-fold cross-validation ("vector
  scaling"), ``predict`` = argmax of those probabilities.
- ``SvmHead <kernel> now``: ``SvmHead`` as shipped: ``predict`` = argmax of the decision
  values, probabilities = ``softmax(a * decisions)`` with one scale fitted on pooled,
  repeated cross-validated decisions.
- ``SvmHead <kernel> now, decision argmax``: a check that the shipped head's labels are the
  decision argmax (same accuracy as the row above).
"""
import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

FEATURE_SETS = ("mlp", "digits_cnn")


def mlp_features(seed=0):
    """Features of digits 5-9 from a Gluon MLP trained (seeded) on digits 0-4."""
    import mxnet as mx
    from mxnet import autograd, gluon
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, y = digits.data.astype(np.float32) / 16.0, digits.target
    mx.random.seed(seed)
    np.random.seed(seed)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(128, activation="relu"), gluon.nn.Dense(64, activation="relu"),
            gluon.nn.Dense(5))
    net.initialize(mx.init.Xavier())
    source = y < 5
    X_src, y_src = mx.nd.array(X[source]), mx.nd.array(y[source])
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 1e-3})
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    rng = np.random.RandomState(seed)
    for _ in range(30):
        order = rng.permutation(len(y_src))
        for start in range(0, len(order), 32):
            batch = mx.nd.array(order[start:start + 32])
            with autograd.record():
                value = loss(net(X_src[batch]), y_src[batch])
            value.backward()
            trainer.step(len(batch))
    hidden = mx.nd.array(X[~source])
    for layer in list(net)[:2]:
        hidden = layer(hidden)
    return hidden.asnumpy().astype(np.float64), y[~source]


def cnn_features():
    """digits_cnn features of the demo layers on shifted digits 5-9."""
    from repurpose import FeatureExtractor, SourceModel
    from repurpose.data import load_builtin
    from repurpose.demo import DEMO_LAYERS

    X, y = load_builtin("shifted_digits", classes=range(5, 10))
    extractor = FeatureExtractor(SourceModel.from_zoo("digits_cnn"), layers=DEMO_LAYERS,
                                 pool="avg").fit()
    return extractor.transform(X).astype(np.float64), y


def draw(y, shots, seed):
    """Indices of ``shots`` training samples per class and of the rest (test)."""
    rng = np.random.RandomState(seed)
    train = np.concatenate([rng.choice(np.flatnonzero(y == c), shots, replace=False)
                            for c in np.unique(y)])
    return train, np.setdiff1d(np.arange(len(y)), train)


def before_proba(head, X_train, y_train, X_test, seed):
    """The earlier SvmHead calibration (one slope and offset per class on one 3-fold
    cross-validation), rebuilt from the fitted head's own binary SVMs and settings."""
    from scipy.optimize import minimize
    from sklearn.model_selection import StratifiedKFold

    from repurpose.heads._base import softmax
    from repurpose.heads._svm import _OvrSvm  # the head's binary SVMs, to rebuild the old map

    seed = int(np.random.RandomState(seed).randint(0, 2**31 - 1))  # as SvmHead drew it
    classes, y = np.unique(y_train, return_inverse=True)
    n_classes = len(classes)
    Xs = (X_train - head.mean_) / head.scale_
    folds = StratifiedKFold(min(3, int(np.bincount(y).min())), shuffle=True, random_state=seed)
    decisions = np.zeros((len(y), n_classes if n_classes > 2 else 1))
    for train, test in folds.split(Xs, y):
        svm = _OvrSvm(head.kernel, head.C, head.gamma_, head.max_iter, seed)
        decisions[test] = svm.fit(Xs[train], y[train], n_classes).decision(Xs[test])
    k = decisions.shape[1]
    onehot = np.eye(n_classes)[y]

    def nll(theta):
        z = decisions * theta[:k] + theta[k:]
        p = softmax(z)
        return (-np.mean(np.log(np.clip(np.sum(p * onehot, axis=1), 1e-300, None)))
                + 1e-3 * (np.sum((theta[:k] - 1) ** 2) + np.sum(theta[k:] ** 2)))

    theta = minimize(nll, np.concatenate([np.ones(k), np.zeros(k)]), method="L-BFGS-B").x
    return softmax(head.svm_decision_function(X_test) * theta[:k] + theta[k:])


def run(features, labels, shots_list, seeds):
    from sklearn.svm import SVC

    from repurpose import metrics
    from repurpose.heads import SvmHead

    table = {}
    for shots in shots_list:
        rows = {}

        def add(name, y_true, proba=None, classes=None, labels_pred=None):
            if proba is None:
                row = {"accuracy": float(np.mean(labels_pred == y_true)), "nll": np.nan,
                       "ece": np.nan}
            else:
                row = metrics.summary(y_true, proba, classes)
                if labels_pred is not None:  # labels not from the argmax of proba
                    row["accuracy"] = float(np.mean(labels_pred == y_true))
            rows.setdefault(name, []).append(row)

        for seed in seeds:
            train, test = draw(labels, shots, seed)
            A, ya, B, yb = features[train], labels[train], features[test], labels[test]
            xfer = dict(C=1.0, kernel="linear", gamma="auto", decision_function_shape="ovr",
                        random_state=1)
            svc = SVC(**xfer).fit(A, ya)
            add("SVC linear (xfer)", yb, labels_pred=svc.predict(B))
            svc = SVC(probability=True, **xfer).fit(A, ya)
            add("SVC linear + Platt (xfer, probability=True)", yb, svc.predict_proba(B),
                svc.classes_, labels_pred=svc.predict(B))
            for kernel in ("rbf", "linear"):
                head = SvmHead(kernel=kernel, random_state=seed).fit(A, ya)
                add(f"SvmHead {kernel} before", yb,
                    before_proba(head, A, ya, B, seed), head.classes_)
                add(f"SvmHead {kernel} now", yb, head.predict_proba(B), head.classes_)
                decision = head.svm_decision_function(B)
                add(f"SvmHead {kernel} now, decision argmax", yb, labels_pred=head.classes_[
                    decision.argmax(axis=1) if decision.shape[1] > 1
                    else (decision[:, 0] > 0).astype(int)])
        table[shots] = {name: {key: (float(np.nanmean([r[key] for r in rs]))
                                     if not np.all(np.isnan([r[key] for r in rs])) else None)
                               for key in ("accuracy", "nll", "ece")}
                        for name, rs in rows.items()}
    return table


def print_table(title, table):
    print(f"\n{title}")
    print("| shots | model | accuracy | NLL | ECE |")
    print("|---|---|---|---|---|")
    show = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for shots, rows in table.items():
        for name, row in rows.items():
            print(f"| {shots} | {name} | {show(row['accuracy'])} | {show(row['nll'])} | "
                  f"{show(row['ece'])} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="draws per setting (>= 5)")
    parser.add_argument("--shots", default="2,4,10")
    parser.add_argument("--features", default=",".join(FEATURE_SETS))
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import mxnet as mx

    seeds = list(range(args.seeds))
    shots = [int(s) for s in args.shots.split(",")]
    started = time.perf_counter()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"mxnet {mx.__version__}; mean over seeds {seeds[0]}..{seeds[-1]}")
    out = {}
    for name in args.features.split(","):
        features, labels = mlp_features() if name == "mlp" else cnn_features()
        out[name] = run(features, labels, shots, seeds)
        print_table(f"{name} features ({features.shape[1]} values), digits 5-9, "
                    f"{len(seeds)} draws per row", out[name])
    print(f"\ntotal {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(out, handle, indent=2)


if __name__ == "__main__":
    main()
