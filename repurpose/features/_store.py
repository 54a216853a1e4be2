"""Where extracted features go: arrays in memory, or ``.npy`` files streamed to disk.

The disk sink writes each batch with plain ``write`` calls rather than through a writable
memory map: dirty pages of a writable map count towards the process's resident memory, so
a map would let peak memory grow with N, which streaming is meant to avoid. The ``.npy``
header is written by us with room for any sample count and patched once N is known, because
iterators (``DataIter``, ``DataLoader``) do not always say N up front.
"""
import logging
import os
import shutil
import tempfile

import numpy as np

from ..persist import (FileFormat, FolderLock, check_writable, explain_full_disk,
                       remove_temporaries, write_json)

logger = logging.getLogger(__name__)

__all__ = ["MemorySink", "NpySink", "layer_file_name", "FEATURES_FORMAT"]

#: ``features.json``, the manifest of a folder written by ``extract_features(out=...)``.
FEATURES_FORMAT = FileFormat("repurpose.features", 1, what="features-folder")
_HEADER_LEN = 128  # bytes; room for a (10**15, 10**12) float32 shape, a multiple of 64


def layer_file_name(layer):
    """File name of ``layer``'s features inside an ``out`` folder."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in layer)
    return f"{safe}.npy"


def _npy_header(shape, dtype=np.float32):
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(shape)}
    text = repr(header).encode("latin1")
    preamble = b"\x93NUMPY\x01\x00"
    pad = _HEADER_LEN - len(preamble) - 2 - len(text) - 1
    if pad < 0:
        raise ValueError(f"Shape {shape} does not fit the reserved .npy header.")
    body = text + b" " * pad + b"\n"
    return preamble + len(body).to_bytes(2, "little") + body


class MemorySink:
    """Collect features in memory: preallocated when N is known, else batch by batch."""

    def __init__(self, layers, n_samples):
        self.layers = list(layers)
        self.n_samples = n_samples
        self._arrays = None
        self._chunks = {layer: [] for layer in self.layers}

    def write(self, start, outputs):
        """Store ``outputs`` (one (n, D) array per layer) for samples ``start:start+n``."""
        if self.n_samples is not None:
            if self._arrays is None:
                self._arrays = {layer: np.empty((self.n_samples,) + out.shape[1:], np.float32)
                                for layer, out in zip(self.layers, outputs)}
            for layer, out in zip(self.layers, outputs):
                self._arrays[layer][start:start + len(out)] = out
        else:
            for layer, out in zip(self.layers, outputs):
                self._chunks[layer].append(out)

    def close(self, n_seen):
        """Return the finished dict of arrays."""
        if self.n_samples is not None:
            return {layer: arr[:n_seen] for layer, arr in self._arrays.items()}
        return {layer: np.concatenate(chunks, axis=0) for layer, chunks in self._chunks.items()}

    def abort(self):
        """Drop what was collected."""
        self._arrays, self._chunks = None, {}


class NpySink:
    """Stream features to ``out/<layer>.npy`` files plus ``out/features.json``.

    Files are written in a temporary sibling folder and moved into place when the run
    finishes, so an interrupted run never leaves a half-written ``out``. From construction
    to :meth:`close` or :meth:`abort` the sink holds ``out``'s
    :class:`~repurpose.persist.FolderLock`, so a second writer is refused, and it removes
    the temporary folders a killed writer of ``out`` left.

    Raises
    ------
    FileExistsError
        If ``out`` exists and ``overwrite`` is False, or is not a features folder.
    LockedError
        If another process or thread writes ``out``.
    DiskFullError
        (an ``OSError``, from :meth:`write` and :meth:`close`) If the disk has no room.
    """

    def __init__(self, out, layers, metadata, overwrite=False):
        self.out = os.fspath(out)
        self.layers = list(layers)
        self.metadata = metadata
        self.overwrite = overwrite
        check_writable([self.out], overwrite)
        self._lock = FolderLock(self.out, what="features folder")
        self._lock.__enter__()
        try:
            check_writable([self.out], overwrite)  # again, now that nobody else writes it
            if os.path.lexists(self.out) and not FEATURES_FORMAT.wrote_folder(self.out, "features.json"):
                raise FileExistsError(
                    f"out={self.out!r} exists and is not a features folder written by "
                    f"repurpose (no features.json of ours in it), so overwrite=True does not "
                    f"replace it: it could hold your own files. Choose another folder, or "
                    f"remove it yourself.")
            parent = os.path.dirname(os.path.abspath(self.out))
            remove_temporaries(parent, os.path.basename(self.out))
            self._tmp = tempfile.mkdtemp(prefix="." + os.path.basename(self.out) + ".",
                                         suffix=".tmp", dir=parent)
        except BaseException:
            self._release()
            raise
        self._files = {}
        self._widths = {}

    def write(self, start, outputs):
        """Append ``outputs`` (one (n, D) array per layer)."""
        with explain_full_disk(self.out):
            if not self._files:
                for layer, out in zip(self.layers, outputs):
                    handle = open(os.path.join(self._tmp, layer_file_name(layer)), "wb")
                    self._files[layer] = handle
                    handle.write(b"\0" * _HEADER_LEN)
                    self._widths[layer] = tuple(out.shape[1:])
            for layer, out in zip(self.layers, outputs):
                self._files[layer].write(np.ascontiguousarray(out, dtype=np.float32).tobytes())

    def close(self, n_seen):
        """Finish the headers, move the folder into place, return memory-mapped arrays."""
        with explain_full_disk(self.out):
            for layer, handle in self._files.items():
                handle.seek(0)
                handle.write(_npy_header((n_seen,) + self._widths[layer]))
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
            manifest = dict(self.metadata, **FEATURES_FORMAT.header(), n_samples=n_seen,
                            files={layer: layer_file_name(layer) for layer in self.layers},
                            shapes={layer: [n_seen, *self._widths[layer]]
                                    for layer in self.layers})
            write_json(os.path.join(self._tmp, "features.json"), manifest, sort_keys=True)
        if os.path.exists(self.out):  # overwrite=True was checked at construction
            shutil.rmtree(self.out) if os.path.isdir(self.out) else os.remove(self.out)
        os.replace(self._tmp, self.out)
        self._release()
        logger.info("Wrote features of %d samples to %s", n_seen, self.out)
        return {layer: np.load(os.path.join(self.out, layer_file_name(layer)), mmap_mode="r",
                               allow_pickle=False)
                for layer in self.layers}

    def abort(self):
        """Close and delete the temporary files; ``out`` is left as it was."""
        for handle in self._files.values():
            try:
                handle.close()
            except OSError:  # the buffered rest cannot be written (a full disk): drop it
                pass
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._release()

    def _release(self):
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.__exit__(None, None, None)
