"""Fixtures: fake servers on loopback, a config/env for them, the `arxlive` CLI, a real PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
# Luigi reads its configuration when first imported: the project's luigi.cfg, in-process too.
os.environ.setdefault("LUIGI_CONFIG_PATH", str(PROJECT / "luigi.cfg"))

from fakes import start_fakes  # noqa: E402

from arxlive.config import load_config, prepare_data_dir  # noqa: E402
from arxlive.store import Store  # noqa: E402

ARXLIVE = str(Path(sys.executable).parent / "arxlive")
DATE = "2026-11-20"


def require(var: str, reason: str):
    """Fail when the CI says the resource must be there (VAR=1), else skip with the reason."""
    if os.environ.get(var) == "1":
        pytest.fail(f"{reason} ({var}=1)")
    pytest.skip(reason)


@pytest.fixture
def fakes():
    """fakes(n=60, page_size=10, api_key=None, mailto=None, days=2) -> (oai, openalex); stopped after the test."""
    started = []

    def make(n=60, page_size=10, api_key=None, mailto=None, days=2, base_date=None):
        kw = {"base_date": base_date} if base_date else {}
        oai, oa = start_fakes(n, page_size=page_size, api_key=api_key, mailto=mailto, days=days, **kw)
        started.extend([oai, oa])
        return oai, oa

    yield make
    for s in started:
        s.stop()


def fake_env(oai, oa, data_dir: Path, **extra) -> dict:
    """The ARXLIVE_* variables for a run against the fakes: no delay, fast back-off."""
    env = {
        "ARXLIVE_OAI_URL": oai.url,
        "ARXLIVE_OPENALEX_URL": oa.url,
        "ARXLIVE_OAI_DELAY": "0",
        "ARXLIVE_DATA_DIR": str(data_dir),
        "ARXLIVE_BACKOFF_BASE": "0.01",
        "ARXLIVE_BACKOFF_MAX": "0.05",
        "ARXLIVE_RETRY_AFTER_MAX": "0.05",
        "ARXLIVE_MAX_RETRIES": "3",
        "ARXLIVE_HTTP_TIMEOUT": "10",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def make_cfg(tmp_path):
    def make(oai, oa, production=False, **extra):
        return load_config(fake_env(oai, oa, tmp_path / "data", **extra), production=production)
    return make


@pytest.fixture
def store_for():
    stores = []

    def make(cfg):
        prepare_data_dir(cfg)
        s = Store(cfg.store_url).create()
        stores.append(s)
        return s

    yield make
    for s in stores:
        s.close()


def cli_env(env: dict) -> dict:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ARXLIVE_")}
    full.update(env)
    full["LUIGI_CONFIG_PATH"] = str(PROJECT / "luigi.cfg")
    full["PYTHONUNBUFFERED"] = "1"
    return full


def run_cli(env: dict, *args, date=DATE, timeout=120) -> subprocess.CompletedProcess:
    """The real `arxlive run` command line, as the image's entry point runs it."""
    cmd = [ARXLIVE, "run", "--date", date, *args]
    return subprocess.run(cmd, env=cli_env(env), capture_output=True, text=True, timeout=timeout, cwd=PROJECT)


def start_cli(env: dict, *args, date=DATE) -> subprocess.Popen:
    cmd = [ARXLIVE, "run", "--date", date, *args]
    return subprocess.Popen(cmd, env=cli_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=PROJECT)


def summary_of(output: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith("ARXLIVE_SUMMARY ")]
    assert lines, f"no ARXLIVE_SUMMARY line in:\n{output[-3000:]}"
    return json.loads(lines[-1][len("ARXLIVE_SUMMARY "):])


def stats(server) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/_stats", timeout=5) as r:
        return json.loads(r.read())


