"""issue 13: a full disk while saving, extracting or checkpointing is an error naming the
path, the free space left and what to do, and leaves no hidden temporary file behind.

A real full disk needs root; a file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) makes the
kernel refuse writes the same way (EFBIG, treated like ENOSPC and EDQUOT), so the cases run
in one subprocess that lowers its own limit just before each write (and lifts it after)."""
import json
import os
import subprocess
import sys

import pytest

PRELUDE = """
import json, os, resource, signal, sys
import numpy as np
import mxnet as mx

def limit(n_bytes):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, resource.RLIM_INFINITY))

def report(call):
    try:
        call()
    except Exception as err:
        result = {"type": type(err).__name__, "message": str(err),
                  "oserror": isinstance(err, OSError)}
    else:
        result = {"type": None}
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    print(json.dumps(result), flush=True)
"""

CASES = {
    "save_head": """
from repurpose.heads import LogisticHead
rng = np.random.RandomState(0)
head = LogisticHead().fit(rng.randn(40, 256), np.arange(40) % 3)
limit(4096)
report(lambda: head.save(os.path.join(folder, "head")))
""",
    "save_repurposer": """
from repurpose import LogisticRepurposer, SourceModel
from repurpose.data import load_digits_images
X, y = load_digits_images(classes=[5, 6])
model = LogisticRepurposer(SourceModel.from_zoo("digits_cnn")).fit(X[:40], y[:40])
limit(8192)  # the source model's params (MXNet's own writer) do not fit
report(lambda: model.save(os.path.join(folder, "model")))
""",
    "write_json": """
from repurpose.persist import write_json
limit(4096)
report(lambda: write_json(os.path.join(folder, "big.json"), {"text": "x" * 10000}))
""",
    "extract_features": """
from repurpose import SourceModel
from repurpose.features import extract_features
X = np.random.RandomState(0).rand(100, 1, 8, 8).astype("float32")
model = SourceModel.from_zoo("digits_cnn")
limit(4096)
report(lambda: extract_features(model, X, ["fc1_relu_fwd"], out=os.path.join(folder, "feats"),
                                progress=False))
""",
    "extract_to_store": """
from repurpose import SourceModel
from repurpose.features import extract_to_store
X = np.random.RandomState(0).rand(100, 1, 8, 8).astype("float32")
model = SourceModel.from_zoo("digits_cnn")
limit(16384)
report(lambda: extract_to_store(model, X, ["fc1_relu_fwd"], os.path.join(folder, "store"),
                                shard_size=64, progress=False))
""",
    "store_shard": """
from repurpose import SourceModel
from repurpose.features import extract_to_store
X = np.random.RandomState(0).rand(100, 1, 8, 8).astype("float32")
model = SourceModel.from_zoo("digits_cnn")
limit(300000)  # the source model fits, a shard of 64 x 2048 float32 does not
report(lambda: extract_to_store(model, X, ["relu2_fwd"], os.path.join(folder, "store"),
                                shard_size=64, progress=False))
""",
    "checkpoint": """
from repurpose.repurposers._checkpoint import write_checkpoint
ck = os.path.join(folder, "ck")
write_checkpoint(ck, {"epoch": 1, "fingerprint": "f"}, {"w": mx.nd.ones((2,))})
limit(4096)
report(lambda: write_checkpoint(ck, {"epoch": 2, "fingerprint": "f"},
                                {"w": mx.nd.ones((5000,))}))
""",
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Each case's outcome (by name) and its folder, from one subprocess."""
    root = tmp_path_factory.mktemp("full")
    script = PRELUDE + "".join(
        f"\nfolder = {str(root / case)!r}\nos.mkdir(folder)\n{code}"
        for case, code in CASES.items())
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(CASES), proc.stdout + proc.stderr
    return {case: (result, root / case) for case, result in zip(CASES, lines)}


def _hidden(folder):
    """Every hidden (temporary) file or folder under ``folder``."""
    found = []
    for root, dirs, files in os.walk(folder):
        found += [os.path.relpath(os.path.join(root, n), folder) for n in dirs + files
                  if n.startswith(".")]
    return found


@pytest.mark.parametrize("case, target", [
    ("save_head", "head"), ("save_repurposer", "model"), ("write_json", "big.json"),
    ("extract_features", "feats"), ("extract_to_store", "store"),
    ("store_shard", os.path.join("store", "relu2_fwd", "shard-000000.npy")),
    ("checkpoint", os.path.join("ck", "epoch-0002.params"))])
def test_full_disk_is_named_and_leaves_nothing_behind(results, case, target):
    result, tmp_path = results[case]
    assert result["type"] is not None, "the write should have failed"
    message = result["message"]
    assert result["oserror"], message  # `except OSError` still catches it
    assert "free" in message, message
    assert "File too large" in message or "cut short" in message, message
    assert "another" in message, message  # what to do: free space or another folder
    assert str(tmp_path / target) in message, message
    assert _hidden(tmp_path) == []
    if case in ("save_head", "save_repurposer", "write_json", "extract_features"):
        assert not os.path.exists(tmp_path / target)
    if case == "checkpoint":
        from repurpose.repurposers._checkpoint import read_checkpoint

        meta, arrays = read_checkpoint(tmp_path / "ck")
        assert meta["epoch"] == 1 and arrays["w"].shape == (2,)
        assert "resume=True" in message
