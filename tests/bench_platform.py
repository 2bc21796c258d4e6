"""Platform benchmarks (`make bench`): figures printed side by side, from one run.

- `make venv SKIP_DOCKER=true`: a cold build against a no-op rebuild (the small hello project,
  and each real project whose runtime is already built: its size);
- archive size, deploy time and switch time (a rollback is a switch);
- each DAG file's parse time from `airflow dags report`, next to an empty DAG's and a one-task
  TaskFlow DAG's (alone in a fresh process, and all in one bag). The DAGs are parsed in a
  release-shaped folder (dags/ beside each project's conf/ and project.toml), as Airflow parses a
  deployed release; a DAG file that does not load stops the benchmark, so no failed import is timed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
EMPTY_DAG = '''from airflow.sdk import DAG
with DAG("empty", schedule=None, catchup=False):
    pass
'''
# The same with one TaskFlow task and a cron schedule: what any DAG using @task pays in Airflow's
# own imports, to read the project DAGs' figures against.
TASKFLOW_DAG = '''from airflow.sdk import DAG, task
with DAG("taskflow", schedule="0 3 * * *", catchup=False):
    task(lambda: None, task_id="noop")()
'''


def timed(*command, **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run([str(c) for c in command], check=True, capture_output=True, **kwargs)
    return time.perf_counter() - start


def seconds_of(duration: str) -> float:
    """'0:00:00.001046' -> 0.001046"""
    hours, minutes, seconds = duration.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def parse_times(dags: Path, env: dict[str, str]) -> dict[str, float]:
    """Seconds per DAG file, from `airflow dags report` on that dags folder; exits when a file
    holds no DAG (an import error), since its time would be that of a failed import."""
    report = subprocess.run([Path(PY).parent / "airflow", "dags", "report", "-o", "json"], check=True,
                            capture_output=True, text=True, env={**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)})
    rows = json.loads(next(line for line in report.stdout.splitlines() if line.startswith("[{")))
    if failed := [Path(row["file"]).name for row in rows if int(row["dag_num"]) < 1]:
        sys.exit(f"bench: {', '.join(failed)} in {dags} loaded no DAG; fix the import error first:\n{report.stderr[-2000:]}")
    return {Path(row["file"]).name: seconds_of(row["duration"]) for row in rows}


def release_shaped(target: Path, dag_files: list[Path]) -> Path:
    """A folder shaped like a deployed release: dags/ (dagkit and the given files) beside each
    project's conf/, project.toml and the config files it names, which DAG files read when parsed.
    Returns its dags/ folder."""
    dags = target / "dags"
    shutil.copytree(REPO / "dags/dagkit", dags / "dagkit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dags/.airflowignore", dags)
    for path in dag_files:
        shutil.copy(path, dags / path.name)
    for project in REPO.glob("*/pyproject.toml"):
        shutil.copytree(project.parent / "conf", target / project.parent.name / "conf")
        contract = project.parent / "project.toml"
        if contract.is_file():
            # the contract, and the config files its stages name (their hashes are read at parse time)
            names = {"project.toml", *(c for stage in tomllib.loads(contract.read_text())["stages"]
                                       for c in stage.get("config", []))}
            for name in names:
                (target / project.parent.name / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(project.parent / name, target / project.parent.name / name)
    return dags


def size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e6 else f"{n_bytes / 1e3:.0f} kB"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-platform-"))
    try:
        tree = work / "checkout"
        (tree / "dags").mkdir(parents=True)
        shutil.copytree(REPO / "tests/fixtures/hello", tree / "hello")
        subprocess.run(["git", "init", "-q", str(tree)], check=True)

        cold = timed(PY, "-m", "platformkit", "build-runtime", tree / "hello")
        noop = timed(PY, "-m", "platformkit", "build-runtime", tree / "hello")
        print("runtime build (venv + venv-pack, on the host, project 'hello')")
        print(f"  cold build        {cold:8.2f} s")
        print(f"  no-op rebuild     {noop:8.2f} s   ({cold / noop:.0f}x faster)")

        print("runtime sizes")
        for manifest_path in sorted([tree / "hello/venv.manifest.json", *REPO.glob("*/venv.manifest.json")]):
            manifest = json.loads(manifest_path.read_text())
            print(f"  {manifest['project']:<16} {size(manifest['archive_bytes']):>9} packed, "
                  f"{len(manifest['packages'])} packages")

        dist = work / "dist"
        archive_time = timed(PY, "-m", "platformkit", "archive", "--root", tree, "--version", "b1", "--dist", dist)
        archive = dist / "platform-airflow-dags-b1.tar.gz"
        print(f"archive of 'hello': {size(archive.stat().st_size)}, written in {archive_time:.2f} s")
        checkout = subprocess.run([PY, "-m", "platformkit", "archive", "--root", REPO, "--version", "bench",
                                   "--dist", work / "dist-repo"], capture_output=True, text=True)
        if checkout.returncode == 0:
            repo_archive = work / "dist-repo/platform-airflow-dags-bench.tar.gz"
            print(f"archive of this checkout (every project and runtime): {size(repo_archive.stat().st_size)}")
        else:
            print("archive of this checkout: not measured (a runtime is missing or stale: make venv SKIP_DOCKER=true)")
        subprocess.run([PY, "-m", "platformkit", "archive", "--root", tree, "--version", "b2", "--dist", dist],
                       check=True, capture_output=True)
        home = work / "home"
        deploy_time = timed(PY, "-m", "platformkit", "deploy", archive, "--airflow-home", home)
        timed(PY, "-m", "platformkit", "deploy", dist / "platform-airflow-dags-b2.tar.gz", "--airflow-home", home)
        switch_time = timed(PY, "-m", "platformkit", "rollback", "--airflow-home", home)
        print(f"deploy (verify, unpack, runtimes, switch) {deploy_time:8.2f} s")
        print(f"switch (rollback, incl. interpreter start) {switch_time:8.2f} s")

        extra = work / "extra-dags"
        extra.mkdir()
        (extra / "empty_dag.py").write_text(EMPTY_DAG)
        (extra / "taskflow_dag.py").write_text(TASKFLOW_DAG)
        dag_files = [*sorted((REPO / "dags").glob("*.py")), *sorted(extra.glob("*.py"))]
        env = {**os.environ, "AIRFLOW_HOME": str(work / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        subprocess.run([Path(PY).parent / "airflow", "db", "migrate"], check=True, capture_output=True, env=env)
        together = parse_times(release_shaped(work / "release", dag_files), env)
        # Alone: each file in a release of its own, in a fresh process, so each pays the imports
        # it needs; together, the first file to need a shared import pays for all.
        alone = {}
        for path in dag_files:
            alone.update(parse_times(release_shaped(work / f"alone-{path.stem}", [path]), env))
        print("DAG file parse time (airflow dags report)")
        print(f"  {'file':<22} {'alone, ms':>10} {'x empty':>8} {'in one bag, ms':>15}")
        for name in sorted(together):
            print(f"  {name:<22} {alone[name] * 1000:10.1f} {alone[name] / alone['empty_dag.py']:8.1f} "
                  f"{together[name] * 1000:15.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
