"""Layer specs -> Gluon blocks, for :meth:`SourceModel.add_layers` (checked, named without
clashes, and copied for layers that wait for the input shape)."""
import copy

import mxnet as mx
import numpy as np
from mxnet.gluon import nn

from .._validation import brief_list, check_positive_int, suggest
from ..exceptions import InvalidParameterError

__all__ = ["build_blocks", "copy_layers", "LAYER_TYPES"]

LAYER_TYPES = ("dense", "activation", "dropout", "batchnorm", "flatten")
_KEYS = {
    "dense": {"units", "activation", "use_bias", "flatten"},
    "activation": {"activation"},
    "dropout": {"rate"},
    "batchnorm": {"momentum", "epsilon"},
    "flatten": set(),
}


def _spec_to_block(spec, prefix, where):
    if not isinstance(spec, dict):
        raise InvalidParameterError(
            f"{where} is a {type(spec).__name__}; expected a dict spec such as "
            f"{{'type': 'dense', 'units': 10}} or a mx.gluon.HybridBlock.")
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in LAYER_TYPES:
        hint = suggest(kind, LAYER_TYPES) if isinstance(kind, str) else ""
        raise InvalidParameterError(
            f"{where} has type {kind!r}; expected one of {brief_list(LAYER_TYPES)}."
            + (f" {hint}" if hint else ""))
    spec.pop("name", None)
    unknown = sorted(set(spec) - _KEYS[kind])
    if unknown:
        raise InvalidParameterError(
            f"{where} ({kind}) has unknown keys {brief_list(unknown)}; allowed: "
            f"{brief_list(sorted(_KEYS[kind])) or 'none'}.")
    if kind == "dense":
        if "units" not in spec:
            raise InvalidParameterError(f"{where} (dense) needs 'units'.")
        return nn.Dense(check_positive_int(spec["units"], f"{where}.units"),
                        activation=spec.get("activation"), use_bias=spec.get("use_bias", True),
                        flatten=spec.get("flatten", True), prefix=prefix)
    if kind == "activation":
        act = spec.get("activation", "relu")
        valid = ("relu", "sigmoid", "tanh", "softrelu", "softsign")
        if act not in valid:
            raise InvalidParameterError(f"{where}.activation must be one of "
                                        f"{brief_list(valid)}, got {act!r}.")
        return nn.Activation(act, prefix=prefix)
    if kind == "dropout":
        rate = spec.get("rate", 0.5)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise InvalidParameterError(f"{where}.rate must be in [0, 1), got {rate!r}.")
        if 0 < rate < np.finfo(np.float32).tiny:
            # MXNet parses the rate as a C float; subnormal values are rejected at graph build.
            raise InvalidParameterError(f"{where}.rate {rate!r} is too small for float32; "
                                        f"use 0 for no dropout.")
        return nn.Dropout(float(rate), prefix=prefix)
    if kind == "batchnorm":
        return nn.BatchNorm(momentum=spec.get("momentum", 0.9),
                            epsilon=spec.get("epsilon", 1e-5), prefix=prefix)
    return nn.Flatten(prefix=prefix)


def build_blocks(layers, existing_names):
    """Turn specs / blocks into Gluon blocks with names that do not clash.

    Parameters
    ----------
    layers : sequence of dict or HybridBlock
    existing_names : set of str
        Layer and parameter names already in the model.

    Returns
    -------
    list of HybridBlock
    """
    if isinstance(layers, (dict, mx.gluon.Block)):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise InvalidParameterError("add_layers needs at least one layer spec or block.")
    blocks, taken = [], set(existing_names)
    for i, spec in enumerate(layers):
        where = f"layers[{i}]"
        if isinstance(spec, mx.gluon.Block):
            if not isinstance(spec, mx.gluon.HybridBlock):
                raise InvalidParameterError(f"{where} is a {type(spec).__name__}; added blocks "
                                            f"must be HybridBlocks (they become graph nodes).")
            block = spec
        else:
            name = spec.get("name") if isinstance(spec, dict) else None
            if name is None:
                k = 0
                while any(t.startswith(f"added{k}_") for t in taken):
                    k += 1
                name = f"added{k}"
            if not isinstance(name, str) or not name.isidentifier():
                raise InvalidParameterError(f"{where}.name must be an identifier, got {name!r}.")
            block = _spec_to_block(spec, f"{name}_", where)
        clash = [t for t in taken if t.startswith(block.prefix)]
        if clash:
            raise InvalidParameterError(
                f"{where} would be named with prefix {block.prefix!r}, which the model already "
                f"uses ({brief_list(clash)}). Give it another 'name' (or Gluon prefix).")
        taken.update({block.prefix + "fwd"} | set(block.collect_params().keys()))
        blocks.append(block)
    return blocks


def copy_layers(layers):
    """Deep copies of layer specs and Gluon blocks, to build the same layers again later.

    :meth:`SourceModel.add_layers` on a model without an input shape keeps these copies and
    initialises fresh copies of them once the shape is known, so the caller's blocks are
    never touched and the layers can be made for several shapes.

    Parameters
    ----------
    layers : sequence of dict or HybridBlock

    Returns
    -------
    list of dict or HybridBlock

    Raises
    ------
    InvalidParameterError
        For a Gluon block MXNet cannot copy (one that has run hybridized holds a compiled
        graph).
    """
    copies = []
    for i, layer in enumerate(layers):
        problem = None
        if isinstance(layer, mx.gluon.Block) and _has_compiled_graph(layer):
            problem = "it has run hybridized and holds a compiled graph"
        else:
            try:
                copies.append(copy.deepcopy(layer))
            except (TypeError, ValueError) as err:
                problem = str(err)
        if problem is not None:
            raise InvalidParameterError(
                f"layers[{i}] ({type(layer).__name__} {getattr(layer, 'name', '')!r}) cannot be "
                f"copied: {problem}. add_layers on a model without input_shape keeps a copy of "
                f"each layer to initialise once the shape is known. Pass a layer spec or a "
                f"fresh (not yet run) block, or call with_input_shape(shape) before add_layers.")
    return copies


def _has_compiled_graph(block):
    """Whether ``block`` or a child holds a CachedOp (MXNet cannot copy those)."""
    found = []
    block.apply(lambda b: found.append(getattr(b, "_cached_op", None) is not None))
    return any(found)
