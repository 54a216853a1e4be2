"""Distributed fine-tuning on loopback: ``repurpose launch`` with 2 workers and 1 server.

- 2 workers with ``kvstore='dist_sync'`` give the single-process result on the same data and
  global batch size: weights within 1e-5 (measured: 2e-7) and history within rtol 1e-5
  (measured: 1e-6); both workers end with bitwise identical weights. The trunk's batch-norm
  layers are fixed so that they normalise with their running statistics: trainable batch
  norm sees each worker's half batch, as with several contexts.
- Killing a worker of a ``repurpose finetune`` job makes ``launch`` fail within seconds,
  naming the worker, and ``--resume`` then finishes the job from the last checkpoint.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from repurpose import SourceModel
from repurpose.demo import make_demo_task
from repurpose.repurposers import FineTuneRepurposer

pytestmark = pytest.mark.slow

PARAMS = dict(transfer_layer="fc1_relu_fwd", fixed_layers=("bn1_fwd", "bn2_fwd", "bn3_fwd"),
              learning_rate=0.003, n_epochs=3, batch_size=16, early_stopping=False,
              random_state=0)

WORKER = """\
import json, sys
import numpy as np
from repurpose import SourceModel
from repurpose.demo import make_demo_task
from repurpose.repurposers import FineTuneRepurposer
from repurpose.repurposers._distributed import get_kvstore

X, y, _, _ = make_demo_task(n_per_class=10, random_state=0)
model = FineTuneRepurposer(SourceModel.from_zoo("digits_cnn"), kvstore="dist_sync",
                           **json.loads(sys.argv[2])).fit(X, y)
rank = get_kvstore("dist_sync").rank
net = model.network_
np.savez(f"{sys.argv[1]}-{rank}.npz",
         **{k: v.asnumpy() for k, v in {**net.arg_params, **net.aux_params}.items()})
with open(f"{sys.argv[1]}-{rank}.json", "w") as handle:
    json.dump(model.history_, handle)
"""

JOB = """\
source: {model: digits_cnn}
data: {train: shifted_digits, classes: [5, 6, 7, 8, 9], n_per_class: 10, seed: 0}
model: {transfer_layer: fc1_relu_fwd}
train: {learning_rate: 0.01, n_epochs: %d, batch_size: 16, early_stopping: false, seed: 0}
run: {output_dir: out}
distributed: {kvstore: dist_sync, workers: 2, servers: 1}
"""


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _launch(*command, cwd, timeout=60, **popen):
    args = [sys.executable, "-m", "repurpose.cli", "launch", "--workers", "2", "--servers",
            "1", "--timeout", str(timeout), "--", *command]
    return subprocess.Popen(args, cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def _weights(model):
    net = model.network_
    return {k: v.asnumpy() for k, v in {**net.arg_params, **net.aux_params}.items()}


def test_two_workers_dist_sync_match_one_process(tmp_path):
    (tmp_path / "worker.py").write_text(WORKER)
    proc = _launch(sys.executable, "worker.py", str(tmp_path / "dist"), json.dumps(PARAMS),
                   cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]

    X, y, _, _ = make_demo_task(n_per_class=10, random_state=0)
    single = FineTuneRepurposer(SourceModel.from_zoo("digits_cnn"), **PARAMS).fit(X, y)
    expected = _weights(single)
    ranks = [dict(np.load(tmp_path / f"dist-{r}.npz")) for r in (0, 1)]
    assert set(ranks[0]) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(ranks[0][name], ranks[1][name], err_msg=name)
        np.testing.assert_allclose(ranks[0][name], value, rtol=0, atol=1e-5, err_msg=name)
    history = json.loads((tmp_path / "dist-0.json").read_text())
    assert len(history) == len(single.history_) == 3
    for ours, theirs in zip(history, single.history_):
        for key in ("lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, err_msg=key)


def _worker_pids(launcher_pid):
    """Children of the launcher whose environment says DMLC_ROLE=worker (Linux /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            if ppid != launcher_pid:
                continue
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if b"DMLC_ROLE=worker" in handle.read().split(b"\0"):
                    pids.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return sorted(pids)


def _checkpoint_epoch(out):
    try:
        return json.loads((out / "checkpoints" / "checkpoint.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_worker_fails_the_job_with_a_message_then_resume_finishes(tmp_path):
    n_epochs = 400  # long enough to kill a worker mid-job (about 20 ms per epoch)
    (tmp_path / "job.yaml").write_text(JOB % n_epochs)
    out = tmp_path / "out"
    proc = _launch("repurpose", "finetune", "--config", "job.yaml", cwd=tmp_path)
    deadline = time.monotonic() + 90
    while _checkpoint_epoch(out) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the job ended before a worker could be killed"
    victims = _worker_pids(proc.pid)
    assert len(victims) == 2, victims
    killed_at = time.monotonic()
    os.kill(victims[1], signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - killed_at < 30
    assert proc.returncode == 128 + signal.SIGKILL, err[-3000:]
    assert "was killed by SIGKILL" in err and f"(pid {victims[1]})" in err, err[-3000:]
    assert "--resume" in err
    stopped_after = _checkpoint_epoch(out)
    assert 2 <= stopped_after < n_epochs
    assert not (out / "model").exists()

    again = _launch("repurpose", "finetune", "--config", "job.yaml", "--resume", "-v",
                    cwd=tmp_path, timeout=120)
    stdout, err = again.communicate(timeout=180)
    assert again.returncode == 0, err[-3000:]
    assert "Resumed FineTuneRepurposer" in err
    assert "Fine-tuned digits_cnn on 50 images" in stdout
    assert "Worker 1 of 2 finished" in stdout
    report = json.loads((out / "metrics.json").read_text())
    assert [row["epoch"] for row in report["history"]] == list(range(1, n_epochs + 1))
    assert (out / "model" / "manifest.json").exists()

