"""
### arXlive

New and updated arXiv articles (OAI-PMH harvest), enriched with OpenAlex works, once a day from
Sunday to Thursday at 03:00 UTC (around arXiv's daily refresh). Project: `arxlive/`, run as its
container image (`make image PROJECT=arxlive`; the release's manifest pins it) by the
DockerOperator; the container runs `arxlive run --date <the data interval's end> --production`
and its output is this task's log.

- **Which records**: a run harvests its own date's window, whatever ran before: from the previous
  scheduled day minus one (an overlap, so that no day is missed whichever side of arXiv's refresh
  the run lands) to its date. A backfill of past dates therefore re-harvests those dates.
  A manual run can set `from` / `until` (YYYY-MM-DD) in the trigger form instead.
- **Exit status of the container**: 2 bad date or configuration, 3 the store is held by another
  run, 30 a step failed; each fails this task with the reason in the log.

- **Output**: `production/exports/articles-<date>.jsonl` with its provenance beside it
  (`.provenance.json`); the task's outlet is the Asset `arxlive/articles` (`project.toml`).
- **Store, checkpoints, API budget, exports**: the host folder in `arxlive/conf/airflow.toml`
  (`$AIRFLOW_HOME/data/arxlive` by default), mounted at `/data`.
- **Connections** (all optional; without them the real services and a SQLite store are used):
  `arxlive_openalex` (host: API URL, login: contact e-mail, password: API key),
  `arxlive_oai` (host: OAI-PMH URL), `arxlive_store` (extra `url`: a SQLAlchemy URL).
  They reach the container as environment variables that the UI does not show.
- **Variables**: `arxlive_docker_url`, `arxlive_network_mode` override the config.

Backfill a range from the UI (DAG > Trigger > Backfill) or `make backfill DAG=arxlive ...`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk import DAG, Param

# @task from its own module: the DAG processor imports the airflow.* modules a file names before it
# forks the parser, and this one (the standard provider's operators behind @task) costs ~0.1 s a parse.
from airflow.sdk.definitions.decorators import task

import dagkit
from dagkit import stages

PROJECT = "arxlive"
config = dagkit.project_config(PROJECT)

with DAG(
    dag_id="arxlive",
    schedule="0 3 * * 0-4",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,  # backfills still work: make backfill, or the UI
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    default_args=dagkit.default_args(owner="research-engineering", execution_timeout=timedelta(hours=4)),
    tags=["arxlive", "docker", "daily"],
    doc_md=__doc__,
    params={
        "from": Param(None, type=["null", "string"], format="date",
                      description="first OAI datestamp to harvest (empty: the run date's own window)"),
        "until": Param(None, type=["null", "string"], format="date",
                       description="last OAI datestamp to harvest (empty: the run's date)"),
    },
):

    @task
    def prepare_store() -> str:
        """Create the mounted folder; the container runs as its owner, so it can write there."""
        return stages.prepare_mounts(PROJECT, "harvest_and_enrich")

    # The command, its args, mounts and environment: arxlive/project.toml and conf/airflow.toml.
    harvest_and_enrich = DockerOperator(
        **stages.docker(
            PROJECT, "harvest_and_enrich",
            image=dagkit.image_reference(PROJECT, config["image"]),
            # an empty --from/--until means "the run date's own window" to arxlive
            run_values={"date": "{{ data_interval_end | ds }}", "from": "{{ params['from'] or '' }}",
                        "until": "{{ params['until'] or '' }}"},
            variables={"docker_url": ("arxlive_docker_url", config["docker_url"]),
                       "network_mode": ("arxlive_network_mode", config["network_mode"])},
            user_from_task="prepare_store",
            private_environment_from={
                "ARXLIVE_OPENALEX_URL": "arxlive_openalex.host",
                "ARXLIVE_MAILTO": "arxlive_openalex.login",
                "ARXLIVE_OPENALEX_API_KEY": "arxlive_openalex.password",
                "ARXLIVE_OAI_URL": "arxlive_oai.host",
                "ARXLIVE_DB_URL": "arxlive_store.extra.url",
            },
        ),
        mount_tmp_dir=False,
        auto_remove="force",  # the output is already in the task log
    )

    prepare_store() >> harvest_and_enrich
