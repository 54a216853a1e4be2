"""Translations of ONNX operators into MXNet symbols, registered in front of MXNet's own table.

Each function takes ``(attrs, inputs, cv)`` like the entries of MXNet's
``_import_helper._convert_map``: the node's attributes, its inputs as MXNet symbols (None for
an absent optional input; known values arrive as parameter variables) and the
:class:`~._onnx_convert.Converter`, which knows the inputs' values, shapes and batch axes
(``cv.const(i)``, ``cv.shape(i)``, ``cv.batch(i)``). It returns the output symbol, a list
of them, or an input's :class:`~._onnx_convert.Value` itself for operators that compute
nothing at inference (Identity, Dropout).

Why translations of our own, beside MXNet's table:

* operators MXNet's importer lacks (Erf, Gelu, LayerNormalization, HardSwish, Einsum, Where,
  Expand, Mod, Resize, GroupNormalization, ...);
* newer operator versions whose axes, pads, splits or scales come as inputs (opset 10-18),
  which MXNet's translations read from the older attributes;
* correctness where MXNet's translations differ from the ONNX definitions: reductions
  default to ``keepdims=1``; MatMul broadcasts its batch axes (``linalg_gemm2`` does not);
  pooling honours ``ceil_mode``, ``count_include_pad`` and ``auto_pad``; Softmax below opset
  13 flattens from ``axis``; Gather with a scalar index drops the axis; Reshape keeps the
  batch size free (see :mod:`._onnx_convert`);
* speed: a MatMul or Gemm with a constant weight becomes ``FullyConnected`` (one fused
  GEMM that MKLDNN runs well), an arithmetic op with a scalar constant becomes a scalar op
  without a parameter;
* names: every operator is named after its ONNX node, so the layer table reads like the
  source model.
"""
import math

import mxnet as mx
import numpy as np

from ._onnx_convert import ConversionError, Value, translation

sym = mx.sym
_internal = mx.sym._internal


# ---------------------------------------------------------------------- small helpers
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


#: Same-shape sums as MXNet's elemwise operators, which its MKLDNN backend runs as oneDNN
#: sums and fuses into a preceding convolution (a residual sum). Not products: MXNet's
#: elemwise_mul measures slower than broadcast_mul (21 against 12 ms on 6.4M floats here).
_ELEMWISE = {"broadcast_add": "elemwise_add", "broadcast_sub": "elemwise_sub"}


def _binary(cv, inputs, op, scalar_op=None, rscalar_op=None):
    """Broadcasting arithmetic with numpy rules; scalar constants become scalar operators."""
    a_value, b_value = cv.value(0), cv.value(1)
    a_const, b_const = cv.const(0), cv.const(1)
    if a_const is None and b_const is None:
        same = _ELEMWISE.get(op)
        if same and cv.batch_shapes(a_value) == cv.batch_shapes(b_value):
            # Same shapes at every batch size: MXNet's elementwise operator, which its MKLDNN
            # backend fuses into a preceding convolution (a residual sum), unlike broadcast_*.
            return getattr(sym, same)(inputs[0], inputs[1], name=_name(cv))
        return getattr(sym, op)(inputs[0], inputs[1], name=_name(cv))
    data_index = 0 if a_const is None else 1
    const = b_const if data_index == 0 else a_const
    out_ndim = max(len(cv.shape(data_index)), const.ndim)
    if const.size == 1 and const.ndim <= len(cv.shape(data_index)) and scalar_op is not None \
            and np.issubdtype(const.dtype, np.floating):
        scalar = float(const.reshape(-1)[0])
        x = inputs[data_index]
        if data_index == 0:
            return getattr(_internal, scalar_op)(x, scalar=scalar, name=_name(cv))
        return getattr(_internal, rscalar_op or scalar_op)(x, scalar=scalar, name=_name(cv))
    linear = cv.value(data_index).linear
    if op == "broadcast_add" and linear is not None and const.size == linear[1].shape[0] \
            and const.shape[-1:] == (const.size,) and cv.n_readers(data_index) == 1:
        # MatMul + Add as PyTorch writes a linear layer on 3-D input: one FullyConnected
        # with its bias (the MatMul's own operator is then left unused and dropped).
        return _fully_connected(cv, linear[0], linear[1], const.reshape(-1), _name(cv))
    squashed, _ = _squash_batch_const(cv, const, data_index, out_ndim)
    names = cv.node.input
    operand = cv.const_symbol(names[1 - data_index], squashed) if squashed is const else \
        cv.new_param("operand", squashed)
    a, b = (inputs[0], operand) if data_index == 0 else (operand, inputs[1])
    return getattr(sym, op)(a, b, name=_name(cv))


