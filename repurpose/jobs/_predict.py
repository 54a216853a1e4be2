"""Inputs of the ``predict`` and ``extract`` commands, and prediction tables.

:func:`read_inputs` turns what a user names on the command line (a built-in data set, a
``.npy`` file, an image folder with class sub-folders, a flat folder of images, or image
files) into an array, the file of each sample and its label where there is one; the image
transforms are the given ones, else those of the job that trained the model. The sample
shape is checked against the model's input before any work, naming the flag that fixes a
mismatch.
"""
import csv
import io
import os

import numpy as np
import yaml

from .._validation import brief_list
from ..data import BUILTIN_DATASETS, ImageFiles, ImageFolder, load_builtin
from ..data._image_folder import IMAGE_EXTENSIONS
from ..exceptions import DataError
from ._sections import RESOLVED_CONFIG_NAME

__all__ = ["ImageOptions", "Inputs", "read_inputs", "job_image_options", "prediction_table"]

#: The image settings of a command line (None: not given).
IMAGE_KEYS = ("resize", "crop", "normalize", "grayscale")


class ImageOptions(dict):
    """``resize``, ``crop``, ``normalize``, ``grayscale`` for image inputs; given ones win
    over ``defaults`` (the training job's)."""

    @classmethod
    def merged(cls, given, defaults=None):
        options = {k: (defaults or {}).get(k) for k in IMAGE_KEYS}
        options.update({k: v for k, v in given.items() if v not in (None, False)})
        options["normalize"] = options.get("normalize") or "none"
        options["grayscale"] = bool(options.get("grayscale"))
        for key in ("resize", "crop"):
            if isinstance(options[key], list):
                options[key] = tuple(options[key])
        return cls(options)


class Inputs:
    """Samples to run a model on: ``X``, and per sample its ``files`` and ``labels`` (None
    where the input has none)."""

    def __init__(self, X, files=None, labels=None):
        self.X, self.files, self.labels = X, files, labels


def job_image_options(model_dir):
    """The image settings of the job that wrote ``model_dir`` (``{}`` if there is none)."""
    resolved = os.path.join(os.path.dirname(os.path.abspath(model_dir)), RESOLVED_CONFIG_NAME)
    if not os.path.isfile(resolved):
        return {}
    with open(resolved, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    data = (raw or {}).get("data") if isinstance(raw, dict) else None
    if not isinstance(data, dict) or data.get("kind") != "image_folder":
        return {}
    return {k: data[k] for k in IMAGE_KEYS if k in data}


def _images_in(folder):
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if name.lower().endswith(IMAGE_EXTENSIONS)
                  and os.path.isfile(os.path.join(folder, name)))


def read_inputs(specs, options, where="--data"):
    """Read what ``specs`` name into :class:`Inputs`.

    Parameters
    ----------
    specs : list of str
        One built-in name, ``.npy`` file or folder, or several image files.
    options : ImageOptions
        Transforms of image inputs.
    where : str, default='--data'
        How messages name the input.

    Returns
    -------
    Inputs

    Raises
    ------
    FileNotFoundError
        For a path that does not exist or names no usable input.
    DataError
        For images that differ in size after the transforms (naming ``--resize``/``--crop``
        or ``--grayscale``).
    """
    specs = [os.fspath(s) for s in specs]
    image_args = dict(options)
    hint = "--resize and --crop"
    if len(specs) == 1:
        spec = specs[0]
        if spec in BUILTIN_DATASETS:
            X, y = load_builtin(spec)
            return Inputs(X, labels=y)
        if spec.lower().endswith(".npy") and os.path.isfile(spec):
            X = np.load(spec, mmap_mode="r", allow_pickle=False)
            if X.dtype.kind in "fc" and not np.isfinite(X).all():
                raise DataError(f"{where} {spec} holds NaN or inf values. Remove or impute "
                                f"them.")
            return Inputs(X)
        if os.path.isdir(spec):
            flat = _images_in(spec)
            if not flat:  # class sub-folders: the labels come with the files
                folder = ImageFolder(spec, **image_args)
                X, y = folder.to_arrays(hint)
                return Inputs(X, [os.path.relpath(p, spec) for p in folder.paths], y)
            X = ImageFiles(flat, **image_args).to_array(hint)
            return Inputs(X, [os.path.relpath(p, spec) for p in flat])
    missing = [s for s in specs if not os.path.isfile(s)]
    if missing:
        raise FileNotFoundError(
            f"{where} {brief_list(missing)} "
            + ("does" if len(missing) == 1 else "do") + " not exist. Give a .npy file, an "
            f"image folder (flat, or one sub-folder per class), image files, or a built-in "
            f"data set ({', '.join(BUILTIN_DATASETS)}).")
    files = ImageFiles(specs, **image_args)
    return Inputs(files.to_array(hint), specs)


def check_sample_shape(X, input_shape, where="--data"):
    """Raise DataError, naming the flag that fixes it, if samples do not fit the model."""
    if input_shape is None or tuple(X.shape[1:]) == tuple(input_shape):
        return
    got, want = tuple(X.shape[1:]), tuple(input_shape)
    if len(got) == len(want) == 3 and got[0] != want[0]:
        fix = ("pass --grayscale" if want[0] == 1 else "drop --grayscale (decode RGB)")
    else:
        fix = f"pass --resize/--crop to give them size {want[1:]}" if len(want) == 3 else \
            "reshape them"
    raise DataError(f"{where} samples have shape {got}, but the model takes {want}: {fix}.")


def prediction_table(predictions, classes, proba=None, files=None):
    """CSV text: ``index[,file],prediction[,proba_<class>...]``, one row per sample."""
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
    return buffer.getvalue()
