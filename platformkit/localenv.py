"""The environment of an Airflow on one machine with the embedded defaults, for the ops scripts
and the tests: this process's environment, local.env, and the deployed release in AIRFLOW_HOME.
(`make airflow` reads local.env the same way, in the shell.)"""

from __future__ import annotations

import os
from pathlib import Path

from platformkit.layout import CURRENT, DAGS

REPO = Path(__file__).resolve().parents[1]
PLATFORM_BIN = REPO / ".venv/bin"


def local_env() -> dict[str, str]:
    """The KEY=VALUE lines of local.env (no quoting: values may hold spaces and JSON)."""
    settings = {}
    for line in (REPO / "local.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def airflow_env(airflow_home: Path) -> dict[str, str]:
    """Airflow on AIRFLOW_HOME's live release (current/dags), its metadata in SQLite there, and
    the platform environment first on PATH (the DAG processor's and the tasks' Python)."""
    return {
        **os.environ,
        **local_env(),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(airflow_home / CURRENT / DAGS),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "PATH": f"{PLATFORM_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
