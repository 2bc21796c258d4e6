"""The store on a real PostgreSQL server (started by the session fixture)."""

from __future__ import annotations

import datetime as dt

import pytest

from arxlive import pipeline
from arxlive.store import Store
from conftest import fake_env, run_luigi, stats, summary_of
from test_pipeline import D, expected, run_steps

pytestmark = pytest.mark.postgres


def test_pipeline_on_postgres_same_rows_on_rerun(fakes, make_cfg, pg_url):
    oai, oa = fakes(60, page_size=10)
    cfg = make_cfg(oai, oa, ARXLIVE_TEST_DB_URL=pg_url)
    assert cfg.store_url.startswith("postgresql")
    store = Store(cfg.store_url).create()
    try:
        h, l, e, s = run_steps(cfg, store)
        x = expected(60)
        assert (l["new"], l["deleted"]) == (x["live"], x["deleted"])
        assert s["enriched"] == x["doi"] + x["title"] and s["unmatched"] == x["unmatched"]
        before, calls = store.snapshot(), stats(oa)["calls"]
        for p in pipeline.run_dir(cfg, D).glob("pages/*"):
            p.unlink()
        h, l, e, s = run_steps(cfg, store, from_date="2026-11-19")
        assert store.snapshot() == before and e["calls"] == 0 and stats(oa)["calls"] == calls
        assert l["unchanged"] == 60
        # non-ASCII and TeX survive the round trip
        assert any("ő" in (r[5] or "") or "ö" in (r[5] or "") for r in before if len(r) > 5)
        # budget rows are per day and per month
        assert store.budget_used(dt.date(2026, 11, 20)) == (calls, calls)
    finally:
        store.close()


def test_advisory_lock_refuses_a_second_holder(pg_url):
    a, b = Store(pg_url).create(), Store(pg_url)
    try:
        assert a.try_db_lock("arxlive-test") is True
        assert b.try_db_lock("arxlive-test") is False
        a.close()
        assert b.try_db_lock("arxlive-test") is True
    finally:
        a.close()
        b.close()


def test_luigi_cli_on_postgres(fakes, tmp_path, pg_url):
    oai, oa = fakes(30, page_size=10)
    env = fake_env(oai, oa, tmp_path / "data", ARXLIVE_DB_URL=pg_url)
    r = run_luigi(env, "--production")
    assert r.returncode == 0, r.stdout + r.stderr
    s = summary_of(r.stdout)
    assert s["harvested"] == 30 and s["enriched"] > 0
    assert not (tmp_path / "data/production/arxlive.sqlite").exists()
    assert "postgres@127.0.0.1" in r.stdout   # the store is named (without a password)
