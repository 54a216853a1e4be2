"""Registry of zoo model names: the project's own checkpoints plus the Gluon and gluoncv
image-classification networks, with their model cards and local weight files.

Three families of names:

``'repurpose'``
    This project's models: one folder per model under ``model_zoo/`` holding
    ``model_card.json``, ``<name>-symbol.json`` and ``<name>-0000.params`` and trained by a
    seeded script in ``model_zoo/scripts/``. Installed as the package ``repurpose.model_zoo``;
    in an un-installed source tree the ``model_zoo/`` folder beside ``repurpose/`` is used.
``'gluon'``
    MXNet's own ``mxnet.gluon.model_zoo.vision`` networks (ImageNet-1k classifiers).
``'gluoncv'``
    gluoncv's image-classification networks (ImageNet-1k and CIFAR-10); gluoncv is imported
    only when one of its names is needed.

A bare name is looked up in that order, so ``'resnet50_v1'`` (in both Gluon and gluoncv, with
different weights) means Gluon's network; ``'gluoncv:resnet50_v1'`` picks gluoncv's. Nothing is
ever downloaded: pretrained weights must already be on disk, where the library itself would
have cached them, or be passed as ``weights=PATH``.
"""
import copy
import functools
import importlib.resources
import json
import logging
import os
import pathlib

import mxnet as mx

from ._validation import brief_list, suggest
from .exceptions import InvalidParameterError, MissingWeightsError, ModelFileError
from .persist import file_sha256

logger = logging.getLogger(__name__)

__all__ = ["list_models", "get_model_card", "resolve_zoo_model", "SOURCES"]

#: The families of zoo names, in lookup order.
SOURCES = ("repurpose", "gluon", "gluoncv")

#: The newest model-card ``format_version`` this module reads.
CARD_FORMAT_VERSION = 1

#: Keys every project model card must have.
REQUIRED_CARD_KEYS = (
    "format_version", "name", "description", "input_shape", "input_name", "mean", "std",
    "source_classes", "class_names", "classifier_layer", "feature_layer",
    "source_test_accuracy", "n_train", "n_test", "seed", "epochs", "command",
    "mxnet_version", "files", "sha256",
)

# Normalisation of RGB images scaled to [0, 1], as gluoncv's transforms apply it.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# gluoncv's CIFAR-10 training scripts (scripts/classification/cifar/train_cifar10.py).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)

# Modules under gluoncv.model_zoo whose builders are image-classification networks. gluoncv's
# registry (gluoncv.model_zoo.model_zoo._models, ~330 names) mixes classification with
# detection, segmentation, pose, tracking, depth and video networks; we keep a name when its
# builder function is defined in one of these modules (``builder.__module__``), which sorts
# them by task without a list of names to keep up to date. Left out on purpose:
# ``quantized`` (int8 SymbolBlocks built from gluoncv's bundled JSON plus fp32 weights, most of
# them detection/segmentation) and ``pruned_resnet`` (its weight files use their own key layout
# that only gluoncv's ``prune_gluon_block`` reads, not ``load_parameters``).
_GLUONCV_CLASSIFICATION_MODULES = frozenset({
    "alexnet", "cifarresnet", "cifarresnext", "cifarwideresnet", "densenet", "dla",
    "googlenet", "hrnet", "inception", "mobilenet", "mobilenetv3", "nasnet",
    "residual_attentionnet", "resnest", "resnet", "resnetv1b", "resnext", "senet",
    "shufflenet", "squeezenet", "vgg", "xception", "yolo.darknet",
})

# Extra keyword arguments gluoncv's own builders pass to load_parameters for these names.
_GLUONCV_LOAD_KWARGS = {"dla34": {"ignore_extra": True}}

# Input sizes other than 224 (gluoncv's rule in
# gluoncv/auto/estimators/image_classification/image_classification.py: inception/googlenet
# 299, resnest101 256, resnest200 320, resnest269 416), plus Xception's 299 and NASNet-A
# Large's 331 from their papers; CIFAR networks take 32x32 images (checked by name prefix).
_GLUONCV_INPUT_SIZES = {"resnest101": 256, "resnest200": 320, "resnest269": 416,
                        "xception": 299, "xception71": 299, "nasnet_6_4032": 331}


# --------------------------------------------------------------------------------------------
# Project models (model_zoo/)
# --------------------------------------------------------------------------------------------

