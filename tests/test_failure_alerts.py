"""Every task's on-failure callback: a clear log line, and a webhook when its connection exists."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import REPO

FAILING_DAG = '''
from datetime import datetime

from airflow.sdk import DAG, task

import dagkit

with DAG(dag_id="alert_probe", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         default_args=dagkit.default_args(owner="platform-tests"), tags=["test"]):

    @task
    def explode():
        raise ValueError("the input of 2026-11-01 is empty")

    explode()
'''


@pytest.fixture
def dags_folder(tmp_path):
    """A dags folder holding dagkit, as a release has it, and one DAG whose task fails."""
    folder = tmp_path / "dags"
    shutil.copytree(REPO / "dags/dagkit", folder / "dagkit")
    (folder / "alert_probe.py").write_text(FAILING_DAG)
    return folder


@pytest.fixture
def webhook():
    """A receiver on loopback that records what is POSTed to it."""
    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/platform", received
    server.shutdown()


def test_failed_task_logs_a_line_and_calls_the_webhook(deployed_release, dags_folder, webhook):
    url, received = webhook
    connection = {"conn_type": "http", "host": url, "extra": {"headers": {"X-Token": "s3cret-hook-token"}}}
    result = deployed_release.dag_test("alert_probe", "2026-11-01", dags_folder=dags_folder,
                                       env={"AIRFLOW_CONN_FAILURE_WEBHOOK": json.dumps(connection)})
    log = result.stdout + result.stderr
    assert result.returncode == 1, log[-4000:]
    assert "TASK FAILED dag=alert_probe task=explode run=" in log
    assert "error=ValueError: the input of 2026-11-01 is empty" in log
    assert len(received) == 1, log[-4000:]
    alert = received[0]
    assert alert["path"] == "/hooks/platform"
    assert alert["headers"]["X-Token"] == "s3cret-hook-token"
    assert alert["body"]["dag_id"] == "alert_probe" and alert["body"]["task_id"] == "explode"
    assert alert["body"]["text"].startswith("TASK FAILED dag=alert_probe task=explode")
    assert "s3cret-hook-token" not in log


def test_without_a_webhook_the_log_line_is_the_alert(deployed_release, dags_folder):
    result = deployed_release.dag_test("alert_probe", "2026-11-01", dags_folder=dags_folder)
    log = result.stdout + result.stderr
    assert result.returncode == 1
    assert "TASK FAILED dag=alert_probe task=explode" in log
    assert "failure alert" not in log  # nothing was tried, nothing failed
