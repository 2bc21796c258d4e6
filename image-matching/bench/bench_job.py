"""Job time and pages per second at three scales, against the original design on the same data.

    image-matching/.venv/bin/python image-matching/bench/bench_job.py [--scales 10000,100000,1000000] [--wikis 10]

For each scale it generates the inputs (ten wikis, skewed sizes), then runs, as separate
`python -m imagematching` processes (each its own Spark application in local mode, as in
production):

- **one job**: every wiki in one Spark job (this project's design);
- **per wiki**: one job per wiki, one after another (the original design: a notebook per wiki).

It prints one row per scale: seconds and pages per second of each, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from imagematching import generate

SNAPSHOT = "2026-10"


def run_job(input_dir: Path, output_dir: Path, wikis: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "imagematching", "--snapshot", SNAPSHOT, "--wikis", wikis,
                    "--input", str(input_dir), "--output", str(output_dir)],
                   check=True, capture_output=True, env={**os.environ, "PYSPARK_PYTHON": sys.executable})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="10000,100000,1000000", help="pages, comma-separated")
    parser.add_argument("--wikis", type=int, default=10)
    args = parser.parse_args()
    names = generate.wiki_names(args.wikis)
    print(f"image matching, {args.wikis} wikis, Spark local mode on {os.cpu_count()} cores")
    print(f"{'pages':>9} {'gen s':>7} | {'one job s':>9} {'pages/s':>9} | {'per wiki s':>10} {'pages/s':>9} | ratio")
    with tempfile.TemporaryDirectory(prefix="bench-imagematching-") as tmp:
        for pages in (int(s) for s in args.scales.split(",")):
            work = Path(tmp) / str(pages)
            start = time.perf_counter()
            generate.write(generate.generate(pages=pages, wikis=args.wikis, snapshot=SNAPSHOT), work / "in", SNAPSHOT)
            generated = time.perf_counter() - start
            one_job = run_job(work / "in", work / "one", "all")
            per_wiki = sum(run_job(work / "in", work / "per-wiki", wiki) for wiki in names)
            print(f"{pages:>9} {generated:>7.1f} | {one_job:>9.1f} {pages / one_job:>9.0f} | "
                  f"{per_wiki:>10.1f} {pages / per_wiki:>9.0f} | {per_wiki / one_job:.1f}x", flush=True)


if __name__ == "__main__":
    main()
