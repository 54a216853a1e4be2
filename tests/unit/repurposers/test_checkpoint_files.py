"""issue 13: the files of a fine-tuning checkpoint folder. A path read from checkpoint.json
stays inside the folder; one run writes there at a time (a second is refused, naming the
holder); temporary files a killed run left are removed by the next one, while it holds the
folder's lock."""
import json
import logging
import os
import subprocess
import sys

import mxnet as mx
import pytest

from repurpose import SourceModel
from repurpose.exceptions import LockedError, ModelFileError
from repurpose.repurposers import FineTuneRepurposer
from repurpose.repurposers._checkpoint import CHECKPOINT_FILE, read_checkpoint, write_checkpoint

FAST = dict(n_epochs=2, batch_size=16, random_state=0)

# Fine-tunes on the same task as ``_task`` below and holds the run in its first epoch
# callback (after that epoch's checkpoint), so the checkpoint folder stays locked.
HOLDER = """
import sys, time
from repurpose import SourceModel
from repurpose.demo import make_demo_task
from repurpose.repurposers import FineTuneRepurposer
X, y, _, _ = make_demo_task(n_per_class=6, random_state=0)

def hold(row):
    print("held", flush=True)
    time.sleep(60)

FineTuneRepurposer(SourceModel.from_zoo("digits_cnn"), checkpoint_dir=sys.argv[1], n_epochs=2,
                   batch_size=16, random_state=0).fit(X, y, epoch_callback=hold)
"""


def _task():
    from repurpose.demo import make_demo_task

    X, y, _, _ = make_demo_task(n_per_class=6, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def source():
    return SourceModel.from_zoo("digits_cnn")


@pytest.mark.parametrize("value", ["../epoch-0001.params", "ABSOLUTE"])
def test_params_file_outside_the_folder_error(tmp_path, value):
    folder = tmp_path / "ck"
    write_checkpoint(folder, {"epoch": 1, "fingerprint": "f"}, {"w": mx.nd.ones((2,))})
    os.replace(folder / "epoch-0001.params", tmp_path / "epoch-0001.params")
    if value == "ABSOLUTE":
        value = str(tmp_path / "epoch-0001.params")
    meta = json.loads((folder / CHECKPOINT_FILE).read_text())
    meta["params_file"] = value
    (folder / CHECKPOINT_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelFileError) as info:
        read_checkpoint(folder)
    message = str(info.value)
    assert CHECKPOINT_FILE in message and "params_file" in message and repr(value) in message


def test_second_run_on_a_checkpoint_folder_is_refused(source, tmp_path):
    folder = tmp_path / "ck"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        # What a writer has in flight: a temporary file the second run must not remove.
        in_flight = folder / ".epoch-0002.params.abcd1234.tmp"
        in_flight.write_bytes(b"partial")
        X, y = _task()
        with pytest.raises(LockedError) as info:
            FineTuneRepurposer(source, checkpoint_dir=folder, **FAST).fit(X, y, resume=True)
        message = str(info.value)
        assert f"process {proc.pid}" in message and "checkpoint folder" in message
        assert in_flight.exists()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_leftovers_of_a_killed_run_are_removed(source, tmp_path, caplog):
    folder = tmp_path / "ck"
    X, y = _task()
    FineTuneRepurposer(source, checkpoint_dir=folder, **FAST).fit(X, y)
    leftovers = [".epoch-0003.params.k1ll3d_x.tmp", ".checkpoint.json.a0b1c2d3.tmp"]
    for name in leftovers:
        (folder / name).write_bytes(b"\0" * 1000)
    (folder / ".notes.txt").write_text("mine")  # not a temporary file of ours
    with caplog.at_level(logging.INFO, logger="repurpose"):
        model = FineTuneRepurposer(source, checkpoint_dir=folder, **FAST)
        model.fit(X, y, resume=True)  # finished: restores the final state
    assert model.n_epochs_run_ == 2
    assert sorted(os.listdir(folder)) == [".notes.txt", CHECKPOINT_FILE, "epoch-0002.params"]
    assert not os.path.exists(tmp_path / ".ck.lock")
    for name in leftovers:
        assert name in caplog.text
    assert "Removed" in caplog.text
