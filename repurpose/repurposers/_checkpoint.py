"""Training checkpoints: one folder, a JSON pointer written last, arrays in MXNet's format.

Layout of ``checkpoint_dir``::

    checkpoint.json        what the newest checkpoint holds (written atomically, last)
    epoch-0003.params      weights, best weights and optimizer state of that epoch (mx.nd.save)

Each epoch first writes its ``.params`` file (temporary name, fsync, rename), then replaces
``checkpoint.json`` the same way, and only then removes older ``.params`` files. A process
killed at any point therefore leaves a ``checkpoint.json`` that names a complete file. Nothing
is pickled: optimizer states are NDArrays saved with ``mx.nd.save`` and their scalars
(``num_update`` and the per-parameter update counts) are JSON.

:func:`save_training_state` and :func:`restore_training_state` say what a checkpoint of the
training loop holds: weights, best weights, optimizer state, the loop's state (epoch, history,
early-stopping counters) and the RNG state.
"""
import contextlib
import hashlib
import json
import logging
import os

import mxnet as mx
import numpy as np

from .. import seeding
from ..exceptions import InvalidParameterError, ModelFileError
from ..persist import (FileFormat, FolderLock, atomic_write, confined_path, explain_full_disk,
                       remove_temporaries, write_json)

logger = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_FILE", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "data_fingerprint",
           "read_checkpoint", "write_checkpoint", "checkpoint_folder", "encode_optimizer_state",
           "decode_optimizer_state", "save_training_state", "restore_training_state"]

CHECKPOINT_FILE = "checkpoint.json"
CHECKPOINT_FORMAT = "repurpose.finetune-checkpoint"
CHECKPOINT_VERSION = 1
#: The header of ``checkpoint.json`` (no older versions to migrate from yet).
CHECKPOINT = FileFormat(CHECKPOINT_FORMAT, CHECKPOINT_VERSION,
                        what="repurpose fine-tuning checkpoint")
#: Fields of the training loop's state that a checkpoint holds as JSON.
_STATE_FIELDS = ("epoch", "history", "best_value", "best_epoch", "bad_epochs", "stopped")


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


@contextlib.contextmanager
def checkpoint_folder(folder):
    """Hold ``folder`` for one run's checkpoints: created if needed, locked against a second
    run (:class:`~repurpose.persist.FolderLock`), and cleared of the temporary files a killed
    run left (which only a run holding the lock may remove).

    Raises
    ------
    LockedError
        If another run (process or thread) writes checkpoints there; it is named.
    """
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    with FolderLock(folder, what="checkpoint folder"):
        remove_temporaries(folder)
        yield folder


def write_checkpoint(folder, meta, arrays):
    """Write ``arrays`` (NDArrays by name) and then ``meta`` (JSON) as the newest checkpoint.

    Older ``epoch-*.params`` files are removed only after the new pointer is in place.

    Raises
    ------
    DiskFullError
        (an ``OSError``) If there is no room; the previous checkpoint is kept, whole.
    """
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    params_name = _params_name(meta["epoch"])
    hint = (f"The previous checkpoint in {folder!r} is kept: fit(..., resume=True) (or "
            f"--resume) continues from it once there is room."
            if os.path.isfile(os.path.join(folder, CHECKPOINT_FILE)) else None)
    with explain_full_disk(folder, hint):
        atomic_write(os.path.join(folder, params_name), lambda tmp: mx.nd.save(tmp, arrays),
                     overwrite=True)
        meta = dict(meta, **CHECKPOINT.header(), params_file=params_name)
        write_json(os.path.join(folder, CHECKPOINT_FILE), meta, overwrite=True, indent=None,
                   sort_keys=True)
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
        For an unreadable, foreign or future-version checkpoint, or one whose
        ``params_file`` is not a file inside ``folder``.
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
    try:
        meta = CHECKPOINT.read(meta, repr(path))
    except ModelFileError as err:
        raise ModelFileError(f"{err} To start afresh instead, choose another "
                             f"checkpoint_dir.") from None
    params_path = confined_path(folder, meta.get("params_file"), repr(path), "params_file")
    if not with_arrays:
        return meta, None
    try:
        arrays = mx.nd.load(params_path)
    except mx.base.MXNetError as err:
        raise ModelFileError(f"{params_path!r}, named by {path!r}, is missing or unreadable: "
                             f"{str(err).strip().splitlines()[0]}") from err
    return meta, arrays


