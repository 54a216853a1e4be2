"""The training loop: epochs -> batches -> optimizer step, then validation and the callbacks.

:class:`TrainingLoop` does only what every run does: set the epoch's learning rate and seeds,
shuffle (and augment), run each batch forward and backward split over the contexts, step the
optimizer, score the epoch on the training and validation data, and append its row to the
history. Everything optional is a :class:`Callback` (``._callbacks``): logging and progress,
early stopping, checkpoints, the user's epoch callback, keeping distributed workers in step.

Data parallelism: every batch is split over the contexts (:func:`repurpose.context.split_batch`),
each part runs forward/backward on its context, gradients are summed onto the first context,
one optimizer step runs there and the new weights are copied to the other contexts. The
summed loss is scaled by ``1 / batch size`` as ``Trainer.step(batch_size)`` does, so one
context and several give the same weights up to float rounding.
"""
import dataclasses
import logging
import math
import time
from typing import Optional

import mxnet as mx
import numpy as np
from mxnet import autograd

from ..context import split_batch
from ._distributed import LOCAL, worker_rows
from ._schedules import augment_images, epoch_seeds

__all__ = ["TrainState", "Callback", "ParallelBlock", "TrainingLoop", "optimizer_step"]


@dataclasses.dataclass
class TrainState:
    """What a run has done so far: what a checkpoint saves and a resumed run starts from.

    Weights (``best_params``) are held as numpy, so that reading the first context never
    aliases the live weights.
    """

    epoch: int = 0  #: epochs done
    history: list = dataclasses.field(default_factory=list)  #: one row per epoch
    best_value: Optional[float] = None  #: best value of the monitored quantity
    best_epoch: Optional[int] = None  #: its (1-based) epoch
    bad_epochs: int = 0  #: epochs since it last improved
    best_params: Optional[dict] = None  #: the weights of that epoch (early stopping only)
    stopped: bool = False  #: early stopping ended the run


class Callback:
    """Hooks of :class:`TrainingLoop`; each does nothing unless overridden.

    ``on_train_begin`` and ``on_epoch_end`` run in the order of the loop's callbacks,
    ``on_train_end`` (after the last epoch) and ``close`` (always, also when training fails)
    in reverse order, so callbacks unwind like nested ``with`` blocks. A callback ends
    training after the current epoch with :meth:`TrainingLoop.stop`.
    """

    def on_train_begin(self, loop):
        """Before the first epoch (after a resumed state is in place)."""

    def on_epoch_end(self, loop, row):
        """After an epoch; ``row`` is its history row, already in ``loop.state.history``."""

    def on_train_end(self, loop):
        """After the last epoch, when training ended without an error."""

    def close(self, loop):
        """Release what ``on_train_begin`` took; runs even when training failed."""


class ParallelBlock:
    """A Gluon block with parameters on several contexts: forward passes split over them."""

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


def optimizer_step(par, updater, optimizer, batch_size, n_parts=None, group=LOCAL):
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


def _loss_and_hit_sums(logits, y_idx):
    """Summed cross-entropy and number of correct predictions (sums add up over workers)."""
    if len(y_idx) == 0:
        return 0.0, 0.0
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_proba = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return (float(-log_proba[np.arange(len(y_idx)), y_idx].sum()),
            float((logits.argmax(axis=1) == y_idx).sum()))


