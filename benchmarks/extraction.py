"""Benchmark of the extraction engine, in one process and one run.

1. float32 throughput of ``extract_features`` (whose float32 block MXNet's MKLDNN backend
   fuses on CPU) against the ceiling a user would write by hand: a raw hybridized Gluon
   forward of the same network truncated at the same layer (same numpy batches in, numpy
   out), and against the engine with fusion turned off. resnet18_v1, random seeded weights,
   224x224, batch 32, CPU.
2. Three layers from one pass against one layer.
3. Peak memory growth while streaming many samples to disk with ``out=`` (each in a fresh
   subprocess, so earlier steps do not raise the high-water mark), against in-memory.
4. int8 and bf16: throughput against the raw float32 forward (resnet18), and on the zoo model
   ``digits_cnn``: cosine similarity of features to float32, and a logistic-regression head
   on its target task (digits 5-9) trained on int8 / bf16 vs float32 features.
5. ONNX, side by side with 1-4: onnxruntime running an ONNX file of the same network (the
   Gluon resnet18_v1 exported by MXNet's own ``mx.onnx.export_model`` into a temporary
   folder, or ``--onnx FILE``), and ``SourceModel.from_onnx`` of that file through
   ``extract`` (float32 and int8). onnxruntime gets the same threads as MXNet
   (``intra_op_num_threads``, one inter-op thread).

The timed variants run interleaved (raw, extract x1, extract unfused, extract x3, int8, bf16,
onnxruntime, imported, raw, ...) after a warm-up round, and medians are reported, so drifts
of a shared machine hit all alike. MXNet and onnxruntime both use ``--threads`` threads
(default 2: ``OMP_NUM_THREADS`` is set before MXNet is imported).

``--isa-table`` instead measures int8 against float32 (and bf16 where it runs) once per
instruction-set level, each in a subprocess whose oneDNN is capped with ``DNNL_MAX_CPU_ISA``
(checked with ``DNNL_VERBOSE``, which prints the level oneDNN uses and the kernels).

Usage::

    PYTHONPATH=. python benchmarks/extraction.py [--quick] [--json results.json]
    PYTHONPATH=. python benchmarks/extraction.py --onnx /path/to/resnet18.onnx
    PYTHONPATH=. python benchmarks/extraction.py --isa-table [--json isa.json]
"""
import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time


from _threads import set_threads_from_argv  # noqa: E402  (beside this script)

# MXNet reads its thread count when it is imported: set it first.
set_threads_from_argv()

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet.gluon.data import Dataset  # noqa: E402

LAYER = "resnetv10_pool1_fwd"  # the global average pool before the classifier
LAYERS3 = ["resnetv10_stage2_activation1", "resnetv10_stage3_activation1", LAYER]
STREAM_LAYERS = ["relu2_fwd", "relu1_fwd", "fc1_relu_fwd"]  # 2048 + 1024 + 64 floats/sample
FUSION_ENV = "REPURPOSE_MKLDNN_FUSION"

#: oneDNN instruction-set caps (DNNL_MAX_CPU_ISA values) and the CPU flags each needs, from
#: the oldest to the newest. oneDNN 2.4.4 (MXNet 1.9.1) stops at AVX512_CORE_BF16 unless
#: asked for AMX, which Linux also has to allow the process (see request_amx).
ISA_LEVELS = [
    ("SSE41", ("sse4_1",)),
    ("AVX", ("avx",)),
    ("AVX2", ("avx2",)),
    ("AVX2_VNNI", ("avx2", "avx_vnni")),
    ("AVX512_CORE", ("avx512f", "avx512bw", "avx512vl", "avx512dq")),
    ("AVX512_CORE_VNNI", ("avx512_vnni",)),
    ("AVX512_CORE_BF16", ("avx512_bf16",)),
    ("AVX512_CORE_AMX", ("amx_int8", "amx_bf16", "amx_tile")),
]