# ------------------------------------------------------------------ PostgreSQL

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").exists():
            return d
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@pytest.fixture(scope="session")
def postgres():
    """A throw-away PostgreSQL server on a free loopback port (as user postgres when run as root)."""
    bindir = _pg_bin()
    if bindir is None:
        require("REQUIRE_POSTGRES", "PostgreSQL server binaries (initdb) not installed")
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        require("REQUIRE_POSTGRES", "running as root without runuser to start PostgreSQL as postgres")
    base = Path(tempfile.mkdtemp(prefix="arxlive-pg-"))
    data = base / "data"
    port = _free_port()

    def as_pg(*cmd):
        full = ["runuser", "-u", "postgres", "--", *cmd] if as_root else list(cmd)
        return subprocess.run(full, capture_output=True, text=True, timeout=60)

    if as_root:
        shutil.chown(base, "postgres", "postgres")
    r = as_pg(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
              "--no-sync")
    if r.returncode != 0:
        pytest.fail(f"initdb failed: {r.stderr}")
    r = as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-t", "30", "-o",
              f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    if r.returncode != 0:
        log = (base / "log").read_text() if (base / "log").exists() else ""
        pytest.fail(f"PostgreSQL did not start: {r.stderr}\n{log}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(postgres):
    """A fresh database on the session's server for one test."""
    import psycopg

    name = f"arxlive_{os.getpid()}_{int(time.time() * 1e6) % 10**9}"
    port = postgres.rsplit(":", 1)[1]
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres}/{name}"


# ------------------------------------------------------------------ MariaDB

@pytest.fixture(scope="session")
def mariadb():
    """A throw-away MariaDB server (Debian's mariadb-server binaries) on a free loopback port, in a
    temporary data dir, as user mysql when run as root."""
    mariadbd = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin")
    install = shutil.which("mariadb-install-db")
    if not (mariadbd and install):
        require("REQUIRE_MARIADB", "MariaDB server binaries (mariadbd, mariadb-install-db) not installed")
    as_root = os.geteuid() == 0
    user = ["--user=mysql"] if as_root else []
    base = Path(tempfile.mkdtemp(prefix="arxlive-mariadb-"))
    if as_root:
        shutil.chown(base, "mysql", "mysql")
    r = subprocess.run([install, "--no-defaults", f"--datadir={base / 'data'}", "--auth-root-authentication-method=normal",
                        "--skip-test-db", *user], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        pytest.fail(f"mariadb-install-db failed: {r.stdout}{r.stderr}")
    port = _free_port()
    server = subprocess.Popen([mariadbd, "--no-defaults", f"--datadir={base / 'data'}", f"--port={port}",
                               "--bind-address=127.0.0.1", f"--socket={base / 'sock'}", f"--pid-file={base / 'pid'}",
                               f"--log-error={base / 'log'}", "--character-set-server=utf8mb4",
                               "--collation-server=utf8mb4_unicode_ci", "--innodb-flush-log-at-trx-commit=2", *user])
    try:
        import pymysql

        deadline = time.time() + 60
        while True:
            try:
                pymysql.connect(host="127.0.0.1", port=port, user="root").close()
                break
            except pymysql.err.OperationalError:
                log = (base / "log").read_text() if (base / "log").exists() else ""
                if server.poll() is not None or time.time() > deadline:
                    pytest.fail(f"MariaDB did not start:\n{log[-3000:]}")
                time.sleep(0.2)
        yield f"mysql+pymysql://root@127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def mariadb_url(mariadb):
    """A fresh database on the session's server for one test."""
    import pymysql

    name = f"arxlive_{os.getpid()}_{int(time.time() * 1e6) % 10**9}"
    port = int(mariadb.rsplit(":", 1)[1])
    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
    try:
        conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()
    yield f"{mariadb}/{name}?charset=utf8mb4"


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("mariadb", marks=pytest.mark.mariadb)])
def server_db(request):
    """A fresh database on each kind of server store: PostgreSQL and MariaDB."""
    return request.getfixturevalue("pg_url" if request.param == "postgres" else "mariadb_url")
