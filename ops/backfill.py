"""Backfill a DAG through the REST API of a running Airflow (work in progress)."""
