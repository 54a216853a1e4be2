"""Probe of bad input, damaged files and misuse: how each case ends.

    python benchmarks/robustness_probe.py [--json PATH]

Each case does one thing a realistic user (or a crash) could do and is judged by how it
ends:

- ``clear error``: an error of the toolkit (``RepurposeError``, scikit-learn's
  ``NotFittedError``, or ``FileExistsError`` / ``FileNotFoundError`` raised by our code)
  whose message names the problem, where that was expected;
- ``works`` / ``warns``: the call did the right thing (checked), with a warning where one
  was expected;
- ``RAW ERROR``: an error of numpy, MXNet, scikit-learn or Python itself reached the user;
- ``SILENT``: the call returned, but the result was wrong or data was lost.

The tests hold the same cases (tests/unit/**/test_*); this script counts them in one run for
the closing note of issue 13. It needs no network and no GPU, and takes about a minute.
"""
import argparse
import collections
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import traceback
import warnings

import numpy as np

CASES = []


def case(area, expect):
    def register(fn):
        CASES.append((area, fn.__name__, expect, fn))
        return fn

    return register


# --- helpers -----------------------------------------------------------------------------

def _features(n_per_class=10, classes=(5, 6, 7, 8, 9), dim=6, seed=0):
    rng = np.random.RandomState(seed)
    y = np.repeat(np.asarray(classes), n_per_class)
    X = rng.normal(size=(len(y), dim)) + 2.0 * (y[:, None] - np.mean(classes)) / len(classes)
    return X.astype(np.float32), y


