"""Which ONNX files come in, how exactly, how fast: one row per file of a folder.

The folder is laid out like ``../shared/onnx_zoo`` (unpack ``onnx_zoo_dev.tar.xz`` first):
``<arch>.<kind>.onnx`` files (``<kind>`` tells the exporter, e.g. ``ts13``, ``ts17``,
``dynamo``; a dynamo file keeps its weights in ``<arch>.dynamo.onnx.data`` beside it),
``<arch>.ref.npy`` with the source framework's logits for the input
``numpy.random.RandomState(0).rand(2, 3, S, S)`` and ``meta.json`` giving ``S`` per
architecture (``models[<arch>]['size']``; 224 when missing).

For each file, in one process (MXNet and onnxruntime on the same ``--threads`` threads):

* **loads**: ``SourceModel.from_onnx(path)`` succeeds; its wall time is *load s*;
* **logits**: the maximum relative difference between the model's output for the reference
  input and ``<arch>.ref.npy`` (``max |ours - ref| / max |ref|``). Some architectures
  initialise their classifier to zeros (torchvision's ViT, GoogLeNet, Inception-v4 under
  the seeded weights of the set), so their reference logits are all zero; there the next
  check decides;
* **middle layer**: the layer in the middle of ``model.layers`` is extracted for the same
  two samples; its features must be finite, the same when each sample is extracted alone
  (per sample: no mixing across the batch), and equal to onnxruntime's value of that ONNX
  tensor (relative difference);
* **speed**: images/s of ``extract_features`` of the model's output for batches of
  ``--batch-size`` random images, beside onnxruntime running the same file on the same
  threads; rounds interleaved, medians.

A file *matches* when it loads, its logits are within ``--tolerance`` (1e-4) of the
reference (or the reference and ours are both all zero), and the middle layer passes. The
last line counts them. ``--markdown FILE`` writes the table for the docs
(``docs/benchmarks/onnx_intake.md`` holds the development set's).

Usage::

    PYTHONPATH=. python benchmarks/onnx_intake.py /tmp/onnx_zoo_dev [--threads 2]
        [--batch-size 32] [--rounds 3] [--only resnet18] [--json out.json]
        [--markdown docs/benchmarks/onnx_intake.md]
"""
import argparse
import glob
import json
import os
import platform
import sys
import time


from _threads import set_threads_from_argv  # noqa: E402  (beside this script)

# MXNet reads its thread count when it is imported: set it first.
set_threads_from_argv()

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from repurpose import SourceModel  # noqa: E402
from repurpose.features import extract_features  # noqa: E402


def discover(folder):
    """``[(path, arch, kind, size)]`` for every ONNX file of ``folder``, sorted."""
    meta_path = os.path.join(folder, "meta.json")
    meta = json.load(open(meta_path)).get("models", {}) if os.path.exists(meta_path) else {}
    found = []
    for path in sorted(glob.glob(os.path.join(folder, "*.onnx"))):
        base = os.path.basename(path)[: -len(".onnx")]
        arch, _, kind = base.partition(".")
        size = int((meta.get(arch) or {}).get("size", 224))
        found.append((path, arch, kind or "-", size))
    return found


def relative_difference(ours, reference):
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if ours.shape != reference.shape:
        return float("inf")
    scale = np.abs(reference).max(initial=0.0)
    difference = np.abs(ours - reference).max(initial=0.0)
    return difference / scale if scale > 0 else (0.0 if difference == 0 else float("inf"))


def ort_session(path, threads, outputs=()):
    """An onnxruntime session on ``path`` (plus extra graph outputs), ``threads`` threads."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if not outputs:
        return ort.InferenceSession(path, options, providers=providers)
    model = onnx.load(path)  # with its external data
    for name in outputs:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return ort.InferenceSession(model.SerializeToString(), options, providers=providers)


def onnx_tensor_of(path, layer):
    """The ONNX tensor a layer computes: the first output of the node of that name."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    for node in graph.node:
        if node.name == layer or (not node.name and node.output and node.output[0] == layer):
            return node.output[0]
    return None


