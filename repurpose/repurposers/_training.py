"""The training loop behind the fine-tuning repurposers.

Small, separately testable pieces: optimizer creation, the learning-rate schedule (a function
of the epoch), frozen batch-norm statistics (a symbol rewrite), a seeded stratified validation
split, image augmentation, and :func:`train_network`, which runs epochs data-parallel over
contexts with early stopping and checkpoints.

Data parallelism: every batch is split over the contexts (:func:`repurpose.context.split_batch`),
each part runs forward/backward on its context, gradients are summed onto the first context,
one optimizer step runs there and the new weights are copied to the other contexts. The
summed loss is scaled by ``1 / batch size`` as ``Trainer.step(batch_size)`` does, so one
context and several give the same weights up to float rounding (layers computing batch
statistics, i.e. trainable batch norm, see per-context batches, as in any data-parallel
training without synchronised batch norm).

Across processes (``kvstore='dist_sync'``, :mod:`._distributed`): every worker draws the same
epoch permutation and global batches and computes rows ``rank::n_workers`` of each batch;
gradients are summed by the kvstore, and every worker applies the same optimizer step, so the
weights equal the single-process ones up to float rounding. Training and validation metrics
are summed over the workers too, so early-stopping decisions are the same on every worker;
only rank 0 writes checkpoints. With ``'dist_async'`` the optimizer runs on the servers
(MXNet's asynchronous server applies each push as it arrives) and workers pull weights.

Reproducibility and resume: each epoch draws its shuffle, augmentation and dropout randomness
from seeds derived from ``(seed, epoch)`` only, so a run resumed after epoch ``k`` from its
checkpoint (weights, optimizer state, best weights, history) continues exactly as the
uninterrupted run.
"""
import contextlib
import json
import logging
import math
import time

import mxnet as mx
import numpy as np
from mxnet import autograd

from .. import seeding
from .._progress import tqdm
from ..context import split_batch
from ..exceptions import InvalidParameterError
from ._checkpoint import (decode_optimizer_state, encode_optimizer_state, read_checkpoint,
                          write_checkpoint)
from ._distributed import LOCAL, worker_rows

logger = logging.getLogger(__name__)

__all__ = ["OPTIMIZERS", "LR_SCHEDULES", "MONITORS", "AUGMENTATIONS", "make_optimizer",
           "learning_rate_at", "freeze_batchnorm_stats", "stratified_split", "augment_images",
           "train_network"]

#: Optimizer names accepted by ``optimizer=``.
OPTIMIZERS = ("sgd", "nag", "adam", "rmsprop", "adagrad")
#: Learning-rate schedules accepted by ``lr_schedule=``.
LR_SCHEDULES = ("constant", "step", "cosine")
#: Quantities early stopping can watch, and whether larger is better.
MONITORS = {"val_loss": False, "val_accuracy": True, "train_loss": False,
            "train_accuracy": True}
#: Values of ``augment=`` (True means 'shift').
AUGMENTATIONS = (False, True, None, "shift", "flip", "shift+flip")


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


def learning_rate_at(epoch, base_lr, schedule="constant", n_epochs=1, warmup_epochs=0,
                     step_epochs=(), step_factor=0.1):
    """The learning rate of (0-based) ``epoch``.

    Warm-up rises linearly from ``base_lr / (warmup_epochs + 1)`` to ``base_lr`` over the first
    ``warmup_epochs`` epochs; afterwards 'constant' keeps ``base_lr``, 'step' multiplies it by
    ``step_factor`` at every epoch listed in ``step_epochs`` (1-based epochs at which the new
    rate starts), and 'cosine' decays it as ``0.5 * (1 + cos(pi * t))`` with ``t`` going from 0
    (after warm-up) towards 1 (the last epoch).

    Examples
    --------
    >>> [round(learning_rate_at(e, 1.0, 'step', 4, step_epochs=(3,)), 3) for e in range(4)]
    [1.0, 1.0, 0.1, 0.1]
    >>> [round(learning_rate_at(e, 1.0, 'cosine', 3), 3) for e in range(3)]
    [1.0, 0.75, 0.25]
    """
    if epoch < warmup_epochs:
        return base_lr * (epoch + 1) / (warmup_epochs + 1)
    if schedule == "step":
        n_steps = sum(1 for s in step_epochs if epoch + 1 >= s)
        return base_lr * step_factor ** n_steps
    if schedule == "cosine":
        span = max(n_epochs - warmup_epochs, 1)
        t = (epoch - warmup_epochs) / span
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * t))
    return base_lr


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


