"""Throw-away servers for the platform tests, each on a free 127.0.0.1 port and stopped on exit:
PostgreSQL (Debian's binaries, as user postgres when run as root), Redis (Debian's
redis-server), and a release store (a folder served over HTTP that asks for a token, as GitLab's
package registry does).

A missing server binary skips the test, or fails it when the CI says the server must be there
(REQUIRE_POSTGRES=1, REQUIRE_REDIS=1).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from running_airflow import free_port


def require(var: str, reason: str):
    """Fail when the CI says the server must be there (VAR=1), else skip with the reason."""
    if os.environ.get(var) == "1":
        pytest.fail(f"{reason} ({var}=1)")
    pytest.skip(reason)


def wait_for_port(port: int, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} not answering on 127.0.0.1:{port} after {timeout:.0f} s:\n"
                       f"{log.read_text()[-2000:] if log.exists() else ''}")


@contextlib.contextmanager
def postgres_server():
    """PostgreSQL on a free port; yields the SQLAlchemy URL of its `postgres` database."""
    bindir = next((d for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
                   if (d / "initdb").exists()), None)
    if bindir is None and shutil.which("initdb"):
        bindir = Path(shutil.which("initdb")).parent
    if bindir is None:
        require("REQUIRE_POSTGRES", "PostgreSQL server binaries (initdb) not installed")
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="platform-pg-"))
    if as_root:
        shutil.chown(base, "postgres", "postgres")

    def as_postgres(*command: str) -> subprocess.CompletedProcess:
        command = ("runuser", "-u", "postgres", "--", *command) if as_root else command
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    port = free_port()
    init = as_postgres(str(bindir / "initdb"), "-D", str(base / "data"), "-U", "postgres", "--auth=trust",
                       "-E", "UTF8", "--no-sync")
    assert init.returncode == 0, f"initdb failed: {init.stderr}"
    start = as_postgres(str(bindir / "pg_ctl"), "-D", str(base / "data"), "-l", str(base / "log"), "-w", "-t", "60",
                        "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    assert start.returncode == 0, f"PostgreSQL did not start: {start.stderr}"
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_postgres(str(bindir / "pg_ctl"), "-D", str(base / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def redis_server():
    """Redis on a free port, nothing persisted; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        require("REQUIRE_REDIS", "redis-server not installed (apt-get install redis-server)")
    base = Path(tempfile.mkdtemp(prefix="platform-redis-"))
    port = free_port()
    log = base / "redis.log"
    with log.open("w") as out:
        process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--dir", str(base)],
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_port(port, 30, "redis-server", log)
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class ReleaseStore:
    """A folder served over HTTP, GitLab's layout: <url>/<version>/platform-airflow-dags-<version>.tar.gz.
    Every request must carry `JOB-TOKEN: <token>`; `requests` records (path, status) of each."""

    folder: Path
    token: str
    url: str = ""
    requests: list[tuple[str, int]] = field(default_factory=list)

    def publish(self, archive: Path) -> str:
        """Copy an archive and its .sha256 into the store; returns the archive's URL."""
        version = archive.name.removeprefix("platform-airflow-dags-").removesuffix(".tar.gz")
        target = self.folder / version
        target.mkdir(parents=True, exist_ok=True)
        for path in (archive, archive.with_name(archive.name + ".sha256")):
            shutil.copy(path, target / path.name)
        return f"{self.url}/{version}/{archive.name}"

    def fetched(self, name: str) -> int:
        """How many times a file of that name was served."""
        return sum(1 for path, status in self.requests if status == 200 and path.endswith(f"/{name}"))


@contextlib.contextmanager
def release_store_server(folder: Path, token: str, delay: float = 0.0):
    """A ReleaseStore on a free port; `delay` seconds before each answer (to make fetches overlap)."""
    store = ReleaseStore(folder, token)

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):
            time.sleep(delay)
            if self.headers.get("JOB-TOKEN") != token:
                self.send_error(401, "a JOB-TOKEN header is required")
                return
            super().do_GET()

        def send_response(self, code, message=None):
            store.requests.append((self.path, code))
            super().send_response(code, message)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
    store.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield store
    finally:
        server.shutdown()
        server.server_close()
