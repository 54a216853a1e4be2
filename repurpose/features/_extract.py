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
import warnings

import mxnet as mx
import numpy as np

from .._progress import tqdm
from .._validation import brief_list, check_choice
from ..context import resolve_contexts, split_batch
from ..data import as_batch_stream
from ..exceptions import DataError
from ._checks import POOLS, PRECISIONS, check_input_shape, check_layers
from ._quantize import (calibration_batches, calibration_fingerprint, check_precision_supported,
                        low_precision_block)
from ._store import MemorySink, NpySink

logger = logging.getLogger(__name__)

__all__ = ["extract_features", "feature_block", "FUSION_ENV", "FUSION_RTOL"]


#: Environment variable that turns the MKLDNN fusion of float32 feature blocks off when set
#: to ``0`` (or ``false``, ``no``, ``off``); see :func:`feature_block`.
FUSION_ENV = "REPURPOSE_MKLDNN_FUSION"

#: The largest difference between fused and unfused float32 features that the check at
#: build time accepts, relative to the largest unfused feature of the layer. Fusion only
#: reorders float32 arithmetic (batch norm folded into convolution weights), which moves
#: resnet18's pooled features by about 3e-7 of their scale; a wrong fusion moves them by
#: order 1.
FUSION_RTOL = 1e-4


