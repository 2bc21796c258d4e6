"""Typed operators' arguments for a project's stages, from its contract (project.toml).

A DAG file imports the provider operator itself and gives it what this module derives from the
contract and the release layout::

    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    SparkSubmitOperator(**stages.spark_submit("image-matching", "image_matching", conn_id=...), ...)

so the UI shows the real operator, its constructor checks the arguments when the DAG is parsed,
and the stage's outputs are its outlets (Assets). The import belongs in the DAG file: the DAG
processor imports the ``airflow.*`` modules a DAG file names once, before it forks the process
that parses the file (``[dag_processor] parsing_pre_import_modules``), so a provider's own heavy
imports (``docker``, ``requests``) are paid once per processor, not once per parse.

What only the running task can know (a connection's secret, a Variable, another task's XCom)
comes from a ``pre_execute`` hook that sets the operator's attribute after its templates are
rendered: never from the parse.
"""

from __future__ import annotations

import os
from functools import cache

import dagkit
from dagkit import provenance
from dagkit.contract import Contract, ContractError, Stage, parse


@cache
def contract(project: str) -> Contract:
    """``<project>/project.toml``; its ``{location}`` placeholders are the data locations of the
    project's conf/airflow.toml."""
    path = dagkit.project_dir(project) / "project.toml"
    if not path.is_file():
        raise ContractError(f"project {project!r} has no project.toml ({path})")
    config = dagkit.project_config(project)
    # An empty location stays empty: the args that name it in a nested list are left out.
    locations = {key: dagkit.data_location(value) if value else "" for key, value in config.items()
                 if isinstance(value, str)}
    return parse(project, path.read_text(), locations, dagkit.project_dir(project))


def stage_of(project: str, name: str, kind: str) -> Stage:
    found = contract(project)
    if found.kind != kind:
        raise ContractError(f"{project}/project.toml: kind is {found.kind!r}; this operator runs {kind!r} stages")
    return found.stage(name)


def spark_submit(project: str, name: str, *, conn_id: str = "spark_default",
                 run_values: dict[str, str] | None = None) -> dict:
    """SparkSubmitOperator arguments that run a spark stage's entry point in the packed runtime,
    with its args from the contract (``run_values`` fill their ``<name>``s, templated).

    Which way depends on the Spark connection's master, read when the task runs (templated):
    local mode runs the runtime unpacked on this host (Spark does not unpack archives for
    local[N]); any other master (YARN, Kubernetes, local-cluster) gets the archive shipped as
    ./venv (``spark.archives``, the conf form of --archives) and its executors run
    ./venv/bin/python. The driver runs here (client mode) in both.
    """
    stage = stage_of(project, name, "spark")
    is_local = f"conn.{conn_id}.host.split('[')[0] == 'local'"
    python = str(dagkit.runtime_python(project))
    return {
        "task_id": stage.name,
        "application": str(dagkit.project_dir(project) / stage.entry_point),
        "application_args": stage.arguments(run_values or {}),
        "conn_id": conn_id,
        "conf": {
            "spark.archives": f"{{% if not ({is_local}) %}}{dagkit.runtime_archive(project)}#venv{{% endif %}}",
            "spark.pyspark.driver.python": python,
            "spark.pyspark.python": f"{{% if {is_local} %}}{python}{{% else %}}./venv/bin/python{{% endif %}}",
        },
        # the platform's part of the outputs' provenance (dagkit.provenance)
        "env_vars": provenance.environment(stage),
        "outlets": stage.assets(),
    }


def external_python(project: str, name: str, *, run_values: dict[str, str] | None = None) -> dict:
    """ExternalPythonOperator arguments that run a python stage's entry point with the packed
    runtime's interpreter, as ``python <entry_point> <args>`` would.

    The interpreter is the runtime this host's release has unpacked (`make deploy`, or a worker's
    fetch of the release): the path is resolved where the DAG file is parsed, which for a task is
    the worker running it, as for the spark kind's driver. The arguments reach the program as a
    list (pickled, never through a shell); its environment is `stage_environment`, nothing of the
    worker's own (no Airflow settings or credentials).

    :param run_values: the values of the ``<name>`` placeholders of the stage's args (templated)
    """
    stage = stage_of(project, name, "python")
    return {
        "task_id": stage.name,
        "python": str(dagkit.runtime_python(project)),
        "python_callable": run_entry_point,
        "op_args": [str(dagkit.project_dir(project) / stage.entry_point), *stage.arguments(run_values or {})],
        "env_vars": stage_environment(stage, dagkit.runtime_python(project)),
        "inherit_env": False,
        # the runtime holds the project and its dependencies, never Airflow
        "expect_airflow": False,
        "outlets": stage.assets(),
    }


