"""The callbacks of the training loop: everything a run does beyond training.

In the order :func:`~._training.train_network` lists them (which is the order of their
``on_epoch_end``; ``on_train_end`` and ``close`` run in reverse):

- :class:`ProgressLog`: one INFO line per epoch and a tqdm bar over epochs;
- :class:`EarlyStopping`: tracks the best epoch of ``monitor``; with ``early_stopping``,
  ends the run after ``patience`` epochs without improvement and restores the best weights;
- :class:`Checkpointer`: rank 0 writes a checkpoint after every epoch, after the epoch's log
  line and the early-stopping bookkeeping, before the user's callback sees the epoch;
- :class:`EpochCallback`: the user's ``epoch_callback(row)``; ``False`` ends training;
- :class:`WorkerSync`: keeps the workers of a distributed job in step: rank 0's initial
  weights everywhere, one worker's stop stops all of them, and under 'dist_async' the
  optimizer on the servers and their newest weights at the end.

Callbacks log through ``loop.logger``, so every line of a run comes from one logger.
"""
import contextlib

import mxnet as mx
import numpy as np

from .._progress import tqdm
from ._checkpoint import save_training_state
from ._loop import Callback
from ._schedules import server_schedule

__all__ = ["ProgressLog", "EarlyStopping", "Checkpointer", "EpochCallback", "WorkerSync"]


class ProgressLog(Callback):
    """Log each epoch's metrics at INFO; with ``progress``, show a tqdm bar over epochs.

    While the bar is open, log records go through ``tqdm.write`` so lines do not tear it.
    """

    def __init__(self, progress=False):
        self.progress = progress
        self.bar = None
        self._open = contextlib.ExitStack()

    def on_train_begin(self, loop):
        redirect = contextlib.nullcontext()
        if self.progress:
            from tqdm.contrib.logging import logging_redirect_tqdm

            redirect = logging_redirect_tqdm()
        self.bar = tqdm(total=loop.settings.n_epochs, initial=loop.state.epoch,
                        desc=loop.description, unit="epoch", disable=not self.progress,
                        leave=False)
        self._open.callback(self.bar.close)
        self._open.enter_context(redirect)

    def on_epoch_end(self, loop, row):
        loop.logger.info(
            "%s epoch %d/%d: lr %.4g, train_loss %.4f, train_accuracy %.4f%s, %.2f s",
            loop.description, row["epoch"], loop.settings.n_epochs, row["lr"],
            row["train_loss"], row["train_accuracy"],
            f", val_loss {row['val_loss']:.4f}, val_accuracy "
            f"{row['val_accuracy']:.4f}" if loop.has_val else "", row["seconds"])
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{row['train_loss']:.4g}", refresh=False)

    def close(self, loop):
        self._open.close()


def _is_better(value, best, larger_is_better):
    if best is None:
        return True
    if not np.isfinite(value):
        return False
    return value > best if larger_is_better else value < best


class EarlyStopping(Callback):
    """Track the best epoch of ``settings.monitor`` in ``loop.state``.

    With ``settings.early_stopping`` it also keeps that epoch's weights, ends the run once
    the monitored value has not improved for ``patience`` epochs (``state.stopped``, which
    the loop reads before the next epoch and a checkpoint keeps), and at the end puts the
    best weights back.
    """

    def __init__(self, settings):
        self.settings = settings
        self.stopped_after = None  # the epoch of this run after which it stopped the run

    def on_epoch_end(self, loop, row):
        settings, state = self.settings, loop.state
        value = row[settings.monitor]
        if value is not None and _is_better(value, state.best_value,
                                            settings.larger_is_better):
            state.best_value, state.best_epoch = float(value), row["epoch"]
            state.bad_epochs = 0
            if settings.early_stopping:
                state.best_params = loop.par.get_values()
        else:
            state.bad_epochs += 1
            if settings.early_stopping and state.bad_epochs >= settings.patience:
                state.stopped = True
                self.stopped_after = row["epoch"]

    def on_train_end(self, loop):
        state = loop.state
        if self.stopped_after is not None and loop.stop_reason is None:
            loop.logger.info("%s: early stopping after epoch %d (%s did not improve for %d "
                             "epochs; best %.4f in epoch %d)", loop.description,
                             self.stopped_after, self.settings.monitor, self.settings.patience,
                             state.best_value, state.best_epoch)
        if self.settings.early_stopping and state.best_params is not None:
            loop.par.set_values(state.best_params)


