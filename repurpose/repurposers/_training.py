"""The training behind the fine-tuning repurposers.

:func:`train_network` puts a run together: the optimizer with per-layer learning-rate
multipliers (:func:`make_optimizer`), the state a checkpoint resumes, and a
:class:`~._loop.TrainingLoop` (epochs -> batches -> optimizer step, validation) with its
callbacks (``._callbacks``): progress and logging, early stopping, checkpoints, the user's
epoch callback and, across processes, keeping the workers in step. Its settings are a
:class:`~._settings.TrainSettings`; learning-rate schedules and augmentation are functions of
the epoch (``._schedules``). Also here: frozen batch-norm statistics (a symbol rewrite) and a
seeded stratified validation split.

Across processes (:mod:`._distributed`) every worker computes its rows of each global batch
and only rank 0 writes checkpoints. Under ``'dist_sync'`` gradients and metrics are summed
over the workers, so all take the same steps and decisions; under ``'dist_async'`` the
optimizer runs on the servers and each worker scores its own rows.

Reproducibility and resume: each epoch draws its shuffle, augmentation and dropout randomness
from seeds derived from ``(seed, epoch)`` only, so a run resumed after epoch ``k`` from its
checkpoint (weights, optimizer state, best weights, history) continues exactly as the
uninterrupted run.
"""
import contextlib
import json
import logging
import math

import mxnet as mx
import numpy as np

from ._callbacks import Checkpointer, EarlyStopping, EpochCallback, ProgressLog, WorkerSync
from ._checkpoint import checkpoint_folder, read_checkpoint, restore_training_state
from ._distributed import LOCAL
from ._loop import ParallelBlock, TrainingLoop, TrainState
from ._schedules import augment_images, learning_rate_at
from ._settings import AUGMENTATIONS, LR_SCHEDULES, MONITORS, OPTIMIZERS, TrainSettings

logger = logging.getLogger(__name__)

__all__ = ["OPTIMIZERS", "LR_SCHEDULES", "MONITORS", "AUGMENTATIONS", "TrainSettings",
           "make_optimizer", "learning_rate_at", "freeze_batchnorm_stats", "stratified_split",
           "augment_images", "train_network"]


def make_optimizer(name, learning_rate, momentum=0.9, weight_decay=0.0, param_dict=None):
    """Create an MXNet optimizer by name with the given hyper-parameters.

    Parameters
    ----------
    name : {'sgd', 'nag', 'adam', 'rmsprop', 'adagrad'}
    learning_rate : float
    momentum : float, default=0.9
        Momentum of 'sgd' and 'nag' (ignored by the others).
    weight_decay : float, default=0.0
    param_dict : dict of int -> gluon.Parameter, default=None
        Gives each parameter its ``lr_mult`` / ``wd_mult``.

    Returns
    -------
    mx.optimizer.Optimizer
    """
    kwargs = {"learning_rate": float(learning_rate), "wd": float(weight_decay),
              "param_dict": param_dict or {}}
    if name in ("sgd", "nag"):
        kwargs["momentum"] = float(momentum)
    return mx.optimizer.create(name, **kwargs)


def freeze_batchnorm_stats(symbol, layers):
    """Return ``symbol`` with ``use_global_stats=True`` on the BatchNorm nodes in ``layers``.

    Such nodes normalise with their running mean / variance in training too and never update
    them, which is what a frozen batch-norm layer should do.
    """
    graph = json.loads(symbol.tojson())
    layers = set(layers)
    changed = 0
    for node in graph["nodes"]:
        if node["op"] == "BatchNorm" and node["name"] in layers:
            attrs = node.setdefault("attrs", {})
            attrs["use_global_stats"] = "True"
            changed += 1
    if not changed:
        return symbol
    return mx.sym.load_json(json.dumps(graph))


def stratified_split(y_idx, fraction, rng):
    """Seeded stratified split of label indices into (train, validation) positions.

    Each class gives ``round(fraction * count)`` samples to validation, but always keeps at
    least one in training.

    Returns
    -------
    train, val : ndarray of int
        Sorted positions.
    """
    val = []
    for c in np.unique(y_idx):
        members = rng.permutation(np.flatnonzero(y_idx == c))
        n_val = min(int(math.floor(fraction * len(members) + 0.5)), len(members) - 1)
        val.extend(members[:n_val].tolist())
    val = np.sort(np.asarray(val, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(y_idx)), val)
    return train, val


