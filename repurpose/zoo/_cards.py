"""Model cards of the zoo: the project's own (``model_zoo/<name>/model_card.json``, read and
checked) and the minimal ones of the Gluon and gluoncv networks (built from the libraries'
registries and model stores, gluoncv imported only when one of its names is needed)."""
import functools
import importlib.resources
import json
import pathlib

from .._validation import brief_list
from ..exceptions import ModelFileError
from ..persist import FileFormat

#: The package that holds this one (``repurpose``); the zoo is ``repurpose.model_zoo``.
_PARENT_PACKAGE = __package__.rpartition(".")[0]

#: The newest model-card ``format_version`` this module reads.
CARD_FORMAT_VERSION = 1
CARD_FORMAT = FileFormat("repurpose.model_card", CARD_FORMAT_VERSION, what="model card")

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
        files = importlib.resources.files(f"{_PARENT_PACKAGE}.model_zoo")
    except ImportError:
        files = None
    if isinstance(files, pathlib.Path) and files.is_dir():
        return files
    source_tree = pathlib.Path(__file__).resolve().parents[2] / "model_zoo"
    if source_tree.is_dir():
        return source_tree
    raise ModelFileError(
        f"The model zoo folder was not found: neither the package {_PARENT_PACKAGE}.model_zoo nor "
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
    # Cards carry no "format" key (they sit in the zoo's own folders): the version is read
    # as every other file's is.
    CARD_FORMAT.read(dict(card, format=CARD_FORMAT.name), f"Model card {path}")
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
