"""The arxlive DAG, end to end on a deployed release: Airflow -> DockerOperator -> the real
container of this release -> the fake arXiv and OpenAlex servers on loopback."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import REPO, run

pytestmark = pytest.mark.docker

ARXLIVE_PYTHON = REPO / "arxlive/.venv/bin/python"
API_KEY = "oa-key-never-in-logs-7f3a"


@pytest.fixture(scope="module")
def arxlive_image(deployed_release, docker_engine) -> str:
    """The project's image as the deployed release pins it (conftest's deployed_release built it)."""
    return json.loads((deployed_release.release / "manifest.json").read_text())["images"]["arxlive"]["reference"]


@pytest.fixture
def fake_services():
    """Start the fake servers (arxlive/tests/fakes, test code outside the runtime) with the given faults;
    yields their URLs."""
    if not ARXLIVE_PYTHON.exists():
        run("make", "-C", REPO, "arxlive/.venv/.installed", timeout=900)
    started = []

    def start(*faults: str) -> dict[str, str]:
        command = [ARXLIVE_PYTHON, "-m", "fakes", "--records", "40", "--page-size", "25",
                   "--api-key", API_KEY, *(f"--fault={f}" for f in faults)]
        server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO / "arxlive/tests")
        started.append(server)
        urls = dict(server.stdout.readline().strip().split("=", 1) for _ in range(2))
        return urls

    yield start
    for server in started:
        server.terminate()
        server.wait(timeout=10)


def airflow_settings(urls: dict[str, str]) -> dict[str, str]:
    """Connections and variables as an operator would set them, here through the environment."""
    return {
        "AIRFLOW_VAR_ARXLIVE_NETWORK_MODE": "host",  # the fakes listen on the host's loopback
        "AIRFLOW_CONN_ARXLIVE_OAI": json.dumps({"conn_type": "http", "host": urls["ARXLIVE_OAI_URL"]}),
        "AIRFLOW_CONN_ARXLIVE_OPENALEX": json.dumps({
            "conn_type": "http", "host": urls["ARXLIVE_OPENALEX_URL"],
            "login": "data-platform@example.org", "password": API_KEY,
        }),
    }


def containers_of(image: str) -> list[str]:
    return run("docker", "ps", "-aq", "--filter", f"ancestor={image}").stdout.split()


def test_daily_run_harvests_enriches_and_removes_its_container(deployed_release, arxlive_image, fake_services):
    urls = fake_services()
    result = deployed_release.dag_test("arxlive", "2026-11-20", env=airflow_settings(urls))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    # The container's own output is in the task log.
    summary, _ = json.JSONDecoder().raw_decode(log.split("ARXLIVE_SUMMARY ", 1)[1])
    assert summary["harvested"] > 0 and summary["enriched"] > 0, summary
    # the log names the 30-day trend page, which is on the mounted folder
    assert "trend of the last 30 days: /data/production/exports/trend-2026-11-20.html" in log
    assert API_KEY not in log
    # The store and the exports are on the mounted host folder; the container is gone.
    data = deployed_release.airflow_home / "data/arxlive"
    assert any(data.rglob("*.jsonl")), sorted(str(p) for p in data.rglob("*"))
    assert (data / "production/exports/trend-2026-11-20.html").exists()
    provenance = json.loads((data / "production/exports/articles-2026-11-20.jsonl.provenance.json").read_text())
    assert provenance["release"]["version"] == deployed_release.version
    assert provenance["image"]["reference"] == arxlive_image
    assert provenance["stage"]["name"] == "harvest_and_enrich" and provenance["params"]["date"] == "2026-11-20"
    assert provenance["inputs"][0]["records"] == summary["harvested"]
    assert containers_of(arxlive_image) == []


def test_failing_pipeline_fails_the_task(deployed_release, arxlive_image, fake_services):
    urls = fake_services("badargument*inf")
    result = deployed_release.dag_test("arxlive", "2026-11-21", env=airflow_settings(urls))
    log = result.stdout + result.stderr
    assert result.returncode != 0, log[-6000:]
    assert "badArgument" in log, log[-6000:]  # the container's own error, in the task log
    assert "TASK FAILED dag=arxlive task=harvest_and_enrich" in log
    assert containers_of(arxlive_image) == []