# ---------------------------------------------------------------------- machine
def machine_info():
    from repurpose.features._quantize import read_cpu_flags, _cpu_model

    flags = read_cpu_flags()
    wanted = ["sse4_1", "avx", "avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
              "amx_tile", "amx_int8", "amx_bf16"]
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {
        "cpu": _cpu_model(), "n_cpus": os.cpu_count(),
        "cpu_flags": [f for f in wanted if f in flags],
        "python": platform.python_version(), "mxnet": mx.__version__,
        "mkldnn": mx.runtime.Features().is_enabled("MKLDNN"),
        "onnxruntime": ort_version,
        "threads": int(os.environ["OMP_NUM_THREADS"]),
        "load_average_start": os.getloadavg(),
    }


def vm_status(field):
    """A memory figure of this process from /proc/self/status, in MB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise KeyError(field)


@contextlib.contextmanager
def fusion_off():
    """Run the engine with its float32 MKLDNN fusion turned off (its own switch)."""
    previous = os.environ.get(FUSION_ENV)
    os.environ[FUSION_ENV] = "0"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(FUSION_ENV, None)
        else:
            os.environ[FUSION_ENV] = previous


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
    # average pool), hybridized as a user would (static memory, no MKLDNN partitioning).
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


def cosine(a, b):
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def max_relative_difference(a, b):
    """max |a - b| over max |b|: the differences on the features' own scale."""
    a, b = np.asarray(a).reshape(len(a), -1), np.asarray(b).reshape(len(b), -1)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def first_line(err):
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


# ---------------------------------------------------------------------- 5: ONNX
def export_onnx(raw, folder, batch_size):
    """Export ``raw`` (hybridized, run once) with MXNet's own exporter; return the file.

    MXNet's exporter lists every weight among the graph inputs as well as the
    initializers, so onnxruntime treats the weights as inputs a caller may override: it then
    folds no constant (batch norm stays apart from the convolutions) and warns once per
    weight. As its warning suggests, the weights are taken off the input list; the file
    computes the same, and onnxruntime runs it at its best (here about 1.8x faster).
    """
    import onnx

    prefix = os.path.join(folder, "resnet18_v1_features")
    raw.export(prefix)
    exported = mx.onnx.export_model(
        f"{prefix}-symbol.json", f"{prefix}-0000.params", in_shapes=[(batch_size, 3, 224, 224)],
        in_types=[np.float32], onnx_file_path=f"{prefix}.onnx", dynamic=True,
        dynamic_input_shapes=[(None, 3, 224, 224)])
    model = onnx.load(exported)
    weights = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    onnx.checker.check_model(model)
    path = f"{prefix}.onnx"
    onnx.save(model, path)
    return path


