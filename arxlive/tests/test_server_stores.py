"""The store, its lock and the CLI on real server databases: PostgreSQL and MariaDB (session fixtures)."""

from __future__ import annotations

import pytest
from conftest import fake_env, run_cli, stats, summary_of
from test_pipeline import WINDOW, D, expected, run_steps

from arxlive import pipeline
from arxlive.lock import StoreLock, StoreLocked
from arxlive.store import Store


def test_pipeline_on_a_server_store_same_rows_on_rerun(fakes, make_cfg, server_db):
    oai, oa = fakes(60, page_size=10)
    cfg = make_cfg(oai, oa, ARXLIVE_TEST_DB_URL=server_db)
    assert cfg.store_url.startswith(("postgresql", "mysql"))
    store = Store(cfg.store_url).create()
    try:
        h, loaded, e, s = run_steps(cfg, store)
        x = expected(60)
        assert (loaded["new"], loaded["deleted"]) == (x["live"], x["deleted"])
        assert s["enriched"] == x["doi"] + x["title"] and s["unmatched"] == x["unmatched"]
        before, calls = store.snapshot(), stats(oa)["calls"]
        for p in pipeline.run_dir(cfg, D, WINDOW).glob("pages/*"):
            p.unlink()
        h, loaded, e, s = run_steps(cfg, store)
        assert store.snapshot() == before and e["api"]["calls"] == 0 and stats(oa)["calls"] == calls
        assert loaded["unchanged"] == 60
        # non-ASCII and TeX survive the round trip
        assert any("ő" in (r[5] or "") or "ö" in (r[5] or "") for r in before if len(r) > 5)
        # the ledger counts per day, in micro-dollars
        assert store.ledger_spent("2026-11-20", "2026-11") == (100 + 1000 * (calls - 1),) * 2
    finally:
        store.close()


def test_advisory_lock_refuses_a_second_holder(server_db):
    a, b = Store(server_db).create(), Store(server_db)
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


def test_cli_on_a_server_store_refuses_while_another_run_holds_it(fakes, tmp_path, server_db):
    oai, oa = fakes(30, page_size=10)
    holder = Store(server_db).create()
    try:
        with StoreLock(holder, "arxlive-production", "a run elsewhere"):   # another host, another data dir
            r = run_cli(fake_env(oai, oa, tmp_path / "b", ARXLIVE_DB_URL=server_db), "--production")
            assert r.returncode == 3 and "refusing to start" in r.stderr, r.stdout + r.stderr
            assert stats(oai)["requests"] == 0
    finally:
        holder.close()
    r = run_cli(fake_env(oai, oa, tmp_path / "a", ARXLIVE_DB_URL=server_db), "--production")
    assert r.returncode == 0, r.stdout + r.stderr
    s = summary_of(r.stdout)
    assert s["harvested"] == 30 and s["enriched"] > 0
    assert not (tmp_path / "a/production/arxlive.sqlite").exists()
    assert "+p" in r.stdout and "://***@127.0.0.1" in r.stdout   # the store is named, without credentials