def measure(path, arch, kind, size, args):
    row = {"file": os.path.basename(path), "arch": arch, "kind": kind, "loads": False,
           "matches": False}
    data_file = path + ".data"
    row["mb"] = round((os.path.getsize(path) + (os.path.getsize(data_file) if
                                                 os.path.exists(data_file) else 0)) / 1e6, 1)
    started = time.perf_counter()
    try:
        model = SourceModel.from_onnx(path)
    except Exception as err:  # reported in the row
        row["error"] = f"{type(err).__name__}: {str(err)[:300]}"
        return row
    row["loads"] = True
    row["load_s"] = round(time.perf_counter() - started, 2)
    x = np.random.RandomState(0).rand(2, 3, size, size).astype("float32")
    out_layer = model.output_layers[0]
    try:
        logits = extract_features(model, x, layers=[out_layer], batch_size=2,
                                  progress=False)[out_layer]
    except Exception as err:
        row["error"] = f"extract: {type(err).__name__}: {str(err)[:300]}"
        return row
    ref_path = os.path.join(os.path.dirname(path), f"{arch}.ref.npy")
    reference = np.load(ref_path) if os.path.exists(ref_path) else None
    row["ref_all_zero"] = bool(reference is not None and not np.any(reference))
    row["rel_logits"] = None if reference is None else float(relative_difference(
        logits, reference.reshape(len(reference), -1)))
    # The middle layer: finite, per sample, and what onnxruntime computes there.
    layers = model.layers
    middle = layers[len(layers) // 2].name
    row["middle_layer"] = middle
    row["n_layers"] = len(layers)
    try:
        both = extract_features(model, x, layers=[middle], batch_size=2, progress=False)[middle]
        alone = np.concatenate([extract_features(model, x[i:i + 1], layers=[middle], batch_size=1,
                                                 progress=False)[middle] for i in range(2)])
        row["middle_finite"] = bool(np.isfinite(both).all())
        row["middle_per_sample"] = bool(relative_difference(both, alone) <= args.tolerance)
        tensor = onnx_tensor_of(path, middle)
        session = ort_session(path, args.threads, [tensor]) if tensor else None
        if session is not None:
            value = session.run([tensor], {model.input_name: x})[0]
            row["rel_middle"] = float(relative_difference(both, value.reshape(len(value), -1)))
    except Exception as err:
        row["error"] = f"middle layer {middle!r}: {type(err).__name__}: {str(err)[:300]}"
        return row
    logits_ok = row["rel_logits"] is not None and (
        row["rel_logits"] <= args.tolerance
        or (row["ref_all_zero"] and not np.any(np.abs(logits) > 1e-6)))
    row["matches"] = bool(logits_ok and row["middle_finite"] and row["middle_per_sample"]
                          and row.get("rel_middle", 0.0) <= args.tolerance)
    if args.rounds > 0:
        row.update(speed(model, path, out_layer, size, args))
    return row


def speed(model, path, out_layer, size, args):
    """Images/s of extract and of onnxruntime on the same batches, interleaved rounds."""
    batch = np.random.RandomState(1).rand(args.batch_size, 3, size, size).astype("float32")
    session = ort_session(path, args.threads)
    name = session.get_inputs()[0].name
    fixed = session.get_inputs()[0].shape[0]
    ort_batch = batch if not isinstance(fixed, int) or fixed == len(batch) else None

    def ours():
        extract_features(model, batch, layers=[out_layer], batch_size=args.batch_size,
                         progress=False)

    def theirs():
        if ort_batch is not None:
            session.run(None, {name: ort_batch})
        else:  # a file fixed to another batch size: feed it that many at a time
            for start in range(0, len(batch) - fixed + 1, fixed):
                session.run(None, {name: batch[start:start + fixed]})

    n_theirs = len(batch) if ort_batch is not None else (len(batch) // fixed) * fixed
    times = {"ours": [], "theirs": []}
    ours(), theirs()  # warm-up: builds, binds, allocates
    for _ in range(args.rounds):
        for key, run in (("ours", ours), ("theirs", theirs)):
            started = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - started)
    ours_rate = len(batch) / float(np.median(times["ours"]))
    theirs_rate = n_theirs / float(np.median(times["theirs"]))
    return {"img_s": round(ours_rate, 1), "ort_img_s": round(theirs_rate, 1),
            "vs_ort": round(ours_rate / theirs_rate, 2)}


def fmt(value, spec=".1e"):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def table(rows):
    lines = ["| file | MB | loads | logits rel. diff. | middle layer (of n) | middle rel. diff. "
             "| per sample | load s | img/s | onnxruntime img/s | ratio | match |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        logits = "ref. all 0" if r.get("ref_all_zero") else fmt(r.get("rel_logits"))
        middle = f"`{r['middle_layer']}` ({r['n_layers']})" if r.get("middle_layer") else "-"
        lines.append(
            f"| {r['file']} | {r['mb']} | {fmt(r['loads'])} | {logits} | {middle} | "
            f"{fmt(r.get('rel_middle'))} | {fmt(r.get('middle_per_sample'))} | "
            f"{fmt(r.get('load_s'), '.1f')} | {fmt(r.get('img_s'), '.1f')} | "
            f"{fmt(r.get('ort_img_s'), '.1f')} | {fmt(r.get('vs_ort'), '.2f')} | "
            f"{fmt(r['matches'])} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="0 skips the speed columns")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--only", default="", help="substring of the file names to keep")
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)
    files = [f for f in discover(args.folder) if args.only in os.path.basename(f[0])]
    if not files:
        parser.error(f"no .onnx files in {args.folder} (matching {args.only!r})")
    rows = []
    started = time.perf_counter()
    for path, arch, kind, size in files:
        row = measure(path, arch, kind, size, args)
        rows.append(row)
        print(json.dumps(row), flush=True)
        mx.nd.waitall()
    n_match = sum(r["matches"] for r in rows)
    n_load = sum(r["loads"] for r in rows)
    ratios = [r["vs_ort"] for r in rows if r.get("vs_ort")]
    summary = (f"{n_match} of {len(rows)} files load and match ({n_load} load); "
               f"extract vs onnxruntime images/s: median {np.median(ratios):.2f}x "
               f"over {len(ratios)} files" if ratios else
               f"{n_match} of {len(rows)} files load and match ({n_load} load)")
    print(table(rows))
    print(summary)
    environment = {"threads": args.threads, "batch_size": args.batch_size,
                   "rounds": args.rounds, "python": platform.python_version(),
                   "mxnet": mx.__version__, "load_average": os.getloadavg(),
                   "seconds": round(time.perf_counter() - started)}
    try:
        import onnxruntime

        environment["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if args.json:
        json.dump({"rows": rows, "summary": summary, "environment": environment},
                  open(args.json, "w"), indent=1)
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(f"<!-- written by benchmarks/onnx_intake.py {args.folder} "
                         f"(threads {args.threads}, batch {args.batch_size}, rounds "
                         f"{args.rounds}) -->\n\n{table(rows)}\n\n{summary}\n")
    return 0 if n_match == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
