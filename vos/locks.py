"""One run per output: a lock file beside each output, held with ``flock`` by the process writing it.

``OutputLock(OUT/bear)`` is the file ``OUT/.bear.lock``. The kernel drops an ``flock`` when its process dies, however
it dies, so a lock left by a killed run is simply taken over by the next one; the pid and host written inside are only
for messages. Locks are not re-entrant: one process takes each lock once. (POSIX only: ``fcntl``.)
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path


class OutputLock:
    """An exclusive, non-blocking claim on the output ``target`` (a folder or a file) by this process."""

    def __init__(self, target: str | Path) -> None:
        self.target = target = Path(target)
        self.path = target.with_name(f".{target.name}.lock")
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False when a live process holds it."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            # The holder may have released and removed the file between our open and flock: then we hold a lock on
            # a file nobody else will open; retry on the path's current file.
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """Who holds the lock, as written in it (for messages)."""
        try:
            pid, _, host = self.path.read_text().strip().partition(" ")
        except OSError:
            return "unknown process"
        return f"pid {pid} on {host}" if pid else "a process that is starting"

    def release(self) -> None:
        """Remove the lock file and drop the lock (in that order, so no one locks a removed file and keeps it)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputLock:
        if not self.acquire():
            from seggpt_core.errors import InputError

            raise InputError(f"{self.target}: being written by another seggpt-vos run ({self.holder()}); wait for it "
                             "to finish or choose another output")
        return self

    def __exit__(self, *exc) -> None:
        self.release()
