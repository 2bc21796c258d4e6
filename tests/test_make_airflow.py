"""`make airflow` on a deployed release: the UI answers, every DAG of the release is listed, no
import errors, and it says how to log in."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from conftest import REPO
from running_airflow import free_port, health, release_dag_ids

from platformkit.airflow_api import AirflowAPI, generated_password


def wait_for(check, timeout: float, what: str, log):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (result := check()) is not None:
            return result
        time.sleep(1)
    raise AssertionError(f"{what} not within {timeout:.0f} s; make airflow printed:\n{log.read_text()[-4000:]}")


def test_make_airflow_serves_the_deployed_release(deployed_release, tmp_path):
    home = deployed_release.airflow_home
    expected = release_dag_ids(deployed_release.release)
    port = free_port()
    url = f"http://localhost:{port}"
    log = tmp_path / "make-airflow.log"
    # Only what a user's shell would have: no venv on PATH, the port moved off 8080 for the test.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
           "AIRFLOW_HOME": str(home), "AIRFLOW__API__PORT": str(port)}
    with log.open("w") as out:
        standalone = subprocess.Popen(["make", "-C", REPO, "airflow"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: health(url), 240, f"the UI at {url}", log)
        password = wait_for(lambda: generated_password("admin", str(home)), 60, "the admin password", log)
        api = AirflowAPI(url, "admin", password)
        listed = wait_for(lambda: ids if expected <= (ids := {d["dag_id"] for d in api.get("/dags")["dags"]}) else None,
                          180, f"DAGs {sorted(expected)}", log)
        assert listed == expected
        assert api.get("/importErrors")["total_entries"] == 0
        printed = log.read_text()
        assert f"Airflow on http://localhost:{port}" in printed and "log in as 'admin'" in printed
    finally:
        os.killpg(standalone.pid, signal.SIGTERM)
        try:
            standalone.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(standalone.pid, signal.SIGKILL)
            standalone.wait()
