"""``SourceModel``: one immutable view of a pretrained MXNet network, however it was stored.

Every loader turns its input into the same three things (a symbol graph, argument
parameters and auxiliary states) so that everything afterwards (the layer table, feature
extraction, surgery, saving) behaves the same for checkpoints, Gluon blocks, zoo names and
ONNX files.
"""
import hashlib
import json
import logging
import os
import threading
import uuid
import warnings
from collections import namedtuple

import mxnet as mx
import numpy as np

from .. import seeding
from .._validation import brief_list, check_layer_names, suggest
from ..context import resolve_contexts
from ..exceptions import DataError, InvalidParameterError, ModelFileError
from ..persist import atomic_write, check_writable, register_source_class
from ._graph import Layer, graph_nodes, layer_outputs, layer_params, per_sample_layers

logger = logging.getLogger(__name__)

__all__ = ["SourceModel"]

SIDECAR_FORMAT = "repurpose.source"
SIDECAR_VERSION = 1

#: Parameters a model lacks until it knows its input shape, and how to make them.
#: ``names``: the missing parameter names (arguments or auxiliary states). ``base``: a
#: private, shape-less model the surgery is replayed on. ``op`` / ``args``: the surgery,
#: ``('add_layers', (layer specs / blocks, seed))`` or
#: ``('reinitialize', (parameter names, seed, init))``, with the integer seed already drawn
#: from its ``random_state``. ``token``: names this record in :attr:`SourceModel.sha256`
#: while the parameters do not exist.
_Deferred = namedtuple("_Deferred", ["names", "base", "op", "args", "token"])

# Completing a model's deferred parameters in place happens once per model (see
# SourceModel._take_input_shape); the lock keeps two threads from racing at it.
_COMPLETION_LOCK = threading.Lock()


def _as_nd(value, name):
    if isinstance(value, mx.nd.NDArray):
        return value.as_in_context(mx.cpu())
    try:
        return mx.nd.array(np.asarray(value), ctx=mx.cpu(), dtype=np.asarray(value).dtype)
    except Exception as err:
        raise ModelFileError(f"Parameter {name!r} is not an array: {type(value).__name__}.") from err


