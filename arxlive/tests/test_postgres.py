"""The store on a real PostgreSQL server (started by the session fixture)."""

from __future__ import annotations

import time

import pytest

from arxlive import pipeline
from arxlive.lock import StoreLock, StoreLocked
from arxlive.store import Store
from conftest import fake_env, run_cli, start_cli, stats, summary_of
from test_pipeline import WINDOW, D, expected, run_steps

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
        for p in pipeline.run_dir(cfg, D, WINDOW).glob("pages/*"):
            p.unlink()
        h, l, e, s = run_steps(cfg, store)
        assert store.snapshot() == before and e["api"]["calls"] == 0 and stats(oa)["calls"] == calls
        assert l["unchanged"] == 60
        # non-ASCII and TeX survive the round trip
        assert any("ő" in (r[5] or "") or "ö" in (r[5] or "") for r in before if len(r) > 5)
        # the ledger counts per day, in micro-dollars
        assert store.ledger_spent("2026-11-20", "2026-11") == (100 + 1000 * (calls - 1),) * 2
    finally:
        store.close()


def test_advisory_lock_refuses_a_second_holder(pg_url):
    a, b = Store(pg_url).create(), Store(pg_url)
    try:
        with StoreLock(a, "arxlive-test", "first"):
            with pytest.raises(StoreLocked, match="advisory lock arxlive-test"):
                with StoreLock(b, "arxlive-test", "second"):
                    pass
        with StoreLock(b, "arxlive-test", "second"):     # released with the first's connection
            pass
    finally:
        a.close()
        b.close()


def test_cli_on_postgres_and_two_data_dirs_exclude_each_other(fakes, tmp_path, pg_url):
    oai, oa = fakes(30, page_size=10)
    oai.faults.set("503=8@2*1")
    env = fake_env(oai, oa, tmp_path / "a", ARXLIVE_DB_URL=pg_url, ARXLIVE_RETRY_AFTER_MAX="8")
    first = start_cli(env, "--production")
    try:
        while stats(oai)["requests"] < 2:
            time.sleep(0.05)
        second = run_cli(fake_env(oai, oa, tmp_path / "b", ARXLIVE_DB_URL=pg_url), "--production")
        assert second.returncode == 3 and "refusing to start" in second.stderr, second.stderr
    finally:
        out, _ = first.communicate(timeout=90)
    assert first.returncode == 0, out
    s = summary_of(out)
    assert s["harvested"] == 30 and s["enriched"] > 0
    assert not (tmp_path / "a/production/arxlive.sqlite").exists()
    assert "store postgresql+psycopg://***@127.0.0.1" in out   # the store is named, without credentials
