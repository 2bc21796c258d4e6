"""Run a project's stages here, without Airflow: ``python3 -m platformkit run PROJECT [--stage S] [ARGS...]``.

descpipe's local launcher: the stages of <project>/project.toml in dependency order (a stage
depends on another when one of its inputs is the other's output), each as its DAG task runs it,
with the arguments its contract declares: their run values from the stage's ``local_values``,
``--set name=value`` overriding one, or ARGS instead of them all. A spark stage runs in Spark's
local mode (spark-submit of its entry point, the packed runtime as driver and worker Python); a
python stage runs its entry point on the packed runtime's python in the stage's own environment; a
container stage runs its command in the project's image with its mounts, user and non-secret
environment (platformkit/stage_container.py). All get PLATFORM_PROVENANCE. A stage whose
outputs' provenance matches its arguments, config, runtime and inputs is skipped
(platformkit/up_to_date.py).
"""

from __future__ import annotations

import subprocess
import time
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from platformkit import stage_container, stage_runtime, up_to_date
from platformkit.errors import PlatformError
from platformkit.log import prefixed

log = prefixed("run")


class StageFailed(PlatformError):
    """A stage's program exited non-zero (its own output says why)."""


def in_order(stages) -> list:
    """Stages with their dependencies first."""
    produced = {output.uri: stage.name for stage in stages for output in stage.outputs}
    graph = {stage.name: {produced[i.uri] for i in stage.inputs if i.uri in produced} - {stage.name}
             for stage in stages}
    try:
        names = list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise PlatformError(f"the stages' inputs and outputs form a cycle: {' -> '.join(error.args[1])}") from None
    by_name = {stage.name: stage for stage in stages}
    return [by_name[name] for name in names]


def run_values(assignments: list[str]) -> dict[str, str]:
    """``name=value`` pairs (``--set``)."""
    values = {}
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals or not name:
            raise PlatformError(f"--set takes name=value, not {assignment!r}")
        values[name] = value
    return values


def arguments(kit, stage, values: dict[str, str]) -> list[str]:
    """The stage's args from its contract, run values from its local_values and ``values``."""
    try:
        return stage.arguments({**stage.local_values, **{k: v for k, v in values.items() if k in stage.run_values}})
    except kit.contract.ContractError as error:
        raise PlatformError(str(error)) from None


def spark_submit(kit, project: str, stage, python: str, args: list[str]) -> list[str]:
    """spark-submit as the DAG's SparkSubmitOperator runs it on a local[*] connection, Spark's own
    logging at WARN as pyspark's shell has it (the task's log keeps INFO; on a console it buries
    the job's own lines)."""
    return [str(stage_runtime.spark_home() / "bin/spark-submit"), "--master", stage_runtime.LOCAL_MASTER,
            "--conf", f"spark.pyspark.driver.python={python}", "--conf", f"spark.pyspark.python={python}",
            "--conf", "spark.log.level=WARN",
            "--driver-memory", kit.project_config(project)["spark"]["driver_memory"],
            "--name", f"{project}-{stage.name}", str(kit.project_dir(project) / stage.entry_point), *args]


def run(root: Path, project: str, stage_name: str | None, args: list[str], *, values: dict[str, str] | None = None,
        pass_env: list[str] = (), network: str | None = None, image: str | None = None) -> None:
    """Run the stages (one when `stage_name` is given) with ARGS `args`, else their contract's
    args filled with their local values and `values`."""
    if args and values:
        raise PlatformError("ARGS replaces the stages' arguments and --set fills in their run values: give one")
    kit = stage_runtime.dagkit(root)
    contract = stage_runtime.contract(kit, project)
    try:
        chosen = [contract.stage(stage_name)] if stage_name else in_order(contract.stages)
    except kit.contract.ContractError as error:
        raise PlatformError(str(error)) from None
    if unknown := set(values or {}) - {name for stage in chosen for name in stage.run_values}:
        raise PlatformError(f"--set {sorted(unknown)[0]}: no stage run here has that run value in its args")
    if contract.kind == "container":
        facts_of_image = {"image": stage_container.image(root, kit, project, image)}
    else:
        facts_of_image, venv = {}, stage_runtime.unpacked(root, project)
    for stage in chosen:
        stage_args = args or arguments(kit, stage, values or {})
        facts = {**kit.provenance.platform_facts(stage), **facts_of_image, "launch": {"args": stage_args}}
        reason = up_to_date.stale_because([(o.name, o.fixed_uri) for o in stage.outputs], facts, stage.mounts)
        if reason is None:
            log(f"{project}/{stage.name}: skipped (up to date): its outputs' provenance matches its arguments, "
                "config, runtime and inputs")
            continue
        log(f"{project}/{stage.name}: running ({reason})")
        if contract.kind == "container":
            command, environment = stage_container.docker_run(kit, stage, facts, [*stage.command, *stage_args],
                                                              network=network, pass_env=pass_env)
        elif contract.kind == "python":
            # as the DAG's ExternalPythonOperator runs it: the runtime's python, the stage's environment only
            command = [str(venv / "bin/python"), str(kit.project_dir(project) / stage.entry_point), *stage_args]
            environment = stage_runtime.python_environment(kit, stage, venv, facts)
        else:
            command = spark_submit(kit, project, stage, str(venv / "bin/python"), stage_args)
            environment = stage_runtime.environment(kit, venv, facts)
        started = time.monotonic()
        result = subprocess.run(command, env=environment)
        if result.returncode != 0:
            raise StageFailed(f"{project}/{stage.name} exited {result.returncode}")
        log(f"{project}/{stage.name}: done in {time.monotonic() - started:.1f} s")
