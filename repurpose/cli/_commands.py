"""Subcommands: ``models``, ``fetch``, ``layers``, ``extract``, ``demo``; ``finetune`` and
``predict`` (``_finetune``), ``tune`` (``_tune``), ``launch`` (``_launch``)."""
import json
import os

import numpy as np

from .. import zoo
from ..data import BUILTIN_DATASETS, ImageFolder, load_digits_images
from ..exceptions import InvalidParameterError, MissingWeightsError
from ..features import extract_features, extract_to_store
from ..source import SourceModel
from ._finetune import add_finetune_commands
from ._launch import add_launch_command
from ._tune import add_tune_command

__all__ = ["add_commands"]


def _shape(text):
    try:
        return tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise InvalidParameterError(
            f"--input-shape must look like 3,224,224; got {text!r}.") from None


def _add_model_args(parser, model_option=False):
    help_text = ("zoo name (see `repurpose models`), checkpoint prefix, -symbol.json file or "
                 ".onnx file")
    if model_option:  # `extract MODEL ...` or `extract --model MODEL ...`
        parser.add_argument("model", nargs="?", default=None, help=help_text)
        parser.add_argument("--model", dest="model_option", default=None, metavar="MODEL",
                            help="the model, as an option (same as the positional MODEL)")
    else:
        parser.add_argument("model", help=help_text)
    parser.add_argument("--epoch", type=int, default=None,
                        help="checkpoint epoch (default: the newest)")
    parser.add_argument("--input-shape", type=_shape, default=None,
                        help="shape of one sample, e.g. 3,224,224")
    parser.add_argument("--weights", default=None, help="weights file for zoo names")
    parser.add_argument("--random-weights", action="store_true",
                        help="Gluon/gluoncv zoo names: random weights (seed 0) instead of "
                             "pretrained ones, e.g. to list layers or benchmark")


def _load_model(args):
    if args.random_weights:
        return SourceModel.from_zoo(args.model, pretrained=False, random_state=0)
    return SourceModel.from_spec(args.model, epoch=args.epoch, input_shape=args.input_shape,
                                 weights=args.weights)


def _run_models(args):
    for name in zoo.list_models(source=args.source):
        print(name)


def _run_fetch(args):
    names = list(dict.fromkeys(args.names))
    # Every name is checked before anything is downloaded: unknown names and names without
    # published weights are usage errors (exit 2).
    cards = [zoo.get_model_card(name) for name in names]
    unpublished = [name for name, card in zip(names, cards)
                   if card["family"] != "repurpose" and card["weights_file"] is None]
    if unpublished:
        raise MissingWeightsError(
            f"No pretrained weights are published for {', '.join(map(repr, unpublished))}, so "
            f"there is nothing to fetch. Drop {'it' if len(unpublished) == 1 else 'them'}; "
            f"use weights=PATH (source.weights in a job) or --random-weights instead.")
    for name in names:
        # A DownloadError is a failure of the run: main() reports it and exits 1.
        found = zoo.fetch_weights(name, root=args.root, progress=not args.no_progress)
        if found["url"] is None:
            note = "ships with repurpose; nothing to download"
        elif found["downloaded"]:
            note = f"downloaded from {found['url']}"
        else:
            note = "already there"
        print(f"{name}: {found['path']} ({note})")
    return 0


def _run_layers(args):
    model = _load_model(args)
    if args.json:
        print(json.dumps([layer._asdict() for layer in model.layers], indent=2))
    else:
        print(model.describe())


def _load_data(spec):
    if spec in BUILTIN_DATASETS:
        return load_digits_images()[0]
    if spec.endswith(".npy") and os.path.isfile(spec):
        return np.load(spec, mmap_mode="r", allow_pickle=False)
    raise FileNotFoundError(
        f"--data {spec!r} is neither a .npy file, an image folder nor a built-in data set "
        f"({', '.join(BUILTIN_DATASETS)}).")


def _model_from_option(args):
    if args.model_option is not None:
        if args.model is not None and args.model != args.model_option:
            raise InvalidParameterError(
                f"Two models given: {args.model!r} and --model {args.model_option!r}. Give "
                f"one.")
        args.model = args.model_option
    if args.model is None:
        raise InvalidParameterError("No model given: pass MODEL or --model MODEL (a zoo name, "
                                    "checkpoint prefix, -symbol.json or .onnx file).")


