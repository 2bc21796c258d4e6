"""One run at a time per store, whatever its data dir: the lock lives in the store itself.

SQLite: a row in `run_lock` naming its owner (host, pid, start), kept fresh by a heartbeat thread.
A row whose owner is dead (same host and the pid is gone, or no heartbeat for STALE_AFTER seconds)
is taken over, with a log line. PostgreSQL and MySQL/MariaDB: a session advisory lock, which the
server drops when the holder's connection ends, so it cannot go stale.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time

from .http import mask

log = logging.getLogger("arxlive.lock")

HEARTBEAT_EVERY = 10.0
STALE_AFTER = 60.0


class StoreLocked(RuntimeError):
    """Another run holds the store; the message names the holder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(holder: dict, now: float, host: str, stale_after: float = STALE_AFTER) -> bool:
    """A holder is dead when it ran on this host and its pid is gone, or when its heartbeat stopped."""
    if holder["host"] == host and not _alive(holder["pid"]):
        return True
    return now - holder["heartbeat"] > stale_after


def describe_holder(holder: dict) -> str:
    return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}, {holder['what']}"


class StoreLock:
    """with StoreLock(store, "arxlive-production", "run 2026-11-20"): ... raises StoreLocked."""

    def __init__(self, store, name: str, what: str, heartbeat_every: float = HEARTBEAT_EVERY,
                 stale_after: float = STALE_AFTER):
        self.store, self.name, self.what = store, name, what
        self.heartbeat_every, self.stale_after = heartbeat_every, stale_after
        self.host = socket.gethostname()
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.owner = f"{self.host}:{os.getpid()}:{started}"[:190]
        self.row = {"name": name, "owner": self.owner, "host": self.host, "pid": os.getpid(), "started": started,
                    "what": what}
        self._conn = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self):
        if self.store.engine.dialect.name == "sqlite":
            self._take_row()
        else:
            self._conn = self.store.advisory_lock(self.name)
            if self._conn is None:
                url = mask(self.store.engine.url.render_as_string(hide_password=True), [])
                raise StoreLocked(f"another arxlive run holds the advisory lock {self.name} on {url}; "
                                  "refusing to start")
        return self

    def _take_row(self):
        row = dict(self.row, heartbeat=time.time())
        if not self.store.lock_insert(row):
            holder = self.store.lock_holder(self.name)
            if holder is None:                       # released between our insert and our read
                return self._take_row()
            if not is_stale(holder, time.time(), self.host, self.stale_after):
                raise StoreLocked(f"another arxlive run holds the store ({describe_holder(holder)}); "
                                  "refusing to start")
            if not self.store.lock_replace(self.name, holder["owner"], row):
                return self._take_row()
            log.warning("taking over the store lock of a dead run (%s; last heartbeat %.0f s ago)",
                        describe_holder(holder), time.time() - holder["heartbeat"])
        self._beat = threading.Thread(target=self._heartbeat, name="arxlive-lock-heartbeat", daemon=True)
        self._beat.start()

    def _heartbeat(self):
        while not self._stop.wait(self.heartbeat_every):
            if not self.store.lock_beat(self.name, self.owner, time.time()):
                log.error("the store lock %s was taken over by another run", self.name)
                return

    def __exit__(self, *exc):
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self.store.lock_delete(self.name, self.owner)
        if self._conn is not None:
            self.store.advisory_unlock(self._conn, self.name)
        return False
