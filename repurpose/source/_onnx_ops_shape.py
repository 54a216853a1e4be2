"""ONNX translations, shapes and layout: Reshape, Flatten, (Un)Squeeze, Transpose, Concat,
Split, Slice, Gather, Expand, Tile, Pad and Resize, each keeping the batch axis free (see
:mod:`._onnx_convert`). Registered through :mod:`._onnx_ops`."""
import mxnet as mx
import numpy as np

from ._onnx_convert import ConversionError, Value, translation
from ._onnx_ops_helpers import (_name, _axis, _ints, _check_not_batch, _attr_or_input, _reshape,
                               _data_index, _squash_batch_const, _expand_rank)

sym = mx.sym
_internal = mx.sym._internal


# ---------------------------------------------------------------------- shapes and layout
def _resolve_target(shape, target, allowzero):
    """An ONNX reshape target with its 0 and -1 entries made concrete for ``shape``."""
    target = [int(t) for t in target]
    if not allowzero:
        target = [shape[i] if t == 0 else t for i, t in enumerate(target)]
    if -1 in target:
        known = int(np.prod([t for t in target if t != -1], dtype=np.int64))
        total = int(np.prod(shape, dtype=np.int64))
        if known == 0 or total % known:
            raise ConversionError(f"it cannot reshape {tuple(shape)} to {tuple(target)}")
        target[target.index(-1)] = total // known
    if int(np.prod(target, dtype=np.int64)) != int(np.prod(shape, dtype=np.int64)):
        raise ConversionError(f"it reshapes {tuple(shape)} to {tuple(target)}, which has "
                              "another number of elements")
    return target


@translation("Reshape")
def reshape(attrs, inputs, cv):
    """Reshape to a known target; the batch axis stays free (see _reshape)."""
    if cv.opset >= 5:
        target = cv.require_const(1, "shape")
    else:
        target = attrs["shape"]
    shape = cv.shape(0)
    target = _resolve_target(shape, _ints(target), int(attrs.get("allowzero", 0)))
    return _reshape(cv, 0, inputs[0], target, _name(cv))


@translation("Flatten")
def flatten(attrs, inputs, cv):
    """Flatten to 2-D at ``axis`` (default 1)."""
    shape = cv.shape(0)
    axis = _axis(attrs.get("axis", 1), len(shape) + 1)
    batch = cv.batch(0)
    if axis == 1 and batch is not None and batch[0] == 0 and batch[1] == 1 and \
            shape[0] == cv.batch0:
        return sym.flatten(inputs[0], name=_name(cv))
    target = [int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis:],
                                                                       dtype=np.int64))]
    return _reshape(cv, 0, inputs[0], target, _name(cv))


@translation("Squeeze", "Unsqueeze")
def squeeze(attrs, inputs, cv):
    """Remove or insert axes of size 1 (axes as attribute, or as input since opset 13)."""
    shape = list(cv.shape(0))
    axes = _attr_or_input(cv, attrs, "axes", 1, 13)
    if cv.node.op_type == "Squeeze":
        if axes is None:
            batch = cv.batch(0)
            axes = [i for i, s in enumerate(shape) if s == 1 and (batch is None or
                                                                   i != batch[0])]
        axes = {_axis(a, len(shape), "axes") for a in axes}
        target = [s for i, s in enumerate(shape) if i not in axes]
    else:
        rank = len(shape) + len(axes)
        axes = sorted(_axis(a, rank, "axes") for a in axes)
        target = list(shape)
        for a in axes:
            target.insert(a, 1)
    result = _reshape(cv, 0, inputs[0], target, _name(cv))
    return result


@translation("Transpose")
def transpose(attrs, inputs, cv):
    """Permute axes (reversed when no permutation is given)."""
    ndim = len(cv.shape(0))
    perm = tuple(int(p) for p in attrs.get("perm", range(ndim - 1, -1, -1)))
    if perm == tuple(range(ndim)):
        return [cv.value(0)]
    result = Value(sym=sym.transpose(inputs[0], axes=perm, name=_name(cv)))
    result.inner = cv.value(0).inner
    if ndim >= 2 and perm == tuple(range(ndim - 2)) + (ndim - 1, ndim - 2):
        result.swapped = inputs[0]
    return result


