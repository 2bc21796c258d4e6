"""Provider operators that are imported when their task runs, not when the DAG file is parsed.

The Spark and Docker providers import `requests` and the `docker` SDK at module level; the DAG
processor parses every file over and over, so a DAG file must not pay for them. A
`ProviderOperator` names the provider operator by its import path and holds its arguments; at
run time it builds that operator and runs it. Its arguments are rendered as templates first
(``{{ ds }}`` works anywhere in them) and show in the UI's Rendered Template tab.

The Docker provider wants ``docker.types.Mount`` objects for ``mounts``; give plain dicts
(``{"source": "/host/dir", "target": "/data", "type": "bind"}``) and they are turned into
Mounts when the task runs.

Secrets never go into ``operator_kwargs`` (they would be rendered in the UI): name the
connection fields in ``private_environment_from`` and they are read when the task runs and
passed as the operator's ``private_environment`` (DockerOperator keeps those out of the UI).
"""

from __future__ import annotations

import importlib
from typing import Any

from airflow.sdk import BaseHook, BaseOperator
from airflow.sdk.exceptions import AirflowNotFoundException


class ProviderOperator(BaseOperator):
    template_fields = ("operator_kwargs",)
    template_fields_renderers = {"operator_kwargs": "json"}

    def __init__(
        self,
        *,
        operator: str,
        operator_kwargs: dict[str, Any] | None = None,
        private_environment_from: dict[str, str] | None = None,
        **kwargs,
    ):
        """
        :param operator: import path, e.g. ``airflow.providers.docker.operators.docker.DockerOperator``
        :param operator_kwargs: that operator's arguments (templated)
        :param private_environment_from: ``{ENV_VAR: "conn_id.field"}``, field one of
            login, password, host, schema, port or ``extra.<key>``; empty fields and
            connections that do not exist are left out (the program's own default applies)
        """
        super().__init__(**kwargs)
        self.operator = operator
        self.operator_kwargs = operator_kwargs or {}
        self.private_environment_from = private_environment_from or {}
        self._running = None

    def execute(self, context):
        module, _, name = self.operator.rpartition(".")
        operator_class = getattr(importlib.import_module(module), name)
        kwargs = dict(self.operator_kwargs)
        if kwargs.get("mounts"):
            from docker.types import Mount

            kwargs["mounts"] = [Mount(**m) if isinstance(m, dict) else m for m in kwargs["mounts"]]
        if self.private_environment_from:
            kwargs["private_environment"] = private_environment(self.private_environment_from)
        self._running = operator_class(task_id=self.task_id, **kwargs)
        return self._running.execute(context)

    def on_kill(self) -> None:
        if self._running is not None:
            self._running.on_kill()


def private_environment(references: dict[str, str]) -> dict[str, str]:
    """Environment variables read from connection fields when the task runs."""
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
