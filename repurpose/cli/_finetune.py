"""Subcommands ``finetune`` (a scripted job from a config file) and ``predict`` (batch
prediction of a saved model to CSV)."""
import csv
import io
import json
import logging
import os
import sys
import time

import numpy as np
import yaml

from .. import metrics
from ..jobs import (BUILTIN_JOB_DATASETS, RESOLVED_CONFIG_NAME, DataConfig, check_layers,
                      check_output_dir, dump_config, load_config, load_job_data,
                      make_image_folder, read_image_folder)
from .._validation import brief_list
from ..exceptions import ContextError, DataError, InvalidParameterError, UnknownLayerError
from ..persist import atomic_write, load
from ..source import SourceModel

logger = logging.getLogger(__name__)

__all__ = ["add_finetune_commands", "write_training_curve"]

# Errors that mean "the job is wrong", not "the run failed": exit 2 even from inside fit.
_CONFIG_ERRORS = (InvalidParameterError, UnknownLayerError, ContextError, DataError)


class JobFailedError(RuntimeError):
    """Training started and then failed (exit status 1)."""


def _ensure_info_logging():
    root = logging.getLogger("repurpose")
    if root.level > logging.INFO:  # the job logs its progress unless --debug asked for more
        root.setLevel(logging.INFO)


def _write_text(path, text, overwrite=True):
    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    atomic_write(path, write, overwrite=overwrite)


def _write_json(path, obj):
    _write_text(path, json.dumps(obj, indent=2) + "\n")


def write_training_curve(history, path):
    """Plot losses and accuracies per epoch (train and validation) to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    def column(key):
        return np.array([np.nan if row.get(key) is None else row[key] for row in history],
                        dtype=float)

    epochs = column("epoch")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, what in zip(axes, ("loss", "accuracy")):
        for split, style in (("train", "o-"), ("val", "s--")):
            values = column(f"{split}_{what}")
            if np.isfinite(values).any():
                ax.plot(epochs, values, style, label=f"{split} {what}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()

    def write(tmp):
        fig.savefig(tmp, dpi=100, format="png")
    try:
        atomic_write(path, write, overwrite=True)
    finally:
        plt.close(fig)


def _check_finite(X, where):
    if X.dtype.kind in "fc" and not np.isfinite(X).all():
        raise DataError(f"{where} holds NaN or inf values. Remove or impute them.")


def _check_splits(data):
    """Train has 2+ classes; validation and test have train's sample shape and classes."""
    X, y = data["train"]
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(f"data.train has 1 class ({classes[0]!r}); fine-tuning needs at "
                        f"least 2 classes.")
    for split in ("validation", "test"):
        if data[split] is None:
            continue
        X_other, y_other = data[split]
        if X_other.shape[1:] != X.shape[1:]:
            raise DataError(f"data.{split} samples have shape {X_other.shape[1:]}, but "
                            f"data.train samples have {X.shape[1:]}. Give both the same "
                            f"shape (image folders: data.resize and data.crop).")
        unseen = np.setdiff1d(np.unique(y_other), classes)
        if len(unseen):
            raise DataError(f"data.{split} has classes that data.train lacks: "
                            f"{brief_list(unseen.tolist())} (train has "
                            f"{brief_list(classes.tolist())}). A fine-tuned model only "
                            f"predicts classes it was trained on.")


def _launch_command(job, args):
    d = job.distributed
    return (f"repurpose launch --workers {d.workers} --servers {d.servers} -- repurpose "
            f"finetune --config {args.config}{' --resume' if args.resume else ''}")


def _join_distributed_job(job, args):
    """Check the launcher's environment against ``distributed``, join the job, return its kv.

    Every worker checks the output folder before the barrier that follows, and only rank 0
    writes to it afterwards, so all of them see the folder as it was before the job.
    """
    from ..repurposers._distributed import DMLC_VARIABLES, get_kvstore, launch_environment

    d = job.distributed
    if not os.environ.get("DMLC_ROLE"):
        raise InvalidParameterError(
            f"{args.config} sets distributed.kvstore: {d.kvstore}, but this process was not "
            f"started by a launcher ({', '.join(DMLC_VARIABLES)} are not set). Run "
            f"`{_launch_command(job, args)}` on one machine, or MXNet's tools/launch.py on "
            f"several (docs/guide/distributed_finetuning.md).")
    env = launch_environment(kvstore=d.kvstore)
    for key, ours, theirs in (("workers", d.workers, env["n_workers"]),
                              ("servers", d.servers, env["n_servers"])):
        if ours != theirs:
            raise InvalidParameterError(
                f"{args.config} sets distributed.{key}: {ours}, but the launcher started "
                f"{theirs} (DMLC_NUM_{key[:-1].upper()}={theirs}). Launch with "
                f"`{_launch_command(job, args)}` or change distributed.{key}.")
    return get_kvstore(d.kvstore)