# ---------------------------------------------------------------------- no-ops
@translation("Identity", "Dropout", "Optional", "OptionalGetElement")
def identity(attrs, inputs, cv):
    """Operators that compute nothing at inference: the output is the input. (Dropout's
    mask output is left undefined; a node reading it fails, naming the missing tensor.)"""
    return [cv.value(0)]


@translation("Cast", "CastLike")
def cast(attrs, inputs, cv):
    """Casts between float types are no-ops on float32 data; other casts use MXNet's Cast."""
    from onnx import helper, TensorProto

    if cv.node.op_type == "CastLike":
        target = cv.const(1).dtype if cv.const(1) is not None else np.float32
    else:
        target = helper.tensor_dtype_to_np_dtype(int(attrs.get("to", TensorProto.FLOAT)))
    if np.issubdtype(np.dtype(target), np.floating):
        return [cv.value(0)]
    return sym.Cast(inputs[0], dtype=np.dtype(target).name, name=_name(cv))


# ---------------------------------------------------------------------- elementwise
#: Activations as MXNet's Activation operator, which its MKLDNN backend fuses into a
#: preceding convolution or FullyConnected (the standalone relu/sigmoid/tanh are not fused).
_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}

_UNARY = {
    "Erf": "erf", "Exp": "exp",
    "Log": "log", "Sqrt": "sqrt", "Reciprocal": "reciprocal", "Neg": "negative",
    "Abs": "abs", "Floor": "floor", "Ceil": "ceil", "Sin": "sin", "Cos": "cos", "Tan": "tan",
    "Asin": "arcsin", "Acos": "arccos", "Atan": "arctan", "Sinh": "sinh", "Cosh": "cosh",
    "Asinh": "arcsinh", "Acosh": "arccosh", "Atanh": "arctanh", "Softsign": "softsign",
    "Not": "logical_not", "Round": "round", "Sign": "sign",
}


@translation(*_UNARY)
def unary(attrs, inputs, cv):
    """Elementwise functions MXNet has under another name."""
    return getattr(sym, _UNARY[cv.node.op_type])(inputs[0], name=_name(cv))


@translation(*_ACTIVATIONS)
def activation(attrs, inputs, cv):
    """ReLU, sigmoid and tanh as MXNet's (fusable) Activation operator."""
    return sym.Activation(inputs[0], act_type=_ACTIVATIONS[cv.node.op_type], name=_name(cv))


_BINARY = {
    "Add": ("broadcast_add", "_plus_scalar", None),
    "Sub": ("broadcast_sub", "_minus_scalar", "_rminus_scalar"),
    "Mul": ("broadcast_mul", "_mul_scalar", None),
    "Div": ("broadcast_div", "_div_scalar", "_rdiv_scalar"),
    "Equal": ("broadcast_equal", "_equal_scalar", None),
    "Less": ("broadcast_lesser", "_lesser_scalar", "_greater_scalar"),
    "Greater": ("broadcast_greater", "_greater_scalar", "_lesser_scalar"),
    "LessOrEqual": ("broadcast_lesser_equal", "_lesser_equal_scalar", "_greater_equal_scalar"),
    "GreaterOrEqual": ("broadcast_greater_equal", "_greater_equal_scalar",
                       "_lesser_equal_scalar"),
    "And": ("broadcast_logical_and", None, None),
    "Or": ("broadcast_logical_or", None, None),
    "Xor": ("broadcast_logical_xor", None, None),
}


@translation(*_BINARY)
def binary(attrs, inputs, cv):
    """Broadcasting arithmetic and comparisons (numpy broadcasting, as ONNX defines it)."""
    if attrs.get("broadcast") == 1 and "axis" in attrs:
        raise ConversionError("legacy (opset < 7) broadcasting with an axis is not supported")
    op, scalar_op, rscalar_op = _BINARY[cv.node.op_type]
    return _binary(cv, inputs, op, scalar_op, rscalar_op)


@translation("Mod")
def mod(attrs, inputs, cv):
    """Remainder: ``fmod=1`` keeps the dividend's sign (C fmod), else the divisor's."""
    if int(attrs.get("fmod", 0)) == 0:
        return _binary(cv, inputs, "broadcast_mod", "_mod_scalar", "_rmod_scalar")
    a, b = inputs
    quotient = sym.trunc(sym.broadcast_div(a, b))
    return sym.broadcast_sub(a, sym.broadcast_mul(quotient, b), name=_name(cv))


