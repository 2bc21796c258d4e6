"""Fixtures of the platform tests: the repository, a Docker engine, a deployed release."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
AIRFLOW = VENV_BIN / "airflow"
# Airflow imported in this process (DagBag) must not touch ~/airflow or load the examples.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="platform-tests-airflow-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# CI sets this: there, a container test that cannot find an engine is a failure, not a skip.
REQUIRE_DOCKER = os.environ.get("REQUIRE_DOCKER") == "1"


def run(*command, **kwargs) -> subprocess.CompletedProcess:
    """Run a command; on failure, fail the test with its output."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    result = subprocess.run([str(c) for c in command], **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} exited {result.returncode}\n"
                    f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}")
    return result


def local_env() -> dict[str, str]:
    """The KEY=VALUE settings of local.env."""
    settings = {}
    for line in (REPO / "local.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The docker CLI, when an engine answers; otherwise a skip (or a failure under CI)."""
    docker = shutil.which("docker")
    reason = None
    if docker is None:
        reason = "no docker CLI on PATH (make docker-engine installs one)"
    elif subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        reason = "no Docker engine answers (make docker-engine starts one)"
    if reason:
        if REQUIRE_DOCKER:
            pytest.fail(f"REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)
    return docker


DAG_TEST = """
import json, sys
from datetime import datetime, timezone
from airflow.dag_processing.dagbag import DagBag

dags_folder, dag_id, logical_date, conf = sys.argv[1:5]
sys.path.insert(0, dags_folder)  # as Airflow does for its dags folder: DAG files import dagkit
bag = DagBag(dag_folder=dags_folder)
assert not bag.import_errors, bag.import_errors
dag = bag.get_dag(dag_id)
for task in dag.tasks:
    task.retries = 0
run = dag.test(logical_date=datetime.fromisoformat(logical_date).replace(tzinfo=timezone.utc),
               run_conf=json.loads(conf))
print(f"DAG RUN STATE: {run.state}")
sys.exit(0 if run.state == "success" else 1)
"""


@dataclass
class DeployedRelease:
    airflow_home: Path
    release: Path
    version: str
    env: dict[str, str]

    def dag_test(self, dag_id: str, logical_date: str, conf: dict | None = None, timeout: int = 1200,
                 dags_folder: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run one DAG run in-process with `dag.test()` (no scheduler); retries off, so a failing
        task fails the run at once instead of waiting out its retry delay. Exit code 0 = success.
        The DAG comes from the release's dags folder unless another is given."""
        dags_folder = str(dags_folder or self.airflow_home / "current" / "dags")
        command = [sys.executable, "-c", DAG_TEST, dags_folder, dag_id, logical_date, json.dumps(conf or {})]
        env = {**self.env, "AIRFLOW__CORE__DAGS_FOLDER": dags_folder, **(env or {})}
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)

    def airflow(self, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
        """Run the airflow CLI against this AIRFLOW_HOME."""
        command = [str(AIRFLOW), *args]
        if check:
            return run(*command, env=self.env, timeout=timeout)
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)


def airflow_env(airflow_home: Path) -> dict[str, str]:
    """The environment of an Airflow on the embedded defaults, reading AIRFLOW_HOME/current/dags."""
    env = {**os.environ, **local_env()}
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(airflow_home / "current" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        # The DAG processor's Python and the tasks' Python: this venv.
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    return env


@pytest.fixture(scope="session")
def deployed_release(tmp_path_factory) -> DeployedRelease:
    """This checkout built (runtimes on the host), archived and deployed into a fresh AIRFLOW_HOME."""
    work = tmp_path_factory.mktemp("deployed")
    run("make", "-C", REPO, "venv", "SKIP_DOCKER=true", timeout=1800)
    version = "test-" + run(sys.executable, REPO / "release/version.py", REPO).stdout.strip()
    run(sys.executable, REPO / "release/archive.py", "--root", REPO, "--version", version, "--dist", work / "dist")
    airflow_home = work / "airflow-home"
    run(sys.executable, REPO / "release/deploy.py", "deploy",
        work / "dist" / f"platform-airflow-dags-{version}.tar.gz", "--airflow-home", airflow_home)
    env = airflow_env(airflow_home)
    run(AIRFLOW, "db", "migrate", env=env, timeout=600)
    return DeployedRelease(airflow_home, (airflow_home / "current").resolve(), version, env)
