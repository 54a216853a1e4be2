"""Low-precision feature blocks: int8 (MXNet quantization) and bf16 (MXNet AMP) on CPU.

Both paths exist in MXNet 1.9.1 for x86 CPUs only, through MKLDNN (oneDNN).
:func:`check_precision_supported` refuses, up front, the machines where a path cannot run or
would fall back to oneDNN's slow reference kernels:

* int8 has JIT kernels from SSE4.1 up and was faster than float32 at every instruction-set
  level measured (resnet18 features, batch 32, 2 threads, oneDNN capped with
  ``DNNL_MAX_CPU_ISA``; ``benchmarks/extraction.py --isa-table``): 2.5x with SSE4.1, 2.3x
  with AVX, 1.8x with AVX2, 1.6x with AVX-512 without VNNI, 3x with AVX-VNNI or
  AVX512-VNNI. So it is refused only for GPU contexts, an MXNet without MKLDNN, a non-x86
  CPU or an x86 CPU without SSE4.1.
* bf16 has no kernels below AVX-512 and emulated ones (0.25x float32) on AVX-512 without
  BF16, so it is refused without AVX512-BF16 or AMX-BF16.

The int8 block is MXNet's ``quantize_net_v2`` applied to the cut network (the same
``SymbolBlock`` the float32 path runs, with the requested layers grouped, pooled and
flattened), calibrated on a few batches of data. The bf16 block is the same graph converted
by ``mxnet.contrib.amp`` and then fused by the MKLDNN subgraph backend. Both return float32
outputs, so the engine handles them like the float32 block.
"""
import contextlib
import hashlib
import logging
import os
import platform
import warnings

import mxnet as mx
import numpy as np
from mxnet.contrib import amp
from mxnet.contrib.quantization import quantize_net_v2

from .._validation import brief_list, check_positive_int
from ..data import BatchStream, as_batch_stream
from ..exceptions import HardwareNotSupportedError, UnsupportedOperatorError
from ._checks import check_input_shape

logger = logging.getLogger(__name__)

__all__ = ["check_precision_supported", "calibration_batches", "calibration_fingerprint",
           "low_precision_block", "missing_instructions", "read_cpu_flags",
           "REQUIRED_INSTRUCTIONS", "X86_MACHINES", "CALIB_MODE"]

#: CPU flags (as ``/proc/cpuinfo`` spells them) any one of which makes a precision faster
#: than float32. int8: oneDNN's int8 kernels start at SSE4.1, and int8 measured faster than
#: float32 at every level from there (VNNI makes it faster still, see the module docstring).
REQUIRED_INSTRUCTIONS = {
    "int8": ("SSE4.1", ("sse4_1",)),
    "bf16": ("AVX512-BF16 or AMX-BF16", ("avx512_bf16", "amx_bf16")),
}

#: ``platform.machine()`` values of the x86 CPUs MXNet's MKLDNN int8 and bf16 paths run on.
X86_MACHINES = ("x86_64", "amd64", "i386", "i686", "x86")

#: Calibration of the int8 thresholds. 'naive' takes each quantized layer's min/max over the
#: calibration batches; 'entropy' picks thresholds minimising a KL divergence, clipping
#: outliers. For features (as opposed to class scores) the outliers matter: on resnet18
#: (3 layers, 64 calibration images) naive gave a cosine similarity to float32 of 0.9923 /
#: 0.9947 / 0.9955 against entropy's 0.9912 / 0.9938 / 0.9950, and calibrated in 4.1 s
#: against 9.1 s (entropy histograms every layer output in numpy). So: naive.
CALIB_MODE = "naive"


# ---------------------------------------------------------------------- hardware checks
def read_cpu_flags(path="/proc/cpuinfo"):
    """Return the CPU's instruction-set flags, as the kernel lists them in ``/proc/cpuinfo``.

    Parameters
    ----------
    path : str, default='/proc/cpuinfo'
        The file to read (tests point it elsewhere).

    Returns
    -------
    frozenset of str
        Lower-case flags such as ``'avx512_vnni'``; empty where the file is missing or has
        no ``flags`` line (non-Linux systems).
    """
    return frozenset((_cpuinfo_field("flags", path) or "").lower().split())


def _cpu_model(path="/proc/cpuinfo"):
    return _cpuinfo_field("model name", path) or "unknown CPU"


