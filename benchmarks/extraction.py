"""Benchmark of the extraction engine, in one process and one run.

1. float32 throughput of ``SourceModel.extract`` against the ceiling for this engine: a raw
   hybridized Gluon forward of the same network truncated at the same layer (same numpy
   batches in, numpy out). resnet18_v1, random seeded weights, 224x224, batch 32, CPU.
2. Three layers from one pass against one layer.
3. Peak memory growth while streaming many samples to disk with ``out=`` (each in a fresh
   subprocess, so earlier steps do not raise the high-water mark), against in-memory.
4. int8 and bf16: throughput against the raw float32 forward (resnet18), and on the zoo model
   ``digits_cnn``: cosine similarity of features to float32, and a logistic-regression head
   on its target task (digits 5-9) trained on int8 / bf16 vs float32 features.

The timed variants run interleaved (raw, extract x1, extract x3, int8, bf16, raw, ...) after
a warm-up round, and medians are reported, so drifts of a shared machine hit all alike.

Usage::

    PYTHONPATH=. python benchmarks/extraction.py [--quick] [--json results.json]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import mxnet as mx
import numpy as np
from mxnet.gluon.data import Dataset

LAYER = "resnetv10_pool1_fwd"  # the global average pool before the classifier
LAYERS3 = ["resnetv10_stage2_activation1", "resnetv10_stage3_activation1", LAYER]
STREAM_LAYERS = ["relu2_fwd", "relu1_fwd", "fc1_relu_fwd"]  # 2048 + 1024 + 64 floats/sample


# ---------------------------------------------------------------------- machine
def machine_info():
    from repurpose.features._quantize import read_cpu_flags, _cpu_model

    flags = read_cpu_flags()
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile",
              "amx_int8", "amx_bf16"]
    return {
        "cpu": _cpu_model(), "n_cpus": os.cpu_count(),
        "cpu_flags": [f for f in wanted if f in flags],
        "python": platform.python_version(), "mxnet": mx.__version__,
        "mkldnn": mx.runtime.Features().is_enabled("MKLDNN"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
    }


def vm_status(field):
    """A memory figure of this process from /proc/self/status, in MB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise KeyError(field)


# ---------------------------------------------------------------------- 1, 2, 4: timing
def build_resnet18(seed):
    from repurpose import SourceModel, seeding

    seeding.seed_everything(seed)
    net = mx.gluon.model_zoo.vision.get_model("resnet18_v1", pretrained=False)
    net.initialize(mx.init.Xavier())
    model = SourceModel.from_gluon(net, (3, 224, 224))
    if LAYER not in model.layer_names:
        raise SystemExit(f"{LAYER} is not a layer of resnet18_v1 here: {model.layer_names[-4:]}")
    # The raw ceiling: Gluon's own truncated network (net.features ends with the global
    # average pool), hybridized like the engine's block.
    raw = net.features
    raw.hybridize(static_alloc=True, static_shape=True)
    return model, raw


def raw_forward(raw, X, batch_size):
    outs = []
    for start in range(0, len(X), batch_size):
        outs.append(raw(mx.nd.array(X[start:start + batch_size])).asnumpy())
    return outs


