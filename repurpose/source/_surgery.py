"""Layer specs -> Gluon blocks, for :meth:`SourceModel.add_layers`."""
import mxnet as mx
import numpy as np
from mxnet.gluon import nn

from .._validation import brief_list, check_positive_int, suggest
from ..exceptions import InvalidParameterError

__all__ = ["build_blocks", "LAYER_TYPES"]

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