def _fusion_wanted():
    """False if :data:`FUSION_ENV` turns the float32 fusion off."""
    value = os.environ.get(FUSION_ENV, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def _fusion_unavailable(contexts, sample_shape):
    """Why the float32 block cannot be fused here, or None if it can."""
    others = [str(c) for c in contexts if c.device_type != "cpu"]
    if others:
        return f"MKLDNN fusion is a CPU path and ctx holds {brief_list(others)}"
    if not mx.runtime.Features().is_enabled("MKLDNN"):
        return f"this MXNet {mx.__version__} is built without MKLDNN"
    if sample_shape is None:
        return "the model has no input shape (pass sample_shape to feature_block)"
    return None


def _max_relative_difference(got, expected):
    """max |got - expected| over the largest |expected| (inf where shapes or NaNs differ)."""
    if got.shape != expected.shape or not np.isfinite(got).all():
        return float("inf")
    scale = max(float(np.abs(expected).max(initial=0.0)), np.finfo(np.float32).tiny)
    return float(np.abs(got - expected).max(initial=0.0)) / scale


def _fused_block(block, layers, contexts, sample_shape):
    """MXNet's MKLDNN fusion of the float32 ``block``, checked against it on one input.

    The fused block shares ``block``'s parameters (no copy) and is partitioned by
    ``optimize_for(backend='MKLDNN')``: convolution + batch norm + activation (+ the
    residual sum), dense + activation, each one oneDNN kernel. Both blocks then compute a
    seeded random input on the first context; features that differ by more than
    :data:`FUSION_RTOL` of their scale reject the fusion.

    Returns
    -------
    (mx.gluon.SymbolBlock or None, str or None)
        The fused, hybridized block and None, or None and the reason it was rejected.
    """
    inputs, outputs = block._cached_graph
    check = np.random.RandomState(0).uniform(-1.0, 1.0, (1,) + tuple(sample_shape))
    check = mx.nd.array(check, ctx=contexts[0], dtype=np.float32)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "unused input" for label variables
            fused = mx.gluon.SymbolBlock(outputs, inputs, params=block.collect_params())
        with contexts[0]:
            fused.optimize_for(check, backend="MKLDNN", static_alloc=True, static_shape=True)
        expected = block(check)
        got = fused(check)
        if not isinstance(expected, (list, tuple)):
            expected, got = [expected], [got]
        expected = [e.asnumpy() for e in expected]
        got = [g.asnumpy() for g in got]
    except (mx.base.MXNetError, ValueError, AssertionError) as err:
        # An optimisation must never stop an extraction: any failure means unfused.
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return None, f"MXNet failed to fuse or run it ({first})"
    if not all(np.isfinite(e).all() for e in expected):
        return None, "its unfused features of the check input are not finite"
    for layer, g, e in zip(layers, got, expected):
        difference = _max_relative_difference(g, e)
        if difference > FUSION_RTOL:
            return None, (f"fused features of layer {layer!r} differ from unfused ones by "
                          f"{difference:.1e} of their scale (more than {FUSION_RTOL:.0e})")
    return fused, None


def _float32_block(source, layers, pool, contexts, sample_shape, fuse):
    """The float32 block: fused where it can be and the check passes, else unfused."""
    block = source.to_gluon(ctx=contexts, layers=layers, pool=pool, frozen=False)
    if fuse:
        reason = _fusion_unavailable(contexts, sample_shape)
    else:
        reason = f"turned off (fuse=False or {FUSION_ENV}=0)"
    if reason is None:
        fused, reason = _fused_block(block, layers, contexts, sample_shape)
        if fused is not None:
            logger.debug("float32 block for %d layer(s) fused by MKLDNN", len(layers))
            return fused
        # Never different numbers, never silently: the unfused block, and a line saying so.
        logger.warning("MKLDNN fusion of the float32 block for layers %s rejected: %s. "
                       "Extracting unfused (same features, slower); set %s=0 to skip "
                       "the attempt.", brief_list(layers), reason, FUSION_ENV)
    else:
        logger.debug("float32 block for %d layer(s) not fused: %s", len(layers), reason)
    block.hybridize(static_alloc=True, static_shape=True)
    return block


def feature_block(source, layers, pool, contexts, precision="float32", calib_batches=None,
                  sample_shape=None, fuse=None):
    """Return the hybridized block that computes ``layers`` of ``source`` (cached).

    On CPU contexts the float32 block is fused by MXNet's MKLDNN (oneDNN) subgraph backend:
    convolution + batch norm + activation (+ the residual sum) and dense + activation
    become single oneDNN kernels, with batch norm folded into the convolution weights
    (``block.optimize_for(x, backend='MKLDNN', static_alloc=True, static_shape=True)``).
    ``benchmarks/extraction.py`` measures 1.1-1.2x the images/s of the unfused block on
    resnet18. The fused block is checked against the unfused one on a seeded random input
    when it is built; if MXNet cannot fuse the graph or any layer's features differ by more
    than ``1e-4`` of their scale, the unfused block is used and a WARNING is logged with the
    reason (never different features). Unfused blocks are hybridized with ``static_alloc``
    and ``static_shape``.

    Parameters
    ----------
    source : SourceModel
    layers : list of str
    pool : {None, 'avg', 'max'}
    contexts : list of mx.Context
    precision : {'float32', 'int8', 'bf16'}, default='float32'
    calib_batches : list of ndarray, default=None
        Calibration data for ``'int8'``.
    sample_shape : tuple of int, default=None
        Shape of one input sample, for the fusion's check input; defaults to
        ``source.input_shape``. A float32 block with neither stays unfused.
    fuse : bool, default=None
        Fuse the float32 block on CPU contexts. None means yes unless the environment
        variable ``REPURPOSE_MKLDNN_FUSION`` is ``0``. GPU contexts and MXNet builds
        without MKLDNN are never fused. int8 and bf16 blocks are fused by their own
        conversions.

    Returns
    -------
    mx.gluon.HybridBlock
        Maps a batch of inputs to one ``(batch, n_features)`` output per layer (a list for
        several layers). Cached on ``source`` by layers, pooling, contexts and precision
        (and calibration data, or for float32 whether fusion is wanted), so later calls
        return the same block.

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
        # An int8 block is only as good as its calibration: other calibration data, another
        # block (calibrated once, then reused for every call with the same data).
        key += (calibration_fingerprint(calib_batches),)
    if precision == "float32":
        fuse = _fusion_wanted() if fuse is None else bool(fuse)
        key += ("fused" if fuse else "unfused",)

    def build():
        if precision != "float32":
            return low_precision_block(source, layers, pool, contexts, precision, calib_batches)
        shape = source.input_shape if sample_shape is None else sample_shape
        return _float32_block(source, layers, pool, contexts, shape, fuse)

    return source.cached(key, build)


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
        converts it with MXNet's AMP. Both are CPU (MKLDNN) paths: int8 runs on any x86
        CPU with SSE4.1 and is fastest with VNNI (the extraction guide has the speed-ups per
        instruction set); bf16 needs AVX512-BF16 or AMX.
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
    LockedError
        If another process (or thread) is writing ``out``: one writer at a time holds its
        :class:`~repurpose.persist.FolderLock` for the whole write (and removes the hidden
        ``.<out>.XXXXXXXX.tmp`` folders a killed writer left).
    OSError
        If the disk has no room for ``out``: the message names it and the free space, and
        no temporary folder is left.

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
    # Long by its docstring; the body reads top to bottom: checks, data, then the work.
    # 1. Parameters, cheapest first.
    layers = check_layers(source, layers)
    check_choice(pool, "pool", POOLS)
    check_choice(precision, "precision", PRECISIONS)
    contexts = resolve_contexts(ctx)
    if out is not None and os.path.exists(out) and not overwrite:
        raise FileExistsError(f"out={os.fspath(out)!r} already exists. Choose another path, "
                              f"remove it, or pass overwrite=True.")
    check_precision_supported(precision, contexts)  # float32 runs everywhere
    # 2. The data: first batch read and checked before any forward pass.
    stream = as_batch_stream(data, batch_size)
    calib_batches = None
    if precision == "int8":
        # Read before the data's first batch is peeked, and from the data's own stream when
        # no calib_data is given: a second reader of the same DataIter would move it on
        # under the stream's feet and samples would be skipped.
        calib_batches = calibration_batches(calib_data if calib_data is not None else stream,
                                            batch_size, n_calib_batches, source)
    stream.peek()
    check_input_shape(source, stream.sample_shape, stream.description)
    # 3. The work.
    block = feature_block(source, layers, pool, contexts, precision, calib_batches,
                          sample_shape=stream.sample_shape)
    if out is None:
        sink = MemorySink(layers, stream.n_samples)
    else:
        sink = NpySink(out, layers, {"layers": layers, "pool": pool, "precision": precision,
                                     "source_sha256": source.sha256}, overwrite=overwrite)
    return _run(block, stream, contexts, sink, layers, progress)


def _run(block, stream, contexts, sink, layers, progress):
    """Run ``block`` over every batch of ``stream`` into ``sink``; return what it closes to.

    The next batch is launched before the previous one's outputs are copied back, so
    reading the data overlaps with MXNet's asynchronous compute.
    """
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
        # A batch launched before the failure would otherwise raise its own error later,
        # inside an unrelated call (MXNet reports asynchronous failures on the next wait).
        try:
            mx.nd.waitall()
        except mx.base.MXNetError:
            pass
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
