"""The image_matching DAG, end to end on a deployed release: Airflow -> spark-submit -> the packed runtime."""

from __future__ import annotations

import csv
import json
import sys
import tomllib
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import REPO, run

GENERATOR_PYTHON = REPO / "image-matching/.venv/bin/python"


@pytest.fixture(scope="module")
def sample_input(deployed_release):
    """Generated inputs in the deployed Airflow's data folder, where the DAG's config points."""
    if not GENERATOR_PYTHON.exists():
        run("make", "-C", REPO, "image-matching/.venv/.installed", timeout=900)
    data = deployed_release.airflow_home / "data/image-matching"
    run(GENERATOR_PYTHON, "-m", "imagematching.generate", "--pages", "1500", "--wikis", "3",
        "--snapshot", "2026-10", "--output", data / "input")
    return data


def local_path(uri: str) -> Path:
    assert uri.startswith("file:///"), uri
    return Path(urlparse(uri).path)


def test_timeouts_and_retries_come_from_the_config():
    from airflow.dag_processing.dagbag import DagBag

    sys.path.insert(0, str(REPO / "dags"))
    dag = DagBag(dag_folder=str(REPO / "dags/image_matching.py")).dags["image_matching"]
    config = tomllib.loads((REPO / "image-matching/conf/airflow.toml").read_text())
    assert dag.dagrun_timeout == timedelta(minutes=config["dagrun_timeout_minutes"])
    assert dag.get_task("image_matching").execution_timeout == timedelta(
        minutes=config["spark"]["execution_timeout_minutes"])
    assert dag.get_task("image_matching").retries >= 1
    for task_id in ("snapshot", "preflight", "summary"):
        assert dag.get_task(task_id).retries == 0, task_id
    assert dag.get_task("preflight").downstream_task_ids == {"image_matching"}


def test_monthly_run_reads_last_month_and_writes_every_wiki(deployed_release, sample_input):
    result = deployed_release.dag_test("image_matching", "2026-11-01")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    output = sample_input / "output"
    report = json.loads((output / "summary/snapshot=2026-10.json").read_text())
    marker = json.loads((output / "_committed/snapshot=2026-10.json").read_text())
    assert marker["dataset_id"] == report["dataset_id"] and marker["wikis"] == sorted(report["wikis"])
    assert list((output / "_staging/snapshot=2026-10").iterdir()) == [], "no staging leftovers"
    assert list((output / "_spark-events").iterdir()), "Spark's event log is beside the outputs"
    assert sorted(report["wikis"]) == ["dewiki", "enwiki", "frwiki"]
    # The executors ran the deployed runtime's interpreter, not Airflow's.
    assert report["executor_environment"] == str(deployed_release.release / "image-matching/venv")
    manifest = json.loads((deployed_release.release / "manifest.json").read_text())
    for sidecar in [output / "export/snapshot=2026-10/_provenance.json",
                    *[output / f"imagerec_prod/wiki={w}/snapshot=2026-10/_provenance.json" for w in report["wikis"]]]:
        provenance = json.loads(sidecar.read_text())
        assert provenance["release"] == {"version": deployed_release.version, "git_sha": manifest["git_sha"]}
        assert provenance["runtime_sha256"] == manifest["runtimes"]["image-matching"]["archive_sha256"]
        assert provenance["stage"]["name"] == "image_matching"
        assert set(provenance["stage"]["config_sha256"]) == {"conf/spark.toml"}
        assert provenance["params"]["snapshot"] == "2026-10" and provenance["params"]["dataset_id"] == report["dataset_id"]
        assert len(provenance["inputs"]) == 7 and all(i["bytes"] > 0 for i in provenance["inputs"])
    for wiki, summary in report["wikis"].items():
        assert list((output / f"imagerec_prod/wiki={wiki}/snapshot=2026-10").glob("*.parquet"))
        with open(local_path(summary["export"]), newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        assert len(rows) == summary["export_rows"] > 0
        assert {r["dataset_id"] for r in rows} == {report["dataset_id"]}
        assert f"{wiki}: {summary['articles']} articles" in log, "the summary is in the task log"
        assert f"{wiki}: {summary['export_rows']} rows in" in log, "each wiki's export is its own task"
    page = local_path(report["report"]["html"])
    assert page.is_file() and f"coverage report: {report['report']['html']}" in log, "the summary logs the report"


def test_missing_snapshot_fails_the_run_naming_it(deployed_release, sample_input):
    result = deployed_release.dag_test("image_matching", "2026-11-01", conf={"snapshot": "2025-01"})
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "dataset mediawiki_page has no snapshot 2025-01" in log
    assert "AirflowFailException" in log, "the pre-flight task fails for good"
    assert "spark-submit" not in log, "no Spark job started"
