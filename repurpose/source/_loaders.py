"""Loaders of :class:`~repurpose.source.SourceModel`: MXNet symbol + params files, checkpoints,
Gluon blocks, zoo names and ONNX files.

Every loader turns its input into the same three things (a symbol graph, argument parameters
and auxiliary states) and calls the class with them. The functions here are ``SourceModel``
class methods, bound in its class body (``cls`` is the class).
"""
import os
import re
import warnings

import mxnet as mx

from .. import seeding, zoo
from .._validation import brief_list, suggest
from ..exceptions import InvalidParameterError, ModelFileError
from ._graph import shape_tuple
from ._onnx import import_onnx
from ._sidecar import read_sidecar
from ._surgery import initial_value

__all__ = ["from_files", "from_checkpoint", "from_gluon", "from_zoo", "from_onnx",
           "check_exists", "latest_epoch"]


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

    Returns
    -------
    SourceModel

    Raises
    ------
    FileNotFoundError
        A file is missing; the message lists similar files in its folder.
    ModelFileError
        A file is not a symbol / params file, or the two do not fit together.
    """
    symbol_file, params_file = os.fspath(symbol_file), os.fspath(params_file)
    for path, kind in ((symbol_file, "symbol"), (params_file, "params")):
        check_exists(path, kind)
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
        sidecar = read_sidecar(sidecar_path)
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


def from_gluon(cls, block, input_shape, metadata=None):
    """Take a Gluon ``HybridBlock`` with initialised parameters.

    Parameters
    ----------
    block : mx.gluon.HybridBlock
    input_shape : tuple of int
        Shape of one sample without the batch axis.
    metadata : dict, default=None

    Returns
    -------
    SourceModel

    Raises
    ------
    TypeError
        If ``block`` is not a ``HybridBlock`` (a plain ``Block`` has no graph).
    InvalidParameterError
        If its parameters are not initialised, or the block does not accept samples of
        ``input_shape``: checked by shape inference before any forward pass, the message
        names the layer that fails and what to pass instead (the shape without the batch
        axis, with the channel axis, or a larger one for a kernel the input is smaller
        than). MXNet's error is the ``__cause__``.

    Examples
    --------
    >>> from mxnet.gluon import nn
    >>> from repurpose import SourceModel
    >>> net = nn.HybridSequential()
    >>> net.add(nn.Conv2D(4, 3), nn.Flatten(), nn.Dense(2))
    >>> net.initialize()
    >>> SourceModel.from_gluon(net, (1, 8, 8)).input_shape
    (1, 8, 8)
    >>> SourceModel.from_gluon(net, (1, 1, 8, 8))
    Traceback (most recent call last):
    ...
    repurpose.exceptions.InvalidParameterError: from_gluon: ... input_shape=(1, 8, 8).
    """
    if not isinstance(block, mx.gluon.HybridBlock):
        raise InvalidParameterError(
            f"from_gluon needs a mx.gluon.HybridBlock (which has a graph), got "
            f"{type(block).__name__}. Rewrite it with HybridBlock/HybridSequential, or "
            f"export it to symbol+params files and use from_checkpoint.")
    input_shape = shape_tuple(input_shape)
    params = block.collect_params()
    out = block(mx.sym.var("data"))
    symbol = mx.sym.Group(list(out)) if isinstance(out, (list, tuple)) else out
    # Shape inference first: a failed forward would leave the block half initialised.
    _check_block_input(symbol, params, input_shape)
    try:
        # Finishes deferred initialisation.
        block(mx.nd.zeros((1,) + input_shape, ctx=_block_context(params)))
    except mx.gluon.parameter.DeferredInitializationError as err:
        raise InvalidParameterError("The block's parameters are not initialised; call "
                                    "block.initialize() first.") from err
    except mx.base.MXNetError as err:  # a subclass of RuntimeError: caught first
        raise InvalidParameterError(_shape_problem(symbol, {}, input_shape, err)) from err
    except RuntimeError as err:
        if "has not been initialized" in str(err):
            raise InvalidParameterError("The block's parameters are not initialised; call "
                                        "block.initialize() or load_parameters() "
                                        "first.") from err
        raise
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

    Returns
    -------
    SourceModel

    Raises
    ------
    MissingWeightsError
        If pretrained weights are not on disk and ``download=False``; the message names
        the file.
    DownloadError
        If ``download=True`` and the download fails or its SHA-1 is wrong; the message
        names the URL and the file to place by hand. Nothing is left in ``root``.
    """
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


def from_onnx(cls, path, input_shape=None):
    """Load an ONNX file (needs the ``onnx`` extra: from a checkout,
    ``pip install -c constraints.txt '.[onnx]'``).

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
    graph = import_onnx(path, input_shape=input_shape)
    metadata = {"name": os.path.splitext(os.path.basename(os.fspath(path)))[0],
                "format": "onnx", "opset": graph.get("opset"),
                "producer": graph.get("producer")}
    return cls(graph["symbol"], graph["arg_params"], graph["aux_params"],
               input_name=graph["input_name"], input_shape=graph["input_shape"],
               metadata=metadata)


# ---------------------------------------------------------------------------- helpers
def _known_shapes(symbol, params):
    """Shapes of the block's parameters that are known (deferred ones have a 0)."""
    names = set(symbol.list_arguments()) | set(symbol.list_auxiliary_states())
    return {name: tuple(p.shape) for name, p in params.items()
            if name in names and p.shape and 0 not in p.shape}


