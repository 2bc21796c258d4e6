"""Run one DAG run in this process with `dag.test()`: no scheduler, retries off.

    python ops/run_dag.py DAG_ID YYYY-MM-DD [--conf JSON] [--dags-folder DIR]

For the demo and the end-to-end tests: with retries off, a failing task fails the run at once
instead of waiting out its retry delay. The run is recorded in Airflow's metadata database, so
it shows in the UI afterwards. Exit code 0 when the run succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dag_id")
    parser.add_argument("logical_date", type=datetime.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument("--conf", type=json.loads, default={}, help="the run's conf, as JSON")
    parser.add_argument("--dags-folder", default=os.environ.get("AIRFLOW__CORE__DAGS_FOLDER"),
                        help="default: AIRFLOW__CORE__DAGS_FOLDER")
    args = parser.parse_args()
    if not args.dags_folder:
        parser.error("no dags folder: pass --dags-folder or set AIRFLOW__CORE__DAGS_FOLDER")
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = args.dags_folder
    # dag.test() records the DAG from the configured bundles: here Airflow's default dags-folder
    # bundle on this folder, not local.env's releases bundle (whose path is the live release).
    os.environ.pop("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", None)
    sys.path.insert(0, args.dags_folder)  # as Airflow does for its dags folder: DAG files import dagkit

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=args.dags_folder)
    if bag.import_errors:
        sys.exit(f"import errors in {args.dags_folder}: {bag.import_errors}")
    dag = bag.get_dag(args.dag_id)
    if dag is None:
        sys.exit(f"no DAG {args.dag_id!r} in {args.dags_folder} (DAGs there: {', '.join(sorted(bag.dag_ids))})")
    for task in dag.tasks:
        task.retries = 0
    run = dag.test(logical_date=args.logical_date.replace(tzinfo=UTC), run_conf=args.conf)
    print(f"DAG RUN STATE: {run.state}")
    return 0 if run.state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