def augment_images(X, mode, rng, max_shift=1):
    """Random shifts (zero fill, up to ``max_shift`` pixels) and/or horizontal flips.

    Parameters
    ----------
    X : ndarray of shape (n, channels, height, width)
    mode : {'shift', 'flip', 'shift+flip'}
    rng : numpy.random.RandomState

    Returns
    -------
    ndarray, a new array of the same shape.
    """
    X = np.array(X, copy=True)
    n = len(X)
    if "flip" in mode:
        flip = rng.rand(n) < 0.5
        X[flip] = X[flip][..., ::-1]
    if "shift" in mode:
        shifts = rng.randint(-max_shift, max_shift + 1, size=(n, 2))
        out = np.zeros_like(X)
        h, w = X.shape[-2:]
        for dy, dx in {tuple(s) for s in shifts.tolist()}:
            rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else \
                (slice(-dy, h), slice(0, h + dy))
            xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else \
                (slice(-dx, w), slice(0, w + dx))
            moved = np.zeros_like(X[rows])
            moved[..., yd, xd] = X[rows][..., ys, xs]
            out[rows] = moved
        X = out
    return X


def _epoch_seeds(seed, epoch):
    """numpy RandomState and mx.random seed of one epoch, from ``(seed, epoch)`` only."""
    rng = np.random.RandomState([int(seed) % 2**32, int(epoch)])
    return rng, int(rng.randint(0, 2**31 - 1))


class _Parallel:
    """Forward passes split over contexts, for training and evaluation."""

    def __init__(self, block, contexts):
        self.block = block
        self.contexts = contexts
        self.params = list(block.collect_params().values())
        self.trainable = [p for p in self.params if p.grad_req != "null"]

    def predict_logits(self, X, batch_size):
        outputs = []
        for start in range(0, len(X), batch_size):
            parts = split_batch(X[start:start + batch_size], self.contexts)
            outs = [self.block(x) for _, x in parts]
            outputs.extend(outs)
        return np.concatenate([o.asnumpy() for o in outputs]) if outputs else \
            np.zeros((0, 0), np.float32)

    def broadcast(self, params=None):
        """Copy the first context's values to the other contexts."""
        if len(self.contexts) == 1:
            return
        for param in params if params is not None else self.params:
            first = param.data(self.contexts[0])
            for ctx in self.contexts[1:]:
                first.copyto(param.data(ctx))

    def get_values(self):
        """Every parameter's value on the first context, as numpy, by name."""
        return {p.name: p.data(self.contexts[0]).asnumpy() for p in self.params}

    def set_values(self, values):
        for p in self.params:
            for ctx in self.contexts:
                p.data(ctx)[:] = mx.nd.array(values[p.name], ctx=ctx, dtype=p.dtype)


def _loss_and_hit_sums(logits, y_idx):
    """Summed cross-entropy and number of correct predictions (sums add up over workers)."""
    if len(y_idx) == 0:
        return 0.0, 0.0
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_proba = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return (float(-log_proba[np.arange(len(y_idx)), y_idx].sum()),
            float((logits.argmax(axis=1) == y_idx).sum()))


def _is_better(value, best, larger_is_better):
    if best is None:
        return True
    if not np.isfinite(value):
        return False
    return value > best if larger_is_better else value < best


