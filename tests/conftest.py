"""Fixtures of the platform tests: the repository, a Docker engine, a deployed release."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
AIRFLOW = VENV_BIN / "airflow"
from platformkit.images import LOCAL_TAG_PREFIX  # noqa: E402
from platformkit.localenv import airflow_env  # noqa: E402

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


def make_variable(name: str) -> str:
    """A variable as the Makefile sets it (the environment, else local.mk, else its default)."""
    return run("make", "-s", "--no-print-directory", "-C", REPO, "--eval", f"print-var: ; @echo $({name})",
               "print-var").stdout.strip()


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


HELLO = Path(__file__).parent / "fixtures/hello"


def git(tree: Path, *args: str) -> str:
    return run("git", "-C", tree, "-c", "user.email=ci@example.invalid", "-c", "user.name=ci", *args).stdout.strip()


@pytest.fixture(scope="session")
def source(tmp_path_factory) -> Path:
    """A checkout with one DAG file and one project whose runtime is built (on the host).
    Tests that change it put it back as it was."""
    tree = tmp_path_factory.mktemp("checkout")
    (tree / "dags").mkdir()
    (tree / "dags/hello.py").write_text("# a DAG file\n")
    shutil.copytree(HELLO, tree / "hello")
    git(tree, "init", "-q", "-b", "main")
    git(tree, "add", "-A")
    git(tree, "commit", "-qm", "init")
    run(sys.executable, "-m", "platformkit", "build-runtime", tree / "hello")
    return tree


def build_archive(source: Path, version: str, dist: Path) -> Path:
    run(sys.executable, "-m", "platformkit", "archive", "--root", source, "--version", version, "--dist", dist)
    return dist / f"platform-airflow-dags-{version}.tar.gz"


def deploy(archive: Path, home: Path, check: bool = True) -> subprocess.CompletedProcess:
    """platformkit deploy; with check=False, its result whatever it is."""
    command = [sys.executable, "-m", "platformkit", "deploy", archive, "--airflow-home", home]
    return run(*command) if check else subprocess.run([str(c) for c in command], capture_output=True, text=True)


def live(home: Path) -> str:
    return os.readlink(home / "current")


@pytest.fixture(scope="session")
def archives(source, tmp_path_factory) -> dict[str, Path]:
    """Release archives v1 and v2 of `source`."""
    dist = tmp_path_factory.mktemp("dist")
    return {version: build_archive(source, version, dist) for version in ("v1", "v2")}


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
def deployed_release(tmp_path_factory) -> Iterator[DeployedRelease]:
    """This checkout built, archived and deployed into a fresh AIRFLOW_HOME. Runtimes are built on
    the host; with a Docker engine, the container projects' runtimes are built in the builder and
    their images from them (`make image`), and the release pins those images."""
    work = tmp_path_factory.mktemp("deployed")
    version = "test-" + run(sys.executable, "-m", "platformkit", "version", REPO).stdout.strip()
    containers = run("make", "-s", "--no-print-directory", "-C", REPO, "image-projects").stdout.split()
    others = sorted(p.parent.name for p in REPO.glob("*/pyproject.toml") if p.parent.name not in containers)
    pin_images = []
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        run("make", "-C", REPO, "image", f"VERSION={version}", timeout=1800)
        pin_images = ["--image-repository", make_variable("IMAGE_REPOSITORY")]
    else:
        others += containers
    run("make", "-C", REPO, "venv", "SKIP_DOCKER=true", f"PROJECT={' '.join(others)}", timeout=1800)
    run(sys.executable, "-m", "platformkit", "archive", "--root", REPO, "--version", version, "--dist", work / "dist",
        *pin_images)
    airflow_home = work / "airflow-home"
    run(sys.executable, "-m", "platformkit", "deploy",
        work / "dist" / f"platform-airflow-dags-{version}.tar.gz", "--airflow-home", airflow_home)
    env = airflow_env(airflow_home)
    run(AIRFLOW, "db", "migrate", env=env, timeout=600)
    yield DeployedRelease(airflow_home, (airflow_home / "current").resolve(), version, env)
    if pin_images:
        for project in containers:
            remove_image_tags(pin_images[1], project, version)


def remove_image_tags(repository: str, project: str, version: str) -> None:
    """The tags `make image` gave a project's image of this version (its version and its ID), so
    that test runs' images do not pile up on the engine; the image goes with its last tag."""
    tag = f"{repository}/{project}:{version}"
    image_id = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag],
                              capture_output=True, text=True).stdout.strip()
    if image_id:
        local = f"{repository}/{project}:{LOCAL_TAG_PREFIX}{image_id.removeprefix('sha256:')}"
        subprocess.run(["docker", "image", "rm", tag, local], capture_output=True)


# --- synthetic releases of the release_probe DAG (tests/fixtures/release_probe.py) ------------

PROBE_DAG = Path(__file__).parent / "fixtures/release_probe.py"
HELLO = Path(__file__).parent / "fixtures/hello"


@pytest.fixture(scope="session")
def probe_checkout(tmp_path_factory) -> Path:
    """A checkout with the release_probe DAG and the hello project, its runtime built on the host."""
    tree = tmp_path_factory.mktemp("probe-checkout")
    (tree / "dags").mkdir()
    shutil.copytree(HELLO, tree / "hello")
    run(sys.executable, "-m", "platformkit", "build-runtime", tree / "hello", timeout=900)
    return tree


def build_probe_release(checkout: Path, version: str, dist: Path) -> Path:
    """The archive of release `version`, whose DAG logs "release text: <version>"."""
    dag = PROBE_DAG.read_text().replace('TEXT = "release text: unset"', f'TEXT = "release text: {version}"')
    (checkout / "dags/release_probe.py").write_text(dag)
    run(sys.executable, "-m", "platformkit", "archive", "--root", checkout, "--version", version, "--dist", dist)
    return dist / f"platform-airflow-dags-{version}.tar.gz"
