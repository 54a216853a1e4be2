"""Surgery on a :class:`~repurpose.source.SourceModel`: cut it, stack layers on it, freeze
and re-initialise layers. Every call returns a new model and leaves the old one as it was.

The functions here are ``SourceModel`` methods, bound in its class body (``self`` is the
model). Layers added to a model without an input shape wait for it (``_deferred_init``).
"""
import logging
import uuid

import mxnet as mx

from .. import seeding
from .._validation import brief_list, check_layer_names
from ..exceptions import InvalidParameterError
from ._blocks import build_blocks, copy_layers
from ._deferred_init import Deferred
from ._graph import layer_params

logger = logging.getLogger(__name__)

__all__ = ["truncate", "add_layers", "freeze", "unfreeze", "reinitialize", "initial_value"]


def truncate(self, layer):
    """Return a new model ending at ``layer`` (every layer above it dropped).

    Parameters
    ----------
    layer : str
        A name from :attr:`layer_names`.

    Returns
    -------
    SourceModel

    Examples
    --------
    >>> from repurpose import SourceModel
    >>> model = SourceModel.from_zoo('digits_cnn')
    >>> model.truncate('fc1_relu_fwd').output_layers
    ['fc1_relu_fwd']
    """
    internals = self.symbol.get_internals()
    return self._derived(internals[self.output_name(layer)])


def add_layers(self, layers, random_state=None):
    """Return a new model with ``layers`` stacked on top of the current output.

    The new layers' parameter shapes depend on the input shape. A model without
    :attr:`input_shape` (a plain MXNet checkpoint) gets the new graph at once and its new
    parameters later, as Gluon's deferred initialisation does: :meth:`with_input_shape`
    returns a copy with them, and the first batch the model extracts features of (or a
    fine-tuning repurposer trains on) sizes them in place, once. Either way the values
    are those this call would give a model loaded with that input shape and the same
    ``random_state``. Until then :attr:`layers` lists the new layers without shapes or
    parameter counts, and :meth:`to_gluon` and :meth:`save_checkpoint` raise.

    Parameters
    ----------
    layers : sequence of dict or mx.gluon.HybridBlock
        Gluon blocks, or specs: ``{'type': 'dense', 'units': 10, 'activation': None}``,
        ``{'type': 'activation', 'activation': 'relu'}``,
        ``{'type': 'dropout', 'rate': 0.5}``, ``{'type': 'batchnorm'}``,
        ``{'type': 'flatten'}``; each may carry ``'name'``.
    random_state : int, RandomState or None, default=None
        Seed of the new layers' initial weights.

    Returns
    -------
    SourceModel

    Raises
    ------
    InvalidParameterError
        For an unknown spec, a name clash with existing layers, a model with several
        outputs, or (without an input shape) a Gluon block that cannot be copied.

    Examples
    --------
    >>> from mxnet.gluon import nn
    >>> from repurpose import SourceModel
    >>> net = nn.HybridSequential(prefix='')
    >>> net.add(nn.Dense(4, prefix='fc1_'))
    >>> net.initialize()
    >>> model = SourceModel.from_gluon(net, input_shape=(3,))
    >>> new = model.add_layers([{'type': 'dense', 'units': 2, 'name': 'out'}],
    ...                        random_state=0)
    >>> new.layer_names, new.layers[-1].output_shape
    (['fc1_fwd', 'out_fwd'], (1, 2))
    """
    if len(self.output_layers) != 1:
        raise InvalidParameterError(
            f"add_layers needs a model with one output; this one has "
            f"{len(self.output_layers)} ({brief_list(self.output_layers)}). Call "
            f"truncate(layer) first.")
    if isinstance(layers, (dict, mx.gluon.Block)):
        layers = [layers]
    layers = list(layers)
    blocks = build_blocks(layers, self._existing_names())  # every spec and name checked
    seed = seeding.derive_seed(random_state)
    if self.input_shape is not None:
        return self._stack_blocks(blocks, seed)
    return _add_layers_deferred(self, layers, seed)


def _add_layers_deferred(self, layers, seed):
    """``add_layers`` on a model without an input shape: build the graph now from copies
    (the caller's blocks stay as they are) and record how to make the parameters once the
    shape is known."""
    templates = tuple(copy_layers(layers))
    symbol = self.symbol
    new_names = set()
    for block in build_blocks(copy_layers(templates), self._existing_names()):
        symbol = _apply_block(block, symbol)
        new_names.update(block.collect_params().keys())
    pending = frozenset(new_names) | self._deferred_names()
    record = Deferred(pending, self._snapshot(), "add_layers", (templates, seed),
                      uuid.uuid4().hex)
    logger.debug("add_layers without an input shape: %d parameter(s) wait for it",
                 len(pending))
    return type(self)._with_deferred(record, symbol, self._arg_params, self._aux_params,
                                     input_name=self.input_name, metadata=self._metadata,
                                     frozen_layers=self.frozen_layers)


def _apply_block(block, symbol):
    """``block(symbol)``, which must have one output."""
    out = block(symbol)
    if isinstance(out, (list, tuple)):
        raise InvalidParameterError(f"Added block {block.name!r} has several outputs; "
                                    f"add blocks with one output.")
    return out


def _existing_names(self):
    """Operator and parameter names a new layer must not reuse (listed layers or not)."""
    return (set(self._op_names) | set(self._arg_params) | set(self._aux_params)
            | self._deferred_names())


