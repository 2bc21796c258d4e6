"""Parse cost of each DAG file under the real DAG processor (`make bench`).

`airflow dag-processor` parses a release-shaped folder (bench_platform.release_shaped) holding the
project DAGs, an empty DAG, and DAGs of one task each: a TaskFlow task, a DockerOperator and a
SparkSubmitOperator (what a provider operator costs, alone). It runs with one parsing process and
no wait between loops, and stops after LOOPS loops. It stores each file's parse time of its last
loop (`dag.last_parse_duration`: from forking the parser to its result), when the processor has
already imported the airflow.* modules the file names, as a long-running processor has. The run
is repeated; the table shows each file's median, and its extra cost over the empty DAG of the same
runs, against the budget (printed, not enforced: the figures depend on the machine's load).

Wall time moves with the machine's load, so a second table gives CPU time, which does not: the
processor's own code path in one process (`_pre_import_airflow_modules` for each file, then, per
parse, a fork that runs `_parse_file`: the DagBag and the serialization), the forked parser's
user + system CPU time from wait4, median of PARSES parses per file.

    python tests/bench_dag_processor.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_platform import EMPTY_DAG, REPO, TASKFLOW_DAG, release_shaped

AIRFLOW = Path(sys.executable).parent / "airflow"
LOOPS = 3
# What a project DAG file may cost on top of an empty one, per parse (issue 14).
BUDGET_MS = 25.0
PARSES = 15
# A DAG processor's parent in one process: the manager's imports, each file's pre-import, then
# one forked parser per parse; prints {file: [CPU seconds of each parse]} as JSON.
FORKED_PARSES = """
import json, os, sys
from pathlib import Path
import structlog
from airflow.dag_processing.processor import DagFileParseRequest, _parse_file, _pre_import_airflow_modules
dags, parses = Path(sys.argv[1]), int(sys.argv[2])
log = structlog.get_logger()
files = sorted(dags.glob("*.py"))
for path in files:
    _pre_import_airflow_modules(str(path), log)
cpu = {}
for _ in range(parses):
    for path in files:
        pid = os.fork()
        if pid == 0:
            result = _parse_file(DagFileParseRequest(file=str(path), bundle_path=dags, bundle_name="dags-folder",
                                                     callback_requests=[]), log)
            os._exit(0 if result.serialized_dags and not result.import_errors else 3)
        _, status, usage = os.wait4(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{path.name} loaded no DAG in the forked parser")
        cpu.setdefault(path.name, []).append(usage.ru_utime + usage.ru_stime)
print(json.dumps(cpu))
"""
DOCKER_DAG = '''from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk import DAG
with DAG("docker", schedule=None, catchup=False):
    DockerOperator(task_id="run", image="localhost/any:1", command=["run"], auto_remove="force")
'''
SPARK_DAG = '''from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG
with DAG("spark", schedule=None, catchup=False):
    SparkSubmitOperator(task_id="run", application="/srv/main.py", conf={"spark.archives": ""})
'''


def processor_parse_times(dags: Path, env: dict[str, str]) -> dict[str, float]:
    """Seconds per DAG file of the last loop of one `airflow dag-processor -n LOOPS` run."""
    subprocess.run([AIRFLOW, "db", "reset", "--yes"], check=True, capture_output=True, env=env)
    subprocess.run([AIRFLOW, "dag-processor", "--num-runs", str(LOOPS)], check=True, capture_output=True,
                   env={**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}, timeout=900)
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as db:
        rows = db.execute("SELECT fileloc, last_parse_duration FROM dag WHERE is_stale = 0").fetchall()
    found = {Path(fileloc).name: duration for fileloc, duration in rows}
    if missing := sorted({p.name for p in dags.glob("*.py")} - set(found)):
        with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as db:
            errors = db.execute("SELECT filename, stacktrace FROM import_error").fetchall()
        sys.exit(f"bench: the DAG processor loaded no DAG from {', '.join(missing)}:\n{errors}")
    return found


def table(ms: dict[str, float], extra_ms: dict[str, float]) -> None:
    for name in sorted(ms):
        verdict = "" if name == "empty_dag.py" else "within" if extra_ms[name] <= BUDGET_MS else "over"
        print(f"  {name:<22} {ms[name]:10.1f} {extra_ms[name]:21.1f}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="processor runs (default 5); 0: the CPU table alone")
    runs = parser.parse_args().runs
    work = Path(tempfile.mkdtemp(prefix="bench-dag-processor-"))
    try:
        extra = work / "extra"
        extra.mkdir()
        (extra / "empty_dag.py").write_text(EMPTY_DAG)
        (extra / "taskflow_dag.py").write_text(TASKFLOW_DAG)
        (extra / "docker_dag.py").write_text(DOCKER_DAG)
        (extra / "spark_dag.py").write_text(SPARK_DAG)
        dags = release_shaped(work / "release", [*sorted((REPO / "dags").glob("*.py")), *sorted(extra.glob("*.py"))])
        env = {
            **os.environ, "AIRFLOW_HOME": str(work / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "0",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "0",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST":
                '[{"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}}]',
        }
        env.pop("AIRFLOW__CORE__DAGS_FOLDER", None)
        if runs:
            samples: dict[str, list[float]] = {}
            for _ in range(runs):
                for name, seconds in processor_parse_times(dags, env).items():
                    samples.setdefault(name, []).append(seconds)
            median = {name: statistics.median(values) * 1000 for name, values in samples.items()}
            extra_ms = {name: statistics.median(s - e for s, e in zip(values, samples["empty_dag.py"], strict=True)) * 1000
                        for name, values in samples.items()}
            print(f"DAG file parse time under `airflow dag-processor` (median of {runs} runs, loop {LOOPS} of each)")
            print(f"  {'file':<22} {'parse, ms':>10} {'extra over empty, ms':>21}  budget {BUDGET_MS:.0f} ms")
            table(median, extra_ms)

        forked = subprocess.run([sys.executable, "-c", FORKED_PARSES, str(dags), str(PARSES)], check=True,
                                capture_output=True, text=True, env={**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)})
        cpu = json.loads(forked.stdout.splitlines()[-1])
        cpu_ms = {name: statistics.median(values) * 1000 for name, values in cpu.items()}
        print(f"CPU time of a forked parser (the processor's code path: pre-import, fork, _parse_file; "
              f"median of {PARSES})")
        print(f"  {'file':<22} {'CPU, ms':>10} {'extra over empty, ms':>21}  budget {BUDGET_MS:.0f} ms")
        table(cpu_ms, {name: ms - cpu_ms["empty_dag.py"] for name, ms in cpu_ms.items()})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
