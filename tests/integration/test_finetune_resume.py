"""Kill a fine-tuning process with SIGKILL after a checkpoint, resume it, and compare with an
uninterrupted run of the same seed."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import repurpose
from repurpose import SourceModel
from repurpose.demo import make_demo_task
from repurpose.repurposers._checkpoint import CHECKPOINT_FILE, read_checkpoint
from repurpose.repurposers._finetune import FineTuneRepurposer

PARAMS = dict(n_epochs=8, batch_size=16, optimizer="sgd", learning_rate=0.02, dropout=0.2,
              hidden_units=(16,), augment=True, fixed_below="relu1_fwd", patience=20,
              random_state=3)

SCRIPT = textwrap.dedent("""
    import json, logging, sys, time
    from repurpose import SourceModel
    from repurpose.demo import make_demo_task
    from repurpose.repurposers._finetune import FineTuneRepurposer

    class Slow(logging.Handler):
        # Slows each epoch down (without touching the numbers) so the test can kill mid-run.
        def emit(self, record):
            if " epoch " in record.getMessage():
                time.sleep(0.4)

    logger = logging.getLogger("repurpose")
    logger.addHandler(Slow())
    logger.addHandler(logging.StreamHandler())
    logger.setLevel(logging.INFO)
    params = json.loads(sys.argv[2])
    params["hidden_units"] = tuple(params["hidden_units"])
    X, y, _, _ = make_demo_task(n_per_class=20, random_state=0)
    model = FineTuneRepurposer(SourceModel.from_zoo("digits_cnn"), checkpoint_dir=sys.argv[1],
                               **params)
    model.fit(X, y, resume=True)
""")


def _start(folder, log):
    # The child imports this checkout's repurpose, installed or not.
    root = os.path.dirname(os.path.dirname(os.path.abspath(repurpose.__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)
    with open(log, "wb") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-c", SCRIPT, str(folder), json.dumps(PARAMS)],
                                env=env, stdout=subprocess.DEVNULL, stderr=handle)


def _checkpoint_epoch(folder):
    try:
        with open(os.path.join(folder, CHECKPOINT_FILE), encoding="utf-8") as handle:
            return json.load(handle)["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    folder = tmp_path / "ck"
    kill_after = 3
    proc = _start(folder, tmp_path / "first.log")
    deadline = time.time() + 120
    while _checkpoint_epoch(folder) < kill_after:
        if proc.poll() is not None:
            pytest.fail(f"the training process ended early: "
                        f"{(tmp_path / 'first.log').read_text()}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail("no checkpoint of epoch 3 within 120 s")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    meta, arrays = read_checkpoint(folder)  # intact, whatever the kill interrupted
    assert kill_after <= meta["epoch"] < PARAMS["n_epochs"] and arrays
    killed_at = meta["epoch"]

    resumed = _start(folder, tmp_path / "resumed.log")
    assert resumed.wait(timeout=300) == 0, (tmp_path / "resumed.log").read_text()
    assert f"after epoch {killed_at}" in (tmp_path / "resumed.log").read_text()

    X, y, X_test, _ = make_demo_task(n_per_class=20, random_state=0)
    source = SourceModel.from_zoo("digits_cnn")
    final = FineTuneRepurposer(source, checkpoint_dir=folder, **PARAMS)
    final.fit(X, y, resume=True)  # the finished checkpoint: restores without training
    assert final.n_epochs_run_ == PARAMS["n_epochs"]
    full = FineTuneRepurposer(source, **PARAMS).fit(X, y)
    wf = {k: v.asnumpy() for k, v in full.network_.arg_params.items()}
    wr = {k: v.asnumpy() for k, v in final.network_.arg_params.items()}
    for k in wf:
        np.testing.assert_allclose(wr[k], wf[k], rtol=1e-5, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(final.predict_proba(X_test), full.predict_proba(X_test),
                               atol=1e-5)
    assert [r["train_loss"] for r in final.history_] == pytest.approx(
        [r["train_loss"] for r in full.history_], rel=1e-5)
    assert sorted(os.listdir(folder)) == [CHECKPOINT_FILE,
                                          f"epoch-{PARAMS['n_epochs']:04d}.params"]
