"""Backfill a DAG through the REST API of a running Airflow.

    ops/backfill.py --dag image_matching --from 2026-02-01 --to 2026-04-01 [--wait]

Runs are created for every logical date of the DAG's schedule from --from to --to, both
included (a @monthly DAG: the first of each month). A paused DAG is unpaused first, since
backfill runs of a paused DAG stay queued. Prints the backfill's id and its runs; with --wait,
follows them until they finish and exits 1 if any failed.

Credentials: --username/--password, else AIRFLOW_API_USER/AIRFLOW_API_PASSWORD, else user
`admin` with the password the simple auth manager generated in
$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated. URL: --url, else AIRFLOW_API_URL,
else http://localhost:8080.

Exit status: 0 done, 1 a run failed (--wait), 2 bad arguments or an error from Airflow.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from datetime import date

from platformkit.airflow_api import DEFAULT_URL, DEFAULT_USER, AirflowAPI, AirflowError, NotFound, generated_password

FINISHED = {"success", "failed"}


def iso_date(text: str) -> date:
    """A YYYY-MM-DD date, checked before anything is sent."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid date: {e}") from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--dag", required=True, help="DAG id")
    parser.add_argument("--from", dest="start", required=True, type=iso_date, metavar="YYYY-MM-DD", help="first logical date")
    parser.add_argument("--to", dest="end", required=True, type=iso_date, metavar="YYYY-MM-DD",
                        help="last logical date (included)")
    parser.add_argument("--url", default=os.environ.get("AIRFLOW_API_URL", DEFAULT_URL), help="Airflow's URL (%(default)s)")
    parser.add_argument("--username", default=os.environ.get("AIRFLOW_API_USER", DEFAULT_USER))
    parser.add_argument("--password", default=os.environ.get("AIRFLOW_API_PASSWORD"))
    parser.add_argument("--wait", action="store_true", help="follow the runs until they finish; exit 1 if any failed")
    parser.add_argument("--reprocess", choices=["none", "failed", "completed"], default="none",
                        help="dates that already have a run: keep them (none, the default), re-run failed ones, re-run all")
    parser.add_argument("--max-active-runs", type=int, help="runs at the same time (default: the DAG's max_active_runs)")
    parser.add_argument("--poll", type=float, default=5, help="seconds between checks with --wait (%(default)s)")
    args = parser.parse_args(argv)
    if args.start > args.end:
        parser.error(f"--from {args.start} is after --to {args.end}")
    if args.password is None:
        args.password = generated_password(args.username)
    return args


def day(value: str | None) -> str:
    return (value or "?")[:10]


def backfill_runs(api: AirflowAPI, args: argparse.Namespace, logical_dates: set[str]) -> list[dict]:
    """The DAG's backfill runs at the logical dates this backfill covers, oldest first."""
    page = api.get(f"/dags/{args.dag}/dagRuns", run_type="backfill", order_by="logical_date", limit=1000,
                   logical_date_gte=f"{args.start}T00:00:00Z", logical_date_lte=f"{args.end}T23:59:59Z")
    return [r for r in page["dag_runs"] if r["logical_date"] and r["logical_date"][:19] in logical_dates]


def wait(api: AirflowAPI, args: argparse.Namespace, backfill_id: int, logical_dates: set[str]) -> int:
    started = time.monotonic()
    last = None
    while True:
        runs = backfill_runs(api, args, logical_dates)
        states = {r["dag_run_id"]: r["state"] for r in runs}
        counts = {s: list(states.values()).count(s) for s in ("success", "failed", "running", "queued")}
        finished = counts["success"] + counts["failed"]
        elapsed = time.monotonic() - started
        if states != last:
            print(f"[{elapsed // 60:02.0f}:{elapsed % 60:02.0f}] {finished}/{len(logical_dates)} finished: "
                  + ", ".join(f"{n} {s}" for s, n in counts.items() if n), flush=True)
            for run in runs:
                if last is not None and last.get(run["dag_run_id"]) != run["state"] and run["state"] in FINISHED:
                    print(f"    {day(run['logical_date'])} {run['state']} ({run['dag_run_id']})", flush=True)
            last = states
        if len(runs) == len(logical_dates) and all(s in FINISHED for s in states.values()):
            break
        time.sleep(args.poll)
    failed = [r for r in runs if r["state"] == "failed"]
    minutes = elapsed / 60
    print(f"backfill {backfill_id} of {args.dag}: {len(runs)} runs in {elapsed:.0f} s "
          f"({len(runs) / minutes if minutes else 0:.1f} runs/minute): "
          f"{counts['success']} succeeded, {len(failed)} failed")
    for run in failed:
        print(f"  failed: {run['dag_run_id']} (logs: {api.url}/dags/{args.dag}/runs/{run['dag_run_id']})")
    return 1 if failed else 0


def backfill(args: argparse.Namespace) -> int:
    api = AirflowAPI(args.url, args.username, args.password)
    try:
        dag = api.get(f"/dags/{args.dag}")
    except NotFound:
        raise AirflowError(f"unknown DAG {args.dag!r} at {api.url} (a typo, or its file has an import error?)") from None
    if dag["is_paused"]:
        api.patch(f"/dags/{args.dag}", {"is_paused": False})
        print(f"{args.dag} was paused: unpaused it (a paused DAG's backfill runs stay queued); "
              f"its schedule is live again too")
    body = {
        "dag_id": args.dag,
        "from_date": f"{args.start}T00:00:00Z",
        "to_date": f"{args.end}T00:00:00Z",
        "reprocess_behavior": args.reprocess,
        "max_active_runs": args.max_active_runs or dag.get("max_active_runs") or 1,
    }
    planned = api.post("/backfills/dry_run", body)["backfills"]
    if not planned:
        print(f"nothing to backfill: {args.dag} has no logical date from {args.start} to {args.end} "
              f"without a run (--reprocess failed|completed re-runs existing ones)")
        return 0
    created = api.post("/backfills", body)
    logical_dates = {p["logical_date"][:19] for p in planned}
    print(f"backfill {created['id']} of {args.dag}: {len(planned)} runs from {args.start} to {args.end}, "
          f"{body['max_active_runs']} at a time")
    for run in backfill_runs(api, args, logical_dates):
        print(f"  {day(run['logical_date'])}  {run['dag_run_id']}  {run['state']}")
    if not args.wait:
        print(f"not waiting (--wait follows the runs): {api.url}/dags/{args.dag}/runs")
        return 0
    return wait(api, args, created["id"], logical_dates)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return backfill(args)
    except AirflowError as e:
        print(f"backfill: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nstopped waiting; the backfill goes on in Airflow", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