def stage_environment(stage: Stage, python) -> dict[str, str]:
    """A python stage's whole environment, the same in the DAG's task and in `make run`: its
    runtime first on PATH, UTF-8, and the platform's part of the outputs' provenance."""
    return {"PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
            **provenance.environment(stage)}


def run_entry_point(entry_point: str, *args: str) -> None:
    """Runs in the runtime's interpreter (ExternalPythonOperator sends this function's source):
    the entry point as ``python <entry_point> <args>`` runs it, its exit status the process's."""
    import runpy
    import sys

    # the operator's script reads its own argv after this returns: given back
    script_argv, sys.argv = sys.argv, [entry_point, *args]
    try:
        runpy.run_path(entry_point, run_name="__main__")
    except SystemExit as done:
        # sys.exit(0) is success: the operator's script goes on to write its (empty) result
        if done.code not in (None, 0):
            raise
    finally:
        sys.argv = script_argv


def docker(project: str, name: str, *, image: str, run_values: dict[str, str] | None = None,
           private_environment_from: dict[str, str] | None = None,
           variables: dict[str, tuple[str, str]] | None = None,
           user_from_task: str | None = None) -> dict:
    """DockerOperator arguments that run a container stage's command and args (``run_values``
    fill their ``<name>``s, templated) in the project's image, with its mounts and its
    environment (`container_environment`, plus the platform's part of the outputs' provenance).

    :param private_environment_from: ``{ENV_VAR: "conn_id.field"}``, field one of login,
        password, host, schema, port or ``extra.<key>``, read when the task runs and passed as
        the operator's private environment (kept out of the UI); empty fields and connections
        that do not exist are left out, so the program's own default applies
    :param variables: ``{attribute: (variable, default)}``: operator attributes a Variable can
        change on a running Airflow (``docker_url``, ``network_mode``), read when the task runs
    :param user_from_task: the task whose XCom is the container's ``user`` (``uid:gid``), e.g.
        one that returns `prepare_mounts`
    """
    stage = stage_of(project, name, "container")
    secrets, overrides = private_environment_from or {}, variables or {}

    def at_run_time(context) -> None:
        operator = context["task"]
        if secrets:
            operator._private_environment = private_environment(secrets)
        from airflow.sdk import Variable

        for attribute, (variable, default) in overrides.items():
            setattr(operator, attribute, Variable.get(variable, default))
        if user_from_task:
            operator.user = context["ti"].xcom_pull(task_ids=user_from_task)

    return {
        "task_id": stage.name,
        "image": image,
        "command": [*stage.command, *stage.arguments(run_values or {})],
        "environment": {**container_environment(project), **provenance.environment(stage)},
        "mounts": [{"source": source, "target": target, "type": "bind"} for source, target in stage.mounts.items()],
        "outlets": stage.assets(),
        "pre_execute": at_run_time,
        **{attribute: default for attribute, (_, default) in overrides.items()},
    }


def container_environment(project: str) -> dict[str, str]:
    """A container project's environment, nothing secret (the UI shows it): the ``[environment]``
    table of its conf/airflow.toml."""
    return {key: str(value) for key, value in dagkit.project_config(project).get("environment", {}).items()}


def prepare_mounts(project: str, name: str) -> str | None:
    """Create the host folders a container stage mounts; the ``uid:gid`` of the first one's owner,
    which the container runs as so that it can write there (None without mounts: the image's user)."""
    sources = list(stage_of(project, name, "container").mounts)
    for source in sources:
        os.makedirs(source, exist_ok=True)
    if not sources:
        return None
    owner = os.stat(sources[0])
    return f"{owner.st_uid}:{owner.st_gid}"


def private_environment(references: dict[str, str]) -> dict[str, str]:
    """Environment variables read from connection fields when the task runs."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    environment = {}
    for variable, reference in references.items():
        conn_id, _, field = reference.partition(".")
        try:
            connection = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            continue
        if field.startswith("extra."):
            value = connection.extra_dejson.get(field.removeprefix("extra."))
        else:
            value = getattr(connection, field)
        if value not in (None, ""):
            environment[variable] = str(value)
    return environment
