"""A shell in a project's runtime: ``python3 -m platformkit shell PROJECT``.

The shell has what the project's DAG task has (platformkit/stage_runtime.py): the unpacked
runtime's Python first on PATH, Spark as the local-mode spark-submit gives it (spark projects), and the stage's
PLATFORM_PROVENANCE. Interactive on a terminal; otherwise it runs the commands read from stdin
and exits with their status, so it can be scripted (``echo 'python -V' | make shell PROJECT=x``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from platformkit import stage_runtime


def open_shell(root: Path, project: str) -> None:
    """Replace this process with the shell (its exit status is the command's)."""
    venv, environment = stage_runtime.environment(root, project)
    environment["PS1"] = f"({project}) \\w \\$ "
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"shell: {project}'s runtime {venv}; exit to leave", file=sys.stderr)
    # --norc: the user's rc files would put their own PATH back in front of the runtime's.
    os.execvpe("bash", ["bash", "--norc", "--noprofile", *(["-i"] if interactive else ["-s"])], environment)
