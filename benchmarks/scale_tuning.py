"""Wall time of tuning a head with 20 trials: one after another, and on a local Dask cluster of
1 and 2 worker processes (asynchronous parallel trials, ``repurpose tune --scheduler``).

    python benchmarks/scale_tuning.py [--head bnn|logistic] [--trials 20] [--workers 1 2]
                                      [--n-per-class 60] [--repeats 1] [--json PATH]

The study: a head on ``digits_cnn`` features for the demo task (``--n-per-class`` labelled
images per class of the shifted digits 5-9), each configuration scored by a 3-fold
stratified cross-validation: exactly what ``repurpose tune --config`` runs for a
``tune: {estimator: HEAD}`` config. ``bnn`` (default): ``BnnRepurposer`` on ``fc1_relu_fwd``,
60 epochs, learning rate and prior scale searched on log scales (trials of about a second);
``logistic``: ``LogisticRepurposer`` on ``relu3_fwd`` + ``fc1_relu_fwd`` (average pooling), C
on a log scale (trials of ~0.05 s, which shows the overhead). Every run is
``repurpose.jobs.run_tuning`` in a fresh output folder with the same seed, timed from the
call to its return (trials, the best configuration refitted and scored on the test images).
The Dask runs use a ``distributed.LocalCluster`` (``threads_per_worker=1``, processes) started
beforehand and warmed up (each worker has imported repurpose and MXNet, as a long-running
cluster would have); the time to start it is printed separately. The settings take turns in
each repeat, so that changes in the machine's load hit them alike.
"""
import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from repurpose.jobs import run_tuning, tune_config_from_dict  # noqa: E402


HEADS = {
    # Cheap trials (~0.05 s): shows the overhead of the parallel loop.
    "logistic": {"params": {"layers": ["relu3_fwd", "fc1_relu_fwd"], "pool": "avg"},
                 "search_space": {"C": {"type": "real", "low": 1e-3, "high": 1e3,
                                        "log": True}}},
    # Trials of about a second (variational training): where workers pay off.
    "bnn": {"params": {"layers": ["fc1_relu_fwd"], "n_epochs": 60},
            "search_space": {"learning_rate": {"type": "real", "low": 1e-3, "high": 0.1,
                                               "log": True},
                             "prior_scale": {"type": "real", "low": 0.1, "high": 10.0,
                                             "log": True}}},
}


def config(output_dir, head, n_trials, n_per_class):
    return tune_config_from_dict({
        "source": {"model": "digits_cnn"},
        "data": {"train": "demo", "n_per_class": n_per_class, "seed": 0},
        "run": {"output_dir": output_dir},
        "tune": {"estimator": head, "n_trials": n_trials, "cv": 3, "seed": 0, **HEADS[head]}})


def timed(head, n_trials, n_per_class, **options):
    with tempfile.TemporaryDirectory() as folder:
        cfg = config(os.path.join(folder, "out"), head, n_trials, n_per_class)
        start = time.perf_counter()
        result = run_tuning(cfg, **options)
        seconds = time.perf_counter() - start
    trial_seconds = [t.seconds for t in result.history]
    return {"seconds": seconds, "trial_seconds_sum": sum(trial_seconds),
            "best_value": result.best_value, "best_params": result.best_params,
            "test_accuracy": result.test["accuracy"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--head", choices=sorted(HEADS), default="bnn")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n-per-class", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    import distributed

    settings = [("sequential (no Dask)", 0, {})]
    with contextlib.ExitStack() as stack:
        for n in args.workers:  # started up front; idle workers cost next to nothing
            start = time.perf_counter()
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0"))
            client = stack.enter_context(distributed.Client(cluster, set_as_default=False))
            client.run(lambda: __import__("repurpose.repurposers"))  # warm up the workers
            print(f"cluster of {n} started in {time.perf_counter() - start:.1f} s",
                  file=sys.stderr)
            settings.append((f"Dask, {n} worker{'s' * (n > 1)}", n,
                             {"scheduler": cluster.scheduler_address}))
        rows = []
        for repeat in range(args.repeats):  # interleaved, so that load drifts hit all alike
            for name, n, options in settings:
                row = timed(args.head, args.trials, args.n_per_class, **options)
                rows.append({"setting": name, "workers": n, "repeat": repeat,
                             "load_average": os.getloadavg()[0], **row})
                print(f"{name}: {row['seconds']:.1f} s", file=sys.stderr)
    env = {"python": platform.python_version(), "machine": platform.machine(),
           "cpus": os.cpu_count(), "distributed": distributed.__version__,
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    print(f"{args.trials} trials, {args.head} head, demo task with {args.n_per_class} images per "
          f"class, 3-fold CV; {env}")
    print("| setting | wall time (s), median | each run (s) | trial time summed (s), median "
          "| best CV accuracy | test accuracy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, _, _ in settings:
        mine = [row for row in rows if row["setting"] == name]
        walls = [row["seconds"] for row in mine]
        each = ", ".join(f"{w:.1f}" for w in walls)
        best = ", ".join(f"{row['best_value']:.3f}" for row in mine)
        summed = statistics.median(row["trial_seconds_sum"] for row in mine)
        print(f"| {name} | {statistics.median(walls):.1f} | {each} | {summed:.1f} | {best} | "
              f"{mine[0]['test_accuracy']:.3f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"env": env, "args": vars(args), "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