@translation("Pow")
def power(attrs, inputs, cv):
    """Powers; constant exponents 2, 0.5 and 1 become square, sqrt and no-op."""
    exponent = cv.const(1)
    if exponent is not None and exponent.size == 1 and cv.const(0) is None:
        e = float(exponent.reshape(-1)[0])
        if e == 1.0:
            return [cv.value(0)]
        if e == 2.0:
            return sym.square(inputs[0], name=_name(cv))
        if e == 0.5:
            return sym.sqrt(inputs[0], name=_name(cv))
        return _internal._power_scalar(inputs[0], scalar=e, name=_name(cv))
    return _binary(cv, inputs, "broadcast_power", "_power_scalar", "_rpower_scalar")


@translation("Sum", "Mean", "Max", "Min")
def variadic(attrs, inputs, cv):
    """Elementwise sum, mean, maximum or minimum of any number of inputs."""
    op = {"Sum": "broadcast_add", "Mean": "broadcast_add", "Max": "broadcast_maximum",
          "Min": "broadcast_minimum"}[cv.node.op_type]
    symbols = []
    for i, x in enumerate(inputs):
        const = cv.const(i)
        if const is not None:
            x = cv.const_symbol(cv.node.input[i], const)
        symbols.append(x)
    if len(symbols) == 1:
        return [cv.value(0)]
    result = symbols[0]
    for k, x in enumerate(symbols[1:]):
        last = k == len(symbols) - 2 and cv.node.op_type != "Mean"
        result = getattr(sym, op)(result, x, name=_name(cv) if last else None)
    if cv.node.op_type == "Mean":
        result = _internal._div_scalar(result, scalar=float(len(symbols)), name=_name(cv))
    return result


@translation("Where")
def where(attrs, inputs, cv):
    """``condition ? x : y`` with numpy broadcasting of the three operands."""
    shapes = [cv.shape(i) for i in range(3)]
    out_shape = np.broadcast_shapes(*shapes)
    data_index = _data_index(cv, 3)
    operands = []
    for i in range(3):
        const = cv.const(i)
        if const is not None:
            const, _ = _squash_batch_const(cv, const.astype(np.float32), data_index,
                                           len(out_shape))
            operands.append(cv.new_param(f"operand{i}", const))
        else:
            operands.append(inputs[i])
    reference = None
    for x in operands:
        zero = sym.zeros_like(x)
        reference = zero if reference is None else sym.broadcast_add(reference, zero)
    full = [sym.broadcast_add(x, reference) for x in operands]
    return sym.where(full[0], full[1], full[2], name=_name(cv))


@translation("Clip")
def clip(attrs, inputs, cv):
    """Clip to [min, max] (attributes before opset 11, optional inputs since)."""
    if cv.opset >= 11:
        low, high = cv.require_const(1, "min"), cv.require_const(2, "max")
        low = -np.inf if low is None else float(np.asarray(low).reshape(-1)[0])
        high = np.inf if high is None else float(np.asarray(high).reshape(-1)[0])
    else:
        low, high = float(attrs.get("min", -np.inf)), float(attrs.get("max", np.inf))
    if low == 0.0 and high == np.inf:
        return sym.Activation(inputs[0], act_type="relu", name=_name(cv))
    big = float(np.finfo(np.float32).max)
    return sym.clip(inputs[0], a_min=max(low, -big), a_max=min(high, big), name=_name(cv))


# ---------------------------------------------------------------------- activations
@translation("LeakyRelu")
def leaky_relu(attrs, inputs, cv):
    """LeakyReLU with ONNX's default slope 0.01."""
    return sym.LeakyReLU(inputs[0], act_type="leaky", slope=float(attrs.get("alpha", 0.01)),
                         name=_name(cv))


@translation("Elu")
def elu(attrs, inputs, cv):
    """ELU (alpha default 1)."""
    return sym.LeakyReLU(inputs[0], act_type="elu", slope=float(attrs.get("alpha", 1.0)),
                         name=_name(cv))


@translation("Selu")
def selu(attrs, inputs, cv):
    """SELU; MXNet's has the standard constants, other ones are composed."""
    alpha = float(attrs.get("alpha", 1.67326319217681884765625))
    gamma = float(attrs.get("gamma", 1.05070102214813232421875))
    if abs(alpha - 1.6732632) < 1e-6 and abs(gamma - 1.0507010) < 1e-6:
        return sym.LeakyReLU(inputs[0], act_type="selu", name=_name(cv))
    x = inputs[0]
    negative = _internal._mul_scalar(sym.expm1(sym.minimum(x, 0.0)), scalar=alpha)
    return _internal._mul_scalar(sym.relu(x) + negative, scalar=gamma, name=_name(cv))