def _shape_tuple(shape, name="input_shape"):
    if shape is None:
        return None
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(
            f"{name} must be a tuple of positive ints for ONE sample, without the batch axis "
            f"(e.g. (3, 224, 224)); got {shape!r}.") from err
    if not shape or any(s <= 0 for s in shape):
        raise InvalidParameterError(
            f"{name} must be a non-empty tuple of positive ints for ONE sample, without the "
            f"batch axis (e.g. (3, 224, 224)); got {shape!r}.")
    return shape


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
    >>> from mxnet.gluon import nn
    >>> net = nn.HybridSequential(prefix='')
    >>> net.add(nn.Dense(4, prefix='fc1_'), nn.Dense(2, prefix='fc2_'))
    >>> net.initialize()
    >>> model = SourceModel.from_gluon(net, input_shape=(3,))
    >>> model.layer_names
    ['fc1_fwd', 'fc2_fwd']
    >>> model.extract(np.ones((5, 3), dtype='float32'), layers=['fc1_fwd'],
    ...               progress=False)['fc1_fwd'].shape
    (5, 4)
    """

    def __init__(self, symbol, arg_params, aux_params, input_name="data", input_shape=None,
                 metadata=None, frozen_layers=()):
        self._init(symbol, arg_params, aux_params, input_name, input_shape, metadata,
                   frozen_layers, deferred=None)

    @classmethod
    def _with_deferred(cls, deferred, symbol, arg_params, aux_params, input_name="data",
                       metadata=None, frozen_layers=()):
        """A shape-less model lacking the parameters ``deferred.names`` (see ``_Deferred``);
        or a complete one when ``symbol`` uses none of them."""
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
        self._input_shape = _shape_tuple(input_shape)
        self._metadata = json.loads(json.dumps(metadata or {}))  # a JSON-clean private copy
        self._cache = {}
        self._deferred = deferred
        self._check_graph()
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

    def __repr__(self):
        shape = self._input_shape if self._input_shape else "unknown"
        return (f"SourceModel({self.metadata.get('name', 'unnamed')!r}, "
                f"{len(self.layer_names)} layers, input_shape={shape})")

    # ------------------------------------------------------------------ checks
    def _check_graph(self):
        arguments = self._symbol.list_arguments()
        aux_names = self._symbol.list_auxiliary_states()
        if self._input_name not in arguments:
            hint = suggest(self._input_name, arguments)
            raise ModelFileError(
                f"The graph has no input named {self._input_name!r}. "
                f"{hint + ' ' if hint else ''}Pass input_name= one of its free inputs: "
                f"{brief_list([a for a in arguments if a not in self._arg_params])}."
            )
        deferred = self._deferred.names if self._deferred is not None else frozenset()
        missing = [a for a in arguments if a != self._input_name and a not in self._arg_params
                   and a not in deferred and not a.endswith("label")]
        missing_aux = [a for a in aux_names if a not in self._aux_params and a not in deferred]
        if missing or missing_aux:
            names = missing + missing_aux
            have = sorted(self._arg_params) + sorted(self._aux_params)
            raise ModelFileError(
                f"The parameters lack {len(names)} variable(s) the graph needs: "
                f"{brief_list(names)}. The parameters hold {len(have)}: {brief_list(have)}. "
                f"Pass the params file saved with this symbol file."
            )
        self._label_names = [a for a in arguments if a != self._input_name
                             and a not in self._arg_params and a not in deferred]
        shapes = self._param_shapes()
        if self._input_shape is not None:
            shapes[self._input_name] = (1,) + self._input_shape
        try:
            # MXNet checks every given shape against the graph and raises on a mismatch.
            self._symbol.infer_shape_partial(**shapes)
        except mx.base.MXNetError as err:
            first_line = str(err).strip().splitlines()[0]
            raise ModelFileError(
                f"The parameter shapes do not fit the graph"
                + (f" for input shape {self._input_shape}" if self._input_shape else "")
                + f": {first_line}. Check that the params file belongs to this symbol file"
                + (" and that input_shape is right." if self._input_shape else ".")
            ) from err

    def _param_shapes(self):
        """Shapes of every parameter the graph uses, by name."""
        arguments = set(self._symbol.list_arguments())
        aux_names = set(self._symbol.list_auxiliary_states())
        shapes = {k: v.shape for k, v in self._arg_params.items() if k in arguments}
        shapes.update({k: v.shape for k, v in self._aux_params.items() if k in aux_names})
        return shapes

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
        return self._infer_output_shapes(input_shape)

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

    def _infer_output_shapes(self, input_shape):
        internals = self._symbol.get_internals()
        shapes = self._param_shapes()
        shapes[self._input_name] = (1,) + tuple(input_shape)
        try:
            _, out_shapes, _ = internals.infer_shape_partial(**shapes)
        except mx.base.MXNetError as err:
            raise DataError(
                f"Inputs of shape {tuple(input_shape)} do not fit this model: "
                f"{str(err).strip().splitlines()[0]}"
                + (f" The model expects input shape {self._input_shape}."
                   if self._input_shape else " Pass samples of the shape the model was "
                                              "trained on.")
            ) from err
        return dict(zip(internals.list_outputs(), out_shapes))

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
        input_shape = _shape_tuple(input_shape) or self._input_shape
        shapes = self._infer_output_shapes(input_shape) if input_shape else {}
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

    def describe(self, input_shape=None):
        """Return the layer table as aligned text (what ``repurpose layers`` prints)."""
        table = self.layer_table(input_shape)
        rows = [("#", "layer", "operator", "output shape", "params")]
        for i, layer in enumerate(table):
            shape = "x".join(str(s) for s in layer.output_shape[1:]) if layer.output_shape \
                else "?"
            rows.append((str(i), layer.name, layer.op, shape, f"{layer.n_params:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        lines = ["  ".join(cell.rjust(w) if c in (0, 4) else cell.ljust(w)
                           for c, (cell, w) in enumerate(zip(row, widths))).rstrip()
                 for row in rows]
        total = sum(layer.n_params for layer in table)
        lines.append(f"{len(table)} layers, {total:,} parameters, input shape "
                     f"{self._input_shape or input_shape or 'unknown'}")
        return "\n".join(lines)

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
            return SourceModel._with_deferred(
                self._deferred, symbol,
                {k: v for k, v in arg_params.items() if k in args},
                {k: v for k, v in aux_params.items() if k in auxs},
                input_name=self._input_name,
                metadata=self._metadata if metadata is None else metadata,
                frozen_layers=tuple(n for n in frozen if n in names))
        return SourceModel(
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

    # ------------------------------------------------------------------ extraction
    def extract(self, data, layers, batch_size=64, ctx="cpu", pool=None, out=None,
                overwrite=False, progress=True, precision="float32", calib_data=None,
                n_calib_batches=4):
        """Extract features of ``data`` at ``layers``, one forward pass per batch.

        See :func:`repurpose.features.extract_features`, which this calls, for the
        parameters.

        Returns
        -------
        dict of str -> ndarray of shape (n_samples, n_features)
            One float32 array per layer (memory-mapped ``.npy`` files when ``out`` is set).
        """
        # The engine lives in repurpose.features (data flows source -> features); this
        # method is the convenience entry point the public API asks for.
        from ..features import extract_features

        return extract_features(self, data, layers, batch_size=batch_size, ctx=ctx, pool=pool,
                                out=out, overwrite=overwrite, progress=progress,
                                precision=precision, calib_data=calib_data,
                                n_calib_batches=n_calib_batches)

    # ------------------------------------------------------------------ loaders
    @classmethod
    def from_files(cls, symbol_file, params_file, input_shape=None, input_name="data",
                   metadata=None):
        """Load a network from a ``-symbol.json`` file and a ``.params`` file.

        Old symbol files (MXNet < 1.0) are upgraded by MXNet on load. Params files may
        use ``arg:``/``aux:`` prefixes (``Module`` checkpoints) or bare names
        (``HybridBlock.export``, ``save_parameters``).

        Parameters
        ----------
        symbol_file, params_file : str or path-like
        input_shape : tuple of int, default=None
            Shape of one sample, e.g. ``(3, 224, 224)``.
        input_name : str, default='data'
        metadata : dict, default=None

        Raises
        ------
        FileNotFoundError
            A file is missing; the message lists similar files in its folder.
        ModelFileError
            A file is not a symbol / params file, or the two do not fit together.
        """
        symbol_file, params_file = os.fspath(symbol_file), os.fspath(params_file)
        for path, kind in ((symbol_file, "symbol"), (params_file, "params")):
            _check_exists(path, kind)
        try:
            symbol = mx.sym.load(symbol_file)
        except (mx.base.MXNetError, ValueError) as err:
            raise ModelFileError(f"{symbol_file!r} is not a readable MXNet symbol file: "
                                 f"{str(err).strip().splitlines()[0]}") from err
        try:
            saved = mx.nd.load(params_file)
        except mx.base.MXNetError as err:
            raise ModelFileError(f"{params_file!r} is not a readable MXNet params file "
                                 f"(truncated or of another format?): "
                                 f"{str(err).strip().splitlines()[0]}") from err
        if not isinstance(saved, dict):
            raise ModelFileError(f"{params_file!r} holds a list of {len(saved)} unnamed arrays; "
                                 f"expected named parameters (from export or save_checkpoint).")
        aux_names = set(symbol.list_auxiliary_states())
        arg_params, aux_params = {}, {}
        for key, value in saved.items():
            kind, sep, name = key.partition(":")
            if not sep:
                name, kind = key, "aux" if key in aux_names else "arg"
            (aux_params if kind == "aux" else arg_params)[name] = value
        try:
            return cls(symbol, arg_params, aux_params, input_name=input_name,
                       input_shape=input_shape, metadata=metadata)
        except ModelFileError as err:
            raise ModelFileError(f"{params_file!r} does not fit {symbol_file!r}: {err}") from err

    @classmethod
    def from_checkpoint(cls, prefix, epoch=0, input_shape=None, input_name="data"):
        """Load ``{prefix}-symbol.json`` and ``{prefix}-{epoch:04d}.params``.

        A ``{prefix}-repurpose.json`` written by :meth:`save_checkpoint` beside them restores
        the input shape, metadata and frozen layers.

        Parameters
        ----------
        prefix : str or path-like
        epoch : int, default=0
        input_shape : tuple of int, default=None
            Overrides the saved input shape.
        input_name : str, default='data'

        Returns
        -------
        SourceModel
        """
        prefix = os.fspath(prefix)
        sidecar = {}
        sidecar_path = f"{prefix}-repurpose.json"
        if os.path.exists(sidecar_path):
            sidecar = _read_sidecar(sidecar_path)
        model = cls.from_files(
            f"{prefix}-symbol.json", f"{prefix}-{int(epoch):04d}.params",
            input_shape=input_shape or sidecar.get("input_shape"),
            input_name=sidecar.get("input_name", input_name),
            metadata=sidecar.get("metadata"),
        )
        if sidecar.get("frozen_layers"):
            model = model.freeze(sidecar["frozen_layers"])
        if sidecar.get("sha256") and sidecar["sha256"] != model.sha256:
            warnings.warn(f"{sidecar_path} was written for another version of this model "
                          f"(SHA-256 differs); its metadata may be stale.", UserWarning,
                          stacklevel=2)
        return model

    @classmethod
    def from_gluon(cls, block, input_shape, metadata=None):
        """Take a Gluon ``HybridBlock`` with initialised parameters.

        Parameters
        ----------
        block : mx.gluon.HybridBlock
        input_shape : tuple of int
            Shape of one sample without the batch axis.
        metadata : dict, default=None

        Raises
        ------
        TypeError
            If ``block`` is not a ``HybridBlock`` (a plain ``Block`` has no graph).
        InvalidParameterError
            If its parameters are not initialised.
        """
        if not isinstance(block, mx.gluon.HybridBlock):
            raise InvalidParameterError(
                f"from_gluon needs a mx.gluon.HybridBlock (which has a graph), got "
                f"{type(block).__name__}. Rewrite it with HybridBlock/HybridSequential, or "
                f"export it to symbol+params files and use from_checkpoint.")
        input_shape = _shape_tuple(input_shape)
        params = block.collect_params()
        try:
            # Finishes deferred initialisation and checks the input shape once.
            block(mx.nd.zeros((1,) + input_shape, ctx=_block_context(params)))
        except mx.gluon.parameter.DeferredInitializationError as err:
            raise InvalidParameterError("The block's parameters are not initialised; call "
                                        "block.initialize() first.") from err
        except mx.base.MXNetError as err:  # a subclass of RuntimeError: caught first
            raise DataError(f"The block does not accept inputs of shape {input_shape}: "
                            f"{str(err).strip().splitlines()[0]}") from err
        except RuntimeError as err:
            if "has not been initialized" in str(err):
                raise InvalidParameterError("The block's parameters are not initialised; call "
                                            "block.initialize() or load_parameters() "
                                            "first.") from err
            raise
        out = block(mx.sym.var("data"))
        symbol = mx.sym.Group(list(out)) if isinstance(out, (list, tuple)) else out
        aux_names = set(symbol.list_auxiliary_states())
        arg_names = set(symbol.list_arguments())
        arg_params, aux_params = {}, {}
        for name, param in params.items():
            value = param.data(param.list_ctx()[0]).copyto(mx.cpu())
            if name in aux_names:
                aux_params[name] = value
            elif name in arg_names:
                arg_params[name] = value
        return cls(symbol, arg_params, aux_params, input_name="data", input_shape=input_shape,
                   metadata=metadata)

    @classmethod
    def from_zoo(cls, name, weights=None, pretrained=True, root=None, random_state=None,
                 download=False):
        """Load a model-zoo network by name (see :func:`repurpose.list_models`).

        Parameters
        ----------
        name : str
            A model of the project's own zoo (e.g. ``'digits_cnn'``) or a Gluon / gluoncv
            model-zoo architecture (e.g. ``'resnet18_v1'``).
        weights : str or path-like, default=None
            A ``.params`` file to use instead of the default location.
        pretrained : bool, default=True
            For Gluon / gluoncv names: load weights (from ``weights`` or the default
            location). False gives random weights seeded by ``random_state``.
        root : str, default=None
            Folder holding Gluon / gluoncv weights, default ``$MXNET_HOME/models``.
        random_state : int, RandomState or None, default=None
            Seed of the random weights when ``pretrained=False``.
        download : bool, default=False
            For Gluon / gluoncv names: if the weights are not in ``root``, download them
            first from the library's model store (``MXNET_GLUON_REPO`` picks a mirror),
            check their SHA-1 and cache them there, with a progress bar on stderr (see
            :func:`repurpose.zoo.fetch_weights`). False never touches the network. The
            project's own models ship their weights, so it changes nothing for them.

        Raises
        ------
        MissingWeightsError
            If pretrained weights are not on disk and ``download=False``; the message names
            the file.
        DownloadError
            If ``download=True`` and the download fails or its SHA-1 is wrong; the message
            names the URL and the file to place by hand. Nothing is left in ``root``.
        """
        from .. import zoo

        if not pretrained:
            seeding.seed_everything(seeding.derive_seed(random_state))
        entry = zoo.resolve_zoo_model(name, weights=weights, pretrained=pretrained, root=root,
                                      download=download)
        card = dict(entry.get("card") or {})
        card.setdefault("name", name)
        if entry["kind"] == "checkpoint":
            input_shape = card.get("input_shape")
            input_name = card.get("input_name", "data")
            if entry.get("params_file") is None:  # pretrained=False: the architecture only
                symbol = mx.sym.load(entry["symbol_file"])
                arg_params, aux_params = _fresh_params(symbol, input_name, input_shape)
                return cls(symbol, arg_params, aux_params, input_name=input_name,
                           input_shape=input_shape, metadata=card)
            return cls.from_files(entry["symbol_file"], entry["params_file"],
                                  input_shape=input_shape, input_name=input_name,
                                  metadata=card)
        return cls.from_gluon(entry["block"], entry["input_shape"], metadata=card)

    @classmethod
    def from_onnx(cls, path, input_shape=None):
        """Load an ONNX file (needs the ``onnx`` extra: ``pip install 'repurpose[onnx]'``).

        What PyTorch and timm export today comes in: both of ``torch.onnx.export``'s
        exporters (TorchScript and ``dynamo=True``, weights in an external ``.onnx.data``
        file beside the model), opsets 7 to 21, shape arithmetic (folded for the model's
        sample shape), and the operators of CNNs and vision transformers. Layers carry the
        ONNX node names; the graph runs any batch size, also when the file was exported for
        one. See the guide "Bring your own network".

        Parameters
        ----------
        path : str or path-like
        input_shape : tuple of int, default=None
            Shape of one sample, e.g. ``(3, 224, 224)``; needed only when the file leaves
            axes after the batch axis dynamic. Defaults to the file's declared input shape.

        Returns
        -------
        SourceModel

        Raises
        ------
        UnsupportedOperatorError
            For operators or opsets that cannot be converted, naming each operator, node and
            the opset, before any conversion work.
        ModelFileError
            For a file that is not ONNX, an external data file that is damaged, or a graph
            whose sample shape is unknown and not given.
        """
        from ._onnx import import_onnx

        graph = import_onnx(path, input_shape=input_shape)
        metadata = {"name": os.path.splitext(os.path.basename(os.fspath(path)))[0],
                    "format": "onnx", "opset": graph.get("opset"),
                    "producer": graph.get("producer")}
        return cls(graph["symbol"], graph["arg_params"], graph["aux_params"],
                   input_name=graph["input_name"], input_shape=graph["input_shape"],
                   metadata=metadata)

    @classmethod
    def from_spec(cls, spec, epoch=None, input_shape=None, weights=None, download=False):
        """Load a model from one string, as the command line names models.

        Tried in order: an ``.onnx`` file; a ``-symbol.json`` file or a checkpoint prefix
        (``epoch`` defaults to the newest ``.params`` file); a model-zoo name.

        Parameters
        ----------
        spec : str or path-like
        epoch : int, default=None
        input_shape : tuple of int, default=None
        weights : str, default=None
            Weights file for zoo names.
        download : bool, default=False
            For zoo names: download missing weights (see :meth:`from_zoo`).

        Raises
        ------
        FileNotFoundError
            If ``spec`` is neither a file, a checkpoint prefix nor a zoo name.
        InvalidParameterError
            If ``download=True`` and ``spec`` is a file, not a zoo name.
        """
        from .. import zoo

        spec = os.fspath(spec)
        prefix = spec[: -len("-symbol.json")] if spec.endswith("-symbol.json") else spec
        if download and (spec.lower().endswith(".onnx")
                         or os.path.isfile(f"{prefix}-symbol.json")):
            raise InvalidParameterError(
                f"download=True was given for the model file {spec!r}, but only model-zoo "
                f"weights are downloaded. Drop download, or name a zoo model.")
        if spec.lower().endswith(".onnx"):
            return cls.from_onnx(spec, input_shape=input_shape)
        if os.path.isfile(f"{prefix}-symbol.json"):
            if epoch is None:
                epoch = _latest_epoch(prefix)
            return cls.from_checkpoint(prefix, epoch, input_shape=input_shape)
        names = zoo.list_models()
        if spec in names:
            return cls.from_zoo(spec, weights=weights, download=download)
        hint = suggest(spec, names)
        raise FileNotFoundError(
            f"Model {spec!r} is neither an .onnx file, a checkpoint ({spec}-symbol.json) nor a "
            f"model-zoo name. {hint + ' ' if hint else ''}See `repurpose models` for zoo names.")

    # ------------------------------------------------------------------ surgery
    def truncate(self, layer):
        """Return a new model ending at ``layer`` (every layer above it dropped).

        Parameters
        ----------
        layer : str
            A name from :attr:`layer_names`.

        Returns
        -------
        SourceModel
        """
        internals = self._symbol.get_internals()
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
        >>> net = nn.HybridSequential(prefix='')
        >>> net.add(nn.Dense(4, prefix='fc1_'))
        >>> net.initialize()
        >>> model = SourceModel.from_gluon(net, input_shape=(3,))
        >>> new = model.add_layers([{'type': 'dense', 'units': 2, 'name': 'out'}],
        ...                        random_state=0)
        >>> new.layer_names, new.layers[-1].output_shape
        (['fc1_fwd', 'out_fwd'], (1, 2))
        """
        from ._surgery import build_blocks, copy_layers

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
        if self._input_shape is not None:
            return self._stack_blocks(blocks, seed)
        # No input shape: build the graph now from copies (the caller's blocks stay as they
        # are) and record how to make the parameters once the shape is known.
        templates = tuple(copy_layers(layers))
        symbol = self._symbol
        new_names = set()
        for block in build_blocks(copy_layers(templates), self._existing_names()):
            symbol = block(symbol)
            if isinstance(symbol, (list, tuple)):
                raise InvalidParameterError(f"Added block {block.name!r} has several outputs; "
                                            f"add blocks with one output.")
            new_names.update(block.collect_params().keys())
        pending = frozenset(new_names) | self._deferred_names()
        record = _Deferred(pending, self._snapshot(), "add_layers", (templates, seed),
                           uuid.uuid4().hex)
        logger.debug("add_layers without an input shape: %d parameter(s) wait for it",
                     len(pending))
        return SourceModel._with_deferred(record, symbol, self._arg_params, self._aux_params,
                                          input_name=self._input_name,
                                          metadata=self._metadata,
                                          frozen_layers=self._frozen_layers)

    def _existing_names(self):
        """Operator and parameter names a new layer must not reuse (listed layers or not)."""
        return (set(self._op_names) | set(self._arg_params) | set(self._aux_params)
                | self._deferred_names())

    def _deferred_names(self):
        """frozenset of str: the parameters that wait for an input shape (see add_layers)."""
        return self._deferred.names if self._deferred is not None else frozenset()

    def _snapshot(self):
        """This model, as a private object that no extraction completes in place."""
        if self._deferred is None:
            return self  # a model without deferred parameters never changes
        return SourceModel._with_deferred(self._deferred, self._symbol, self._arg_params,
                                          self._aux_params, input_name=self._input_name,
                                          metadata=self._metadata,
                                          frozen_layers=self._frozen_layers)

    def _stack_blocks(self, blocks, seed):
        """``add_layers`` on a model with an input shape: initialise ``blocks`` (Xavier
        weights, in order, from ``seed``) on the model's output and add them to the graph."""
        seeding.seed_everything(seed)
        x = mx.nd.zeros((1,) + self._input_shape)
        gluon_net = self.to_gluon()
        y = gluon_net(x)
        symbol = self._symbol
        arg_params, aux_params = dict(self._arg_params), dict(self._aux_params)
        for block in blocks:
            block.initialize(mx.init.Xavier())
            y = block(y)
            symbol = block(symbol)
            if isinstance(symbol, (list, tuple)):
                raise InvalidParameterError(f"Added block {block.name!r} has several outputs; "
                                            f"add blocks with one output.")
            aux_names = set(symbol.list_auxiliary_states())
            for name, param in block.collect_params().items():
                value = param.data().copyto(mx.cpu())
                (aux_params if name in aux_names else arg_params)[name] = value
        return self._derived(symbol, arg_params, aux_params)

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
        from ._surgery import build_blocks, copy_layers

        record = self._deferred
        shaped = record.base.with_input_shape(input_shape)
        if record.op == "add_layers":
            templates, seed = record.args
            done = shaped._stack_blocks(
                build_blocks(copy_layers(templates), shaped._existing_names()), seed)
        else:
            targets, seed, init = record.args
            done = shaped._reinitialize_seeded(targets, seed, init)
        values = dict(done._arg_params)
        values.update(done._aux_params)
        symbol = done._symbol
        outputs = self._symbol.list_outputs()
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
        shape = _shape_tuple(input_shape)
        if shape is None:
            raise InvalidParameterError(
                "with_input_shape needs the shape of one sample without the batch axis, e.g. "
                "(3, 224, 224); got None.")
        if self._input_shape is not None:
            if shape == self._input_shape:
                return self
            raise DataError(
                f"Samples of shape {shape} do not fit this model: it expects input shape "
                f"{self._input_shape} (per sample, batch axis excluded), given when it was "
                f"loaded or taken from the first batch it saw. Resize or reshape the data to "
                f"{self._input_shape}, or load the model again with input_shape={shape}.")
        self._infer_output_shapes(shape)  # DataError naming MXNet's complaint if it does not fit
        symbol = self._symbol
        arg_params, aux_params = dict(self._arg_params), dict(self._aux_params)
        if self._deferred is not None:
            symbol, values = self._replay_deferred(shape)
            aux_names = set(symbol.list_auxiliary_states())
            for name, value in values.items():
                (aux_params if name in aux_names else arg_params)[name] = value
        return SourceModel(symbol, arg_params, aux_params, input_name=self._input_name,
                           input_shape=shape, metadata=self._metadata,
                           frozen_layers=self._frozen_layers)

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
                self._symbol = done._symbol  # the same graph (see _replay_deferred)
                self._arg_params, self._aux_params = done._arg_params, done._aux_params
                self._input_shape = done._input_shape
                self._label_names = done._label_names
                self._deferred = None
                self._cache.clear()  # the SHA-256 now hashes the parameters
                logger.info("Sized the added layers for input shape %s (the first batch)",
                            self._input_shape)
        return self

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
        return self._derived(self._symbol, frozen_layers=tuple(self._frozen_layers) + tuple(chosen))

    def unfreeze(self, layers=None):
        """Return a new model with ``layers`` (default: all) no longer frozen."""
        if layers is None:
            return self._derived(self._symbol, frozen_layers=())
        check_layer_names(list(layers), self.layer_names, "SourceModel.layer_names")
        keep = tuple(n for n in self._frozen_layers if n not in set(layers))
        return self._derived(self._symbol, frozen_layers=keep)

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
        owned = layer_params(self._symbol, [self._input_name] + self._label_names)
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
        record = _Deferred(self._deferred.names | frozenset(targets), self._snapshot(),
                           "reinitialize", (tuple(targets), seed, init), uuid.uuid4().hex)
        return SourceModel._with_deferred(
            record, self._symbol,
            {k: v for k, v in self._arg_params.items() if k not in record.names},
            {k: v for k, v in self._aux_params.items() if k not in record.names},
            input_name=self._input_name, metadata=self._metadata,
            frozen_layers=self._frozen_layers)

    def _reinitialize_seeded(self, targets, seed, init):
        """``reinitialize`` of the parameters ``targets`` (in order) from the int ``seed``."""
        seeding.seed_everything(seed)
        arg_params, aux_params = dict(self._arg_params), dict(self._aux_params)
        for name in targets:
            store = aux_params if name in aux_params else arg_params
            store[name] = _initial_value(name, store[name].shape, init)
        return self._derived(self._symbol, arg_params, aux_params)

    # ------------------------------------------------------------------ saving
    def save_checkpoint(self, prefix, epoch=0, overwrite=False):
        """Save as ``{prefix}-symbol.json`` + ``{prefix}-{epoch:04d}.params`` (+ sidecar).

        :meth:`from_checkpoint` loads the files back into an identical model. The params
        use the ``arg:``/``aux:`` layout of ``mx.model.save_checkpoint``; the sidecar
        ``{prefix}-repurpose.json`` keeps the input shape, metadata and frozen layers.

        Parameters
        ----------
        prefix : str or path-like
        epoch : int, default=0
        overwrite : bool, default=False
            Replace existing files; otherwise existing files raise ``FileExistsError``
            before anything is written.

        Returns
        -------
        list of str
            The files written.

        Raises
        ------
        FileExistsError
            If a file exists and ``overwrite`` is False.
        InvalidParameterError
            If layers added without an input shape still wait for one (see
            :meth:`add_layers`): call :meth:`with_input_shape` first. A model without input
            shape and without such layers saves ``input_shape: null``.
        """
        # Parameters that wait for an input shape cannot be written (and a checkpoint without
        # them would not load): a clear error before any file is touched.
        self._check_complete("save_checkpoint")
        prefix = os.fspath(prefix)
        paths = [f"{prefix}-symbol.json", f"{prefix}-{int(epoch):04d}.params",
                 f"{prefix}-repurpose.json"]
        check_writable(paths, overwrite)
        params = {f"arg:{k}": v for k, v in self._arg_params.items()}
        params.update({f"aux:{k}": v for k, v in self._aux_params.items()})
        sidecar = {
            "format": SIDECAR_FORMAT, "format_version": SIDECAR_VERSION,
            "input_name": self._input_name,
            "input_shape": list(self._input_shape) if self._input_shape else None,
            "metadata": self._metadata, "frozen_layers": list(self._frozen_layers),
            "sha256": self.sha256,
        }
        atomic_write(paths[0], lambda tmp: self._symbol.save(tmp), overwrite)
        atomic_write(paths[1], lambda tmp: mx.nd.save(tmp, params), overwrite)
        atomic_write(paths[2], lambda tmp: _write_json(tmp, sidecar), overwrite)
        return paths


