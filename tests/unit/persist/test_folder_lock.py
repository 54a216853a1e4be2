"""FolderLock: a second writer (process or thread) is refused with the holder's name, a lock
left by a killed process is taken over, and nothing is left behind."""
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from repurpose.exceptions import LockedError
from repurpose.persist import FolderLock

HOLDER = """
import sys, time
from repurpose.persist import FolderLock
with FolderLock(sys.argv[1], what="job folder"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold(path, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    proc.stdout.close()
    return proc


def test_second_process_is_refused_with_the_holder_named(tmp_path):
    proc = _hold(tmp_path / "out", 60)
    try:
        with pytest.raises(LockedError) as info:
            with FolderLock(tmp_path / "out", what="job folder"):
                pass
        message = str(info.value)
        assert f"process {proc.pid} on {socket.gethostname()}" in message
        assert "job folder" in message and "since 20" in message
    finally:
        proc.kill()
        proc.wait()


def test_waits_for_the_holder_within_timeout(tmp_path):
    proc = _hold(tmp_path / "out", 1)
    start = time.monotonic()
    with FolderLock(tmp_path / "out", timeout=30):
        assert time.monotonic() - start < 30
    proc.wait()
    assert not os.path.exists(tmp_path / ".out.lock")


def test_lock_of_a_killed_process_is_taken_over(tmp_path, caplog):
    proc = _hold(tmp_path / "journal.json", 60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert os.path.exists(tmp_path / ".journal.json.lock")  # what SIGKILL leaves
    with caplog.at_level(logging.WARNING, logger="repurpose"):
        with FolderLock(tmp_path / "journal.json", what="tuning journal"):
            pass
    assert f"left by process {proc.pid}" in caplog.text
    assert "no longer running" in caplog.text
    assert sorted(os.listdir(tmp_path)) == []


def test_same_thread_reenters_other_thread_is_refused(tmp_path):
    errors = []

    def other():
        try:
            with FolderLock(tmp_path / "store", what="feature store"):
                pass
        except LockedError as err:
            errors.append(str(err))

    with FolderLock(tmp_path / "store"):
        with FolderLock(tmp_path / "store"):
            pass
        assert os.path.exists(tmp_path / ".store.lock")  # the inner exit keeps it
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert len(errors) == 1 and "another thread of this process" in errors[0]
    assert not os.path.exists(tmp_path / ".store.lock")


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="create it first"):
        with FolderLock(tmp_path / "absent" / "out"):
            pass


def test_released_after_an_error_inside(tmp_path):
    with pytest.raises(KeyError):
        with FolderLock(tmp_path / "out"):
            raise KeyError("boom")
    with FolderLock(tmp_path / "out"):
        pass
