"""ONNX translations, network layers: convolution, normalisation, pooling and the
reductions over axes (ReduceMean & co., ArgMax/ArgMin). Registered through :mod:`._onnx_ops`."""
import mxnet as mx
import numpy as np

from ._onnx_convert import ConversionError, translation
from ._onnx_ops_helpers import _attr_or_input, _axis, _check_not_batch, _name

sym = mx.sym


# ---------------------------------------------------------------------- convolution
def _spatial_pads(cv, attrs, in_spatial, kernel, strides, dilations):
    """ONNX pads as (begin..., end...), with ``auto_pad`` resolved for the static shape."""
    n = len(kernel)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for size, k, s, d in zip(in_spatial, kernel, strides, dilations):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            small, big = total // 2, total - total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else big)
            ends.append(big if auto_pad == "SAME_UPPER" else small)
        return begins + ends
    if auto_pad == "VALID":
        return [0] * (2 * n)
    pads = [int(p) for p in attrs.get("pads", [0] * (2 * n))]
    return pads


def _explicit_pad(x, ndim, begins, ends, value=0.0):
    """Pad the spatial axes of a 4-D/5-D tensor (MXNet's pad) with ``value``."""
    width = (0, 0, 0, 0)
    for b, e in zip(begins, ends):
        width += (int(b), int(e))
    if ndim == 3:  # (N, C, L): MXNet pads 4-D/5-D tensors only
        x = sym.expand_dims(x, axis=2)
        padded = sym.pad(x, mode="constant", pad_width=(0, 0, 0, 0, 0, 0) + width[4:],
                         constant_value=value)
        return sym.squeeze(padded, axis=2)
    return sym.pad(x, mode="constant", pad_width=width, constant_value=value)


@translation("Conv")
def conv(attrs, inputs, cv):
    """N-d convolution; asymmetric or automatic padding becomes an explicit pad first."""
    x_shape = cv.shape(0)
    w_shape = cv.shape(1)
    kernel = tuple(int(k) for k in attrs.get("kernel_shape", w_shape[2:]))
    n = len(kernel)
    strides = tuple(int(s) for s in attrs.get("strides", (1,) * n))
    dilations = tuple(int(d) for d in attrs.get("dilations", (1,) * n))
    group = int(attrs.get("group", 1))
    pads = _spatial_pads(cv, attrs, x_shape[2:], kernel, strides, dilations)
    begins, ends = pads[:n], pads[n:]
    x = inputs[0]
    if begins != ends:
        x = _explicit_pad(x, len(x_shape), begins, ends)
        begins = [0] * n
    weight = inputs[1] if cv.const(1) is None else cv.const_symbol(cv.node.input[1],
                                                                    cv.const(1))
    bias = None
    if len(inputs) > 2 and inputs[2] is not None:
        bias = inputs[2] if cv.const(2) is None else cv.const_symbol(cv.node.input[2],
                                                                      cv.const(2))
    return sym.Convolution(x, weight, bias, kernel=kernel, stride=strides, dilate=dilations,
                           pad=tuple(begins), num_filter=int(w_shape[0]), num_group=group,
                           no_bias=bias is None, name=_name(cv))


@translation("ConvTranspose")
def conv_transpose(attrs, inputs, cv):
    """Transposed convolution with symmetric pads (output_padding as MXNet's ``adj``)."""
    w_shape = cv.shape(1)
    kernel = tuple(int(k) for k in attrs.get("kernel_shape", w_shape[2:]))
    n = len(kernel)
    if "output_shape" in attrs or attrs.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
        raise ConversionError("output_shape and auto_pad are not supported; export with "
                              "explicit pads")
    pads = [int(p) for p in attrs.get("pads", [0] * (2 * n))]
    if pads[:n] != pads[n:]:
        raise ConversionError(f"asymmetric pads {pads} are not supported")
    group = int(attrs.get("group", 1))
    weight = cv.const_symbol(cv.node.input[1], cv.const(1)) if cv.const(1) is not None \
        else inputs[1]
    bias = None
    if len(inputs) > 2 and inputs[2] is not None:
        bias = cv.const_symbol(cv.node.input[2], cv.const(2)) if cv.const(2) is not None \
            else inputs[2]
    return sym.Deconvolution(
        inputs[0], weight, bias, kernel=kernel,
        stride=tuple(int(s) for s in attrs.get("strides", (1,) * n)),
        dilate=tuple(int(d) for d in attrs.get("dilations", (1,) * n)),
        pad=tuple(pads[:n]), adj=tuple(int(a) for a in attrs.get("output_padding", (0,) * n)),
        num_filter=int(w_shape[1]) * group, num_group=group, no_bias=bias is None,
        name=_name(cv))


