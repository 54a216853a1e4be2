"""The checks every extraction path runs first: the layer list and the input shape.

Shared by the engine (:mod:`._extract`), the int8 calibration (:mod:`._quantize`) and
sharded extraction (:mod:`._sharded`), so that none of them imports another for its checks.
"""
from .._validation import brief_list
from ..exceptions import DataError, InvalidParameterError

__all__ = ["POOLS", "PRECISIONS", "check_layers", "check_input_shape", "known_length"]

PRECISIONS = ("float32", "int8", "bf16")
POOLS = (None, "avg", "max")


def check_layers(source, layers):
    """Return ``layers`` as a list of names ``source`` has (a str is one layer).

    Raises
    ------
    InvalidParameterError
        For an empty list, a name given twice, or a name that is not a str.
    UnknownLayerError
        For a name the model lacks (with close matches).
    """
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


def check_input_shape(source, sample_shape, description):
    """Raise DataError unless samples of ``sample_shape`` fit ``source``.

    ``description`` names the data in the message (e.g. ``'an array of shape (...)'``).
    """
    # A model whose added layers wait for an input shape (add_layers on a model loaded
    # without one) takes it from this first batch, once, as a Gluon block's deferred
    # parameters are sized by its first forward pass (same values as with_input_shape; a
    # DataError if the graph rejects the shape). From then on it has that input shape, so
    # data of another shape gets the error below. Other models are left alone.
    source._take_input_shape(sample_shape)
    expected = source.input_shape
    if expected is not None and tuple(sample_shape) != tuple(expected):
        raise DataError(
            f"{description} has samples of shape {tuple(sample_shape)}, but this model expects "
            f"input shape {tuple(expected)} (per sample, batch axis excluded). Resize or "
            f"reshape the data to {tuple(expected)}."
        )
    if expected is None:
        source.output_shapes(sample_shape)  # raises DataError if the graph rejects it


def known_length(X):
    """The number of samples of ``X`` if it says so without being read: the first axis of
    an array (numpy, MXNet NDArray); None for everything else (a data iterator, a
    ``Dataset``, a ``DataLoader``, whose ``len`` counts batches).

    Examples
    --------
    >>> import numpy as np
    >>> known_length(np.zeros((0, 1, 8, 8))), known_length(iter([]))
    (0, None)
    """
    shape = getattr(X, "shape", None)
    if isinstance(shape, tuple) and len(shape) > 0:
        return int(shape[0])
    return None
