"""Job time, pages per second and Spark jobs per run, next to the Spark floor and to a baseline.

    image-matching/.venv/bin/python image-matching/bench/bench_job.py [--scales 10000,1000000] [--baseline a126414,d8fbc1e]

For each scale it generates the inputs (ten wikis, skewed sizes), then runs, each as a separate
`python -m imagematching` process (its own Spark application in local mode, as in production):

- **floor**: a trivial Spark application: start the session, read one dataset, count;
- **baseline**: the job as it was at each baseline commit (its package from `git archive`);
- **now**: the job in this checkout.

It prints one row per scale and program: seconds, pages per second, the ratio to the floor, the
number of Spark jobs and the executor CPU seconds, both from the run's event log
(SparkListenerJobStart events; the tasks' Executor CPU Time, steadier than seconds under load).
Every job must give the same rows: the bench compares each baseline's imagerec_prod output with
this checkout's (without the run's dataset_id and insertion_ts, which differ by design) and stops
if they differ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from imagematching import generate

SNAPSHOT = "2026-10"
PROJECT = Path(__file__).resolve().parents[1]
FLOOR = """
import sys
from pyspark.sql import SparkSession
spark = (SparkSession.builder.config("spark.eventLog.enabled", "true").config("spark.eventLog.compress", "false")
         .config("spark.eventLog.dir", sys.argv[2]).getOrCreate())
spark.read.parquet(sys.argv[1]).count()
spark.stop()
"""


def baseline_package(commit: str, into: Path) -> Path:
    """The image-matching package as it was at `commit`, unpacked into `into`."""
    archive = subprocess.run(["git", "-C", PROJECT, "archive", "--format=tar", commit, "src/imagematching"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def timed(command: list, pythonpath: Path | None, events: Path) -> tuple[float, int, float]:
    """Seconds, Spark jobs and executor CPU seconds of one application (the tasks' CPU time, from
    the event log: steadier than seconds on a machine that other work loads)."""
    events.mkdir(parents=True)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    start = time.perf_counter()
    subprocess.run([sys.executable, *map(str, command)], check=True, capture_output=True, env=env)
    seconds = time.perf_counter() - start
    jobs, cpu_ns = 0, 0
    # Spark 4 rolls event logs: eventlog_v2_<app>/events_<n>_<app> files beside an appstatus file.
    for log in events.rglob("events_*"):
        with open(log) as f:
            for event in map(json.loads, f):
                jobs += event["Event"] == "SparkListenerJobStart"
                if event["Event"] == "SparkListenerTaskEnd" and event.get("Task Metrics"):
                    cpu_ns += event["Task Metrics"]["Executor CPU Time"]
    return seconds, jobs, cpu_ns / 1e9


def job_command(work: Path, output: str, events: Path) -> list:
    config = work / f"{output}.toml"
    config.write_text(f'[spark]\n"spark.eventLog.enabled" = true\n"spark.eventLog.compress" = false\n'
                      f'"spark.eventLog.dir" = "{events.as_uri()}"\n')
    return ["-m", "imagematching", "--snapshot", SNAPSHOT, "--wikis", "all", "--input", work / "in",
            "--output", work / output, "--config", config, "--dataset-id", "bench"]


def same_rows(work: Path, baseline: str) -> bool:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    try:
        rows = [spark.read.parquet(str(work / name / "imagerec_prod")).drop("dataset_id", "insertion_ts")
                for name in (baseline, "now")]
        return rows[0].exceptAll(rows[1]).count() == 0 and rows[1].exceptAll(rows[0]).count() == 0
    finally:
        spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="10000,1000000", help="pages, comma-separated")
    parser.add_argument("--wikis", type=int, default=10)
    parser.add_argument("--baseline", default="a126414,d8fbc1e",
                        help="the commits to compare with, comma-separated (d8fbc1e: the code the issue measured)")
    args = parser.parse_args()
    commits = args.baseline.split(",")
    print(f"image matching, {args.wikis} wikis, Spark local mode on {os.cpu_count()} cores; baselines {args.baseline}")
    print(f"{'pages':>9} {'program':<9} {'s':>7} {'pages/s':>9} {'x floor':>8} {'jobs':>5} {'cpu s':>7}")
    with tempfile.TemporaryDirectory(prefix="bench-imagematching-") as tmp:
        packages = {commit: baseline_package(commit, Path(tmp) / commit) for commit in commits}
        for pages in (int(s) for s in args.scales.split(",")):
            work = Path(tmp) / str(pages)
            generate.write(generate.generate(pages=pages, wikis=args.wikis, snapshot=SNAPSHOT), work / "in", SNAPSHOT)
            floor, floor_jobs, floor_cpu = timed(["-c", FLOOR, work / "in/mediawiki_page" / f"snapshot={SNAPSHOT}",
                                                  (work / "events-floor").as_uri()], None, work / "events-floor")
            print(f"{pages:>9} {'floor':<9} {floor:>7.1f} {'':>9} {1:>8.1f} {floor_jobs:>5} {floor_cpu:>7.1f}", flush=True)
            for name, pythonpath in (*packages.items(), ("now", None)):
                events = work / f"events-{name}"
                seconds, jobs, cpu = timed(job_command(work, name, events), pythonpath, events)
                print(f"{pages:>9} {name:<9} {seconds:>7.1f} {pages / seconds:>9.0f} {seconds / floor:>8.1f} {jobs:>5}"
                      f" {cpu:>7.1f}", flush=True)
            for commit in commits:
                if not same_rows(work, commit):
                    sys.exit(f"{commit} and this checkout wrote different rows at {pages} pages")


if __name__ == "__main__":
    main()