def _zoo_dir():
    """Return the folder of the project's model zoo as a :class:`pathlib.Path`.

    Installed, it is the package ``repurpose.model_zoo``; in a source tree that is not
    installed, the ``model_zoo/`` folder next to the ``repurpose/`` package folder.
    """
    try:
        files = importlib.resources.files(f"{__package__}.model_zoo")
    except ImportError:
        files = None
    if isinstance(files, pathlib.Path) and files.is_dir():
        return files
    source_tree = pathlib.Path(__file__).resolve().parent.parent / "model_zoo"
    if source_tree.is_dir():
        return source_tree
    raise ModelFileError(
        f"The model zoo folder was not found: neither the package {__package__}.model_zoo nor "
        f"{source_tree} exists. Reinstall repurpose (pip install .) or run from a full "
        f"checkout of the repository.")


def _card_paths():
    """Return ``{name: path of model_card.json}`` for every project model, sorted by name."""
    root = _zoo_dir()
    return {p.parent.name: p for p in sorted(root.glob("*/model_card.json"))}


def _read_card(path):
    """Read and check one project model card; raise :class:`ModelFileError` if unusable."""
    try:
        with open(path, encoding="utf-8") as f:
            card = json.load(f)
    except (OSError, ValueError) as err:
        raise ModelFileError(
            f"Model card {path} cannot be read as JSON ({err}). Restore it from the "
            f"repository or retrain the model with its script in model_zoo/scripts/."
        ) from err
    if not isinstance(card, dict):
        raise ModelFileError(f"Model card {path} holds a {type(card).__name__}, expected a "
                             f"JSON object. Restore it from the repository.")
    missing = [k for k in REQUIRED_CARD_KEYS if k not in card]
    if missing:
        raise ModelFileError(
            f"Model card {path} lacks the keys {brief_list(missing, 12)}. Retrain the model "
            f"with its script in model_zoo/scripts/ to rewrite the card.")
    version = card["format_version"]
    if not isinstance(version, int) or version > CARD_FORMAT_VERSION:
        raise ModelFileError(
            f"Model card {path} has format_version {version!r}, but this version of repurpose "
            f"reads format_version <= {CARD_FORMAT_VERSION}. Upgrade repurpose.")
    if card["name"] != path.parent.name:
        raise ModelFileError(
            f"Model card {path} names the model {card['name']!r}, but its folder is "
            f"{path.parent.name!r}. Rename one so that they agree.")
    card["family"] = "repurpose"
    return card


# --------------------------------------------------------------------------------------------
# Gluon and gluoncv registries
# --------------------------------------------------------------------------------------------

def _gluon_store():
    """MXNet's model store: ``{name: sha1}`` of every Gluon vision network.

    ``mxnet.gluon.model_zoo.vision.get_model`` keeps its name -> builder table inside the
    function; the model store's table has exactly the same 34 names (each has published
    weights), so it serves as the list of names.
    """
    from mxnet.gluon.model_zoo import model_store

    return model_store._model_sha1


@functools.lru_cache(maxsize=None)
def _gluoncv_registry():
    """Return ``({classification name: builder}, {weights name: sha1})`` from gluoncv.

    Imports gluoncv on first use (it installs no logging handlers and leaves the warning
    filters alone; its import-time DeprecationWarnings come from ``distutils`` version checks).
    """
    from gluoncv.model_zoo import model_store
    from gluoncv.model_zoo import model_zoo as gcv_zoo

    prefix = "gluoncv.model_zoo."
    builders = {}
    for name, builder in gcv_zoo._models.items():
        module = getattr(builder, "__module__", "")
        if not module.startswith(prefix):
            continue
        module = module[len(prefix):]
        if module not in _GLUONCV_CLASSIFICATION_MODULES:
            continue
        if module == "hrnet" and not name.endswith("_c"):
            continue  # hrnet_*_s are HRNet segmentation networks; *_c classify.
        builders[name] = builder
    return builders, dict(model_store._model_sha1)


def _gluoncv_weights_key(name):
    """Name under which gluoncv's model store publishes the weights of network ``name``."""
    if name.startswith("hrnet_") and name.endswith("_c"):
        return name[:-2] + "_cls"  # hrnet.py loads 'hrnet_%s_%s' % (model, 'cls')
    return name


def _mxnet_reason(err):
    """One sentence from an MXNet load error: the last line of a C++ trace, without advice
    about ``load_parameters`` switches that :func:`resolve_zoo_model` does not offer."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    text = lines[-1] if isinstance(err, mx.base.MXNetError) and lines else " ".join(lines)
    for advice in ("Set allow_missing=True to ignore missing parameters.",
                   "Set ignore_extra=True to ignore."):
        text = text.replace(advice, "")
    text = text.strip()
    return text if text.endswith(".") else text + "."


def _gluon_default_root():
    """Gluon's cache folder: ``$MXNET_HOME/models``, else ``~/.mxnet/models``."""
    return os.path.join(os.path.expanduser(mx.base.data_dir()), "models")


