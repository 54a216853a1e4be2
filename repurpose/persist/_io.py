"""File primitives: write to a temporary sibling, fsync, then ``os.replace``, so that a crash
never leaves a half-written file under the final name, and never overwrite unless asked.

Also here, for every writer and reader of the toolkit's folders: a full disk is reported with
the path and the free space (:func:`explain_full_disk`), the temporary siblings a killed
writer left are removed by the next one (:func:`remove_temporaries`), and a path read from a
saved file must stay inside its folder (:func:`confined_path`).
"""
import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import tempfile

from ..exceptions import DiskFullError, ModelFileError

logger = logging.getLogger(__name__)

__all__ = ["atomic_write", "check_writable", "file_sha256", "confined_path",
           "explain_full_disk", "remove_temporaries"]

#: The errors of a write the file system has no room for: no space, over quota, over the
#: process's file-size limit (RLIMIT_FSIZE).
_FULL_ERRNOS = frozenset(getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG")
                         if hasattr(errno, name))


def check_writable(paths, overwrite=False):
    """Raise ``FileExistsError`` if any of ``paths`` exists and ``overwrite`` is False.

    Call it for every file a save will write, before writing the first one, so a save either
    writes all its files or none.

    Parameters
    ----------
    paths : iterable of str or path-like
        Every file the caller is about to write.
    overwrite : bool, default=False
        Allow existing files to be replaced.

    Raises
    ------
    FileExistsError
        If a file exists and ``overwrite`` is False (the message names the first).
    FileNotFoundError
        If the folder of a file does not exist.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> check_writable([os.path.join(folder, "new.json")])
    >>> check_writable([folder])
    Traceback (most recent call last):
    ...
    FileExistsError: ... already exists. Choose another path, remove it, or pass overwrite=True.
    """
    existing = [os.fspath(p) for p in paths if os.path.exists(p)]
    if existing and not overwrite:
        raise FileExistsError(
            f"{existing[0]!r} already exists" + (f" (and {len(existing) - 1} more of the files "
                                                  f"to write)" if len(existing) > 1 else "")
            + ". Choose another path, remove it, or pass overwrite=True."
        )
    for path in paths:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"Folder {parent!r} for {os.fspath(path)!r} does not exist; "
                                    f"create it first.")


def atomic_write(path, write, overwrite=False):
    """Write a file through ``write(tmp_path)`` and move it to ``path`` atomically.

    Parameters
    ----------
    path : str or path-like
        Final file name.
    write : callable
        Called with a temporary file name in the same folder; must write the whole file there.
    overwrite : bool, default=False
        Replace an existing ``path``; otherwise an existing ``path`` raises ``FileExistsError``.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False; nothing is written.
    DiskFullError
        If the disk (or quota, or file-size limit) has no room; no temporary file is left.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text("hello"))
    >>> path.read_text()
    'hello'
    """
    path = os.fspath(path)
    check_writable([path], overwrite)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    os.close(fd)
    try:
        with explain_full_disk(path):
            write(tmp)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a file gets the usual mode
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    logger.debug("Wrote %s", path)


def _read_umask():
    mask = os.umask(0)  # reading the umask means setting it; put it back at once
    os.umask(mask)
    return mask


# Read once, at import (before any threads of ours): os.umask is process-wide.
_UMASK = _read_umask()


