"""Shared helpers of the ONNX operator translations (:mod:`._onnx_ops`): node names, axes,
operands that moved from attributes to inputs, batch-preserving reshapes and constants aligned
with the batch axis. Each takes the :class:`~._onnx_convert.Converter` ``cv`` of the node being
translated."""
import mxnet as mx
import numpy as np

from ._onnx_convert import ConversionError, Value

sym = mx.sym


def _name(cv, suffix=None):
    return cv.node_name if suffix is None else f"{cv.node_name}/{suffix}"


def _axis(axis, ndim, what="axis"):
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ConversionError(f"its {what} {axis} is out of range for a tensor of rank {ndim}")
    return axis + ndim if axis < 0 else axis


def _ints(value):
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _check_not_batch(cv, index, axes, what):
    batch = cv.batch(index)
    if batch is not None and batch[0] in axes:
        raise ConversionError(
            f"it {what} along the batch axis ({batch[0]}), so its result would mix samples; "
            "only per-sample computations can be imported")


def _attr_or_input(cv, attrs, name, index, opset_since):
    """An operand that moved from attribute ``name`` to input ``index`` at ``opset_since``."""
    if cv.opset >= opset_since:
        value = cv.require_const(index, name)
        return None if value is None else _ints(value)
    value = attrs.get(name)
    return None if value is None else [int(v) for v in value]


def _reshape(cv, index_or_value, x, target, name=None):
    """Reshape computed ``x`` to ``target`` (resolved, at batch0) keeping the batch free."""
    value = cv.value(index_or_value) if isinstance(index_or_value, int) else index_or_value
    shape = cv.shape(value)
    target = [int(t) for t in target]
    if list(shape) == target:
        return value
    batch = cv.batch(value)
    if batch is None:
        return Value(sym=sym.reshape(x, shape=tuple(target), name=name))
    axis, inner = batch
    outer = shape[axis] // (cv.batch0 * inner)
    stride = inner * int(np.prod(shape[axis + 1:], dtype=np.int64))
    blocks = int(np.prod(shape[:axis], dtype=np.int64)) * outer
    for j, size in enumerate(target):
        after = int(np.prod(target[j + 1:], dtype=np.int64))
        before = int(np.prod(target[:j], dtype=np.int64))
        if after == 0 or before == 0 or stride % after or blocks % before:
            continue
        new_inner, new_outer = stride // after, blocks // before
        if new_outer * cv.batch0 * new_inner == size:
            free = list(target)
            free[j] = -1
            result = Value(sym=sym.reshape(x, shape=tuple(free), name=name))
            result.inner = new_inner
            return result
    raise ConversionError(
        f"it reshapes {tuple(shape)} (batch axis {axis}) to {tuple(target)}, which moves the "
        f"samples of a batch of {cv.batch0} into other axes; export the model with a dynamic "
        "batch axis (torch.onnx.export(..., dynamic_axes={'input': {0: 'batch'}}) or "
        "dynamic_shapes) so that the reshape keeps samples apart")


def _data_index(cv, n_inputs):
    for i in range(n_inputs):
        value = cv.value(i)
        if value is not None and not value.is_const:
            return i
    return None


def _squash_batch_const(cv, array, like_index, out_ndim):
    """A constant operand aligned (from the right) with a computed one of rank ``out_ndim``:
    if it spans the batch axis with the batch size of the export, it must be the same for
    every sample; return it with that axis reduced to 1 (it then broadcasts)."""
    batch = cv.batch(like_index)
    if batch is None:
        return array, None
    axis, _ = batch
    offset = out_ndim - array.ndim
    position = axis - offset
    if position < 0 or array.shape[position] == 1:
        return array, (position if position >= 0 else None)
    size = cv.shape(like_index)[axis]
    if array.shape[position] != size or cv.batch_multiple(like_index) != 1:
        return array, None
    first = np.take(array, [0], axis=position)
    if not np.array_equal(np.broadcast_to(first, array.shape), array):
        raise ConversionError(
            f"a constant operand holds different values for each of the {size} samples of "
            "the batch the model was exported with; export it with a dynamic batch axis")
    return first, position


def _expand_rank(x, n_new):
    for _ in range(n_new):
        x = sym.expand_dims(x, axis=0)
    return x