def _stack_blocks(self, blocks, seed):
    """``add_layers`` on a model with an input shape: initialise ``blocks`` (Xavier
    weights, in order, from ``seed``) on the model's output and add them to the graph."""
    seeding.seed_everything(seed)
    y = self.to_gluon()(mx.nd.zeros((1,) + self.input_shape))
    symbol = self.symbol
    arg_params, aux_params = dict(self._arg_params), dict(self._aux_params)
    for block in blocks:
        block.initialize(mx.init.Xavier())
        y = block(y)
        symbol = _apply_block(block, symbol)
        aux_names = set(symbol.list_auxiliary_states())
        for name, param in block.collect_params().items():
            value = param.data().copyto(mx.cpu())
            (aux_params if name in aux_names else arg_params)[name] = value
    return self._derived(symbol, arg_params, aux_params)


def _stack_layer_copies(self, templates, seed):
    """``add_layers(templates, seed)`` of a model with an input shape, on fresh copies of
    the layer specs / blocks ``templates`` (replayed by ``_deferred_init``)."""
    return self._stack_blocks(build_blocks(copy_layers(templates), self._existing_names()),
                              seed)


def freeze(self, layers=None, up_to=None):
    """Return a new model whose named layers are frozen for fine-tuning.

    Parameters
    ----------
    layers : sequence of str, default=None
        Layers to freeze (added to those already frozen).
    up_to : str, default=None
        Also freeze every layer from the input up to and including this one (and the
        operator nodes between them that :attr:`layer_names` does not list).

    Returns
    -------
    SourceModel

    Examples
    --------
    >>> from repurpose import SourceModel
    >>> SourceModel.from_zoo('digits_cnn').freeze(up_to='bn1_fwd').frozen_layers
    ('conv1_fwd', 'bn1_fwd')
    """
    names = self.layer_names
    chosen = list(layers or [])
    check_layer_names(chosen, names, "SourceModel.layer_names")
    if up_to is not None:
        check_layer_names([up_to], names, "SourceModel.layer_names")
        every = self._op_names
        chosen += every[: every.index(up_to) + 1]
    if not chosen:
        raise InvalidParameterError("freeze needs layers=[...] or up_to='layer'.")
    return self._derived(self.symbol, frozen_layers=tuple(self.frozen_layers) + tuple(chosen))


def unfreeze(self, layers=None):
    """Return a new model with ``layers`` (default: all) no longer frozen.

    Parameters
    ----------
    layers : sequence of str, default=None
        Layers to unfreeze; None unfreezes every layer.

    Returns
    -------
    SourceModel
    """
    if layers is None:
        return self._derived(self.symbol, frozen_layers=())
    check_layer_names(list(layers), self.layer_names, "SourceModel.layer_names")
    keep = tuple(n for n in self.frozen_layers if n not in set(layers))
    return self._derived(self.symbol, frozen_layers=keep)


def reinitialize(self, layers, random_state=None, init=None):
    """Return a new model whose ``layers`` have fresh random parameters.

    Weights get ``init`` (default Xavier), biases and batch-norm shifts zero, batch-norm
    scales and running variances one, running means zero (MXNet's initialiser rules by
    parameter name).

    Parameters
    ----------
    layers : sequence of str
    random_state : int, RandomState or None, default=None
    init : mx.init.Initializer, default=None

    Returns
    -------
    SourceModel
    """
    layers = list(layers)
    check_layer_names(layers, self.layer_names, "SourceModel.layer_names")
    owned = layer_params(self.symbol, [self.input_name] + self._label_names)
    targets = [p for layer in layers for p in owned[layer]]
    if not targets:
        raise InvalidParameterError(
            f"Layers {brief_list(layers)} have no parameters to re-initialise.")
    seed = seeding.derive_seed(random_state)
    if not set(targets) & self._deferred_names():
        # Every target exists: its new value does not depend on the input shape (the
        # model's deferred parameters, if any, keep waiting as they were).
        return self._reinitialize_seeded(targets, seed, init)
    # Some targets wait for the input shape (add_layers without one). The targets draw
    # from one seeded stream in order, so every value may depend on those shapes: the
    # whole call is replayed once the shape is known.
    record = Deferred(self._deferred_names() | frozenset(targets), self._snapshot(),
                      "reinitialize", (tuple(targets), seed, init), uuid.uuid4().hex)
    return type(self)._with_deferred(
        record, self.symbol,
        {k: v for k, v in self._arg_params.items() if k not in record.names},
        {k: v for k, v in self._aux_params.items() if k not in record.names},
        input_name=self.input_name, metadata=self._metadata,
        frozen_layers=self.frozen_layers)


def _reinitialize_seeded(self, targets, seed, init):
    """``reinitialize`` of the parameters ``targets`` (in order) from the int ``seed``."""
    seeding.seed_everything(seed)
    arg_params, aux_params = dict(self._arg_params), dict(self._aux_params)
    for name in targets:
        store = aux_params if name in aux_params else arg_params
        store[name] = initial_value(name, store[name].shape, init)
    return self._derived(self.symbol, arg_params, aux_params)


def initial_value(name, shape, init=None):
    """A freshly initialised parameter array, by MXNet's naming rules (weights: ``init``,
    default Xavier; biases and betas 0; gammas 1) plus batch-norm statistics (mean 0,
    variance 1), for which MXNet's initialisers have no rule."""
    fresh = mx.nd.zeros(shape)
    if name.endswith(("running_var", "moving_var")):
        fresh[:] = 1
    elif not name.endswith(("running_mean", "moving_mean")):
        (init or mx.init.Xavier())(mx.init.InitDesc(name), fresh)
    return fresh
