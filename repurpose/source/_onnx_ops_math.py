"""ONNX translations, arithmetic: no-ops and casts, elementwise functions, broadcasting
arithmetic (scalar constants become scalar operators), activations, softmax, and the linear
algebra (Gemm, MatMul, Einsum; a constant weight becomes ``FullyConnected``). Registered
through :mod:`._onnx_ops`, whose docstring says why these translations exist."""
import math

import mxnet as mx
import numpy as np

from ._onnx_convert import ConversionError, Value, translation
from ._onnx_ops_helpers import (_name, _axis, _check_not_batch, _data_index, _squash_batch_const,
                               _expand_rank)

sym = mx.sym
_internal = mx.sym._internal


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