def file_sha256(path, chunk_size=1 << 20):
    """Return the hex SHA-256 of a file, read in chunks.

    Parameters
    ----------
    path : str or path-like
        The file.
    chunk_size : int, default=1 << 20
        Bytes read at a time, so large files need little memory.

    Returns
    -------
    str
        64 lowercase hex digits.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "empty")
    >>> open(path, "wb").close()
    >>> file_sha256(path)[:16]
    'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_full_disk(err):
    if isinstance(err, OSError):
        if err.errno in _FULL_ERRNOS:
            return True
        # numpy's tofile reports a short write without an errno.
        return err.errno is None and "requested and" in str(err) and "written" in str(err)
    # MXNet's file stream (mx.nd.save, Symbol.save) reports a short write as MXNetError;
    # matched by name, so persist does not import MXNet.
    return type(err).__name__ == "MXNetError" and "Write incomplete" in str(err)


def _size(n_bytes):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n_bytes < 1024 or unit == "TiB":
            return f"{n_bytes} bytes" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024


@contextlib.contextmanager
def explain_full_disk(path, hint=None):
    """Turn a write that failed for lack of room inside the block into a
    :class:`~repurpose.exceptions.DiskFullError` naming ``path``, the free space left there
    and what to do.

    ``ENOSPC`` (disk full), ``EDQUOT`` (quota) and ``EFBIG`` (file-size limit) count, and the
    short writes numpy and MXNet report without an errno; anything else passes unchanged.

    Parameters
    ----------
    path : str or path-like
        The file or folder being written (named in the message; its file system is the one
        whose free space is reported).
    hint : str, default=None
        A sentence to add, e.g. what is kept and how to continue.

    Returns
    -------
    context manager
        Use it in a ``with`` statement around the writes.

    Raises
    ------
    DiskFullError
        Chained to the original error.

    Examples
    --------
    >>> import errno, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with explain_full_disk(folder + '/big.npy'):
    ...     raise OSError(errno.ENOSPC, 'No space left on device')
    Traceback (most recent call last):
    ...
    repurpose.exceptions.DiskFullError: [Errno 28] Not enough room to write '.../big.npy': ...
    """
    path = os.fspath(path)
    try:
        yield
    except DiskFullError as err:
        # Raised by a write inside this one: keep its path when it names a file inside
        # ``path``, name ``path`` instead of a temporary file outside it.
        inside = os.path.commonpath([os.path.abspath(path), os.path.abspath(err.path)]) == \
            os.path.abspath(path)
        if inside and hint is None:
            raise
        raise DiskFullError(err.errno, err.path if inside else path, err.reason,
                            _free_space(path if not inside else err.path),
                            " ".join(h for h in (err.hint, hint) if h) or None) \
            from err.__cause__
    except Exception as err:
        if not _is_full_disk(err):
            raise
        if isinstance(err, OSError) and err.errno:
            code, reason = err.errno, os.strerror(err.errno)
        else:
            code, reason = errno.ENOSPC, ("the write was cut short (no space, over quota or "
                                          "over the file-size limit)")
        raise DiskFullError(code, path, reason, _free_space(path), hint) from err


def _free_space(path):
    """The free space in the folder of ``path`` (or its nearest existing parent), in words."""
    folder = os.path.dirname(os.path.abspath(path))
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        return _size(shutil.disk_usage(folder).free)
    except OSError:
        return "an unknown amount"


#: ``.<name>.XXXXXXXX.tmp``: what ``tempfile.mkstemp`` / ``mkdtemp`` make for
#: :func:`atomic_write` and the folder writers (8 characters of ``[a-z0-9_]``).
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.(?P<suffix>[a-z]+)$")


def remove_temporaries(folder, name=None, suffixes=("tmp",)):
    """Remove from ``folder`` the temporary files and folders that writers killed mid-write
    left (``.<name>.XXXXXXXX.tmp``); return their names.

    Call it only while holding the :class:`~repurpose.persist.FolderLock` of what is written
    there, so that a running writer's temporary files are never removed. Each removal is
    logged at INFO with its size.

    Parameters
    ----------
    folder : str or path-like
        Where to look (not below it). A folder that does not exist holds nothing.
    name : str, default=None
        Only the temporaries of this file or folder name (those of a saved model next to
        others); None removes every temporary in ``folder``.
    suffixes : tuple of str, default=('tmp',)
        The suffixes that mark temporaries (``'old'`` for a folder swapped out by an
        overwrite).

    Returns
    -------
    list of str
        The names removed.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> for name in ('.epoch-0002.params.k1ll3d00.tmp', '.notes.txt', 'epoch-0001.params'):
    ...     open(os.path.join(folder, name), 'w').close()
    >>> remove_temporaries(folder)
    ['.epoch-0002.params.k1ll3d00.tmp']
    >>> sorted(os.listdir(folder))
    ['.notes.txt', 'epoch-0001.params']
    """
    folder = os.fspath(folder)
    try:
        entries = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        match = _TEMPORARY.match(entry)
        if not match or match["suffix"] not in suffixes or \
                name is not None and match["name"] != name:
            continue
        path = os.path.join(folder, entry)
        size = _tree_size(path)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except FileNotFoundError:
            continue
        logger.info("Removed %s (%s), left by a write that was interrupted (a killed "
                    "process)", path, _size(size))
        removed.append(entry)
    return removed


def _tree_size(path):
    if not os.path.isdir(path) or os.path.islink(path):
        return os.path.getsize(path) if os.path.lexists(path) else 0
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)


def confined_path(folder, relative, where, key):
    """Return ``folder/relative`` after checking that it stays inside ``folder``.

    For every path read from a file the toolkit wrote (a manifest's array file, a source
    prefix, a shard file, a checkpoint's params file): it must be relative and, after ``..``
    and symbolic links are resolved, inside the folder; otherwise an edited or foreign file
    could make a load read anything on the machine.

    Parameters
    ----------
    folder : str or path-like
        The folder the file was read from.
    relative : str
        The path as read from the file.
    where : str
        The file it was read from, for the message.
    key : str
        Its key in that file (``'source.prefix'``, ``'shards[3].files.pool5.file'``).

    Returns
    -------
    str
        ``os.path.join(folder, relative)`` with ``..`` collapsed.

    Raises
    ------
    ModelFileError
        Naming ``where``, ``key`` and the value, if the value is not a non-empty relative
        path, or it leads outside ``folder``.

    Examples
    --------
    >>> confined_path('/data/model', 'source/model', 'manifest.json', 'source.prefix')
    '/data/model/source/model'
    >>> confined_path('/data/model', '../other/model', 'manifest.json', 'source.prefix')
    Traceback (most recent call last):
    ...
    repurpose.exceptions.ModelFileError: manifest.json: source.prefix is '../other/model', ...
    """
    folder = os.fspath(folder)
    if not isinstance(relative, str) or not relative or "\0" in relative:
        raise ModelFileError(
            f"{where}: {key} is {relative!r}, not a relative path of a file in {folder!r}. "
            f"The file is damaged or was not written by repurpose; write it again.")
    if os.path.isabs(relative):
        raise ModelFileError(
            f"{where}: {key} is {relative!r}, an absolute path; paths in a saved file are "
            f"relative to its folder {folder!r}. The file was edited or was not written by "
            f"repurpose; write it again.")
    joined = os.path.normpath(os.path.join(folder, relative))
    root = os.path.realpath(folder)
    target = os.path.realpath(joined)
    if os.path.commonpath([root, target]) != root:
        raise ModelFileError(
            f"{where}: {key} is {relative!r}, which leads outside {folder!r} (to "
            f"{target!r}). A saved file may only name files inside its own folder; it was "
            f"edited or moved with links. Write it again.")
    return joined
