"""``SourceModel``: one immutable view of a pretrained MXNet network, however it was stored.

Every loader turns its input into the same three things (a symbol graph, argument
parameters and auxiliary states) so that everything afterwards (the layer table, feature
extraction, surgery, saving) behaves the same for checkpoints, Gluon blocks, zoo names and
ONNX files.

This module holds the value type: construction, properties, the layer table, shapes,
hashing and the Gluon forward block. The other jobs live beside it and are bound into the
class body, so that every method stays on ``SourceModel``: loaders (``_loaders``, ``_spec``),
surgery (``_surgery``, ``_deferred_init``), checkpoints (``_sidecar``) and the text table
(``_table``).
"""
import hashlib
import json
import warnings

import mxnet as mx
import numpy as np

from .._validation import check_layer_names
from ..context import resolve_contexts
from ..exceptions import InvalidParameterError, ModelFileError
from ..persist import register_source_class
from . import _deferred_init, _loaders, _sidecar, _spec, _surgery, _table
from ._graph import (Layer, check_graph, graph_nodes, infer_output_shapes, layer_outputs,
                     layer_params, param_shapes, per_sample_layers, shape_tuple)

__all__ = ["SourceModel"]


def _as_nd(value, name):
    if isinstance(value, mx.nd.NDArray):
        return value.as_in_context(mx.cpu())
    try:
        return mx.nd.array(np.asarray(value), ctx=mx.cpu(), dtype=np.asarray(value).dtype)
    except Exception as err:
        raise ModelFileError(
            f"Parameter {name!r} is not an array: {type(value).__name__}.") from err


