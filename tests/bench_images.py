"""Image and bytecode benchmarks (`make bench`): figures printed side by side, from one run.

- the image check of `make deploy` (platformkit/images.py check_available) with the image present;
- process start with compiled bytecode against without it: the Airflow CLI, a DAG file parsed
  alone in a fresh process (its parse time as `airflow dags report` gives it), and an arxlive
  container.

"Without bytecode" is the state before bytecode was compiled at install: the interpreter's
standard library has its cache, nothing else does, and nothing may be written. It is reproduced
with PYTHONPYCACHEPREFIX pointing at a folder that holds only the standard library's bytecode,
and PYTHONDONTWRITEBYTECODE=1, so every run pays for compiling what it imports.

Needs `make image PROJECT=arxlive` (it builds the image when it is missing) and a Docker engine.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from bench_platform import parse_times

from platformkit import images

REPO = Path(__file__).resolve().parents[1]

RUNS = 3


def median_seconds(command: list[str], env: dict[str, str] | None = None, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def stdlib_only_cache(prefix: Path, python: list[str], stdlib: str, env: dict[str, str] | None = None) -> None:
    """Fill a pycache prefix with the standard library's bytecode, and nothing else."""
    subprocess.run([*python, "-m", "compileall", "-q", "-j", "0", stdlib], check=False, capture_output=True,
                   env={**(env or os.environ), "PYTHONPYCACHEPREFIX": str(prefix)})


def row(what: str, with_bytecode: float, without: float) -> None:
    print(f"  {what:<34} {with_bytecode:8.3f} s {without:8.3f} s {without / with_bytecode:6.1f}x")


def main() -> None:
    version = subprocess.run(["make", "-s", "-C", str(REPO), "version"], check=True, capture_output=True,
                             text=True).stdout.strip()
    tag = f"localhost/arxlive:{version}"
    if images.inspect(tag) is None:
        subprocess.run(["make", "-s", "-C", str(REPO), "image", "PROJECT=arxlive"], check=True)
    info = images.inspect(tag)
    reference = f"localhost/arxlive:{images.LOCAL_TAG_PREFIX}{info['Id'].removeprefix('sha256:')}"
    work = Path(tempfile.mkdtemp(prefix="bench-images-"))
    manifest = {"images": {"arxlive": {"reference": reference, "image_id": info["Id"]}}}
    checks = []
    for _ in range(RUNS):
        start = time.perf_counter()
        images.check_available(work, manifest)
        checks.append(time.perf_counter() - start)
    print(f"deploy's image check, image present (median of {RUNS}): {statistics.median(checks):.3f} s")

    print(f"process start, median of {RUNS}      {'bytecode':>10} {'without':>10} {'ratio':>6}")
    prefix = work / "stdlib-only"
    stdlib_only_cache(prefix, [sys.executable], sysconfig.get_paths()["stdlib"])
    without = {**os.environ, "PYTHONPYCACHEPREFIX": str(prefix), "PYTHONDONTWRITEBYTECODE": "1"}
    airflow_home = {"AIRFLOW_HOME": str(work / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    airflow = [str(Path(sys.executable).parent / "airflow"), "version"]
    row("Airflow CLI (airflow version)", median_seconds(airflow, {**os.environ, **airflow_home}),
        median_seconds(airflow, {**without, **airflow_home}))
    # The DAG file's own parse, as the DAG processor reports it, in a folder of its own: with the
    # folder compiled (dagkit and the file) and Airflow's bytecode, against neither.
    dags = work / "dags"
    shutil.copytree(REPO / "dags/dagkit", dags / "dagkit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dags/arxlive.py", dags / "arxlive.py")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dags)], check=True, capture_output=True)
    subprocess.run([Path(sys.executable).parent / "airflow", "db", "migrate"], check=True, capture_output=True,
                   env={**os.environ, **airflow_home})
    parsed = [parse_times(dags, {**os.environ, **airflow_home})["arxlive.py"] for _ in range(RUNS)]
    parsed_without = [parse_times(dags, {**without, **airflow_home})["arxlive.py"] for _ in range(RUNS)]
    row("DAG file parsed alone (arxlive.py)", statistics.median(parsed), statistics.median(parsed_without))

    container_prefix = work / "container-stdlib-only"
    container_prefix.mkdir(mode=0o777)
    container_prefix.chmod(0o777)  # the container's user writes the standard library's cache here
    stdlib = subprocess.run(["docker", "run", "--rm", "--entrypoint", "python", reference, "-c",
                             "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                            check=True, capture_output=True, text=True).stdout.strip()
    stdlib_only_cache(container_prefix, ["docker", "run", "--rm", "-e", "PYTHONPYCACHEPREFIX=/pyc", "-v",
                                         f"{container_prefix}:/pyc", "--entrypoint", "python", reference], stdlib)
    run = ["docker", "run", "--rm", reference, "RootTask", "--help"]
    run_without = ["docker", "run", "--rm", "-e", "PYTHONPYCACHEPREFIX=/pyc", "-e", "PYTHONDONTWRITEBYTECODE=1",
                   "-v", f"{container_prefix}:/pyc:ro", reference, "RootTask", "--help"]
    row("arxlive container (RootTask --help)", median_seconds(run), median_seconds(run_without))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
