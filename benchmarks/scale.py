"""Sharded feature extraction on Dask: throughput on a LocalCluster of 1 and 2 worker
processes (1 thread each) against in-process extraction, on the same images.

    python benchmarks/scale.py [--n-images 2000] [--model mobilenet0.25] [--shard-size 100]
                               [--workers 1 2] [--repeats 2] [--json PATH] [--all]

``--all`` then runs the tuning and fine-tuning parts (``benchmarks/scale_tuning.py``,
``benchmarks/scale_finetune.py``), so one command gives the three figures of the scale-out
issue.

The images: ``--n-images`` seeded 256x256 RGB JPEG files in an image folder (10 class
folders), decoded, resized to 224 and centre-cropped by each task, as
``repurpose extract --data DIR --scheduler ...`` would. The model: ``--model`` from the Gluon
model zoo with random seeded weights (no download), features of its global average pool.
Every variant is :func:`repurpose.features.extract_to_store` into a fresh store folder,
timed from the call to its return (manifest and every shard file written, the store
reopened). MXNet runs 1 OpenMP thread per process everywhere (``OMP_NUM_THREADS=1``, set
before MXNet is imported here and in the workers), so a worker computes on 1 core; the
in-process run still overlaps image decoding with MXNet's engine thread and so uses both
cores of a 2-core machine (measured: the same throughput as 2 workers).

Each cluster is started beforehand; its first extraction (``cold``: each worker loads the
model and builds its network) is reported apart from the following ``warm`` ones (the model
is cached per worker process). Scaling efficiency at k workers is
``throughput(k) / (k * throughput(1 worker))``; against in-process it is
``throughput(k) / (k * throughput(in-process))``.

``run_extraction(args)`` returns the figures as a dict, for ``benchmarks/scale_*.py`` or a
combined report to import.
"""
import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before MXNet is imported
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import numpy as np  # noqa: E402

from repurpose import SourceModel  # noqa: E402
from repurpose.features import FeatureStore, extract_to_store  # noqa: E402

OPTIONS = {"resize": 224, "crop": 224, "mean": (0.485, 0.456, 0.406),
           "std": (0.229, 0.224, 0.225)}