def _accepts(symbol, shapes, sample_shape):
    try:
        symbol.infer_shape_partial(**dict(shapes, data=(1,) + tuple(sample_shape)))
    except mx.base.MXNetError:
        return False
    return True


def _check_block_input(symbol, params, input_shape):
    """Raise InvalidParameterError, in our words, if ``symbol`` refuses samples of
    ``input_shape`` (MXNet's shape inference, chained as the cause)."""
    shapes = _known_shapes(symbol, params)
    try:
        symbol.infer_shape_partial(**dict(shapes, data=(1,) + input_shape))
    except mx.base.MXNetError as err:
        raise InvalidParameterError(_shape_problem(symbol, shapes, input_shape, err)) from err


def _mxnet_reason(err):
    """``(layer or None, reason)`` from an MXNet error: its last message line without the
    time stamp, source file and the checked expression."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = next((line for line in reversed(lines) if line.startswith("MXNetError")),
                lines[-1] if lines else type(err).__name__)
    text = re.sub(r"^MXNetError:\s*", "", text)
    layer = re.match(r"Error in operator (\S+?):\s*", text)
    if layer:
        text = text[layer.end():]
    text = re.sub(r"^\[[\d:]+\]\s+\S+:\d+:\s*", "", text)
    if text.startswith("Check failed:") and ": " in text[len("Check failed:"):]:
        text = text.rsplit(": ", 1)[1].strip() or text
    mismatch = re.match(r"Shape inconsistent, Provided = (\S+), inferred shape=(\S+)", text)
    if mismatch:
        text = (f"its parameter of shape {mismatch.group(1)} would need shape "
                f"{mismatch.group(2)} for this input")
    return (layer.group(1) if layer else None), text.rstrip(".")


def _shape_problem(symbol, shapes, input_shape, err):
    """The message for a block that refuses samples of ``input_shape``: what failed where,
    and the shape to pass where one nearby fits."""
    layer, reason = _mxnet_reason(err)
    message = (f"from_gluon: the block does not accept inputs of shape {input_shape} "
               f"(MXNet tried a batch of one, {(1,) + input_shape})"
               + (f"; layer {layer!r} fails" if layer else "") + f": {reason}.")
    if len(input_shape) > 1 and input_shape[0] == 1 and _accepts(symbol, shapes,
                                                                  input_shape[1:]):
        return (f"{message} input_shape is the shape of ONE sample, without the batch axis, "
                f"and this one looks like it includes it. Pass "
                f"input_shape={input_shape[1:]}.")
    if _accepts(symbol, shapes, (1,) + input_shape):
        return (f"{message} The block takes a channel axis first: pass "
                f"input_shape={(1,) + input_shape} (for grayscale images).")
    for channels in (1, 3):
        other = (channels,) + input_shape[1:]
        if len(input_shape) == 3 and other != input_shape and _accepts(symbol, shapes, other):
            return (f"{message} The block was made for {channels} channel"
                    f"{'s' if channels > 1 else ''}: pass input_shape={other}"
                    f"{' (grayscale)' if channels == 1 else ' (RGB)'}.")
    if "kernel size" in reason:
        return (f"{message} The input is smaller than a convolution or pooling window of "
                f"the block: pass a larger input_shape (the size the block was made for) "
                f"and resize the images to it.")
    return (f"{message} Pass the shape of one sample the block was made for, channels "
            f"first and without the batch axis, e.g. (3, 224, 224).")


def _fresh_params(symbol, input_name, input_shape):
    """Random parameters for every variable of ``symbol`` (the caller seeds mx.random)."""
    if input_shape is None:
        raise InvalidParameterError("Random weights need the model's input_shape to size them.")
    arg_shapes, _, aux_shapes = symbol.infer_shape(**{input_name: (1,) + tuple(input_shape)})
    args = {n: initial_value(n, s) for n, s in zip(symbol.list_arguments(), arg_shapes)
            if n != input_name and not n.endswith("label")}
    auxs = {n: initial_value(n, s) for n, s in zip(symbol.list_auxiliary_states(), aux_shapes)}
    return args, auxs


def _block_context(params):
    """The context a Gluon block's parameters live on (CPU when it has none)."""
    for param in params.values():
        try:
            return param.list_ctx()[0]
        except RuntimeError:
            break
    return mx.cpu()


def latest_epoch(prefix):
    """The newest epoch of the ``{prefix}-NNNN.params`` files.

    Raises
    ------
    FileNotFoundError
        If there is none.
    """
    folder = os.path.dirname(os.path.abspath(prefix))
    base = os.path.basename(prefix) + "-"
    epochs = sorted(int(f[len(base):-len(".params")]) for f in os.listdir(folder)
                    if f.startswith(base) and f.endswith(".params")
                    and f[len(base):-len(".params")].isdigit())
    if not epochs:
        raise FileNotFoundError(f"No {prefix}-NNNN.params file beside {prefix}-symbol.json.")
    return epochs[-1]


def check_exists(path, kind):
    """Raise FileNotFoundError naming similar files of the folder if ``path`` is no file.

    Parameters
    ----------
    path : str
    kind : {'symbol', 'params'}
    """
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