def ort_session(path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def ort_forward(session, X, batch_size):
    name = session.get_inputs()[0].name
    return [session.run(None, {name: X[start:start + batch_size]})[0]
            for start in range(0, len(X), batch_size)]


def onnx_variants(args, raw, X, variants, results, folder):
    """Add onnxruntime and from_onnx variants for the ONNX file; say what could not run."""
    from repurpose import SourceModel
    from repurpose.features import extract_features

    onnx_info = results["onnx"] = {}
    if args.onnx:
        path, origin = args.onnx, "given with --onnx"
    else:
        try:
            path = export_onnx(raw, folder, args.batch_size)
            origin = "resnet18_v1 features exported by mx.onnx.export_model (same weights)"
        except Exception as err:  # noqa: BLE001 - a benchmark reports and goes on
            onnx_info["export_error"] = first_line(err)
            return
    onnx_info.update({"file": path, "origin": origin, "same_weights": not args.onnx})
    bs = args.batch_size
    try:
        session = ort_session(path, args.threads)
        variants["ort_fp32"] = lambda: ort_forward(session, X, bs)
    except ImportError as err:
        onnx_info["ort_error"] = first_line(err)
    except Exception as err:  # noqa: BLE001
        onnx_info["ort_error"] = first_line(err)
    try:
        imported = SourceModel.from_onnx(path, input_shape=(3, 224, 224))
        layer = imported.output_layers[0]
        onnx_info["imported_layer"] = layer
        probe = extract_features(imported, X[:2], [layer], batch_size=2, pool="avg",
                                 progress=False)
        onnx_info["imported_features"] = int(probe[layer].shape[1])
    except Exception as err:  # noqa: BLE001 - the importer is being rewritten
        onnx_info["import_error"] = first_line(err)
        return
    variants["imported_fp32"] = lambda: extract_features(imported, X, [layer], batch_size=bs,
                                                         pool="avg", progress=False)
    if "extract_int8_1layer" in variants:
        variants["imported_int8"] = lambda: extract_features(
            imported, X, [layer], batch_size=bs, pool="avg", precision="int8", progress=False)


def timing_section(args, results):
    from repurpose.features import extract_features

    model, raw = build_resnet18(args.seed)
    n = args.batches * args.batch_size
    X = np.random.RandomState(args.seed).rand(n, 3, 224, 224).astype(np.float32)
    bs = args.batch_size

    def extract_unfused():
        with fusion_off():
            return extract_features(model, X, [LAYER], batch_size=bs, pool="avg", progress=False)

    variants = {
        "raw_fp32": lambda: raw_forward(raw, X, bs),
        "extract_fp32_1layer": lambda: extract_features(model, X, [LAYER], batch_size=bs,
                                                        pool="avg", progress=False),
        "extract_fp32_unfused": extract_unfused,
        "extract_fp32_3layers": lambda: extract_features(model, X, LAYERS3, batch_size=bs,
                                                         pool="avg", progress=False),
    }
    from repurpose.exceptions import HardwareNotSupportedError
    from repurpose.features._quantize import check_precision_supported

    low = []
    for precision in ("int8", "bf16"):
        try:
            check_precision_supported(precision, [mx.cpu()])
        except HardwareNotSupportedError as err:
            results["skipped"].append(f"{precision}: {err}")
            continue
        low.append(precision)
        variants[f"extract_{precision}_1layer"] = (
            lambda p=precision: extract_features(model, X, [LAYER], batch_size=bs, pool="avg",
                                                 precision=p, progress=False))
    with tempfile.TemporaryDirectory() as folder:
        # The exporter needs the hybridized graph, which the first forward builds.
        raw(mx.nd.array(X[:bs]))
        onnx_variants(args, raw, X, variants, results, folder)
        # Warm-up round (also builds, fuses, calibrates and caches the blocks; timed apart).
        warm, outputs = {}, {}
        for name, fn in variants.items():
            warm[name], outputs[name] = time_call(fn)
        times = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, fn in variants.items():
                times[name].append(time_call(fn)[0])
    reference = np.concatenate(outputs["raw_fp32"]).reshape(n, -1)
    checks = {
        "max_abs_diff_extract_vs_raw":
            float(np.abs(outputs["extract_fp32_1layer"][LAYER] - reference).max()),
        "max_rel_diff_extract_vs_raw":
            max_relative_difference(outputs["extract_fp32_1layer"][LAYER], reference),
        "max_abs_diff_unfused_vs_raw":
            float(np.abs(outputs["extract_fp32_unfused"][LAYER] - reference).max()),
    }
    for precision in low:
        got = outputs[f"extract_{precision}_1layer"][LAYER]
        checks[f"resnet18_cosine_{precision}_min"] = float(cosine(got, reference).min())
    onnx_info = results.get("onnx", {})
    if "ort_fp32" in outputs:
        ort_out = np.concatenate(outputs["ort_fp32"]).reshape(n, -1)
        if onnx_info.get("same_weights"):
            checks["max_rel_diff_ort_vs_raw"] = max_relative_difference(ort_out, reference)
    if "imported_fp32" in outputs:
        layer = onnx_info["imported_layer"]
        imported = outputs["imported_fp32"][layer]
        if "ort_fp32" in outputs:
            checks["max_rel_diff_imported_vs_ort"] = max_relative_difference(imported, ort_out)
        if onnx_info.get("same_weights"):
            checks["max_rel_diff_imported_vs_raw"] = max_relative_difference(imported,
                                                                             reference)
        if "imported_int8" in outputs:
            checks["imported_cosine_int8_min"] = float(
                cosine(outputs["imported_int8"][layer], imported).min())
    rates = {name: [n / t for t in ts] for name, ts in times.items()}
    med = {name: float(np.median(r)) for name, r in rates.items()}

    def paired(a, b):
        return float(np.median(np.array(rates[a]) / np.array(rates[b])))

    pairs = {"extract/raw": ("extract_fp32_1layer", "raw_fp32"),
             "extract/unfused": ("extract_fp32_1layer", "extract_fp32_unfused"),
             "unfused/raw": ("extract_fp32_unfused", "raw_fp32"),
             "extract/ort": ("extract_fp32_1layer", "ort_fp32"),
             "imported/native": ("imported_fp32", "extract_fp32_1layer"),
             "imported/ort": ("imported_fp32", "ort_fp32"),
             "int8/ort_fp32": ("extract_int8_1layer", "ort_fp32"),
             "int8/raw_fp32": ("extract_int8_1layer", "raw_fp32"),
             "bf16/raw_fp32": ("extract_bf16_1layer", "raw_fp32"),
             "imported_int8/ort_fp32": ("imported_int8", "ort_fp32")}
    pairs = {k: v for k, v in pairs.items() if v[0] in med and v[1] in med}
    t1, t3 = np.array(times["extract_fp32_1layer"]), np.array(times["extract_fp32_3layers"])
    results["timing"] = {
        "model": "resnet18_v1 (random seeded weights)", "input": "3x224x224",
        "batch_size": bs, "images_per_repeat": n, "repeats": args.repeats,
        "threads": args.threads, "layer": LAYER, "layers3": LAYERS3, "pool": "avg",
        "images_per_s_median": med, "images_per_s_all": rates,
        "ratio_of_medians": {k: med[a] / med[b] for k, (a, b) in pairs.items()},
        "ratio_paired_median": {k: paired(a, b) for k, (a, b) in pairs.items()},
        "time_ratio_3layers_vs_1layer": float(np.median(t3) / np.median(t1)),
        "time_ratio_3layers_vs_1layer_paired_median": float(np.median(t3 / t1)),
        "warmup_s": warm, "checks": checks,
    }


# ---------------------------------------------------------------------- 6: per instruction set
def request_amx():
    """Ask Linux (>= 5.16) to let this process use AMX tiles, as oneDNN 2.4.4 does not.

    Without this, oneDNN capped at AVX512_CORE_AMX dies of SIGILL at its first AMX
    instruction. ``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)``; returns whether
    the kernel granted it.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    sys_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata = 158, 0x1023, 18
    return libc.syscall(sys_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0


def isa_probe_child():
    """Run under DNNL_VERBOSE=1: one float32 and one int8 extraction of ``digits_cnn``.

    The parent reads oneDNN's ``isa:`` line and the convolution kernels from stderr.
    """
    from repurpose import SourceModel
    from repurpose.data import load_digits_images
    from repurpose.features import extract_features

    if "AMX" in os.environ.get("DNNL_MAX_CPU_ISA", ""):
        request_amx()
    model = SourceModel.from_zoo("digits_cnn")
    X, _ = load_digits_images()
    for precision in ("float32", "int8"):
        extract_features(model, X[:64], ["fc1_relu_fwd"], batch_size=32, precision=precision,
                         progress=False)


def isa_timing_child(args):
    """resnet18 features at one instruction-set cap: float32, int8 (and bf16), as JSON."""
    from repurpose.features import extract_features

    if "AMX" in os.environ.get("DNNL_MAX_CPU_ISA", ""):
        request_amx()
    model, _ = build_resnet18(args.seed)
    n = args.batches * args.batch_size
    X = np.random.RandomState(args.seed).rand(n, 3, 224, 224).astype(np.float32)
    bs = args.batch_size
    variants = {p: (lambda p=p: extract_features(model, X, [LAYER], batch_size=bs, pool="avg",
                                                 precision=p, progress=False)[LAYER])
                for p in ("float32", "int8", "bf16")}
    out = {"isa": os.environ.get("DNNL_MAX_CPU_ISA", "default"), "errors": {}}
    warm, outputs = {}, {}
    for name in list(variants):
        try:
            warm[name], outputs[name] = time_call(variants[name])
        except Exception as err:  # noqa: BLE001 - e.g. bf16 has no kernels below AVX-512
            out["errors"][name] = first_line(err)
            del variants[name]
            # The engine had launched the next batch before the error surfaced; its own
            # error would otherwise surface later, in another variant's call.
            with contextlib.suppress(mx.base.MXNetError):
                mx.nd.waitall()
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            times[name].append(time_call(fn)[0])
    rates = {name: [n / t for t in ts] for name, ts in times.items()}
    out["images_per_s_median"] = {k: float(np.median(v)) for k, v in rates.items()}
    out["images_per_s_all"] = rates
    out["ratio_to_float32_paired_median"] = {
        k: float(np.median(np.array(v) / np.array(rates["float32"]))) for k, v in rates.items()}
    out["cosine_min"] = {k: float(cosine(v, outputs["float32"]).min())
                         for k, v in outputs.items() if k != "float32"}
    out["warmup_s"] = warm
    print(json.dumps(out))


def _verbose_summary(stderr):
    """oneDNN's instruction-set line and the convolution kernels, from DNNL_VERBOSE output."""
    isa, kernels = None, {"float32": set(), "int8": set()}
    for line in stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 3 and fields[:3] == ["dnnl_verbose", "info", "cpu"] and \
                fields[3].startswith("isa:"):
            isa = fields[3][4:]
        elif len(fields) > 6 and fields[1] == "exec" and fields[3] == "convolution":
            src = fields[6].split()[0] if fields[6] else ""
            kind = "int8" if src.startswith(("src_u8", "src_s8")) else "float32"
            kernels[kind].add(fields[4])
    return isa, {k: sorted(v) for k, v in kernels.items()}


def isa_section(args, results):
    from repurpose.features._quantize import read_cpu_flags

    flags = read_cpu_flags()
    script = os.path.abspath(__file__)
    import repurpose

    root = os.path.dirname(os.path.dirname(os.path.abspath(repurpose.__file__)))
    rows = []
    levels = [("default", ())] + ISA_LEVELS
    for isa, needed in levels:
        if not set(needed) <= set(flags):
            rows.append({"isa": isa, "skipped": f"CPU lacks {', '.join(needed)}"})
            continue
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MXNET_SUBGRAPH_VERBOSE="0")
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        for name in ("DNNL_MAX_CPU_ISA", "MKLDNN_MAX_CPU_ISA"):
            if isa == "default":
                env.pop(name, None)
            else:
                env[name] = isa
        probe = subprocess.run(
            [sys.executable, script, "--isa-probe-child"],
            env=dict(env, DNNL_VERBOSE="1", MKLDNN_VERBOSE="1"), capture_output=True,
            text=True, check=False)
        used, kernels = _verbose_summary(probe.stdout + probe.stderr)
        row = {"isa": isa, "onednn_isa": used, "kernels": kernels}
        if probe.returncode != 0:
            row["probe_error"] = f"exit {probe.returncode}: {probe.stderr.strip()[-300:]}"
        timing = subprocess.run(
            [sys.executable, script, "--isa-timing-child", "--repeats", str(args.repeats),
             "--batches", str(args.batches), "--batch-size", str(args.batch_size),
             "--seed", str(args.seed), "--threads", str(args.threads)],
            env=env, capture_output=True, text=True, check=False)
        if timing.returncode != 0:
            row["error"] = f"exit {timing.returncode}: {timing.stderr.strip()[-300:]}"
        else:
            row.update(json.loads(timing.stdout.strip().splitlines()[-1]))
        row["load_average"] = os.getloadavg()
        rows.append(row)
        print(isa_line(row), flush=True)
    results["isa_table"] = {"model": "resnet18_v1 (random seeded weights)",
                            "input": "3x224x224", "batch_size": args.batch_size,
                            "images_per_repeat": args.batches * args.batch_size,
                            "repeats": args.repeats, "threads": args.threads, "rows": rows}


