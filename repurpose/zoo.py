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
"""
import copy
import functools
import hashlib
import importlib.resources
import json
import logging
import os
import pathlib
import re
import shutil
import tempfile
import zipfile

import mxnet as mx

from ._progress import tqdm
from ._validation import brief_list, suggest
from .exceptions import DownloadError, InvalidParameterError, MissingWeightsError, ModelFileError
from .persist import file_sha256

logger = logging.getLogger(__name__)

__all__ = ["list_models", "get_model_card", "resolve_zoo_model", "fetch_weights", "SOURCES"]

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

# Seconds to wait for a model store to accept the connection, and for each chunk of data.
_DOWNLOAD_TIMEOUT = (10, 60)

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
        f"{source_tree} exists. Reinstall repurpose-mxnet from its checkout (pip install -c "
        f"constraints.txt .) or run from a full checkout of the repository.")


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
    The SHA-1 table is gluoncv's own dict, not a copy, so its checksums are the ones
    gluoncv's store checks.
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
    return builders, model_store._model_sha1


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
# Downloads from the Gluon and gluoncv model stores
# --------------------------------------------------------------------------------------------

def _model_store(family):
    """The library's model-store module: its ``_url_format``, ``apache_repo_url`` and
    ``_model_sha1`` define where each weights file is published and what its SHA-1 is."""
    if family == "gluon":
        from mxnet.gluon.model_zoo import model_store
    else:
        from gluoncv.model_zoo import model_store
    return model_store


def _weights_folder(family, root):
    """The absolute cache folder for ``family``'s weights: ``root`` or the library's default."""
    if root is not None:
        return os.path.abspath(os.path.expanduser(os.fspath(root)))
    return os.path.abspath(_gluon_default_root() if family == "gluon"
                           else _gluoncv_default_root())


def _weights_url(family, weights_file):
    """URL of the zip archive holding ``weights_file``, as the library's ``get_model_file``
    builds it: ``$MXNET_GLUON_REPO`` (default: the store's ``apache_repo_url``) with a
    trailing slash, then the store's ``_url_format``."""
    store = _model_store(family)
    repo_url = os.environ.get("MXNET_GLUON_REPO", store.apache_repo_url)
    if not repo_url.endswith("/"):
        repo_url += "/"
    return store._url_format.format(repo_url=repo_url,
                                    file_name=weights_file[:-len(".params")])


def _sha1(path):
    """SHA-1 hex digest of a file (what the model stores' ``check_sha1`` compares)."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _network_reason(err):
    """A short cause from a ``requests`` error, e.g. ``'Connection refused'``."""
    import requests

    if isinstance(err, requests.ConnectTimeout):
        return f"no connection within {_DOWNLOAD_TIMEOUT[0]} s"
    if isinstance(err, requests.Timeout):
        return f"no data for {_DOWNLOAD_TIMEOUT[1]} s"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return "the server closed the connection before the end of the file"
    text = str(err)
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return found[-1].strip()
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _mirror_advice():
    """What to say about ``MXNET_GLUON_REPO``: unset it if set, or set it to a mirror."""
    mirror = os.environ.get("MXNET_GLUON_REPO")
    if mirror:
        return (f"The mirror MXNET_GLUON_REPO={mirror} is in use: check that it holds the "
                f"file, or unset the variable to use the library's own repository.")
    return "Setting MXNET_GLUON_REPO to a mirror that holds the file works too."


def _by_hand(url, path):
    """The offline recipe: which URL to fetch elsewhere and where to put what it holds."""
    return (f"To install the file by hand, download {url} where the network allows, unzip "
            f"it and put {os.path.basename(path)} at {path}.")


def _download_weights(name, family, url, path, sha1, progress):
    """Download ``url`` (a zip archive holding one ``.params`` file), check the SHA-1 of the
    file inside and move it to ``path``; on any failure leave nothing behind.

    MXNet's and gluoncv's ``get_model_file`` fall short here, so this reuses their URL scheme
    and SHA-1 table instead of calling them: both print to stdout; MXNet's shows no progress
    bar, retries five times and moves the file into place *before* checking its SHA-1 (a
    corrupt file stays in the cache); gluoncv's downloads and unzips straight into the cache
    folder (an interrupted download leaves a partial ``.zip`` or ``.params``). Here
    everything is written into a temporary folder beside the target, which is removed
    whatever happens; only a verified file is moved into place, with ``os.replace`` (atomic
    within one file system, so concurrent downloads of the same file are safe).
    """
    import requests  # MXNet's and gluoncv's own downloaders use requests too

    folder, file_name = os.path.split(path)
    created = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    temp = tempfile.mkdtemp(prefix=f".{file_name}.", suffix=".download", dir=folder)
    where = f"Nothing was written to {folder}."
    completed = False
    try:
        archive = os.path.join(temp, "archive.zip")
        logger.info("Downloading %s weights for %r from %s", family, name, url)
        try:
            response = requests.get(url, stream=True, timeout=_DOWNLOAD_TIMEOUT)
        except requests.RequestException as err:
            raise DownloadError(
                f"Could not download the weights of {name!r} from {url}: "
                f"{_network_reason(err)}. {where} {_by_hand(url, path)} "
                f"{_mirror_advice()}") from err
        with response:
            if response.status_code != 200:
                raise DownloadError(
                    f"Could not download the weights of {name!r}: {url} answered HTTP "
                    f"{response.status_code} ({response.reason}). {where} "
                    f"{_by_hand(url, path)} {_mirror_advice()}")
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            try:
                with open(archive, "wb") as f, tqdm(
                        total=total, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=file_name, disable=not progress, leave=False) as bar:
                    for chunk in response.iter_content(chunk_size=1 << 16):
                        f.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
            except requests.RequestException as err:
                raise DownloadError(
                    f"The download of the weights of {name!r} from {url} broke off after "
                    f"{received:,} of {f'{total:,}' if total else 'an unknown number of'} "
                    f"bytes ({_network_reason(err)}). {where} Try again. "
                    f"{_by_hand(url, path)}") from err
            # urllib3 2 raises on a short body itself (above); urllib3 1 did not by default.
            if (total is not None and received < total
                    and not response.headers.get("Content-Encoding")):
                raise DownloadError(
                    f"The download of the weights of {name!r} from {url} broke off after "
                    f"{received:,} of {total:,} bytes. {where} Try again. "
                    f"{_by_hand(url, path)}")
        try:
            with zipfile.ZipFile(archive) as zf:
                members = zf.namelist()
                if file_name not in members:
                    raise DownloadError(
                        f"The archive {url} does not hold {file_name} (it holds "
                        f"{brief_list(members, 4)}), so it is not the weights of {name!r}. "
                        f"{where} {_by_hand(url, path)} {_mirror_advice()}")
                extracted = zf.extract(file_name, temp)
        except zipfile.BadZipFile as err:
            raise DownloadError(
                f"What {url} sent ({received:,} bytes) is not a zip archive, so it is not the "
                f"weights of {name!r}: {err}. {where} {_by_hand(url, path)} "
                f"{_mirror_advice()}") from err
        actual = _sha1(extracted)
        if actual != sha1:
            raise DownloadError(
                f"The weights of {name!r} downloaded from {url} have SHA-1 {actual}, but "
                f"{family}'s model store expects {sha1}: the file is damaged or another "
                f"version. It was discarded and nothing was written to {folder}. Try "
                f"again. {_mirror_advice()}")
        os.replace(extracted, path)
        completed = True
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        if created and not completed:
            try:
                os.rmdir(folder)  # the cache folder we made, if still empty
            except OSError:
                pass
    logger.info("Saved %s weights for %r to %s (SHA-1 %s checked)", family, name, path, sha1)


def _fetch_library_weights(name, family, card, root, progress):
    """Return ``(path, downloaded)``: the verified cached file, downloaded if not there."""
    if card["weights_file"] is None:
        raise MissingWeightsError(
            f"{family} publishes no pretrained weights for {name!r}, so there is nothing to "
            f"download. Pass weights=PATH to a .params file for this architecture, or "
            f"pretrained=False for random initialisation.")
    path = os.path.join(_weights_folder(family, root), card["weights_file"])
    if os.path.isfile(path):
        actual = _sha1(path)
        if actual == card["weights_sha1"]:
            logger.info("Weights for %r already at %s", name, path)
            return path, False
        logger.warning("%s has SHA-1 %s, but %s's model store expects %s; downloading it "
                       "again.", path, actual, family, card["weights_sha1"])
    url = _weights_url(family, card["weights_file"])
    _download_weights(name, family, url, path, card["weights_sha1"], progress)
    return path, True


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