def train_network(block, contexts, X, y_idx, X_val, y_val_idx, settings, new_params=(),
                  checkpoint=None, progress=False, description="fine-tune", epoch_callback=None,
                  group=None):
    """Train ``block`` (a Gluon SymbolBlock whose output is class scores) in place.

    Parameters
    ----------
    block : mx.gluon.SymbolBlock
        Parameters on every context of ``contexts``; frozen ones have ``grad_req='null'``.
    contexts : list of mx.Context
    X, y_idx : ndarray
        Training inputs (float32) and labels in ``0 .. n_classes - 1``.
    X_val, y_val_idx : ndarray or None
        Validation data, or None.
    settings : TrainSettings
        Optimizer, schedule, epochs, batch size, early stopping, augmentation and seed.
    new_params : collection of str
        Parameters of the new layers: they keep ``lr_mult=1``; the others get
        ``transferred_lr_mult``.
    checkpoint : dict, default=None
        ``{'dir', 'fingerprint', 'params', 'resume'}``: write a checkpoint after each epoch,
        and with ``resume`` start from the newest one. The folder is locked for the whole
        run (on rank 0, the one that writes): a second run there is refused.
    progress : bool, default=False
        Show a tqdm bar over epochs.
    description : str, default='fine-tune'
        Names the run in log lines and on the progress bar.
    epoch_callback : callable, default=None
        Called as ``epoch_callback(row)`` after each epoch (and its checkpoint) with a copy of
        that epoch's history row; returning ``False`` ends training after this epoch.
        Exceptions it raises propagate (an early-stopping scheduler uses this to end a
        trial). Across processes it runs on every worker, and training ends when any
        worker's callback returns ``False``.
    group : repurpose.repurposers._distributed.WorkerGroup, default=None
        The workers of a distributed job; None trains in this process alone. Every worker
        passes the same data and settings; each computes its rows of every batch, and only
        rank 0 writes checkpoints (every worker reads them on resume).

    Returns
    -------
    dict
        ``history`` (list of dicts), ``best_epoch`` (1-based or None), ``n_epochs_run``.

    Raises
    ------
    LockedError
        If another run writes checkpoints to ``checkpoint['dir']``.
    """
    if not isinstance(settings, TrainSettings):
        raise TypeError(f"settings must be a TrainSettings, got {type(settings).__name__}.")
    group = LOCAL if group is None else group
    par = ParallelBlock(block, contexts)
    new_params = set(new_params)
    for p in par.trainable:
        p.lr_mult = 1.0 if p.name in new_params else settings.transferred_lr_mult
    optimizer = make_optimizer(settings.optimizer, settings.learning_rate, settings.momentum,
                               settings.weight_decay,
                               param_dict={i: p for i, p in enumerate(par.trainable)})
    updater = mx.optimizer.get_updater(optimizer)
    with _held_checkpoint_folder(checkpoint, group):
        state = _run(par, optimizer, updater, settings, (X, y_idx), (X_val, y_val_idx),
                     checkpoint, progress, description, epoch_callback, group)
    return {"history": state.history, "best_epoch": state.best_epoch,
            "n_epochs_run": state.epoch}


def _held_checkpoint_folder(checkpoint, group):
    """The checkpoint folder's lock, held by the worker that writes there (rank 0)."""
    if checkpoint and group.is_root:
        return checkpoint_folder(checkpoint["dir"])
    return contextlib.nullcontext()


def _run(par, optimizer, updater, settings, train, val, checkpoint, progress, description,
         epoch_callback, group):
    """Restore the checkpoint to resume, then run the loop with its callbacks."""
    state = TrainState()
    if checkpoint and checkpoint.get("resume"):
        found = read_checkpoint(checkpoint["dir"])
        if found is None:
            logger.info("No checkpoint in %s yet; starting %s from epoch 1", checkpoint["dir"],
                        description)
        else:
            restore_training_state(found, par, updater, optimizer, state)
            logger.info("Resumed %s from %s after epoch %d", description, checkpoint["dir"],
                        state.epoch)
    callbacks = [ProgressLog(progress), EarlyStopping(settings)]
    if checkpoint:
        callbacks.append(Checkpointer(checkpoint))
    if epoch_callback is not None:
        callbacks.append(EpochCallback(epoch_callback))
    if group.distributed:
        callbacks.append(WorkerSync())
    loop = TrainingLoop(par, optimizer, updater, settings, train, val, state, callbacks,
                        group=group, description=description, logger=logger)
    return loop.run()
