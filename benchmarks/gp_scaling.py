"""Benchmark of ``GpHead``: fit and predict time against the number of training samples.

The issue's target: N=5,000 samples of 512-d features, 10 classes, fitted in under 60 s
on 2 cores. Data: ``make_classification`` (50 informative + 20 redundant of 512 features,
one Gaussian cluster per class), 2,000 held-out samples. For each N the script fits
``GpHead`` with ``alpha_eps='auto'`` (the default: two kernel fits plus a 3-fold choice of
``alpha_eps``) and with a fixed ``alpha_eps=0.01`` (one kernel fit), and reports fit time,
predict time, bound evaluations, accuracy and log-loss, with a logistic regression for
reference. Each configuration runs once (a fit of N=5,000 takes seconds; run the script
twice on a shared machine and compare).

Usage::

    PYTHONPATH=. python benchmarks/gp_scaling.py [--sizes 1000 5000 20000] [--json out.json]
"""
import argparse
import json
import os
import platform
import time

import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from repurpose.heads._gp import GpHead

N_FEATURES, N_CLASSES, N_TEST = 512, 10, 2000


def log_loss(p, y):
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), y], 1e-300))))


def run(n, alpha_eps, X, y, Xte, yte, n_inducing):
    head = GpHead(n_inducing=n_inducing, alpha_eps=alpha_eps, random_state=0)
    start = time.perf_counter()
    head.fit(X, y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    p = head.predict_proba(Xte)
    predict_s = time.perf_counter() - start
    return {"n": n, "alpha_eps": alpha_eps, "alpha_eps_chosen": head.alpha_eps_,
            "n_inducing": n_inducing, "fit_s": round(fit_s, 2),
            "predict_s_per_1000": round(predict_s / len(Xte) * 1000, 3),
            "n_iter": head.n_iter_, "accuracy": float(np.mean(p.argmax(1) == yte)),
            "log_loss": round(log_loss(p, yte), 4)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--n-inducing", type=int, default=200)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    X, y = make_classification(max(args.sizes) + N_TEST, N_FEATURES, n_informative=50,
                               n_redundant=20, n_classes=N_CLASSES, n_clusters_per_class=1,
                               random_state=0)
    Xte, yte = X[-N_TEST:], y[-N_TEST:]
    results = {"machine": {"n_cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_avg_at_start": os.getloadavg()}, "runs": []}
    for n in args.sizes:
        scaler = StandardScaler().fit(X[:n])
        start = time.perf_counter()
        logreg = LogisticRegression(max_iter=2000).fit(scaler.transform(X[:n]), y[:n])
        lr_s = time.perf_counter() - start
        p = logreg.predict_proba(scaler.transform(Xte))
        results["runs"].append({"n": n, "model": "LogisticRegression", "fit_s": round(lr_s, 2),
                                "accuracy": float(np.mean(p.argmax(1) == yte)),
                                "log_loss": round(log_loss(p, yte), 4)})
        print(results["runs"][-1], flush=True)
        for alpha_eps in ("auto", 0.01):
            results["runs"].append(run(n, alpha_eps, X[:n], y[:n], Xte, yte,
                                       args.n_inducing))
            print(results["runs"][-1], flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
