"""Benchmark of every head: accuracy and calibration on the demo task (mean over 3 seeds),
and fit time and memory on synthetic features at N = 1,000 / 5,000 / 20,000.

    python benchmarks/heads.py [--quick] [--json PATH] [--sizes 1000,5000,20000]

Part 1 fits each head on digits_cnn features (fc1_relu_fwd + relu3_fwd, average-pooled) of
the demo task (shifted digits 5-9, 10 labels per class, seeds 0-2), next to a logistic
regression on raw pixels. Part 2 fits each head on synthetic 512-d features of 10 classes
(scikit-learn's make_classification), each fit in a fresh subprocess so that its peak
resident memory (ru_maxrss) is its own; a fit that runs past --timeout seconds is reported
as such, not hidden.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

HEAD_DEFAULTS = {  # display name -> (class name in repurpose.heads, constructor params)
    "logistic": ("LogisticHead", {}),
    "svm": ("SvmHead", {}),
    "svm-linear": ("SvmHead", {"kernel": "linear"}),
    "gp": ("GpHead", {}),
    "bnn": ("BnnHead", {}),
}


def available_heads():
    import repurpose.heads as heads

    return {name: (cls, params) for name, (cls, params) in HEAD_DEFAULTS.items()
            if hasattr(heads, cls)}


def make_head(cls_name, params, seed):
    import repurpose.heads as heads

    return getattr(heads, cls_name)(random_state=seed, **params)


def demo_task_benchmark(seeds):
    from repurpose import FeatureExtractor, SourceModel, metrics
    from repurpose.demo import DEMO_LAYERS, make_demo_task

    source = SourceModel.from_zoo("digits_cnn")
    results = {}
    for seed in seeds:
        X_train, y_train, X_test, y_test = make_demo_task(10, seed)
        fx = FeatureExtractor(source, layers=DEMO_LAYERS, pool="avg").fit()
        F_train, F_test = fx.transform(X_train), fx.transform(X_test)
        runs = {name: (F_train, F_test, cls, params)
                for name, (cls, params) in available_heads().items()}
        runs["logistic (raw pixels)"] = (X_train.reshape(len(X_train), -1),
                                         X_test.reshape(len(X_test), -1), "LogisticHead", {})
        for name, (A, B, cls, params) in runs.items():
            head = make_head(cls, params, seed)
            started = time.perf_counter()
            head.fit(A, y_train)
            fit_s = time.perf_counter() - started
            proba = head.predict_proba(B)
            row = metrics.summary(y_test, proba, head.classes_)
            row["fit_s"] = fit_s
            results.setdefault(name, []).append(row)
            print(f"  seed {seed} {name:24s} acc {row['accuracy']:.3f} nll {row['nll']:.3f} "
                  f"ece {row['ece']:.3f} fit {fit_s:.2f}s", file=sys.stderr)
    summary = {}
    for name, rows in results.items():
        summary[name] = {k: (float(np.mean([r[k] for r in rows])),
                             float(np.std([r[k] for r in rows]))) for k in rows[0]}
    return summary


def _scaling_child(cls_name, params, n, seed):
    """Run in a subprocess: fit one head on synthetic features, print JSON."""
    import resource

    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=512, n_informative=64,
                               n_redundant=64, n_classes=10, n_clusters_per_class=1,
                               class_sep=1.5, random_state=seed)
    X = X.astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    head = make_head(cls_name, params, seed)
    started = time.perf_counter()
    head.fit(X, y)
    fit_s = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"fit_s": fit_s, "peak_rss_mb": peak / 1024,
                      "rss_growth_mb": (peak - before) / 1024,
                      "train_accuracy": float(head.score(X[:2000], y[:2000]))}))


def scaling_benchmark(sizes, timeout, seed=0):
    out = {}
    for name, (cls, params) in available_heads().items():
        for n in sizes:
            code = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
                    f"import heads as b; b._scaling_child({cls!r}, {params!r}, {n}, {seed})")
            try:
                done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                      text=True, timeout=timeout)
                if done.returncode != 0:
                    row = {"error": done.stderr.strip().splitlines()[-1]}
                else:
                    row = json.loads(done.stdout.strip().splitlines()[-1])
            except subprocess.TimeoutExpired:
                row = {"timeout_s": timeout}
            out.setdefault(name, {})[n] = row
            print(f"  {name:12s} N={n:6d} {row}", file=sys.stderr)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, N = 1000 only")
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds allowed per scaling fit")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    seeds = [0] if args.quick else [0, 1, 2]
    sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",")]
    import mxnet as mx

    started = time.perf_counter()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"mxnet {mx.__version__}")
    demo = demo_task_benchmark(seeds)
    print(f"\nDemo task (digits_cnn features, shifted digits 5-9, 10 labels/class), mean +- std "
          f"over seeds {seeds}:")
    print("| head | accuracy | NLL | ECE | Brier | fit s |")
    print("|---|---|---|---|---|---|")
    for name, s in demo.items():
        print(f"| {name} | {s['accuracy'][0]:.3f} +- {s['accuracy'][1]:.3f} | "
              f"{s['nll'][0]:.3f} +- {s['nll'][1]:.3f} | {s['ece'][0]:.3f} +- {s['ece'][1]:.3f} "
              f"| {s['brier'][0]:.3f} | {s['fit_s'][0]:.2f} |")
    scaling = scaling_benchmark(sizes, args.timeout)
    print("\nSynthetic 512-d features, 10 classes: fit seconds / peak RSS MB (fresh process)")
    print("| head | " + " | ".join(f"N={n}" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name, by_n in scaling.items():
        cells = []
        for n in sizes:
            row = by_n[n]
            cells.append(f"{row['fit_s']:.1f} s / {row['peak_rss_mb']:.0f} MB" if "fit_s" in row
                         else f"> {row['timeout_s']:.0f} s" if "timeout_s" in row
                         else f"error: {row['error'][:60]}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"demo": demo, "scaling": {k: {str(n): r for n, r in v.items()}
                                                 for k, v in scaling.items()}}, handle,
                      indent=2)


if __name__ == "__main__":
    main()
