"""The image_matching DAG on a Spark standalone cluster (a master and two workers on 127.0.0.1):
the cluster branch of the DAG ships the packed runtime (spark.archives), the executors run it, and
the outputs equal a local-mode run's."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import REPO, VENV_BIN, run

GENERATOR_PYTHON = REPO / "image-matching/.venv/bin/python"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_env() -> dict[str, str]:
    """spark-class from the platform's pyspark, every daemon on loopback."""
    import pyspark

    return {**os.environ, "SPARK_HOME": str(Path(pyspark.__file__).parent), "SPARK_LOCAL_IP": "127.0.0.1"}


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    """spark://127.0.0.1:<port> with two one-core workers; yields (master URL, the workers' work folder)."""
    work = tmp_path_factory.mktemp("spark-cluster")
    port, ui_port = free_port(), free_port()
    master_url = f"spark://127.0.0.1:{port}"
    spark_class = VENV_BIN / "spark-class"
    processes = [subprocess.Popen(
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
         "--webui-port", str(ui_port)], env=spark_env(), stdout=open(work / "master.log", "w"), stderr=subprocess.STDOUT)]
    for n in range(2):
        processes.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.worker.Worker", master_url, "--host", "127.0.0.1", "--cores", "1",
             "--memory", "3g", "--webui-port", str(free_port()), "--work-dir", work / "work"],
            env=spark_env(), stdout=open(work / f"worker-{n}.log", "w"), stderr=subprocess.STDOUT))
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as response:
                    if json.load(response).get("aliveworkers") == 2:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                pytest.fail(f"the Spark cluster did not start; see the logs in {work}")
            time.sleep(2)
        yield master_url, work / "work"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def exports(output: Path, report: dict) -> dict[str, list[dict]]:
    """Each wiki's TSV rows without the run's own columns (dataset_id, insertion_ts)."""
    result = {}
    for wiki, summary in report["wikis"].items():
        with open(urlparse(summary["export"]).path, newline="") as f:
            result[wiki] = [{k: v for k, v in r.items() if k not in ("dataset_id", "insertion_ts")}
                            for r in csv.DictReader(f, delimiter="\t")]
    return result


def test_cluster_run_ships_the_runtime_and_equals_local_mode(deployed_release, spark_cluster):
    master_url, worker_dir = spark_cluster
    if not GENERATOR_PYTHON.exists():
        run("make", "-C", REPO, "image-matching/.venv/.installed", timeout=900)
    data = deployed_release.airflow_home / "data/image-matching"
    run(GENERATOR_PYTHON, "-m", "imagematching.generate", "--pages", "1500", "--wikis", "3",
        "--snapshot", "2026-10", "--output", data / "input")
    output = data / "output"
    summary = output / "summary/snapshot=2026-10.json"

    local = deployed_release.dag_test("image_matching", "2026-11-01", env={"SPARK_LOCAL_IP": "127.0.0.1"})
    assert local.returncode == 0, (local.stdout + local.stderr)[-6000:]
    local_report = json.loads(summary.read_text())
    local_rows = exports(output, local_report)

    host, _, port = master_url.removeprefix("spark://").partition(":")
    connection = json.dumps({"conn_type": "spark", "host": f"spark://{host}", "port": int(port)})
    cluster = deployed_release.dag_test("image_matching", "2026-11-01", env={
        "AIRFLOW_CONN_SPARK_DEFAULT": connection, "SPARK_LOCAL_IP": "127.0.0.1"})
    log = cluster.stdout + cluster.stderr
    assert cluster.returncode == 0, log[-6000:]
    assert "spark.archives=" in log and "venv.tar.gz#venv" in log, "the cluster branch ships the runtime"
    report = json.loads(summary.read_text())
    assert report["dataset_id"] != local_report["dataset_id"]
    # The executors ran ./venv/bin/python of the archive, unpacked in a worker's folder for the app.
    executor_env = Path(report["executor_environment"])
    assert executor_env.name == "venv" and executor_env.is_relative_to(worker_dir.resolve()), executor_env
    assert (executor_env / "bin/python").exists()
    assert report["wikis"] == local_report["wikis"]
    assert exports(output, report) == local_rows
