"""Benchmark of the releases bundle (platformkit.bundle), figures side by side from one run:

- a worker's first fetch of a release (ReleaseBundle.initialize() on a host without it, from a
  release store over HTTP on loopback) against plainly downloading the archive and its checksum
  and unpacking it, with and without unpacking the runtimes inside;
- a task start on a version the worker already has (what the task runner does: the bundle from
  DagBundlesManager, initialize(), path) against Airflow's plain LocalDagBundle, and the hold
  on the release each task process takes once.

    python tests/bench_bundle.py [--archive dist/platform-airflow-dags-<version>.tar.gz] [--repeat 5]

Without --archive it builds a small release (the release_probe DAG and the hello project with its
runtime). The median of --repeat runs is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
TOKEN = "bench-token"


def median_seconds(actions: dict, repeat: int) -> dict[str, float]:
    """The median seconds of each action, run in turn (so a busy moment of the machine hits all)."""
    times = {name: [] for name in actions}
    for _ in range(repeat):
        for name, action in actions.items():
            start = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def plain_download_and_unpack(url: str, target: Path, runtimes: bool) -> None:
    """What any script would do: GET the archive and its checksum, check it, untar (and the runtimes)."""
    import hashlib

    target.mkdir(parents=True)
    request = lambda u: urllib.request.Request(u, headers={"JOB-TOKEN": TOKEN})  # noqa: E731
    archive = target / "release.tar.gz"
    with urllib.request.urlopen(request(url)) as response, archive.open("wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)
    with urllib.request.urlopen(request(url + ".sha256")) as response:
        expected = response.read().split()[0].decode()
    with archive.open("rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == expected
    with tarfile.open(archive) as tar:
        tar.extractall(target / "release", filter="data")
    if runtimes:
        for runtime in (target / "release").glob("*/venv.tar.gz"):
            with tarfile.open(runtime) as tar:
                tar.extractall(runtime.parent / "venv", filter="fully_trusted")


def build_small_release(work: Path) -> Path:
    from conftest import HELLO, build_probe_release

    checkout = work / "checkout"
    (checkout / "dags").mkdir(parents=True)
    shutil.copytree(HELLO, checkout / "hello")
    subprocess.run([sys.executable, "-m", "platformkit", "build-runtime", checkout / "hello"], check=True, capture_output=True)
    return build_probe_release(checkout, "bench-1", work / "dist")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, help="a release archive (default: build a small one)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    os.environ.setdefault("AIRFLOW_HOME", str(work / "airflow-home"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    try:
        archive = args.archive.resolve() if args.archive else build_small_release(work)
        version = json.loads(tarfile.open(archive).extractfile("manifest.json").read())["version"]
        from services import release_store_server

        from platformkit.bundle import ReleaseBundle

        with release_store_server(work / "store", TOKEN) as store:
            url = store.publish(archive)
            os.environ["DEPLOY_AUTH_HEADER"] = f"JOB-TOKEN: {TOKEN}"
            homes = iter(range(10**6))

            def plain(runtimes: bool):
                return lambda: plain_download_and_unpack(url, work / f"plain-{next(homes)}", runtimes)

            def first_fetch():
                home = work / f"worker-{next(homes)}"
                ReleaseBundle(name="releases", version=version, airflow_home=str(home),
                              release_store=f"{store.url}/{{version}}").initialize()

            figures = median_seconds({
                "plain download + unpack": plain(False),
                "plain download + unpack + runtimes": plain(True),
                "bundle's first fetch (+ file checks, runtime start)": first_fetch,
            }, args.repeat)
        size = archive.stat().st_size / 1e6
        print(f"release {version}: {size:.1f} MB archive; median of {args.repeat}")
        base = figures["plain download + unpack"]
        for name, seconds in figures.items():
            print(f"  {name:<55} {seconds * 1000:8.0f} ms  ({seconds / base:.2f}x plain)")

        # A task start on a version already here, as the task runner prepares its bundle.
        worker = work / "worker-warm"
        ReleaseBundle(name="releases", version=version, airflow_home=str(worker),
                      release_store=str(archive.parent)).initialize()
        config = json.dumps([
            {"name": "releases", "classpath": "platformkit.bundle.ReleaseBundle",
             "kwargs": {"airflow_home": str(worker), "release_store": str(archive.parent)}},
            {"name": "plain", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
             "kwargs": {"path": str(worker / "releases" / version / "dags")}}])
        os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = config
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        manager = DagBundlesManager()

        def start(name: str, bundle_version: str | None):
            def prepare():
                bundle = manager.get_bundle(name=name, version=bundle_version)
                bundle.initialize()
                return bundle.path
            return prepare

        calls = 2000
        per_call = {name: seconds / calls for name, seconds in median_seconds({
            "plain": lambda: [start("plain", None)() for _ in range(calls)],
            "releases": lambda: [start("releases", version)() for _ in range(calls)],
        }, args.repeat).items()}
        print(f"task start on a version already here (bundle from DagBundlesManager, initialize, path; "
              f"median of {args.repeat} x {calls} calls)")
        for name, label in (("plain", "LocalDagBundle (no versions)"), ("releases", "ReleaseBundle, pinned version")):
            print(f"  {label:<55} {per_call[name] * 1e6:8.0f} us  ({per_call[name] / per_call['plain']:.2f}x plain)")
        # The hold on the release (Releases.hold), taken once per task process: the calls above reuse it.
        from platformkit.deploy import Releases

        releases = Releases(worker)
        hold = median_seconds({"hold": lambda: [releases.hold(version).close() for _ in range(calls)]},
                              args.repeat)["hold"] / calls
        print(f"  {'+ its hold on the release, once per task process':<55} {hold * 1e6:8.0f} us")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