def time_call(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def timing_section(args, results):
    model, raw = build_resnet18(args.seed)
    n = args.batches * args.batch_size
    X = np.random.RandomState(args.seed).rand(n, 3, 224, 224).astype(np.float32)
    bs = args.batch_size
    variants = {
        "raw_fp32": lambda: raw_forward(raw, X, bs),
        "extract_fp32_1layer": lambda: model.extract(X, [LAYER], batch_size=bs, pool="avg",
                                                     progress=False),
        "extract_fp32_3layers": lambda: model.extract(X, LAYERS3, batch_size=bs, pool="avg",
                                                      progress=False),
    }
    from repurpose.features._quantize import missing_instructions, read_cpu_flags

    low = [p for p in ("int8", "bf16") if missing_instructions(p, read_cpu_flags()) is None]
    for precision in low:
        variants[f"extract_{precision}_1layer"] = (
            lambda p=precision: model.extract(X, [LAYER], batch_size=bs, pool="avg",
                                              precision=p, progress=False))
    for precision in ("int8", "bf16"):
        if precision not in low:
            results["skipped"].append(f"{precision}: CPU lacks "
                                      f"{missing_instructions(precision, read_cpu_flags())}")
    # Warm-up round (also builds, calibrates and caches the blocks; timed apart).
    warm = {}
    outputs = {}
    for name, fn in variants.items():
        warm[name], outputs[name] = time_call(fn)
    reference = np.concatenate(outputs["raw_fp32"]).reshape(n, -1)
    checks = {"max_abs_diff_extract_vs_raw":
              float(np.abs(outputs["extract_fp32_1layer"][LAYER] - reference).max())}
    for precision in low:
        got = outputs[f"extract_{precision}_1layer"][LAYER]
        checks[f"resnet18_cosine_{precision}_min"] = float(cosine(got, reference).min())
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            times[name].append(time_call(fn)[0])
    rates = {name: [n / t for t in ts] for name, ts in times.items()}
    med = {name: float(np.median(r)) for name, r in rates.items()}
    paired = {name: float(np.median(np.array(rates[name]) / np.array(rates["raw_fp32"])))
              for name in variants}
    t1, t3 = np.array(times["extract_fp32_1layer"]), np.array(times["extract_fp32_3layers"])
    results["timing"] = {
        "model": "resnet18_v1 (random seeded weights)", "input": "3x224x224",
        "batch_size": bs, "images_per_repeat": n, "repeats": args.repeats,
        "layer": LAYER, "layers3": LAYERS3, "pool": "avg",
        "images_per_s_median": med, "images_per_s_all": rates,
        "ratio_to_raw_of_medians": {k: v / med["raw_fp32"] for k, v in med.items()},
        "ratio_to_raw_paired_median": paired,
        "time_ratio_3layers_vs_1layer": float(np.median(t3) / np.median(t1)),
        "time_ratio_3layers_vs_1layer_paired_median": float(np.median(t3 / t1)),
        "warmup_s": warm, "checks": checks,
    }


def cosine(a, b):
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


# ---------------------------------------------------------------------- 3: memory
class LazyDigits(Dataset):
    """A Gluon Dataset of n digit-like images made on demand (only 1,797 bases in memory)."""

    def __init__(self, n):
        from repurpose.data import load_digits_images

        self._base, _ = load_digits_images()
        self._n = n

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        image = self._base[i % len(self._base)]
        shift = (i // len(self._base)) % 8  # each pass over the bases shifts them right
        return np.roll(image, shift, axis=2), 0


def rss_child(mode, n, batch_size):
    """Run in a subprocess: extract n lazy samples, report peak RSS growth as JSON."""
    from repurpose import SourceModel

    model = SourceModel.from_zoo("digits_cnn")
    data = LazyDigits(n)
    model.extract(LazyDigits(64), STREAM_LAYERS, batch_size=batch_size, progress=False)
    try:  # reset the high-water mark to the current RSS (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass
    start_rss, start_hwm = vm_status("VmRSS"), vm_status("VmHWM")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "features") if mode == "stream" else None
        feats = model.extract(data, STREAM_LAYERS, batch_size=batch_size, out=out,
                              progress=False)
        elapsed = time.perf_counter() - started
        peak = vm_status("VmHWM")
        n_bytes = sum(f.nbytes for f in feats.values())
        shapes = {k: list(v.shape) for k, v in feats.items()}
        del feats
    print(json.dumps({"mode": mode, "n_samples": n, "rss_start_mb": start_rss,
                      "hwm_start_mb": start_hwm, "hwm_end_mb": peak,
                      "peak_growth_mb": peak - start_rss, "features_mb": n_bytes / 2**20,
                      "shapes": shapes, "seconds": elapsed}))


def memory_section(args, results):
    import repurpose

    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(repurpose.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    runs = {}
    for mode in ("stream", "memory"):
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--rss-child", mode,
             "--stream-samples", str(args.stream_samples)],
            env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"memory child ({mode}) failed:\n{proc.stderr}")
        runs[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    results["memory"] = {"model": "digits_cnn", "layers": STREAM_LAYERS, "pool": None,
                         "data": "Gluon Dataset generating samples on demand", **runs}


# ---------------------------------------------------------------------- 4: zoo accuracy
def zoo_section(args, results):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from repurpose import SourceModel
    from repurpose.data import load_digits_images
    from repurpose.features._quantize import missing_instructions, read_cpu_flags

    model = SourceModel.from_zoo("digits_cnn")
    layer = model.metadata["feature_layer"]
    X, y = load_digits_images(classes=model.metadata["target_classes"])
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y,
                                              random_state=args.seed)
    precisions = ["float32"] + [p for p in ("int8", "bf16")
                                if missing_instructions(p, read_cpu_flags()) is None]
    zoo = {"model": "digits_cnn", "layer": layer, "task": "digits 5-9",
           "n_train": len(X_tr), "n_test": len(X_te), "split_seed": args.seed}
    feats = {}
    for precision in precisions:
        # int8 is calibrated on the training images, and the same calibrated network then
        # gives the test features.
        kwargs = {"calib_data": X_tr} if precision == "int8" else {}
        get = lambda data: model.extract(data, [layer], batch_size=64, precision=precision,
                                         progress=False, **kwargs)[layer]
        feats[precision] = (get(X_tr), get(X_te), get(X))
        head = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        head.fit(feats[precision][0], y_tr)
        zoo[f"accuracy_{precision}"] = float(head.score(feats[precision][1], y_te))
        if precision != "float32":
            cos = cosine(feats[precision][2], feats["float32"][2])
            zoo[f"cosine_{precision}_min"] = float(cos.min())
            zoo[f"cosine_{precision}_mean"] = float(cos.mean())
    results["zoo"] = zoo


