"""A shell in a project's runtime or container: ``python3 -m platformkit shell PROJECT``.

The shell has what the project's DAG task has. A spark or python project's (platformkit/stage_runtime.py):
the unpacked runtime's Python first on PATH, Spark as the local-mode spark-submit gives it (spark
projects), and the stage's PLATFORM_PROVENANCE. A container project's (platformkit/stage_container.py): bash in
the image `make image` built from this checkout, with the stage's mounts, user and non-secret
environment (``--pass-env NAME`` adds one of this environment's variables, by name).
Interactive on a terminal; otherwise it runs the commands read from stdin and exits with their
status, so it can be scripted (``echo 'python -V' | make shell PROJECT=x``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from platformkit import stage_container, stage_runtime


def open_shell(root: Path, project: str, *, pass_env: list[str] = (), network: str | None = None,
               image: str | None = None) -> None:
    """Replace this process with the shell (its exit status is the commands')."""
    kit = stage_runtime.dagkit(root)
    contract = stage_runtime.contract(kit, project)
    stage = contract.stages[0]
    interactive = sys.stdin.isatty()
    # --norc: the user's rc files would put their own PATH back in front of the runtime's.
    bash = ["--norc", "--noprofile", "-i" if interactive else "-s"]
    if contract.kind == "container":
        facts = {**kit.provenance.platform_facts(stage), "image": stage_container.image(root, kit, project, image)}
        argv, environment = stage_container.docker_run(kit, stage, facts, bash, entrypoint="bash", network=network,
                                                       pass_env=pass_env, stdin=True)
        where = f"container {facts['image']['reference']}"
    else:
        venv = stage_runtime.unpacked(root, project)
        facts = kit.provenance.platform_facts(stage)
        if contract.kind == "python":
            # the task's own environment over this terminal's
            environment = {**os.environ, "VIRTUAL_ENV": str(venv), **stage_runtime.python_environment(kit, stage, venv, facts)}
        else:
            environment = stage_runtime.environment(kit, venv, facts)
        argv = ["bash", *bash]
        environment["PS1"] = f"({project}) \\w \\$ "
        where = f"runtime {venv}"
    if interactive:
        print(f"shell: {project}'s {where}; exit to leave", file=sys.stderr)
    os.execvpe(argv[0], argv, environment)
