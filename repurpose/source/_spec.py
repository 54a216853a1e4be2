"""Model specs: the one string that names a source model on the command line and in job files.

``zoo:NAME``, ``onnx:PATH`` and ``checkpoint:PREFIX`` say what the rest is; a bare string is
read as whichever of them fits, and is an error naming both readings where two fit.
:func:`from_spec` is a ``SourceModel`` class method, bound in its class body (``cls`` is the
class).
"""
import os
import re

from .. import zoo
from .._validation import suggest
from ..exceptions import InvalidParameterError
from ._loaders import check_exists, latest_epoch

__all__ = ["PREFIXES", "parse_spec", "from_spec"]

#: The spec prefixes, each followed by ``:`` and what it names.
PREFIXES = ("zoo", "onnx", "checkpoint")
_USAGE = "zoo:NAME, onnx:PATH or checkpoint:PREFIX"
_SYMBOL = "-symbol.json"
# 'word:rest'; one letter before the colon is a Windows drive ('C:'), not a prefix.
_PREFIXED = re.compile(r"([A-Za-z][\w.+-]+):(.*)\Z", re.S)


def parse_spec(spec, base=None):
    """Say what a model spec names: ``(kind, target)``, without loading anything.

    Parameters
    ----------
    spec : str or path-like
        ``'zoo:NAME'``, ``'onnx:PATH'``, ``'checkpoint:PREFIX'`` (``PREFIX`` may be the
        ``-symbol.json`` file), or a bare string: a path ending in ``.onnx``, a
        ``-symbol.json`` file or checkpoint prefix, or a zoo name. A path-like object (not
        a str) is always a file: ``.onnx`` or a checkpoint.
    base : str, default=None
        Folder that relative paths are read from (a job file's folder); None is the
        current folder. Paths in the result are then joined to it.

    Returns
    -------
    kind : {'zoo', 'onnx', 'checkpoint'}
    target : str
        The zoo name, ONNX file or checkpoint prefix (``-symbol.json`` removed).

    Raises
    ------
    InvalidParameterError
        For an unknown prefix, an empty target, or a bare string that is both a zoo name
        and a model file (the message names both readings and the prefixes).
    FileNotFoundError
        For a bare string that names nothing: no such file or checkpoint, no such zoo name.

    Examples
    --------
    >>> parse_spec('zoo:digits_cnn')
    ('zoo', 'digits_cnn')
    >>> parse_spec('checkpoint:runs/best-symbol.json')
    ('checkpoint', 'runs/best')
    >>> parse_spec('models/resnet.onnx')
    ('onnx', 'models/resnet.onnx')
    >>> parse_spec('digits_cnn')  # a zoo name (no digits_cnn-symbol.json here)
    ('zoo', 'digits_cnn')
    >>> parse_spec('hub:resnet')
    Traceback (most recent call last):
    ...
    repurpose.exceptions.InvalidParameterError: Model 'hub:resnet' has the unknown prefix ...
    """
    if not isinstance(spec, str):
        if not isinstance(spec, os.PathLike) or not isinstance(os.fspath(spec), str):
            raise InvalidParameterError(
                f"A model spec must be a str or path, got {type(spec).__name__} {spec!r}. "
                f"Write {_USAGE}.")
        return _file_reading(_at(os.fspath(spec), base), any_suffix=True)
    prefixed = _PREFIXED.match(spec)
    if prefixed and (prefixed.group(1) in PREFIXES or not _exists(_at(spec, base))):
        kind, target = _explicit(spec, *prefixed.groups())
        return kind, target if kind == "zoo" else _at(target, base)
    return _bare(spec, base)


def _at(path, base):
    """``path`` read from the folder ``base`` (as given when ``base`` is None)."""
    if base is None:
        return path
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def _explicit(spec, prefix, target):
    """``(kind, target)`` of ``prefix:target``."""
    if prefix not in PREFIXES:
        hint = suggest(prefix, PREFIXES)
        if prefix in zoo.SOURCES:
            hint = f"For a {prefix} zoo model write 'zoo:{spec}'."
        raise InvalidParameterError(
            f"Model {spec!r} has the unknown prefix {prefix + ':'!r}; expected {_USAGE}."
            + (f" {hint}" if hint else ""))
    if not target:
        raise InvalidParameterError(f"Model {spec!r} names nothing after {prefix + ':'!r}; "
                                    f"write {_USAGE}.")
    if prefix == "checkpoint" and target.endswith(_SYMBOL):
        target = target[: -len(_SYMBOL)]
    return prefix, target


def _file_reading(path, any_suffix=False):
    """``('onnx', path)`` or ``('checkpoint', prefix)`` if ``path`` ends as a model file
    does (``.onnx``, ``-symbol.json``); else None, or with ``any_suffix`` a checkpoint."""
    if path.lower().endswith(".onnx"):
        return "onnx", path
    if path.endswith(_SYMBOL):
        return "checkpoint", path[: -len(_SYMBOL)]
    return ("checkpoint", path) if any_suffix else None