def _image_folder(tmp, sizes=((12, 12),) * 4, damage=None, fmt="JPEG"):
    from PIL import Image

    root = pathlib.Path(tmp) / "images"
    rng = np.random.RandomState(0)
    paths = []
    for i, size in enumerate(sizes):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i}.{'jpg' if fmt == 'JPEG' else 'png'}"
        pixels = rng.randint(0, 255, size=(size[1], size[0], 3)).astype(np.uint8)
        Image.fromarray(pixels).save(path, format=fmt)
        paths.append(path)
    if damage == "truncate":
        data = paths[0].read_bytes()
        paths[0].write_bytes(data[: len(data) // 3])
    elif damage == "garbage":
        paths[0].write_bytes(b"not an image at all")
    return root


def _tiny_gluon():
    import mxnet as mx

    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Conv2D(4, kernel_size=5), mx.gluon.nn.Activation("relu"),
            mx.gluon.nn.GlobalAvgPool2D(), mx.gluon.nn.Dense(3))
    net.initialize(mx.init.Xavier(), ctx=mx.cpu())
    return net


def _saved_model(tmp, with_source=False):
    import repurpose
    from repurpose.heads import LogisticHead

    X, y = _features()
    if with_source:
        from repurpose import LogisticRepurposer, SourceModel

        source = SourceModel.from_gluon(_tiny_gluon(), (3, 12, 12))
        images = np.random.RandomState(0).rand(20, 3, 12, 12).astype(np.float32)
        model = LogisticRepurposer(source, layers=source.layer_names[-1:]).fit(
            images, np.repeat([0, 1], 10))
    else:
        model = LogisticHead().fit(X, y)
    return repurpose.persist.save(model, os.path.join(tmp, "model"))


def _edit_json(path, edit):
    with open(path) as handle:
        document = json.load(handle)
    edit(document)
    with open(path, "w") as handle:
        json.dump(document, handle)


# --- cases: heads and labels ---------------------------------------------------------------

@case("heads", "works")
def class_weight_keyed_by_label(tmp):
    from repurpose.heads import LogisticHead

    X, y = _features()
    plain = LogisticHead(C=0.01).fit(X, y).predict(X)
    heavy = LogisticHead(C=0.01, class_weight={9: 1000.0}).fit(X, y).predict(X)
    return np.sum(heavy == 9) > np.sum(plain == 9)


@case("heads", "error")
def class_weight_key_not_a_label(tmp):
    from repurpose.heads import LogisticHead

    LogisticHead(class_weight={1: 5.0}).fit(*_features())


@case("heads", "works")
def predict_zero_samples(tmp):
    from repurpose.heads import LogisticHead

    X, y = _features()
    head = LogisticHead().fit(X, y)
    return head.predict_proba(X[:0]).shape == (0, 5) and head.predict(X[:0]).shape == (0,)


@case("heads", "error")
def fit_without_labels(tmp):
    from repurpose.heads import LogisticHead

    LogisticHead().fit(_features()[0], None)


@case("heads", "error")
def labels_mixing_str_and_int(tmp):
    from repurpose.heads import LogisticHead

    X, y = _features()
    LogisticHead().fit(X, np.array([str(v) if i % 2 else int(v) for i, v in enumerate(y)],
                                   dtype=object))


@case("heads", "works")
def object_string_labels_save_and_load(tmp):
    import repurpose
    from repurpose.heads import LogisticHead

    X, y = _features()
    labels = np.array([f"class-{v}" for v in y], dtype=object)  # what a pandas column gives
    head = LogisticHead().fit(X, labels)
    loaded = repurpose.load(repurpose.persist.save(head, os.path.join(tmp, "m")))
    return list(loaded.predict(X)) == list(head.predict(X))


@case("heads", "warns")
def svm_n_folds_clamped(tmp):
    from repurpose.heads import SvmHead

    SvmHead(n_folds=100).fit(*_features())


@case("heads", "error")
def features_with_nan(tmp):
    from repurpose.heads import GpHead

    X, y = _features()
    X[3, 2] = np.nan
    GpHead().fit(X, y)


@case("heads", "error")
def predict_wrong_width(tmp):
    from repurpose.heads import SvmHead

    X, y = _features()
    SvmHead().fit(X, y).predict(X[:, :4])


@case("heads", "error")
def repurposer_predict_before_fit(tmp):
    from repurpose import LogisticRepurposer, SourceModel

    source = SourceModel.from_gluon(_tiny_gluon(), (3, 12, 12))
    LogisticRepurposer(source, layers=source.layer_names[-1:]).predict(
        np.zeros((2, 3, 12, 12), np.float32))


# --- cases: images and source models -------------------------------------------------------

@case("data", "error")
def truncated_jpeg(tmp):
    from repurpose.data import ImageFolder

    ImageFolder(_image_folder(tmp, damage="truncate")).to_arrays()


@case("data", "error")
def truncated_png(tmp):
    from repurpose.data import ImageFolder

    ImageFolder(_image_folder(tmp, damage="truncate", fmt="PNG")).to_arrays()


@case("data", "error")
def not_an_image(tmp):
    from repurpose.data import ImageFolder

    ImageFolder(_image_folder(tmp, damage="garbage")).to_arrays()


@case("data", "error")
def images_of_different_sizes_without_resize(tmp):
    from repurpose.data import ImageFolder

    ImageFolder(_image_folder(tmp, sizes=((12, 12), (12, 12), (16, 12), (12, 12)))).to_arrays()


@case("data", "error")
def grayscale_with_three_means(tmp):
    from repurpose.data import ImageFolder

    ImageFolder(_image_folder(tmp), grayscale=True, mean=(0.5, 0.5, 0.5), std=(0.2,) * 3)


@case("data", "error")
def rgb_with_two_stds(tmp):
    from repurpose.data import ImageFolder

    ImageFolder(_image_folder(tmp), mean=(0.5, 0.5), std=(0.2, 0.2))


@case("data", "error")
def empty_image_folder(tmp):
    from repurpose.data import ImageFolder

    os.mkdir(os.path.join(tmp, "empty"))
    ImageFolder(os.path.join(tmp, "empty")).to_arrays()


@case("source", "error")
def from_gluon_shape_with_batch_axis(tmp):
    from repurpose import SourceModel

    SourceModel.from_gluon(_tiny_gluon(), (1, 3, 12, 12))


@case("source", "error")
def from_gluon_shape_smaller_than_kernel(tmp):
    from repurpose import SourceModel

    SourceModel.from_gluon(_tiny_gluon(), (3, 3, 3))


@case("source", "error")
def unknown_layer(tmp):
    from repurpose import SourceModel, extract_features

    source = SourceModel.from_gluon(_tiny_gluon(), (3, 12, 12))
    extract_features(source, np.zeros((2, 3, 12, 12), np.float32), ["no_such_layer"])


# --- cases: saved files --------------------------------------------------------------------

@case("persist", "error")
def save_overwrite_over_user_files(tmp):
    from repurpose import persist
    from repurpose.heads import LogisticHead

    folder = pathlib.Path(tmp) / "project"
    (folder / "data").mkdir(parents=True)
    (folder / "main.py").write_text("print('mine')")
    try:
        persist.save(LogisticHead().fit(*_features()), folder, overwrite=True)
    finally:
        if not (folder / "main.py").exists():
            raise AssertionError("SILENT: the user's main.py was deleted")


@case("persist", "error")
def load_source_prefix_outside(tmp):
    import shutil

    import repurpose

    path = _saved_model(tmp, with_source=True)
    shutil.copytree(os.path.join(path, "source"), os.path.join(tmp, "outside"))
    _edit_json(os.path.join(path, "manifest.json"),
               lambda m: m["source"].update(prefix="../outside/model"))
    repurpose.load(path)


@case("persist", "error")
def load_source_prefix_absolute(tmp):
    import shutil

    import repurpose

    path = _saved_model(tmp, with_source=True)
    shutil.copytree(os.path.join(path, "source"), os.path.join(tmp, "elsewhere"))
    prefix = os.listdir(os.path.join(tmp, "elsewhere"))[0].rsplit("-", 1)[0]
    _edit_json(os.path.join(path, "manifest.json"), lambda m: m["source"].update(
        prefix=os.path.join(tmp, "elsewhere", prefix)))
    repurpose.load(path)


@case("persist", "error")
def load_manifest_unknown_key(tmp):
    import repurpose

    path = _saved_model(tmp)
    _edit_json(os.path.join(path, "manifest.json"), lambda m: m.update(surprise=1))
    repurpose.load(path)


@case("persist", "error")
def load_arrays_replaced(tmp):
    import repurpose

    path = _saved_model(tmp)
    np.savez(os.path.join(path, "arrays.npz"), classes_=np.arange(3))
    repurpose.load(path)


@case("persist", "error")
def load_truncated_manifest(tmp):
    import repurpose

    path = _saved_model(tmp)
    manifest = pathlib.Path(path) / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:40])
    repurpose.load(path)


