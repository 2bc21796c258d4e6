"""A container project's stage on this machine, as its DAG's DockerOperator runs it: the image
`make image` built from this checkout, the stage's mounts (their host folders created, the
container running as their owner: ``dagkit.stages.prepare_mounts``), the container's environment
(``dagkit.stages.container_environment``) and the stage's PLATFORM_PROVENANCE. Nothing secret:
what the DAG reads from a connection (an API key, a database URL) reaches the container only
when its name is given (``--pass-env NAME``), from this process's environment and by name
(``docker run -e NAME``), so its value is on no command line and in no log line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from pathlib import Path

from platformkit import images, runtime, version
from platformkit.errors import PlatformError

ENVIRONMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def image(root: Path, kit, project: str, reference: str | None = None) -> dict:
    """``{reference, image_id}`` of the image to run: the one given, else the one `make image`
    builds from this checkout (``<conf/airflow.toml image>:<this checkout's version>``), which
    must hold the current runtime."""
    if reference is None:
        reference = f"{kit.project_config(project)['image']}:{version.release_version(root)}"
        # Its verdict on stderr: a scripted shell's stdout is its commands' alone.
        with contextlib.redirect_stdout(sys.stderr):
            current = runtime.is_current(root / project)
        if not current:
            raise PlatformError(f"the runtime of {project} is missing or stale: run `make image PROJECT={project}`")
    info = images.inspect(reference)
    if info is None:
        raise PlatformError(f"no image {reference} on this Docker engine: run `make image PROJECT={project}`")
    if difference := images.differs_from(info, root / project):
        raise PlatformError(f"{reference} was built from {difference}: run `make image PROJECT={project}`")
    return {"reference": reference, "image_id": info["Id"]}


def docker_run(kit, stage, facts: dict, command: list[str], *, entrypoint: str | None = None,
               network: str | None = None, pass_env: list[str] = (), stdin: bool = False) -> tuple[list[str], dict]:
    """The `docker run` command line of the stage's container and the environment to run it in.

    :param facts: the stage's provenance facts (PLATFORM_PROVENANCE), with the image
    :param command: the container's command (after the entry point)
    :param network: the container's network; default the project's ``network_mode``
    :param pass_env: names of variables of this environment to give the container as well
    :param stdin: give the container this process's stdin (``-i``), and a terminal when it is one
    """
    if bad := [name for name in pass_env if not ENVIRONMENT_NAME.match(name)]:
        raise PlatformError(f"not an environment variable's name: {bad[0]!r}")
    if unset := [name for name in pass_env if name not in os.environ]:
        print(f"{stage.project}: --pass-env {', '.join(unset)}: not set here, so not in the container", file=sys.stderr)
    project = stage.project
    user = kit.stages.prepare_mounts(project, stage.name)
    environment = {**kit.stages.container_environment(project), kit.provenance.ENVIRONMENT_VARIABLE: json.dumps(facts)}
    mounts = [f"--volume={source}:{target}" for source, target in stage.mounts.items()]
    terminal = stdin and sys.stdin.isatty()
    argv = ["docker", "run", "--rm", *(["--interactive"] if stdin else []), *(["--tty"] if terminal else []),
            f"--network={network or kit.project_config(project)['network_mode']}", *mounts,
            *([f"--user={user}"] if user else []), *(f"--env={name}" for name in [*environment, *pass_env]),
            *([f"--entrypoint={entrypoint}"] if entrypoint else []), facts["image"]["reference"], *command]
    return argv, {**os.environ, **environment}
