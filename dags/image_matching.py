"""
### Image matching

Image candidates for unillustrated Wikipedia articles (Wikimedia's Image Matching Algorithm),
every wiki in one Spark job, once a month. Project: `image-matching/`.

- **snapshot** (`YYYY-MM`): the data lake snapshot to read. Empty: the month before the run's
  logical date (the run of 2026-11-01 reads snapshot 2026-10, the last complete month).
- **wikis**: comma-separated wiki names, or `all`.

Outputs under the configured output folder: `imagerec_prod/wiki=<wiki>/snapshot=<YYYY-MM>/`
(parquet) and one TSV per wiki under `export/snapshot=<YYYY-MM>/`. Each wiki's export is a
mapped task instance of `export` (named by wiki); the run summary is in `summary`'s log.
"""

from __future__ import annotations

import logging
from datetime import datetime

from airflow.sdk import DAG, Param, task

import dagkit
from dagkit.operators import ProviderOperator

PROJECT = "image-matching"
config = dagkit.project_config(PROJECT)
spark = config["spark"]
input_dir = dagkit.data_path(config["input"])
output_dir = dagkit.data_path(config["output"])
SNAPSHOT_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
# Logged, not printed: printed lines reach the task log late, inside the collapsed Post Execute group.
log = logging.getLogger(__name__)

with DAG(
    dag_id="image_matching",
    schedule="@monthly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=dagkit.default_args(owner="research-engineering"),
    tags=["image-matching", "spark", "monthly"],
    doc_md=__doc__,
    params={
        "snapshot": Param(None, type=["null", "string"], pattern=SNAPSHOT_PATTERN,
                          description="YYYY-MM; empty for the month before the logical date"),
        "wikis": Param(config["wikis"], type="string", minLength=1, description="wiki names, comma-separated, or all"),
    },
):

    @task
    def snapshot(params: dict, logical_date: datetime) -> str:
        """The snapshot to read, checked before Spark starts."""
        import re

        value = params["snapshot"]
        if not value:
            first = logical_date.replace(day=1)
            value = f"{first.year - (first.month == 1)}-{(first.month - 2) % 12 + 1:02d}"
        if not re.match(SNAPSHOT_PATTERN, value):
            raise ValueError(f"snapshot {value!r} is not a month in the form YYYY-MM")
        return value

    image_matching = ProviderOperator(
        task_id="image_matching",
        operator="airflow.providers.apache.spark.operators.spark_submit.SparkSubmitOperator",
        operator_kwargs={
            **dagkit.spark_runtime(PROJECT, conn_id=spark["conn_id"]),
            "application": str(dagkit.project_dir(PROJECT) / "main.py"),
            "name": "image-matching-{{ ti.xcom_pull(task_ids='snapshot') }}",
            "application_args": [
                "--snapshot", "{{ ti.xcom_pull(task_ids='snapshot') }}",
                "--wikis", "{{ params.wikis }}",
                "--input", str(input_dir),
                "--output", str(output_dir),
                "--config", str(dagkit.project_dir(PROJECT) / "conf" / "spark.toml"),
                "--dataset-id", "{{ run_id }}",
            ],
            "driver_memory": spark["driver_memory"],
            "executor_memory": spark["executor_memory"],
            "executor_cores": spark["executor_cores"],
            "num_executors": spark["num_executors"],
            "verbose": False,
        },
    )

    @task
    def summary(snapshot: str) -> list[dict]:
        """Log the run summary; one entry per wiki for the export tasks."""
        import json

        report = json.loads((output_dir / "summary" / f"snapshot={snapshot}.json").read_text())
        log.info(f"image matching, snapshot {report['snapshot']} (dataset {report['dataset_id']})")
        for wiki, s in report["wikis"].items():
            c = s["candidates"]
            log.info(f"  {wiki}: {s['articles']} articles, {s['unillustrated']} unillustrated, "
                     f"{s['with_candidates']} with candidates (high {c['high']}, medium {c['medium']}, low {c['low']})")
        return [{"wiki": wiki, "tsv": s["export"], "rows": s["export_rows"]} for wiki, s in report["wikis"].items()]

    @task(map_index_template="{{ export['wiki'] }}")
    def export(export: dict) -> dict:
        """One wiki's TSV export, as its own result."""
        log.info(f"{export['wiki']}: {export['rows']} rows in {export['tsv']}")
        return export

    chosen = snapshot()
    chosen >> image_matching
    export.expand(export=image_matching >> summary(chosen))
