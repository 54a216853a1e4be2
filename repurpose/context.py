"""Device contexts: the only code that parses ``'cpu'`` / ``'gpu:0,1'`` / ``mx.Context`` lists
and the only code that splits a batch across them.

Everything else in the package receives the resolved list of :class:`mxnet.Context`.
"""
import logging
import re

import mxnet as mx
import numpy as np

from .exceptions import ContextError

logger = logging.getLogger(__name__)

__all__ = ["resolve_contexts", "split_batch", "num_gpus"]

_SPEC = re.compile(r"^\s*(cpu|gpu)\s*(?:(?::|\()\s*([0-9,\s]*)\)?)?\s*$", re.I)


def num_gpus():
    """Return the number of GPUs MXNet can use on this machine (0 on CPU-only builds).

    Returns
    -------
    int
        The GPU count; 0, not an error, where MXNet was built without CUDA.

    Examples
    --------
    >>> num_gpus() >= 0
    True
    """
    try:
        return mx.context.num_gpus()
    except mx.base.MXNetError:  # CPU-only builds raise instead of returning 0
        return 0


def _parse_one(spec):
    if isinstance(spec, mx.Context):
        return [spec]
    if not isinstance(spec, str):
        raise ContextError(
            f"ctx must be a string such as 'cpu', 'gpu' or 'gpu:0,1', an mx.Context or a list "
            f"of them; got {spec!r} of type {type(spec).__name__}."
        )
    match = _SPEC.match(spec)
    if not match:
        raise ContextError(
            f"Cannot parse ctx {spec!r}. Use 'cpu', 'cpu:0,1', 'gpu', 'gpu:0,1' or an mx.Context."
        )
    kind = match.group(1).lower()
    ids_text = (match.group(2) or "").strip()
    if ids_text:
        try:
            ids = [int(part) for part in ids_text.split(",") if part.strip()]
        except ValueError as err:
            raise ContextError(f"Cannot parse device ids in ctx {spec!r}.") from err
    else:
        ids = [0]
    return [mx.Context(kind, i) for i in ids]


def resolve_contexts(ctx="cpu"):
    """Turn a context specification into a list of distinct :class:`mxnet.Context`.

    Parameters
    ----------
    ctx : str, mx.Context or list of them, default='cpu'
        ``'cpu'``, ``'cpu:0,1,2'`` (several CPU contexts: useful to test splitting),
        ``'gpu'`` (GPU 0), ``'gpu:0,1'``, an ``mx.Context``, or a list mixing these.

    Returns
    -------
    list of mx.Context
        In the order given, without duplicates.

    Raises
    ------
    ContextError
        If the specification cannot be parsed, is empty, or names a GPU this machine does
        not have (the message names the missing id and the number of GPUs found).

    Examples
    --------
    >>> resolve_contexts('cpu:0,1')
    [cpu(0), cpu(1)]
    """
    specs = ctx if isinstance(ctx, (list, tuple)) else [ctx]
    if len(specs) == 0:
        raise ContextError("ctx is an empty list; give at least one context, e.g. 'cpu'.")
    contexts = []
    for spec in specs:
        for context in _parse_one(spec):
            if context not in contexts:
                contexts.append(context)
    gpu_ids = [c.device_id for c in contexts if c.device_type == "gpu"]
    if gpu_ids:
        found = num_gpus()
        missing = [i for i in gpu_ids if i >= found]
        if missing:
            raise ContextError(
                f"ctx {ctx!r} asks for GPU {missing[0]}, but this machine has {found} GPU(s) "
                f"usable by MXNet" + (" (is the CUDA build of mxnet installed?)" if found == 0
                                      else f" (ids 0..{found - 1})")
                + ". Use ctx='cpu' or a GPU id that exists."
            )
    return contexts


def split_batch(batch, contexts):
    """Split ``batch`` along its first axis into one part per context.

    Parts are as even as possible; a ragged batch gives the first ``n % k`` parts one extra
    sample, and a batch smaller than the number of contexts leaves the last contexts out
    (as ``split_and_load(even_split=False)`` does).

    Parameters
    ----------
    batch : ndarray of shape (n_samples, ...)
        A numpy array.
    contexts : list of mx.Context
        Resolved contexts, see :func:`resolve_contexts`.

    Returns
    -------
    list of (mx.Context, mx.nd.NDArray)
        Each part already copied to its context, in sample order.

    Examples
    --------
    >>> parts = split_batch(np.zeros((5, 2), dtype='float32'), [mx.cpu(0), mx.cpu(1)])
    >>> [(str(c), p.shape) for c, p in parts]
    [('cpu(0)', (3, 2)), ('cpu(1)', (2, 2))]
    """
    n = len(batch)
    k = min(len(contexts), n)
    bounds = np.linspace(0, n, k + 1).astype(int) if k else [0]
    # linspace gives even parts that differ by at most one sample, in order.
    sizes = np.diff(bounds)
    order = np.argsort(-sizes, kind="stable")
    sizes = sizes[order]  # larger parts first, as split_and_load does
    parts, start = [], 0
    for context, size in zip(contexts, sizes):
        stop = start + int(size)
        parts.append((context, mx.nd.array(batch[start:stop], ctx=context, dtype=batch.dtype)))
        start = stop
    return parts