@register_source_class
class SourceModel:
    """A pretrained network to repurpose: graph, weights, and what is known about its input.

    A ``SourceModel`` is an immutable value: surgery methods (:meth:`truncate`,
    :meth:`add_layers`, :meth:`freeze`, :meth:`reinitialize`) return new models and never
    change this one, and ``copy.deepcopy`` returns the same object, so scikit-learn's
    ``clone`` never copies a network. Build one with a ``from_*`` class method.

    A model loaded without ``input_shape`` (a plain MXNet checkpoint) takes its shapes from
    the data: extraction and fine-tuning read them from the first batch, and
    :meth:`with_input_shape` returns a copy that knows its shape. Layers added to such a model
    (:meth:`add_layers`) wait for the input shape, as Gluon's deferred initialisation does:
    the first batch the model extracts sizes them in place, once, with the values
    ``add_layers`` would have given the model loaded with that shape. That completion is the
    only change a model undergoes; afterwards it has that input shape, and data of another
    shape is an error.

    Parameters
    ----------
    symbol : mx.sym.Symbol
        The network graph.
    arg_params, aux_params : dict of str -> NDArray or ndarray
        Weights and auxiliary states (batch-norm statistics) by variable name.
    input_name : str, default='data'
        The graph's data input.
    input_shape : tuple of int, default=None
        Shape of one input sample without the batch axis, e.g. ``(3, 224, 224)``; None if
        unknown (it is then taken from the data, see above).
    metadata : dict, default=None
        JSON-serialisable facts about the model (mean/std, class names, source accuracy).
    frozen_layers : tuple of str, default=()
        Layers whose parameters fine-tuning keeps fixed.

    Attributes
    ----------
    layer_names : list of str
        Every layer (operator node), input to output.
    layers : list of Layer
        Name, operator, output shape and parameter count of every layer.

    Raises
    ------
    ModelFileError
        If the parameters do not fit the graph (missing names, wrong shapes).

    Examples
    --------
    >>> import mxnet as mx
    >>> from mxnet.gluon import nn
    >>> net = nn.HybridSequential(prefix='')
    >>> net.add(nn.Dense(4, prefix='fc1_'), nn.Dense(2, prefix='fc2_'))
    >>> net.initialize()
    >>> model = SourceModel.from_gluon(net, input_shape=(3,))
    >>> model.layer_names
    ['fc1_fwd', 'fc2_fwd']
    >>> model.to_gluon(layers=['fc1_fwd'])(mx.nd.ones((5, 3))).shape
    (5, 4)

    Features of whole data sets come from :func:`repurpose.features.extract_features`.
    """

    def __init__(self, symbol, arg_params, aux_params, input_name="data", input_shape=None,
                 metadata=None, frozen_layers=()):
        self._init(symbol, arg_params, aux_params, input_name, input_shape, metadata,
                   frozen_layers, deferred=None)

    @classmethod
    def _with_deferred(cls, deferred, symbol, arg_params, aux_params, input_name="data",
                       metadata=None, frozen_layers=()):
        """A shape-less model lacking the parameters ``deferred.names`` (see
        ``_deferred_init.Deferred``); or a complete one when ``symbol`` uses none of them."""
        variables = set(symbol.list_arguments()) | set(symbol.list_auxiliary_states())
        names = frozenset(deferred.names) & variables if deferred is not None else frozenset()
        model = cls.__new__(cls)
        model._init(symbol, arg_params, aux_params, input_name, None, metadata, frozen_layers,
                    deferred=deferred._replace(names=names) if names else None)
        return model

    def _init(self, symbol, arg_params, aux_params, input_name, input_shape, metadata,
              frozen_layers, deferred):
        if not isinstance(symbol, mx.sym.Symbol):
            raise InvalidParameterError(
                f"symbol must be an mx.sym.Symbol, got {type(symbol).__name__}.")
        self._symbol = symbol
        self._arg_params = {k: _as_nd(v, k) for k, v in dict(arg_params).items()}
        self._aux_params = {k: _as_nd(v, k) for k, v in dict(aux_params).items()}
        self._input_name = str(input_name)
        self._input_shape = shape_tuple(input_shape)
        self._metadata = json.loads(json.dumps(metadata or {}))  # a JSON-clean private copy
        self._cache = {}
        self._deferred = deferred
        self._label_names = check_graph(symbol, self._arg_params, self._aux_params,
                                        self._input_name, self._input_shape,
                                        self._deferred_names())
        frozen = tuple(frozen_layers)
        check_layer_names(frozen, self._op_names, "SourceModel.layer_names")
        self._frozen_layers = tuple(n for n in self._op_names if n in set(frozen))

    # ------------------------------------------------------------------ value semantics
    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    def output_shapes(self, input_shape):
        """Shape of every output of the graph's nodes for one sample of ``input_shape``.

        Parameters
        ----------
        input_shape : tuple of int
            Shape of one sample (no batch axis).

        Returns
        -------
        dict of str -> tuple
            ``{'<node>_output': (1, ...)}`` for every internal output (batch of 1); shapes
            MXNet cannot infer are empty tuples.

        Raises
        ------
        DataError
            If the graph does not accept samples of ``input_shape`` (MXNet's complaint
            quoted).
        """
        return infer_output_shapes(self._symbol, self._param_shapes(), self._input_name,
                                   input_shape, self._input_shape)

    def cached(self, key, build):
        """Return the value memoised under ``key`` for this model, built by ``build()`` the
        first time. A model never changes after it is made, so anything derived from it
        (compiled feature blocks, layer tables) can be kept with it; copies start empty.

        Examples
        --------
        >>> import mxnet as mx
        >>> model = SourceModel(mx.sym.relu(mx.sym.var('data'), name='relu0'), {}, {})
        >>> model.cached('n', lambda: 41 + 1), model.cached('n', lambda: 0)
        (42, 42)
        """
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def _param_shapes(self):
        """Shapes of every parameter the graph uses, by name."""
        return param_shapes(self._symbol, self._arg_params, self._aux_params)

    # ------------------------------------------------------------------ properties
    @property
    def symbol(self):
        """mx.sym.Symbol: the network graph."""
        return self._symbol

    @property
    def arg_params(self):
        """dict of str -> NDArray: weights by name (a new dict; do not modify the arrays)."""
        return dict(self._arg_params)

    @property
    def aux_params(self):
        """dict of str -> NDArray: auxiliary states by name (a new dict)."""
        return dict(self._aux_params)

    @property
    def input_name(self):
        """str: name of the data input."""
        return self._input_name

    @property
    def input_shape(self):
        """tuple of int or None: shape of one input sample without the batch axis."""
        return self._input_shape

    @property
    def metadata(self):
        """dict: JSON facts about the model (a copy)."""
        return json.loads(json.dumps(self._metadata))

    @property
    def frozen_layers(self):
        """tuple of str: layers whose parameters fine-tuning keeps fixed."""
        return self._frozen_layers

    @property
    def layer_names(self):
        """list of str: every layer a user can extract, from input to output.

        A layer is an operator node whose output holds one row per sample (batch axis
        first). Nodes that compute on weights alone, or that hold the batch elsewhere (the
        sequence-first attention internals of some imported transformers), are left out:
        extracting them would not give per-sample features. Where the input shape is
        unknown, every operator node is listed.
        """
        if "layer_names" not in self._cache:
            names = self._op_names
            if self._input_shape is not None:
                kept = per_sample_layers(self._symbol, self._input_name, self._input_shape,
                                         self._param_shapes())
                names = [n for n in names if n in kept]
            self._cache["layer_names"] = names
        return list(self._cache["layer_names"])

    @property
    def _op_names(self):
        """Every operator node, listed or not in :attr:`layer_names`, in graph order."""
        if "op_names" not in self._cache:
            self._cache["op_names"] = [n["name"] for n in graph_nodes(self._symbol)
                                       if n["op"] != "null"]
        return self._cache["op_names"]

    @property
    def output_layers(self):
        """list of str: the layers whose outputs are the model's outputs."""
        nodes = graph_nodes(self._symbol)
        heads = json.loads(self._symbol.tojson())["heads"]
        return [nodes[h[0]]["name"] for h in heads]

    @property
    def layers(self):
        """list of Layer: name, operator, output shape and parameter count of every layer
        in :attr:`layer_names`."""
        return self.layer_table()

    def layer_table(self, input_shape=None):
        """Describe every layer of :attr:`layer_names`; output shapes need ``input_shape``
        or :attr:`input_shape`.

        Parameters
        ----------
        input_shape : tuple of int, default=None
            Shape of one sample; defaults to the model's.

        Returns
        -------
        list of Layer
        """
        input_shape = shape_tuple(input_shape) or self._input_shape
        shapes = self.output_shapes(input_shape) if input_shape else {}
        owned = layer_params(self._symbol, [self._input_name] + self._label_names)
        outputs = layer_outputs(self._symbol)
        listed = set(self.layer_names)
        table = []
        for node in graph_nodes(self._symbol):
            if node["op"] == "null" or node["name"] not in listed:
                continue
            name = node["name"]
            out_names = outputs.get(name) or []
            shape = shapes.get(out_names[0]) if out_names else None
            n_params = 0
            for p in owned[name]:
                arr = self._arg_params.get(p, self._aux_params.get(p))
                if arr is not None:
                    n_params += int(np.prod(arr.shape))
            table.append(Layer(name, node["op"], tuple(shape) if shape else None, n_params))
        return table

    @property
    def sha256(self):
        """str: SHA-256 of the graph JSON and every parameter (name, dtype, shape, bytes).

        A model whose added layers wait for an input shape (:meth:`add_layers` without one)
        has no values to hash yet: its SHA-256 then names the pending surgery, different for
        every ``add_layers`` call, so caches keyed by it never hand it another model's
        features. Once its parameters exist it is the content hash above.
        """
        if self._deferred is not None:  # not cached: it changes once the parameters exist
            digest = hashlib.sha256(f"deferred:{self._deferred.token}:".encode())
            digest.update(self._symbol.tojson().encode())
            digest.update(",".join(sorted(self._deferred.names)).encode())
            return digest.hexdigest()
        if "sha256" not in self._cache:
            digest = hashlib.sha256(self._symbol.tojson().encode())
            for prefix, params in (("arg:", self._arg_params), ("aux:", self._aux_params)):
                for name in sorted(params):
                    arr = params[name].asnumpy()
                    digest.update(f"{prefix}{name}:{arr.dtype}:{arr.shape}".encode())
                    digest.update(np.ascontiguousarray(arr).tobytes())
            self._cache["sha256"] = digest.hexdigest()
        return self._cache["sha256"]

    def output_name(self, layer):
        """Return the internal output name of ``layer`` (its first output).

        ``layer`` may be a layer name or the name of one of its outputs, e.g.
        ``'split0_output1'``.
        """
        outputs = layer_outputs(self._symbol)
        listed = set(self.layer_names)
        if layer in outputs and layer in listed:
            if not outputs[layer]:
                raise InvalidParameterError(f"Layer {layer!r} has no output to extract.")
            return outputs[layer][0]
        owner = next((name for name, outs in outputs.items() if layer in outs), None)
        if owner is not None and owner in listed:
            return layer
        if layer in outputs or owner is not None:
            raise InvalidParameterError(
                f"Layer {layer!r} does not hold one row per sample (it computes on weights "
                f"alone, or holds the batch on another axis), so it cannot be extracted or "
                f"cut at. Pick a layer of SourceModel.layer_names, e.g. the next one: "
                f"{self._next_listed(owner or layer)!r}.")
        check_layer_names([layer], self.layer_names, "SourceModel.layer_names")

    def _next_listed(self, op_name):
        """The first layer of :attr:`layer_names` at or after operator node ``op_name``."""
        every, listed = self._op_names, set(self.layer_names)
        later = [n for n in every[every.index(op_name):] if n in listed]
        return later[0] if later else self.layer_names[-1]

    # ------------------------------------------------------------------ derived networks
    def _derived(self, symbol, arg_params=None, aux_params=None, frozen_layers=None,
                 metadata=None):
        """A new model over ``symbol``, keeping only the parameters it uses (and the deferred
        ones among them, see :meth:`add_layers`)."""
        arg_params = self._arg_params if arg_params is None else arg_params
        aux_params = self._aux_params if aux_params is None else aux_params
        args = set(symbol.list_arguments())
        auxs = set(symbol.list_auxiliary_states())
        names = {n["name"] for n in graph_nodes(symbol)}
        frozen = self._frozen_layers if frozen_layers is None else frozen_layers
        if self._deferred is not None:
            return type(self)._with_deferred(
                self._deferred, symbol,
                {k: v for k, v in arg_params.items() if k in args},
                {k: v for k, v in aux_params.items() if k in auxs},
                input_name=self._input_name,
                metadata=self._metadata if metadata is None else metadata,
                frozen_layers=tuple(n for n in frozen if n in names))
        return type(self)(
            symbol,
            {k: v for k, v in arg_params.items() if k in args},
            {k: v for k, v in aux_params.items() if k in auxs},
            input_name=self._input_name,
            input_shape=self._input_shape,
            metadata=self._metadata if metadata is None else metadata,
            frozen_layers=tuple(n for n in frozen if n in names),
        )

    def feature_symbol(self, layers, pool=None):
        """Return one symbol grouping the outputs of ``layers``, flattened to 2-D.

        Parameters
        ----------
        layers : sequence of str
            Layer names (or output names), see :attr:`layer_names`.
        pool : {None, 'avg', 'max'}, default=None
            Global pooling of 4-D (N, C, H, W) outputs to (N, C) before flattening.

        Returns
        -------
        mx.sym.Symbol
            A group with one (N, D) output per layer, in the order given.
        """
        internals = self._symbol.get_internals()
        heads = []
        for layer in layers:
            out = internals[self.output_name(layer)]
            if pool is not None:
                shape = None
                if self._input_shape:
                    _, (shape,), _ = out.infer_shape_partial(
                        **{self._input_name: (1,) + self._input_shape})
                if shape is None or len(shape) == 4:
                    # Pooling of a 2-D output would fail, so only pool known 4-D maps (or
                    # unknown shapes, which MXNet checks at bind time).
                    out = mx.sym.Pooling(out, global_pool=True, pool_type=pool, kernel=(1, 1))
            heads.append(mx.sym.flatten(out))
        return mx.sym.Group(heads)

    def to_gluon(self, ctx="cpu", layers=None, pool=None, frozen=True):
        """Return a Gluon ``SymbolBlock`` computing the model (or the given layers).

        Parameters
        ----------
        ctx : str, mx.Context or list, default='cpu'
            Contexts to hold the parameters, see :func:`repurpose.context.resolve_contexts`.
        layers : sequence of str, default=None
            Output these layers (flattened, see :meth:`feature_symbol`) instead of the
            model's outputs.
        pool : {None, 'avg', 'max'}, default=None
            Global pooling of 4-D outputs of ``layers``.
        frozen : bool, default=True
            Give the parameters of :attr:`frozen_layers` ``grad_req='null'``.

        Returns
        -------
        mx.gluon.SymbolBlock
            Initialised on every context, not hybridized.
        """
        self._check_complete("to_gluon")
        contexts = resolve_contexts(ctx)
        outputs = self._symbol if layers is None else self.feature_symbol(layers, pool)
        inputs = [mx.sym.var(self._input_name, dtype="float32")] + [
            mx.sym.var(n) for n in self._label_names if n in outputs.list_arguments()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "unused input" for label variables
            block = mx.gluon.SymbolBlock(outputs, inputs)
        params = block.collect_params()
        frozen_params = self.frozen_params if frozen else set()
        for name, param in params.items():
            value = self._arg_params.get(name, self._aux_params.get(name))
            if value is None:
                raise ModelFileError(f"No value for parameter {name!r}.")
            param.shape = value.shape
            param.initialize(init=mx.init.Zero(), ctx=contexts)
            param.set_data(value)
            if name in frozen_params:
                param.grad_req = "null"
        return block

    @property
    def frozen_params(self):
        """set of str: names of the parameters owned by :attr:`frozen_layers`."""
        owned = layer_params(self._symbol, [self._input_name] + self._label_names)
        return {p for layer in self._frozen_layers for p in owned[layer]}

    # ------------------------------------------------------------------ moved
    def extract(self, *args, **kwargs):
        """Moved: use :func:`repurpose.features.extract_features` ``(model, data, layers,
        ...)``, with the same arguments.

        The feature engine lives in :mod:`repurpose.features`, above the source models in
        the import chain; this method only says where it went.

        Parameters
        ----------
        *args, **kwargs
            Ignored.

        Raises
        ------
        AttributeError
            Always, naming the function to call instead.
        """
        raise AttributeError(
            "SourceModel.extract has moved: use repurpose.features.extract_features(model, "
            "data, layers, ...) (same arguments), e.g. `from repurpose.features import "
            "extract_features; extract_features(model, X, ['fc1_relu_fwd'])`.")

    # ------------------------------------------------------------------ bound from modules
    # Each job's code lives in its own module; binding it here keeps every method on the
    # class, with its docstring where the code is.
    __repr__ = _table.model_repr
    describe = _table.describe

    from_files = classmethod(_loaders.from_files)
    from_checkpoint = classmethod(_loaders.from_checkpoint)
    from_gluon = classmethod(_loaders.from_gluon)
    from_zoo = classmethod(_loaders.from_zoo)
    from_onnx = classmethod(_loaders.from_onnx)
    from_spec = classmethod(_spec.from_spec)

    truncate = _surgery.truncate
    add_layers = _surgery.add_layers
    freeze = _surgery.freeze
    unfreeze = _surgery.unfreeze
    reinitialize = _surgery.reinitialize
    _existing_names = _surgery._existing_names
    _stack_blocks = _surgery._stack_blocks
    _stack_layer_copies = _surgery._stack_layer_copies
    _reinitialize_seeded = _surgery._reinitialize_seeded

    with_input_shape = _deferred_init.with_input_shape
    _take_input_shape = _deferred_init._take_input_shape
    _replay_deferred = _deferred_init._replay_deferred
    _check_complete = _deferred_init._check_complete
    _deferred_names = _deferred_init._deferred_names
    _snapshot = _deferred_init._snapshot

    save_checkpoint = _sidecar.save_checkpoint