def _gluoncv_default_root():
    """gluoncv's cache folder: ``$MXNET_HOME/models`` if set, else ``~/.mxnet/models``."""
    home = os.environ.get("MXNET_HOME", os.path.join("~", ".mxnet"))
    return os.path.expanduser(os.path.join(home, "models"))


def _library_card(name, family):
    """The minimal model card of a Gluon or gluoncv network."""
    if family == "gluon":
        sha1 = _gluon_store().get(name)
        weights_key = name
        size = 299 if name == "inceptionv3" else 224
    else:
        _, store = _gluoncv_registry()
        weights_key = _gluoncv_weights_key(name)
        sha1 = store.get(weights_key)
        if name.startswith("cifar_"):
            size = 32
        elif "inception" in name or "googlenet" in name:
            size = 299
        else:
            size = _GLUONCV_INPUT_SIZES.get(name, 224)
    cifar = name.startswith("cifar_")
    dataset, article = ("CIFAR-10", "a") if cifar else ("ImageNet-1k", "an")
    library = "mxnet.gluon.model_zoo.vision" if family == "gluon" else "gluoncv.model_zoo"
    return {
        "format_version": CARD_FORMAT_VERSION,
        "name": name,
        "family": family,
        "description": f"{name} from {library}, {article} {dataset} image classifier.",
        "input_shape": [3, size, size],
        "input_name": "data",
        "preprocessing": "RGB scaled to [0, 1], then (x - mean) / std per channel.",
        "mean": list(CIFAR_MEAN if cifar else IMAGENET_MEAN),
        "std": list(CIFAR_STD if cifar else IMAGENET_STD),
        "n_classes": 10 if cifar else 1000,
        "source_dataset": dataset,
        "weights_file": f"{weights_key}-{sha1[:8]}.params" if sha1 else None,
        "weights_sha1": sha1,
    }


# --------------------------------------------------------------------------------------------
# Name lookup
# --------------------------------------------------------------------------------------------

def _check_source(source):
    if source is not None and source not in SOURCES:
        hint = suggest(source, SOURCES) if isinstance(source, str) else ""
        raise InvalidParameterError(
            f"source must be None or one of {brief_list(SOURCES)}, got {source!r}."
            + (f" {hint}" if hint else ""))


def _names(source):
    if source == "repurpose":
        return list(_card_paths())
    if source == "gluon":
        return sorted(_gluon_store())
    if source == "gluoncv":
        return sorted(_gluoncv_registry()[0])
    seen, names = set(), []
    for family in SOURCES:
        for name in _names(family):
            if name not in seen:
                seen.add(name)
                names.append(name)
    return names


def _lookup(name):
    """Return ``(family, bare name)`` for a zoo name, or raise with close matches.

    ``name`` may be qualified as ``'<family>:<name>'`` to pick a family explicitly.
    """
    if not isinstance(name, str):
        raise InvalidParameterError(
            f"A zoo model name must be a str, got {name!r} of type {type(name).__name__}. "
            f"See repurpose.list_models() for the names.")
    family, sep, bare = name.partition(":")
    if sep:
        _check_source(family)
        families = (family,)
    else:
        families, bare = SOURCES, name
    for fam in families:
        if bare in _names(fam):
            return fam, bare
    known = _names(families[0] if sep else None)
    hint = suggest(bare, known)
    where = f"list_models(source={families[0]!r})" if sep else "list_models()"
    raise InvalidParameterError(
        f"Unknown zoo model {name!r}. {hint + ' ' if hint else ''}"
        f"({where}: {len(known)} names, e.g. {brief_list(known, 6)})")


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------

def list_models(source=None) -> list:
    """List the names of the zoo models.

    Parameters
    ----------
    source : {None, 'repurpose', 'gluon', 'gluoncv'}, default=None
        Which family to list. None lists all of them: the project's models first, then the
        Gluon vision networks, then the gluoncv classification networks that Gluon lacks.
        Listing ``'gluoncv'`` (or None) imports gluoncv.

    Returns
    -------
    list of str
        Names accepted by :func:`get_model_card` and :func:`resolve_zoo_model`; each family's
        names are sorted.

    Raises
    ------
    InvalidParameterError
        If ``source`` is not one of the choices.

    See Also
    --------
    get_model_card : Metadata of one model.

    Examples
    --------
    >>> 'digits_cnn' in list_models(source='repurpose')
    True
    >>> 'resnet18_v1' in list_models(source='gluon')
    True
    """
    _check_source(source)
    return _names(source)