@translation("PRelu")
def prelu(attrs, inputs, cv):
    """PReLU: a per-channel slope becomes MXNet's prelu, any other shape is composed."""
    slope = cv.const(1)
    shape = cv.shape(0)
    if slope is not None and len(shape) >= 2 and slope.size == shape[1] and shape[1] > 1:
        channel_shape = (shape[1],) + (1,) * (len(shape) - 2)
        aligned = (1,) * (len(channel_shape) - slope.ndim) + slope.shape
        if slope.ndim <= len(channel_shape) and aligned == channel_shape:
            gamma = cv.new_param("slope", slope.reshape(-1))
            return sym.LeakyReLU(inputs[0], gamma, act_type="prelu", name=_name(cv))
    x = inputs[0]
    a = cv.const_symbol(cv.node.input[1], slope) if slope is not None else inputs[1]
    return sym.broadcast_add(sym.relu(x), sym.broadcast_mul(a, sym.minimum(x, 0.0)),
                             name=_name(cv))


@translation("HardSigmoid")
def hard_sigmoid(attrs, inputs, cv):
    """max(0, min(1, alpha * x + beta)) with ONNX's defaults alpha 0.2, beta 0.5."""
    return sym.hard_sigmoid(inputs[0], alpha=float(attrs.get("alpha", 0.2)),
                            beta=float(attrs.get("beta", 0.5)), name=_name(cv))


@translation("HardSwish")
def hard_swish(attrs, inputs, cv):
    """x * max(0, min(1, x / 6 + 1 / 2))."""
    x = inputs[0]
    return sym.broadcast_mul(x, sym.hard_sigmoid(x, alpha=1.0 / 6.0, beta=0.5), name=_name(cv))


@translation("Gelu")
def gelu(attrs, inputs, cv):
    """GELU (opset 20): MXNet's erf-based gelu, or the tanh approximation composed."""
    approximate = attrs.get("approximate", "none")
    if approximate in ("none", b"none"):
        return sym.LeakyReLU(inputs[0], act_type="gelu", name=_name(cv))
    x = inputs[0]
    inner = _internal._mul_scalar(x + _internal._mul_scalar(x * x * x, scalar=0.044715),
                            scalar=math.sqrt(2.0 / math.pi))
    return _internal._mul_scalar(x * _internal._plus_scalar(sym.tanh(inner), scalar=1.0), scalar=0.5,
                           name=_name(cv))


@translation("Softplus")
def softplus(attrs, inputs, cv):
    """log(1 + exp(x))."""
    return sym.Activation(inputs[0], act_type="softrelu", name=_name(cv))


@translation("Mish")
def mish(attrs, inputs, cv):
    """x * tanh(softplus(x))."""
    x = inputs[0]
    return sym.broadcast_mul(x, sym.Activation(sym.Activation(x, act_type="softrelu"),
                                               act_type="tanh"), name=_name(cv))


@translation("Softmax", "LogSoftmax")
def softmax(attrs, inputs, cv):
    """Softmax over one axis (opset 13+), or over everything from ``axis`` on (before)."""
    op = sym.softmax if cv.node.op_type == "Softmax" else sym.log_softmax
    shape = cv.shape(0)
    ndim = len(shape)
    if cv.opset >= 13:
        axis = _axis(attrs.get("axis", -1), ndim)
        _check_not_batch(cv, 0, (axis,), "normalises")
        return op(inputs[0], axis=axis, name=_name(cv))
    axis = _axis(attrs.get("axis", 1), ndim)
    _check_not_batch(cv, 0, tuple(range(axis, ndim)), "normalises")
    if axis == ndim - 1:
        return op(inputs[0], axis=-1, name=_name(cv))
    flat = sym.reshape(inputs[0], shape=(0,) * axis + (-1,))
    return sym.reshape_like(op(flat, axis=-1), inputs[0], name=_name(cv))


# ---------------------------------------------------------------------- linear algebra
def _fully_connected(cv, x, weight, bias, name):
    """``x @ weight.T + bias`` over the last axis of ``x`` (weight of shape (units, in))."""
    w = cv.new_param("weight", weight)
    b = None if bias is None else cv.new_param("bias", np.asarray(bias).reshape(-1))
    return sym.FullyConnected(x, w, b, num_hidden=int(weight.shape[0]), no_bias=b is None,
                              flatten=False, name=name)


