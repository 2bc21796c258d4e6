"""Tests against a running Airflow: backfill through the REST API, the UI, re-deploys (work in progress)."""