def _initial_value(name, shape, init=None):
    """A freshly initialised parameter array, by MXNet's naming rules (weights: ``init``,
    default Xavier; biases and betas 0; gammas 1) plus batch-norm statistics (mean 0,
    variance 1), for which MXNet's initialisers have no rule."""
    fresh = mx.nd.zeros(shape)
    if name.endswith(("running_var", "moving_var")):
        fresh[:] = 1
    elif not name.endswith(("running_mean", "moving_mean")):
        (init or mx.init.Xavier())(mx.init.InitDesc(name), fresh)
    return fresh


def _fresh_params(symbol, input_name, input_shape):
    """Random parameters for every variable of ``symbol`` (the caller seeds mx.random)."""
    if input_shape is None:
        raise InvalidParameterError("Random weights need the model's input_shape to size them.")
    arg_shapes, _, aux_shapes = symbol.infer_shape(**{input_name: (1,) + tuple(input_shape)})
    args = {n: _initial_value(n, s) for n, s in zip(symbol.list_arguments(), arg_shapes)
            if n != input_name and not n.endswith("label")}
    auxs = {n: _initial_value(n, s) for n, s in zip(symbol.list_auxiliary_states(), aux_shapes)}
    return args, auxs


def _block_context(params):
    """The context a Gluon block's parameters live on (CPU when it has none)."""
    for param in params.values():
        try:
            return param.list_ctx()[0]
        except RuntimeError:
            break
    return mx.cpu()


