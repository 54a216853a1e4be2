"""issue 13: one writer at a time on a feature store (extract_to_store) and on a features
folder (extract_features(out=...)): a second is refused naming the holder; what a killed
writer left (temporary shard files, a hidden temporary features folder) is removed by the
next run while it holds the lock, and a running writer's temporary files never are."""
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from repurpose import SourceModel
from repurpose.exceptions import LockedError
from repurpose.features import FeatureStore, extract_features, extract_to_store

LAYERS = ["fc1_relu_fwd"]

# Runs a real extraction and blocks inside it: a logging handler waits when the given logger
# says the writing has started (the store's "shards complete" line; a batch launched), so
# the extraction holds its lock. The holder prints "held" first.
HOLDER = """
import logging, sys, time
import numpy as np
from repurpose import SourceModel
from repurpose.features import extract_features, extract_to_store

class Hold(logging.Handler):
    def emit(self, record):
        if sys.argv[3] in record.getMessage():
            print("held", flush=True)
            time.sleep(60)

logger = logging.getLogger(sys.argv[2])
logger.setLevel(logging.DEBUG)
logger.addHandler(Hold())
X = np.random.RandomState(0).rand(40, 1, 8, 8).astype("float32")
model = SourceModel.from_zoo("digits_cnn")
if sys.argv[4] == "store":
    extract_to_store(model, X, ["fc1_relu_fwd"], sys.argv[1], shard_size=16, progress=False)
else:
    extract_features(model, X, ["fc1_relu_fwd"], out=sys.argv[1], progress=False)
"""


def _hold(out, kind):
    logger, text = (("repurpose.features._sharded", "shards complete") if kind == "store"
                    else ("repurpose.features._extract", "launched"))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), logger, text, kind],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    proc.stdout.close()
    return proc


@pytest.fixture(scope="module")
def model():
    return SourceModel.from_zoo("digits_cnn")


@pytest.fixture
def X():
    return np.random.RandomState(0).rand(40, 1, 8, 8).astype("float32")


def test_second_writer_of_a_store_is_refused_then_resumes(model, X, tmp_path, caplog):
    out = tmp_path / "store"
    proc = _hold(out, "store")
    try:
        in_flight = out / "fc1_relu_fwd" / ".shard-000000.npy.abcd1234.tmp"
        in_flight.write_bytes(b"partial")  # as the holder's task would have it
        with pytest.raises(LockedError) as info:
            extract_to_store(model, X, LAYERS, out, shard_size=16, progress=False)
        message = str(info.value)
        assert f"process {proc.pid}" in message and "feature store" in message
        assert in_flight.exists()  # never removed under a running writer
    finally:
        proc.kill()
        proc.wait()
    # The holder was killed: its lock is taken over and its leftovers removed.
    with caplog.at_level(logging.INFO, logger="repurpose"):
        store = extract_to_store(model, X, LAYERS, out, shard_size=16, progress=False)
    assert store.n_samples == 40 and not in_flight.exists()
    assert ".shard-000000.npy.abcd1234.tmp" in caplog.text and "Removed" in caplog.text
    assert "no longer running" in caplog.text
    np.testing.assert_array_equal(
        FeatureStore.open(out).to_numpy(LAYERS[0]),
        extract_features(model, X, LAYERS, batch_size=16, progress=False)[LAYERS[0]])
    assert sorted(p for p in os.listdir(tmp_path)) == ["store"]


def test_leftovers_in_a_store_are_removed_on_the_next_run(model, X, tmp_path, caplog):
    out = tmp_path / "store"
    extract_to_store(model, X, LAYERS, out, shard_size=16, progress=False)
    leftovers = [out / ".manifest.json.x1y2z3w4.tmp",
                 out / "source" / ".model-0000.params.q9q9q9q9.tmp",
                 out / "fc1_relu_fwd" / ".shard-000001.npy.abcdefgh.tmp"]
    for path in leftovers:
        path.write_bytes(b"\0" * 100)
    with caplog.at_level(logging.INFO, logger="repurpose"):
        extract_to_store(model, X, LAYERS, out, shard_size=16, progress=False)
    assert not any(path.exists() for path in leftovers)
    for path in leftovers:
        assert path.name in caplog.text


def test_second_writer_of_a_features_folder_is_refused(model, X, tmp_path, caplog):
    out = tmp_path / "feats"
    proc = _hold(out, "features")
    try:
        holder_tmp = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
        assert len(holder_tmp) == 1 and holder_tmp[0].startswith(".feats.")
        with pytest.raises(LockedError, match=f"process {proc.pid}"):
            extract_features(model, X, LAYERS, out=out, progress=False)
        assert os.path.isdir(tmp_path / holder_tmp[0])  # the holder's files are kept
    finally:
        proc.kill()
        proc.wait()
    with caplog.at_level(logging.INFO, logger="repurpose"):
        features = extract_features(model, X, LAYERS, out=out, progress=False)
    assert features[LAYERS[0]].shape == (40, 64)
    assert holder_tmp[0] in caplog.text and "Removed" in caplog.text
    assert sorted(os.listdir(tmp_path)) == ["feats"]
