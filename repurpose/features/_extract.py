"""The extraction engine: source model + data -> features, one forward pass per batch.

All requested layers come from ONE forward pass per batch: the graph is cut to a group of
their outputs (pooled and flattened inside the graph) and run as a hybridized Gluon
``SymbolBlock``, which is MXNet's cached-graph engine, the same a hand-written hybridized
Gluon forward uses. Batches are split across the given contexts and the next batch is
launched before the previous one's results are copied back, so data preparation overlaps
with MXNet's asynchronous compute.
"""
import logging
import os
import time

import mxnet as mx
import numpy as np

from .._progress import tqdm
from .._validation import brief_list, check_choice, check_layer_names
from ..context import resolve_contexts, split_batch
from ..data import as_batch_stream
from ..exceptions import DataError, InvalidParameterError
from ._store import MemorySink, NpySink

logger = logging.getLogger(__name__)

__all__ = ["extract_features", "PRECISIONS", "POOLS"]

PRECISIONS = ("float32", "int8", "bf16")
POOLS = (None, "avg", "max")


def _check_layers(source, layers):
    if isinstance(layers, str):
        layers = [layers]
    try:
        layers = list(layers)
    except TypeError:
        raise InvalidParameterError(
            f"layers must be a list of layer names, got {type(layers).__name__}.") from None
    if not layers:
        raise InvalidParameterError("layers is empty; name at least one layer to extract "
                                    "(see SourceModel.layer_names).")
    duplicates = sorted({l for l in layers if layers.count(l) > 1})
    if duplicates:
        raise InvalidParameterError(f"layers names {brief_list(duplicates)} more than once.")
    for layer in layers:
        if not isinstance(layer, str):
            raise InvalidParameterError(f"Layer names must be strings, got {layer!r}.")
        source.output_name(layer)  # raises UnknownLayerError with close matches
    return layers


def _check_input_shape(source, sample_shape, description):
    expected = source.input_shape
    if expected is not None and tuple(sample_shape) != tuple(expected):
        raise DataError(
            f"{description} has samples of shape {tuple(sample_shape)}, but this model expects "
            f"input shape {tuple(expected)} (per sample, batch axis excluded). Resize or "
            f"reshape the data to {tuple(expected)}."
        )
    if expected is None:
        source._infer_output_shapes(sample_shape)  # raises DataError if the graph rejects it


def feature_block(source, layers, pool, contexts, precision="float32", calib_batches=None):
    """Return the hybridized block that computes ``layers`` of ``source`` (cached).

    Parameters
    ----------
    source : SourceModel
    layers : list of str
    pool : {None, 'avg', 'max'}
    contexts : list of mx.Context
    precision : {'float32', 'int8', 'bf16'}, default='float32'
    calib_batches : list of ndarray, default=None
        Calibration data for ``'int8'``.

    Returns
    -------
    mx.gluon.HybridBlock
        Maps a batch of inputs to one ``(batch, n_features)`` output per layer (a list for
        several layers). Cached on ``source`` by layers, pooling, contexts and precision
        (and calibration data), so later calls return the same block.

    Examples
    --------
    >>> from repurpose import SourceModel
    >>> from repurpose.context import resolve_contexts
    >>> source = SourceModel.from_zoo('digits_cnn')
    >>> block = feature_block(source, ['conv3_fwd', 'fc1_relu_fwd'], 'avg',
    ...                       resolve_contexts('cpu'))
    >>> [out.shape for out in block(mx.nd.ones((2, 1, 8, 8)))]
    [(2, 64), (2, 64)]
    >>> block is feature_block(source, ['conv3_fwd', 'fc1_relu_fwd'], 'avg',
    ...                        resolve_contexts('cpu'))
    True
    """
    key = ("feature_block", tuple(layers), pool, tuple(str(c) for c in contexts), precision)
    if precision == "int8":
        from ._quantize import calibration_fingerprint

        # An int8 block is only as good as its calibration: other calibration data, another
        # block (calibrated once, then reused for every call with the same data).
        key += (calibration_fingerprint(calib_batches),)
    cache = source._cache
    if key not in cache:
        if precision == "float32":
            block = source.to_gluon(ctx=contexts, layers=layers, pool=pool, frozen=False)
            block.hybridize(static_alloc=True, static_shape=True)
        else:
            from ._quantize import low_precision_block

            block = low_precision_block(source, layers, pool, contexts, precision,
                                        calib_batches)
        cache[key] = block
    return cache[key]


