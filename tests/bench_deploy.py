"""Deploy time of this checkout's release: `python -m platformkit deploy` against release/deploy.py
of another commit (before platformkit).

    python tests/bench_deploy.py [--baseline d8fbc1e] [--repeats 7] [--archive PATH]

Deploys the same archive (by default this checkout's, written by `platformkit archive`: the
runtimes must be built) into a fresh AIRFLOW_HOME each time, alternating the two deploys, and
prints the median and fastest wall-clock time of each side by side with their ratio, and the
median CPU time (user + system, the deploy and what it starts): on a busy machine the CPU time is
the steadier figure. The default baseline is the
deploy before the member policy, the manifest check and the state record (issue 9).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_deploy(deploy: list, archive: Path, home: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one deploy (the command before its arguments) into a fresh home."""
    start, cpu = time.perf_counter(), cpu_of_children()
    subprocess.run([sys.executable, *deploy, "deploy", archive, "--airflow-home", home], check=True, capture_output=True)
    elapsed = time.perf_counter() - start, cpu_of_children() - cpu
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
            subprocess.run([sys.executable, "-m", "platformkit", "archive", "--root", REPO, "--version", "bench",
                            "--dist", work / "dist"], check=True, capture_output=True)
            archive = work / "dist/platform-airflow-dags-bench.tar.gz"
        sides = {f"{args.baseline} (before)": [old], "this checkout": ["-m", "platformkit"]}
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        for deploy in sides.values():  # one warm-up each: the page cache holds the archive for both
            timed_deploy(deploy, archive, work / "home")
        for _ in range(args.repeats):
            for name, deploy in sides.items():
                times[name].append(timed_deploy(deploy, archive, work / "home"))
        print(f"deploy of {archive.name} ({archive.stat().st_size / 1e6:.1f} MB), {args.repeats} runs each, alternating")
        print(f"  {'deploy':<22} {'median, s':>10} {'fastest, s':>11} {'median CPU, s':>14}")
        figures = {}
        for name, runs in times.items():
            wall, cpu = [w for w, _ in runs], [c for _, c in runs]
            figures[name] = (statistics.median(wall), min(wall), statistics.median(cpu))
            print(f"  {name:<22} {figures[name][0]:10.2f} {figures[name][1]:11.2f} {figures[name][2]:14.2f}")
        before, after = (figures[name] for name in sides)
        print(f"  {'ratio (this / before)':<22} " + " ".join(
            f"{a / b:{width}.3f}" for a, b, width in zip(after, before, (10, 11, 14), strict=True)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