class Checkpointer(Callback):
    """After every epoch, rank 0 writes the training state to ``plan['dir']``.

    Parameters
    ----------
    plan : dict
        ``{'dir', 'fingerprint', 'params', 'resume'}`` (see ``save_training_state``).
    """

    def __init__(self, plan):
        self.plan = plan

    def on_epoch_end(self, loop, row):
        if loop.group.is_root:
            save_training_state(self.plan, loop.par, loop.updater, loop.optimizer, loop.state,
                                loop.settings.seed)


class EpochCallback(Callback):
    """Call ``function(row)`` with a copy of each epoch's row; ``False`` ends training.

    Exceptions it raises propagate (an early-stopping scheduler uses this to end a trial).
    """

    #: What the run logs when the callback (on any worker) ended it.
    REASON = "epoch_callback ended training after epoch %d"

    def __init__(self, function):
        self.function = function

    def on_epoch_end(self, loop, row):
        if self.function(dict(row)) is False:
            loop.stop(self.REASON, row["epoch"])


class WorkerSync(Callback):
    """Keep the workers of a distributed job in step (add it only to a distributed run).

    - at the start, every worker takes rank 0's weights (the same when seeded; this also
      covers ``random_state=None``); under 'dist_async' the optimizer moves to the servers;
    - after each epoch, after :class:`EpochCallback`: if any worker asked to stop, all stop
      (under 'dist_async' each worker decides alone, as its metrics are its own);
    - at the end under 'dist_async', every worker pulls the servers' newest weights.
    """

    def on_train_begin(self, loop):
        group, par = loop.group, loop.par
        group.broadcast("init", [p.data(par.contexts[0]) for p in par.params])
        par.broadcast()
        if group.type == "dist_async":
            self._init_async(loop)

    def on_epoch_end(self, loop, row):
        if loop.collective.distributed:  # one worker's "stop" stops all of them
            asked = loop.collective.sum_numpy(
                "go_on", [0.0 if loop.stop_reason is None else 1.0])[0]
            if asked:
                loop.stop(EpochCallback.REASON, row["epoch"])

    def on_train_end(self, loop):
        group, par = loop.group, loop.par
        if group.type == "dist_async":  # the servers' newest weights
            group.kv.pull(group.async_keys, out=[p.data(par.contexts[0]) for p in par.trainable])
            par.broadcast(par.trainable)

    @staticmethod
    def _init_async(loop):
        """'dist_async': weights live on the servers, which run the optimizer.

        MXNet's asynchronous server needs an optimizer (it applies each worker's push as it
        arrives), so the learning-rate schedule travels with it (:func:`server_schedule`).
        Each push is a worker's gradient sum over its rows scaled by ``1 / batch_size``: the
        pushes of one global batch add up to the single-process step. Momentum and other
        optimizer state live on the servers and are not in the checkpoints (a resumed run
        restarts them).
        """
        group, par, settings = loop.group, loop.par, loop.settings
        weights = [p.data(par.contexts[0]) for p in par.trainable]
        group.async_keys = group.keys("weights", weights)
        steps = -(-loop.n // loop.batch_size) * group.n_workers
        kwargs = {"learning_rate": settings.learning_rate, "wd": settings.weight_decay,
                  "rescale_grad": 1.0 / loop.batch_size,
                  "lr_scheduler": server_schedule(settings, steps)}
        if settings.optimizer in ("sgd", "nag"):
            kwargs["momentum"] = settings.momentum
        server_optimizer = mx.optimizer.create(settings.optimizer, **kwargs)
        server_optimizer.begin_num_update = server_optimizer.num_update = \
            loop.state.epoch * steps
        if group.is_root:
            group.kv.set_optimizer(server_optimizer)
        group.barrier()