class TrainingLoop:
    """Train ``par`` epoch by epoch from ``state`` on, calling ``callbacks`` around it.

    Parameters
    ----------
    par : ParallelBlock
    optimizer, updater
        The MXNet optimizer and its updater (which holds the per-parameter state).
    settings : TrainSettings
    train, val : tuple of (X, y_idx)
        Training data, and validation data (``(None, None)`` for none).
    state : TrainState
        Where to start (a fresh state, or the one a checkpoint restored).
    callbacks : list of Callback
    group : WorkerGroup
        The workers of a distributed job (:data:`~._distributed.LOCAL` for one process).
    description : str
        Names the run in log lines and on the progress bar.
    logger : logging.Logger, default=None
        Every line of a run goes to this one logger, callbacks' lines too (default: this
        module's; ``train_network`` passes ``repurpose.repurposers._training``'s).

    Attributes
    ----------
    stop_reason : tuple or None
        ``(message, *args)`` of the first :meth:`stop` of the current epoch.
    collective : WorkerGroup
        The group that sums metrics: ``group``, or the one-process group under 'dist_async'.
    """

    def __init__(self, par, optimizer, updater, settings, train, val, state, callbacks,
                 group=LOCAL, description="fine-tune", logger=None):
        self.par, self.optimizer, self.updater = par, optimizer, updater
        self.settings, self.state, self.callbacks = settings, state, list(callbacks)
        self.X, self.y_idx = train
        self.X_val, self.y_val_idx = val
        self.has_val = self.X_val is not None and len(self.X_val) > 0
        self.n = len(self.X)
        self.batch_size = min(settings.batch_size, self.n)
        self.group, self.description = group, description
        self.logger = logger or logging.getLogger(__name__)
        # dist_async servers apply every push to the weights, so they cannot sum metrics:
        # there each worker reports its own rows and scores the whole validation set itself.
        self.sync = group.type != "dist_async"
        self.collective = group if self.sync else LOCAL
        self.stop_reason = None
        self._loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()

    def stop(self, message, *args):
        """End training after this epoch; ``message % args`` is logged (the first one only)."""
        if self.stop_reason is None:
            self.stop_reason = (message, *args)

    def run(self):
        """Train until ``n_epochs``, early stopping or a callback's :meth:`stop`.

        Returns
        -------
        TrainState
        """
        try:
            for callback in self.callbacks:
                callback.on_train_begin(self)
            for epoch in range(self.state.epoch, self.settings.n_epochs):
                if self.state.stopped:  # a resumed run that early stopping had ended
                    break
                row = self.run_epoch(epoch)
                self.state.history.append(row)
                self.state.epoch = epoch + 1
                for callback in self.callbacks:
                    callback.on_epoch_end(self, row)
                if self.stop_reason is not None:
                    message, *args = self.stop_reason
                    self.logger.info("%s: " + message, self.description, *args)
                    break
            for callback in reversed(self.callbacks):
                callback.on_train_end(self)
        finally:
            for callback in reversed(self.callbacks):
                callback.close(self)
        return self.state

    def run_epoch(self, epoch):
        """Train (0-based) ``epoch`` and return its history row."""
        started = time.perf_counter()
        lr = self.settings.learning_rate_at(epoch)
        self.optimizer.set_learning_rate(lr)
        train_loss, train_accuracy = self._train(epoch)
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"The training loss became {train_loss} in epoch {epoch + 1}; lower "
                f"learning_rate (now {self.settings.learning_rate}).")
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": train_loss,
               "train_accuracy": train_accuracy, "val_loss": None, "val_accuracy": None}
        if self.has_val:
            row["val_loss"], row["val_accuracy"] = self._validate()
        row["seconds"] = time.perf_counter() - started
        return row

    def _train(self, epoch):
        """One pass over the shuffled training data; (mean loss, accuracy) of its batches."""
        rng, mx_seed = epoch_seeds(self.settings.seed, epoch)
        mx.random.seed(mx_seed)
        order = rng.permutation(self.n)
        augment = self.settings.augmentation
        # Augmentation draws its randomness for all n rows, so every worker (and a single
        # process) gives a row the same shift whoever computes it.
        X_epoch = augment_images(self.X[order], augment, rng) if augment else None
        y_epoch = self.y_idx[order].astype(np.float32)
        losses, hits = [], []
        n_mine = 0
        for start in range(0, self.n, self.batch_size):
            stop = min(start + self.batch_size, self.n)
            rows = worker_rows(np.arange(start, stop), self.group.rank, self.group.n_workers)
            xb = X_epoch[rows] if augment else self.X[order[rows]]
            n_mine += len(rows)
            self._train_batch(xb, y_epoch[rows], stop - start, losses, hits)
        sums = [float(mx.nd.add_n(*v).asscalar()) if v else 0.0 for v in (losses, hits)]
        loss_sum, hit_sum = self.collective.sum_numpy("train", sums)
        n_scored = self.n if self.sync else max(n_mine, 1)
        return loss_sum / n_scored, hit_sum / n_scored

    def _train_batch(self, xb, yb, global_size, losses, hits):
        """Forward, backward and one optimizer step; append the batch's sums on the first
        context to ``losses`` and ``hits``."""
        contexts = self.par.contexts
        x_parts = split_batch(xb, contexts)
        y_parts = split_batch(yb, contexts)
        if x_parts:
            with autograd.record():
                outs = [self.par.block(x) for _, x in x_parts]
                batch_losses = [self._loss(o, t) for o, (_, t) in zip(outs, y_parts)]
            for loss in batch_losses:
                loss.backward()
        else:
            outs, batch_losses = [], []
        optimizer_step(self.par, self.updater, self.optimizer, global_size, len(x_parts),
                       self.group)
        for o, loss, (_, t) in zip(outs, batch_losses, y_parts):
            losses.append(loss.sum().as_in_context(contexts[0]))
            hits.append((o.argmax(axis=1) == t).sum().as_in_context(contexts[0]))

    def _validate(self):
        """(mean loss, accuracy) on the validation data."""
        # Under dist_sync each worker scores its rows and the sums make one result on every
        # worker, so all of them take the same early-stopping decision.
        rank, n_workers = (self.group.rank, self.group.n_workers) if self.sync else (0, 1)
        X_mine = self.X_val[rank::n_workers]
        logits = self.par.predict_logits(X_mine, self.batch_size)
        sums = _loss_and_hit_sums(logits, self.y_val_idx[rank::n_workers]) \
            if len(X_mine) else (0.0, 0.0)
        loss_sum, hit_sum = self.collective.sum_numpy("val", sums)
        return loss_sum / len(self.X_val), hit_sum / len(self.X_val)
