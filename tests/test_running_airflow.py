"""Against one running Airflow (scheduler, DAG processor, API server) on the deployed release:
a three-month backfill through ops/backfill.py, the UI in headless Chromium, and three re-deploys
under a live DAG processor. The Airflow is started once for the module."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import REPO, run
from running_airflow import RunningAirflow, Watcher, release_dag_ids

from platformkit.airflow_api import AirflowAPI

BACKFILL = REPO / "ops/backfill.py"
GENERATOR_PYTHON = REPO / "image-matching/.venv/bin/python"
DAG = "image_matching"
# Logical dates 2026-02-01, 03-01, 04-01 of the @monthly DAG read the snapshots of the month before.
FROM, TO = "2026-02-01", "2026-04-01"
SNAPSHOTS = ["2026-01", "2026-02", "2026-03"]
WIKIS = ["dewiki", "enwiki"]
# CI sets this: there, a browser test that cannot find Chromium is a failure, not a skip.
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def airflow_server(deployed_release, expected_dag_ids, request):
    """Scheduler, DAG processor and API server on the deployed release, until the module ends;
    ready when every DAG of the release is parsed."""
    failed_before = request.session.testsfailed
    started = time.monotonic()
    airflow = RunningAirflow.start(deployed_release.airflow_home, deployed_release.env)
    try:
        airflow.wait_for_dags(expected_dag_ids)
    except BaseException:
        print(airflow.log_tails(), file=sys.__stderr__)
        airflow.stop()
        raise
    print(f"\nAirflow healthy with {len(expected_dag_ids)} DAGs parsed after {time.monotonic() - started:.1f} s")
    yield airflow
    airflow.stop()
    if request.session.testsfailed > failed_before:
        print(f"\n{airflow.log_tails()}", file=sys.__stderr__)
        if os.environ.get("ARTIFACTS_DIR"):
            shutil.copytree(airflow.log_dir, Path(os.environ["ARTIFACTS_DIR"]) / "running-airflow-logs",
                            dirs_exist_ok=True)


@pytest.fixture(scope="module")
def api(airflow_server) -> AirflowAPI:
    return AirflowAPI(airflow_server.url, "admin", airflow_server.password())


@pytest.fixture(scope="module")
def expected_dag_ids(deployed_release) -> set[str]:
    """The DAG ids the release's DAG files define."""
    ids = release_dag_ids(deployed_release.release)
    assert DAG in ids
    return ids


