"""Benchmark: seconds per epoch of 2-worker ``dist_sync`` fine-tuning against 1 process.

    python benchmarks/scale_finetune.py [--n-samples 2000] [--n-epochs 4] [--batch-size 64]
                                        [--workers 2] [--json PATH]

Fine-tunes digits_cnn (transfer layer ``fc1_relu_fwd``, new dense head, everything trained)
on ``--n-samples`` shifted digit images (the digits repeated with a little noise), the same
data, global batch size, seed and settings in both runs: once in this process
(``kvstore=None``), once as ``--workers`` workers and 1 parameter server started by
:func:`repurpose.cli._launch.launch` on loopback (``kvstore='dist_sync'``). Seconds per epoch
are the median of ``history_[i]['seconds']`` over epochs 2.. (epoch 1 includes graph building
and, distributed, the first kvstore round trips), rank 0's for the distributed run. No
validation split, no checkpoints. Each worker uses one OpenMP thread
(``OMP_NUM_THREADS=1``), and so does the single process, so the comparison is "1 core vs N
cores" when the machine has them; on fewer cores the workers and the server share them.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from finetune import digits_data  # same data as benchmarks/finetune.py (same folder)

PARAMS = dict(transfer_layer="fc1_relu_fwd", learning_rate=0.01, validation_fraction=0.0,
              early_stopping=False, random_state=0)


def fit(args, kvstore):
    from repurpose import SourceModel
    from repurpose.repurposers import FineTuneRepurposer

    X, y = digits_data(args.n_samples)
    model = FineTuneRepurposer(SourceModel.from_zoo("digits_cnn"), n_epochs=args.n_epochs,
                               batch_size=args.batch_size, kvstore=kvstore, **PARAMS)
    return model.fit(X, y)


def per_epoch(history):
    seconds = [row["seconds"] for row in history[1:]] or [history[0]["seconds"]]
    return statistics.median(seconds)


def run_worker(args):
    from repurpose.repurposers._distributed import get_kvstore

    model = fit(args, "dist_sync")
    if get_kvstore("dist_sync").rank == 0:
        with open(args.worker_out, "w") as handle:
            json.dump(model.history_, handle)


def run_single(args):
    """The single-process baseline in a fresh process with the same thread setting."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "single.json")
        cmd = [sys.executable, __file__, "--single-out", out, *_shared(args)]
        subprocess.run(cmd, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        with open(out) as handle:
            return json.load(handle)


def _shared(args):
    return ["--n-samples", str(args.n_samples), "--n-epochs", str(args.n_epochs),
            "--batch-size", str(args.batch_size)]


def run_distributed(args):
    from repurpose.cli._launch import launch

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank0.json")
        cmd = [sys.executable, __file__, "--worker-out", out, *_shared(args)]
        started = time.perf_counter()
        launch(cmd, n_workers=args.workers, n_servers=1, timeout=1800,
               env=dict(os.environ, OMP_NUM_THREADS="1"))
        wall = time.perf_counter() - started
        with open(out) as handle:
            return json.load(handle), wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--n-epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--single-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_out:
        return run_worker(args)
    if args.single_out:
        with open(args.single_out, "w") as handle:
            json.dump(fit(args, None).history_, handle)
        return None
    single = run_single(args)
    dist, wall = run_distributed(args)
    s1, s2 = per_epoch(single), per_epoch(dist)
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "settings": {"n_samples": args.n_samples, "n_epochs": args.n_epochs,
                     "batch_size": args.batch_size, "workers": args.workers, "servers": 1,
                     "omp_num_threads": 1},
        "single_s_per_epoch": s1, "dist_s_per_epoch": s2, "speedup": s1 / s2,
        "dist_wall_s_incl_startup": wall,
        "final_train_loss": {"single": single[-1]["train_loss"],
                             "dist": dist[-1]["train_loss"]},
    }
    print("| run | s/epoch (median, epochs 2..) | final train loss |")
    print("|---|---|---|")
    print(f"| 1 process | {s1:.3f} | {single[-1]['train_loss']:.5f} |")
    print(f"| {args.workers} workers + 1 server, dist_sync | {s2:.3f} | "
          f"{dist[-1]['train_loss']:.5f} |")
    print(f"speed-up {s1 / s2:.2f}x; distributed wall time incl. start-up {wall:.1f} s; "
          f"{os.cpu_count()} CPUs")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return None


if __name__ == "__main__":
    sys.exit(main())
