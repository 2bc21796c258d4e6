"""A spark or python project's stage on this machine, as its DAG's task runs it: the packed
runtime unpacked, and the environment the task gives it (a spark stage: the one spark-submit gives
the driver in Spark's local mode; a python stage: dagkit.stages.stage_environment). A container
project's: platformkit/stage_container.py.

The runtime is unpacked once per archive, under .runtimes/<project>-<sha256 prefix>/ (git-ignored),
by deploy's own unpack (same member policy, same smoke test), so a rebuilt venv.tar.gz gets a
fresh unpack and an unchanged one costs nothing. The stage's contract, its platform provenance
and the data locations come from dagkit, imported from the checkout's dags/ as the DAG files
import it: the platform does not keep a second copy of what the DAG gives a task.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from platformkit import deploy, runtime
from platformkit.errors import PlatformError
from platformkit.files import locked, sha256_of
from platformkit.layout import DAGS, RUNTIME_ARCHIVE, RUNTIME_DIR, RUNTIME_MANIFEST

CACHE = ".runtimes"
# Spark's local mode, as the spark_default connection of a single machine has it.
LOCAL_MASTER = "local[*]"


def dagkit(root: Path):
    """The checkout's dagkit (contract, stages, provenance), on sys.path as Airflow puts the
    dags folder."""
    dags = str((root / DAGS).resolve())
    if dags not in sys.path:
        sys.path.insert(0, dags)
    for name in ("dagkit", "dagkit.contract", "dagkit.stages", "dagkit.provenance"):
        importlib.import_module(name)
    return sys.modules["dagkit"]


def unpacked(root: Path, project: str) -> Path:
    """The project's runtime, unpacked (once per archive), built from its current sources: an
    absolute path, since a shell or a stage may change folders."""
    root = root.resolve()
    folder = root / project
    # Its verdict on stderr: a scripted shell's stdout is its commands' alone.
    with contextlib.redirect_stdout(sys.stderr):
        current = runtime.is_current(folder)
    if not current:
        raise PlatformError(f"the runtime of {project} is missing or stale: run `make venv PROJECT={project}`")
    archive = folder / RUNTIME_ARCHIVE
    target = root / CACHE / f"{project}-{sha256_of(archive)[:16]}"
    if (target / "bin/python").exists():
        return target
    with locked(root / CACHE / f"{project}.lock", wait=600):
        if (target / "bin/python").exists():  # another shell or run unpacked it meanwhile
            return target
        manifest = json.loads((folder / RUNTIME_MANIFEST).read_text())
        incoming = Path(tempfile.mkdtemp(prefix=f".{project}-", dir=root / CACHE))
        try:
            # deploy unpacks <release>/<project>/venv.tar.gz into <release>/<project>/venv
            (incoming / project).mkdir()
            (incoming / project / RUNTIME_ARCHIVE).symlink_to(archive.resolve())
            deploy.unpack_runtime(incoming, project, manifest)
            os.replace(incoming / project / RUNTIME_DIR, target)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        for older in (root / CACHE).glob(f"{project}-*"):
            if older != target:
                shutil.rmtree(older, ignore_errors=True)
    return target


def spark_home() -> Path:
    """The Spark the DAG's spark-submit is: the platform environment's pyspark (found, not imported:
    importing it costs half a second)."""
    return Path(importlib.util.find_spec("pyspark").origin).parent


def contract(kit, project: str):
    """The project's contract (project.toml), its errors as the platform's."""
    try:
        return kit.stages.contract(project)
    except (kit.contract.ContractError, FileNotFoundError) as error:
        raise PlatformError(str(error)) from None


def environment(kit, venv: Path, facts: dict) -> dict[str, str]:
    """The environment of a spark stage's driver on the unpacked runtime `venv`: its interpreter
    first on PATH and for Spark's Python workers, Spark's own Python modules (as spark-submit
    adds them), and the stage's provenance `facts` as PLATFORM_PROVENANCE."""
    spark = spark_home()
    python = str(venv / "bin/python")
    return {
        **os.environ,
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{spark / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "SPARK_HOME": str(spark),
        "PYTHONPATH": os.pathsep.join(str(p) for p in sorted((spark / "python/lib").glob("*.zip"))),
        "PYSPARK_PYTHON": python,
        "PYSPARK_DRIVER_PYTHON": python,
        "PYSPARK_SUBMIT_ARGS": f"--master {LOCAL_MASTER} pyspark-shell",
        kit.provenance.ENVIRONMENT_VARIABLE: json.dumps(facts),
    }


def python_environment(kit, stage, venv: Path, facts: dict) -> dict[str, str]:
    """A python stage's whole environment on the unpacked runtime `venv`, the DAG task's own
    (dagkit.stages.stage_environment: nothing of this terminal's), with its provenance `facts`."""
    return {**kit.stages.stage_environment(stage, venv / "bin/python"), kit.provenance.ENVIRONMENT_VARIABLE: json.dumps(facts)}