# ---------------------------------------------------------------------- normalisation
@translation("BatchNormalization")
def batch_norm(attrs, inputs, cv):
    """Inference batch normalisation with its own parameters (exporters share identical
    statistics between layers; MXNet needs each layer's moving statistics separately)."""
    if int(attrs.get("training_mode", 0)) != 0:
        raise ConversionError("training_mode=1 computes batch statistics; export the model "
                              "in inference mode (model.eval() in PyTorch)")
    params = []
    for index, name in ((1, "gamma"), (2, "beta"), (3, "running_mean"), (4, "running_var")):
        value = cv.require_const(index, name)
        params.append(cv.new_param(name, value.reshape(-1), aux=index >= 3))
    return sym.BatchNorm(inputs[0], *params, eps=float(attrs.get("epsilon", 1e-5)),
                         momentum=float(attrs.get("momentum", 0.9)), fix_gamma=False,
                         use_global_stats=False, axis=1, name=_name(cv))


@translation("InstanceNormalization")
def instance_norm(attrs, inputs, cv):
    """Per-sample, per-channel normalisation."""
    scale = cv.new_param("gamma", cv.require_const(1, "scale").reshape(-1))
    bias = cv.new_param("beta", cv.require_const(2, "bias").reshape(-1))
    return sym.InstanceNorm(inputs[0], scale, bias, eps=float(attrs.get("epsilon", 1e-5)),
                            name=_name(cv))


@translation("LayerNormalization")
def layer_norm(attrs, inputs, cv):
    """Normalisation over the axes from ``axis`` on (MXNet's LayerNorm normalises one axis:
    several trailing axes are merged into one first)."""
    shape = cv.shape(0)
    axis = _axis(attrs.get("axis", -1), len(shape))
    _check_not_batch(cv, 0, tuple(range(axis, len(shape))), "normalises")
    eps = float(attrs.get("epsilon", 1e-5))
    width = int(np.prod(shape[axis:], dtype=np.int64))
    scale = cv.require_const(1, "scale")
    bias = cv.const(2) if len(inputs) > 2 and inputs[2] is not None else None
    if len(inputs) > 2 and inputs[2] is not None and bias is None:
        raise ConversionError("its bias (input 2) is computed from the data")
    gamma = cv.new_param("gamma", np.broadcast_to(scale, shape[axis:]).reshape(width))
    beta = cv.new_param("beta", np.zeros(width, np.float32) if bias is None
                        else np.broadcast_to(bias, shape[axis:]).reshape(width))
    if axis == len(shape) - 1:
        return sym.LayerNorm(inputs[0], gamma, beta, axis=-1, eps=eps, name=_name(cv))
    flat = sym.reshape(inputs[0], shape=(0,) * axis + (-1,))
    normed = sym.LayerNorm(flat, gamma, beta, axis=-1, eps=eps)
    return sym.reshape_like(normed, inputs[0], name=_name(cv))


@translation("GroupNormalization")
def group_norm(attrs, inputs, cv):
    """Group normalisation: per-group scale and bias (opset 18) or per-channel (21)."""
    shape = cv.shape(0)
    groups = int(attrs["num_groups"])
    eps = float(attrs.get("epsilon", 1e-5))
    scale, bias = cv.require_const(1, "scale").reshape(-1), cv.require_const(2, "bias").reshape(-1)
    if scale.size == groups and cv.opset < 21:
        return sym.GroupNorm(inputs[0], cv.new_param("gamma", scale),
                             cv.new_param("beta", bias), num_groups=groups, eps=eps,
                             name=_name(cv))
    normed = sym.GroupNorm(inputs[0], cv.new_param("ones", np.ones(groups, np.float32)),
                           cv.new_param("zeros", np.zeros(groups, np.float32)),
                           num_groups=groups, eps=eps)
    channel = (1, shape[1]) + (1,) * (len(shape) - 2)
    scaled = sym.broadcast_mul(normed, cv.new_param("gamma", scale.reshape(channel)))
    return sym.broadcast_add(scaled, cv.new_param("beta", bias.reshape(channel)),
                             name=_name(cv))


@translation("LpNormalization")
def lp_normalization(attrs, inputs, cv):
    """x / ||x||_p along one axis."""
    shape = cv.shape(0)
    axis = _axis(attrs.get("axis", -1), len(shape))
    norm = sym.norm(inputs[0], ord=int(attrs.get("p", 2)), axis=axis, keepdims=True)
    return sym.broadcast_div(inputs[0], norm, name=_name(cv))


