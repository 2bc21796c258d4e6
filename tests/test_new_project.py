"""`make new-project`: a project that works straight away, in a copy of this checkout (the
repository itself is left untouched). Each kind end to end: lint, its tests, the DAG's integrity,
runtime (and image), archive, deploy, one run through dag.test(), make run (twice: the second is
skipped) and, for python and container, make shell."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import AIRFLOW, REPO, DeployedRelease, git, make_variable, run

from platformkit.localenv import airflow_env

# The other projects stay out of the copy: the new one is built, archived and deployed alone.
OTHER_PROJECTS = ("image-matching/", "arxlive/", "dags/image_matching.py", "dags/arxlive.py")
# make's stamp of an installed platform environment: the copy links this checkout's (see `checkout`).
PLATFORM_STAMP = ".platform-installed"


@pytest.fixture
def checkout(tmp_path) -> Path:
    """This checkout's files as they are now (committed or not), but the other projects, as a git
    repository; its platform environment is this one's, linked, and make's stamp says it is
    installed, so make never installs it again (it would install the copy's platformkit into it)."""
    tree = tmp_path / "checkout"
    files = run("git", "-C", REPO, "ls-files", "-co", "--exclude-standard", "-z").stdout.split("\0")
    for name in files:
        if name and not name.startswith(OTHER_PROJECTS) and (REPO / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, tree / name)
    (tree / ".venv").symlink_to(REPO / ".venv")
    (tree / PLATFORM_STAMP).touch()
    git(tree, "init", "-q", "-b", "main")
    git(tree, "add", "-A")
    git(tree, "commit", "-qm", "the platform")
    return tree


def make(tree: Path, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    command = ["make", "--no-print-directory", "-C", str(tree), f"PLATFORM={PLATFORM_STAMP}", *args]
    if check:
        return run(*command, timeout=1200, **kwargs)
    return subprocess.run(command, capture_output=True, text=True, timeout=1200, **kwargs)


def deploy(checkout: Path, tmp_path: Path) -> tuple[DeployedRelease, dict]:
    """The checkout archived and deployed into a fresh AIRFLOW_HOME (its runtimes and images
    already built), its database migrated; the release and its manifest."""
    version = make(checkout, "-s", "version").stdout.strip()
    make(checkout, "archive")
    home = tmp_path / "airflow-home"
    make(checkout, "deploy", f"AIRFLOW_HOME={home}")
    env = airflow_env(home)
    run(AIRFLOW, "db", "migrate", env=env, timeout=600)
    deployed = DeployedRelease(home, (home / "current").resolve(), version, env)
    return deployed, json.loads((deployed.release / "manifest.json").read_text())


def example_output(folder: Path, project: str, manifest: dict) -> dict:
    """The example stage's output in `folder` (the sample's word counts) and its provenance,
    checked against the release; the sidecar."""
    with open(folder / "word_counts.csv", newline="") as f:
        assert list(csv.DictReader(f))[:2] == [{"word": "fox", "count": "4"}, {"word": "the", "count": "4"}]
    sidecar = json.loads((folder / "_provenance.json").read_text())
    assert sidecar["release"] == {"version": manifest["version"], "git_sha": manifest["git_sha"]}
    assert sidecar["runtime_sha256"] == manifest["runtimes"][project]["archive_sha256"]
    assert sidecar["stage"]["name"] == "count_words"
    assert list(sidecar["stage"]["config_sha256"]) == [f"conf/{project.replace('-', '_')}.toml"]
    assert sidecar["params"] == {"date": "2026-11-01", "min_length": 3}
    return sidecar


def passes_the_repositorys_checks(checkout: Path, name: str) -> None:
    """The repository's bar for a new project: lint, its own tests, the platform's DAG integrity
    checks and the stands-alone check."""
    make(checkout, "lint")
    tests = make(checkout, "test-projects", f"PROJECT={name}")
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    integrity = run(REPO / ".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "tests/test_dag_integrity.py", "tests/test_repository_stands_alone.py", cwd=checkout, timeout=900)
    assert "failed" not in integrity.stdout


def runtime_project_released_and_run(checkout: Path, tmp_path: Path, name: str, kind: str) -> tuple[DeployedRelease, dict]:
    """A python or spark project committed, its runtime built on the host, archived, deployed and
    run once through dag.test(); its output and provenance checked against the release."""
    git(checkout, "add", "-A")
    git(checkout, "commit", "-qm", f"make new-project NAME={name} KIND={kind}")
    make(checkout, "venv", f"PROJECT={name}", "SKIP_DOCKER=true")
    deployed, manifest = deploy(checkout, tmp_path)
    result = deployed.dag_test(name.replace("-", "_"), "2026-11-01")
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    sidecar = example_output(deployed.airflow_home / f"data/{name}/output/word_counts/date=2026-11-01", name, manifest)
    assert sidecar["inputs"][0]["uri"] == (deployed.release / f"{name}/sample/texts.csv").as_uri()
    return deployed, manifest


@pytest.mark.parametrize(("name", "kind", "message"), [
    ("../evil", "python", "project name '../evil' is not lower-case letters"),
    ("Word-Count", "python", "project name 'Word-Count' is not lower-case letters"),
    ("word_count", "python", "project name 'word_count' is not lower-case letters"),
    ("x--y", "python", "project name 'x--y' is not"),
    ("x/y", "python", "project name 'x/y' is not"),
    ("a" * 41, "python", "at most 40 characters"),
    ("json", "python", "package 'json' that shadows Python's own"),
    ("class", "python", "package 'class' that shadows Python's own"),
    ("platformkit", "python", "reserved by the platform"),
    ("conda", "python", "reserved by the platform"),
    ("new-thing", "lambda", "no template for kind 'lambda' (there are: container, python, spark)"),
])
def test_bad_names_and_kinds_are_refused_in_one_line_and_nothing_is_written(tmp_path, name, kind, message):
    (tmp_path / "dags").mkdir()
    result = subprocess.run([sys.executable, "-m", "platformkit", "new-project", name, "--kind", kind, "--root", tmp_path],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert result.stderr.startswith("new-project: error: ") and result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dags"] and not any((tmp_path / "dags").iterdir())


def test_an_existing_project_folder_dag_file_or_package_is_refused(tmp_path):
    (tmp_path / "dags").mkdir()
    (tmp_path / "taken").mkdir()
    (tmp_path / "dags/word_count.py").write_text("# someone's DAG\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other/pyproject.toml").write_text('[project]\nname = "wordsmith"\n')
    for name, message in [("taken", "taken already exists"), ("word-count", "dags/word_count.py already exists"),
                          ("wordsmith", "package 'wordsmith' is already the package of other/")]:
        result = subprocess.run([sys.executable, "-m", "platformkit", "new-project", name, "--kind", "python",
                                 "--root", tmp_path], capture_output=True, text=True, cwd=REPO)
        assert result.returncode == 1 and message in result.stderr, result.stderr
    assert (tmp_path / "dags/word_count.py").read_text() == "# someone's DAG\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dags", "other", "taken"]


DAG_TASK = """
import json, sys
sys.path.insert(0, sys.argv[1])
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
task = bag.dags["word_count"].get_task("count_words")
print(json.dumps({"errors": list(bag.import_errors), "operator": task.operator_name, "python": task.python,
                  "op_args": task.op_args, "env": task.env_vars, "inherit_env": task.inherit_env,
                  "outlets": [[a.name, a.uri] for a in task.outlets]}))
"""


def test_the_new_dag_is_the_typed_operator_on_the_release_runtime_with_its_output_as_outlet(checkout):
    run(sys.executable, "-m", "platformkit", "new-project", "word-count", "--kind", "python", cwd=checkout)
    result = run(sys.executable, "-c", DAG_TASK, checkout / "dags", cwd=checkout,
                 env={**os.environ, "AIRFLOW_HOME": str(checkout / ".airflow")})
    task = json.loads(result.stdout.splitlines()[-1])
    assert task["errors"] == [] and task["operator"] == "ExternalPythonOperator"
    assert task["python"] == str(checkout / "word-count/venv/bin/python"), "the runtime deploy unpacks in the release"
    assert task["op_args"][:3] == [str(checkout / "word-count/main.py"), "--date", "{{ ds }}"]
    # the stage's own environment, not the worker's: its runtime, UTF-8, the platform's provenance
    assert task["inherit_env"] is False and set(task["env"]) == {"PATH", "LANG", "PLATFORM_PROVENANCE"}
    assert task["env"]["PATH"].startswith(str(checkout / "word-count/venv/bin") + ":")
    assert json.loads(task["env"]["PLATFORM_PROVENANCE"])["stage"]["name"] == "count_words"
    assert task["outlets"] == [["word-count/word_counts", (checkout / ".airflow/data/word-count/output/word_counts").as_uri()]]


@pytest.mark.slow
def test_a_python_project_works_straight_away(checkout, tmp_path):
    make(checkout, "new-project", "NAME=word-count", "KIND=python")
    project = checkout / "word-count"
    assert "pytest==" in (project / "requirements-dev.lock").read_text()
    assert (checkout / "dags/word_count.py").is_file() and (project / "src/word_count/job.py").is_file()

    passes_the_repositorys_checks(checkout, "word-count")
    # Built, archived and deployed as any project; one run through dag.test().
    runtime_project_released_and_run(checkout, tmp_path, "word-count", "python")

    # make run and make shell, here, without Airflow.
    local = tmp_path / "local-home"
    # a bare make run: the contract's args, their run value from its local_values
    first = make(checkout, "run", "PROJECT=word-count", env={**os.environ, "AIRFLOW_HOME": str(local)})
    assert "count_words: running (output word_counts has no provenance" in first.stdout
    ran = json.loads((local / "data/word-count/output/word_counts/date=2026-11-01/_provenance.json").read_text())
    assert ran["launch"] == {"args": ["--date", "2026-11-01", "--input", str(checkout / "word-count/sample/texts.csv"),
                                      "--output", f"{local}/data/word-count/output/word_counts",
                                      "--config", str(checkout / "word-count/conf/word_count.toml")]}
    assert ran["release"]["version"] == "dev"
    again = make(checkout, "run", "PROJECT=word-count", env={**os.environ, "AIRFLOW_HOME": str(local)})
    assert "count_words: skipped (up to date)" in again.stdout

    shell = make(checkout, "-s", "shell", "PROJECT=word-count",
                 input="python -c 'import sys, word_count; print(sys.prefix)'\nexit 3\n", check=False)
    assert shell.returncode != 0 and shell.stdout.strip().startswith(str(checkout / ".runtimes/word-count-")), shell


DOCKER_TASK = """
import json, sys
sys.path.insert(0, sys.argv[1])
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags["word_box"]
task = dag.get_task("count_words")
print(json.dumps({"errors": list(bag.import_errors), "tasks": sorted(dag.task_ids), "upstream": sorted(task.upstream_task_ids),
                  "operator": task.operator_name, "image": task.image, "command": task.command, "mounts": task.mounts,
                  "environment": task.environment, "outlets": [[a.name, a.uri] for a in task.outlets]}))
"""


def test_the_new_container_dag_runs_the_image_with_its_args_mounts_and_output_as_outlet(checkout):
    run(sys.executable, "-m", "platformkit", "new-project", "word-box", "--kind", "container", cwd=checkout)
    assert (checkout / "word-box/Dockerfile").is_file()
    assert run("make", "-s", "-C", checkout, "image-projects").stdout.split() == ["word-box"]
    result = run(sys.executable, "-c", DOCKER_TASK, checkout / "dags", cwd=checkout,
                 env={**os.environ, "AIRFLOW_HOME": str(checkout / ".airflow")})
    task = json.loads(result.stdout.splitlines()[-1])
    assert task["errors"] == [] and task["operator"] == "DockerOperator"
    assert task["tasks"] == ["count_words", "prepare_mounts"] and task["upstream"] == ["prepare_mounts"]
    assert task["image"] == "localhost/word-box:dev", "a checkout runs <conf image>:<version>; a release its pinned image"
    # the image's entry point is the package: the command is the contract's args, the sample in the image
    assert task["command"] == ["--date", "{{ ds }}", "--input", "/opt/word-box/sample/texts.csv",
                               "--output", "/data/word_counts", "--config", "/opt/word-box/conf/word_box.toml"]
    data = checkout / ".airflow/data/word-box"
    assert task["mounts"] == [{"source": str(data), "target": "/data", "type": "bind"}]
    assert task["environment"]["LANG"] == "C.UTF-8"
    assert json.loads(task["environment"]["PLATFORM_PROVENANCE"])["stage"]["name"] == "count_words"
    assert task["outlets"] == [["word-box/word_counts", (data / "word_counts").as_uri()]]


@pytest.fixture
def container_project(docker_engine):
    """A name no other run uses, so that its images are this test's alone; they are removed after it,
    with any container left of them."""
    name = f"words-{uuid.uuid4().hex[:8]}"
    yield name
    images = run(docker_engine, "image", "ls", "--quiet", "--no-trunc", f"localhost/{name}").stdout.split()
    for image in set(images):
        containers = run(docker_engine, "ps", "-aq", "--filter", f"ancestor={image}").stdout.split()
        if containers:
            run(docker_engine, "rm", "--force", *containers)
    if images:
        run(docker_engine, "image", "rm", "--force", *set(images))


def containers_of(image_id: str) -> list[str]:
    return run("docker", "ps", "-aq", "--filter", f"ancestor={image_id}").stdout.split()


@pytest.mark.slow
@pytest.mark.docker
def test_a_container_project_works_straight_away(checkout, tmp_path, container_project):
    name, package = container_project, container_project.replace("-", "_")
    make(checkout, "new-project", f"NAME={name}", "KIND=container")
    passes_the_repositorys_checks(checkout, name)

    # The runtime built in the builder container and the image from it, with this machine's base
    # image and CA bundle (local.mk, which the copy lacks, or the environment, as .ci/run sets them).
    git(checkout, "add", "-A")
    git(checkout, "commit", "-qm", f"make new-project NAME={name} KIND=container")
    images = [f"{variable}={make_variable(variable)}" for variable in ("BASE_IMAGE", "BUILDER_BASE_IMAGE", "EXTRA_CA_BUNDLE")]
    make(checkout, "image", f"PROJECT={name}", *images)
    deployed, manifest = deploy(checkout, tmp_path)
    image = manifest["images"][name]
    assert image["reference"] == f"localhost/{name}:sha256-{image['image_id'].removeprefix('sha256:')}"
    result = deployed.dag_test(package, "2026-11-01")
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    assert f"{package}: published /data/word_counts/date=2026-11-01" in result.stdout + result.stderr, "the container's log"

    sidecar = example_output(deployed.airflow_home / f"data/{name}/word_counts/date=2026-11-01", name, manifest)
    assert sidecar["image"] == {"reference": image["reference"], "image_id": image["image_id"]}
    assert sidecar["runtime_sha256"] == image["runtime_sha256"]
    assert sidecar["inputs"][0]["uri"] == f"file:///opt/{name}/sample/texts.csv", "the sample in the image"
    assert sidecar["outputs"] == [{"uri": Path("/data/word_counts/date=2026-11-01").as_uri()}], "as the container sees it"
    assert containers_of(image["image_id"]) == [], "the DockerOperator removed its container"

    # make run and make shell, here, without Airflow: the image `make image` built for this checkout.
    local = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "local-home")}
    first = make(checkout, "run", f"PROJECT={name}", env=local)
    assert "count_words: running (output word_counts has no provenance" in first.stdout
    ran = json.loads((tmp_path / f"local-home/data/{name}/word_counts/date=2026-11-01/_provenance.json").read_text())
    assert ran["launch"] == {"args": ["--date", "2026-11-01", "--input", f"/opt/{name}/sample/texts.csv",
                                      "--output", "/data/word_counts", "--config", f"/opt/{name}/conf/{package}.toml"]}
    assert ran["release"]["version"] == "dev" and ran["image"]["reference"] == f"localhost/{name}:{deployed.version}"
    again = make(checkout, "run", f"PROJECT={name}", env=local)
    assert "count_words: skipped (up to date)" in again.stdout

    shell = make(checkout, "-s", "shell", f"PROJECT={name}", env=local, check=False,
                 input=f"python -c 'import sys, {package}; print(sys.prefix)'\necho $LANG\nls /data/word_counts\nexit 3\n")
    assert shell.returncode != 0 and shell.stdout.split() == ["/opt/runtime", "C.UTF-8", "date=2026-11-01"], shell
    assert containers_of(ran["image"]["image_id"]) == [], "make run and make shell leave no container"


SPARK_TASK = """
import json, sys
sys.path.insert(0, sys.argv[1])
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
task = bag.dags["spark_words"].get_task("count_words")
print(json.dumps({"errors": list(bag.import_errors), "operator": task.operator_name, "application": task.application,
                  "outlets": [a.name for a in task.outlets]}))
"""


@pytest.mark.slow
def test_a_spark_project_works_straight_away(checkout, tmp_path):
    make(checkout, "new-project", "NAME=spark-words", "KIND=spark")
    passes_the_repositorys_checks(checkout, "spark-words")
    result = run(sys.executable, "-c", SPARK_TASK, checkout / "dags", cwd=checkout,
                 env={**os.environ, "AIRFLOW_HOME": str(checkout / ".airflow")})
    task = json.loads(result.stdout.splitlines()[-1])
    assert task == {"errors": [], "operator": "SparkSubmitOperator", "application": str(checkout / "spark-words/main.py"),
                    "outlets": ["spark-words/word_counts"]}

    # Built, archived and deployed; one run through dag.test(), spark-submit in local mode on the
    # release's runtime (local.env's spark_default).
    _, manifest = runtime_project_released_and_run(checkout, tmp_path, "spark-words", "spark")

    # make run, here, without Airflow: the same spark-submit on the checkout's unpacked runtime.
    local = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "local-home")}
    first = make(checkout, "run", "PROJECT=spark-words", env=local)
    assert "count_words: running (output word_counts has no provenance" in first.stdout
    ran = example_output(tmp_path / "local-home/data/spark-words/output/word_counts/date=2026-11-01", "spark-words",
                         {**manifest, "version": "dev", "git_sha": None})  # a checkout: no release
    assert ran["inputs"][0]["uri"] == (checkout / "spark-words/sample/texts.csv").as_uri()
    again = make(checkout, "run", "PROJECT=spark-words", env=local)
    assert "count_words: skipped (up to date)" in again.stdout
