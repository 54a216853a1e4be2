"""extract_to_store on a Dask LocalCluster: the same store as in-process, a killed worker
loses nothing, bad clusters are named; and the `repurpose extract` command line."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

distributed = pytest.importorskip("distributed")

import repurpose  # noqa: E402
from repurpose.cli import main  # noqa: E402
from repurpose.features import (ClusterError, FeatureStore, extract_to_store)  # noqa: E402
from repurpose.source import SourceModel  # noqa: E402

REPO = pathlib.Path(repurpose.__file__).resolve().parents[1]
LAYER = "wide_conv3_fwd"


def _files(folder):
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, folder)] = handle.read()
    return found


def _wide_model():
    """Convolutions wide enough that a shard of 8 samples takes a noticeable time."""
    mx.random.seed(0)
    net = nn.HybridSequential(prefix="wide_")
    with net.name_scope():
        net.add(nn.Conv2D(32, 3, padding=1, prefix="conv1_"), nn.Activation("relu"))
        net.add(nn.Conv2D(64, 3, padding=1, prefix="conv2_"), nn.Activation("relu"))
        net.add(nn.Conv2D(64, 3, padding=1, prefix="conv3_"))
    net.initialize(mx.init.Xavier())
    return SourceModel.from_gluon(net, input_shape=(3, 32, 32))


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0",
                                  env={"OMP_NUM_THREADS": "1"}) as local:
        yield local


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture
def data_file(tmp_path):
    X = np.random.RandomState(0).rand(160, 3, 32, 32).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    return str(tmp_path / "x.npy")


@pytest.mark.slow
def test_cluster_store_is_identical_to_in_process_store(client, data_file, tmp_path):
    model = _wide_model()
    local = extract_to_store(model, data_file, [LAYER], tmp_path / "local", shard_size=32,
                             pool="avg", progress=False)
    on_dask = extract_to_store(model, data_file, [LAYER], tmp_path / "dask", client=client,
                               shard_size=32, pool="avg", progress=False)
    assert _files(tmp_path / "local") == _files(tmp_path / "dask")
    np.testing.assert_array_equal(local.to_numpy(LAYER), on_dask.to_numpy(LAYER))
    # Each worker loaded the model once, not once per shard.
    assert on_dask.n_shards == 5


@pytest.mark.slow
def test_killed_worker_loses_nothing(client, data_file, tmp_path):
    model = _wide_model()
    clean = tmp_path / "clean"
    extract_to_store(model, data_file, [LAYER], clean, shard_size=8, progress=False)
    out = tmp_path / "faulty"
    pids = client.run(os.getpid)
    outcome = {}

    def run():
        try:
            outcome["store"] = extract_to_store(model, data_file, [LAYER], out, client=client,
                                                shard_size=8, progress=False)
        except BaseException as err:  # reported by the assertion below
            outcome["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    shard_dir = out / LAYER
    deadline = time.monotonic() + 120
    victim = None
    while time.monotonic() < deadline and victim is None:
        n_done = len(list(shard_dir.glob("shard-*.npy"))) if shard_dir.exists() else 0
        busy = [w for w, keys in client.processing().items() if keys and w in pids]
        if n_done >= 2 and busy:
            victim = busy[0]
            os.kill(pids[victim], signal.SIGKILL)
            break
        time.sleep(0.02)
    thread.join(timeout=300)
    assert victim is not None, "no worker was busy while shards were left"
    assert n_done < 20, "the kill came after every shard was written"
    assert "error" not in outcome, outcome.get("error")
    assert _files(out) == _files(clean)
    assert outcome["store"].n_shards == 20


def _worker(address, env, cwd):
    """A worker process outside the LocalCluster, with its own environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
         "--no-nanny", "--no-dashboard"],
        env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _missing_package(root):
    """A folder whose ``repurpose`` fails to import as an absent package does, so a worker
    started with it first on its path behaves as one without repurpose installed."""
    package = root / "repurpose"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'repurpose'\", name='repurpose')\n")
    return root


def _other_version_package(root):
    """A copy of repurpose (links to its files) that says it is version 0.0.0+other."""
    package = root / "repurpose"
    package.mkdir(parents=True)
    source = REPO / "repurpose"
    for entry in source.iterdir():
        if entry.name not in ("_version.py", "__pycache__"):
            (package / entry.name).symlink_to(entry)
    (package / "_version.py").write_text('__version__ = "0.0.0+other"\n')
    return root