def isa_line(row):
    if "skipped" in row:
        return f"{row['isa']:<17} skipped: {row['skipped']}"
    if "error" in row:
        return f"{row['isa']:<17} oneDNN: {row.get('onednn_isa')}; failed: {row['error']}"
    med, ratio = row["images_per_s_median"], row["ratio_to_float32_paired_median"]
    parts = [f"{row['isa']:<17} fp32 {med['float32']:6.1f} img/s",
             f"int8 {med.get('int8', float('nan')):6.1f} img/s "
             f"({ratio.get('int8', float('nan')):.2f}x, cos {row['cosine_min'].get('int8', float('nan')):.4f})"]
    if "bf16" in med:
        parts.append(f"bf16 {med['bf16']:6.1f} img/s ({ratio['bf16']:.2f}x, "
                     f"cos {row['cosine_min']['bf16']:.4f})")
    else:
        parts.append(f"bf16 -- ({row['errors'].get('bf16', 'not run')[:60]})")
    parts.append(f"load {row['load_average'][0]:.1f}")
    kernels = row.get("kernels", {})
    parts.append(f"oneDNN: {row.get('onednn_isa')}; int8 conv kernels "
                 f"{'/'.join(kernels.get('int8', [])) or '?'}")
    return "  ".join(parts)


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
    from repurpose.features import extract_features

    model = SourceModel.from_zoo("digits_cnn")
    data = LazyDigits(n)
    extract_features(model, LazyDigits(64), STREAM_LAYERS, batch_size=batch_size, progress=False)
    try:  # reset the high-water mark to the current RSS (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass
    start_rss, start_hwm = vm_status("VmRSS"), vm_status("VmHWM")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "features") if mode == "stream" else None
        feats = extract_features(model, data, STREAM_LAYERS, batch_size=batch_size, out=out,
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
             "--stream-samples", str(args.stream_samples), "--threads", str(args.threads)],
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
    from repurpose.exceptions import HardwareNotSupportedError
    from repurpose.features import extract_features
    from repurpose.features._quantize import check_precision_supported

    model = SourceModel.from_zoo("digits_cnn")
    layer = model.metadata["feature_layer"]
    X, y = load_digits_images(classes=model.metadata["target_classes"])
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y,
                                              random_state=args.seed)
    precisions = ["float32"]
    for precision in ("int8", "bf16"):
        try:
            check_precision_supported(precision, [mx.cpu()])
            precisions.append(precision)
        except HardwareNotSupportedError:
            pass
    zoo = {"model": "digits_cnn", "layer": layer, "task": "digits 5-9",
           "n_train": len(X_tr), "n_test": len(X_te), "split_seed": args.seed}
    feats = {}
    for precision in precisions:
        # int8 is calibrated on the training images, and the same calibrated network then
        # gives the test features.
        kwargs = {"calib_data": X_tr} if precision == "int8" else {}
        get = lambda data: extract_features(model, data, [layer], batch_size=64,
                                            precision=precision, progress=False,
                                            **kwargs)[layer]
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
        med, ratio, paired = (t["images_per_s_median"], t["ratio_of_medians"],
                              t["ratio_paired_median"])
        checks = t["checks"]

        def ratio_row(what, key, target=None):
            if key in ratio:
                row(what, f"{ratio[key]:.3f} (paired {paired[key]:.3f})",
                    f">= {target}" if target else "",
                    ratio[key] >= target if target else None)

        row("raw hybridized Gluon fp32 (no fusion), img/s", f"{med['raw_fp32']:.1f}")
        row("extract_features fp32 (MKLDNN-fused), img/s",
            f"{med['extract_fp32_1layer']:.1f}")
        ratio_row("  extract / raw", "extract/raw", 0.95)
        row("  max |extract - raw| (relative to feature scale)",
            f"{checks['max_rel_diff_extract_vs_raw']:.1e}")
        row("extract fp32 with fusion off, img/s", f"{med['extract_fp32_unfused']:.1f}")
        ratio_row("  fused / unfused", "extract/unfused")
        ratio_row("  unfused / raw", "unfused/raw")
        row("extract_features fp32, 3 layers, img/s", f"{med['extract_fp32_3layers']:.1f}")
        row("  time 3 layers / 1 layer", f"{t['time_ratio_3layers_vs_1layer']:.3f}",
            "<= 1.1", t["time_ratio_3layers_vs_1layer"] <= 1.1)
        for p in ("int8", "bf16"):
            name = f"extract_{p}_1layer"
            if name in med:
                row(f"extract_features {p}, img/s", f"{med[name]:.1f}")
                ratio_row(f"  {p} / raw fp32", f"{p}/raw_fp32")
                row(f"  resnet18 cosine {p} vs fp32 (min)",
                    f"{checks[f'resnet18_cosine_{p}_min']:.4f}")
                row(f"  {p} first call (build/calibrate + extract), s",
                    f"{t['warmup_s'][name]:.2f}")
    o = results.get("onnx")
    if o is not None:
        row("ONNX file", os.path.basename(o.get("file", "-")) + f" ({o.get('origin', '-')})")
        for key in ("export_error", "ort_error", "import_error"):
            if key in o:
                row(f"  {key.replace('_', ' ')}", o[key])
    if t and o is not None:
        if "ort_fp32" in med:
            row(f"onnxruntime fp32 ({t['threads']} intra-op threads), img/s",
                f"{med['ort_fp32']:.1f}")
            ratio_row("  extract fp32 / onnxruntime", "extract/ort", 1.0)
            if "max_rel_diff_ort_vs_raw" in checks:
                row("  max |onnxruntime - raw| (relative)",
                    f"{checks['max_rel_diff_ort_vs_raw']:.1e}")
        if "imported_fp32" in med:
            row(f"from_onnx + extract fp32 ({o['imported_layer']}), img/s",
                f"{med['imported_fp32']:.1f}")
            ratio_row("  imported / native extract", "imported/native", 0.95)
            ratio_row("  imported / onnxruntime", "imported/ort", 1.0)
            if "max_rel_diff_imported_vs_ort" in checks:
                row("  max |imported - onnxruntime| (relative)",
                    f"{checks['max_rel_diff_imported_vs_ort']:.1e}")
        vnni = {"avx512_vnni", "avx_vnni", "amx_int8"} & set(results["machine"]["cpu_flags"])
        ratio_row("native int8 / onnxruntime fp32", "int8/ort_fp32", 2.5 if vnni else None)
        if "imported_int8" in med:
            row("from_onnx + extract int8, img/s", f"{med['imported_int8']:.1f}")
            ratio_row("  imported int8 / onnxruntime fp32", "imported_int8/ort_fp32")
            row("  cosine imported int8 vs imported fp32 (min)",
                f"{checks['imported_cosine_int8_min']:.4f}")
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
                        help="fewer repeats, batches and streamed samples (about 2 minutes)")
    parser.add_argument("--json", metavar="PATH", help="write all figures to this JSON file")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5)")
    parser.add_argument("--batches", type=int, default=None,
                        help="batches per timed call (default 4)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for MXNet (OMP_NUM_THREADS) and onnxruntime (default 2)")
    parser.add_argument("--onnx", metavar="FILE",
                        help="ONNX file of a resnet18 for onnxruntime and from_onnx "
                             "(default: export the benchmark's own resnet18_v1)")
    parser.add_argument("--isa-table", action="store_true",
                        help="only measure int8 vs float32 per oneDNN instruction-set cap")
    parser.add_argument("--stream-samples", type=int, default=None,
                        help="samples streamed in the memory test (default 20000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rss-child", choices=("stream", "memory"), help=argparse.SUPPRESS)
    parser.add_argument("--isa-probe-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--isa-timing-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.batches = args.batches or (2 if args.quick else 4)
    args.stream_samples = args.stream_samples or (5000 if args.quick else 20000)
    if args.rss_child:
        rss_child(args.rss_child, args.stream_samples, 256)
        return
    if args.isa_probe_child:
        isa_probe_child()
        return
    if args.isa_timing_child:
        isa_timing_child(args)
        return
    results = {"machine": machine_info(), "args": vars(args), "skipped": []}
    info = results["machine"]
    print(f"CPU: {info['cpu']} ({info['n_cpus']} cores), flags: {' '.join(info['cpu_flags'])}")
    print(f"MXNet {info['mxnet']} (MKLDNN {'on' if info['mkldnn'] else 'off'}), "
          f"onnxruntime {info['onnxruntime']}, Python {info['python']}, "
          f"threads {info['threads']}, load average at start "
          f"{' '.join(f'{x:.2f}' for x in info['load_average_start'])}", flush=True)
    started = time.perf_counter()
    if args.isa_table:
        isa_section(args, results)
    else:
        memory_section(args, results)  # first: its subprocesses share the CPUs with nobody
        timing_section(args, results)
        zoo_section(args, results)
        print(report(results))
    results["total_seconds"] = time.perf_counter() - started
    results["load_average_end"] = os.getloadavg()
    for line in results["skipped"]:
        print(f"skipped: {line}")
    print(f"load average at end {' '.join(f'{x:.2f}' for x in results['load_average_end'])}; "
          f"total {results['total_seconds']:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
