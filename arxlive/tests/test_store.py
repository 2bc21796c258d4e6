"""store: rows written and read back on SQLite (the same queries run on PostgreSQL in test_postgres.py)."""

from __future__ import annotations

import datetime as dt

from fakes import fixtures
from sqlalchemy import create_engine, text

from arxlive import records
from arxlive.store import Store


def load(store, recs):
    plan = records.plan(store.stored_states([r["id"] for r in recs]), recs)
    store.apply(plan)
    return plan.counts


def test_a_record_replaces_the_stored_one_only_when_newer(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/s.sqlite").create()
    try:
        rec = {k: v for k, v in fixtures.record(1).items() if k not in ("i", "raw_title", "raw_abstract")}
        assert load(store, [rec]) == {"new": 1, "updated": 0, "deleted": 0, "unchanged": 0}
        older = dict(rec, title="An older title", updated="2000-01-01")
        assert load(store, [older])["unchanged"] == 1
        assert store.snapshot()[0][5] == rec["title"]
        newer = dict(rec, title="A newer title", updated="2030-01-01", authors=rec["authors"][:1])
        assert load(store, [newer])["updated"] == 1
        snap = store.snapshot()
        assert snap[0][5] == "A newer title" and len([r for r in snap if r[0] == rec["id"]]) == 2  # + 1 author
    finally:
        store.close()


def test_due_articles_and_enrichment_state(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/s.sqlite").create()
    try:
        recs = [{k: v for k, v in fixtures.record(i).items() if k not in ("i", "raw_title", "raw_abstract")}
                for i in range(3)]
        load(store, recs)
        d = dt.date(2026, 11, 20)
        assert [a["enrich_status"] for a in store.due_articles(d)] == ["pending"] * 3
        store.mark_unmatched(recs[0]["id"], d + dt.timedelta(days=2), searched=True)
        assert len(store.due_articles(d + dt.timedelta(days=1))) == 2
        (due,) = [a for a in store.due_articles(d + dt.timedelta(days=2)) if a["id"] == recs[0]["id"]]
        assert (due["enrich_attempts"], due["title_searches"]) == (1, 1)
    finally:
        store.close()


def test_a_store_from_before_gets_the_new_column(tmp_path):
    url = f"sqlite:///{tmp_path}/old.sqlite"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE articles (id VARCHAR(64) PRIMARY KEY, deleted BOOLEAN NOT NULL, "
                          "enrich_status VARCHAR(16) NOT NULL, enrich_attempts INTEGER NOT NULL, "
                          "enrich_next DATE, title TEXT, doi VARCHAR(255), created DATE, datestamp DATE)"))
        conn.execute(text("INSERT INTO articles VALUES ('2611.00001', 0, 'pending', 0, NULL, 'T', NULL, NULL, NULL)"))
    engine.dispose()
    store = Store(url).create()
    try:
        assert store.due_articles(dt.date(2026, 11, 20))[0]["title_searches"] == 0
    finally:
        store.close()