def make_images(root, n_images, seed=0):
    """``n_images`` smooth random 256x256 JPEGs in 10 class folders."""
    from PIL import Image

    rng = np.random.RandomState(seed)
    for i in range(n_images):
        folder = os.path.join(root, f"class{i % 10}")
        os.makedirs(folder, exist_ok=True)
        small = rng.randint(0, 255, (16, 16, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((256, 256), Image.BILINEAR)
        image.save(os.path.join(folder, f"{i:06d}.jpg"), quality=90)
    return root


def feature_layer(model):
    pools = [n for n in model.layer_names if "pool" in n]
    return pools[-1]


def time_run(model, data, layer, out, **kwargs):
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    store = extract_to_store(model, data, [layer], out, image_options=OPTIONS,
                             progress=False, **kwargs)
    elapsed = time.perf_counter() - started
    return elapsed, store


def cluster_runs(model, data, layer, work, n_workers, args, reference):
    import distributed

    started = time.perf_counter()
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0",
                                  env={"OMP_NUM_THREADS": "1"}) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(n_workers)
        client.run(lambda: __import__("repurpose").__version__)  # imported, as a live cluster
        startup = time.perf_counter() - started
        out = os.path.join(work, f"dask{n_workers}")
        cold, store = time_run(model, data, layer, out, client=client,
                               shard_size=args.shard_size)
        same = _same_files(out, reference)
        warm = []
        for _ in range(args.repeats):
            elapsed, _ = time_run(model, data, layer, out, client=client,
                                  shard_size=args.shard_size)
            warm.append(elapsed)
    return {"workers": n_workers, "startup_s": round(startup, 2), "cold_s": round(cold, 2),
            "warm_s": [round(w, 2) for w in warm], "best_warm_s": round(min(warm), 2),
            "images_per_s": round(args.n_images / min(warm), 1),
            "identical_to_in_process": same}


def _same_files(a, b):
    def listing(folder):
        found = {}
        for root, _, names in os.walk(folder):
            for name in names:
                with open(os.path.join(root, name), "rb") as handle:
                    found[os.path.relpath(os.path.join(root, name), folder)] = handle.read()
        return found
    return listing(a) == listing(b)


def run_extraction(args):
    work = tempfile.mkdtemp(prefix="repurpose-scale-")
    try:
        images = make_images(os.path.join(work, "images"), args.n_images)
        model = SourceModel.from_zoo(args.model, pretrained=False, random_state=0)
        layer = feature_layer(model)
        in_process = []
        reference = os.path.join(work, "inproc")
        cold, store = time_run(model, images, layer, reference, shard_size=args.shard_size)
        for _ in range(args.repeats):
            elapsed, store = time_run(model, images, layer, reference,
                                      shard_size=args.shard_size)
            in_process.append(elapsed)
        store_bytes = sum(os.path.getsize(os.path.join(r, f))
                          for r, _, files in os.walk(reference) for f in files
                          if not r.startswith(os.path.join(reference, "source")))
        model_bytes = sum(os.path.getsize(os.path.join(reference, "source", f))
                          for f in os.listdir(os.path.join(reference, "source")))
        reopened = FeatureStore.open(reference)
        started = time.perf_counter()
        n_rows = sum(len(X) for _, X in reopened.iter_batches(256))
        read_s = time.perf_counter() - started
        results = {
            "machine": {"python": platform.python_version(), "n_cpus": os.cpu_count(),
                        "load_avg_before": os.getloadavg()},
            "n_images": args.n_images, "model": args.model, "layer": layer,
            "feature_dim": reopened.dims[layer], "shard_size": args.shard_size,
            "n_shards": reopened.n_shards,
            "in_process": {"cold_s": round(cold, 2), "warm_s": [round(t, 2) for t in in_process],
                           "best_warm_s": round(min(in_process), 2),
                           "images_per_s": round(args.n_images / min(in_process), 1)},
            "store": {"feature_bytes": store_bytes, "model_checkpoint_bytes": model_bytes,
                      "read_rows_per_s": round(n_rows / read_s)},
            "dask": [],
        }
        for n_workers in args.workers:
            results["dask"].append(cluster_runs(model, images, layer, work, n_workers, args,
                                                reference))
        one = next((r for r in results["dask"] if r["workers"] == 1), None)
        base = results["in_process"]["images_per_s"]
        for run in results["dask"]:
            k = run["workers"]
            run["efficiency_vs_in_process"] = round(run["images_per_s"] / (k * base), 3)
            if one is not None:
                run["efficiency_vs_1_worker"] = round(
                    run["images_per_s"] / (k * one["images_per_s"]), 3)
        results["machine"]["load_avg_after"] = os.getloadavg()
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-images", type=int, default=2000)
    parser.add_argument("--model", default="mobilenet0.25")
    parser.add_argument("--shard-size", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", default=None)
    parser.add_argument("--all", action="store_true",
                        help="then also run benchmarks/scale_tuning.py (20 trials, 1 vs 2 "
                             "Dask workers) and benchmarks/scale_finetune.py (dist_sync "
                             "seconds per epoch, 2 workers vs 1 process) with their defaults")
    args = parser.parse_args()
    results = run_extraction(args)
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    if args.all:  # separate processes: each part sets up its own cluster or launcher
        import subprocess

        here = os.path.dirname(os.path.abspath(__file__))
        for script in ("scale_tuning.py", "scale_finetune.py"):
            print(f"== {script}", flush=True)
            subprocess.run([sys.executable, os.path.join(here, script)], check=True)


if __name__ == "__main__":
    main()