def extract_features(source, data, layers, batch_size=64, ctx="cpu", pool=None, out=None,
                     overwrite=False, progress=True, precision="float32", calib_data=None,
                     n_calib_batches=4):
    """Extract features of ``data`` at ``layers`` of ``source``, one forward pass per batch.

    Parameters
    ----------
    source : SourceModel
        The network.
    data : ndarray, mx.nd.NDArray, mx.io.DataIter, Dataset, DataLoader or ImageFolder
        Input samples, see :func:`repurpose.data.as_batch_stream`.
    layers : sequence of str
        Layer names (see ``source.layer_names``); all come from the same forward pass.
    batch_size : int, default=64
        Samples per forward pass (split across contexts).
    ctx : str, mx.Context or list, default='cpu'
        ``'cpu'``, ``'gpu'``, ``'gpu:0,1'``, contexts; see
        :func:`repurpose.context.resolve_contexts`.
    pool : {None, 'avg', 'max'}, default=None
        Global pooling of convolutional maps (N, C, H, W) to (N, C); other outputs are
        flattened.
    out : str or path-like, default=None
        A folder to stream features to (``<layer>.npy`` files and ``features.json``);
        memory then stays flat as N grows, and memory-mapped arrays are returned.
    overwrite : bool, default=False
        Replace an existing ``out``.
    progress : bool, default=True
        Show a progress bar (tqdm, on stderr).
    precision : {'float32', 'int8', 'bf16'}, default='float32'
        ``'int8'`` quantizes the cut network with MXNet's ``quantize_net``, calibrated on
        ``calib_data`` (or the first ``n_calib_batches`` batches of ``data``); ``'bf16'``
        converts it with MXNet's AMP. Both are CPU (MKLDNN) paths and need the CPU's
        VNNI / BF16 instructions to be faster.
    calib_data : same types as ``data``, default=None
        Calibration samples for ``'int8'``. The calibrated network is cached with the
        model, per layers and calibration data; pass the same ``calib_data`` when
        extracting training and test features so both go through one quantized network.
    n_calib_batches : int, default=4
        Batches of calibration data to use.

    Returns
    -------
    dict of str -> ndarray of shape (n_samples, n_features)
        float32 features per layer, in input order.

    Raises
    ------
    UnknownLayerError
        For a layer name the model lacks (with close matches).
    DataError
        For empty data, non-finite values, or samples of the wrong shape (the message gives
        the model's input shape).
    ContextError
        For a GPU that is not there.
    FileExistsError
        If ``out`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> from repurpose import SourceModel
    >>> model = SourceModel.from_zoo('digits_cnn')
    >>> X = np.random.RandomState(0).rand(10, 1, 8, 8).astype('float32')
    >>> feats = extract_features(model, X, ['fc1_relu_fwd', 'pool1_fwd'], pool='avg',
    ...                          progress=False)
    >>> {k: v.shape for k, v in feats.items()}
    {'fc1_relu_fwd': (10, 64), 'pool1_fwd': (10, 32)}
    """
    # 1. Parameters, cheapest first.
    layers = _check_layers(source, layers)
    check_choice(pool, "pool", POOLS)
    check_choice(precision, "precision", PRECISIONS)
    contexts = resolve_contexts(ctx)
    if out is not None and os.path.exists(out) and not overwrite:
        raise FileExistsError(f"out={os.fspath(out)!r} already exists. Choose another path, "
                              f"remove it, or pass overwrite=True.")
    if precision != "float32":
        from ._quantize import check_precision_supported

        check_precision_supported(precision, contexts)
    # 2. The data: first batch read and checked before any forward pass.
    stream = as_batch_stream(data, batch_size)
    calib_batches = None
    if precision == "int8":
        from ._quantize import calibration_batches

        # Read before the data's first batch is peeked, and from the data's own stream when
        # no calib_data is given: a second reader of the same DataIter would move it on
        # under the stream's feet and samples would be skipped.
        calib_batches = calibration_batches(calib_data if calib_data is not None else stream,
                                            batch_size, n_calib_batches, source)
    stream.peek()
    _check_input_shape(source, stream.sample_shape, stream.description)
    # 3. The work.
    block = feature_block(source, layers, pool, contexts, precision, calib_batches)
    if out is None:
        sink = MemorySink(layers, stream.n_samples)
    else:
        sink = NpySink(out, layers, {"layers": layers, "pool": pool, "precision": precision,
                                     "source_sha256": source.sha256}, overwrite=overwrite)
    bar = tqdm(total=stream.n_samples, unit="sample", desc="extract", disable=not progress,
               leave=False)
    n_seen, pending = 0, None
    started = time.perf_counter()
    try:
        for start, batch in stream:
            launched = [block(x) for _, x in split_batch(batch, contexts)]
            if pending is not None:
                n_seen += _collect(pending, sink, layers)
                bar.update(pending[1])
            pending = (start, len(batch), launched)
            logger.debug("Batch of %d samples at %d launched on %d context(s)", len(batch),
                         start, len(contexts))
        if pending is not None:
            n_seen += _collect(pending, sink, layers)
            bar.update(pending[1])
        result = sink.close(n_seen)
    except BaseException:
        sink.abort()
        raise
    finally:
        bar.close()
    elapsed = time.perf_counter() - started
    logger.info("Extracted %d samples x %d layer(s) in %.2f s (%.1f samples/s)", n_seen,
                len(layers), elapsed, n_seen / max(elapsed, 1e-9))
    return result


def _collect(pending, sink, layers):
    """Wait for a launched batch, copy its outputs to numpy and hand them to the sink."""
    start, n, launched = pending
    per_layer = []
    for i in range(len(layers)):
        parts = []
        for outputs in launched:
            output = outputs[i] if isinstance(outputs, (list, tuple)) else outputs
            parts.append(output.asnumpy())
        per_layer.append(parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0))
    for layer, arr in zip(layers, per_layer):
        if len(arr) != n:
            raise DataError(f"Layer {layer!r} gave {len(arr)} rows for a batch of {n} samples; "
                            f"it mixes samples across the batch axis and cannot be extracted "
                            f"per sample.")
    sink.write(start, per_layer)
    return n