@translation("Gemm")
def gemm(attrs, inputs, cv):
    """alpha * A' @ B' + beta * C; a constant B becomes FullyConnected with C as its bias."""
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    trans_a, trans_b = int(attrs.get("transA", 0)), int(attrs.get("transB", 0))
    if cv.const(0) is not None:
        raise ConversionError("its first operand is a constant and its second is computed")
    a = sym.transpose(inputs[0], axes=(1, 0)) if trans_a else inputs[0]
    b, c = cv.const(1), cv.const(2)
    has_c = len(inputs) > 2 and inputs[2] is not None
    if b is not None:
        weight = (b if trans_b else b.T) * np.float32(alpha)
        units = weight.shape[0]
        if has_c and c is not None and c.size in (1, units) and (c.ndim < 2 or c.shape[0] == 1):
            bias = np.broadcast_to(c.reshape(-1), (units,)) * np.float32(beta)
            return _fully_connected(cv, a, weight, bias, _name(cv))
        product = _fully_connected(cv, a, weight, None, None if has_c else _name(cv))
    else:
        product = sym.linalg.gemm2(a, inputs[1], transpose_b=bool(trans_b), alpha=alpha,
                                   name=None if has_c else _name(cv))
    if not has_c:
        return product
    if c is not None:
        return sym.broadcast_add(product, cv.new_param("c", c * np.float32(beta)),
                                 name=_name(cv))
    return sym.broadcast_add(product, _internal._mul_scalar(inputs[2], scalar=beta), name=_name(cv))


def _expand_rank(x, n_new):
    for _ in range(n_new):
        x = sym.expand_dims(x, axis=0)
    return x


def _batched_matmul(cv, a, b, a_shape, b_shape, name, transpose_b=False):
    """``a @ b`` of computed tensors with numpy's broadcasting of the leading axes.

    ``b_shape`` is the shape of the product's right operand; with ``transpose_b`` the symbol
    ``b`` holds it with its last two axes swapped. Batched products use ``linalg_gemm2``
    (30% faster than ``batch_dot`` on attention-sized products here).
    """
    lead = tuple(np.broadcast_shapes(a_shape[:-2], b_shape[:-2]))
    operands = []
    for x, shape in ((a, a_shape), (b, b_shape)):
        x = _expand_rank(x, len(lead) - len(shape[:-2]))
        padded = (1,) * (len(lead) - len(shape[:-2])) + tuple(shape[:-2])
        operands.append((x, padded))
    (a, a_lead), (b, b_lead) = operands
    for axis, (sa, sb) in enumerate(zip(a_lead, b_lead)):
        if sa == 1 and sb != 1:
            a = sym.broadcast_like(a, b, lhs_axes=(axis,), rhs_axes=(axis,))
        elif sb == 1 and sa != 1:
            b = sym.broadcast_like(b, a, lhs_axes=(axis,), rhs_axes=(axis,))
    if not lead:
        return sym.dot(a, b, transpose_b=transpose_b, name=name)
    return sym.linalg.gemm2(a, b, transpose_b=transpose_b, name=name)


@translation("MatMul")
def matmul(attrs, inputs, cv):
    """numpy ``matmul``: FullyConnected for a constant matrix, batched products otherwise."""
    a_shape, b_shape = cv.shape(0), cv.shape(1)
    a_const, b_const = cv.const(0), cv.const(1)
    if len(a_shape) < 2 or len(b_shape) < 2:
        raise ConversionError("MatMul of vectors (rank 1) is not supported")
    if b_const is not None and b_const.ndim == 2:
        result = Value(sym=_fully_connected(cv, inputs[0], b_const.T, None, _name(cv)))
        result.linear = (inputs[0], b_const.T)
        return result
    if a_const is not None and a_const.ndim == 2:
        # A @ B = (B^T @ A^T)^T: a FullyConnected over B's second-to-last axis.
        swapped = sym.swapaxes(inputs[1], dim1=len(b_shape) - 2, dim2=len(b_shape) - 1)
        out = _fully_connected(cv, swapped, a_const, None, None)
        return sym.swapaxes(out, dim1=len(b_shape) - 2, dim2=len(b_shape) - 1, name=_name(cv))
    a = inputs[0] if a_const is None else cv.const_symbol(cv.node.input[0], a_const)
    b = inputs[1] if b_const is None else cv.const_symbol(cv.node.input[1], b_const)
    for index, shape in ((0, a_shape), (1, b_shape)):
        batch = cv.batch(index)
        if batch is not None and batch[0] == len(shape) - 1 - index:
            raise ConversionError("it contracts over the batch axis")
    swapped = cv.value(1).swapped if b_const is None else None
    if swapped is not None and cv.n_readers(1) == 1:
        # q @ k^T with k^T a transpose of the last two axes: the product reads k transposed
        # (the transpose operator is then left unused and dropped).
        return _batched_matmul(cv, a, swapped, a_shape, b_shape, _name(cv), transpose_b=True)
    return _batched_matmul(cv, a, b, a_shape, b_shape, _name(cv))


