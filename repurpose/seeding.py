"""Seeding of every random number generator a run touches: Python's ``random``, numpy's global
generator and MXNet's (``mx.random``), and capture / restore of their state for checkpoints.
"""
import logging
import random

import mxnet as mx
import numpy as np
from sklearn.utils import check_random_state

logger = logging.getLogger(__name__)

__all__ = ["seed_everything", "derive_seed", "get_rng_state", "set_rng_state"]


def derive_seed(random_state):
    """Return an int seed in ``[0, 2**31)`` drawn from ``random_state``.

    Parameters
    ----------
    random_state : None, int or numpy.random.RandomState
        As in scikit-learn: None draws from numpy's global generator.

    Returns
    -------
    int
        A seed in ``[0, 2**31)``, the same for the same int ``random_state``.

    Examples
    --------
    >>> derive_seed(0) == derive_seed(0)
    True
    """
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def seed_everything(seed):
    """Seed ``random``, numpy's global generator and ``mx.random`` (all contexts) with ``seed``.

    Parameters
    ----------
    seed : int
        Seed in ``[0, 2**31)``.

    Examples
    --------
    >>> import numpy as np
    >>> seed_everything(3); a = np.random.rand()
    >>> seed_everything(3); bool(np.random.rand() == a)
    True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    mx.random.seed(seed)
    logger.debug("Seeded random, numpy and mxnet with %d", seed)


def get_rng_state():
    """Return the state of Python's and numpy's global generators as JSON-friendly data.

    MXNet exposes no getter for its generator state; checkpoints therefore also store a seed
    from which :func:`set_rng_state` reseeds ``mx.random`` deterministically.

    Returns
    -------
    dict
        ``{'python': [...], 'numpy': [...]}``: lists, ints and floats only, so it can be
        written as JSON.

    Examples
    --------
    >>> import json
    >>> state = get_rng_state()
    >>> json.loads(json.dumps(state)) == state
    True
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
    }


def set_rng_state(state, mx_seed=None):
    """Restore a state from :func:`get_rng_state`, and reseed ``mx.random`` if ``mx_seed``.

    Parameters
    ----------
    state : dict
        What :func:`get_rng_state` returned (possibly read back from JSON).
    mx_seed : int, default=None
        Seed for ``mx.random``, whose state MXNet cannot save; None leaves it alone.

    Examples
    --------
    >>> import numpy as np
    >>> state = get_rng_state(); a = np.random.rand()
    >>> set_rng_state(state); bool(np.random.rand() == a)
    True
    """
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), np_state[2],
                         np_state[3], np_state[4]))
    if mx_seed is not None:
        mx.random.seed(int(mx_seed))