def _exists(spec):
    """Whether ``spec`` names an existing file or checkpoint."""
    return os.path.isfile(spec) or os.path.isfile(spec + _SYMBOL)


def _bare(spec, base=None):
    """``(kind, target)`` of a string without prefix: a model file or a zoo name."""
    path = _at(spec, base)
    reading = _file_reading(path)
    if reading is not None:
        return reading  # no zoo name ends in .onnx or -symbol.json
    # Zoo names are plain words: a path with a folder part that exists is never one (the
    # names are still listed for the close matches of a path that does not exist).
    word = not (os.sep in spec or "/" in spec)
    names = zoo.list_models() if word or not _exists(path) else []
    if spec in names:
        if _exists(path):
            what = (f"the checkpoint {spec + _SYMBOL!r}" if os.path.isfile(path + _SYMBOL)
                    else f"the file {spec!r}")
            raise InvalidParameterError(
                f"Model {spec!r} is ambiguous: it is a model-zoo name, and {what} exists in "
                f"{base or os.getcwd()!r}. Write 'zoo:{spec}' for the zoo model, or "
                f"'checkpoint:{spec}' (or 'onnx:{spec}' for an ONNX file) for the file; "
                f"the prefixes are {_USAGE}.")
        return "zoo", spec
    if os.path.isfile(path + _SYMBOL):
        return "checkpoint", path
    hint = suggest(spec, names)
    raise FileNotFoundError(
        f"Model {spec!r} is neither an .onnx file, a checkpoint ({spec}{_SYMBOL}) nor a "
        f"model-zoo name. {hint + ' ' if hint else ''}See `repurpose models` for zoo names, "
        f"or write {_USAGE}.")


def from_spec(cls, spec, epoch=None, input_shape=None, weights=None, download=False):
    """Load a model from one string, as the command line and job files name models.

    A prefix says what the string names:

    - ``zoo:NAME``: a model-zoo name (:meth:`from_zoo`; ``'zoo:gluoncv:resnet50_v1d'``
      picks a family);
    - ``onnx:PATH``: an ONNX file (:meth:`from_onnx`), whatever its suffix;
    - ``checkpoint:PREFIX``: ``{PREFIX}-symbol.json`` + ``{PREFIX}-{epoch:04d}.params``
      (:meth:`from_checkpoint`); a ``-symbol.json`` path works too.

    Without a prefix, a path ending in ``.onnx`` is an ONNX file; a ``-symbol.json`` file, or
    a prefix whose ``-symbol.json`` exists, is a checkpoint; otherwise the string is a zoo
    name. A bare string that is both a zoo name and an existing checkpoint prefix (or file)
    is an error naming both readings: write the prefix. A path-like object (not a str) is
    always a file.

    Parameters
    ----------
    spec : str or path-like
    epoch : int, default=None
        Checkpoint epoch; None takes the newest ``{PREFIX}-NNNN.params`` file.
    input_shape : tuple of int, default=None
        Shape of one sample, for checkpoints and ONNX files.
    weights : str, default=None
        Weights file for zoo names.
    download : bool, default=False
        For zoo names: download missing weights (see :meth:`from_zoo`).

    Returns
    -------
    SourceModel

    Raises
    ------
    FileNotFoundError
        If ``spec`` names nothing: a bare string that is neither a file, a checkpoint
        prefix nor a zoo name, or a missing checkpoint or ONNX file (with the similar
        names found).
    InvalidParameterError
        For an unknown prefix, an ambiguous bare string, an unknown name after ``zoo:``,
        or ``download=True`` with a model file (only zoo weights are downloaded).

    Examples
    --------
    >>> from repurpose import SourceModel
    >>> SourceModel.from_spec('zoo:digits_cnn').metadata['name']
    'digits_cnn'
    >>> SourceModel.from_spec('onxx:model.onnx')
    Traceback (most recent call last):
    ...
    repurpose.exceptions.InvalidParameterError: Model 'onxx:model.onnx' has the unknown ...
    """
    kind, target = parse_spec(spec)
    if download and kind != "zoo":
        raise InvalidParameterError(
            f"download=True was given for the model file {os.fspath(spec)!r}, but only "
            f"model-zoo weights are downloaded. Drop download, or name a zoo model.")
    if kind == "onnx":
        return cls.from_onnx(target, input_shape=input_shape)
    if kind == "checkpoint":
        check_exists(target + _SYMBOL, "symbol")  # close matches if it is missing
        if epoch is None:
            epoch = latest_epoch(target)
        return cls.from_checkpoint(target, epoch, input_shape=input_shape)
    return cls.from_zoo(target, weights=weights, download=download)
