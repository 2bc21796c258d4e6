"""Platform benchmarks (`make bench`): figures printed side by side, from one run.

- `make venv SKIP_DOCKER=true`: a cold build against a no-op rebuild (the small hello project,
  and each real project whose runtime is already built: its size);
- archive size, deploy time and switch time (a rollback is a switch);
- each DAG file's parse time from `airflow dags report`, next to an empty DAG's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
EMPTY_DAG = '''from airflow.sdk import DAG
with DAG("empty", schedule=None, catchup=False):
    pass
'''


def timed(*command, **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run([str(c) for c in command], check=True, capture_output=True, **kwargs)
    return time.perf_counter() - start


def seconds_of(duration: str) -> float:
    """'0:00:00.001046' -> 0.001046"""
    hours, minutes, seconds = duration.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-platform-"))
    try:
        tree = work / "checkout"
        (tree / "dags").mkdir(parents=True)
        shutil.copytree(REPO / "tests/fixtures/hello", tree / "hello")
        subprocess.run(["git", "init", "-q", str(tree)], check=True)

        cold = timed(PY, REPO / "conda/build_runtime.py", tree / "hello")
        noop = timed(PY, REPO / "conda/build_runtime.py", tree / "hello")
        print("runtime build (venv + venv-pack, on the host, project 'hello')")
        print(f"  cold build        {cold:8.2f} s")
        print(f"  no-op rebuild     {noop:8.2f} s   ({cold / noop:.0f}x faster)")

        print("runtime sizes")
        for manifest_path in sorted([tree / "hello/venv.manifest.json", *REPO.glob("*/venv.manifest.json")]):
            manifest = json.loads(manifest_path.read_text())
            print(f"  {manifest['project']:<16} {manifest['archive_bytes'] / 1e6:8.1f} MB packed, "
                  f"{len(manifest['packages'])} packages")

        dist = work / "dist"
        archive_time = timed(PY, REPO / "release/archive.py", "--root", tree, "--version", "b1", "--dist", dist)
        archive = dist / "platform-airflow-dags-b1.tar.gz"
        print(f"archive: {archive.stat().st_size / 1e6:.1f} MB, written in {archive_time:.2f} s")
        subprocess.run([PY, REPO / "release/archive.py", "--root", tree, "--version", "b2", "--dist", dist],
                       check=True, capture_output=True)
        home = work / "home"
        deploy_time = timed(PY, REPO / "release/deploy.py", "deploy", archive, "--airflow-home", home)
        timed(PY, REPO / "release/deploy.py", "deploy", dist / "platform-airflow-dags-b2.tar.gz", "--airflow-home", home)
        switch_time = timed(PY, REPO / "release/deploy.py", "rollback", "--airflow-home", home)
        print(f"deploy (verify, unpack, runtimes, switch) {deploy_time:8.2f} s")
        print(f"switch (rollback, incl. interpreter start) {switch_time:8.2f} s")

        dags = work / "dags"
        shutil.copytree(REPO / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
        (dags / "empty_dag.py").write_text(EMPTY_DAG)
        env = {**os.environ, "AIRFLOW_HOME": str(work / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
               "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
        subprocess.run([Path(PY).parent / "airflow", "db", "migrate"], check=True, capture_output=True, env=env)
        report = subprocess.run([Path(PY).parent / "airflow", "dags", "report", "-o", "json"],
                                check=True, capture_output=True, text=True, env=env)
        rows = json.loads(next(line for line in report.stdout.splitlines() if line.startswith("[{")))
        print("DAG file parse time (airflow dags report)")
        empty = next(seconds_of(r["duration"]) for r in rows if r["file"].endswith("empty_dag.py"))
        for row in sorted(rows, key=lambda r: r["file"]):
            seconds = seconds_of(row["duration"])
            print(f"  {Path(row['file']).name:<24} {seconds * 1000:8.1f} ms   {seconds / empty:5.1f}x the empty DAG")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
