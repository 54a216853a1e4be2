"""Commands ``models``, ``fetch``, ``layers``, ``extract`` and ``demo``.

Heavy modules (MXNet, scikit-learn, the library) are imported inside each ``_run_*``
function, so that building the parser, ``--help`` and usage errors stay fast.
"""
import json
import os

from ..exceptions import InvalidParameterError, MissingWeightsError

__all__ = ["add_commands", "add_model_args", "load_model", "add_image_args", "add_job_args"]


def _shape(text):
    try:
        return tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise InvalidParameterError(
            f"--input-shape must look like 3,224,224; got {text!r}.") from None


def add_model_args(parser, model_option=False):
    help_text = ("zoo:NAME (see `repurpose models`), checkpoint:PREFIX, onnx:FILE, or a bare "
                 "name or path where it is unambiguous; a saved model's folder for layers")
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


def load_model(args):
    """The SourceModel the model arguments name (a saved model's folder: its network)."""
    from ..source import SourceModel

    if os.path.isdir(args.model) and os.path.isfile(os.path.join(args.model,
                                                                  "manifest.json")):
        return _saved_network(args.model)
    if args.random_weights:
        return SourceModel.from_zoo(args.model, pretrained=False, random_state=0)
    return SourceModel.from_spec(args.model, epoch=args.epoch, input_shape=args.input_shape,
                                 weights=args.weights)


def _saved_network(folder):
    """The network inside a folder saved by ``repurpose.load``'s counterpart ``save``."""
    from ..persist import load
    from ..source import SourceModel

    estimator = load(folder)
    for attr in ("network_", "source"):
        network = getattr(estimator, attr, None)
        if isinstance(network, SourceModel):
            return network
    raise InvalidParameterError(f"{folder!r} holds a saved {type(estimator).__name__}, which "
                                f"has no network to list; name a model or a saved "
                                f"repurposer's folder.")


def _run_models(args):
    from .. import zoo

    for name in zoo.list_models(source=args.source):
        print(name)


def _run_fetch(args):
    from .. import zoo

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
        found = zoo.fetch_weights(name, root=args.root,
                                  progress=not (args.no_progress or args.quiet))
        if found["url"] is None:
            note = "ships with repurpose; nothing to download"
        elif found["downloaded"]:
            note = f"downloaded from {found['url']}"
        else:
            note = "already there"
        print(f"{name}: {found['path']} ({note})")
    return 0


def _run_layers(args):
    model = load_model(args)
    if args.json:
        print(json.dumps([layer._asdict() for layer in model.layers], indent=2))
    else:
        print(model.describe())


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


def add_job_args(p, what, example, resume_help, overwrite_help):
    """``--config``, ``--set``, ``--resume`` | ``--overwrite`` and ``--no-progress``: what every
    command that runs a job file takes."""
    p.add_argument("--config", required=True, help=f"the {what} (YAML or JSON)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help=f"override a config value, e.g. --set {example} (repeatable; values "
                        f"are YAML)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help=resume_help)
    group.add_argument("--overwrite", action="store_true", help=overwrite_help)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_image_args(p, defaults="none"):
    """``--resize``, ``--crop``, ``--normalize``, ``--grayscale`` (image inputs)."""
    p.add_argument("--resize", type=size, default=None,
                   help=f"image inputs: shorter side or W,H (default: {defaults})")
    p.add_argument("--crop", type=size, default=None,
                   help=f"image inputs: centre crop, size or W,H (default: {defaults})")
    p.add_argument("--normalize", choices=("none", "imagenet"), default=None,
                   help=f"image inputs: per-channel normalisation (default: {defaults})")
    p.add_argument("--grayscale", action="store_true",
                   help=f"image inputs: decode as one channel (default: {defaults})")


def size(text):
    """``'224'`` -> 224, ``'224,192'`` or ``'224x192'`` -> [224, 192]."""
    try:
        parts = [int(p) for p in text.replace("x", ",").split(",") if p.strip()]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise InvalidParameterError(f"expected a size like 224 or 224,224; got {text!r}.")
    return parts[0] if len(parts) == 1 else parts


def _run_extract(args):
    from ..jobs import extract_job

    _model_from_option(args)
    store = args.store or args.scheduler is not None or args.shard_size is not None
    if store and args.precision != "float32":
        raise InvalidParameterError(
            f"--precision {args.precision} cannot be used with a sharded store (--store, "
            f"--scheduler, --shard-size): int8 calibration would differ between shards. Use "
            f"float32, or extract without --store.")
    layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    result = extract_job(load_model(args), args.data, layers, args.out, store=store,
                         image_options={k: getattr(args, k) for k in
                                        ("resize", "crop", "normalize", "grayscale")},
                         scheduler=args.scheduler, shard_size=args.shard_size,
                         batch_size=args.batch_size, ctx=args.ctx, pool=args.pool,
                         precision=args.precision, overwrite=args.overwrite,
                         progress=not (args.no_progress or args.quiet))
    for layer, shape in result.shapes.items():
        print(f"{layer}\t{shape[0]} x {shape[1]}")
    extra = f" ({result.n_shards} shards)" if result.n_shards else ""
    samples = f", samples listed in {result.samples_file}" if result.samples_file else ""
    print(f"{'feature store' if store else 'features'} written to {args.out}{extra}{samples}")


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


def add_commands(commands, common):
    """Register the subcommands on ``commands`` (an argparse subparsers object); ``common``
    holds the flags of every command."""
    p = commands.add_parser("demo", parents=[common], help="repurpose the zoo network for a new task with "
                                         "every head; print and write a report")
    p.add_argument("--out", default=None, help="report folder (results.json, results.md, "
                                               "reliability.png)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--n-per-class", type=int, default=10, help="labels per target class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(run=_run_demo)

    p = commands.add_parser("models", parents=[common], help="list model-zoo names")
    p.add_argument("--source", choices=("repurpose", "gluon", "gluoncv"), default=None)
    p.set_defaults(run=_run_models)

    p = commands.add_parser(
        "fetch", parents=[common], help="download Gluon/gluoncv zoo weights into the cache folder (SHA-1 "
                      "checked; MXNET_GLUON_REPO picks a mirror) and print where they are")
    p.add_argument("names", nargs="+", metavar="NAME",
                   help="zoo names (see `repurpose models`); the project's own models ship "
                        "their weights, so they need no download")
    p.add_argument("--root", default=None, metavar="DIR",
                   help="cache folder (default: $MXNET_HOME/models, else ~/.mxnet/models)")
    p.add_argument("--no-progress", action="store_true", help="no download progress bar")
    p.set_defaults(run=_run_fetch)

    p = commands.add_parser("layers", parents=[common],
                            help="print the layer table of a model or of a saved model's "
                                 "network")
    add_model_args(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=_run_layers)

    p = commands.add_parser("extract", parents=[common], help="extract features to a folder of .npy files, or "
                                            "to a sharded, resumable store (on Dask with "
                                            "--scheduler)")
    add_model_args(p, model_option=True)
    p.add_argument("--data", required=True,
                   help="a .npy file (n, c, h, w), an image folder (one sub-folder per class, "
                        "or flat), or a built-in data set (digits, shifted_digits); the file "
                        "and label of each sample are written to samples.csv beside the "
                        "features")
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
    add_image_args(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_run_extract)

