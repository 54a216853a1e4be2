"""Commands ``finetune`` (a scripted job from a config file) and ``predict`` (a saved model's
predictions as CSV). The work is done by :mod:`repurpose.jobs`; imports happen when a
command runs."""
import os
import sys

from ..exceptions import DataError
from ._commands import add_image_args, add_job_args

__all__ = ["add_commands"]


def _run_finetune(args):
    from ..jobs import RESOLVED_CONFIG_NAME, run_finetune

    result = run_finetune(args.config, overrides=args.set, resume=args.resume,
                          overwrite=args.overwrite,
                          progress=not (args.quiet or args.no_progress))
    if result.rank != 0:
        print(f"Worker {result.rank} of {result.n_workers} finished; worker 0 writes the "
              f"outputs to {result.output_dir}")
        return
    report, history = result.report, result.report["history"]
    line = (f"Fine-tuned {report['source_model']} on {report['n_train']} images "
            f"({len(report['classes'])} classes): {len(history)} epochs")
    last = history[-1] if history else {}
    if last.get("val_accuracy") is not None:
        line += f", last val accuracy {last['val_accuracy']:.3f}"
    if report["test"] is not None:
        line += (f", test accuracy {report['test']['accuracy']:.3f} "
                 f"({report['test']['n_samples']} images)")
    n_skipped = len(report.get("skipped_images") or {})
    if n_skipped:
        line += f"; left out {n_skipped} damaged image{'s' if n_skipped != 1 else ''}"
    print(line)
    print(f"Wrote {result.output_dir}: model/, metrics.json, training_curve.png, "
          f"{RESOLVED_CONFIG_NAME}")


def _run_predict(args):
    from ..persist import FolderLock

    if not os.path.isdir(args.model):
        raise FileNotFoundError(f"--model {args.model!r} is not a folder. Pass a saved model's "
                                f"folder, e.g. <output_dir>/model of a finetune job.")
    if args.out is None:
        return _predict(args)
    with FolderLock(args.out, what="prediction file"):  # before --out is looked at
        return _predict(args)


def _predict(args):
    import numpy as np

    from ..jobs._predict import (ImageOptions, check_sample_shape, job_image_options,
                                 prediction_table, read_inputs)
    from ..persist import atomic_write, load

    if args.out is not None and os.path.exists(args.out) and not args.overwrite:
        raise FileExistsError(f"--out {args.out!r} already exists. Choose another file or pass "
                              f"--overwrite.")
    model = load(args.model)
    options = ImageOptions.merged({k: getattr(args, k) for k in
                                   ("resize", "crop", "normalize", "grayscale")},
                                  job_image_options(args.model))
    inputs = read_inputs(args.data, options)
    network = getattr(model, "network_", None) or getattr(model, "source", None)
    check_sample_shape(inputs.X, getattr(network, "input_shape", None))
    if len(inputs.X) == 0:
        raise DataError(f"--data {' '.join(args.data)} holds no samples.")
    classes = np.asarray(model.classes_)
    proba = np.asarray(model.predict_proba(inputs.X)) if args.proba else None
    predictions = classes[np.argmax(proba, axis=1)] if args.proba else \
        np.asarray(model.predict(inputs.X))
    text = prediction_table(predictions, classes, proba, inputs.files)
    if args.out is None:
        sys.stdout.write(text)
        return

    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    atomic_write(args.out, write, overwrite=args.overwrite)
    print(f"{len(predictions)} predictions written to {args.out}")


def add_commands(commands, common):
    """Register ``finetune`` and ``predict`` on ``commands`` (argparse subparsers);
    ``common`` holds the flags of every command."""
    p = commands.add_parser(
        "finetune", parents=[common],
        help="run a fine-tuning job from a YAML/JSON config (docs/guide/jobs.md)")
    add_job_args(p, "job file", "train.n_epochs=3",
                 resume_help="continue this job from the last checkpoint in its output_dir",
                 overwrite_help="start again in an output_dir that holds an earlier job (only "
                                "a job's files are removed)")
    p.set_defaults(run=_run_finetune)

    p = commands.add_parser("predict", parents=[common],
                            help="predict with a saved model; write CSV (one row per sample)")
    p.add_argument("--model", required=True, help="a saved model folder, e.g. "
                                                  "<output_dir>/model of a finetune job")
    p.add_argument("--data", required=True, nargs="+", metavar="DATA",
                   help="a .npy file (n, c, h, w), a folder of images (flat, or one "
                        "sub-folder per class), image files, or a built-in data set "
                        "(digits, shifted_digits)")
    p.add_argument("--out", default=None, help="CSV file to write (default: stdout)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--proba", action="store_true", help="add one probability column per class")
    add_image_args(p, defaults="the training job's")
    p.set_defaults(run=_run_predict)
