"""Training checkpoints: one folder, a JSON pointer written last, arrays in MXNet's format.

Layout of ``checkpoint_dir``::

    checkpoint.json        what the newest checkpoint holds (written atomically, last)
    epoch-0003.params      weights, best weights and optimizer state of that epoch (mx.nd.save)

Each epoch first writes its ``.params`` file (temporary name, fsync, rename), then replaces
``checkpoint.json`` the same way, and only then removes older ``.params`` files. A process
killed at any point therefore leaves a ``checkpoint.json`` that names a complete file. Nothing
is pickled: optimizer states are NDArrays saved with ``mx.nd.save`` and their scalars
(``num_update`` and the per-parameter update counts) are JSON.
"""
import hashlib
import json
import logging
import os

import mxnet as mx
import numpy as np

from ..exceptions import ModelFileError
from ..persist import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_FILE", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "data_fingerprint",
           "read_checkpoint", "write_checkpoint", "encode_optimizer_state",
           "decode_optimizer_state"]

CHECKPOINT_FILE = "checkpoint.json"
CHECKPOINT_FORMAT = "repurpose.finetune-checkpoint"
CHECKPOINT_VERSION = 1


def data_fingerprint(*arrays):
    """SHA-256 over the dtype, shape and bytes of every array (None counts as absent)."""
    digest = hashlib.sha256()
    for arr in arrays:
        if arr is None:
            digest.update(b"none;")
            continue
        arr = np.ascontiguousarray(arr)
        if arr.dtype.kind in "OU":
            arr = np.asarray([str(v) for v in arr.ravel()]).astype("U")
            digest.update(("|".join(arr.tolist())).encode())
        else:
            digest.update(f"{arr.dtype.str}:{arr.shape};".encode())
            digest.update(arr.tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------- optimizer state
def encode_optimizer_state(states, prefix="opt"):
    """Flatten an ``Updater.states`` dict into (JSON structure, {name: NDArray})."""
    arrays = {}

    def encode(value, path):
        if value is None:
            return None
        if isinstance(value, mx.nd.NDArray):
            arrays[path] = value.copyto(mx.cpu())
            return {"nd": path}
        if isinstance(value, (tuple, list)):
            return {"seq": [encode(v, f"{path}/{i}") for i, v in enumerate(value)],
                    "tuple": isinstance(value, tuple)}
        raise TypeError(f"Cannot checkpoint an optimizer state of type {type(value).__name__}.")

    structure = {str(idx): encode(state, f"{prefix}/{idx}") for idx, state in states.items()}
    return structure, arrays


def decode_optimizer_state(structure, arrays, context):
    """Inverse of :func:`encode_optimizer_state`, arrays placed on ``context``."""

    def decode(value):
        if value is None:
            return None
        if "nd" in value:
            return arrays[value["nd"]].as_in_context(context)
        items = [decode(v) for v in value["seq"]]
        return tuple(items) if value["tuple"] else items

    return {int(idx): decode(value) for idx, value in structure.items()}


# ---------------------------------------------------------------------- files
def _params_name(epoch):
    return f"epoch-{int(epoch):04d}.params"


def write_checkpoint(folder, meta, arrays):
    """Write ``arrays`` (NDArrays by name) and then ``meta`` (JSON) as the newest checkpoint.

    Older ``epoch-*.params`` files are removed only after the new pointer is in place.
    """
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    params_name = _params_name(meta["epoch"])
    atomic_write(os.path.join(folder, params_name), lambda tmp: mx.nd.save(tmp, arrays),
                 overwrite=True)
    meta = dict(meta, format=CHECKPOINT_FORMAT, format_version=CHECKPOINT_VERSION,
                params_file=params_name)
    payload = json.dumps(meta, sort_keys=True)

    def write_json(tmp):
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(payload)

    atomic_write(os.path.join(folder, CHECKPOINT_FILE), write_json, overwrite=True)
    for name in os.listdir(folder):
        if name.startswith("epoch-") and name.endswith(".params") and name != params_name:
            try:
                os.remove(os.path.join(folder, name))
            except OSError:  # pragma: no cover - another process removed it first
                pass


def read_checkpoint(folder, with_arrays=True):
    """Return ``(meta, arrays)`` of the newest checkpoint in ``folder``, or None if none.

    Raises
    ------
    ModelFileError
        For an unreadable, foreign or future-version checkpoint.
    """
    path = os.path.join(os.fspath(folder), CHECKPOINT_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            meta = json.load(handle)
    except (OSError, ValueError) as err:
        raise ModelFileError(f"{path!r} is not a readable checkpoint: {err}. Remove the folder "
                             f"or choose another checkpoint_dir.") from err
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path!r} is not a repurpose fine-tuning checkpoint. Choose "
                             f"another checkpoint_dir.")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise ModelFileError(f"{path!r} has format_version {version!r}; this repurpose reads "
                             f"up to {CHECKPOINT_VERSION}. Upgrade repurpose to resume it.")
    if not with_arrays:
        return meta, None
    params_path = os.path.join(os.fspath(folder), meta["params_file"])
    try:
        arrays = mx.nd.load(params_path)
    except mx.base.MXNetError as err:
        raise ModelFileError(f"{params_path!r}, named by {path!r}, is missing or unreadable: "
                             f"{str(err).strip().splitlines()[0]}") from err
    return meta, arrays