def _run_finetune(args):
    _ensure_info_logging()
    started = time.perf_counter()
    # 1. Everything cheap first: the config (keys, types, choices, paths), the output folder.
    job = load_config(args.config, overrides=args.set)
    kv = _join_distributed_job(job, args) if job.distributed.kvstore else None
    rank = 0 if kv is None else kv.rank
    state = check_output_dir(job, resume=args.resume)
    if kv is not None:
        kv._barrier()  # every worker has checked the folder; now rank 0 may write to it
    # 2. The source model and the layers the config names.
    src = job.source
    source = SourceModel.from_spec(src.model, epoch=src.epoch,
                                   input_shape=tuple(src.input_shape) if src.input_shape
                                   else None, weights=src.weights, download=src.download)
    check_layers(job, source.layer_names)
    # 3. The data, checked before training.
    data = load_job_data(job.data)
    for split, pair in data.items():
        if pair is not None:
            _check_finite(pair[0], f"data.{split}")
    X, y = data["train"]
    _check_splits(data)
    from ..repurposers import FineTuneRepurposer

    model = FineTuneRepurposer(source, **job.to_repurposer_kwargs())
    out = job.run.output_dir
    if rank == 0:
        os.makedirs(out, exist_ok=True)
    if state == "new" and rank == 0:
        _write_text(os.path.join(out, RESOLVED_CONFIG_NAME), dump_config(job))
    logger.info("Job %s: %s %s on %d images (%d classes) for up to %d epochs, output %s",
                args.config, "resuming" if args.resume else "fine-tuning", src.model, len(y),
                len(np.unique(y)), job.train.n_epochs, out)
    # 4. Train.
    X_val, y_val = data["validation"] if data["validation"] is not None else (None, None)
    try:
        model.fit(X, y, X_val=X_val, y_val=y_val, resume=args.resume)
    except _CONFIG_ERRORS:
        raise
    except Exception as err:  # noqa: BLE001 - reported as a failed run, cause chained
        again = f"repurpose finetune --config {args.config} --resume"
        if kv is not None:
            again = f"{_launch_command(job, args).replace(' --resume', '')} --resume"
        raise JobFailedError(
            f"training failed ({type(err).__name__}: {err}). The checkpoints in "
            f"{job.checkpoint_dir} let `{again}` continue after the last finished "
            f"epoch.") from err
    if rank != 0:
        print(f"Worker {rank} of {kv.num_workers} finished; worker 0 writes the outputs to "
              f"{out}")
        return
    # 5. Outputs.
    try:
        _write_outputs(job, model, data, args, started)
    except Exception as err:  # noqa: BLE001 - the model is trained; say so
        raise JobFailedError(f"writing the outputs to {out} failed ({type(err).__name__}: "
                             f"{err}).") from err


def _write_outputs(job, model, data, args, started):
    src, out = job.source, job.run.output_dir
    y, X_val = data["train"][1], (data["validation"] or (None, None))[0]
    history = [dict(row) for row in model.history_]
    report = {"config": os.path.abspath(args.config), "source_model": src.model,
              "classes": np.asarray(model.classes_).tolist(),
              "n_train": int(len(y)),
              "n_validation": None if X_val is None else int(len(X_val)),
              "validation_fraction": (None if X_val is not None
                                      else job.train.validation_fraction),
              "n_epochs_run": len(history), "history": history, "test": None,
              "seconds": None}
    if data["test"] is not None:
        X_test, y_test = data["test"]
        proba = model.predict_proba(X_test)
        report["test"] = {"n_samples": int(len(y_test)),
                          **metrics.summary(y_test, proba, model.classes_)}
        logger.info("Test: accuracy %.3f, NLL %.3f on %d images", report["test"]["accuracy"],
                    report["test"]["nll"], len(y_test))
    model.save(os.path.join(out, "model"))
    write_training_curve(history, os.path.join(out, "training_curve.png"))
    report["seconds"] = time.perf_counter() - started
    _write_json(os.path.join(out, "metrics.json"), report)
    last = history[-1] if history else {}
    line = (f"Fine-tuned {src.model} on {len(y)} images ({len(model.classes_)} classes): "
            f"{len(history)} epochs")
    if last.get("val_accuracy") is not None:
        line += f", last val accuracy {last['val_accuracy']:.3f}"
    if report["test"] is not None:
        line += f", test accuracy {report['test']['accuracy']:.3f} " \
                f"({report['test']['n_samples']} images)"
    print(line)
    print(f"Wrote {out}: model/, metrics.json, training_curve.png, {RESOLVED_CONFIG_NAME}")


