"""One reader and one writer for every versioned file the toolkit writes.

Each on-disk format (saved estimators, feature stores, BO journals, checkpoints, model
cards, ...) is a :class:`FileFormat`: a name, the newest version this code writes, and the
upgrade steps from each older version. :meth:`FileFormat.read` checks a document's
``format``/``format_version`` header and brings it to the newest version step by step;
:func:`write_json` writes strict JSON (no bare ``NaN``) atomically.
"""
import json
import math
import os

from .._version import __version__
from ..exceptions import ModelFileError
from ._io import atomic_write

__all__ = ["FileFormat", "write_json", "strict_json"]


class FileFormat:
    """A versioned file layout: ``{"format": name, "format_version": version, ...}``.

    Parameters
    ----------
    name : str
        The ``format`` value, e.g. ``'repurpose.estimator'``.
    version : int
        The newest ``format_version``: what this code writes.
    migrations : dict of int -> callable, default=None
        ``{v: step}``: ``step(document)`` takes a version-``v`` document (a copy) and
        returns it at version ``v + 1``.
    what : str, default=None
        How error messages call a file of this format (default: ``name``).

    Examples
    --------
    >>> fmt = FileFormat('demo', 2, {1: lambda d: dict(d, size=d.pop('n'))})
    >>> fmt.header()
    {'format': 'demo', 'format_version': 2}
    >>> fmt.read({'format': 'demo', 'format_version': 1, 'n': 3}, 'demo.json')
    {'format': 'demo', 'format_version': 2, 'size': 3}
    >>> fmt.read({'format': 'demo', 'format_version': 3}, 'demo.json')
    Traceback (most recent call last):
    ...
    repurpose.exceptions.ModelFileError: demo.json has format_version 3, newer than this ...
    """

    def __init__(self, name, version, migrations=None, what=None):
        self.name, self.version = name, int(version)
        self.migrations = dict(migrations or {})
        self.what = what or name

    def header(self):
        """The header a writer puts first: ``{'format': ..., 'format_version': ...}``."""
        return {"format": self.name, "format_version": self.version}

    def check_header(self, document, where):
        """Return ``document``'s version after checking its format name and version.

        Raises
        ------
        ModelFileError
            If it is not a mapping of this format, or its version is not an int >= 1 or is
            newer than :attr:`version`.
        """
        found = document.get("format") if isinstance(document, dict) else None
        if found != self.name:
            raise ModelFileError(f"{where} is not a {self.what} file (format {found!r}, "
                                 f"expected {self.name!r}).")
        version = document.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ModelFileError(f"{where} has format_version {version!r}; expected an "
                                 f"integer >= 1.")
        if version > self.version:
            raise ModelFileError(
                f"{where} has format_version {version}, newer than this repurpose "
                f"({__version__}) reads ({self.version}). Upgrade repurpose to read it.")
        return version

    def wrote_folder(self, path, manifest_name):
        """Whether ``path`` is a folder (not a link) whose ``manifest_name`` names this
        format: the test before an ``overwrite`` replaces a folder, so that only what the
        toolkit wrote is ever replaced.

        Parameters
        ----------
        path : str or path-like
            The folder.
        manifest_name : str
            Its manifest's file name (``'manifest.json'``, ``'features.json'``).

        Returns
        -------
        bool
            False for anything unreadable, a link, or a manifest of another format.

        Examples
        --------
        >>> import json, os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> fmt = FileFormat('demo', 1)
        >>> fmt.wrote_folder(folder, 'manifest.json')
        False
        >>> with open(os.path.join(folder, 'manifest.json'), 'w') as handle:
        ...     json.dump(fmt.header(), handle)
        >>> fmt.wrote_folder(folder, 'manifest.json')
        True
        """
        manifest = os.path.join(path, manifest_name)
        if os.path.islink(path) or not os.path.isfile(manifest):
            return False
        try:
            with open(manifest, encoding="utf-8") as handle:
                return json.load(handle).get("format") == self.name
        except (OSError, ValueError, AttributeError):
            return False

    def read(self, document, where):
        """Check the header and upgrade ``document`` to :attr:`version`, step by step."""
        version = self.check_header(document, where)
        while version < self.version:
            if version not in self.migrations:
                raise ModelFileError(f"{where}: no migration from format_version {version} "
                                     f"of {self.what}.")
            document = self.migrations[version](dict(document))
            version += 1
            document["format_version"] = version
        return document


def strict_json(value):
    """``value`` with every non-finite float replaced by None, so that JSON holds ``null``
    where Python's ``json`` would write the non-standard ``NaN``/``Infinity``.

    Parameters
    ----------
    value : object
        Dicts, lists, tuples, floats and anything else JSON holds.

    Returns
    -------
    object
        A copy with tuples as lists and non-finite floats as None.

    Examples
    --------
    >>> strict_json({'a': [1.0, float('nan')], 'b': float('inf')})
    {'a': [1.0, None], 'b': None}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def write_json(path, document, overwrite=False, indent=2, sort_keys=False):
    """Write ``document`` as strict JSON to ``path`` atomically (see ``atomic_write``).

    Non-finite floats become ``null``; anything else JSON cannot hold raises TypeError
    before the file is touched.

    Parameters
    ----------
    path : str or path-like
        The file to write.
    document : object
        What to write: dicts, lists, strings, numbers, bools, None.
    overwrite : bool, default=False
        Replace an existing file; otherwise an existing ``path`` raises ``FileExistsError``.
    indent : int, default=2
    sort_keys : bool, default=False

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / 'a.json'
    >>> write_json(path, {'loss': float('nan')})
    >>> path.read_text()
    '{\\n  "loss": null\\n}\\n'
    """
    text = json.dumps(strict_json(document), indent=indent, sort_keys=sort_keys,
                      allow_nan=False) + "\n"

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
    atomic_write(path, write, overwrite=overwrite)