# ---------------------------------------------------------------------- pooling
def _pool(attrs, inputs, cv, pool_type):
    shape = cv.shape(0)
    n = len(shape) - 2
    kernel = tuple(int(k) for k in attrs["kernel_shape"])
    strides = tuple(int(s) for s in attrs.get("strides", (1,) * n))
    dilations = tuple(int(d) for d in attrs.get("dilations", (1,) * n))
    if any(d != 1 for d in dilations):
        raise ConversionError("dilated pooling is not supported by MXNet's Pooling")
    pads = _spatial_pads(cv, attrs, shape[2:], kernel, strides, dilations)
    begins, ends = pads[:n], pads[n:]
    ceil_mode = int(attrs.get("ceil_mode", 0))
    count_include_pad = bool(int(attrs.get("count_include_pad", 0)))
    # The output size ONNX (and PyTorch) define, with ceil_mode's rule that the last window
    # must start inside the input or its left padding.
    expected = []
    for size, k, s, b, e in zip(shape[2:], kernel, strides, begins, ends):
        span = size + b + e - k
        out = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= size + b:
            out -= 1
        expected.append(out)
    x = inputs[0]
    if begins != ends:
        if pool_type == "avg" and not count_include_pad:
            raise ConversionError("average pooling with asymmetric pads that excludes the "
                                  "padding from the count is not supported")
        fill = float(np.finfo(np.float32).min) if pool_type == "max" else 0.0
        x = _explicit_pad(x, len(shape), begins, ends, fill)
        begins = ends = [0] * n
        if pool_type == "avg":
            count_include_pad = True
    convention = "valid"
    if ceil_mode:
        floor_sizes = [(size + 2 * b - k) // s + 1 for size, k, s, b in
                       zip(shape[2:], kernel, strides, begins)]
        convention = "valid" if floor_sizes == expected else "full"
    result = sym.Pooling(x, kernel=kernel, stride=strides, pad=tuple(begins),
                         pool_type=pool_type, pooling_convention=convention,
                         count_include_pad=count_include_pad, name=_name(cv))
    return result


@translation("MaxPool")
def max_pool(attrs, inputs, cv):
    """Max pooling (``ceil_mode``, ``auto_pad``, asymmetric pads)."""
    if len(cv.node.output) > 1 and cv.node.output[1]:
        raise ConversionError("the indices output of MaxPool is not supported")
    return _pool(attrs, inputs, cv, "max")


@translation("AveragePool")
def average_pool(attrs, inputs, cv):
    """Average pooling (``count_include_pad``, ``ceil_mode``, ``auto_pad``)."""
    return _pool(attrs, inputs, cv, "avg")


@translation("GlobalAveragePool", "GlobalMaxPool")
def global_pool(attrs, inputs, cv):
    """Pooling over all spatial axes, keeping them as size 1."""
    n = len(cv.shape(0)) - 2
    pool_type = "avg" if cv.node.op_type == "GlobalAveragePool" else "max"
    return sym.Pooling(inputs[0], kernel=(1,) * n, global_pool=True, pool_type=pool_type,
                       name=_name(cv))


# ---------------------------------------------------------------------- reductions
_REDUCE = {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "max", "ReduceMin": "min",
           "ReduceProd": "prod"}
_REDUCE_AXES_AS_INPUT = {"ReduceSum": 13}  # the others since opset 18


@translation(*_REDUCE, "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
             "ReduceLogSumExp")
def reduce(attrs, inputs, cv):
    """Reductions over the given axes (all when none are given), ``keepdims`` default 1."""
    op = cv.node.op_type
    ndim = len(cv.shape(0))
    axes = _attr_or_input(cv, attrs, "axes", 1, _REDUCE_AXES_AS_INPUT.get(op, 18))
    keepdims = bool(int(attrs.get("keepdims", 1)))
    if not axes:
        if int(attrs.get("noop_with_empty_axes", 0)):
            return [cv.value(0)]
        axes = list(range(ndim))
    axes = tuple(sorted(_axis(a, ndim, "axes") for a in axes))
    _check_not_batch(cv, 0, axes, "reduces")
    x = inputs[0]
    name = _name(cv)
    if op in _REDUCE:
        return getattr(sym, _REDUCE[op])(x, axis=axes, keepdims=keepdims, name=name)
    if op in ("ReduceL1", "ReduceL2"):
        order = 1 if op == "ReduceL1" else 2
        if len(axes) <= 2:
            return sym.norm(x, ord=order, axis=axes, keepdims=keepdims, name=name)
        x = sym.abs(x) if order == 1 else sym.square(x)
        total = sym.sum(x, axis=axes, keepdims=keepdims, name=name if order == 1 else None)
        return total if order == 1 else sym.sqrt(total, name=name)
    if op == "ReduceSumSquare":
        return sym.sum(sym.square(x), axis=axes, keepdims=keepdims, name=name)
    if op == "ReduceLogSum":
        return sym.log(sym.sum(x, axis=axes, keepdims=keepdims), name=name)
    peak = sym.max(x, axis=axes, keepdims=True)
    total = sym.sum(sym.exp(sym.broadcast_sub(x, peak)), axis=axes, keepdims=keepdims)
    peak = peak if keepdims else sym.max(x, axis=axes, keepdims=False)
    return sym.broadcast_add(sym.log(total), peak, name=name)


@translation("ArgMax", "ArgMin")
def arg_reduce(attrs, inputs, cv):
    """Index of the largest (smallest) value along an axis (float indices)."""
    ndim = len(cv.shape(0))
    axis = _axis(attrs.get("axis", 0), ndim)
    _check_not_batch(cv, 0, (axis,), "reduces")
    if int(attrs.get("select_last_index", 0)):
        raise ConversionError("select_last_index=1 is not supported")
    op = sym.argmax if cv.node.op_type == "ArgMax" else sym.argmin
    return op(inputs[0], axis=axis, keepdims=bool(int(attrs.get("keepdims", 1))),
              name=_name(cv))
