"""The cluster path on one machine: spark-submit on local-cluster[1,1,1024] ships the packed runtime
(--archives venv.tar.gz#venv) and the executors run its ./venv/bin/python."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imagematching import generate

PROJECT = Path(__file__).resolve().parents[1]
# The platform's runtime builder, run from the checkout (python -m finds platformkit there).
BUILD_RUNTIME = [sys.executable, "-m", "platformkit", "build-runtime", str(PROJECT)]
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"

pytestmark = pytest.mark.cluster


def spark_submit_env() -> dict[str, str]:
    """spark-submit finds Spark through this venv's python; the conf, not the environment, picks workers' Python."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_executors_run_the_packed_runtime(tmp_path):
    # The project's real runtime, as `make venv SKIP_DOCKER=true` builds it (a no-op when up to date).
    subprocess.run(BUILD_RUNTIME, check=True, cwd=PROJECT.parent)
    generate.write(generate.generate(pages=300, wikis=2, snapshot="2026-10", seed=5), tmp_path / "in", "2026-10")
    result = subprocess.run([
        SPARK_SUBMIT, "--master", "local-cluster[1,1,1024]",
        "--archives", f"{PROJECT / 'venv.tar.gz'}#venv",
        "--conf", "spark.pyspark.python=./venv/bin/python",
        "--conf", f"spark.pyspark.driver.python={sys.executable}",
        "--conf", "spark.ui.enabled=false",
        PROJECT / "main.py",
        "--snapshot", "2026-10", "--wikis", "all", "--input", tmp_path / "in", "--output", tmp_path / "out",
    ], capture_output=True, text=True, timeout=600, env=spark_submit_env())
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads((tmp_path / "out/summary/snapshot=2026-10.json").read_text())
    executor_env = Path(report["executor_environment"])
    # The worker unpacked the archive into the executor's own folder, <SPARK_HOME>/work/<app>/<executor>/venv
    # (local-cluster has no setting for that folder, so the test removes it).
    app_dir = executor_env.parents[1]
    assert executor_env.name == "venv" and app_dir.name.startswith("app-"), executor_env
    shutil.rmtree(app_dir)
    assert sorted(report["wikis"]) == ["dewiki", "enwiki"]
