"""records: what a harvested record does to the stored article (pure)."""

from __future__ import annotations

from arxlive import records


def test_decide():
    live = {"id": "1", "created": "2026-01-01", "updated": "2026-02-01", "datestamp": "2026-02-02"}
    assert records.decide(None, live) == records.INSERT
    assert records.decide({"version": "2026-02-01", "deleted": False}, live) == records.SKIP
    assert records.decide({"version": "2026-03-01", "deleted": False}, live) == records.SKIP
    assert records.decide({"version": "2026-01-01", "deleted": False}, live) == records.UPDATE
    gone = {"id": "1", "deleted": True, "datestamp": "2026-03-01"}
    assert records.decide({"version": "2026-02-01", "deleted": False}, gone) == records.DELETE
    assert records.decide({"version": "2026-02-01", "deleted": True}, gone) == records.SKIP
    assert records.decide({"version": "2026-02-01", "deleted": True, "datestamp": "2026-01-01"},
                          live) == records.UPDATE


def test_dedupe_keeps_newest():
    a = {"id": "1", "created": "2026-01-01", "updated": None, "datestamp": "2026-01-01"}
    b = {"id": "1", "created": "2026-01-01", "updated": "2026-02-01", "datestamp": "2026-02-01"}
    assert records.dedupe_latest([b, a]) == [b]
    assert records.dedupe_latest([a, b]) == [b]


def test_plan_counts_and_rows():
    stored = {"1": {"version": "2026-01-01", "deleted": False, "doi": None, "datestamp": "2026-01-01"},
              "2": {"version": "2026-01-01", "deleted": False, "doi": "10.1/a", "datestamp": "2026-01-01"},
              "3": {"version": "2026-01-01", "deleted": False, "doi": None, "datestamp": "2026-01-01"}}
    recs = [{"id": "1", "created": "2026-01-01", "datestamp": "2026-01-01"},                 # unchanged
            {"id": "2", "created": "2026-01-01", "updated": "2026-02-01", "doi": "10.1/B"},  # newer, new DOI
            {"id": "3", "deleted": True, "datestamp": "2026-03-01"},                        # deleted
            {"id": "4", "created": "2026-03-01", "datestamp": "2026-03-01"}]                # new
    plan = records.plan(stored, recs)
    assert plan.counts == {"new": 1, "updated": 1, "deleted": 1, "unchanged": 1}
    assert [r["id"] for r in plan.inserts] == ["4"] and plan.updates[0]["doi_changed"] is True
    assert plan.deletes == [{"id": "3", "datestamp": "2026-03-01"}]
