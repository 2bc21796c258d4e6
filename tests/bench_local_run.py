"""`make run PROJECT=image-matching` against a plain `python -m imagematching`, side by side.

Both run image-matching's job on the same generated data (the demo's size by default) with the same
arguments into a fresh output folder, in alternating order: a bare `make run` (the launcher:
dagkit's contract, its args on their local values, provenance, the runtime check and its cached
unpack, the up-to-date check, spark-submit in local mode) and the runtime's own interpreter started
by hand with Spark's Python modules on its path.

    ../.venv/bin/python bench_local_run.py [--pages 20000] [--runs 2]

Needs the runtime (`make venv PROJECT=image-matching`) and image-matching's test environment
(the data generator).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = "2026-10"


def seconds(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--pages", type=int, default=20000, help="generated pages (default: the demo's 20000)")
    options.add_argument("--runs", type=int, default=2)
    args = options.parse_args()

    import pyspark

    from platformkit import stage_runtime

    venv = stage_runtime.unpacked(REPO, "image-matching")  # unpacked before timing: both use it
    spark = Path(pyspark.__file__).parent
    home = Path(tempfile.mkdtemp(prefix="bench-local-run-"))
    data = home / "data/image-matching"
    subprocess.run([REPO / "image-matching/.venv/bin/python", "-m", "imagematching.generate", "--pages",
                    str(args.pages), "--wikis", "3", "--snapshot", SNAPSHOT, "--output", data / "input"],
                   check=True, capture_output=True)
    # What a bare `make run` gives the job: project.toml's args on its local values (snapshot 2026-10).
    job_args = ["--snapshot", SNAPSHOT, "--wikis", "all", "--input", str(data / "input"), "--output", str(data / "output"),
                "--config", str(REPO / "image-matching/conf/spark.toml"), "--dataset-id", "local"]
    environment = {**os.environ, "AIRFLOW_HOME": str(home)}
    plain = {**environment, "SPARK_HOME": str(spark), "PYSPARK_PYTHON": str(venv / "bin/python"),
             "PYTHONPATH": os.pathsep.join(str(p) for p in sorted((spark / "python/lib").glob("*.zip")))}
    commands = {
        "make run": (["make", "-s", "run", "PROJECT=image-matching"], environment),
        "python -m imagematching": ([str(venv / "bin/python"), "-m", "imagematching", *job_args], plain),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    try:
        for run in range(args.runs):
            for name in (list(commands) if run % 2 == 0 else list(reversed(commands))):
                shutil.rmtree(data / "output", ignore_errors=True)
                times[name].append(seconds(*commands[name]))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"image-matching, {args.pages} pages, 3 wikis, {args.runs} run(s) each, alternating (s):")
    for name, values in times.items():
        print(f"  {name:24} median {statistics.median(values):7.1f}   runs {' '.join(f'{v:.1f}' for v in values)}")
    ratio = statistics.median(times["make run"]) / statistics.median(times["python -m imagematching"])
    print(f"  ratio make run / plain: {ratio:.2f}x (target <= 1.10x)")


if __name__ == "__main__":
    main()
