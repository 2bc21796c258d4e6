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
sys.path.insert(0, str(REPO / "ops"))  # the ops scripts' modules: localenv, airflow_api
from localenv import airflow_env  # noqa: E402
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
        command = [sys.executable, REPO / "ops/run_dag.py", dag_id, logical_date, "--conf", json.dumps(conf or {}),
                   "--dags-folder", dags_folder or self.airflow_home / "current" / "dags"]
        return subprocess.run([str(c) for c in command], env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)

    def airflow(self, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
        """Run the airflow CLI against this AIRFLOW_HOME."""
        command = [str(AIRFLOW), *args]
        if check:
            return run(*command, env=self.env, timeout=timeout)
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)


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


# --- synthetic releases of the release_probe DAG (tests/fixtures/release_probe.py) ------------

PROBE_DAG = Path(__file__).parent / "fixtures/release_probe.py"
HELLO = Path(__file__).parent / "fixtures/hello"


@pytest.fixture(scope="session")
def probe_checkout(tmp_path_factory) -> Path:
    """A checkout with the release_probe DAG and the hello project, its runtime built on the host."""
    tree = tmp_path_factory.mktemp("probe-checkout")
    (tree / "dags").mkdir()
    shutil.copytree(HELLO, tree / "hello")
    run(sys.executable, REPO / "conda/build_runtime.py", tree / "hello", timeout=900)
    return tree


def build_probe_release(checkout: Path, version: str, dist: Path) -> Path:
    """The archive of release `version`, whose DAG logs "release text: <version>"."""
    dag = PROBE_DAG.read_text().replace('TEXT = "release text: unset"', f'TEXT = "release text: {version}"')
    (checkout / "dags/release_probe.py").write_text(dag)
    run(sys.executable, REPO / "release/archive.py", "--root", checkout, "--version", version, "--dist", dist)
    return dist / f"platform-airflow-dags-{version}.tar.gz"
