"""File helpers every tool shares: a checksum, an atomic write, a lock. Standard library only."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from pathlib import Path
from typing import IO

from platformkit.errors import PlatformError

LOCK_POLL_SECONDS = 0.1


class Busy(PlatformError):
    """A lock another process holds (for longer than we would wait)."""


def sha256_of(path: Path) -> str:
    """One definition, so an archive's checksum, its manifest and deploy's check never disagree."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_atomically(path: Path, text: str) -> None:
    """Readers, and a kill at any point, see the old content or the new one."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def acquire(path: Path, *, shared: bool = False, wait: float = 0) -> IO:
    """An open file holding an flock on `path` (created if need be), shared or exclusive; closing
    it releases the lock. Waits up to `wait` seconds (polled: flock has no timeout), then Busy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                raise Busy(f"{path} is locked by another process" + (f" (waited {wait:.0f} s)" if wait else "")) from None
            time.sleep(LOCK_POLL_SECONDS)


@contextlib.contextmanager
def locked(path: Path, *, wait: float = 0):
    """An exclusive lock on `path` for the `with` block (see `acquire`)."""
    with acquire(path, wait=wait):
        yield
