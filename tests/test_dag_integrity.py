"""Every DAG file imports cleanly, cheaply, and states what an operator needs to know."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

DAGS = REPO / "dags"
DAG_FILES = sorted(DAGS.glob("*.py"))
# Tasks that validate their input fail for good: a retry cannot fix a bad parameter or missing data.
VALIDATION_TASKS = {"image_matching": {"snapshot", "preflight", "summary"}}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    sys.path.insert(0, str(DAGS))  # as Airflow does for its dags folder: DAG files import dagkit
    return DagBag(dag_folder=str(DAGS))


def dags_of(dagbag, path: Path) -> list:
    return [dag for dag in dagbag.dags.values() if Path(dag.fileloc).name == path.name]


def test_there_are_dag_files():
    assert DAG_FILES, f"no DAG files in {DAGS}"


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_file_defines_a_dag(dagbag, path):
    assert dags_of(dagbag, path), f"{path.name} defines no DAG"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dags_are_acyclic_owned_and_alerting(dagbag, path):
    for dag in dags_of(dagbag, path):
        dag.check_cycle()
        assert dag.tags, f"{dag.dag_id} has no tags"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag.dag_id}.{task.task_id} has no owner"
            assert task.retries >= 1 or task.task_id in VALIDATION_TASKS.get(dag.dag_id, ()), \
                f"{dag.dag_id}.{task.task_id} has no retries"
            assert task.on_failure_callback, f"{dag.dag_id}.{task.task_id} has no failure alert (dagkit.default_args)"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_catchup_is_stated(path):
    """catchup's default changed between Airflow versions: every DAG says what it wants."""
    calls = [
        node for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in ("DAG", "dag")
    ]
    assert calls, f"{path.name}: no DAG(...) or @dag(...) call found"
    for call in calls:
        assert "catchup" in {k.arg for k in call.keywords}, f"{path.name}: catchup not stated"


# A parse as the DAG processor runs it, in a process prepared as the processor prepares itself before
# it forks each parser: its own modules, the releases bundle's pre-imports (platformkit.bundle), the
# airflow.* modules the file names ([dag_processor] parsing_pre_import_modules). Prints what the parse
# (import, DAG, serialization) imports on top: what every parse of the file pays for.
PARSE_IMPORTS = """
import json, sys
from pathlib import Path
import structlog
import airflow.dag_processing.manager
from airflow.dag_processing.processor import DagFileParseRequest, _parse_file, _pre_import_airflow_modules
from platformkit.bundle import import_parsing_modules
dags, path = Path(sys.argv[1]), sys.argv[2]
log = structlog.get_logger()
import_parsing_modules()
_pre_import_airflow_modules(path, log)
before = set(sys.modules)
result = _parse_file(DagFileParseRequest(file=path, bundle_path=dags, bundle_name="dags", callback_requests=[]), log)
assert result.serialized_dags and not result.import_errors, result.import_errors
print(json.dumps(sorted(set(sys.modules) - before)))
"""


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_a_parse_imports_nothing_but_dagkit_and_the_file(path):
    """Anything else a parse imports, every parse pays for again (tests/bench_dag_processor.py): a
    task's own libraries are imported inside the task, Airflow's in platformkit.bundle.PARSING_IMPORTS."""
    result = subprocess.run([sys.executable, "-c", PARSE_IMPORTS, str(DAGS), str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    imported = json.loads(result.stdout.splitlines()[-1])
    # the DAG file itself is imported as unusual_prefix_<hash>_<name>
    others = [m for m in imported if m.split(".")[0] != "dagkit" and not m.startswith("unusual_prefix_")]
    assert others == [], f"every parse of {path.name} imports {others}"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_project_stages_are_typed_operators_with_their_outputs_as_outlets(dagbag, path):
    """Each stage of a project's contract is a task of the real provider operator, whose outlets are
    the stage's outputs."""
    from dagkit import stages

    operator_of_kind = {"spark": "SparkSubmitOperator", "container": "DockerOperator", "python": "ExternalPythonOperator"}
    for dag in dags_of(dagbag, path):
        # a project DAG is tagged with its project folder's name
        [project] = [p.parent.name for p in REPO.glob("*/project.toml") if p.parent.name in dag.tags]
        contract = stages.contract(project)
        for stage in contract.stages:
            task = dag.get_task(stage.name)
            assert task.operator_name == type(task).__name__ == operator_of_kind[contract.kind]
            assert type(task).__module__.startswith("airflow.providers."), type(task).__module__
            assert [(a.name, a.extra["type"]) for a in task.outlets] == \
                [(f"{project}/{o.name}", o.type) for o in stage.outputs]
            assert all(a.uri.startswith("file:///") for a in task.outlets), task.outlets


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_a_stages_task_gets_the_contracts_args_as_make_run_does(dagbag, path):
    """The task's arguments are its contract's: the same as `make run`'s but for the run values, which
    the DAG fills from its params, XComs and run (Jinja)."""
    from dagkit import stages

    for dag in dags_of(dagbag, path):
        [project] = [p.parent.name for p in REPO.glob("*/project.toml") if p.parent.name in dag.tags]
        contract = stages.contract(project)
        for stage in contract.stages:
            task = dag.get_task(stage.name)
            if contract.kind == "spark":
                given = task.application_args
            elif contract.kind == "python":
                given = task.op_args[1:]  # after the entry point
            else:
                given = task.command[len(stage.command):]
            local = stage.arguments(stage.local_values)
            assert len(given) == len(local) and stage.args
            assert [a for a in given if "{{" not in a] == [b for a, b in zip(given, local, strict=True) if "{{" not in a]
            if contract.kind == "container":
                assert task.mounts == [{"source": s, "target": t, "type": "bind"} for s, t in stage.mounts.items()]
                assert task.environment.items() >= stages.container_environment(project).items()
