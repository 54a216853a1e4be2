"""The on-disk format of a feature store (written by
:func:`~repurpose.features.extract_to_store`, read by :class:`~repurpose.features.FeatureStore`).

A store::

    manifest.json            format, version, source SHA-256, layers, pool, input, shard table
    samples.json             sample ids (file paths), labels and classes of image inputs
    source/model-*           the source model as a checkpoint (what the workers load)
    <layer>/shard-000000.npy (n_i, D) float32 features of shard 0 for that layer, ...

Only the driver writes ``manifest.json`` (atomically, strict JSON); its header is read by
:data:`STORE_FORMAT`. A shard's entry records each file's name, shape, size and SHA-256.
"""
import hashlib
import json
import os

from .._version import __version__
from ..exceptions import ModelFileError, StoreMismatchError
from ..persist import FileFormat, confined_path, file_sha256, write_json
from ._store import layer_file_name

__all__ = ["STORE_FORMAT", "MANIFEST", "SAMPLES", "SOURCE_PREFIX", "new_manifest",
           "samples_document", "read_manifest", "write_store_json", "shard_file", "file_ok",
           "check_same_store"]

#: ``manifest.json`` of a feature store.
STORE_FORMAT = FileFormat("repurpose.feature_store", 1, what="feature-store")
MANIFEST = "manifest.json"
SAMPLES = "samples.json"
SOURCE_PREFIX = os.path.join("source", "model")


def samples_document(plan):
    """``samples.json`` of a planned input with sample ids, or None for arrays."""
    if plan.sample_ids is None:
        return None
    return {"ids": plan.sample_ids, "labels": plan.labels, "classes": plan.classes}


def new_manifest(source_sha256, layers, pool, shard_size, plan, n_shards):
    """The manifest of a store no shard of which is done yet (what a call expects)."""
    manifest = dict(
        STORE_FORMAT.header(), repurpose_version=__version__, source_sha256=source_sha256,
        source_checkpoint=SOURCE_PREFIX.replace(os.sep, "/"), layers=layers, pool=pool,
        precision="float32", shard_size=shard_size, n_samples=plan.n_samples,
        n_shards=n_shards, input=plan.identity, shards=[None] * n_shards, complete=False)
    samples = samples_document(plan)
    if samples is not None:
        # Checked against samples.json's content on resume, through check_same_store.
        manifest["input"] = dict(plan.identity, samples_sha256=hashlib.sha256(
            json.dumps(samples, sort_keys=True).encode()).hexdigest())
    return manifest


def read_manifest(out):
    """Read ``out/manifest.json`` and check its header.

    Raises
    ------
    StoreMismatchError
        If it is not JSON, not a feature-store manifest, or of a newer format version.
    ModelFileError
        If a shard's file is not a path inside ``out`` (absolute, or leading out of it
        through ``..`` or a link).
    """
    path = os.path.join(out, MANIFEST)
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except ValueError as err:
        raise StoreMismatchError(f"{path!r} is not valid JSON ({err}); the store is damaged. "
                                 f"Delete {out!r} and extract again.") from err
    try:
        manifest = STORE_FORMAT.read(manifest, repr(path))
    except ModelFileError as err:
        raise StoreMismatchError(str(err)) from err
    _check_shard_files(out, manifest, repr(path))
    return manifest


def _check_shard_files(out, manifest, where):
    """Every shard file the manifest names must be a file inside ``out``."""
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        raise StoreMismatchError(f"{where}: shards is {type(shards).__name__}, not a list; the "
                                 f"store is damaged. Delete {out!r} and extract again.")
    for i, entry in enumerate(shards):
        if entry is None:
            continue
        files = entry.get("files") if isinstance(entry, dict) else None
        if not isinstance(files, dict) or not all(isinstance(f, dict) for f in files.values()):
            raise StoreMismatchError(f"{where}: shards[{i}] has no files table; the store is "
                                     f"damaged. Delete {out!r} and extract again.")
        for layer, info in files.items():
            confined_path(out, info.get("file"), where, f"shards[{i}].files.{layer}.file")


def write_store_json(path, document):
    """Write ``manifest.json`` or ``samples.json`` (atomically, replacing the old one)."""
    write_json(path, document, overwrite=True, indent=1, sort_keys=True)


def shard_file(layer, index):
    """Path of shard ``index`` of ``layer``, relative to the store folder."""
    return f"{layer_file_name(layer)[:-len('.npy')]}/shard-{index:06d}.npy"


def file_ok(out, entry, check_sha256):
    """Whether the shard file of manifest ``entry`` has its size (and SHA-256) on disk."""
    path = os.path.join(out, entry["file"])
    try:
        if os.path.getsize(path) != entry["nbytes"]:
            return False
    except OSError:
        return False
    if check_sha256:
        return file_sha256(path) == entry["sha256"]
    return True


def check_same_store(out, manifest, expected):
    """Raise StoreMismatchError unless the store at ``out`` was made by the same call."""
    where = f"The feature store {out!r}"
    if manifest["source_sha256"] != expected["source_sha256"]:
        raise StoreMismatchError(
            f"{where} was written by another source model (SHA-256 "
            f"{manifest['source_sha256'][:16]}... in its manifest, this model is "
            f"{expected['source_sha256'][:16]}...). Extract into another folder, or delete "
            f"{out!r} (or pass overwrite=True) to start over with this model.")
    if list(manifest["layers"]) != list(expected["layers"]):
        raise StoreMismatchError(
            f"{where} holds layers {manifest['layers']}, not {expected['layers']} as asked. "
            f"Pass layers={manifest['layers']} to finish it, or extract the other layers into "
            f"another folder.")
    for key, what in (("pool", "pool"), ("shard_size", "shard_size"),
                      ("n_samples", "number of samples"), ("input", "input")):
        if manifest[key] != expected[key]:
            raise StoreMismatchError(
                f"{where} was written with {what} {manifest[key]!r}, this call has "
                f"{expected[key]!r}; shards of the two cannot be mixed. Repeat the first "
                f"call to finish it, or use another folder.")
