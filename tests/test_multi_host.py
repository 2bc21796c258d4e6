"""Releases on more than one machine, for real: PostgreSQL as the metadata database, Redis as the
Celery broker, the scheduler, DAG processor and API server on one AIRFLOW_HOME, and two Celery
workers, each with its own AIRFLOW_HOME and no shared disk, that fetch releases from a store served
over HTTP. Every server is on 127.0.0.1 and stopped at the end.

Deploy N; start a run whose first task waits (worker A); deploy N+1, which changes what the second
task logs; start a second run; open the gate. The first run's second task (worker B, which never
had N) logs N's text, the second run's logs N+1's, each worker fetched the versions it ran and no
others, and no poll of the API ever saw an import error.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import AIRFLOW, airflow_env, build_probe_release, run
from running_airflow import RunningAirflow, Watcher
from services import postgres_server, redis_server, release_store_server

from platformkit.airflow_api import AirflowAPI, NotFound

pytestmark = pytest.mark.slow

DAG = "release_probe"
GATE = "release_probe_gate"  # the Variable the DAG's first task waits for (tests/fixtures/release_probe.py)
TOKEN = "job-token-5d2a"
FIRST, SECOND = "rel-1", "rel-2"


def bundle_config(store_url: str) -> str:
    """The same on every host: the releases bundle, fetching from the store (GitLab's layout)."""
    return json.dumps([{"name": "releases", "classpath": "platformkit.bundle.ReleaseBundle",
                        "kwargs": {"release_store": f"{store_url}/{{version}}"}}])


@dataclass
class Worker:
    name: str
    home: Path
    process: subprocess.Popen

    @property
    def log(self) -> Path:
        return self.home / "worker.log"

    def releases(self) -> set[str]:
        folder = self.home / "releases"
        return {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")} if folder.exists() else set()

    def task_log(self, run_id: str, task_id: str) -> str:
        found = list((self.home / "logs").glob(f"dag_id={DAG}/run_id={run_id}/task_id={task_id}/attempt=*.log"))
        return "\n".join(p.read_text() for p in found)

    def prepare_ms(self, run_id: str, task_id: str) -> int | None:
        """How long the task's bundle took to get ready (Airflow logs it at start-up)."""
        found = re.search(r'"bundle_prepare_ms":\s*(\d+)', self.task_log(run_id, task_id))
        return int(found.group(1)) if found else None

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:  # the task supervisors may outlive the worker's main process
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


def start_worker(name: str, queue: str, env: dict[str, str], home: Path) -> Worker:
    """A Celery worker on its own AIRFLOW_HOME, serving one queue. It gets no database and no log
    server (the log server would bind every interface); its task logs stay on its own disk."""
    home.mkdir(parents=True)
    worker_env = {k: v for k, v in env.items()
                  if k not in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__DAGS_FOLDER")}
    worker_env.update({"AIRFLOW_HOME": str(home),
                       "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "dag-bundles")})
    with (home / "worker.log").open("w") as log:
        process = subprocess.Popen(
            [str(AIRFLOW), "celery", "worker", "--queues", queue, "--concurrency", "2", "--skip-serve-logs",
             "--celery-hostname", f"{name}@%h"],
            env=worker_env, cwd=home, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    return Worker(name, home, process)


def wait_until(check, timeout: float, what: str, context=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (result := check()) is not None and result is not False:
            return result
        time.sleep(1)
    pytest.fail(f"{what} not within {timeout:.0f} s\n{context()}")


def task_state(api: AirflowAPI, run_id: str, task_id: str) -> str | None:
    try:
        return api.get(f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task_id}")["state"]
    except NotFound:
        return None


@pytest.fixture(scope="module")
def services():
    with postgres_server() as database, redis_server() as broker:
        yield database, broker


def test_runs_keep_their_release_across_a_deploy_with_workers_on_other_hosts(services, probe_checkout, tmp_path):
    database, broker = services
    dist = tmp_path / "dist"
    archives = {v: build_probe_release(probe_checkout, v, dist) for v in (FIRST, SECOND)}
    auth = {"DEPLOY_AUTH_HEADER": f"JOB-TOKEN: {TOKEN}"}  # the store's token, from the environment only
    with release_store_server(tmp_path / "store", TOKEN) as store:
        urls = {v: store.publish(a) for v, a in archives.items()}
        home = tmp_path / "scheduler-host"

        def deploy(version: str) -> None:
            run(sys.executable, "-m", "platformkit", "deploy", urls[version], "--airflow-home", home,
                env={**os.environ, **auth})

        deploy(FIRST)
        env = {
            **airflow_env(home), **auth,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": f"{broker}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"{broker}/1",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": bundle_config(store.url),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "dag-bundles"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            # Shared by every component and worker: the tokens the scheduler signs, the API server checks.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        }
        run(AIRFLOW, "db", "migrate", env=env, timeout=900)
        airflow = RunningAirflow.start(home, env, timeout=300)
        workers: list[Worker] = []
        watcher = None

        def context() -> str:
            tails = [f"--- worker {w.name}\n{w.log.read_text(errors='replace')[-3000:]}" for w in workers if w.log.exists()]
            return airflow.log_tails(40) + "\n" + "\n".join(tails)

        try:
            workers = [start_worker("worker-a", "first", airflow.env, tmp_path / "worker-a-host"),
                       start_worker("worker-b", "second", airflow.env, tmp_path / "worker-b-host")]
            for worker in workers:
                wait_until(lambda worker=worker: " ready." in worker.log.read_text(errors="replace"), 180,
                           f"celery {worker.name}", context)
            api = AirflowAPI(airflow.url, "admin", airflow.password())

            def dag_version() -> str | None:
                try:
                    return api.get(f"/dags/{DAG}")["bundle_version"]
                except NotFound:
                    return None

            wait_until(lambda: dag_version() == FIRST, 180, f"{DAG} parsed on {FIRST}", context)
            watcher = Watcher(airflow, {DAG})
            watcher.start()
            api.post("/variables", {"key": GATE, "value": "closed"})

            api.post(f"/dags/{DAG}/dagRuns", {"dag_run_id": "started-on-first", "logical_date": None})
            wait_until(lambda: task_state(api, "started-on-first", "wait_for_gate") == "running", 240,
                       "the first run's first task running", context)

            deploy(SECOND)
            wait_until(lambda: dag_version() == SECOND, 120, f"{DAG} parsed on {SECOND}", context)
            api.post(f"/dags/{DAG}/dagRuns", {"dag_run_id": "started-on-second", "logical_date": None})
            api.patch(f"/variables/{GATE}", {"key": GATE, "value": "open"})

            runs = {}
            def finished(run_id: str) -> dict | None:
                run = api.get(f"/dags/{DAG}/dagRuns/{run_id}")
                return run if run["state"] in ("success", "failed") else None

            for run_id in ("started-on-first", "started-on-second"):
                runs[run_id] = wait_until(lambda run_id=run_id: finished(run_id), 300, f"run {run_id} finished", context)
        finally:
            if watcher:
                watcher.halt.set()
                watcher.join(10)
            for worker in workers:
                worker.stop()
            airflow.stop()

        for run_id, version in (("started-on-first", FIRST), ("started-on-second", SECOND)):
            assert runs[run_id]["state"] == "success", context()
            assert runs[run_id]["bundle_version"] == version
        # The first run's second task ran after SECOND was live, on a worker that never had FIRST.
        worker_a, worker_b = workers
        assert f"release text: {FIRST}" in worker_b.task_log("started-on-first", "say")
        assert f"release text: {SECOND}" not in worker_b.task_log("started-on-first", "say")
        assert f"release text: {SECOND}" in worker_b.task_log("started-on-second", "say")
        for worker in workers:
            assert worker.releases() == {FIRST, SECOND}, worker.name
            assert not (worker.home / "current").exists()
        # One download per host and version: the deploy on the scheduler's host and each worker.
        for archive in archives.values():
            assert store.fetched(archive.name) == 3, store.requests
        print("\nworker task starts (bundle_prepare_ms: a fetch, or a version already there): "
              + ", ".join(f"{w.name} {r} {t}={w.prepare_ms(r, t)}" for w in workers for r in runs
                          for t in ("wait_for_gate", "say") if w.task_log(r, t)))
        assert watcher.samples >= 10, f"only {watcher.samples} polls answered"
        assert not watcher.problems, "\n".join(watcher.problems[:20])