# ---------------------------------------------------------------------- report
def report(results):
    rows = []

    def row(what, value, target="", met=None):
        rows.append((what, value, target, "" if met is None else ("yes" if met else "NO")))

    t = results.get("timing")
    if t:
        med, ratio = t["images_per_s_median"], t["ratio_to_raw_of_medians"]
        row("raw hybridized Gluon fp32 (ceiling), img/s", f"{med['raw_fp32']:.1f}")
        row("SourceModel.extract fp32, 1 layer, img/s", f"{med['extract_fp32_1layer']:.1f}")
        row("  extract / raw (ratio of medians)", f"{ratio['extract_fp32_1layer']:.3f}",
            ">= 0.95", ratio["extract_fp32_1layer"] >= 0.95)
        row("  extract / raw (median of paired)",
            f"{t['ratio_to_raw_paired_median']['extract_fp32_1layer']:.3f}")
        row("  max |extract - raw| (same features)",
            f"{t['checks']['max_abs_diff_extract_vs_raw']:.1e}")
        row("SourceModel.extract fp32, 3 layers, img/s", f"{med['extract_fp32_3layers']:.1f}")
        row("  time 3 layers / 1 layer", f"{t['time_ratio_3layers_vs_1layer']:.3f}",
            "<= 1.1", t["time_ratio_3layers_vs_1layer"] <= 1.1)
        for p, target in (("int8", 2.5), ("bf16", None)):
            name = f"extract_{p}_1layer"
            if name in med:
                row(f"SourceModel.extract {p}, 1 layer, img/s", f"{med[name]:.1f}")
                row(f"  {p} / raw fp32", f"{ratio[name]:.2f}x",
                    f">= {target}x" if target else "", ratio[name] >= target if target else None)
                row(f"  resnet18 cosine {p} vs fp32 (min)",
                    f"{t['checks'][f'resnet18_cosine_{p}_min']:.4f}")
                row(f"  {p} first call (build/calibrate + extract), s",
                    f"{t['warmup_s'][name]:.2f}")
    m = results.get("memory")
    if m:
        s, mem = m["stream"], m["memory"]
        row(f"stream {s['n_samples']} samples to disk: peak RSS growth, MB",
            f"{s['peak_growth_mb']:.1f}", "< 300", s["peak_growth_mb"] < 300)
        row(f"  features written, MB ({s['seconds']:.1f} s)", f"{s['features_mb']:.1f}")
        row("same in memory: peak RSS growth, MB", f"{mem['peak_growth_mb']:.1f}")
        row("  features held in memory, MB", f"{mem['features_mb']:.1f}")
    z = results.get("zoo")
    if z:
        for p in ("int8", "bf16"):
            if f"cosine_{p}_min" in z:
                row(f"digits_cnn {z['layer']} cosine {p} vs fp32 (min / mean)",
                    f"{z[f'cosine_{p}_min']:.4f} / {z[f'cosine_{p}_mean']:.4f}", ">= 0.99",
                    z[f"cosine_{p}_min"] >= 0.99)
        row(f"logistic head on digits 5-9, fp32 features, test acc (n={z['n_test']})",
            f"{100 * z['accuracy_float32']:.2f}%")
        for p in ("int8", "bf16"):
            if f"accuracy_{p}" in z:
                diff = 100 * (z[f"accuracy_{p}"] - z["accuracy_float32"])
                row(f"  {p} features, test acc (diff)",
                    f"{100 * z[f'accuracy_{p}']:.2f}% ({diff:+.2f})", "within 1 point",
                    abs(diff) <= 1.0)
    widths = [max(len(r[i]) for r in rows + [("what", "value", "target", "met")])
              for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(("what", "value", "target", "met"), widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats, batches and streamed samples (about 1 minute)")
    parser.add_argument("--json", metavar="PATH", help="write all figures to this JSON file")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5)")
    parser.add_argument("--batches", type=int, default=None,
                        help="batches per timed call (default 4)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--stream-samples", type=int, default=None,
                        help="samples streamed in the memory test (default 20000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rss-child", choices=("stream", "memory"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.batches = args.batches or (2 if args.quick else 4)
    args.stream_samples = args.stream_samples or (5000 if args.quick else 20000)
    if args.rss_child:
        rss_child(args.rss_child, args.stream_samples, 256)
        return
    results = {"machine": machine_info(), "args": vars(args), "skipped": []}
    started = time.perf_counter()
    memory_section(args, results)  # first: its subprocesses then share the CPUs with nobody
    timing_section(args, results)
    zoo_section(args, results)
    results["total_seconds"] = time.perf_counter() - started
    info = results["machine"]
    print(f"CPU: {info['cpu']} ({info['n_cpus']} cores), flags: {' '.join(info['cpu_flags'])}")
    print(f"MXNet {info['mxnet']} (MKLDNN {'on' if info['mkldnn'] else 'off'}), "
          f"Python {info['python']}, OMP_NUM_THREADS={info['omp_num_threads']}")
    print(report(results))
    for line in results["skipped"]:
        print(f"skipped: {line}")
    print(f"total {results['total_seconds']:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