def _run_extract(args):
    _model_from_option(args)
    store = args.store or args.scheduler is not None or args.shard_size is not None
    if store and args.precision != "float32":
        raise InvalidParameterError(
            f"--precision {args.precision} cannot be used with a sharded store (--store, "
            f"--scheduler, --shard-size): int8 calibration would differ between shards. Use "
            f"float32, or extract without --store.")
    model = _load_model(args)
    layers = [l.strip() for l in args.layers.split(",") if l.strip()]
    if os.path.isdir(args.data):
        mean = std = None
        if args.normalize == "imagenet":
            from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD

            mean, std = IMAGENET_MEAN, IMAGENET_STD
        data = ImageFolder(args.data, resize=args.resize, crop=args.crop, mean=mean, std=std,
                           grayscale=args.grayscale)
    elif store and args.data.endswith(".npy") and os.path.isfile(args.data):
        data = args.data  # read by each task where it runs, not shipped
    else:
        data = _load_data(args.data)
    if store:
        result = extract_to_store(
            model, data, layers, args.out, client=args.scheduler,
            shard_size=args.shard_size or 1024, batch_size=args.batch_size, pool=args.pool,
            ctx=args.ctx, overwrite=args.overwrite, progress=not args.no_progress)
        for layer in result.layers:
            print(f"{layer}\t{result[layer].shape[0]} x {result.dims[layer]}")
        print(f"feature store written to {args.out} ({result.n_shards} shards)")
        return
    features = extract_features(model, data, layers, batch_size=args.batch_size, ctx=args.ctx,
                                pool=args.pool, out=args.out, overwrite=args.overwrite,
                                progress=not args.no_progress, precision=args.precision)
    for layer, arr in features.items():
        print(f"{layer}\t{arr.shape[0]} x {arr.shape[1]}")
    print(f"features written to {args.out}")


def _run_demo(args):
    from ..demo import format_table, run_demo

    report = run_demo(out=args.out, n_per_class=args.n_per_class, random_state=args.seed,
                      overwrite=args.overwrite, plots=not args.no_plots)
    task = report["task"]
    print(f"Source: {task['source_model']}; target: {task['target']}, "
          f"{task['n_per_class']} labels per class ({task['n_train']} train / "
          f"{task['n_test']} test images)")
    print(f"Features of {', '.join(task['layers'])} extracted once in {task['extract_s']:.2f} s, "
          f"shared by every head")
    print(format_table(report["results"]))
    if args.out:
        print(f"report written to {args.out}")


def add_commands(commands):
    """Register the subcommands on ``commands`` (an argparse subparsers object)."""
    p = commands.add_parser("demo", help="repurpose the zoo network for a new task with "
                                         "every head; print and write a report")
    p.add_argument("--out", default=None, help="report folder (results.json, results.md, "
                                               "reliability.png)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--n-per-class", type=int, default=10, help="labels per target class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(run=_run_demo)

    p = commands.add_parser("models", help="list model-zoo names")
    p.add_argument("--source", choices=("repurpose", "gluon", "gluoncv"), default=None)
    p.set_defaults(run=_run_models)

    p = commands.add_parser(
        "fetch", help="download Gluon/gluoncv zoo weights into the cache folder (SHA-1 "
                      "checked; MXNET_GLUON_REPO picks a mirror) and print where they are")
    p.add_argument("names", nargs="+", metavar="NAME",
                   help="zoo names (see `repurpose models`); the project's own models ship "
                        "their weights, so they need no download")
    p.add_argument("--root", default=None, metavar="DIR",
                   help="cache folder (default: $MXNET_HOME/models, else ~/.mxnet/models)")
    p.add_argument("--no-progress", action="store_true", help="no download progress bar")
    p.set_defaults(run=_run_fetch)

    p = commands.add_parser("layers", help="print the layer table of a model")
    _add_model_args(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=_run_layers)

    p = commands.add_parser("extract", help="extract features to a folder of .npy files, or "
                                            "to a sharded, resumable store (on Dask with "
                                            "--scheduler)")
    _add_model_args(p, model_option=True)
    p.add_argument("--data", required=True,
                   help="a .npy file (n, c, h, w), an image folder (one sub-folder per class), "
                        "or 'digits' (scikit-learn's digits as 1x8x8 images)")
    p.add_argument("--layers", required=True, help="comma-separated layer names")
    p.add_argument("--out", required=True,
                   help="output folder (must not exist; with --store an existing store of "
                        "the same command is resumed)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--store", action="store_true",
                   help="write a sharded, resumable feature store (one .npy per shard and "
                        "layer, manifest with checksums); implied by --scheduler and "
                        "--shard-size")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="extract on a Dask cluster: its scheduler address, e.g. "
                        "tcp://10.0.0.5:8786 (--data and --out must be paths the workers see)")
    p.add_argument("--shard-size", type=int, default=None,
                   help="samples per shard of a store (default 1024)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--ctx", default="cpu", help="'cpu', 'gpu', 'gpu:0,1', ...")
    p.add_argument("--pool", choices=("avg", "max"), default=None,
                   help="global pooling of convolutional maps")
    p.add_argument("--precision", choices=("float32", "int8", "bf16"), default="float32")
    p.add_argument("--resize", type=int, default=None, help="image folders: shorter side")
    p.add_argument("--crop", type=int, default=None, help="image folders: centre crop")
    p.add_argument("--normalize", choices=("none", "imagenet"), default="none",
                   help="image folders: per-channel normalisation")
    p.add_argument("--grayscale", action="store_true", help="image folders: one channel")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_run_extract)

    add_finetune_commands(commands)
    add_tune_command(commands)
    add_launch_command(commands)