@pytest.mark.slow
@pytest.mark.parametrize("kind, match", [
    ("missing", r"1 of 1 Dask workers cannot run repurpose \S+: tcp://\S+: no repurpose "
                r"\(ModuleNotFoundError: No module named 'repurpose'\)"),
    ("other_version", r"1 of 1 Dask workers cannot run repurpose 0.1.0: tcp://\S+: "
                      r"repurpose 0.0.0\+other\. Install repurpose-mxnet 0.1.0"),
])
def test_workers_without_the_same_package_are_named(tmp_path, data_file, kind, match):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if kind == "other_version":
        env["PYTHONPATH"] = str(_other_version_package(tmp_path / "site"))
    else:  # repurpose may be installed in this interpreter: shadow it with a failing import
        env["PYTHONPATH"] = str(_missing_package(tmp_path / "site"))
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=":0") as cl, \
            distributed.Client(cl, set_as_default=False) as client:
        worker = _worker(cl.scheduler_address, env, cwd=str(tmp_path))
        try:
            client.wait_for_workers(1, timeout=60)
            with pytest.raises(ClusterError, match=match):
                extract_to_store(_wide_model(), data_file, [LAYER], tmp_path / "s",
                                 client=client, progress=False)
        finally:
            worker.terminate()
            worker.wait(30)
    assert not (tmp_path / "s").exists()


def test_unreachable_scheduler_is_an_error_within_seconds(data_file, tmp_path):
    started = time.monotonic()
    with pytest.raises(ClusterError, match="No Dask scheduler answered at "
                                           "'tcp://127.0.0.1:9' within 5 s"):
        extract_to_store(_wide_model(), data_file, [LAYER], tmp_path / "s",
                         client="tcp://127.0.0.1:9", progress=False)
    assert time.monotonic() - started < 15
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------------- command line
def _image_folder(root):
    from PIL import Image

    rng = np.random.RandomState(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.randint(0, 255, (8, 8), dtype=np.uint8), mode="L").save(
                root / cls / f"{i}.png")
    return root


@pytest.mark.slow
def test_cli_extract_on_a_scheduler_then_resume(cluster, tmp_path, capsys):
    images = _image_folder(tmp_path / "images")
    out = tmp_path / "store"
    args = ["extract", "--model", "digits_cnn", "--data", str(images), "--grayscale",
            "--layers", "fc1_relu_fwd", "--out", str(out), "--shard-size", "5",
            "--scheduler", cluster.scheduler_address, "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "fc1_relu_fwd\t24 x 64" in printed and "(5 shards)" in printed
    store = FeatureStore.open(out)
    assert store.classes == ["a", "b"] and store.labels.tolist() == [0] * 12 + [1] * 12
    before = _files(out)
    assert main(args) == 0  # rerun: every shard is complete, nothing is rewritten
    assert _files(out) == before
    local = tmp_path / "local"
    assert main(["extract", "digits_cnn", "--data", str(images), "--grayscale", "--layers",
                 "fc1_relu_fwd", "--out", str(local), "--store", "--shard-size", "5",
                 "--no-progress"]) == 0
    assert _files(local) == before


def test_cli_extract_store_errors(tmp_path, capsys):
    out = tmp_path / "store"
    base = ["extract", "digits_cnn", "--data", "digits", "--out", str(out), "--store",
            "--no-progress"]
    assert main(base + ["--layers", "fc1_relu_fwd"]) == 0
    capsys.readouterr()
    assert main(base + ["--layers", "fc1_relu_fwd,relu3_fwd"]) == 2
    assert "holds layers ['fc1_relu_fwd'], not ['fc1_relu_fwd', 'relu3_fwd']" in \
        capsys.readouterr().err
    assert main(["extract", "--data", "digits", "--layers", "fc1_relu_fwd", "--out",
                 str(tmp_path / "x"), "--store"]) == 2
    assert "No model given" in capsys.readouterr().err
    assert main(base + ["--layers", "fc1_relu_fwd", "--precision", "int8"]) == 2
    assert "cannot be used with a sharded store" in capsys.readouterr().err
    started = time.monotonic()
    assert main(["extract", "digits_cnn", "--data", "digits", "--layers", "fc1_relu_fwd",
                 "--out", str(tmp_path / "y"), "--scheduler", "tcp://127.0.0.1:9",
                 "--no-progress"]) == 1  # a failure of the run, as for repurpose tune
    assert "No Dask scheduler answered at 'tcp://127.0.0.1:9'" in capsys.readouterr().err
    assert time.monotonic() - started < 15