def _broadcast_to_batch(cv, x, position):
    """Broadcast axis ``position`` (size 1) of ``x`` to the batch size of the input."""
    return sym.broadcast_like(x, cv.data, lhs_axes=(position,), rhs_axes=(0,))


@translation("Concat")
def concat(attrs, inputs, cv):
    """Join along an axis; constants spanning the batch axis are broadcast to the batch."""
    data_index = _data_index(cv, len(inputs))
    ndim = len(cv.shape(data_index))
    axis = _axis(attrs["axis"], ndim)
    _check_not_batch(cv, data_index, (axis,), "concatenates")
    batch = cv.batch(data_index)
    pieces = []
    for i, x in enumerate(inputs):
        const = cv.const(i)
        if const is None:
            if cv.batch(i) != batch:
                raise ConversionError("its inputs have their batch axes in different places")
            pieces.append(x)
            continue
        if const.size == 0:
            continue
        if batch is not None and cv.batch_multiple(data_index) != 1:
            raise ConversionError("it joins constants to a tensor whose batch axis is merged "
                                  "with other axes")
        if batch is not None:
            squashed, position = _squash_batch_const(cv, const, data_index, ndim)
            if squashed.shape[batch[0]] != 1:
                squashed = squashed[(slice(None),) * batch[0] + (slice(0, 1),)]
            piece = cv.new_param(f"const{i}", squashed)
            pieces.append(_broadcast_to_batch(cv, piece, batch[0]))
        else:
            pieces.append(cv.const_symbol(cv.node.input[i], const))
    if len(pieces) == 1:
        return sym.identity(pieces[0], name=_name(cv))
    result = Value(sym=sym.concat(*pieces, dim=axis, name=_name(cv)))
    result.inner = cv.value(data_index).inner
    return result