def get_model_card(name) -> dict:
    """Return the model card of a zoo model.

    Parameters
    ----------
    name : str
        A name from :func:`list_models`, optionally qualified as ``'gluoncv:resnet50_v1'``
        to pick a family when two have the name.

    Returns
    -------
    dict
        A new dict (safe to modify). Every card has ``format_version``, ``name``, ``family``
        (``'repurpose'``, ``'gluon'`` or ``'gluoncv'``), ``description``, ``input_shape``
        (channels, height, width), ``input_name``, ``mean`` and ``std``. Project cards add
        ``source_classes``, ``class_names``, ``classifier_layer``, ``feature_layer``,
        ``source_test_accuracy``, ``n_train``, ``n_test``, ``seed``, ``epochs``, ``command``,
        ``mxnet_version``, ``files`` and ``sha256``; Gluon/gluoncv cards add ``n_classes``,
        ``source_dataset``, ``weights_file`` (the file name the library caches, or None when
        it publishes no weights for this name) and ``weights_sha1``.

    Raises
    ------
    InvalidParameterError
        If ``name`` is unknown; the message lists close matches.
    ModelFileError
        If a project card is unreadable, incomplete or of a newer format.

    Examples
    --------
    >>> card = get_model_card('digits_cnn')
    >>> card['input_shape'], card['feature_layer']
    ([1, 8, 8], 'fc1_relu_fwd')
    >>> get_model_card('resnet18_v1')['weights_file']
    'resnet18_v1-a0666292.params'
    """
    family, bare = _lookup(name)
    if family == "repurpose":
        return _read_card(_card_paths()[bare])
    return copy.deepcopy(_library_card(bare, family))


def resolve_zoo_model(name, weights=None, pretrained=True, root=None) -> dict:
    """Find a zoo model's files, or build its network, without downloading anything.

    Parameters
    ----------
    name : str
        A name from :func:`list_models`, optionally qualified as ``'gluoncv:resnet50_v1'``.
    weights : str or path-like, default=None
        A params file to use instead of the default one: for a project model it replaces the
        checkpoint's ``.params`` file (its SHA-256 is then not checked); for a Gluon/gluoncv
        network it is loaded with ``load_parameters``. Requires ``pretrained=True``.
    pretrained : bool, default=True
        Gluon/gluoncv: load weights (from ``weights`` or the library's cache folder) if True;
        otherwise initialise with ``mx.init.Xavier()`` (seed ``mx.random`` first for
        reproducible weights). Project models: if False, ``params_file`` is None and the
        caller initialises the symbol's parameters.
    root : str or path-like, default=None
        Folder holding the library's ``.params`` files, as the ``root`` argument of Gluon's
        and gluoncv's ``get_model``. None means ``$MXNET_HOME/models``, else
        ``~/.mxnet/models``. Ignored for project models.

    Returns
    -------
    dict
        For a project model: ``{'kind': 'checkpoint', 'symbol_file': str, 'params_file': str
        or None, 'input_shape': tuple, 'card': dict}``. For a Gluon/gluoncv network:
        ``{'kind': 'gluon', 'block': HybridBlock, 'params_file': str or None, 'input_shape':
        tuple, 'card': dict}``; the block is on ``mx.cpu()``, not hybridized, and its
        parameters are initialised (one forward pass of zeros of ``input_shape`` resolves the
        deferred shapes when ``pretrained=False``). It is built inside a fresh
        ``mx.name.NameManager``, so its prefix (e.g. ``resnetv10_``) and hence its layer names
        are the same on every call.

    Raises
    ------
    InvalidParameterError
        If ``name`` is unknown (the message lists close matches) or an argument has a wrong
        type or combination.
    MissingWeightsError
        If a weights file is not on disk, or the library publishes no weights for ``name``.
    ModelFileError
        If a project file's SHA-256 differs from its card, or a params file does not fit the
        network's architecture (the MXNet error is chained).

    See Also
    --------
    get_model_card : The card returned under ``'card'``.

    Examples
    --------
    >>> found = resolve_zoo_model('digits_cnn')
    >>> found['kind'], found['input_shape']
    ('checkpoint', (1, 8, 8))
    """
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise InvalidParameterError(
            f"weights must be a path to a .params file or None, got {weights!r} of type "
            f"{type(weights).__name__}.")
    if not isinstance(pretrained, bool):
        raise InvalidParameterError(
            f"pretrained must be True or False, got {pretrained!r} of type "
            f"{type(pretrained).__name__}.")
    if weights is not None and not pretrained:
        raise InvalidParameterError(
            f"weights={os.fspath(weights)!r} was given with pretrained=False. Pass "
            f"pretrained=True to load that file, or drop weights to initialise randomly.")
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise InvalidParameterError(
            f"root must be a folder path or None, got {root!r} of type {type(root).__name__}.")
    family, bare = _lookup(name)
    if weights is not None:
        weights = os.path.abspath(os.fspath(weights))
        if not os.path.isfile(weights):
            raise MissingWeightsError(
                f"Weights file {weights} (weights= for {name!r}) does not exist. Pass the path "
                f"of an existing .params file.")
    if family == "repurpose":
        return _resolve_checkpoint(bare, weights, pretrained)
    return _resolve_library(bare, family, weights, pretrained, root)


