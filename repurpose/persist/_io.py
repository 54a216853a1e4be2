"""File primitives: write to a temporary sibling, fsync, then ``os.replace``, so that a crash
never leaves a half-written file under the final name, and never overwrite unless asked.
"""
import hashlib
import logging
import os
import tempfile

logger = logging.getLogger(__name__)

__all__ = ["atomic_write", "check_writable", "file_sha256"]


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