@case("persist", "error")
def load_future_format(tmp):
    import repurpose

    path = _saved_model(tmp)
    _edit_json(os.path.join(path, "manifest.json"), lambda m: m.update(format_version=99))
    repurpose.load(path)


@case("persist", "error")
def store_shard_file_outside(tmp):
    from repurpose import SourceModel
    from repurpose.features import FeatureStore, extract_to_store

    source = SourceModel.from_gluon(_tiny_gluon(), (3, 12, 12))
    out = os.path.join(tmp, "store")
    extract_to_store(source, np.zeros((8, 3, 12, 12), np.float32), source.layer_names[-1:],
                     out, shard_size=4, progress=False)
    with open(os.path.join(tmp, "secret.npy"), "wb") as handle:
        np.save(handle, np.zeros((4, 3), np.float32))
    manifests = [n for n in os.listdir(out) if n.endswith(".json")]
    for name in manifests:  # point the first shard's file at ../secret.npy
        path = os.path.join(out, name)
        with open(path) as handle:
            text = handle.read()
        first = text.find('"file": "')
        if first >= 0:
            end = text.index('"', first + 9)
            with open(path, "w") as handle:
                handle.write(text[:first + 9] + "../secret.npy" + text[end:])
    store = FeatureStore.open(out)
    store[store.layers[0]][:]


@case("persist", "error")
def features_out_over_user_folder(tmp):
    from repurpose import SourceModel, extract_features

    source = SourceModel.from_gluon(_tiny_gluon(), (3, 12, 12))
    folder = pathlib.Path(tmp) / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    try:
        extract_features(source, np.zeros((2, 3, 12, 12), np.float32),
                         source.layer_names[-1:], out=folder, overwrite=True, progress=False)
    finally:
        if not (folder / "notes.txt").exists():
            raise AssertionError("SILENT: the user's notes.txt was deleted")


