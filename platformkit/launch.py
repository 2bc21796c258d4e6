"""Run a project's stages here, without Airflow: ``python3 -m platformkit run PROJECT [--stage S] [ARGS...]``.

descpipe's local launcher: the stages of <project>/project.toml in dependency order (a stage
depends on another when one of its inputs is the other's output), each as its DAG task runs it
(spark: spark-submit of its entry point in Spark's local mode, the packed runtime as driver and
worker Python; python: the packed runtime's python on its entry point, in the stage's own
environment), with PLATFORM_PROVENANCE and ARGS as the entry point's arguments. A stage whose outputs'
provenance matches its arguments, config, runtime and inputs is skipped (platformkit/up_to_date.py).
"""

from __future__ import annotations

import json
import subprocess
import time
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from platformkit import stage_runtime, up_to_date
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


def spark_submit(kit, project: str, stage, python: str, args: list[str]) -> list[str]:
    """spark-submit as the DAG's SparkSubmitOperator runs it on a local[*] connection."""
    return [str(stage_runtime.spark_home() / "bin/spark-submit"), "--master", stage_runtime.LOCAL_MASTER,
            "--conf", f"spark.pyspark.driver.python={python}", "--conf", f"spark.pyspark.python={python}",
            "--driver-memory", kit.project_config(project)["spark"]["driver_memory"],
            "--name", f"{project}-{stage.name}", str(kit.project_dir(project) / stage.entry_point), *args]


def run(root: Path, project: str, stage_name: str | None, args: list[str]) -> None:
    kit = stage_runtime.dagkit(root)
    venv, environment = stage_runtime.environment(root, project, stage_name)
    contract = kit.stages.contract(project)
    chosen = [contract.stage(stage_name)] if stage_name else in_order(contract.stages)
    for stage in chosen:
        facts = {**kit.provenance.platform_facts(stage), "launch": {"args": args}}
        reason = up_to_date.stale_because([(o.name, o.fixed_uri) for o in stage.outputs], facts)
        if reason is None:
            log(f"{project}/{stage.name}: skipped (up to date): its outputs' provenance matches its arguments, "
                "config, runtime and inputs")
            continue
        log(f"{project}/{stage.name}: running ({reason})")
        started = time.monotonic()
        if contract.kind == "python":
            # as the DAG's ExternalPythonOperator runs it: the runtime's python, the stage's environment only
            command = [str(venv / "bin/python"), str(kit.project_dir(project) / stage.entry_point), *args]
            stage_environment = kit.stages.stage_environment(stage, venv / "bin/python")
        else:
            command = spark_submit(kit, project, stage, str(venv / "bin/python"), args)
            stage_environment = environment
        result = subprocess.run(command, env={**stage_environment, kit.provenance.ENVIRONMENT_VARIABLE: json.dumps(facts)})
        if result.returncode != 0:
            raise StageFailed(f"{project}/{stage.name} exited {result.returncode}")
        log(f"{project}/{stage.name}: done in {time.monotonic() - started:.1f} s")