# ---------------------------------------------------------------------- training state
def save_training_state(plan, par, updater, optimizer, state, seed):
    """Write the checkpoint of the training loop after ``state.epoch``.

    Parameters
    ----------
    plan : dict
        ``{'dir', 'fingerprint', 'params', ...}``: the folder, and the job's fingerprint and
        parameters (which tell another job's checkpoint apart).
    par : ParallelBlock
        The network being trained (its first context's values are saved).
    updater, optimizer
        MXNet's updater (its per-parameter states) and the optimizer (its update counts).
    state : TrainState
        The loop's state; ``best_params`` are saved as arrays.
    seed : int
        The run's seed (``mx_seed`` in the file).
    """
    arrays = {f"weights/{k}": mx.nd.array(v, dtype=v.dtype)
              for k, v in par.get_values().items()}
    if state.best_params is not None:
        arrays.update({f"best/{k}": mx.nd.array(v, dtype=v.dtype)
                       for k, v in state.best_params.items()})
    structure, opt_arrays = encode_optimizer_state(updater.states)
    arrays.update(opt_arrays)
    meta = {
        "fingerprint": plan["fingerprint"], "params": plan.get("params"),
        **{key: getattr(state, key) for key in _STATE_FIELDS},
        "has_best": state.best_params is not None,
        "optimizer": {"states": structure, "num_update": int(optimizer.num_update),
                      "begin_num_update": int(optimizer.begin_num_update),
                      "update_counts": {str(dev): {str(k): int(v) for k, v in counts.items()}
                                        for dev, counts in
                                        optimizer._all_index_update_counts.items()}},
        "rng": seeding.get_rng_state(), "mx_seed": int(seed) % 2**31,
    }
    write_checkpoint(plan["dir"], meta, arrays)


def restore_training_state(found, par, updater, optimizer, state):
    """Inverse of :func:`save_training_state`: load ``found = (meta, arrays)`` in place.

    Sets the weights of ``par``, the updater's states, the optimizer's update counts, the
    fields of ``state`` and the RNG state.

    Raises
    ------
    InvalidParameterError
        If the checkpoint lacks a parameter of the network (another job's checkpoint).
    """
    meta, arrays = found
    first = par.contexts[0]
    weights = {k[len("weights/"):]: v.asnumpy() for k, v in arrays.items()
               if k.startswith("weights/")}
    missing = [p.name for p in par.params if p.name not in weights]
    if missing:
        raise InvalidParameterError(
            f"The checkpoint lacks parameters {missing[:5]} of this network; it belongs to "
            f"another job. Choose another checkpoint_dir.")
    par.set_values(weights)
    if meta.get("has_best"):
        state.best_params = {k[len("best/"):]: v.asnumpy() for k, v in arrays.items()
                             if k.startswith("best/")}
    opt = meta["optimizer"]
    updater.states = decode_optimizer_state(opt["states"], arrays, first)
    updater.states_synced = dict.fromkeys(updater.states, True)
    optimizer.num_update = int(opt["num_update"])
    optimizer.begin_num_update = int(opt["begin_num_update"])
    # MXNet keeps the update counts per device in private members and has no API to set
    # them; Optimizer._set_current_context picks _index_update_count from them the same way.
    optimizer._all_index_update_counts = {
        int(dev): {int(k): int(v) for k, v in counts.items()}
        for dev, counts in opt["update_counts"].items()}
    optimizer._all_index_update_counts.setdefault(0, {})
    optimizer._index_update_count = optimizer._all_index_update_counts[
        sorted(optimizer._all_index_update_counts)[0]]
    for key in _STATE_FIELDS:
        setattr(state, key, meta[key])
    seeding.set_rng_state(meta["rng"], meta.get("mx_seed"))