@case("persist", "error")
def save_on_full_disk(tmp):
    """A save that hits the file-size limit (as a full disk would) in a child process."""
    child = f"""
import resource, signal, sys, os, numpy as np
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from repurpose import persist
from repurpose.heads import LogisticHead
rng = np.random.RandomState(0)
head = LogisticHead().fit(rng.normal(size=(200, 400)), np.repeat(np.arange(10), 20))
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
try:
    persist.save(head, {os.path.join(tmp, 'model')!r})
except BaseException as err:
    print(type(err).__module__ + '.' + type(err).__name__ + ': ' + str(err))
"""
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    leftovers = [n for n in os.listdir(tmp) if n.endswith(".tmp")]
    if leftovers:
        raise AssertionError(f"SILENT: left {leftovers}")
    line = result.stdout.strip()
    if "free" not in line or "model" not in line:
        raise OSError(f"raw: {line[:200]}")
    raise FileExistsError(line)  # judged as a clear error: it names the path and free space


# --- cases: optimiser and jobs -------------------------------------------------------------

@case("bo", "error")
def objective_with_wrong_signature(tmp):
    from repurpose.bo import Real, SearchSpace, minimize

    space = SearchSpace({"lr": Real(1e-4, 1e-1, log=True), "wd": Real(1e-6, 1e-2, log=True)})
    minimize(lambda: 1.0, space, n_trials=4, seed=0)


@case("bo", "error")
def two_writers_on_one_journal(tmp):
    from repurpose.bo import Real, SearchSpace, minimize
    space = SearchSpace({"x": Real(0.0, 1.0)})
    journal = os.path.join(tmp, "journal.json")
    child = ("import sys,time\nfrom repurpose.persist import FolderLock\n"
             f"with FolderLock({journal!r}, what='tuning journal'):\n"
             "    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        minimize(lambda p: p["x"], space, n_trials=3, seed=0, state_path=journal)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


@case("jobs", "error")
def duplicate_yaml_key(tmp):
    from repurpose.jobs import read_config_file

    path = os.path.join(tmp, "job.yaml")
    with open(path, "w") as handle:
        handle.write("source: {zoo: digits_cnn}\ntrain:\n  n_epochs: 2\n  n_epochs: 3\n")
    read_config_file(path)


# --- cases: the command line (run as a user would: subprocesses) ----------------------------

FINETUNE_JOB = """\
source: {{model: digits_cnn}}
data: {{train: {train}, grayscale: true, resize: 8}}
model: {{transfer_layer: fc1_relu_fwd}}
train: {{n_epochs: 1, batch_size: 4, seed: 0}}
run: {{output_dir: {out}}}
"""


def _cli(tmp, *args, expect_in=()):
    """Run ``repurpose ARGS``; a non-zero exit with a message naming ``expect_in`` and no
    traceback is a clear error, a zero exit returns (judged by the case), anything else is
    raw."""
    import time

    from repurpose.exceptions import RepurposeError

    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "repurpose.cli", *args], cwd=tmp,
                            capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    if result.returncode == 0:
        return result
    text = result.stderr.strip()
    if "Traceback" in text or not all(part in text for part in expect_in):
        raise RuntimeError(f"exit {result.returncode}: {text[-300:]}")
    raise RepurposeError(f"exit {result.returncode} after {seconds:.1f} s: "
                         f"{text.splitlines()[-1] if text else ''}")


@case("cli", "error")
def finetune_on_a_folder_with_a_truncated_jpeg(tmp):
    root = _image_folder(tmp, sizes=((8, 8),) * 6, damage="truncate")
    job = pathlib.Path(tmp) / "job.yaml"
    job.write_text(FINETUNE_JOB.format(train=root, out="out"))
    _cli(tmp, "finetune", "--config", str(job), expect_in=("0.jpg", "on_damaged"))


@case("cli", "works")
def finetune_skipping_a_truncated_jpeg(tmp):
    root = _image_folder(tmp, sizes=((8, 8),) * 6, damage="truncate")
    job = pathlib.Path(tmp) / "job.yaml"
    job.write_text(FINETUNE_JOB.format(train=root, out="out"))
    _cli(tmp, "finetune", "--config", str(job), "--set", "data.on_damaged=skip")
    metrics = json.loads((pathlib.Path(tmp) / "out" / "metrics.json").read_text())
    return any("0.jpg" in name for name in metrics.get("skipped_images") or {})