def train_network(block, contexts, X, y_idx, X_val, y_val_idx, config, new_params=(),
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
    config : dict
        optimizer, learning_rate, momentum, weight_decay, transferred_lr_mult, lr_schedule,
        warmup_epochs, step_epochs, step_factor, n_epochs, batch_size, early_stopping,
        patience, monitor, augment, seed.
    new_params : collection of str
        Parameters of the new layers: they keep ``lr_mult=1``; the others get
        ``transferred_lr_mult``.
    checkpoint : dict, default=None
        ``{'dir', 'fingerprint', 'params', 'resume'}``: write a checkpoint after each epoch,
        and with ``resume`` start from the newest one.
    progress : bool, default=False
        Show a tqdm bar over epochs.
    epoch_callback : callable, default=None
        Called as ``epoch_callback(row)`` after each epoch (and its checkpoint) with a copy of
        that epoch's history row; returning ``False`` ends training after this epoch.
        Exceptions it raises propagate (an early-stopping scheduler uses this to end a
        trial). Across processes it runs on every worker, and training ends when any
        worker's callback returns ``False``.
    group : repurpose.repurposers._distributed.WorkerGroup, default=None
        The workers of a distributed job; None trains in this process alone. Every worker
        passes the same data and config; each computes its rows of every batch, and only
        rank 0 writes checkpoints (every worker reads them on resume).

    Returns
    -------
    dict
        ``history`` (list of dicts), ``best_epoch`` (1-based or None), ``n_epochs_run``.
    """
    cfg = dict(config)
    group = LOCAL if group is None else group
    rank, n_workers = group.rank, group.n_workers
    # dist_async servers apply every push to the weights, so they cannot sum metrics: there
    # each worker reports its own rows and scores the whole validation set itself.
    sync = group.type != "dist_async"
    collective = group if sync else LOCAL
    val_rank, val_workers = (rank, n_workers) if sync else (0, 1)
    par = _Parallel(block, contexts)
    new_params = set(new_params)
    for p in par.trainable:
        p.lr_mult = 1.0 if p.name in new_params else float(cfg["transferred_lr_mult"])
    optimizer = make_optimizer(cfg["optimizer"], cfg["learning_rate"], cfg["momentum"],
                               cfg["weight_decay"],
                               param_dict={i: p for i, p in enumerate(par.trainable)})
    updater = mx.optimizer.get_updater(optimizer)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    n = len(X)
    batch_size = min(int(cfg["batch_size"]), n)
    n_epochs = int(cfg["n_epochs"])
    monitor = cfg["monitor"]
    larger_is_better = MONITORS[monitor]
    augment = "shift" if cfg["augment"] is True else cfg["augment"]
    has_val = X_val is not None and len(X_val) > 0
    # Held as numpy, so that reading the first context never aliases the live weights.
    state = {"history": [], "best_value": None, "best_epoch": None, "bad_epochs": 0,
             "best_params": None, "epoch": 0, "stopped": False}

    if checkpoint and checkpoint.get("resume"):
        found = read_checkpoint(checkpoint["dir"])
        if found is None:
            logger.info("No checkpoint in %s yet; starting %s from epoch 1", checkpoint["dir"],
                        description)
        else:
            _restore(found, par, updater, optimizer, state)
            logger.info("Resumed %s from %s after epoch %d", description, checkpoint["dir"],
                        state["epoch"])
    if group.distributed:
        # Every worker starts from rank 0's weights (the same when seeded; this also covers
        # random_state=None), then each step keeps them equal.
        group.broadcast("init", [p.data(contexts[0]) for p in par.params])
        par.broadcast()
        if group.type == "dist_async":
            _init_async(group, par, optimizer, cfg, n, batch_size, state["epoch"])

    redirect = contextlib.nullcontext()
    if progress:
        from tqdm.contrib.logging import logging_redirect_tqdm

        redirect = logging_redirect_tqdm()
    bar = tqdm(total=n_epochs, initial=state["epoch"], desc=description, unit="epoch",
               disable=not progress, leave=False)
    try:
        with redirect:
            for epoch in range(state["epoch"], n_epochs):
                if state["stopped"]:
                    break
                started = time.perf_counter()
                lr = learning_rate_at(epoch, float(cfg["learning_rate"]), cfg["lr_schedule"],
                                      n_epochs, int(cfg["warmup_epochs"]),
                                      tuple(cfg["step_epochs"]), float(cfg["step_factor"]))
                optimizer.set_learning_rate(lr)
                rng, mx_seed = _epoch_seeds(cfg["seed"], epoch)
                mx.random.seed(mx_seed)
                order = rng.permutation(n)
                # Augmentation draws its randomness for all n rows, so every worker (and a
                # single process) gives a row the same shift whoever computes it.
                X_epoch = augment_images(X[order], augment, rng) if augment else None
                y_epoch = y_idx[order].astype(np.float32)
                losses, hits = [], []
                n_mine = 0
                for start in range(0, n, batch_size):
                    stop = min(start + batch_size, n)
                    rows = worker_rows(np.arange(start, stop), rank, n_workers)
                    xb = X_epoch[rows] if augment else X[order[rows]]
                    yb = y_epoch[rows]
                    n_mine += len(rows)
                    x_parts = split_batch(xb, contexts)
                    y_parts = split_batch(yb, contexts)
                    if x_parts:
                        with autograd.record():
                            outs = [block(x) for _, x in x_parts]
                            batch_losses = [loss_fn(o, t) for o, (_, t) in zip(outs, y_parts)]
                        for loss in batch_losses:
                            loss.backward()
                    else:
                        outs, batch_losses = [], []
                    _step(par, updater, optimizer, stop - start, len(x_parts), group)
                    for o, loss, (_, t) in zip(outs, batch_losses, y_parts):
                        losses.append(loss.sum().as_in_context(contexts[0]))
                        hits.append((o.argmax(axis=1) == t).sum().as_in_context(contexts[0]))
                sums = [float(mx.nd.add_n(*v).asscalar()) if v else 0.0 for v in (losses, hits)]
                loss_sum, hit_sum = collective.sum_numpy("train", sums)
                n_scored = n if sync else max(n_mine, 1)
                train_loss, train_accuracy = loss_sum / n_scored, hit_sum / n_scored
                if not math.isfinite(train_loss):
                    raise FloatingPointError(
                        f"The training loss became {train_loss} in epoch {epoch + 1}; lower "
                        f"learning_rate (now {cfg['learning_rate']}).")
                row = {"epoch": epoch + 1, "lr": lr, "train_loss": train_loss,
                       "train_accuracy": train_accuracy, "val_loss": None,
                       "val_accuracy": None}
                if has_val:
                    # Each worker scores its rows; the sums make one result on every worker,
                    # so all of them take the same early-stopping decision.
                    X_mine = X_val[val_rank::val_workers]
                    logits = par.predict_logits(X_mine, batch_size)
                    sums = _loss_and_hit_sums(logits, y_val_idx[val_rank::val_workers]) \
                        if len(X_mine) else (0.0, 0.0)
                    loss_sum, hit_sum = collective.sum_numpy("val", sums)
                    row["val_loss"] = loss_sum / len(X_val)
                    row["val_accuracy"] = hit_sum / len(X_val)
                row["seconds"] = time.perf_counter() - started
                state["history"].append(row)
                state["epoch"] = epoch + 1
                value = row[monitor]
                if value is not None and _is_better(value, state["best_value"],
                                                    larger_is_better):
                    state["best_value"], state["best_epoch"] = float(value), epoch + 1
                    state["bad_epochs"] = 0
                    if cfg["early_stopping"]:
                        state["best_params"] = par.get_values()
                else:
                    state["bad_epochs"] += 1
                    if cfg["early_stopping"] and state["bad_epochs"] >= int(cfg["patience"]):
                        state["stopped"] = True
                logger.info(
                    "%s epoch %d/%d: lr %.4g, train_loss %.4f, train_accuracy %.4f%s, %.2f s",
                    description, epoch + 1, n_epochs, lr, train_loss, train_accuracy,
                    f", val_loss {row['val_loss']:.4f}, val_accuracy "
                    f"{row['val_accuracy']:.4f}" if has_val else "", row["seconds"])
                bar.update(1)
                bar.set_postfix(loss=f"{train_loss:.4g}", refresh=False)
                if checkpoint and group.is_root:
                    _save(checkpoint, par, updater, optimizer, state, cfg["seed"])
                go_on = epoch_callback is None or epoch_callback(dict(row)) is not False
                if collective.distributed:  # one worker's "stop" stops all of them
                    go_on = collective.sum_numpy("go_on", [0.0 if go_on else 1.0])[0] == 0
                if not go_on:
                    logger.info("%s: epoch_callback ended training after epoch %d",
                                description, epoch + 1)
                    break
                if state["stopped"]:
                    logger.info("%s: early stopping after epoch %d (%s did not improve for %d "
                                "epochs; best %.4f in epoch %d)", description, epoch + 1,
                                monitor, cfg["patience"], state["best_value"],
                                state["best_epoch"])
    finally:
        bar.close()
    if not sync:  # the servers' newest weights
        group.kv.pull(group.async_keys, out=[p.data(contexts[0]) for p in par.trainable])
        par.broadcast(par.trainable)
    if cfg["early_stopping"] and state["best_params"] is not None:
        par.set_values(state["best_params"])
    return {"history": state["history"], "best_epoch": state["best_epoch"],
            "n_epochs_run": state["epoch"]}


def _step(par, updater, optimizer, batch_size, n_parts=None, group=LOCAL):
    """Sum gradients onto the first context (and over workers), update, copy to the others.

    ``batch_size`` is the global batch (all workers); only the first ``n_parts`` contexts
    computed a part of it (a small last batch leaves the others out, and a worker may get
    no row at all: it then adds zeros to the sum).
    """
    optimizer.rescale_grad = 1.0 / batch_size
    first = par.contexts[0]
    n_parts = len(par.contexts) if n_parts is None else n_parts
    indices, grads, weights = [], [], []
    for i, p in enumerate(par.trainable):
        grad_list = p.list_grad()[:n_parts]
        if not grad_list:
            grad = p.list_grad()[0]
            grad[:] = 0
        else:
            grad = grad_list[0]
        if len(grad_list) > 1:
            grad = mx.nd.add_n(grad, *[g.as_in_context(first) for g in grad_list[1:]])
        indices.append(i)
        grads.append(grad)
        weights.append(p.data(first))
    if group.type == "dist_async":
        # The servers apply each worker's gradient as it arrives; pull the new weights.
        group.kv.push(group.async_keys, grads)
        group.kv.pull(group.async_keys, out=weights)
    else:
        group.sum("grad", grads)
        if indices:
            updater(indices, grads, weights)
    par.broadcast(par.trainable)


def _server_schedule(cfg, steps_per_epoch):
    """MXNet's own scheduler closest to :func:`learning_rate_at`, per update (or None).

    A 'dist_async' server unpickles the optimizer while MXNet is still being imported, so it
    can only hold MXNet's classes: warm-up becomes linear over ``warmup_epochs`` epochs,
    'cosine' decays per update rather than per epoch, 'step' steps at the same epochs.
    """
    base = float(cfg["learning_rate"])
    warmup = int(cfg["warmup_epochs"]) * steps_per_epoch
    kwargs = {"base_lr": base, "warmup_steps": warmup,
              "warmup_begin_lr": base / (int(cfg["warmup_epochs"]) + 1)}
    if cfg["lr_schedule"] == "cosine":
        total = max(int(cfg["n_epochs"]) * steps_per_epoch, warmup + 1)
        return mx.lr_scheduler.CosineScheduler(total, final_lr=0.0, **kwargs)
    if cfg["lr_schedule"] == "step" and cfg["step_epochs"]:
        steps = sorted({max((int(e) - 1) * steps_per_epoch, 1) for e in cfg["step_epochs"]})
        return mx.lr_scheduler.MultiFactorScheduler(steps, factor=float(cfg["step_factor"]),
                                                    **kwargs)
    if warmup:
        return mx.lr_scheduler.FactorScheduler(2**31 - 1, factor=1.0, **kwargs)
    return None


def _init_async(group, par, optimizer, cfg, n, batch_size, start_epoch):
    """'dist_async': weights live on the servers, which run the optimizer.

    MXNet's asynchronous server needs an optimizer (it applies each worker's push as it
    arrives), so the learning-rate schedule travels with it (:func:`_server_schedule`). Each
    push is a worker's gradient sum over its rows scaled by ``1 / batch_size``: the pushes of
    one global batch add up to the single-process step. Momentum and other optimizer state
    live on the servers and are not in the checkpoints (a resumed run restarts them).
    """
    weights = [p.data(par.contexts[0]) for p in par.trainable]
    group.async_keys = group._keys("weights", weights)
    steps = -(-n // batch_size) * group.n_workers
    kwargs = {"learning_rate": float(cfg["learning_rate"]), "wd": float(cfg["weight_decay"]),
              "rescale_grad": 1.0 / batch_size, "lr_scheduler": _server_schedule(cfg, steps)}
    if cfg["optimizer"] in ("sgd", "nag"):
        kwargs["momentum"] = float(cfg["momentum"])
    server_optimizer = mx.optimizer.create(cfg["optimizer"], **kwargs)
    server_optimizer.begin_num_update = server_optimizer.num_update = start_epoch * steps
    if group.is_root:
        group.kv.set_optimizer(server_optimizer)
    group.barrier()


# ---------------------------------------------------------------------- checkpoints
def _save(checkpoint, par, updater, optimizer, state, seed):
    arrays = {f"weights/{k}": mx.nd.array(v, dtype=v.dtype)
              for k, v in par.get_values().items()}
    if state["best_params"] is not None:
        arrays.update({f"best/{k}": mx.nd.array(v, dtype=v.dtype)
                       for k, v in state["best_params"].items()})
    structure, opt_arrays = encode_optimizer_state(updater.states)
    arrays.update(opt_arrays)
    meta = {
        "fingerprint": checkpoint["fingerprint"], "params": checkpoint.get("params"),
        "epoch": state["epoch"], "history": state["history"],
        "best_value": state["best_value"], "best_epoch": state["best_epoch"],
        "bad_epochs": state["bad_epochs"], "stopped": state["stopped"],
        "has_best": state["best_params"] is not None,
        "optimizer": {"states": structure, "num_update": int(optimizer.num_update),
                      "begin_num_update": int(optimizer.begin_num_update),
                      "update_counts": {str(dev): {str(k): int(v) for k, v in counts.items()}
                                        for dev, counts in
                                        optimizer._all_index_update_counts.items()}},
        "rng": seeding.get_rng_state(), "mx_seed": int(seed) % 2**31,
    }
    write_checkpoint(checkpoint["dir"], meta, arrays)


def _restore(found, par, updater, optimizer, state):
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
        state["best_params"] = {k[len("best/"):]: v.asnumpy() for k, v in arrays.items()
                                if k.startswith("best/")}
    opt = meta["optimizer"]
    updater.states = decode_optimizer_state(opt["states"], arrays, first)
    updater.states_synced = dict.fromkeys(updater.states, True)
    optimizer.num_update = int(opt["num_update"])
    optimizer.begin_num_update = int(opt["begin_num_update"])
    optimizer._all_index_update_counts = {
        int(dev): {int(k): int(v) for k, v in counts.items()}
        for dev, counts in opt["update_counts"].items()}
    optimizer._all_index_update_counts.setdefault(0, {})
    optimizer._index_update_count = optimizer._all_index_update_counts[
        sorted(optimizer._all_index_update_counts)[0]]
    for key in ("history", "best_value", "best_epoch", "bad_epochs", "stopped", "epoch"):
        state[key] = meta[key]
    seeding.set_rng_state(meta["rng"], meta.get("mx_seed"))
