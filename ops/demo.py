"""`make demo`: build, deploy and run both pipelines for one date through Airflow, on one machine.

    python ops/demo.py [--date YYYY-MM-DD]

Embedded defaults throughout: SQLite for Airflow, Spark local mode, the local Docker engine,
sample data from the image-matching generator, and the fake arXiv and OpenAlex servers on
loopback (connections to them exist only in this process: a later `make airflow` talks to the
real services). Each step says what it does; the end lists every output with a short summary.
Without a Docker engine the arxlive steps are skipped, and the demo says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from platformkit.localenv import PLATFORM_BIN, REPO, airflow_env

STEPS = 7


def step(number: int, text: str) -> None:
    print(f"\n== [{number}/{STEPS}] {text}", flush=True)


def make(*targets: str, env: dict[str, str]) -> None:
    subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *targets], check=True, env=env)


def docker_engine_problem() -> str | None:
    """Why the Docker steps cannot run, or None when an engine answers."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "no Docker engine answers"
    return None


def start_fake_services(log_dir: Path, run_date: date) -> tuple[subprocess.Popen, dict[str, str]]:
    """The fake arXiv OAI-PMH and OpenAlex servers (arxlive/tests/fakes: test code, outside the runtime),
    on free loopback ports, serving records dated the day before the run and the run's day."""
    log = (log_dir / "fake-services.log").open("w")
    server = subprocess.Popen(
        [REPO / "arxlive/.venv/bin/python", "-m", "fakes", "--records", "300", "--page-size", "100",
         "--base-date", (run_date - timedelta(days=1)).isoformat(), "--days", "2"],
        stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO / "arxlive/tests")
    urls = dict(server.stdout.readline().strip().split("=", 1) for _ in range(2))
    return server, urls