def backfill_cli(*args: str, airflow: RunningAirflow | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """ops/backfill.py as a user runs it; the password comes from AIRFLOW_HOME's generated file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_API_")}
    if airflow:
        env["AIRFLOW_HOME"] = str(airflow.home)
        args = ("--url", airflow.url, *args)
    return subprocess.run([sys.executable, str(BACKFILL), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def backfill(deployed_release, airflow_server):
    """Input for three snapshots, then `ops/backfill.py --wait` over their three logical dates."""
    if not GENERATOR_PYTHON.exists():
        run("make", "-C", REPO, "image-matching/.venv/.installed", timeout=900)
    data = deployed_release.airflow_home / "data/image-matching"
    for snapshot in SNAPSHOTS:
        run(GENERATOR_PYTHON, "-m", "imagematching.generate", "--pages", "200", "--wikis", str(len(WIKIS)),
            "--snapshot", snapshot, "--output", data / "input")
    started = time.monotonic()
    result = backfill_cli("--dag", DAG, "--from", FROM, "--to", TO, "--wait", "--poll", "2",
                          airflow=airflow_server, timeout=900)
    return result, time.monotonic() - started, data / "output"


def test_backfill_of_three_months_runs_each_and_writes_its_snapshot(backfill, api, airflow_server):
    result, seconds, output = backfill
    out = result.stdout + result.stderr
    assert result.returncode == 0, f"{out}\n{airflow_server.log_tails()}"
    print(f"\n{out}\nbackfill of {len(SNAPSHOTS)} runs: {seconds:.0f} s, {len(SNAPSHOTS) / seconds * 60:.2f} runs/minute")
    assert f"{DAG} was paused: unpaused it" in out  # new DAGs start paused (local.env)
    backfill_id = re.search(rf"backfill (\d+) of {DAG}: 3 runs from {FROM} to {TO}", out).group(1)
    assert f"backfill {backfill_id} of {DAG}: 3 runs in" in out and "3 succeeded, 0 failed" in out
    assert api.get(f"/backfills/{backfill_id}")["dag_id"] == DAG
    runs = api.get(f"/dags/{DAG}/dagRuns", run_type="backfill")["dag_runs"]
    assert sorted((r["logical_date"][:10], r["state"]) for r in runs) == [
        ("2026-02-01", "success"), ("2026-03-01", "success"), ("2026-04-01", "success")]
    for snapshot in SNAPSHOTS:
        summary = output / f"summary/snapshot={snapshot}.json"
        assert summary.exists(), f"no summary for snapshot {snapshot}"
        for wiki in WIKIS:
            assert list((output / f"imagerec_prod/wiki={wiki}/snapshot={snapshot}").glob("*.parquet")), (wiki, snapshot)
            assert list((output / f"export/snapshot={snapshot}").glob(f"*{wiki}*.tsv")), (wiki, snapshot)


def test_backfill_cli_says_what_is_wrong(airflow_server, tmp_path):
    unknown = backfill_cli("--dag", "no_such_dag", "--from", FROM, "--to", TO, airflow=airflow_server)
    assert unknown.returncode == 2 and "unknown DAG 'no_such_dag'" in unknown.stderr, unknown.stderr
    # Dates are checked before anything is sent: the URL here answers nothing.
    for start, end, message in [("2026-02-30", TO, "'2026-02-30' is not a valid date"),
                                ("2026/02/01", TO, "'2026/02/01' is not a date in the form YYYY-MM-DD"),
                                (TO, FROM, f"--from {TO} is after --to {FROM}")]:
        bad = backfill_cli("--url", "http://localhost:9", "--dag", DAG, "--from", start, "--to", end)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
    down = backfill_cli("--url", "http://localhost:9", "--password", "x", "--dag", DAG, "--from", FROM, "--to", TO)
    assert down.returncode == 2 and "Airflow is not reachable at http://localhost:9" in down.stderr, down.stderr
    refused = backfill_cli("--dag", DAG, "--from", FROM, "--to", TO, "--password", "wrong", airflow=airflow_server)
    assert refused.returncode == 2 and "authentication failed" in refused.stderr, refused.stderr


# --- the UI in a browser ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright; a skip (a failure under REQUIRE_BROWSER=1) without one."""
    chromium = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                     if p and Path(p).exists()), None)
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "the playwright package is not installed in the platform environment"
    if chromium is None:
        reason = "no chromium on PATH (apt-get install chromium)"
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def screenshots_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    print(f"\nscreenshots in {folder}")
    return folder


def save(page, folder: Path, name: str) -> None:
    page.screenshot(path=folder / name, full_page=True)
    if os.environ.get("ARTIFACTS_DIR"):
        target = Path(os.environ["ARTIFACTS_DIR"]) / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / name, target / name)


