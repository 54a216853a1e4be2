"""Parameters that wait for the input shape, as Gluon's deferred initialisation does.

:meth:`SourceModel.add_layers` on a model without an input shape (a plain MXNet checkpoint)
builds the new graph at once and records how to make the new parameters; they are made by
:meth:`SourceModel.with_input_shape`, or in place, once, by the first batch the model sees
(:func:`_take_input_shape`). The values are those the same surgery gives a model loaded with
that shape, because the recorded surgery is replayed on a shaped copy of the model it was
applied to.

The functions here are ``SourceModel`` methods, bound in its class body (``self`` is the
model).
"""
import logging
import threading
from collections import namedtuple

import mxnet as mx

from .._validation import brief_list
from ..exceptions import DataError, InvalidParameterError
from ._graph import graph_nodes, shape_tuple

logger = logging.getLogger(__name__)

__all__ = ["Deferred", "with_input_shape"]

#: Parameters a model lacks until it knows its input shape, and how to make them.
#: ``names``: the missing parameter names (arguments or auxiliary states). ``base``: a
#: private, shape-less model the surgery is replayed on. ``op`` / ``args``: the surgery,
#: ``('add_layers', (layer specs / blocks, seed))`` or
#: ``('reinitialize', (parameter names, seed, init))``, with the integer seed already drawn
#: from its ``random_state``. ``token``: names this record in :attr:`SourceModel.sha256`
#: while the parameters do not exist.
Deferred = namedtuple("Deferred", ["names", "base", "op", "args", "token"])

# Completing a model's deferred parameters in place happens once per model (see
# _take_input_shape); the lock keeps two threads from racing at it.
_COMPLETION_LOCK = threading.Lock()


def _deferred_names(self):
    """frozenset of str: the parameters that wait for an input shape (see add_layers)."""
    return self._deferred.names if self._deferred is not None else frozenset()


def _snapshot(self):
    """This model, as a private object that no extraction completes in place."""
    if self._deferred is None:
        return self  # a model without deferred parameters never changes
    return type(self)._with_deferred(self._deferred, self.symbol, self._arg_params,
                                     self._aux_params, input_name=self.input_name,
                                     metadata=self._metadata, frozen_layers=self.frozen_layers)


def _check_complete(self, what):
    """Raise, saying what to do, if parameters still wait for the input shape."""
    if self._deferred is None:
        return
    names = sorted(self._deferred.names)
    raise InvalidParameterError(
        f"{what} needs every parameter, but {len(names)} of this model "
        f"({brief_list(names)}) do not exist yet: add_layers was called on a model without "
        f"input_shape, so their sizes wait for one. Call model.with_input_shape(shape) "
        f"with the shape of one sample (e.g. (3, 224, 224)) first, or extract features "
        f"once: the first batch sets the shape.")


def _replay_deferred(self, input_shape):
    """This model's graph and deferred parameters for samples of ``input_shape``.

    The recorded surgery is replayed on the base model given that shape, so the values
    equal what the surgery gives a model loaded with that shape. The graph is taken from
    the replay too (cut to this model's outputs, as :meth:`truncate` cuts): it is this
    model's graph, and its JSON is byte for byte that of the up-front path (Gluon numbers
    the uses of batch-norm statistics differently when a block is first run on arrays),
    so the SHA-256 matches as well.

    Returns
    -------
    symbol : mx.sym.Symbol
    values : dict of str -> NDArray
        The deferred parameters by name.
    """
    record = self._deferred
    shaped = record.base.with_input_shape(input_shape)
    if record.op == "add_layers":
        done = shaped._stack_layer_copies(*record.args)
    else:
        done = shaped._reinitialize_seeded(*record.args)
    values = dict(done._arg_params)
    values.update(done._aux_params)
    symbol = done.symbol
    outputs = self.symbol.list_outputs()
    if symbol.list_outputs() != outputs:
        internals = symbol.get_internals()
        known = set(internals.list_outputs())
        heads = [internals[name] for name in outputs if name in known]
        symbol = heads[0] if len(heads) == 1 else mx.sym.Group(heads)
    layer_names = [n["name"] for n in graph_nodes(symbol) if n["op"] != "null"]
    if layer_names != self.layer_names:
        # Only a block that names its nodes differently on every call could do this.
        changed = [a for a, b in zip(self.layer_names, layer_names) if a != b]
        raise InvalidParameterError(
            f"The layers added without an input shape were named differently when built "
            f"again for input shape {tuple(input_shape)} ({brief_list(changed)} or a "
            f"different count); an added block names its nodes anew on each call. Call "
            f"with_input_shape(shape) before add_layers instead.")
    return symbol, {name: values[name] for name in record.names}


