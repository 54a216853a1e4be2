"""Benchmark of early stopping (Hyperband + learning curves + BO) against full-budget BO when
tuning a fine-tuning job.

    python benchmarks/bo_early_stopping.py [--quick] [--seeds N] [--first-seed S]
        [--schedule {constant,cosine,step,warmup-cosine}] [--variant {both,plain,aware}]
        [--min-budgets M ...] [--no-same-configs] [--json PATH]

The job: ``FineTuneRepurposer`` on ``digits_cnn`` for the demo task (shifted digits 5-9,
``repurpose.demo.make_demo_task``), ``--n-train`` labelled images per class for training and
``--n-val`` per class as a fixed validation set passed as ``X_val, y_val`` (no hold-out and no
early stopping inside the repurposer); the remaining images are the test set. Every trial
trains for the full schedule of ``--epochs`` E epochs (so the learning rate of epoch k is the
same whether the trial is later stopped or not) with shift augmentation and reports its
validation loss after every epoch. ``--schedule``: cosine (default), constant, step (x0.1 at
epochs 14 and 21 of 27) or warmup-cosine (3 linear warm-up epochs, then cosine). Searched: log learning rate, log
``transferred_lr_mult``, log ``weight_decay`` and ``fixed_below`` (nothing, or the first one
or two conv blocks frozen). The training seed is the benchmark seed, so within a seed the
objective is a deterministic function of the parameters, the same for every method.

Methods, per seed (the BO seed is the benchmark seed for all of them):

* ``full BO``: ``repurpose.bo.minimize`` with ``--trials`` N trials of E epochs each (N * E
  epochs);
* ``full BO, first N/2``: the first N/2 trials of that same run (the same epochs as the
  early-stopping budget: what half the budget buys without early stopping);
* ``early stopping (min_budget=m)``, for each m of ``--min-budgets`` (1 3 9):
  ``minimize_with_early_stopping`` (eta=3, default kappa, Hyperband brackets with rungs from
  m epochs up) with as many configurations as fit in half of full BO's epochs.
  ``total_budget`` is ``N * E / 2 - E + 1`` so that the last trial it starts cannot take the
  total past N * E / 2: the ratio of epochs is at most 0.5 by construction. Under a schedule
  other than constant, each runs twice (``--variant both``): as before, and told the
  schedule (``schedule=``, "schedule-aware": rank-guarded rungs on best values so far, see
  ``repurpose/bo/scheduler.py``);
* ``early stopping, N configs``: the first of those schedulers with the same number N of
  configurations as full BO and no budget cap: how many epochs for as many configurations?

Quality of a method = the configuration it returns (full BO: the best trial; early stopping:
the best trial that completed all E epochs): its validation loss and accuracy after E epochs,
and its test accuracy as trained (the trained network of that very trial; training is seeded,
so a refit gives the same network). "The same quality" means: mean test accuracy over seeds
no more than 0.5 points (``--tolerance``) below full BO's; the table also gives the paired
difference of the validation loss, the objective all methods minimise. Epochs are counted
over all trials (a stopped trial counts the epochs it ran); wall seconds cover the whole
search (training, BO suggestions, scheduler), not the test scoring. The run also prints the
Spearman correlation, over the completed full-BO trials, of the final value with the value
after epoch k and with the best value up to epoch k (what the rungs compare without and with
the schedule).
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import mxnet as mx  # noqa: E402

from repurpose import FineTuneRepurposer, SourceModel  # noqa: E402
from repurpose.bo import (Categorical, Real, SearchSpace, minimize,  # noqa: E402
                          minimize_with_early_stopping)
from repurpose.demo import make_demo_task  # noqa: E402

#: FineTuneRepurposer settings of each --schedule (E = 27 epochs: steps at 50 % and 75 %).
SCHEDULES = {
    "constant": {"lr_schedule": "constant"},
    "cosine": {"lr_schedule": "cosine"},
    "step": {"lr_schedule": "step", "step_epochs": (14, 21), "step_factor": 0.1},
    "warmup-cosine": {"lr_schedule": "cosine", "warmup_epochs": 3},
}


def relative_lr(schedule, n_epochs):
    """``budget -> learning rate`` (base rate 1) of a --schedule: the rate of the epoch that
    ends at that budget, as the repurposer computes it (repurposers/_schedules.py)."""
    kw = SCHEDULES[schedule]
    warmup, steps = kw.get("warmup_epochs", 0), kw.get("step_epochs", ())

    def rate(budget):
        epoch = math.ceil(budget) - 1  # 0-based epoch that ends at `budget`
        if epoch < warmup:
            return (epoch + 1) / (warmup + 1)
        if kw["lr_schedule"] == "step":
            return kw["step_factor"] ** sum(1 for s in steps if epoch + 1 >= s)
        if kw["lr_schedule"] == "cosine":
            t = (epoch - warmup) / max(n_epochs - warmup, 1)
            return 0.5 * (1.0 + math.cos(math.pi * t))
        return 1.0
    return rate


SPACE = SearchSpace({
    "learning_rate": Real(1e-4, 0.3, log=True),
    "transferred_lr_mult": Real(0.01, 1.0, log=True),
    "weight_decay": Real(1e-6, 1e-2, log=True),
    "fixed_below": Categorical(["none", "relu1_fwd", "pool1_fwd"]),
})


def make_task(n_train, n_val, data_seed=0):
    """Train / validation / test split of the demo task, stratified and seeded."""
    X, y, X_test, y_test = make_demo_task(n_per_class=n_train + n_val, random_state=data_seed)
    rng = np.random.RandomState(data_seed)
    train = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:n_train]
                            for c in np.unique(y)])
    val = np.setdiff1d(np.arange(len(y)), train)
    return X[train], y[train], X[val], y[val], X_test, y_test


class FineTuneJob:
    """Trains one configuration for the full schedule, reporting after every epoch, and keeps
    a record (curve, test accuracy of completed trials) per call."""

    def __init__(self, source, data, n_epochs, seed, metric, schedule):
        self.source, self.data, self.n_epochs = source, data, n_epochs
        self.seed, self.metric, self.schedule = seed, metric, schedule
        self.records = []
        self.score_seconds = 0.0

    def _value(self, row):
        value = row["val_loss"] if self.metric == "val_loss" else 1.0 - row["val_accuracy"]
        if not math.isfinite(value):
            raise FloatingPointError(f"{self.metric} is {value} at epoch {row['epoch']}")
        return float(value)

    def train(self, params, report=None):
        """Fit for ``n_epochs``; ``report(epoch, value)`` after each epoch if given. Returns
        the final value (full-budget objective); a stop raised by ``report`` propagates."""
        X, y, X_val, y_val, X_test, y_test = self.data
        fixed = None if params["fixed_below"] == "none" else params["fixed_below"]
        model = FineTuneRepurposer(
            self.source, fixed_below=fixed, learning_rate=params["learning_rate"],
            transferred_lr_mult=params["transferred_lr_mult"],
            weight_decay=params["weight_decay"], **SCHEDULES[self.schedule],
            n_epochs=self.n_epochs, augment=True, validation_fraction=0.0,
            early_stopping=False, random_state=self.seed)
        record = {"params": dict(params), "curve": [], "epochs": 0, "val_accuracy": None,
                  "test_accuracy": None}
        self.records.append(record)

        def on_epoch(row):
            record["epochs"] += 1
            value = self._value(row)
            record["curve"].append(value)
            record["val_accuracy"] = float(row["val_accuracy"])
            if report is not None:
                report(row["epoch"], value)

        model.fit(X, y, X_val=X_val, y_val=y_val, epoch_callback=on_epoch)
        started = time.perf_counter()
        record["test_accuracy"] = float(model.score(X_test, y_test))
        self.score_seconds += time.perf_counter() - started
        return record["curve"][-1]


def _quality(record):
    return {"val_value": record["curve"][-1], "val_accuracy": record["val_accuracy"],
            "test_accuracy": record["test_accuracy"], "params": record["params"]}


def run_full_bo(job, n_trials, seed):
    started = time.perf_counter()
    elapsed = []  # search seconds after each trial, test scoring excluded
    minimize(job.train, SPACE, n_trials=n_trials, seed=seed, callback=lambda trial: elapsed
             .append(time.perf_counter() - started - job.score_seconds))
    out = {}
    for label, n in (("full BO", n_trials), ("full BO, first N/2", n_trials // 2)):
        records = job.records[:n]
        done = [r for r in records if r["test_accuracy"] is not None]
        best = min(done, key=lambda r: r["curve"][-1])
        out[label] = {**_quality(best), "epochs": sum(r["epochs"] for r in records),
                      "n_configs": n, "n_completed": len(done), "seconds": elapsed[n - 1]}
    out["full BO"]["curves"] = [r["curve"] for r in job.records
                                if r["test_accuracy"] is not None]
    return out


def run_early_stopping(job, seed, max_budget, n_trials=None, total_budget=None, eta=3,
                       min_budget=1, schedule=None):
    started = time.perf_counter()
    res = minimize_with_early_stopping(lambda p, report: job.train(p, report), SPACE,
                                       max_budget=max_budget, n_trials=n_trials,
                                       total_budget=total_budget, eta=eta,
                                       min_budget=min_budget, seed=seed, schedule=schedule)
    seconds = time.perf_counter() - started - job.score_seconds
    if len(res.history) != len(job.records):
        raise RuntimeError(f"{len(res.history)} trials but {len(job.records)} fits recorded.")
    done = [(t, r) for t, r in zip(res.history, job.records) if t.status == "completed"]
    if not done:
        quality = {"val_value": math.nan, "val_accuracy": math.nan, "test_accuracy": math.nan,
                   "params": None}
    else:
        quality = _quality(min(done, key=lambda tr: tr[0].values[-1])[1])
    reasons = [t.stop_reason for t in res.history if t.status == "stopped"]
    return {**quality, "epochs": sum(r["epochs"] for r in job.records),
            "n_configs": len(res.history), "n_completed": len(done),
            "stopped_rung": reasons.count("rung"), "stopped_curve": reasons.count("curve"),
            "failed": sum(t.status == "failed" for t in res.history), "seconds": seconds,
            "trials": [{"params": t.params, "status": t.status, "stop_reason": t.stop_reason,
                        "epochs": r["epochs"], "last_value": r["curve"][-1] if r["curve"]
                        else None, "told_value": t.told_value,
                        "predicted_final": t.predicted_final,
                        "predicted_std": t.predicted_std}
                       for t, r in zip(res.history, job.records)]}


def run_seed(source, data, seed, args):
    E, N = args.epochs, args.trials
    out = run_full_bo(FineTuneJob(source, data, E, seed, args.metric, args.schedule), N, seed)
    cap = N * E // 2
    aware = None if args.schedule == "constant" else relative_lr(args.schedule, E)
    for min_budget in args.min_budgets:
        variants = []
        if args.variant != "aware" or aware is None:
            variants.append(("", None))
        if args.variant != "plain" and aware is not None:
            variants.append((", schedule-aware", aware))
        for label, schedule in variants:
            out[f"early stopping{label} (min_budget={min_budget:g})"] = run_early_stopping(
                FineTuneJob(source, data, E, seed, args.metric, args.schedule), seed, E,
                total_budget=cap - E + 1, eta=args.eta, min_budget=min_budget,
                schedule=schedule)
    if not args.no_same_configs:
        out[f"early stopping, N configs (min_budget={args.min_budgets[0]:g})"] = \
            run_early_stopping(FineTuneJob(source, data, E, seed, args.metric, args.schedule),
                               seed, E, n_trials=N, eta=args.eta,
                               min_budget=args.min_budgets[0])
    return out


def summarise(per_seed, tolerance):
    """Mean/std over seeds per method; paired test-accuracy difference against full BO."""
    full = [s["full BO"] for s in per_seed]
    rows = []
    for method in per_seed[0]:
        runs = [s[method] for s in per_seed]
        test = np.array([r["test_accuracy"] for r in runs])
        diff = test - np.array([f["test_accuracy"] for f in full])
        val = np.array([r["val_value"] for r in runs])
        val_diff = val - np.array([f["val_value"] for f in full])
        rows.append({
            "method": method, "val_value_mean": float(np.mean(val)),
            "val_value_std": float(np.std(val)), "val_diff_mean": float(np.mean(val_diff)),
            "val_diff_std": float(np.std(val_diff)),
            "val_accuracy_mean": float(np.mean([r["val_accuracy"] for r in runs])),
            "test_accuracy_mean": float(np.mean(test)), "test_accuracy_std": float(np.std(test)),
            "test_diff_mean": float(np.mean(diff)), "test_diff_std": float(np.std(diff)),
            "epochs_mean": float(np.mean([r["epochs"] for r in runs])),
            "epoch_ratio": float(np.mean([r["epochs"] / f["epochs"]
                                          for r, f in zip(runs, full)])),
            "configs_mean": float(np.mean([r["n_configs"] for r in runs])),
            "completed_mean": float(np.mean([r["n_completed"] for r in runs])),
            "seconds_mean": float(np.mean([r["seconds"] for r in runs])),
            "same_quality": bool(np.mean(diff) >= -tolerance),
            "seeds_within_tolerance": int(np.sum(diff >= -tolerance)),
        })
    return rows


def rank_correlations(per_seed, n_epochs):
    """Spearman correlation, over every completed full-BO trial of every seed, between the
    final value and, after epoch k, the value then ('last': what the rungs compare without a
    schedule) or the best value so far ('best': what they compare under a schedule that still
    decays): how much a rung at k can know."""
    from scipy.stats import spearmanr

    curves = np.array([c for s in per_seed for c in s["full BO"]["curves"]
                       if len(c) == n_epochs])
    best = np.minimum.accumulate(curves, axis=1)
    epochs = sorted({k for k in (1, 2, 3, 5, 9, 14, 18, n_epochs - 1) if 1 <= k < n_epochs})
    return {stat: {k: float(spearmanr(c[:, k - 1], curves[:, -1]).correlation)
                   for k in epochs} for stat, c in (("last", curves), ("best", best))}


def print_table(rows, n_seeds, metric):
    print(f"\nMeans over {n_seeds} seeds (+- std over seeds); diff = paired difference from "
          f"full BO (test accuracy in points)")
    head = (f"{'method':<48} {metric:>14} {'diff':>14} {'val acc':>7} {'test acc':>14} "
            f"{'test diff':>13} "
            f"{'epochs':>7} {'ratio':>5} {'configs':>7} {'complete':>8} {'wall s':>7} same?")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['method']:<48} {r['val_value_mean']:>7.3f} +-{r['val_value_std']:.3f} "
              f"{r['val_diff_mean']:>+7.3f} +-{r['val_diff_std']:.3f} "
              f"{r['val_accuracy_mean']:>7.3f} {r['test_accuracy_mean']:>7.3f} +-"
              f"{r['test_accuracy_std']:.3f} {100 * r['test_diff_mean']:>+6.2f} +-"
              f"{100 * r['test_diff_std']:4.2f} {r['epochs_mean']:>7.0f} "
              f"{r['epoch_ratio']:>5.2f} {r['configs_mean']:>7.1f} {r['completed_mean']:>8.1f} "
              f"{r['seconds_mean']:>7.1f} {'yes' if r['same_quality'] else 'no'} "
              f"({r['seeds_within_tolerance']}/{n_seeds})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 seeds, 16 trials, min budgets 1 and 3 (about 2 minutes)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (8; 2 quick)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start the seeds here (to add seeds to an earlier run)")
    parser.add_argument("--trials", type=int, default=None,
                        help="full-BO trials N (30; 16 quick)")
    parser.add_argument("--epochs", type=int, default=None, help="max epochs E (27)")
    parser.add_argument("--n-train", type=int, default=30, help="training images per class")
    parser.add_argument("--n-val", type=int, default=30, help="validation images per class")
    parser.add_argument("--eta", type=int, default=3, help="halving rate (3)")
    parser.add_argument("--min-budgets", type=float, nargs="+", default=None,
                        help="smallest rung in epochs, one early-stopping run each (1 3 9; "
                             "1 3 quick)")
    parser.add_argument("--metric", choices=("val_loss", "val_error"), default="val_loss")
    parser.add_argument("--schedule", choices=tuple(SCHEDULES), default="cosine",
                        help="learning-rate schedule of every trial (cosine; step: x0.1 at "
                             "epochs 14 and 21; warmup-cosine: 3 warm-up epochs)")
    parser.add_argument("--variant", choices=("both", "plain", "aware"), default="both",
                        help="early stopping without the schedule (plain), told the schedule "
                             "(aware, schedule=), or both (not constant: no schedule to tell)")
    parser.add_argument("--tolerance", type=float, default=0.005,
                        help="test accuracy below full BO's still counted as the same (0.005)")
    parser.add_argument("--no-same-configs", action="store_true",
                        help="skip the early-stopping run with N configurations")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    n_seeds = args.seeds or (2 if args.quick else 8)
    args.trials = args.trials or (16 if args.quick else 30)
    args.epochs = args.epochs or 27
    args.min_budgets = args.min_budgets or ([1.0, 3.0] if args.quick else [1.0, 3.0, 9.0])
    data = make_task(args.n_train, args.n_val)
    print(f"python {platform.python_version()}, numpy {np.__version__}, mxnet {mx.__version__}, "
          f"{platform.processor() or platform.machine()} {platform.system()}, "
          f"{os.cpu_count()} CPUs; seeds {args.first_seed}..{args.first_seed + n_seeds - 1}")
    print(f"task: digits_cnn fine-tuned on shifted digits 5-9, {len(data[1])} train, "
          f"{len(data[3])} validation, {len(data[5])} test images; {args.schedule} schedule, "
          f"E={args.epochs} epochs, full BO N={args.trials} trials, objective {args.metric}")
    source = SourceModel.from_zoo("digits_cnn")
    started = time.perf_counter()
    per_seed = []
    for seed in range(args.first_seed, args.first_seed + n_seeds):
        result = run_seed(source, data, seed, args)
        per_seed.append(result)
        print(f"seed {seed}: " + "; ".join(
            f"{m}: {r['val_value']:.3f} / test {r['test_accuracy']:.3f} in {r['epochs']} "
            f"epochs, {r['seconds']:.0f} s" for m, r in result.items()), flush=True)
    rows = summarise(per_seed, args.tolerance)
    print_table(rows, n_seeds, args.metric)
    rho = rank_correlations(per_seed, args.epochs)
    for stat, label in (("last", "value after epoch k"), ("best", "best value up to epoch k")):
        print(f"Spearman correlation of the {label} with the final value (full-BO trials): "
              + ", ".join(f"k={k}: {r:.2f}" for k, r in rho[stat].items()))
    total = time.perf_counter() - started
    print(f"total {total:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"settings": vars(args), "seeds": n_seeds, "per_seed": per_seed,
                       "summary": rows, "rank_correlation": rho, "total_s": total,
                       "machine": platform.processor() or platform.machine(),
                       "cpus": os.cpu_count(), "mxnet": mx.__version__}, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()