def _latest_epoch(prefix):
    folder = os.path.dirname(os.path.abspath(prefix))
    base = os.path.basename(prefix) + "-"
    epochs = sorted(int(f[len(base):-len(".params")]) for f in os.listdir(folder)
                    if f.startswith(base) and f.endswith(".params")
                    and f[len(base):-len(".params")].isdigit())
    if not epochs:
        raise FileNotFoundError(f"No {prefix}-NNNN.params file beside {prefix}-symbol.json.")
    return epochs[-1]


def _write_json(path, obj):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=2, sort_keys=True)


def _read_sidecar(path):
    try:
        with open(path, encoding="utf-8") as handle:
            sidecar = json.load(handle)
    except (OSError, ValueError) as err:
        raise ModelFileError(f"{path!r} is not valid JSON: {err}") from err
    version = sidecar.get("format_version")
    if sidecar.get("format") != SIDECAR_FORMAT or not isinstance(version, int):
        raise ModelFileError(f"{path!r} is not a repurpose checkpoint sidecar (format "
                             f"{sidecar.get('format')!r}).")
    if version > SIDECAR_VERSION:
        raise ModelFileError(
            f"{path!r} has format_version {version}, newer than this repurpose reads "
            f"({SIDECAR_VERSION}). Upgrade repurpose to load it.")
    return sidecar


def _check_exists(path, kind):
    if os.path.isfile(path):
        return
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"The {kind} file {path!r} does not exist (nor does its folder "
                                f"{folder!r}).")
    wanted = ".json" if kind == "symbol" else ".params"
    nearby = sorted(f for f in os.listdir(folder) if f.endswith(wanted))
    hint = suggest(os.path.basename(path), nearby)
    raise FileNotFoundError(
        f"The {kind} file {path!r} does not exist. "
        + (hint + " " if hint else "")
        + (f"{folder!r} holds {brief_list(nearby)}." if nearby
           else f"{folder!r} holds no {wanted} files.")
    )
