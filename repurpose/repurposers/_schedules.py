"""What changes from epoch to epoch, as functions of the settings and the epoch only.

The learning rate of an epoch (:func:`learning_rate_at`, and :func:`server_schedule`, its
nearest MXNet scheduler for a ``dist_async`` server), the epoch's seeds (:func:`epoch_seeds`)
and the random augmentation of its images (:func:`augment_images`). Nothing here depends on
earlier epochs, which is what lets a resumed run continue exactly as the uninterrupted one.
"""
import math

import mxnet as mx
import numpy as np

__all__ = ["learning_rate_at", "server_schedule", "epoch_seeds", "augment_images"]


def learning_rate_at(epoch, base_lr, schedule="constant", n_epochs=1, warmup_epochs=0,
                     step_epochs=(), step_factor=0.1):
    """The learning rate of (0-based) ``epoch`` under a fine-tuning repurposer's schedule.

    Warm-up rises linearly from ``base_lr / (warmup_epochs + 1)`` to ``base_lr`` over the first
    ``warmup_epochs`` epochs; afterwards 'constant' keeps ``base_lr``, 'step' multiplies it by
    ``step_factor`` at every epoch listed in ``step_epochs`` (1-based epochs at which the new
    rate starts), and 'cosine' decays it as ``0.5 * (1 + cos(pi * t))`` with ``t`` going from 0
    (after warm-up) towards 1 (the last epoch). This is the rate
    :class:`FineTuneRepurposer` trains with in each epoch (its per-update scheduler follows
    it), e.g. to give :func:`repurpose.bo.minimize_with_early_stopping` its ``schedule``.

    Parameters
    ----------
    epoch : int
        The epoch, counted from 0.
    base_lr : float
        The ``learning_rate`` setting.
    schedule : {'constant', 'step', 'cosine'}, default='constant'
        The ``lr_schedule`` setting.
    n_epochs : int, default=1
        The ``n_epochs`` setting (the length of the cosine).
    warmup_epochs : int, default=0
        The ``warmup_epochs`` setting.
    step_epochs : sequence of int, default=()
        The ``step_epochs`` setting.
    step_factor : float, default=0.1
        The ``step_factor`` setting.

    Returns
    -------
    float
        The learning rate of that epoch.

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


def server_schedule(settings, steps_per_epoch):
    """MXNet's own scheduler closest to :func:`learning_rate_at`, per update (or None).

    A 'dist_async' server unpickles the optimizer while MXNet is still being imported, so it
    can only hold MXNet's classes: warm-up becomes linear over ``warmup_epochs`` epochs,
    'cosine' decays per update rather than per epoch, 'step' steps at the same epochs.

    Parameters
    ----------
    settings : TrainSettings
        Reads learning_rate, lr_schedule, warmup_epochs, step_epochs, step_factor, n_epochs.
    steps_per_epoch : int
        Optimizer updates per epoch (on the server: every worker's pushes).
    """
    base = settings.learning_rate
    warmup = settings.warmup_epochs * steps_per_epoch
    kwargs = {"base_lr": base, "warmup_steps": warmup,
              "warmup_begin_lr": base / (settings.warmup_epochs + 1)}
    if settings.lr_schedule == "cosine":
        total = max(settings.n_epochs * steps_per_epoch, warmup + 1)
        return mx.lr_scheduler.CosineScheduler(total, final_lr=0.0, **kwargs)
    if settings.lr_schedule == "step" and settings.step_epochs:
        steps = sorted({max((e - 1) * steps_per_epoch, 1) for e in settings.step_epochs})
        return mx.lr_scheduler.MultiFactorScheduler(steps, factor=settings.step_factor,
                                                    **kwargs)
    if warmup:
        return mx.lr_scheduler.FactorScheduler(2**31 - 1, factor=1.0, **kwargs)
    return None


def epoch_seeds(seed, epoch):
    """numpy RandomState and mx.random seed of one epoch, from ``(seed, epoch)`` only.

    Examples
    --------
    >>> rng, mx_seed = epoch_seeds(0, 3)
    >>> mx_seed == epoch_seeds(0, 3)[1] != epoch_seeds(0, 4)[1]
    True
    """
    rng = np.random.RandomState([int(seed) % 2**32, int(epoch)])
    return rng, int(rng.randint(0, 2**31 - 1))


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

    Examples
    --------
    >>> X = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    >>> augment_images(X, 'flip', np.random.RandomState(1))[0, 0].tolist()
    [[1.0, 0.0], [3.0, 2.0]]
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
