"""
### Image matching

Image candidates for unillustrated Wikipedia articles (Wikimedia's Image Matching Algorithm),
every wiki in one Spark job, once a month. Project: `image-matching/`.

- **snapshot** (`YYYY-MM`): the data lake snapshot to read. Empty: the month before the run's
  logical date (the run of 2026-11-01 reads snapshot 2026-10, the last complete month).
- **wikis**: comma-separated wiki names, or `all`.

`preflight` checks that the snapshot's inputs are there (seconds, no Spark job) and fails the run
at once, without retries, when they are not. Outputs under the configured output location (a
path or a Hadoop-FS URI): `imagerec_prod/wiki=<wiki>/snapshot=<YYYY-MM>/` (parquet) and one TSV
per wiki under `export/snapshot=<YYYY-MM>/`, published together by one commit (its marker is
`_committed/snapshot=<YYYY-MM>.json`), with the coverage report `report/snapshot=<YYYY-MM>.html`
(and `.json`), each output folder with its `_provenance.json`; the task's outlets are the Assets
`image-matching/imagerec_prod` and `image-matching/export` (`project.toml`). `summary` logs the
committed run and the report's location; each wiki's export is a mapped task instance of `export`
(named by wiki).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Param

# @task from its own module: the DAG processor imports the airflow.* modules a file names before it
# forks the parser, and this one (the standard provider's operators behind @task) costs ~0.1 s a parse.
from airflow.sdk.definitions.decorators import task

import dagkit
from dagkit import stages

PROJECT = "image-matching"
config = dagkit.project_config(PROJECT)
spark = config["spark"]
input_uri = dagkit.data_location(config["input"])
output_uri = dagkit.data_location(config["output"])
SNAPSHOT_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
# Logged, not printed: printed lines reach the task log late, inside the collapsed Post Execute group.
log = logging.getLogger(__name__)


def probe(*args: str) -> str:
    """Run `imagematching.probe` (the job's own FileSystem code, in a JVM without a Spark job) with
    Airflow's Python, which has pyspark. Missing data fails the task for good: a retry cannot fix it."""
    import os
    import subprocess
    import sys

    from airflow.exceptions import AirflowFailException

    result = subprocess.run([sys.executable, "-m", "imagematching.probe", *args], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(dagkit.project_dir(PROJECT) / "src")}, timeout=600)
    if result.returncode == 2:
        errors = [line for line in result.stderr.splitlines() if line.startswith("imagematching: error:")]
        raise AirflowFailException(errors[-1] if errors else result.stderr[-2000:])
    if result.returncode != 0:
        raise RuntimeError(f"imagematching.probe {args[0]} exited {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout

with DAG(
    dag_id="image_matching",
    schedule="@monthly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=config["dagrun_timeout_minutes"]),
    default_args=dagkit.default_args(owner="research-engineering"),
    tags=["image-matching", "spark", "monthly"],
    doc_md=__doc__,
    params={
        "snapshot": Param(None, type=["null", "string"], pattern=SNAPSHOT_PATTERN,
                          description="YYYY-MM; empty for the month before the logical date"),
        "wikis": Param(config["wikis"], type="string", minLength=1, description="wiki names, comma-separated, or all"),
    },
):

    @task(retries=0)
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

    @task(retries=0)
    def preflight(snapshot: str) -> None:
        """Every input dataset has the snapshot, through the job's own FileSystem code."""
        log.info(probe("inputs", "--input", input_uri, "--snapshot", snapshot).strip())

    # The job's arguments: image-matching/project.toml, filled with this run's values.
    image_matching = SparkSubmitOperator(
        **stages.spark_submit(PROJECT, "image_matching", conn_id=spark["conn_id"], run_values={
            "snapshot": "{{ ti.xcom_pull(task_ids='snapshot') }}", "wikis": "{{ params.wikis }}",
            "dataset_id": "{{ run_id }}"}),
        execution_timeout=timedelta(minutes=spark["execution_timeout_minutes"]),
        name="image-matching-{{ ti.xcom_pull(task_ids='snapshot') }}",
        driver_memory=spark["driver_memory"],
        executor_memory=spark["executor_memory"],
        executor_cores=spark["executor_cores"],
        num_executors=spark["num_executors"],
        verbose=False,
    )

    @task(retries=0)
    def summary(snapshot: str) -> list[dict]:
        """Log the committed run's summary; one entry per wiki for the export tasks."""
        import json

        report = json.loads(probe("committed", "--output", output_uri, "--snapshot", snapshot))
        log.info(f"image matching, snapshot {report['snapshot']} (dataset {report['dataset_id']})")
        for wiki, s in report["wikis"].items():
            c = s["candidates"]
            log.info(f"  {wiki}: {s['articles']} articles, {s['unillustrated']} unillustrated, "
                     f"{s['with_candidates']} with candidates (high {c['high']}, medium {c['medium']}, low {c['low']})")
        log.info(f"coverage report: {report['report']['html']} (numbers: {report['report']['json']})")
        return [{"wiki": wiki, "tsv": s["export"], "rows": s["export_rows"]} for wiki, s in report["wikis"].items()]

    @task(map_index_template="{{ export['wiki'] }}")
    def export(export: dict) -> dict:
        """One wiki's TSV export, as its own result."""
        log.info(f"{export['wiki']}: {export['rows']} rows in {export['tsv']}")
        return export

    chosen = snapshot()
    chosen >> preflight(chosen) >> image_matching
    export.expand(export=image_matching >> summary(chosen))
