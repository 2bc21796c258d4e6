"""cli: the real `arxlive run` command line in a subprocess, as the container runs it."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import time

import pytest
from conftest import fake_env, run_cli, start_cli, stats, summary_of
from sqlalchemy import select

from arxlive.cli import MaskingFilter
from arxlive.lock import StoreLock
from arxlive.store import Store, articles, authors

pytestmark = pytest.mark.cli


def test_run_prints_summary_exports_and_rerun_makes_no_calls(fakes, tmp_path):
    oai, oa = fakes(60, page_size=10)
    env = fake_env(oai, oa, tmp_path / "data", ARXLIVE_OPENALEX_API_KEY="cli-key-4242")
    r = run_cli(env)
    assert r.returncode == 0, r.stdout + r.stderr
    s = summary_of(r.stdout)
    assert (s["harvested"], s["new"], s["deferred"]) == (60, 59, 0)
    assert (s["harvest_from"], s["harvest_until"]) == ("2026-11-18", "2026-11-20")
    assert s["enriched"] == s["exported"] > 0 and s["api_calls"] == stats(oa)["calls"]
    assert "cli-key-4242" not in r.stdout + r.stderr
    export = tmp_path / "data" / "test" / "exports" / "articles-2026-11-20.jsonl"
    content = export.read_bytes()
    assert len(content.splitlines()) == s["exported"]
    assert json.loads((tmp_path / "data/test/exports/summary-2026-11-20.json").read_text()) == s
    calls = stats(oa)["calls"]

    # the same date again: Luigi finds every step done; the summary is printed again; no calls
    r2 = run_cli(env)
    assert r2.returncode == 0 and summary_of(r2.stdout) == s
    # even with the run's outputs removed (a forced re-run): nothing due, 0 calls, the same export
    for p in sorted((tmp_path / "data/test/runs").rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    r3 = run_cli(env)
    assert r3.returncode == 0, r3.stdout + r3.stderr
    s3 = summary_of(r3.stdout)
    assert s3["api_calls"] == 0 and s3["new"] == 0 and s3["harvested"] == 60
    assert stats(oa)["calls"] == calls and export.read_bytes() == content


def test_backfill_of_a_week_gives_the_store_of_the_daily_runs(fakes, tmp_path):
    # records dated 2026-11-14 (Sat) .. 2026-11-21 (Sat), served by datestamp
    oai, oa = fakes(80, page_size=10, days=8, base_date=dt.date(2026, 11, 14))
    daily = fake_env(oai, oa, tmp_path / "daily")
    runs = [dt.date(2026, 11, 15) + dt.timedelta(days=n) for n in range(8)]
    for day in [d for d in runs if d.weekday() in (6, 0, 1, 2, 3)]:      # the schedule: Sunday to Thursday
        r = run_cli(daily, date=day.isoformat())
        assert r.returncode == 0, r.stdout + r.stderr
    # one backfill run over the same dates, on a store of its own
    backfill = fake_env(oai, oa, tmp_path / "backfill")
    r = run_cli(backfill, "--from", "2026-11-11", "--until", "2026-11-22", date="2026-11-22")
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary_of(r.stdout)["harvested"] == 80

    def rows(data):
        store = Store(f"sqlite:///{data}/test/arxlive.sqlite")
        try:
            with store.engine.connect() as conn:
                return ([tuple(x) for x in conn.execute(select(articles).with_only_columns(
                            *[c for c in articles.c if not c.name.startswith(("enrich", "title_searches"))])
                            .order_by(articles.c.id))],
                        [tuple(x) for x in conn.execute(select(authors).order_by(authors.c.article_id,
                                                                                 authors.c.position))])
        finally:
            store.close()

    assert rows(tmp_path / "daily") == rows(tmp_path / "backfill") and len(rows(tmp_path / "daily")[0]) == 80
    assert ((tmp_path / "daily/test/exports/articles-2026-11-22.jsonl").read_bytes()
            == (tmp_path / "backfill/test/exports/articles-2026-11-22.jsonl").read_bytes())

    # a re-run of a past date harvests that date's window again, whatever ran since
    for p in sorted((tmp_path / "daily/test/runs/2026-11-17").rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    r = run_cli(daily, date="2026-11-17")
    s = summary_of(r.stdout)
    assert (s["harvest_from"], s["harvest_until"], s["harvested"], s["new"]) == ("2026-11-15", "2026-11-17", 30, 0)


@pytest.mark.parametrize("date,message", [
    ("2099-01-01", "--date 2099-01-01 is in the future"),
    ("2026-02-30", "--date '2026-02-30' is not a date (YYYY-MM-DD)"),
    ("20261120", "--date '20261120' is not a date (YYYY-MM-DD)"),
])
def test_bad_or_future_date_is_one_line_and_exit_2(fakes, tmp_path, date, message):
    oai, oa = fakes(5)
    r = run_cli(fake_env(oai, oa, tmp_path / "data"), date=date)
    assert r.returncode == 2 and r.stderr == f"arxlive: {message}" + (
        f" (today is {dt.datetime.now(dt.UTC).date()}, UTC)" if "future" in message else "") + "\n"
    assert stats(oai)["requests"] == 0 and not (tmp_path / "data").exists()


def test_failed_task_exits_30(fakes, tmp_path):
    oai, oa = fakes(20)
    oai.faults.set("badargument*inf")
    r = run_cli(fake_env(oai, oa, tmp_path / "data"))
    assert r.returncode == 30, r.stdout + r.stderr
    assert "OAI-PMH error badArgument" in r.stdout + r.stderr
    assert "ARXLIVE_SUMMARY" not in r.stdout


def test_bad_config_fails_at_start_naming_the_variable(fakes, tmp_path):
    oai, oa = fakes(5)
    r = run_cli(fake_env(oai, oa, tmp_path / "data", ARXLIVE_BUDGET_DAILY_USD="lots"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("arxlive: ARXLIVE_BUDGET_DAILY_USD='lots'")
    assert stats(oai)["requests"] == 0


def test_unwritable_data_dir_and_unreachable_store_exit_2(fakes, tmp_path):
    oai, oa = fakes(5)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = run_cli(fake_env(oai, oa, blocker))
    assert r.returncode == 2 and "ARXLIVE_DATA_DIR" in r.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]        # nothing listens there once closed
    r = run_cli(fake_env(oai, oa, tmp_path / "data",
                         ARXLIVE_TEST_DB_URL=f"postgresql+psycopg://arx:s3cret-pw@127.0.0.1:{port}/arx"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "cannot open the store postgresql+psycopg://***@127.0.0.1" in r.stderr and "s3cret-pw" not in r.stderr
    assert "Traceback" not in r.stdout + r.stderr


def test_two_runs_with_different_data_dirs_on_one_store_exclude_each_other(fakes, tmp_path):
    oai, oa = fakes(20, page_size=10)
    oai.faults.set("503=20@2*1")     # the first run waits 20 s on page 2, holding the store
    shared = f"sqlite:///{tmp_path}/shared.sqlite"
    first_env = fake_env(oai, oa, tmp_path / "a", ARXLIVE_RETRY_AFTER_MAX="20", ARXLIVE_TEST_DB_URL=shared)
    first = start_cli(first_env)
    try:
        deadline = time.time() + 60
        while stats(oai)["requests"] < 2 and time.time() < deadline:   # the first run is waiting on page 2
            time.sleep(0.05)
        second = run_cli(fake_env(oai, oa, tmp_path / "b", ARXLIVE_TEST_DB_URL=shared), date="2026-11-19")
        assert second.returncode == 3, second.stdout + second.stderr
        assert "refusing to start" in second.stderr and f"pid {first.pid}" in second.stderr
        assert "run 2026-11-20" in second.stderr
    finally:
        out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, out
    assert summary_of(out)["harvested"] == 20
    # released: the second run goes through now
    assert run_cli(fake_env(oai, oa, tmp_path / "b", ARXLIVE_TEST_DB_URL=shared), date="2026-11-19").returncode == 0


def test_lock_of_a_dead_run_is_taken_over_with_a_log_line(fakes, tmp_path):
    oai, oa = fakes(5)
    env = fake_env(oai, oa, tmp_path / "data")
    assert run_cli(env).returncode == 0                 # creates the store
    gone = subprocess.Popen(["true"])
    gone.wait()                                         # a pid that no longer runs
    store = Store(f"sqlite:///{tmp_path}/data/test/arxlive.sqlite")
    try:
        assert store.lock_insert({"name": "arxlive-test", "owner": "dead-run", "host": socket.gethostname(),
                                  "pid": gone.pid, "started": "2026-11-20T03:00:00+00:00",
                                  "heartbeat": time.time(), "what": "a run that was killed"})
        r = run_cli(env, date="2026-11-19")
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"taking over the store lock of a dead run (pid {gone.pid} on" in r.stdout
        assert store.lock_holder("arxlive-test") is None          # released at the end
        # a live holder with a fresh heartbeat is respected
        with StoreLock(store, "arxlive-test", "a test holding the lock"):
            r = run_cli(env, date="2026-11-18")
            assert r.returncode == 3 and "a test holding the lock" in r.stderr
            assert f"pid {os.getpid()}" in r.stderr
    finally:
        store.close()


def test_crash_mid_harvest_then_rerun_resumes(fakes, tmp_path):
    oai, oa = fakes(40, page_size=10)
    oai.faults.set("drop@3*inf")
    env = fake_env(oai, oa, tmp_path / "data")
    r = run_cli(env)
    assert r.returncode == 30 and "2 pages are kept" in r.stdout + r.stderr
    token = [e["params"] for e in stats(oai)["log"]][-1]["resumptionToken"]
    oai.reset()
    r = run_cli(env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert stats(oai)["log"][0]["params"] == {"verb": "ListRecords", "resumptionToken": token}
    s = summary_of(r.stdout)
    assert s["harvested"] == 40 and s["new"] + s["deleted"] == 40


def test_production_uses_its_own_store(fakes, tmp_path):
    oai, oa = fakes(20, page_size=10)
    env = fake_env(oai, oa, tmp_path / "data")
    r = run_cli(env, "--production")
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary_of(r.stdout)["mode"] == "production"
    assert (tmp_path / "data/production/arxlive.sqlite").exists()
    assert not (tmp_path / "data/test/arxlive.sqlite").exists()


def test_log_filter_masks_messages_and_tracebacks():
    import io
    import logging

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.addFilter(MaskingFilter(["s3cr3t-key"]))
    logger = logging.getLogger("arxlive.test-masking")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("GET http://x/works?api_key=%s", "s3cr3t-key")
        try:
            raise RuntimeError("failed on http://x/works?mailto=a@b.org&api_key=s3cr3t-key")
        except RuntimeError:
            logger.exception("task failed")
    finally:
        logger.removeHandler(handler)
    text = buf.getvalue()
    assert "s3cr3t-key" not in text and text.count("api_key=***") >= 2 and "RuntimeError" in text