def _resolve_checkpoint(name, weights, pretrained):
    path = _card_paths()[name]
    card = _read_card(path)
    folder = path.parent
    symbol_file = folder / card["files"]["symbol"]
    params_file = folder / card["files"]["params"]
    to_check = [("symbol", symbol_file)]
    if pretrained and weights is None:
        to_check.append(("params", params_file))
    for key, file in to_check:
        if not file.is_file():
            error = MissingWeightsError if key == "params" else ModelFileError
            raise error(
                f"The {key} file of zoo model {name!r} is missing: {file}. Restore it from the "
                f"repository, or retrain with `{card['command']}`.")
        actual, expected = file_sha256(file), card["sha256"][key]
        if actual != expected:
            raise ModelFileError(
                f"{file} has SHA-256 {actual}, but its model card {path} records {expected}. "
                f"The file was changed or corrupted: restore it from the repository, or "
                f"retrain with `{card['command']}` to rewrite files and card together.")
    if not pretrained:
        params = None
    else:
        params = weights if weights is not None else str(params_file)
    logger.debug("Zoo model %r: symbol %s, params %s", name, symbol_file, params)
    return {
        "kind": "checkpoint",
        "symbol_file": str(symbol_file),
        "params_file": params,
        "input_shape": tuple(card["input_shape"]),
        "card": card,
    }


def _resolve_library(name, family, weights, pretrained, root):
    card = _library_card(name, family)
    params_file = None
    if pretrained:
        if weights is not None:
            params_file = weights
        else:
            folder = os.path.expanduser(os.fspath(root)) if root is not None else (
                _gluon_default_root() if family == "gluon" else _gluoncv_default_root())
            if card["weights_file"] is None:
                raise MissingWeightsError(
                    f"{family} publishes no pretrained weights for {name!r}. Pass "
                    f"weights=PATH to a .params file for this architecture, or "
                    f"pretrained=False for random initialisation.")
            params_file = os.path.abspath(os.path.join(folder, card["weights_file"]))
            if not os.path.isfile(params_file):
                raise MissingWeightsError(
                    f"Weights for {name!r} not found at {params_file}. Put the file there or "
                    f"pass weights=PATH; repurpose never downloads.")

    with mx.name.NameManager():
        if family == "gluon":
            from mxnet.gluon.model_zoo import vision

            block = vision.get_model(name, pretrained=False)
        else:
            block = _gluoncv_registry()[0][name](pretrained=False)
    input_shape = tuple(card["input_shape"])
    if params_file is not None:
        load_kwargs = _GLUONCV_LOAD_KWARGS.get(name, {}) if family == "gluoncv" else {}
        try:
            block.load_parameters(params_file, ctx=mx.cpu(), **load_kwargs)
        except (AssertionError, mx.base.MXNetError, ValueError, KeyError) as err:
            raise ModelFileError(
                f"Weights file {params_file} cannot be loaded into {family} network {name!r}: "
                f"{_mxnet_reason(err)} Pass a .params file saved from {name!r} itself "
                f"(save_parameters) or the library's published file.") from err
        logger.info("Loaded %s weights for %r from %s", family, name, params_file)
    else:
        block.initialize(mx.init.Xavier(), ctx=mx.cpu())
        block(mx.nd.zeros((1,) + input_shape, ctx=mx.cpu()))  # resolve deferred shapes
        logger.info("Built %s network %r with random (Xavier) weights", family, name)
    return {
        "kind": "gluon",
        "block": block,
        "params_file": params_file,
        "input_shape": input_shape,
        "card": card,
    }