@case("cli", "error")
def job_output_folder_holding_user_files(tmp):
    (pathlib.Path(tmp) / "out").mkdir()
    (pathlib.Path(tmp) / "out" / "thesis.tex").write_text("mine")
    job = pathlib.Path(tmp) / "job.yaml"
    job.write_text(FINETUNE_JOB.format(train="shifted_digits", out="out")
                   .replace("grayscale: true, resize: 8", "n_per_class: 4"))
    try:
        _cli(tmp, "finetune", "--config", str(job), "--overwrite", expect_in=("out",))
    finally:
        if not (pathlib.Path(tmp) / "out" / "thesis.tex").exists():
            raise AssertionError("SILENT: the user's thesis.tex was deleted")


@case("cli", "error")
def job_output_exists_message_names_the_flags(tmp):
    (pathlib.Path(tmp) / "out").mkdir()
    job = pathlib.Path(tmp) / "job.yaml"
    job.write_text(FINETUNE_JOB.format(train="shifted_digits", out="out")
                   .replace("grayscale: true, resize: 8", "n_per_class: 4"))
    (pathlib.Path(tmp) / "out" / "config.resolved.yaml").write_text("x: 1\n")
    _cli(tmp, "finetune", "--config", str(job), expect_in=("--overwrite",))


@case("cli", "error")
def set_unknown_key(tmp):
    job = pathlib.Path(tmp) / "job.yaml"
    job.write_text(FINETUNE_JOB.format(train="shifted_digits", out="out")
                   .replace("grayscale: true, resize: 8", "n_per_class: 4"))
    _cli(tmp, "finetune", "--config", str(job), "--set", "train.n_epochz=2",
         expect_in=("n_epochz", "n_epochs"))


@case("cli", "error")
def extract_with_unreachable_scheduler(tmp):
    import time

    started = time.perf_counter()
    try:
        _cli(tmp, "extract", "zoo:digits_cnn", "--data", "digits", "--layers", "fc1_relu_fwd",
             "--out", "feats", "--scheduler", "tcp://127.0.0.1:9", expect_in=("127.0.0.1:9",))
    finally:
        if time.perf_counter() - started > 8:
            raise AssertionError(f"SILENT: took {time.perf_counter() - started:.0f} s")


def _judge(expect, fn, tmp):
    from repurpose.exceptions import RepurposeError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = fn(tmp)
        except AssertionError as err:
            return "SILENT", str(err)
        except Exception as err:  # noqa: BLE001 - judging every way a case can end
            ours = (isinstance(err, RepurposeError) or type(err).__name__ == "NotFittedError"
                    or (isinstance(err, (FileExistsError, FileNotFoundError))
                        and "repurpose" in traceback.extract_tb(err.__traceback__)[-1]
                        .filename + (type(err).__module__ or "")))
            if isinstance(err, FileExistsError) and fn.__name__ == "save_on_full_disk":
                ours = True
            text = f"{type(err).__name__}: {str(err).splitlines()[0][:150]}"
            if expect == "error" and ours:
                return "clear error", text
            return "RAW ERROR", text
    user_warnings = [w for w in caught if issubclass(w.category, UserWarning)]
    if expect == "error":
        return "SILENT", "no error"
    if expect == "warns":
        return ("warns", str(user_warnings[0].message)[:150]) if user_warnings else \
            ("SILENT", "no warning")
    return ("works", "") if value else ("SILENT", "wrong result")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)
    results = []
    for area, name, expect, fn in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            outcome, detail = _judge(expect, fn, tmp)
        results.append({"area": area, "case": name, "expect": expect, "outcome": outcome,
                        "detail": detail})
        print(f"{area:8s} {name:42s} {outcome:12s} {detail}", flush=True)
    counts = collections.Counter(r["outcome"] for r in results)
    good = counts["clear error"] + counts["works"] + counts["warns"]
    print(f"\n{len(results)} cases: {good} handled well ("
          + ", ".join(f"{counts[k]} {k}" for k in ("clear error", "works", "warns"))
          + f"), {counts['RAW ERROR']} raw errors, {counts['SILENT']} silent")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0 if good == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
