"""Deploy time of this checkout's release: release/deploy.py against the one of another commit.

    python tests/bench_deploy.py [--baseline d8fbc1e] [--repeats 7] [--archive PATH]

Deploys the same archive (by default this checkout's, written by release/archive.py: the
runtimes must be built) into a fresh AIRFLOW_HOME each time, alternating the two deploy.py, and
prints the median and fastest of each side by side with their ratio. The default baseline is the
deploy before the member policy, the manifest check and the state record (issue 9).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed_deploy(deploy: Path, archive: Path, home: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, deploy, "deploy", archive, "--airflow-home", home], check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(home)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="d8fbc1e", help="the commit whose release/deploy.py to compare with")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--archive", type=Path, help="a release archive (default: archive this checkout)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    try:
        old = work / "old/deploy.py"
        old.parent.mkdir()
        old.write_bytes(subprocess.run(["git", "-C", REPO, "show", f"{args.baseline}:release/deploy.py"],
                                       check=True, capture_output=True).stdout)
        archive = args.archive
        if archive is None:
            subprocess.run([sys.executable, REPO / "release/archive.py", "--root", REPO, "--version", "bench",
                            "--dist", work / "dist"], check=True, capture_output=True)
            archive = work / "dist/platform-airflow-dags-bench.tar.gz"
        sides = {f"{args.baseline} (before)": old, "this checkout": REPO / "release/deploy.py"}
        times: dict[str, list[float]] = {name: [] for name in sides}
        for name, deploy in sides.items():  # one warm-up each: the page cache holds the archive for both
            timed_deploy(deploy, archive, work / "home")
        for _ in range(args.repeats):
            for name, deploy in sides.items():
                times[name].append(timed_deploy(deploy, archive, work / "home"))
        print(f"deploy of {archive.name} ({archive.stat().st_size / 1e6:.1f} MB), {args.repeats} runs each, alternating")
        print(f"  {'deploy.py':<22} {'median, s':>10} {'fastest, s':>11}")
        for name, runs in times.items():
            print(f"  {name:<22} {statistics.median(runs):10.2f} {min(runs):11.2f}")
        before, after = (times[name] for name in sides)
        print(f"  ratio (this / before)  {statistics.median(after) / statistics.median(before):10.3f} "
              f"{min(after) / min(before):11.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