def _expand_ellipsis(sa, sb, out, rank_a, rank_b):
    """Replace ``...`` by letters the equation does not use (the same axes in each operand,
    as many as the operand's rank leaves; numpy's broadcasting of unequal counts is not
    supported)."""
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in sa + sb + out]
    counts = {rank_a - (len(sa) - 3) if "..." in sa else 0,
              rank_b - (len(sb) - 3) if "..." in sb else 0} - {0}
    if len(counts) > 1:
        raise ConversionError("the ellipsis of the operands stands for different numbers of "
                              "axes")
    letters = "".join(free[: counts.pop() if counts else 0])
    return sa.replace("...", letters), sb.replace("...", letters), out.replace("...", letters)


@translation("Einsum")
def einsum(attrs, inputs, cv):
    """Two-operand Einsum as a (batched) matrix product plus transposes and reshapes."""
    equation = attrs["equation"]
    equation = equation.decode() if isinstance(equation, bytes) else equation
    equation = equation.replace(" ", "")
    if "->" not in equation or len(inputs) != 2:
        raise ConversionError(f"only explicit two-operand equations are supported, got "
                              f"{equation!r}")
    left, out = equation.split("->")
    sa, sb = left.split(",")
    if "..." in equation:
        sa, sb, out = _expand_ellipsis(sa, sb, out, len(cv.shape(0)), len(cv.shape(1)))
    if len(set(sa)) != len(sa) or len(set(sb)) != len(sb):
        raise ConversionError(f"repeated indices (traces, diagonals) in {equation!r}")
    batch = [c for c in out if c in sa and c in sb]
    contract = [c for c in sa if c in sb and c not in out]
    free_a = [c for c in sa if c not in sb]
    free_b = [c for c in sb if c not in sa]
    if sorted(batch + free_a + free_b) != sorted(out) or any(c not in out for c in free_a +
                                                                free_b):
        raise ConversionError(f"{equation!r} sums over an index of one operand only")
    shape_a, shape_b = cv.shape(0), cv.shape(1)
    size = {c: shape_a[sa.index(c)] for c in sa}
    size.update({c: shape_b[sb.index(c)] for c in sb})
    a = inputs[0] if cv.const(0) is None else cv.const_symbol(cv.node.input[0], cv.const(0))
    b = inputs[1] if cv.const(1) is None else cv.const_symbol(cv.node.input[1], cv.const(1))
    order_a = batch + free_a + contract
    order_b = batch + contract + free_b
    a = sym.transpose(a, axes=tuple(sa.index(c) for c in order_a))
    b = sym.transpose(b, axes=tuple(sb.index(c) for c in order_b))
    m = int(np.prod([size[c] for c in free_a], dtype=np.int64))
    k = int(np.prod([size[c] for c in contract], dtype=np.int64))
    n = int(np.prod([size[c] for c in free_b], dtype=np.int64))
    a3 = sym.reshape(a, shape=(-1, m, k))
    b3 = sym.reshape(b, shape=(-1, k, n))
    product = sym.linalg.gemm2(a3, b3)
    # Back to (batch..., free_a..., free_b...), the batch axes copied from ``a``.
    unfolded = sym.reshape_like(product, a, lhs_begin=0, lhs_end=1, rhs_begin=0,
                                rhs_end=len(batch)) if batch else product
    full_shape = [0] * len(batch) + [size[c] for c in free_a] + [size[c] for c in free_b]
    unfolded = sym.reshape(unfolded, shape=tuple(full_shape))
    current = batch + free_a + free_b
    perm = tuple(current.index(c) for c in out)
    if perm == tuple(range(len(perm))):
        return sym.identity(unfolded, name=_name(cv))
    return sym.transpose(unfolded, axes=perm, name=_name(cv))


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
