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
different weights) means Gluon's network; ``'gluoncv:resnet50_v1'`` picks gluoncv's.

Nothing is downloaded unless asked: pretrained weights must already be on disk, where the
library itself would have cached them, or be passed as ``weights=PATH``. With
``download=True`` (or :func:`fetch_weights`, ``repurpose fetch NAME``) a missing Gluon /
gluoncv file is fetched from the library's own model store: its URL scheme, its SHA-1 table,
its ``MXNET_GLUON_REPO`` mirror variable and its cache folder. The project's own models ship
their weights inside the package, so for them there is nothing to fetch.

The cards are read in :mod:`._cards`, downloads happen in :mod:`._download`; this module
looks names up, builds the networks and holds the public functions.
"""
import copy
import logging
import os
import pathlib

import mxnet as mx

from .._validation import brief_list, suggest
from ..exceptions import InvalidParameterError, MissingWeightsError, ModelFileError
from ..persist import confined_path, file_sha256
from ._cards import (_card_paths, _gluon_store, _gluoncv_registry, _library_card,
                     _read_card)
# Public constants of repurpose.zoo, kept importable from here.
from ._cards import (CARD_FORMAT_VERSION, CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN,  # noqa: F401
                     IMAGENET_STD, REQUIRED_CARD_KEYS)
from ._download import _fetch_library_weights, _weights_folder, _weights_url

logger = logging.getLogger(__name__)

__all__ = ["list_models", "get_model_card", "resolve_zoo_model", "fetch_weights", "SOURCES"]

#: The families of zoo names, in lookup order.
SOURCES = ("repurpose", "gluon", "gluoncv")


# Extra keyword arguments gluoncv's own builders pass to load_parameters for these names.
_GLUONCV_LOAD_KWARGS = {"dla34": {"ignore_extra": True}}


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


def resolve_zoo_model(name, weights=None, pretrained=True, root=None, download=False,
                      progress=True) -> dict:
    """Find a zoo model's files, or build its network; download weights only when asked.

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
    download : bool, default=False
        Gluon/gluoncv: if the weights file is not in ``root`` (or its SHA-1 differs from
        the library's), download it first, as :func:`fetch_weights` does. False never
        touches the network. Project models ship their weights, so it changes nothing for
        them. Needs ``pretrained=True`` and no ``weights``.
    progress : bool, default=True
        Show a progress bar on stderr while downloading.

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
        If a weights file is not on disk (and ``download=False``), or the library publishes
        no weights for ``name``.
    DownloadError
        With ``download=True``, if the download fails or the file's SHA-1 is wrong; the
        message names the URL and the file to place by hand. Nothing is left in ``root``.
    ModelFileError
        If a project file's SHA-256 differs from its card, or a params file does not fit the
        network's architecture (the MXNet error is chained).

    See Also
    --------
    get_model_card : The card returned under ``'card'``.
    fetch_weights : Download the weights without building the network.

    Examples
    --------
    >>> found = resolve_zoo_model('digits_cnn')
    >>> found['kind'], found['input_shape']
    ('checkpoint', (1, 8, 8))
    """
    # Long for its docstring; the code is the argument checks and one of two resolvers.
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
    _check_download(download, weights, pretrained, progress)
    family, bare = _lookup(name)
    if weights is not None:
        weights = os.path.abspath(os.fspath(weights))
        if not os.path.isfile(weights):
            raise MissingWeightsError(
                f"Weights file {weights} (weights= for {name!r}) does not exist. Pass the path "
                f"of an existing .params file.")
    if family == "repurpose":
        return _resolve_checkpoint(bare, weights, pretrained)
    return _resolve_library(bare, family, weights, pretrained, root, download, progress)


def fetch_weights(name, root=None, progress=True) -> dict:
    """Download a zoo model's pretrained weights into the cache folder, unless already there.

    Gluon and gluoncv weights come from the library's own model store: the URL
    ``$MXNET_GLUON_REPO/gluon/models/<name>-<hash>.zip`` (the library's repository when the
    variable is unset), checked against the library's SHA-1 table and unzipped to
    ``<root>/<name>-<hash>.params``, where :func:`resolve_zoo_model` and the library's own
    ``get_model(pretrained=True)`` look. A file already there with the right SHA-1 is kept;
    one with another SHA-1 is downloaded again. A failed or damaged download leaves nothing
    in ``root``. The project's own models ship their weights inside the package: for them
    nothing is downloaded and the packaged file is returned (after its SHA-256 check).

    Parameters
    ----------
    name : str
        A name from :func:`list_models`, optionally qualified as ``'gluoncv:resnet50_v1'``.
    root : str or path-like, default=None
        Cache folder, as the ``root`` argument of Gluon's and gluoncv's ``get_model``; None
        means ``$MXNET_HOME/models``, else ``~/.mxnet/models``. Created if needed. Ignored
        for project models.
    progress : bool, default=True
        Show a progress bar on stderr while downloading.

    Returns
    -------
    dict
        ``{'name': str, 'family': str, 'path': str, 'url': str or None, 'downloaded':
        bool}``: the absolute path of the weights file, the URL it comes from (None for
        project models), and whether this call downloaded it (False when it was already
        there).

    Raises
    ------
    InvalidParameterError
        If ``name`` is unknown (the message lists close matches) or an argument has a wrong
        type.
    MissingWeightsError
        If the library publishes no weights for ``name``, or a project model's file is
        missing.
    DownloadError
        If the store cannot be reached, answers with an HTTP error, the transfer breaks off,
        or the file's SHA-1 differs from the library's table. The message names the URL and
        the file to place by hand on an offline machine.
    ModelFileError
        If a project model's file differs from its model card.

    See Also
    --------
    resolve_zoo_model : Find the files and build the network (``download=True`` fetches).

    Examples
    --------
    The project's models need no download:

    >>> found = fetch_weights('digits_cnn')
    >>> found['family'], found['downloaded'], found['url']
    ('repurpose', False, None)
    >>> os.path.basename(found['path'])
    'digits_cnn-0000.params'
    """
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise InvalidParameterError(
            f"root must be a folder path or None, got {root!r} of type {type(root).__name__}.")
    _check_bool(progress, "progress")
    family, bare = _lookup(name)
    if family == "repurpose":
        entry = _resolve_checkpoint(bare, None, True)
        return {"name": bare, "family": family, "path": entry["params_file"], "url": None,
                "downloaded": False}
    card = _library_card(bare, family)
    path, downloaded = _fetch_library_weights(bare, family, card, root, progress)
    return {"name": bare, "family": family, "path": path,
            "url": _weights_url(family, card["weights_file"]), "downloaded": downloaded}


def _check_bool(value, name):
    if not isinstance(value, bool):
        raise InvalidParameterError(
            f"{name} must be True or False, got {value!r} of type {type(value).__name__}.")


def _check_download(download, weights, pretrained, progress):
    _check_bool(progress, "progress")
    _check_bool(download, "download")
    if download and weights is not None:
        raise InvalidParameterError(
            f"download=True was given with weights={os.fspath(weights)!r}: there is nothing to "
            f"download when a weights file is passed. Drop one of them.")
    if download and not pretrained:
        raise InvalidParameterError(
            "download=True was given with pretrained=False: random weights need no download. "
            "Drop one of them.")


def _resolve_checkpoint(name, weights, pretrained):
    path = _card_paths()[name]
    card = _read_card(path)
    folder = path.parent
    # The card names its files; like every path read back from a file, they stay in its folder.
    symbol_file, params_file = (
        pathlib.Path(confined_path(folder, card["files"][key], str(path), f"files.{key}"))
        for key in ("symbol", "params"))
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


def _resolve_library(name, family, weights, pretrained, root, download=False, progress=True):
    card = _library_card(name, family)
    params_file = None
    if pretrained:
        if weights is not None:
            params_file = weights
        elif download:
            params_file, _ = _fetch_library_weights(name, family, card, root, progress)
        else:
            folder = _weights_folder(family, root)
            if card["weights_file"] is None:
                raise MissingWeightsError(
                    f"{family} publishes no pretrained weights for {name!r}. Pass "
                    f"weights=PATH to a .params file for this architecture, or "
                    f"pretrained=False for random initialisation.")
            params_file = os.path.abspath(os.path.join(folder, card["weights_file"]))
            if not os.path.isfile(params_file):
                raise MissingWeightsError(
                    f"Weights for {name!r} not found at {params_file}. Download them with "
                    f"from_zoo({name!r}, download=True) or `repurpose fetch {name}`, put the "
                    f"file there, or pass weights=PATH.")

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