@translation("Split")
def split(attrs, inputs, cv):
    """Split along an axis into given sizes (attribute, input since 13, or ``num_outputs``
    since 18)."""
    shape = cv.shape(0)
    axis = _axis(attrs.get("axis", 0), len(shape))
    _check_not_batch(cv, 0, (axis,), "splits")
    n_outputs = len(cv.node.output)
    sizes = _attr_or_input(cv, attrs, "split", 1, 13)
    if not sizes:
        count = int(attrs.get("num_outputs", n_outputs))
        step = -(-shape[axis] // count)
        sizes = [min(step, shape[axis] - i * step) for i in range(count)]
    if len(set(sizes)) == 1 and sum(sizes) == shape[axis]:
        parts = sym.split(inputs[0], num_outputs=len(sizes), axis=axis, name=_name(cv))
        return [Value(sym=parts[i]) for i in range(len(sizes))]
    outputs, begin = [], 0
    for k, size in enumerate(sizes):
        outputs.append(Value(sym=sym.slice_axis(inputs[0], axis=axis, begin=begin,
                                                end=begin + size,
                                                name=_name(cv) if k == 0 else None)))
        begin += size
    return outputs


@translation("Slice")
def slice_(attrs, inputs, cv):
    """Slices with starts, ends, axes and steps (inputs since opset 10)."""
    shape = cv.shape(0)
    ndim = len(shape)
    if cv.opset >= 10:
        starts = _ints(cv.require_const(1, "starts"))
        ends = _ints(cv.require_const(2, "ends"))
        axes = cv.require_const(3, "axes") if len(inputs) > 3 else None
        steps = cv.require_const(4, "steps") if len(inputs) > 4 else None
        axes = list(range(len(starts))) if axes is None else _ints(axes)
        steps = [1] * len(starts) if steps is None else _ints(steps)
    else:
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes = list(attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    batch = cv.batch(0)
    begin, end, step = [None] * ndim, [None] * ndim, [None] * ndim
    changed = False
    for start, stop, axis, stride in zip(starts, ends, axes, steps):
        axis = _axis(axis, ndim, "axes")
        lo, hi, stride = slice(start, stop, stride).indices(shape[axis])
        if (lo, hi, stride) == (0, shape[axis], 1):
            continue
        if batch is not None and axis == batch[0]:
            raise ConversionError("it slices the batch axis, so its result depends on the "
                                  "batch size")
        begin[axis], step[axis] = lo, stride
        end[axis] = hi if hi >= 0 else None
        changed = True
    if not changed:
        return [cv.value(0)]
    touched = [a for a in range(ndim) if begin[a] is not None]
    if len(touched) == 1 and step[touched[0]] == 1:
        a = touched[0]
        return sym.slice_axis(inputs[0], axis=a, begin=begin[a], end=end[a], name=_name(cv))
    return sym.slice(inputs[0], begin=tuple(begin), end=tuple(end), step=tuple(step),
                     name=_name(cv))


@translation("Gather")
def gather(attrs, inputs, cv):
    """Take entries along an axis: a scalar index drops the axis, index arrays replace it."""
    indices = cv.const(1)
    if cv.const(0) is not None:
        table = cv.const_symbol(cv.node.input[0], cv.const(0))
        axis = _axis(attrs.get("axis", 0), cv.const(0).ndim)
        return sym.take(table, inputs[1], axis=axis, name=_name(cv))
    shape = cv.shape(0)
    axis = _axis(attrs.get("axis", 0), len(shape))
    if indices is None:
        raise ConversionError("its indices are computed from the data")
    flat = np.where(indices < 0, indices + shape[axis], indices).astype(np.int64)
    batch = cv.batch(0)
    if batch is not None and batch[0] == axis:
        return _gather_per_sample(cv, inputs[0], shape, batch, flat)
    if indices.ndim == 0:
        i = int(flat)
        picked = sym.slice_axis(inputs[0], axis=axis, begin=i, end=i + 1)
        return sym.squeeze(picked, axis=axis, name=_name(cv))
    if flat.ndim == 1 and flat.size and np.array_equal(flat, np.arange(flat[0], flat[0] +
                                                                         flat.size)):
        return sym.slice_axis(inputs[0], axis=axis, begin=int(flat[0]),
                              end=int(flat[0]) + flat.size, name=_name(cv))
    index_symbol = cv.new_param("indices", flat.astype(np.float32))
    return sym.take(inputs[0], index_symbol, axis=axis, name=_name(cv))


def _gather_per_sample(cv, x, shape, batch, indices):
    """A gather along the batch axis that still keeps samples apart.

    ``torch.onnx.export(..., dynamo=True)`` writes ``as_strided`` as a flatten of the whole
    batch followed by a Gather of precomputed flat indices. When the indices of sample n are
    those of sample 0 shifted by n times the sample's size, the gather is per sample: it
    becomes a gather inside each sample.
    """
    axis, inner = batch
    size = cv.batch0 * inner
    if axis != 0 or len(shape) != 1 or shape[0] != size or indices.ndim < 1 \
            or indices.shape[0] != cv.batch0:
        raise ConversionError(
            f"it gathers along the batch axis ({axis}), so its result would mix samples; "
            "only per-sample computations can be imported")
    first = indices[0]
    shifts = indices - np.arange(cv.batch0).reshape((-1,) + (1,) * (indices.ndim - 1)) * inner
    if not (np.all(shifts == first) and first.min() >= 0 and first.max() < inner):
        raise ConversionError(
            "it gathers along the batch axis with indices that mix samples")
    samples = sym.reshape(x, shape=(-1, inner))
    picked = sym.take(samples, cv.new_param("indices", first.reshape(-1).astype(np.float32)),
                      axis=1)
    return sym.reshape(picked, shape=(-1,) + tuple(first.shape), name=_name(cv))


@translation("Expand")
def expand(attrs, inputs, cv):
    """Broadcast to a shape; the batch axis keeps the data's batch size."""
    shape = list(cv.shape(0))
    target = _ints(cv.require_const(1, "shape"))
    rank = max(len(shape), len(target))
    padded = [1] * (rank - len(shape)) + shape
    target = [1] * (rank - len(target)) + target
    out = [max(s, t) if 1 in (s, t) else s for s, t in zip(padded, target)]
    x = inputs[0]
    batch = cv.batch(0)
    x = _expand_rank(x, rank - len(shape))
    if out == padded:
        if rank == len(shape):
            return [cv.value(0)]
        return sym.identity(x, name=_name(cv))
    free = [0 if s == o else o for s, o in zip(padded, out)]
    if batch is not None:
        free[batch[0] + rank - len(shape)] = 0
    return sym.broadcast_to(x, shape=tuple(free), name=_name(cv))


@translation("Tile")
def tile(attrs, inputs, cv):
    """Repeat the tensor along axes (not along the batch axis)."""
    repeats = _ints(cv.require_const(1, "repeats"))
    batch = cv.batch(0)
    if batch is not None and repeats[batch[0]] != 1:
        raise ConversionError("it repeats along the batch axis")
    return sym.tile(inputs[0], reps=tuple(repeats), name=_name(cv))


@translation("Pad")
def pad(attrs, inputs, cv):
    """Constant, edge or reflect padding (pads and value as inputs since opset 11)."""
    shape = cv.shape(0)
    ndim = len(shape)
    mode = attrs.get("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if cv.opset >= 11:
        pads = _ints(cv.require_const(1, "pads"))
        value = cv.const(2) if len(inputs) > 2 and inputs[2] is not None else None
        value = 0.0 if value is None or value.size == 0 else float(value.reshape(-1)[0])
        axes = _ints(cv.require_const(3, "axes")) if len(inputs) > 3 and inputs[3] is not None \
            else list(range(ndim))
    else:
        pads = [int(p) for p in attrs.get("pads", attrs.get("paddings", ()))]
        value = float(attrs.get("value", 0.0))
        axes = list(range(ndim))
    axes = [_axis(a, ndim, "axes") for a in axes]
    begins, ends = [0] * ndim, [0] * ndim
    for k, axis in enumerate(axes):
        begins[axis], ends[axis] = pads[k], pads[k + len(axes)]
    if not any(begins) and not any(ends):
        return [cv.value(0)]
    batch = cv.batch(0)
    if batch is not None and (begins[batch[0]] or ends[batch[0]]):
        raise ConversionError("it pads the batch axis")
    if any(p < 0 for p in begins + ends):
        raise ConversionError("negative pads (cropping) are not supported")
    mxnet_mode = {"constant": "constant", "edge": "edge", "reflect": "reflect"}.get(mode)
    if mxnet_mode is None:
        raise ConversionError(f"padding mode {mode!r} is not supported")
    if ndim in (4, 5) and not any(begins[:2]) and not any(ends[:2]):
        width = tuple(v for b, e in zip(begins, ends) for v in (b, e))
        return sym.pad(inputs[0], mode=mxnet_mode, pad_width=width, constant_value=value,
                       name=_name(cv))
    if mxnet_mode != "constant":
        raise ConversionError(f"{mode} padding of axes other than the spatial axes of a 4-D "
                              "or 5-D tensor is not supported")
    x = inputs[0]
    for axis in range(ndim):
        pieces = []
        for size in (begins[axis], ends[axis]):
            if size:
                edge = sym.slice_axis(x, axis=axis, begin=0, end=1)
                block = sym.repeat(_internal._mul_scalar(edge, scalar=0.0), repeats=size, axis=axis)
                pieces.append(_internal._plus_scalar(block, scalar=value) if value else block)
            else:
                pieces.append(None)
        if pieces[0] is not None or pieces[1] is not None:
            parts = [p for p in (pieces[0], x, pieces[1]) if p is not None]
            x = sym.concat(*parts, dim=axis)
    return sym.identity(x, name=_name(cv))


@translation("Resize", "Upsample")
def resize(attrs, inputs, cv):
    """Resizing of the spatial axes of 4-D tensors: nearest-neighbour by integer factors,
    bilinear with ``align_corners`` (any size) or half-pixel coordinates (upsampling)."""
    shape = cv.shape(0)
    mode = attrs.get("mode", "nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if cv.node.op_type == "Upsample":
        scales = cv.require_const(1, "scales") if cv.opset >= 9 else attrs["scales"]
        sizes = None
    else:
        scales = cv.require_const(2, "scales") if len(inputs) > 2 and inputs[2] is not None \
            else None
        sizes = cv.require_const(3, "sizes") if len(inputs) > 3 and inputs[3] is not None \
            else None
    if sizes is not None and np.asarray(sizes).size:
        factors = [s / d for s, d in zip(_ints(sizes), shape)]
    elif scales is not None and np.asarray(scales).size:
        factors = [float(s) for s in np.asarray(scales).reshape(-1)]
    else:
        raise ConversionError("it has neither scales nor sizes")
    if len(shape) != 4 or factors[:2] != [1.0, 1.0]:
        raise ConversionError("only resizing of the spatial axes of 4-D tensors is supported")
    if mode == "linear" and cv.node.op_type == "Resize":
        return _bilinear(attrs, inputs, cv, shape, factors, sizes)
    if mode != "nearest" or factors[2] != factors[3] or factors[2] != int(factors[2]) \
            or factors[2] < 1:
        raise ConversionError(f"only nearest-neighbour upsampling by an integer factor is "
                              f"supported, got mode {mode!r} with factors {factors[2:]}")
    if cv.node.op_type == "Resize" and cv.opset >= 11:
        coordinates = attrs.get("coordinate_transformation_mode", "half_pixel")
        coordinates = coordinates.decode() if isinstance(coordinates, bytes) else coordinates
        rounding = attrs.get("nearest_mode", "round_prefer_floor")
        rounding = rounding.decode() if isinstance(rounding, bytes) else rounding
        repeats = (coordinates == "asymmetric" and rounding == "floor") or (
            coordinates in ("half_pixel", "pytorch_half_pixel")
            and rounding in ("round_prefer_floor", "round_prefer_ceil"))
        if not repeats:
            raise ConversionError(
                f"nearest-neighbour resizing with {coordinates!r} coordinates and "
                f"{rounding!r} rounding does not repeat pixels; only asymmetric/floor "
                "(PyTorch's 'nearest') and half_pixel/round ('nearest-exact') are supported")
    if factors[2] == 1:
        return [cv.value(0)]
    # With those coordinate rules an integer upsampling factor repeats each pixel: MXNet's
    # nearest UpSampling.
    return sym.UpSampling(inputs[0], scale=int(factors[2]), sample_type="nearest",
                          num_args=1, name=_name(cv))


def _bilinear(attrs, inputs, cv, shape, factors, sizes):
    """Bilinear resizing as MXNet's BilinearResize2D, where its coordinates match ONNX's."""
    coordinates = attrs.get("coordinate_transformation_mode", "half_pixel")
    coordinates = coordinates.decode() if isinstance(coordinates, bytes) else coordinates
    if int(attrs.get("antialias", 0)):
        raise ConversionError("antialiased resizing is not supported")
    if sizes is not None and np.asarray(sizes).size:
        height, width = _ints(sizes)[2:]
    else:
        height, width = int(shape[2] * factors[2]), int(shape[3] * factors[3])
    upsampling = height >= shape[2] and width >= shape[3]
    if coordinates == "align_corners":
        align = True
    elif coordinates in ("half_pixel", "pytorch_half_pixel") and upsampling:
        align = False
    else:
        raise ConversionError(
            f"bilinear resizing with {coordinates!r} coordinates is supported only as "
            "align_corners, or as half_pixel upsampling")
    return sym.contrib.BilinearResize2D(inputs[0], height=height, width=width,
                                        align_corners=align, name=_name(cv))