# ---------------------------------------------------------------------- predict
def _job_data_section(model_dir):
    """The ``data`` section of the job that wrote ``model_dir``, if it sits in a job folder."""
    resolved = os.path.join(os.path.dirname(os.path.abspath(model_dir)), RESOLVED_CONFIG_NAME)
    if not os.path.isfile(resolved):
        return None
    with open(resolved, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    return (raw or {}).get("data") if isinstance(raw, dict) else None


def _predict_inputs(args):
    """Return ``(X, file names or None)`` for ``--data``."""
    spec = args.data
    if spec in BUILTIN_JOB_DATASETS:
        from ..data import load_digits_images, load_shifted_digits_images

        X = load_digits_images()[0] if spec == "digits" else load_shifted_digits_images()[0]
        return X, None
    if os.path.isdir(spec):
        section = _job_data_section(args.model) or {}
        image_keys = ("resize", "crop", "normalize", "grayscale")
        data = DataConfig()
        for key in image_keys:  # the training job's transforms, unless given here
            if section.get("kind") == "image_folder" and key in section:
                setattr(data, key, section[key])
            if getattr(args, key) not in (None, False):
                setattr(data, key, getattr(args, key))
        data.kind = "image_folder"
        folder = make_image_folder(data, spec)
        X, _ = read_image_folder(folder)
        return X, [os.path.relpath(path, spec) for path, _ in folder.items]
    if spec.lower().endswith(".npy") and os.path.isfile(spec):
        X = np.load(spec, allow_pickle=False)
        _check_finite(X, f"--data {spec}")
        return X, None
    raise FileNotFoundError(
        f"--data {spec!r} is neither a .npy file, an image folder nor a built-in data set "
        f"({', '.join(BUILTIN_JOB_DATASETS)}).")


def _run_predict(args):
    if not os.path.isdir(args.model):
        raise FileNotFoundError(f"--model {args.model!r} is not a folder. Pass a saved model's "
                                f"folder, e.g. <output_dir>/model of a finetune job.")
    if args.out is not None and os.path.exists(args.out) and not args.overwrite:
        raise FileExistsError(f"--out {args.out!r} already exists. Choose another file or pass "
                              f"--overwrite.")
    model = load(args.model)
    X, files = _predict_inputs(args)
    classes = np.asarray(model.classes_)
    if args.proba:
        proba = np.asarray(model.predict_proba(X))
        predictions = classes[np.argmax(proba, axis=1)]
    else:
        proba = None
        predictions = np.asarray(model.predict(X))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["index"] + (["file"] if files is not None else []) + ["prediction"]
    if proba is not None:
        header += [f"proba_{c}" for c in classes]
    writer.writerow(header)
    for i, label in enumerate(predictions):
        row = [i] + ([files[i]] if files is not None else []) + [label]
        if proba is not None:
            row += [f"{p:.6g}" for p in proba[i]]
        writer.writerow(row)
    if args.out is None:
        sys.stdout.write(buffer.getvalue())
        return
    _write_text(args.out, buffer.getvalue(), overwrite=args.overwrite)
    print(f"{len(predictions)} predictions written to {args.out}")


def _size(text):
    try:
        parts = [int(p) for p in text.replace("x", ",").split(",") if p.strip()]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise InvalidParameterError(f"expected a size like 224 or 224,224; got {text!r}.")
    return parts[0] if len(parts) == 1 else parts


def add_finetune_commands(commands):
    """Register ``finetune`` and ``predict`` on ``commands`` (argparse subparsers)."""
    p = commands.add_parser(
        "finetune", help="run a fine-tuning job from a YAML/JSON config (docs/guide/jobs.md)")
    p.add_argument("--config", required=True, help="the job file (YAML or JSON)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set train.n_epochs=3 (repeatable; "
                        "values are YAML)")
    p.add_argument("--resume", action="store_true",
                   help="continue this job from the last checkpoint in its output_dir")
    p.set_defaults(run=_run_finetune)

    p = commands.add_parser("predict", help="predict with a saved model; write CSV")
    p.add_argument("--model", required=True, help="a saved model folder, e.g. "
                                                  "<output_dir>/model of a finetune job")
    p.add_argument("--data", required=True,
                   help="a .npy file (n, c, h, w), an image folder, or a built-in data set "
                        f"({', '.join(BUILTIN_JOB_DATASETS)})")
    p.add_argument("--out", default=None, help="CSV file to write (default: stdout)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--proba", action="store_true", help="add one probability column per class")
    p.add_argument("--resize", type=_size, default=None,
                   help="image folders: shorter side or W,H (default: the training job's)")
    p.add_argument("--crop", type=_size, default=None,
                   help="image folders: centre crop (default: the training job's)")
    p.add_argument("--normalize", choices=("none", "imagenet"), default=None,
                   help="image folders: per-channel normalisation (default: the training job's)")
    p.add_argument("--grayscale", action="store_true",
                   help="image folders: one channel (default: the training job's)")
    p.set_defaults(run=_run_predict)

