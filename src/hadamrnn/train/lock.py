"""One run per directory: ``train`` holds an exclusive OS lock on ``RUN/.lock`` while it runs.

The lock is ``flock(2)`` on an open file, so the kernel releases it when the process exits in any
way, SIGKILL included: a lock file left behind by a killed run is not locked and blocks nothing
(there is no stale lock to clean up). The holder writes its process id, host and command line
into the file, so a refused second ``train`` can name it, and removes the file when it ends.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from pathlib import Path

__all__ = ["RunLock", "RunLockedError", "LOCK_NAME"]

LOCK_NAME = ".lock"


class RunLockedError(ValueError):
    """Another live process trains in this run directory."""


class RunLock:
    """``with RunLock(run_dir):`` — exclusive use of ``run_dir`` (created if missing; a directory
    this lock created and nobody wrote into is removed again on exit)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.created = False
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        self.created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 4096).decode(errors="replace").strip() or "a process that is starting"
                os.close(fd)
                raise RunLockedError(f"{self.run_dir} is in use by a live training run ({holder}); wait for it to "
                                     f"end, stop it (Ctrl-C writes a checkpoint), or choose another --out") from None
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                break
            os.close(fd)  # the holder removed the file as we opened it: lock the one now at the path
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}: {' '.join(sys.argv)[:1000]}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still held: whoever opens the path next makes a new file
        if self.created and not any(self.run_dir.iterdir()):
            self.run_dir.rmdir()  # nothing was written: leave no empty run directory behind
        os.close(self.fd)  # releases the lock
        self.fd = None