def run_dag(dag_id: str, logical_date: str, env: dict[str, str], log_path: Path) -> bool:
    """One run through Airflow (ops/run_dag.py); its whole log goes to log_path."""
    start = time.monotonic()
    with log_path.open("w") as log:
        result = subprocess.run([PLATFORM_BIN / "python", REPO / "ops/run_dag.py", dag_id, logical_date],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    ok = result.returncode == 0
    print(f"   {dag_id}: {'success' if ok else 'FAILED'} in {time.monotonic() - start:.0f} s (log: {log_path})")
    if not ok:
        print("   " + "\n   ".join(log_path.read_text().splitlines()[-25:]))
    return ok


def image_matching_report(output: Path, snapshot: str) -> list[str]:
    report = json.loads((output / "summary" / f"snapshot={snapshot}.json").read_text())
    lines = [f"image-matching, snapshot {snapshot}: {output}",
             f"   parquet: {output / 'imagerec_prod'}/wiki=<wiki>/snapshot={snapshot}/"]
    for wiki, s in report["wikis"].items():
        lines.append(f"   {wiki}: {s['articles']} articles, {s['unillustrated']} unillustrated, "
                     f"{s['with_candidates']} with candidates -> {s['export']} ({s['export_rows']} rows)")
    lines.append(f"   coverage report: {report['report']['html']} (numbers: {report['report']['json']})")
    return lines


def arxlive_report(data: Path, run_date: str) -> list[str]:
    summaries = sorted(data.rglob(f"summary-{run_date}.json"))
    if not summaries:
        return [f"arxlive: no summary for {run_date} under {data}"]
    s = json.loads(summaries[-1].read_text())
    export = summaries[-1].with_name(f"articles-{run_date}.jsonl")
    return [f"arxlive, {run_date}: store and exports under {data} (mounted at /data in the container)",
            f"   harvested {s['harvested']} ({s['harvest_from']}..{s['harvest_until']}), new {s['new']}, "
            f"updated {s['updated']}, enriched {s['enriched']}, deferred {s['deferred']}, "
            f"OpenAlex {s['api_calls']} calls ${s['api_usd']:.4f} (left today ${s['api_usd_left_today']:.2f})",
            f"   export: {export} ({s['exported']} articles); summary: {summaries[-1]}",
            f"   30-day trend (open in a browser): {summaries[-1].with_name(f'trend-{run_date}.html')}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=date.fromisoformat, default=date(2026, 11, 2),
                        help="the logical date of both runs (default %(default)s, a Monday)")
    args = parser.parse_args()
    started = time.monotonic()
    airflow_home = Path(os.environ.get("AIRFLOW_HOME", REPO / ".airflow")).resolve()
    run_date = args.date.isoformat()
    snapshot = f"{(args.date.replace(day=1) - timedelta(days=1)):%Y-%m}"  # what image_matching reads
    env = {**os.environ, "AIRFLOW_HOME": str(airflow_home)}
    no_docker = docker_engine_problem()
    version = subprocess.run(["make", "-s", "-C", str(REPO), "version"], check=True, capture_output=True,
                             text=True).stdout.strip()
    print(f"demo: release {version} into {airflow_home}, runs of {run_date}")
    if no_docker:
        print(f"demo: {no_docker}: arxlive (a container) will be SKIPPED. `make docker-engine` installs "
              "and starts one (Debian), then run `make demo` again.")

    step(1, "test environments of the projects (sample data, fake servers)")
    make("image-matching/.venv/.installed", "arxlive/.venv/.installed", env=env)

    step(2, "runtimes: make venv SKIP_DOCKER=true (the host runs them)")
    make("venv", "SKIP_DOCKER=true", env=env)

    step(3, f"arxlive image: make image PROJECT=arxlive VERSION={version}")
    if no_docker:
        print(f"   SKIPPED: {no_docker}")
    else:
        make("image", "PROJECT=arxlive", f"VERSION={version}", env=env)

    step(4, "archive and deploy")
    make("archive", "deploy", f"VERSION={version}", env=env)
    airflow = airflow_env(airflow_home)
    subprocess.run([PLATFORM_BIN / "airflow", "db", "migrate"], check=True, env=airflow, stdout=subprocess.DEVNULL)

    step(5, f"sample data: image-matching inputs for snapshot {snapshot}; fake arXiv and OpenAlex servers")
    image_matching_data = airflow_home / "data/image-matching"
    subprocess.run([REPO / "image-matching/.venv/bin/python", "-m", "imagematching.generate", "--pages", "20000",
                    "--wikis", "5", "--snapshot", snapshot, "--output", image_matching_data / "input"], check=True)
    logs = airflow_home / "demo"
    logs.mkdir(exist_ok=True)
    fakes = None
    if not no_docker:
        fakes, urls = start_fake_services(logs, args.date)
        print(f"   arXiv OAI-PMH: {urls['ARXLIVE_OAI_URL']}  OpenAlex: {urls['ARXLIVE_OPENALEX_URL']}")
        airflow.update({
            "AIRFLOW_VAR_ARXLIVE_NETWORK_MODE": "host",  # the container reaches the fakes on loopback
            "AIRFLOW_CONN_ARXLIVE_OAI": json.dumps({"conn_type": "http", "host": urls["ARXLIVE_OAI_URL"]}),
            "AIRFLOW_CONN_ARXLIVE_OPENALEX": json.dumps({"conn_type": "http", "host": urls["ARXLIVE_OPENALEX_URL"],
                                                         "login": "demo@example.org"}),
        })

    try:
        step(6, "image_matching through Airflow (Spark local mode, the packed runtime)")
        results = {"image_matching": run_dag("image_matching", run_date, airflow, logs / "image_matching.log")}
        step(7, "arxlive through Airflow (DockerOperator, the release's image)")
        if no_docker:
            print(f"   SKIPPED: {no_docker}")
        else:
            results["arxlive"] = run_dag("arxlive", run_date, airflow, logs / "arxlive.log")
    finally:
        if fakes:
            fakes.terminate()
            fakes.wait(timeout=10)

    print(f"\n== outputs (demo took {time.monotonic() - started:.0f} s)")
    if results["image_matching"]:
        print("\n".join(image_matching_report(image_matching_data / "output", snapshot)))
    if results.get("arxlive"):
        print("\n".join(arxlive_report(airflow_home / "data/arxlive", run_date)))
    if no_docker:
        print(f"arxlive: SKIPPED ({no_docker})")
    print(f"Airflow: `make airflow` opens the UI on this release (runs of {run_date} are there); "
          f"release status: `make status`")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