def _cpuinfo_field(name, path):
    """The value of the first ``name : value`` line of ``path`` (None if there is none)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, sep, value = line.partition(":")
                if sep and key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return None


def missing_instructions(precision, flags):
    """Say which instruction set ``precision`` needs that ``flags`` lacks (None if none).

    Parameters
    ----------
    precision : {'int8', 'bf16'}
    flags : set of str
        CPU flags, as :func:`read_cpu_flags` returns them.

    Returns
    -------
    str or None
        A description of the missing instruction set, naming the flags that would do.

    Examples
    --------
    >>> missing_instructions('int8', {'sse4_1', 'avx2'}) is None
    True
    >>> missing_instructions('bf16', {'sse4_1', 'avx2', 'avx512_vnni'})
    "AVX512-BF16 or AMX-BF16 (one of the CPU flags 'avx512_bf16', 'amx_bf16')"
    """
    label, accepted = REQUIRED_INSTRUCTIONS[precision]
    if set(accepted) & set(flags):
        return None
    return f"{label} (one of the CPU flags {brief_list(accepted)})"


def check_precision_supported(precision, contexts, flags=None, machine=None):
    """Raise unless ``precision`` runs on ``contexts`` of this machine, faster than float32.

    ``'int8'`` and ``'bf16'`` need MXNet built with MKLDNN, CPU contexts only (MXNet 1.9.1
    has no GPU path for them) and an x86 CPU. On top of that int8 needs SSE4.1, where
    oneDNN's int8 kernels start (every x86-64 CPU since about 2008 has it): int8 then ran
    resnet18 features 1.6-3.2x faster than float32 at every instruction-set level measured,
    with or without VNNI (the table is in the extraction guide). bf16 needs AVX512-BF16
    (or AMX-BF16): below AVX-512 oneDNN has no bf16 kernels, and on AVX-512 without BF16 it
    emulates them at a quarter of float32's speed. Checked before any data is read.

    Parameters
    ----------
    precision : {'float32', 'int8', 'bf16'}
    contexts : list of mx.Context
        Resolved contexts, see :func:`repurpose.context.resolve_contexts`.
    flags : set of str, default=None
        CPU flags to judge; None reads this machine's (:func:`read_cpu_flags`). An empty
        set (no ``/proc/cpuinfo``, as on macOS or Windows) is not held against int8.
    machine : str, default=None
        The CPU architecture, as ``platform.machine()`` gives it; None reads this
        machine's.

    Raises
    ------
    HardwareNotSupportedError
        For a GPU context, an MXNet without MKLDNN, a CPU that is not x86, or one lacking
        the instructions; the message names what is missing and that
        ``precision='float32'`` works everywhere.

    Examples
    --------
    >>> check_precision_supported('float32', [mx.gpu(0)])  # float32 runs everywhere
    >>> check_precision_supported('int8', [mx.cpu()], flags={'sse4_1', 'avx2'},
    ...                           machine='x86_64')  # no VNNI needed
    >>> check_precision_supported('bf16', [mx.cpu()], flags={'avx2'},
    ...                           machine='x86_64')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    repurpose.exceptions.HardwareNotSupportedError: precision='bf16' needs a CPU with ...
    """
    if precision == "float32":
        return
    others = [c for c in contexts if c.device_type != "cpu"]
    if others:
        raise HardwareNotSupportedError(
            f"precision={precision!r} runs on CPUs only (MXNet 1.9.1 has no GPU kernels for "
            f"it), but ctx holds {brief_list([str(c) for c in others])}. Use ctx='cpu', or "
            f"precision='float32', which works on every device.")
    if not mx.runtime.Features().is_enabled("MKLDNN"):
        raise HardwareNotSupportedError(
            f"precision={precision!r} needs MXNet built with MKLDNN (oneDNN), and this MXNet "
            f"{mx.__version__} is not. Install the pip wheel 'mxnet' (MKLDNN is on in it), or "
            f"use precision='float32', which works everywhere.")
    if machine is None:
        machine = platform.machine()
    if machine.lower() not in X86_MACHINES:
        raise HardwareNotSupportedError(
            f"precision={precision!r} runs on x86 CPUs only (MXNet 1.9.1's MKLDNN "
            f"quantization and bf16 kernels), and this CPU is {machine!r}. Use "
            f"precision='float32', which works everywhere.")
    if flags is None:
        flags = read_cpu_flags()
    if precision == "int8" and not flags:
        return  # no flag list to judge (not Linux); every x86-64 CPU of this century runs it
    missing = missing_instructions(precision, flags)
    if missing is not None:
        slower = ("oneDNN has no int8 kernels for it, only slow reference code"
                  if precision == "int8" else
                  "oneDNN has no bf16 kernels for it or emulates them, slower than "
                  "float32")
        raise HardwareNotSupportedError(
            f"precision={precision!r} needs a CPU with {missing}; this CPU "
            f"({_cpu_model()}) has none of them: {slower}. Use precision='float32', which "
            f"works everywhere.")


# ---------------------------------------------------------------------- calibration data
def calibration_batches(data, batch_size, n_calib_batches, source):
    """Read the first ``n_calib_batches`` batches of ``data`` for int8 calibration.

    The batches are validated like the data to extract: numeric, finite, of the model's
    input shape.

    Parameters
    ----------
    data : BatchStream, ndarray, mx.nd.NDArray, mx.io.DataIter, Dataset or DataLoader
        Calibration samples; see :func:`repurpose.data.as_batch_stream`. A
        :class:`~repurpose.data.BatchStream` (the engine passes the data's own stream when
        no ``calib_data`` is given) is read from its start and left to restart.
    batch_size : int
        Samples per batch for arrays and datasets.
    n_calib_batches : int
        How many batches to read (fewer if the data ends first).
    source : SourceModel
        The model, whose input shape the samples must have.

    Returns
    -------
    list of ndarray
        float32 batches, in order.

    Raises
    ------
    InvalidParameterError
        If ``n_calib_batches`` is not a positive integer.
    DataError
        For empty, non-finite or wrongly shaped calibration data.
    """
    n_calib_batches = check_positive_int(n_calib_batches, "n_calib_batches")
    stream = data if isinstance(data, BatchStream) else as_batch_stream(
        data, batch_size, name="calib_data")
    stream.peek()
    check_input_shape(source, stream.sample_shape, stream.description)
    batches = []
    for _, batch in stream:  # restarts the source; the caller's next pass restarts it again
        batches.append(batch)
        if len(batches) == n_calib_batches:
            break
    logger.debug("Read %d calibration batch(es), %d samples, from %s", len(batches),
                 sum(len(b) for b in batches), stream.description)
    return batches


def calibration_fingerprint(batches):
    """Return a short digest of calibration batches (part of the int8 block's cache key).

    Examples
    --------
    >>> a = [np.zeros((2, 3), np.float32)]
    >>> calibration_fingerprint(a) == calibration_fingerprint([x.copy() for x in a])
    True
    >>> calibration_fingerprint(a) == calibration_fingerprint([np.ones((2, 3), np.float32)])
    False
    """
    if batches is None:
        return None
    digest = hashlib.sha256()  # hardware-accelerated on x86: ~1.7 GB/s, twice blake2b
    for batch in batches:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        digest.update(repr(batch.shape).encode())
        digest.update(batch.data)
    return digest.hexdigest()[:32]


# ---------------------------------------------------------------------- the blocks
@contextlib.contextmanager
def _quiet_mxnet():
    """Silence MXNet's chatter while converting: Python warnings and C++ log lines.

    ``quantize_net`` builds a ``SymbolBlock`` that warns about the input's unknown dtype,
    and binding the calibration executor prints "Subgraph backend MKLDNN is activated"
    unless ``MXNET_SUBGRAPH_VERBOSE=0`` (a user's own setting is kept).
    """
    previous = os.environ.get("MXNET_SUBGRAPH_VERBOSE")
    if previous is None:
        os.environ["MXNET_SUBGRAPH_VERBOSE"] = "0"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Cannot decide type",
                                    category=UserWarning)
            yield
    finally:
        if previous is None:
            os.environ.pop("MXNET_SUBGRAPH_VERBOSE", None)


def _first_line(err):
    return str(err).strip().splitlines()[0].rstrip(".")


def _calibration_iter(source, batches):
    """The calibration batches as one ``mx.io.DataIter`` of fixed-size batches.

    ``quantize_net`` binds one executor at the first batch's shape, so a ragged last batch
    is padded (with samples from the start) by ``NDArrayIter``.
    """
    samples = np.concatenate(batches, axis=0)
    batch_size = min(len(batches[0]), len(samples))
    return mx.io.NDArrayIter(data={source.input_name: samples}, batch_size=batch_size,
                             last_batch_handle="pad")


def _log_thresholds(block):
    """Log (DEBUG) the calibrated ranges that MXNet stored in the quantized graph."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    symbol = block._cached_graph[1] if block._cached_graph else None
    if symbol is None:
        return
    for name, attrs in symbol.attr_dict().items():
        if "min_calib_range" in attrs:
            logger.debug("int8 range of %s: [%s, %s]", name, attrs["min_calib_range"],
                         attrs.get("max_calib_range"))


def _int8_block(source, layers, pool, contexts, calib_batches):
    if not calib_batches:
        raise ValueError("int8 needs calibration batches; see calibration_batches().")
    n_calib = sum(len(b) for b in calib_batches)
    logger.info("Quantizing %d layer(s) to int8 (%s calibration on %d samples)", len(layers),
                CALIB_MODE, n_calib)
    net = source.to_gluon(ctx=mx.cpu(), layers=layers, pool=pool, frozen=False)
    # quantize_net_v2 is what quantize_net (deprecated, with a warning) calls, with
    # tensor-wise granularity. logger=None on purpose: given a logger, MXNet sets
    # MXNET_QUANTIZATION_VERBOSE=1 in os.environ for good, and its C++ pass then prints
    # every quantized node to stderr for the rest of the process. The ranges it would log
    # are read back from the graph and logged at DEBUG by _log_thresholds instead.
    try:
        with _quiet_mxnet():
            block = quantize_net_v2(
                net, quantized_dtype="auto", quantize_mode="full",
                quantize_granularity="tensor-wise",
                calib_data=_calibration_iter(source, calib_batches), calib_mode=CALIB_MODE,
                num_calib_examples=None, ctx=mx.cpu(), logger=None)
    except mx.base.MXNetError as err:
        raise UnsupportedOperatorError(
            f"MXNet could not quantize layers {brief_list(layers)} to int8: "
            f"{_first_line(err)}. Use precision='float32' for this model.") from err
    if contexts != [mx.cpu()]:
        block.collect_params().reset_ctx(contexts)
    block.hybridize(static_alloc=True, static_shape=True)
    _log_thresholds(block)
    return block


def _bf16_block(source, layers, pool, contexts):
    logger.info("Converting %d layer(s) to bf16 (MXNet AMP + MKLDNN fusion)", len(layers))
    symbol = source.feature_symbol(layers, pool)
    names = set(symbol.list_inputs())
    arg_params = {k: v for k, v in source.arg_params.items() if k in names}
    aux_params = {k: v for k, v in source.aux_params.items() if k in names}
    try:
        with _quiet_mxnet():
            # cast_optional_params stores convolution / dense weights in bf16 once, rather
            # than casting them on every forward (about 1.3x faster on resnet18).
            symbol, arg_params, aux_params = amp.convert_model(
                symbol, arg_params, aux_params, target_dtype="bfloat16",
                cast_optional_params=True)
            # Fuse conv + batch norm + activation (+ sum) into oneDNN kernels; AMP's casts
            # stay in place, and the outputs keep AMP's final cast to float32.
            symbol = symbol.get_backend_symbol("MKLDNN")
            block = mx.gluon.SymbolBlock(symbol, [mx.sym.var(source.input_name)])
    except mx.base.MXNetError as err:
        raise UnsupportedOperatorError(
            f"MXNet could not convert layers {brief_list(layers)} to bf16: "
            f"{_first_line(err)}. Use precision='float32' for this model.") from err
    values = dict(arg_params)
    values.update(aux_params)
    for name, param in block.collect_params().items():
        if param.dtype != values[name].dtype:
            param.cast(values[name].dtype)
    block.collect_params().load_dict(values, ctx=contexts, ignore_extra=True)
    block.hybridize(static_alloc=True, static_shape=True)
    return block


def low_precision_block(source, layers, pool, contexts, precision, calib_batches=None):
    """Build the hybridized int8 or bf16 block computing ``layers`` of ``source``.

    The block has the float32 block's inputs and outputs: one float32 (N, D) output per
    layer, pooled by ``pool`` and flattened, in the order of ``layers``. The engine caches
    it with the model (``source.cached``, see :func:`~repurpose.features.feature_block`), so
    calibration runs once per model, layers and calibration data.

    Parameters
    ----------
    source : SourceModel
    layers : list of str
    pool : {None, 'avg', 'max'}
    contexts : list of mx.Context
        CPU contexts (checked by :func:`check_precision_supported`).
    precision : {'int8', 'bf16'}
    calib_batches : list of ndarray, default=None
        Calibration batches for ``'int8'`` (:func:`calibration_batches`); ignored for bf16.

    Returns
    -------
    mx.gluon.SymbolBlock
        Hybridized (``static_alloc``, ``static_shape``), parameters on every context.

    Raises
    ------
    UnsupportedOperatorError
        If MXNet cannot quantize or convert the graph (the message gives MXNet's reason).

    Notes
    -----
    int8 uses ``mxnet.contrib.quantization.quantize_net_v2`` with ``quantized_dtype='auto'``
    (uint8 after ReLUs, int8 elsewhere), all operators MKLDNN can quantize, tensor-wise
    weights, and 'naive' (min/max) calibration (see :data:`CALIB_MODE`). Values outside the
    calibration range are clipped, so calibrate on data like the data to extract; pass the
    same ``calib_data`` when extracting training and test features so both use one
    quantized network.
    """
    if precision == "int8":
        return _int8_block(source, layers, pool, contexts, calib_batches)
    if precision == "bf16":
        return _bf16_block(source, layers, pool, contexts)
    raise ValueError(f"low_precision_block handles 'int8' and 'bf16', not {precision!r}.")
