"""What every DAG file shares, and the only code that knows how a release sits on disk.

A deployed release looks like this (``$AIRFLOW_HOME/current`` points at one of them)::

    releases/<version>/
        manifest.json        version, git sha, checksums, pinned images (written by `make archive`)
        dags/                Airflow's dags_folder; this package lives here
        <project>/           a project folder: conf/, src/, venv.tar.gz
        <project>/venv/      the runtime, unpacked by `make deploy` for the host to run

A source checkout has the same shape, without manifest.json, so DAG files parse there too.

Standard library only: the DAG processor imports this with every DAG file, over and over.
"""

from __future__ import annotations

import json
import os
import tomllib
from datetime import timedelta
from functools import cache
from pathlib import Path

# The release layout names this package reads: its own copy of platformkit/layout.py's, since it
# ships inside each release (tests/test_layout.py checks the two agree).
MANIFEST = "manifest.json"
RUNTIME_ARCHIVE = "venv.tar.gz"
RUNTIME_DIR = "venv"
RUNTIME_MANIFEST = "venv.manifest.json"

# dags/dagkit/__init__.py -> the release (or checkout) root. Resolving follows the `current`
# symlink, so a task keeps using the release it was parsed from while a new one is deployed.
RELEASE_ROOT = Path(__file__).resolve().parents[2]

# A DAG owner is a team; one place to name the default.
DEFAULT_OWNER = "data-platform"


def project_dir(project: str) -> Path:
    """The folder of a project (``image-matching``, ``arxlive``) in this release."""
    path = RELEASE_ROOT / project
    if not path.is_dir():
        raise FileNotFoundError(f"project {project!r} is not in the release at {RELEASE_ROOT}")
    return path


def runtime_archive(project: str) -> Path:
    """The packed runtime, for engines that ship it themselves (``--archives venv.tar.gz#venv``)."""
    return project_dir(project) / RUNTIME_ARCHIVE


def runtime_python(project: str) -> Path:
    """The interpreter of the runtime that `make deploy` unpacked for this host."""
    return project_dir(project) / RUNTIME_DIR / "bin" / "python"


@cache
def release_manifest() -> dict:
    """The release's manifest.json; empty in a source checkout."""
    path = RELEASE_ROOT / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def release_version() -> str:
    """The deployed release's version (also the tag of the images it runs); ``dev`` in a checkout."""
    return release_manifest().get("version", "dev")


def image_reference(project: str, repository: str) -> str:
    """The image a container project runs: the release pins it in its manifest (by registry
    digest, or by its local image ID; `make deploy` checked the engine has it). A source
    checkout, or a release archived without images, runs <repository>/<project>:<version>."""
    pinned = release_manifest().get("images", {}).get(project)
    return pinned["reference"] if pinned else f"{repository}:{release_version()}"


def data_path(path: str) -> Path:
    """A data location from a project's config: absolute as given, relative under $AIRFLOW_HOME/data."""
    airflow_home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    return Path(path) if Path(path).is_absolute() else airflow_home / "data" / path


def data_location(location: str) -> str:
    """A data location from a project's config: a URI (``hdfs://``, ``s3a://``, ``file://``) as
    given, a path as `data_path` places it. A URI carrying a password is refused (the message
    masks it): the task's command line, which Airflow logs, would show it to everyone."""
    if "://" not in location:
        return str(data_path(location))
    scheme, _, rest = location.partition("://")
    authority = rest.partition("/")[0]
    # user:secret@host; abfss's container@account holds no secret and is the address itself
    if ":" in authority.rpartition("@")[0]:
        raise ValueError(f"credentials in the data location {scheme}://***@{authority.rpartition('@')[2]}/...: "
                         "give them in the Hadoop configuration (spark.hadoop.* or core-site.xml), never in the URI")
    return location


def project_config(project: str, name: str = "airflow") -> dict:
    """A project's settings for its DAG, from ``<project>/conf/<name>.toml``."""
    with open(project_dir(project) / "conf" / f"{name}.toml", "rb") as f:
        return tomllib.load(f)


def default_args(owner: str = DEFAULT_OWNER, retries: int = 2, **overrides) -> dict:
    """The default_args every DAG starts from: an owner, retries with exponential back-off, and
    the failure alert (a log line, plus a webhook when configured: see dagkit.alerts)."""
    from dagkit.alerts import task_failed

    args = {
        "owner": owner,
        "on_failure_callback": task_failed,
        "retries": retries,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(hours=1),
    }
    args.update(overrides)
    return args
