"""The real `luigi` command line in a subprocess, as the container runs it."""

from __future__ import annotations

import json
import time

import pytest

from arxlive.files import DataDirLock
from conftest import fake_env, run_luigi, start_luigi, stats, summary_of

pytestmark = pytest.mark.cli


def test_run_prints_summary_exports_and_rerun_makes_no_calls(fakes, tmp_path):
    oai, oa = fakes(60, page_size=10)
    env = fake_env(oai, oa, tmp_path / "data", ARXLIVE_OPENALEX_API_KEY="cli-key-4242")
    r = run_luigi(env)
    assert r.returncode == 0, r.stdout + r.stderr
    s = summary_of(r.stdout)
    assert (s["harvested"], s["new"], s["deferred"]) == (60, 59, 0)
    assert s["enriched"] == s["exported"] > 0 and s["api_calls_used"] == stats(oa)["calls"]
    assert "cli-key-4242" not in r.stdout + r.stderr
    export = tmp_path / "data" / "test" / "exports" / "articles-2026-11-20.jsonl"
    assert len([json.loads(x) for x in export.read_text(encoding="utf-8").splitlines()]) == s["exported"]
    assert json.loads((tmp_path / "data/test/exports/summary-2026-11-20.json").read_text()) == s
    calls = stats(oa)["calls"]

    # the same date again: Luigi finds every step done; the summary is printed again; no calls
    r2 = run_luigi(env)
    assert r2.returncode == 0 and summary_of(r2.stdout) == s
    # even with the run's outputs removed (a forced re-run): nothing due, 0 enrichment calls
    for p in sorted((tmp_path / "data/test/runs").rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    r3 = run_luigi(env)
    assert r3.returncode == 0, r3.stdout + r3.stderr
    s3 = summary_of(r3.stdout)
    assert s3["api_calls_used"] == 0 and s3["new"] == 0 and s3["exported"] == s["exported"]
    assert stats(oa)["calls"] == calls


def test_failed_task_exits_non_zero(fakes, tmp_path):
    oai, oa = fakes(20)
    oai.faults.set("badargument*inf")
    r = run_luigi(fake_env(oai, oa, tmp_path / "data"))
    assert r.returncode == 30, r.stdout + r.stderr   # [retcode] task_failed in luigi.cfg
    assert "OAI-PMH error badArgument" in r.stdout + r.stderr
    assert "ARXLIVE_SUMMARY" not in r.stdout


def test_bad_config_fails_at_start_naming_the_variable(fakes, tmp_path):
    oai, oa = fakes(5)
    r = run_luigi(fake_env(oai, oa, tmp_path / "data", ARXLIVE_BUDGET_DAILY="lots"))
    assert r.returncode == 2
    assert "ARXLIVE_BUDGET_DAILY" in r.stderr and "configuration error" in r.stderr
    assert stats(oai)["requests"] == 0


def test_unwritable_data_dir_names_the_variable(fakes, tmp_path):
    oai, oa = fakes(5)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = run_luigi(fake_env(oai, oa, blocker))
    assert r.returncode == 2 and "ARXLIVE_DATA_DIR" in r.stderr


def test_second_run_on_the_same_store_refuses_to_start(fakes, tmp_path):
    oai, oa = fakes(20, page_size=10)
    oai.faults.set("503=2@2*1")     # the first run waits 2 s on page 2
    env = fake_env(oai, oa, tmp_path / "data", ARXLIVE_RETRY_AFTER_MAX="2")
    first = start_luigi(env)
    try:
        deadline = time.time() + 30
        while stats(oai)["requests"] < 2 and time.time() < deadline:
            time.sleep(0.05)
        second = run_luigi(env, date="2026-11-21")
        assert second.returncode == 3, second.stdout + second.stderr
        assert "refusing to start" in second.stderr and "arxlive.lock" in second.stderr
        assert "pid" in second.stderr
    finally:
        out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, out
    assert summary_of(out)["harvested"] == 20


def test_lock_held_by_another_process_is_named(fakes, tmp_path):
    oai, oa = fakes(5)
    lock = DataDirLock(tmp_path / "data" / "production" / "arxlive.lock")
    lock.acquire("a test holding the lock")
    try:
        r = run_luigi(fake_env(oai, oa, tmp_path / "data"), "--production")
        assert r.returncode == 3 and "a test holding the lock" in r.stderr
        # the test store is another store: not locked
        assert run_luigi(fake_env(oai, oa, tmp_path / "data")).returncode == 0
    finally:
        lock.release()


def test_crash_mid_harvest_then_rerun_resumes(fakes, tmp_path):
    oai, oa = fakes(40, page_size=10)
    oai.faults.set("drop@3*inf")
    env = fake_env(oai, oa, tmp_path / "data")
    r = run_luigi(env)
    assert r.returncode == 30 and "2 pages are kept" in r.stdout + r.stderr
    token = [e["params"] for e in stats(oai)["log"]][-1]["resumptionToken"]
    oai.reset()
    r = run_luigi(env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert stats(oai)["log"][0]["params"] == {"verb": "ListRecords", "resumptionToken": token}
    s = summary_of(r.stdout)
    assert s["harvested"] == 40 and s["new"] + s["deleted"] == 40


def test_production_uses_its_own_store(fakes, tmp_path):
    oai, oa = fakes(20, page_size=10)
    env = fake_env(oai, oa, tmp_path / "data")
    r = run_luigi(env, "--production")
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary_of(r.stdout)["mode"] == "production"
    assert (tmp_path / "data/production/arxlive.sqlite").exists()
    assert not (tmp_path / "data/test/arxlive.sqlite").exists()