def with_input_shape(self, input_shape):
    """Return this model with its input shape set (and any deferred parameters made).

    A plain MXNet checkpoint does not record the shape of its input. This gives a model
    that knows it, checked against the graph by MXNet's shape inference; layers added by
    :meth:`add_layers` without a shape get their parameters, the same ones ``add_layers``
    gives a model loaded with this shape and the same ``random_state``.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one sample without the batch axis, e.g. ``(3, 224, 224)``.

    Returns
    -------
    SourceModel
        A new model; this one if it already has ``input_shape``.

    Raises
    ------
    InvalidParameterError
        If ``input_shape`` is not a tuple of positive ints.
    DataError
        If the graph does not accept samples of ``input_shape``, or the model already has
        another input shape (a model keeps the shape it was given or first saw).

    Examples
    --------
    >>> from mxnet.gluon import nn
    >>> from repurpose import SourceModel
    >>> net = nn.HybridSequential(prefix='')
    >>> net.add(nn.Dense(4, prefix='fc1_'))
    >>> net.initialize()
    >>> model = SourceModel.from_gluon(net, input_shape=(3,))
    >>> plain = SourceModel(model.symbol, model.arg_params, {})  # no input shape
    >>> new = plain.add_layers([{'type': 'dense', 'units': 2, 'name': 'out'}],
    ...                        random_state=0)
    >>> [layer.n_params for layer in new.layers]  # 'out' waits for the input shape
    [16, 0]
    >>> shaped = new.with_input_shape((3,))
    >>> shaped.input_shape, [layer.n_params for layer in shaped.layers]
    ((3,), [16, 10])
    >>> up_front = model.add_layers([{'type': 'dense', 'units': 2, 'name': 'out'}],
    ...                             random_state=0)
    >>> shaped.sha256 == up_front.sha256
    True
    >>> shaped.with_input_shape((5,))
    Traceback (most recent call last):
    ...
    repurpose.exceptions.DataError: Samples of shape (5,) do not fit this model: it ...
    """
    shape = shape_tuple(input_shape)
    if shape is None:
        raise InvalidParameterError(
            "with_input_shape needs the shape of one sample without the batch axis, e.g. "
            "(3, 224, 224); got None.")
    if self.input_shape is not None:
        if shape == self.input_shape:
            return self
        raise DataError(
            f"Samples of shape {shape} do not fit this model: it expects input shape "
            f"{self.input_shape} (per sample, batch axis excluded), given when it was "
            f"loaded or taken from the first batch it saw. Resize or reshape the data to "
            f"{self.input_shape}, or load the model again with input_shape={shape}.")
    self.output_shapes(shape)  # DataError naming MXNet's complaint if it does not fit
    symbol = self.symbol
    arg_params, aux_params = dict(self._arg_params), dict(self._aux_params)
    if self._deferred is not None:
        symbol, values = self._replay_deferred(shape)
        aux_names = set(symbol.list_auxiliary_states())
        for name, value in values.items():
            (aux_params if name in aux_names else arg_params)[name] = value
    return type(self)(symbol, arg_params, aux_params, input_name=self.input_name,
                      input_shape=shape, metadata=self._metadata,
                      frozen_layers=self.frozen_layers)


def _take_input_shape(self, input_shape):
    """Let a model with deferred parameters take ``input_shape`` from its first batch.

    Extraction and the fine-tuning repurposers call this with the sample shape of the
    first batch they read. A model whose :meth:`add_layers` waited for an input shape is
    completed in place, once: it gets that input shape and the parameters
    :meth:`with_input_shape` would give, as a Gluon block's deferred parameters are set
    by its first forward pass. This is the one change a ``SourceModel`` undergoes after
    construction, and it is determined by the ``random_state`` given to ``add_layers``.
    Other models are left alone (a model without an input shape and without deferred
    parameters keeps taking each data set's shape).

    Returns
    -------
    SourceModel
        This model.
    """
    if self._deferred is None:
        return self
    with _COMPLETION_LOCK:
        if self._deferred is not None:  # not completed by another thread meanwhile
            done = self.with_input_shape(input_shape)
            self._symbol = done.symbol  # the same graph (see _replay_deferred)
            self._arg_params, self._aux_params = done._arg_params, done._aux_params
            self._input_shape = done.input_shape
            self._label_names = done._label_names
            self._deferred = None
            self._cache.clear()  # the SHA-256 now hashes the parameters
            logger.info("Sized the added layers for input shape %s (the first batch)",
                        self._input_shape)
    return self
