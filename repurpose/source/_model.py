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
import warnings

import mxnet as mx
import numpy as np

from .. import seeding
from .._validation import brief_list, check_layer_names, suggest
from ..context import resolve_contexts
from ..exceptions import DataError, InvalidParameterError, ModelFileError
from ..persist import atomic_write, check_writable, file_sha256, register_source_class
from ._graph import Layer, graph_nodes, layer_outputs, layer_params

logger = logging.getLogger(__name__)

__all__ = ["SourceModel"]

SIDECAR_FORMAT = "repurpose.source"
SIDECAR_VERSION = 1


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
        unknown (it is then taken from the data at extraction time).
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
        self._check_graph()
        frozen = tuple(frozen_layers)
        check_layer_names(frozen, self.layer_names, "SourceModel.layer_names")
        self._frozen_layers = tuple(n for n in self.layer_names if n in set(frozen))

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
        missing = [a for a in arguments if a != self._input_name and a not in self._arg_params
                   and not a.endswith("label")]
        missing_aux = [a for a in aux_names if a not in self._aux_params]
        if missing or missing_aux:
            names = missing + missing_aux
            have = sorted(self._arg_params) + sorted(self._aux_params)
            raise ModelFileError(
                f"The parameters lack {len(names)} variable(s) the graph needs: "
                f"{brief_list(names)}. The parameters hold {len(have)}: {brief_list(have)}. "
                f"Pass the params file saved with this symbol file."
            )
        self._label_names = [a for a in arguments if a != self._input_name
                             and a not in self._arg_params]
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
        """list of str: every layer (operator node), from input to output."""
        if "layer_names" not in self._cache:
            self._cache["layer_names"] = [n["name"] for n in graph_nodes(self._symbol)
                                          if n["op"] != "null"]
        return list(self._cache["layer_names"])

    @property
    def output_layers(self):
        """list of str: the layers whose outputs are the model's outputs."""
        nodes = graph_nodes(self._symbol)
        heads = json.loads(self._symbol.tojson())["heads"]
        return [nodes[h[0]]["name"] for h in heads]

    @property
    def layers(self):
        """list of Layer: name, operator, output shape and parameter count of every layer."""
        return self.layer_table()

    def layer_table(self, input_shape=None):
        """Describe every layer; output shapes need ``input_shape`` or :attr:`input_shape`.

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
        table = []
        for node in graph_nodes(self._symbol):
            if node["op"] == "null":
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
        """str: SHA-256 of the graph JSON and every parameter (name, dtype, shape, bytes)."""
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
        if layer in outputs:
            if not outputs[layer]:
                raise InvalidParameterError(f"Layer {layer!r} has no output to extract.")
            return outputs[layer][0]
        all_outputs = [o for outs in outputs.values() for o in outs]
        if layer in all_outputs:
            return layer
        check_layer_names([layer], self.layer_names, "SourceModel.layer_names")

    # ------------------------------------------------------------------ derived networks
    def _derived(self, symbol, arg_params=None, aux_params=None, frozen_layers=None,
                 metadata=None):
        """A new model over ``symbol``, keeping only the parameters it uses."""
        arg_params = self._arg_params if arg_params is None else arg_params
        aux_params = self._aux_params if aux_params is None else aux_params
        args = set(symbol.list_arguments())
        auxs = set(symbol.list_auxiliary_states())
        names = {n["name"] for n in graph_nodes(symbol)}
        frozen = self._frozen_layers if frozen_layers is None else frozen_layers
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
    def from_zoo(cls, name, weights=None, pretrained=True, root=None, random_state=None):
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

        Raises
        ------
        MissingWeightsError
            If pretrained weights are not on disk; the message names the file. repurpose
            never downloads.
        """
        from .. import zoo

        if not pretrained:
            seeding.seed_everything(seeding.derive_seed(random_state))
        entry = zoo.resolve_zoo_model(name, weights=weights, pretrained=pretrained, root=root)
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

        Files written by PyTorch's exporter work too (initializers are added to the graph
        inputs before MXNet's importer runs).

        Parameters
        ----------
        path : str or path-like
        input_shape : tuple of int, default=None
            Shape of one sample; defaults to the file's declared input shape.

        Raises
        ------
        UnsupportedOperatorError
            For operators or opsets MXNet cannot import, naming the operator and node.
        """
        from ._onnx import import_onnx

        graph = import_onnx(path)
        metadata = {"name": os.path.splitext(os.path.basename(os.fspath(path)))[0],
                    "format": "onnx", "opset": graph.get("opset"),
                    "producer": graph.get("producer")}
        return cls(graph["symbol"], graph["arg_params"], graph["aux_params"],
                   input_name=graph["input_name"],
                   input_shape=input_shape or graph.get("input_shape"), metadata=metadata)

    @classmethod
    def from_spec(cls, spec, epoch=None, input_shape=None, weights=None):
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

        Raises
        ------
        FileNotFoundError
            If ``spec`` is neither a file, a checkpoint prefix nor a zoo name.
        """
        from .. import zoo

        spec = os.fspath(spec)
        if spec.lower().endswith(".onnx"):
            return cls.from_onnx(spec, input_shape=input_shape)
        prefix = spec[: -len("-symbol.json")] if spec.endswith("-symbol.json") else spec
        if os.path.isfile(f"{prefix}-symbol.json"):
            if epoch is None:
                epoch = _latest_epoch(prefix)
            return cls.from_checkpoint(prefix, epoch, input_shape=input_shape)
        names = zoo.list_models()
        if spec in names:
            return cls.from_zoo(spec, weights=weights)
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
            For an unknown spec, a name clash with existing layers, or an unknown input shape.
        """
        from ._surgery import build_blocks

        if len(self.output_layers) != 1:
            raise InvalidParameterError(
                f"add_layers needs a model with one output; this one has "
                f"{len(self.output_layers)} ({brief_list(self.output_layers)}). Call "
                f"truncate(layer) first.")
        if self._input_shape is None:
            raise InvalidParameterError(
                "add_layers needs the model's input_shape to size the new layers; load the "
                "model with input_shape=(...).")
        existing = set(self.layer_names) | set(self._arg_params) | set(self._aux_params)
        blocks = build_blocks(layers, existing)
        seeding.seed_everything(seeding.derive_seed(random_state))
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

    def freeze(self, layers=None, up_to=None):
        """Return a new model whose named layers are frozen for fine-tuning.

        Parameters
        ----------
        layers : sequence of str, default=None
            Layers to freeze (added to those already frozen).
        up_to : str, default=None
            Also freeze every layer from the input up to and including this one.

        Returns
        -------
        SourceModel
        """
        names = self.layer_names
        chosen = list(layers or [])
        check_layer_names(chosen, names, "SourceModel.layer_names")
        if up_to is not None:
            check_layer_names([up_to], names, "SourceModel.layer_names")
            chosen += names[: names.index(up_to) + 1]
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
        seeding.seed_everything(seeding.derive_seed(random_state))
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
        """
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
