"""An OS-level lock on what one process writes (a study journal, a job folder, a feature
store, a checkpoint folder), so that a second writer is refused with the holder's name
instead of interleaving its writes with the first's.

The lock is ``flock`` on a hidden sibling file, ``.<name>.lock`` next to the locked path,
through portalocker (a well-kept library that gluoncv already installs). The kernel drops it
when its process dies, however it dies, so a lock file left by a killed process is taken
over by the next run, which says so; no process id is trusted to decide that. A sibling
rather than a file inside a folder, because replacing the folder (``--overwrite``) must not
replace the lock with it. The holder writes who it is (pid, host, since when, command) into
the file for the message a second writer gets, and removes the file when it lets go.
"""
import datetime
import json
import logging
import os
import socket
import sys
import threading
import time

import portalocker

from ..exceptions import LockedError

logger = logging.getLogger(__name__)

__all__ = ["FolderLock"]

_HELD = {}  # lock file -> [FolderLock, thread id, depth] held by this process
_HELD_GUARD = threading.Lock()


def _lock_file(path):
    path = os.path.abspath(os.fspath(path))
    return os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".lock")


def _describe(info):
    if not isinstance(info, dict) or "pid" not in info:
        return "another process (it left no details)"
    text = f"process {info['pid']} on {info.get('host', '?')}"
    if info.get("since"):
        text += f" since {info['since']}"
    if info.get("command"):
        text += f" ({info['command']})"
    return text


def _program():
    """The running program's name: ``repurpose`` for ``python -m repurpose.cli`` too."""
    name = os.path.basename(sys.argv[0] or "python")
    return "repurpose" if name == "__main__.py" and "repurpose" in sys.argv[0] else name


def _read_info(handle):
    try:
        handle.seek(0)
        return json.loads(handle.read() or "null")
    except (OSError, ValueError):
        return None


class FolderLock:
    """An exclusive lock on ``path`` (a folder or file) held while a process writes there.

    Use it as a context manager. A second process that asks for the same path is refused at
    once with :class:`~repurpose.exceptions.LockedError` naming the holder, or waits up to
    ``timeout`` seconds for it. In one process the same thread may enter it again (the
    inner ``with`` is a no-op); another thread is refused like another process.

    Parameters
    ----------
    path : str or path-like
        What is locked. Its folder must exist; ``path`` itself need not.
    what : str, default='folder'
        What ``path`` is, for messages ("tuning journal", "feature store").
    timeout : float, default=0
        Seconds to wait for a holder to let go; 0 refuses at once.

    Attributes
    ----------
    lock_path : str
        The lock file, ``.<name>.lock`` next to ``path``; it exists while the lock is held.

    Raises
    ------
    LockedError
        On entry, if another process (or thread) holds the lock past ``timeout``.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = os.path.join(tempfile.mkdtemp(), "out")
    >>> with FolderLock(folder, what="job folder") as lock:
    ...     os.path.basename(lock.lock_path), os.path.exists(lock.lock_path)
    ('.out.lock', True)
    >>> os.path.exists(lock.lock_path)
    False
    """

    def __init__(self, path, what="folder", timeout=0.0):
        self.path = os.fspath(path)
        self.what = what
        self.timeout = float(timeout)
        self.lock_path = _lock_file(self.path)
        self._handle = None
        self._pid = None

    def __enter__(self):
        with _HELD_GUARD:
            held = _HELD.get(self.lock_path)
            if held is not None and held[1] == threading.get_ident():
                held[2] += 1
                return self
            if held is not None:
                raise LockedError(self._refusal(held[0]._info or {}, "another thread of "
                                                                     "this process"))
        self._acquire()
        with _HELD_GUARD:
            _HELD[self.lock_path] = [self, threading.get_ident(), 1]
        return self

    def __exit__(self, *exc):
        with _HELD_GUARD:
            held = _HELD.get(self.lock_path)
            if held is None or held[0] is not self and held[1] != threading.get_ident():
                return False
            held[2] -= 1
            if held[2]:
                return False
            del _HELD[self.lock_path]
            owner = held[0]
        owner._release()
        return False

    def _refusal(self, info, who=None):
        return (f"The {self.what} {self.path!r} is in use by {who or _describe(info)}. Wait "
                f"for it to finish or stop it; two writers would mix their records. (Lock "
                f"file: {self.lock_path!r}; a lock of a process that has died is taken over "
                f"on its own.)")

    def _acquire(self):
        folder = os.path.dirname(self.lock_path)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"Folder {folder!r} for the {self.what} {self.path!r} does "
                                    f"not exist; create it first.")
        deadline = time.monotonic() + self.timeout
        while True:
            handle = open(self.lock_path, "a+", encoding="utf-8")
            try:
                portalocker.lock(handle, portalocker.LOCK_EX | portalocker.LOCK_NB)
            except portalocker.exceptions.LockException:
                info = _read_info(handle)
                handle.close()
                if time.monotonic() >= deadline:
                    raise LockedError(self._refusal(info)) from None
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
                continue
            # The holder before us may have removed the file between our open and our lock:
            # then we hold a lock on a file nobody else can see, so start again.
            try:
                same = os.path.samestat(os.fstat(handle.fileno()), os.stat(self.lock_path))
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()
        stale = _read_info(handle)
        if stale:
            logger.warning("Taking over the lock on %s %r left by %s, which is no longer "
                           "running.", self.what, self.path, _describe(stale))
        self._info = {"pid": os.getpid(), "host": socket.gethostname(),
                      "since": datetime.datetime.now(datetime.timezone.utc)
                      .isoformat(timespec="seconds"),
                      "command": " ".join([_program()] + sys.argv[1:3])}
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(self._info))
        handle.flush()
        self._handle, self._pid = handle, os.getpid()
        logger.debug("Locked %s %r", self.what, self.path)

    def _release(self):
        handle, self._handle = self._handle, None
        if handle is None or self._pid != os.getpid():  # a forked child leaves it to its parent
            return
        try:
            os.remove(self.lock_path)  # while still held, so nobody locks the removed file
        except FileNotFoundError:
            pass
        finally:
            portalocker.unlock(handle)
            handle.close()
        logger.debug("Unlocked %s %r", self.what, self.path)

    _info = None
