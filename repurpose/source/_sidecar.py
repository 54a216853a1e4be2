"""Checkpoints of a :class:`~repurpose.source.SourceModel`: ``{prefix}-symbol.json`` and
``{prefix}-{epoch:04d}.params`` in MXNet's own layout, plus the sidecar
``{prefix}-repurpose.json`` (format ``repurpose.source``) that keeps what MXNet's files do not:
input name and shape, metadata, frozen layers and the model's SHA-256.

:func:`save_checkpoint` is a ``SourceModel`` method, bound in its class body (``self`` is the
model); ``SourceModel.from_checkpoint`` reads the sidecar with :func:`read_sidecar`.
"""
import json
import os

import mxnet as mx

from ..exceptions import ModelFileError
from ..persist import FileFormat, atomic_write, check_writable, write_json

__all__ = ["SIDECAR_FORMAT", "read_sidecar", "save_checkpoint"]

#: The sidecar's format header: version 1 is the only one written so far (no migrations).
SIDECAR_FORMAT = FileFormat("repurpose.source", 1, what="repurpose checkpoint sidecar")


def read_sidecar(path):
    """Read the sidecar at ``path``, checked and brought to the newest format version.

    Raises
    ------
    ModelFileError
        If it is not JSON, not a sidecar, or of a newer format version than this code reads.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            sidecar = json.load(handle)
    except (OSError, ValueError) as err:
        raise ModelFileError(f"{path!r} is not valid JSON: {err}") from err
    return SIDECAR_FORMAT.read(sidecar, repr(path))


def save_checkpoint(self, prefix, epoch=0, overwrite=False):
    """Save as ``{prefix}-symbol.json`` + ``{prefix}-{epoch:04d}.params`` (+ sidecar).

    :meth:`from_checkpoint` loads the files back into an identical model. The params
    use the ``arg:``/``aux:`` layout of ``mx.model.save_checkpoint``; the sidecar
    ``{prefix}-repurpose.json`` keeps the input shape, metadata and frozen layers.

    Parameters
    ----------
    prefix : str or path-like
    epoch : int, default=0
    overwrite : bool, default=False
        Replace existing files; otherwise existing files raise ``FileExistsError``
        before anything is written.

    Returns
    -------
    list of str
        The files written.

    Raises
    ------
    FileExistsError
        If a file exists and ``overwrite`` is False.
    InvalidParameterError
        If layers added without an input shape still wait for one (see
        :meth:`add_layers`): call :meth:`with_input_shape` first. A model without input
        shape and without such layers saves ``input_shape: null``.

    Examples
    --------
    >>> import tempfile
    >>> from repurpose import SourceModel
    >>> model = SourceModel.from_zoo('digits_cnn')
    >>> prefix = tempfile.mkdtemp() + '/digits'
    >>> [path[len(prefix):] for path in model.save_checkpoint(prefix)]
    ['-symbol.json', '-0000.params', '-repurpose.json']
    >>> SourceModel.from_checkpoint(prefix).sha256 == model.sha256
    True
    """
    # Parameters that wait for an input shape cannot be written (and a checkpoint without
    # them would not load): a clear error before any file is touched.
    self._check_complete("save_checkpoint")
    prefix = os.fspath(prefix)
    paths = [f"{prefix}-symbol.json", f"{prefix}-{int(epoch):04d}.params",
             f"{prefix}-repurpose.json"]
    check_writable(paths, overwrite)
    params = {f"arg:{k}": v for k, v in self.arg_params.items()}
    params.update({f"aux:{k}": v for k, v in self.aux_params.items()})
    sidecar = dict(SIDECAR_FORMAT.header(), input_name=self.input_name,
                   input_shape=list(self.input_shape) if self.input_shape else None,
                   metadata=self.metadata, frozen_layers=list(self.frozen_layers),
                   sha256=self.sha256)
    atomic_write(paths[0], lambda tmp: self.symbol.save(tmp), overwrite)
    atomic_write(paths[1], lambda tmp: mx.nd.save(tmp, params), overwrite)
    write_json(paths[2], sidecar, overwrite=overwrite, sort_keys=True)
    return paths