def test_ui_lists_the_release_dags_and_shows_a_task_log(browser, airflow_server, api, backfill,
                                                        expected_dag_ids, tmp_path):
    folder = screenshots_dir(tmp_path)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(30_000)
    url = airflow_server.url
    try:
        page.goto(f"{url}/")
        page.wait_for_url(re.compile(r"/auth/login"))
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", airflow_server.password())
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda u: "/auth/login" not in u)

        # Home: the dashboard names import errors ("Dag Import Error(s)") when there are any.
        page.get_by_role("link", name=re.compile("Dags")).first.wait_for()
        page.wait_for_load_state("networkidle")
        save(page, folder, "home.png")
        assert "Dag Import Error" not in page.inner_text("body")

        page.goto(f"{url}/dags")
        page.get_by_text(re.compile(r"^\d+ Dags?$")).wait_for()
        page.wait_for_load_state("networkidle")
        save(page, folder, "dag-list.png")
        links = page.locator("a[href^='/dags/']").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        shown = {m.group(1) for href in links if (m := re.fullmatch(r"/dags/([\w.-]+)", href))}
        assert shown == expected_dag_ids
        assert page.get_by_role("button", name=re.compile("Dag Import Error")).count() == 0

        runs = api.get(f"/dags/{DAG}/dagRuns", run_type="backfill", state="success", order_by="logical_date")["dag_runs"]
        assert runs, "no successful backfill run to show (see the backfill test)"
        run_id, snapshot = runs[0]["dag_run_id"], SNAPSHOTS[0]
        page.goto(f"{url}/dags/{DAG}/runs/{run_id}/tasks/summary")
        page.get_by_text("Done. Returned value was").first.wait_for()
        # The task's printed lines may sit in a collapsed log group: open them all.
        for group in ("Pre Execute", "Post Execute"):
            collapsed = page.get_by_text(f"▶ {group}", exact=True)
            if collapsed.count():
                collapsed.first.click()
        page.get_by_text(f"image matching, snapshot {snapshot} (dataset {run_id})").first.wait_for()
        save(page, folder, "task-log.png")
    except Exception:
        save(page, folder, "failure.png")
        raise
    finally:
        page.close()


# --- re-deploys under a running DAG processor --------------------------------------------------

def wait_parsed_after(api: AirflowAPI, dag_ids: set[str], moment: datetime, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parsed = {d["dag_id"]: d["last_parsed_time"] for d in api.get("/dags", limit=1000)["dags"]}
        if all(parsed.get(i) and datetime.fromisoformat(parsed[i].replace("Z", "+00:00")) > moment for i in dag_ids):
            return
        time.sleep(1)
    pytest.fail(f"not every DAG of {sorted(dag_ids)} was parsed again within {timeout:.0f} s after {moment}")


def test_three_redeploys_never_show_an_import_error_or_lose_a_dag(deployed_release, airflow_server, api,
                                                                  expected_dag_ids, tmp_path):
    home = deployed_release.airflow_home
    original = os.readlink(home / "current")
    # Concurrent edits of a project would make its runtime stale; rebuilding is a no-op otherwise.
    run("make", "-C", REPO, "venv", "SKIP_DOCKER=true", timeout=1800)
    versions = [f"{deployed_release.version}-redeploy{i}" for i in (1, 2, 3)]
    for version in versions:
        run(sys.executable, "-m", "platformkit", "archive", "--root", REPO, "--version", version, "--dist", tmp_path)

    watcher = Watcher(airflow_server, expected_dag_ids)
    watcher.start()
    try:
        while watcher.samples < 2:
            time.sleep(0.2)
        timings = []
        first, before = datetime.now().astimezone(), watcher.samples
        for version in versions:
            started = time.monotonic()
            run(sys.executable, "-m", "platformkit", "deploy",
                tmp_path / f"platform-airflow-dags-{version}.tar.gz", "--airflow-home", home)
            timings.append(time.monotonic() - started)
            switched = datetime.now().astimezone()
            assert os.readlink(home / "current") == f"releases/{version}"
            # The next deploy comes once the DAG processor has parsed this release.
            wait_parsed_after(api, expected_dag_ids, switched)
        # Keep watching through two more parse cycles of the DAG processor (every 5 s here).
        time.sleep(max(0.0, 10 - (datetime.now().astimezone() - switched).total_seconds()))
        print(f"\n3 deploys in {sum(timings):.1f} s ({', '.join(f'{t:.1f}' for t in timings)}); "
              f"{watcher.parses_between(first, datetime.now().astimezone())} DAG parses and "
              f"{watcher.samples - before} polls since the first")
        assert os.readlink(home / "current") == f"releases/{versions[-1]}"
    finally:
        # Back to the release the other tests of this session deployed, through rollback.
        for _ in versions:
            if os.readlink(home / "current") != original:
                run(sys.executable, "-m", "platformkit", "rollback", "--airflow-home", home)
        watcher.halt.set()
        watcher.join(10)
    assert os.readlink(home / "current") == original
    assert watcher.samples >= 15, f"only {watcher.samples} polls answered"
    assert not watcher.problems, "\n".join(watcher.problems[:20])
