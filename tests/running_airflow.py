"""A running Airflow (scheduler, DAG processor, API server) on a deployed release, for tests.

`RunningAirflow.start(home, env)` starts the three components as their own process groups, each
logging to a file under `<home>/component-logs/`, and waits until /api/v2/monitor/health says
every component is healthy. `stop()` ends the process groups it started (TERM, then KILL).
`Watcher` polls a running Airflow's import errors and DAG list in a thread and records every bad sample.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import requests

from platformkit.airflow_api import AirflowAPI

AIRFLOW = Path(sys.executable).parent / "airflow"
COMPONENTS = {
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "api-server": ["api-server"],  # the port comes from AIRFLOW__API__PORT
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(url: str) -> dict | None:
    """Airflow's health report at `url`, or None while it does not answer."""
    try:
        response = requests.get(f"{url}/api/v2/monitor/health", timeout=5)
    except requests.RequestException:
        return None
    return response.json() if response.status_code == 200 else None


def release_dag_ids(release: Path) -> set[str]:
    """The DAG ids a release's DAG files define (`dag_id="..."`)."""
    ids = set()
    for path in (release / "dags").glob("*.py"):
        ids |= set(re.findall(r"""\bdag_id\s*=\s*["']([\w.-]+)["']""", path.read_text()))
    return ids


def running_env(env: dict[str, str], port: int) -> dict[str, str]:
    """The deployed release's environment plus what a multi-process Airflow on one port needs."""
    url = f"http://localhost:{port}"
    return {
        **env,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        # Every component signs and checks the same tokens.
        "AIRFLOW__API_AUTH__JWT_SECRET": env.get("AIRFLOW__API_AUTH__JWT_SECRET") or secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": env.get("AIRFLOW__API__SECRET_KEY") or secrets.token_hex(16),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        # Re-parse DAG files and look for new ones often, so that a test sees a re-deploy parsed.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # No scheduled runs: unpausing a catchup=False DAG would otherwise start its latest interval
        # (whose input the tests do not generate) next to the runs under test. Backfill and
        # manually triggered runs still run.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class RunningAirflow:
    home: Path
    env: dict[str, str]
    url: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.home / "component-logs"

    @classmethod
    def start(cls, home: Path, env: dict[str, str], timeout: float = 180) -> RunningAirflow:
        port = free_port()
        airflow = cls(home, running_env(env, port), f"http://localhost:{port}")
        airflow.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            for name, args in COMPONENTS.items():
                log = open(airflow.log_dir / f"{name}.log", "ab")
                airflow.processes[name] = subprocess.Popen(
                    [str(AIRFLOW), *args], env=airflow.env, cwd=home, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True)
                log.close()
            airflow.wait_healthy(timeout)
        except BaseException:
            print(airflow.log_tails())
            airflow.stop()
            raise
        return airflow

    def health(self) -> dict | None:
        return health(self.url)

    def wait_healthy(self, timeout: float) -> float:
        """Seconds until every component reports healthy; raises naming what is not."""
        started = time.monotonic()
        health = None
        while time.monotonic() - started < timeout:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"airflow {name} exited {process.returncode}")
            health = self.health()
            if health and all(
                    (health.get(part) or {}).get("status") == "healthy"
                    for part in ("metadatabase", "scheduler", "dag_processor")):
                return time.monotonic() - started
            time.sleep(1)
        raise TimeoutError(f"Airflow at {self.url} not healthy after {timeout:.0f} s: {json.dumps(health)}")

    def wait_for_dags(self, dag_ids: set[str], timeout: float = 120) -> float:
        """Seconds until the API lists every one of `dag_ids` (the DAG processor parsed them)."""
        started = time.monotonic()
        listed: set[str] = set()
        session = requests.Session()
        token = session.post(f"{self.url}/auth/token", json={"username": "admin", "password": self.password()},
                             timeout=10).json()["access_token"]
        while time.monotonic() - started < timeout:
            response = session.get(f"{self.url}/api/v2/dags", params={"limit": 1000}, timeout=10,
                                   headers={"Authorization": f"Bearer {token}"})
            if response.ok:
                listed = {d["dag_id"] for d in response.json()["dags"]}
                if dag_ids <= listed:
                    return time.monotonic() - started
            time.sleep(1)
        raise TimeoutError(f"DAGs {sorted(dag_ids - listed)} not parsed after {timeout:.0f} s")

    def password(self, user: str = "admin") -> str:
        return json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())[user]

    def log_tails(self, lines: int = 60) -> str:
        out = []
        for name in COMPONENTS:
            path = self.log_dir / f"{name}.log"
            if path.exists():
                # The API server's access log would drown everything else.
                tail = [line for line in path.read_text(errors="replace").splitlines()
                        if "[http.access]" not in line][-lines:]
                out.append(f"--- airflow {name} (last {len(tail)} lines of {path})\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self, grace: float = 20) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # the group may hold children (task supervisors, spark) past its leader
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


class Watcher(threading.Thread):
    """Polls import errors and the DAG list every half second; records every bad sample."""

    def __init__(self, airflow: RunningAirflow, expected: set[str]):
        super().__init__(daemon=True)
        self.api = AirflowAPI(airflow.url, "admin", airflow.password())
        self.expected = expected
        self.samples = 0
        self.problems: list[str] = []
        self.parses: set[tuple[str, str]] = set()  # (dag id, last parsed time) seen
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            at = datetime.now().strftime("%H:%M:%S.%f")[:-3]
            try:
                errors = self.api.get("/importErrors")
                dags = {d["dag_id"]: d for d in self.api.get("/dags", limit=1000)["dags"]}
            except Exception as e:  # noqa: BLE001 - a failed poll is a finding too
                self.problems.append(f"{at} API call failed: {e}")
            else:
                if errors["total_entries"]:
                    self.problems.append(f"{at} import errors: {errors['import_errors']}")
                if self.expected - set(dags):
                    self.problems.append(f"{at} DAGs missing: {sorted(self.expected - set(dags))}")
                self.parses |= {(i, d["last_parsed_time"]) for i, d in dags.items()}
                self.samples += 1
            self.halt.wait(0.5)

    def parses_between(self, start: datetime, end: datetime) -> int:
        return sum(1 for _, t in self.parses if t and start <= datetime.fromisoformat(t.replace("Z", "+00:00")) <= end)
