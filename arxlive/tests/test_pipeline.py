"""The steps against the fake servers (real HTTP, in-process), on a SQLite store.

Each fault ends recovered or in a clear failure, with nothing lost or duplicated.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from arxlive import pipeline
from arxlive.fakes import fixtures
from conftest import stats

D = dt.date(2026, 11, 20)
TODAY = dt.date(2026, 11, 20)


class Sleeps(list):
    def __call__(self, s):
        self.append(s)


def run_steps(cfg, store, date=D, from_date=None, today=TODAY, sleep=None):
    rdir = pipeline.run_dir(cfg, date)
    h = pipeline.harvest(cfg, store, rdir, date, from_date, sleep=sleep or Sleeps())
    l = pipeline.load(cfg, store, rdir, date, h)
    e = pipeline.enrich(cfg, store, date, today=today, sleep=sleep or Sleeps())
    s = pipeline.export(cfg, store, rdir, date, h, l, e)
    return h, l, e, s


def expected(n):
    recs = [fixtures.record(i) for i in range(n)]
    live = [r for r in recs if not r["deleted"]]
    kinds = [fixtures.kind(r["i"]) for r in live]
    return {"records": n, "live": len(live), "deleted": n - len(live),
            "doi": sum(k in ("arxiv_doi", "publisher") for k in kinds),
            "title": kinds.count("title"), "unmatched": kinds.count("unmatched")}


def oai_requests(oai):
    return [e["params"] for e in stats(oai)["log"] if e["path"] == "/oai2"]


def test_full_run_counts_and_export(fakes, make_cfg, store_for):
    oai, oa = fakes(60, page_size=10)
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    h, l, e, s = run_steps(cfg, store)
    x = expected(60)
    assert (h["records"], h["pages"]) == (60, 6)
    assert (l["new"], l["deleted"], l["updated"]) == (x["live"], x["deleted"], 0)
    assert (e["doi_matched"], e["title_matched"], e["unmatched"], e["deferred"]) == (
        x["doi"], x["title"], x["unmatched"], 0)
    # one DOI request for the whole batch, then one title search per DOI miss
    assert e["calls"] == 1 + x["title"] + x["unmatched"] == stats(oa)["calls"]
    lines = open(s["export"], encoding="utf-8").read().splitlines()
    assert len(lines) == s["exported"] == x["doi"] + x["title"]
    arts = [json.loads(li) for li in lines]
    assert [a["id"] for a in arts] == sorted(a["id"] for a in arts)
    first = arts[0]
    assert first["openalex"]["id"].startswith("W") and first["openalex"]["authorships"]
    assert any(a["openalex"]["mag_id"] for a in arts)
    assert any(i["ror"] for a in arts for au in a["openalex"]["authorships"] for i in au["institutions"])
    assert {a["openalex"]["matched_by"] for a in arts} == {"doi_arxiv", "doi_publisher", "title"}
    assert any("ö" in a["title"] or "ő" in a["title"] or "é" in a["title"] for a in arts)
    assert all("\n" not in a["title"] for a in arts)
    # every request: the first with metadataPrefix/from, the others the token alone
    reqs = oai_requests(oai)
    assert reqs[0] == {"verb": "ListRecords", "metadataPrefix": "arXiv", "from": "2026-11-19"}
    assert all(set(r) == {"verb", "resumptionToken"} for r in reqs[1:])


def test_same_date_twice_same_rows_and_no_enrichment_calls(fakes, make_cfg, store_for):
    oai, oa = fakes(60, page_size=10)
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    run_steps(cfg, store)
    before, calls = store.snapshot(), stats(oa)["calls"]
    for p in pipeline.run_dir(cfg, D).glob("pages/*"):
        p.unlink()
    # the same date again, harvesting the same records again (--from-date)
    h, l, e, s = run_steps(cfg, store, from_date="2026-11-19")
    assert store.snapshot() == before
    assert (l["new"], l["updated"], l["unchanged"]) == (0, 0, 60)
    assert e["calls"] == 0 and stats(oa)["calls"] == calls


def test_updated_only_when_newer(fakes, make_cfg, store_for):
    oai, oa = fakes(10, page_size=10)
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    rec = {k: v for k, v in fixtures.record(1).items() if k not in ("i", "raw_title", "raw_abstract")}
    assert store.load_records([rec]) == {"new": 1, "updated": 0, "deleted": 0, "unchanged": 0}
    older = dict(rec, title="An older title", updated="2000-01-01")
    assert store.load_records([older])["unchanged"] == 1
    assert store.snapshot()[0][5] == rec["title"]
    newer = dict(rec, title="A newer title", updated="2030-01-01", authors=rec["authors"][:1])
    assert store.load_records([newer])["updated"] == 1
    snap = store.snapshot()
    assert snap[0][5] == "A newer title" and len([r for r in snap if r[0] == rec["id"]]) == 2  # article + 1 author


def test_503_with_retry_after_is_honoured_within_bounds(fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    oai.faults.set("503=30@2*2")
    cfg = make_cfg(oai, oa, ARXLIVE_RETRY_AFTER_MAX="5")
    store = store_for(cfg)
    sleeps = Sleeps()
    h = pipeline.harvest(cfg, store, pipeline.run_dir(cfg, D), D, sleep=sleeps)
    assert h["records"] == 30 and h["requests"] == 5
    assert sleeps == [5, 5]  # Retry-After: 30 capped at ARXLIVE_RETRY_AFTER_MAX


def test_polite_delay_between_requests(fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    cfg = make_cfg(oai, oa, ARXLIVE_OAI_DELAY="3")
    store = store_for(cfg)
    sleeps = Sleeps()
    pipeline.harvest(cfg, store, pipeline.run_dir(cfg, D), D, sleep=sleeps)
    assert len(sleeps) == 2 and all(2.5 < s <= 3 for s in sleeps)


@pytest.mark.parametrize("fault", ["429@2", "drop@2", "malformed@2", "503@1*2", "drop@3*2"])
def test_transient_faults_recover_without_loss_or_duplicates(fault, fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    oai.faults.set(fault)
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    h, l, e, s = run_steps(cfg, store)
    assert h["records"] == 30 and h["pages"] == 3
    assert l["new"] + l["deleted"] == 30 and store.counts()["articles"] == 30


def test_persistent_malformed_xml_is_a_clear_failure(fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    oai.faults.set("malformed@2*inf")
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    with pytest.raises(pipeline.HarvestError, match=r"page 2 .*gave up after 3 attempts.*malformed XML"):
        pipeline.harvest(cfg, store, pipeline.run_dir(cfg, D), D, sleep=Sleeps())


def test_crash_mid_harvest_resumes_from_the_next_page(fakes, make_cfg, store_for):
    oai, oa = fakes(50, page_size=10)
    oai.faults.set("drop@3*inf")   # the connection dies on page 3 every time: the run fails there
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    rdir = pipeline.run_dir(cfg, D)
    with pytest.raises(pipeline.HarvestError, match="2 pages are kept"):
        pipeline.harvest(cfg, store, rdir, D, sleep=Sleeps())
    page3_token = oai_requests(oai)[-1]["resumptionToken"]
    oai.reset()
    h = pipeline.harvest(cfg, store, rdir, D, sleep=Sleeps())
    reqs = oai_requests(oai)
    assert reqs[0] == {"verb": "ListRecords", "resumptionToken": page3_token}
    assert len(reqs) == 3 and h["pages"] == 5 and h["records"] == 50
    l = pipeline.load(cfg, store, rdir, D, h)
    ids = [r["id"] for recs in pipeline.iter_pages(rdir) for r in recs]
    assert len(ids) == len(set(ids)) == 50 and l["new"] + l["deleted"] == 50


def test_bad_resumption_token_fails_clearly_and_next_run_restarts(fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    oai.faults.set("badtoken@2")
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    rdir = pipeline.run_dir(cfg, D)
    with pytest.raises(pipeline.HarvestError, match="badResumptionToken.*restarts the harvest from 2026-11-19"):
        pipeline.harvest(cfg, store, rdir, D, sleep=Sleeps())
    assert not list((rdir / "pages").glob("*"))
    oai.reset()
    h = pipeline.harvest(cfg, store, rdir, D, sleep=Sleeps())
    assert h["records"] == 30 and "resumptionToken" not in oai_requests(oai)[0]


def test_no_records_match_is_nothing_new(fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    oai.faults.set("nomatch")
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    h, l, e, s = run_steps(cfg, store)
    assert (h["records"], s["new"], s["api_calls_used"], s["exported"]) == (0, 0, 0, 0)


def test_bad_argument_is_a_clear_failure(fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    oai.faults.set("badargument*inf")
    cfg = make_cfg(oai, oa)
    with pytest.raises(pipeline.HarvestError, match="OAI-PMH error badArgument at page 1"):
        pipeline.harvest(cfg, store_for(cfg), pipeline.run_dir(cfg, D), D, sleep=Sleeps())


def test_deleted_records_are_marked_not_lost(fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    run_steps(cfg, store)
    oai.faults.set("deleted")   # every 7th record now comes as a deleted header
    d2 = D + dt.timedelta(days=1)
    h, l, e, s = run_steps(cfg, store, date=d2, from_date="2026-11-19")
    newly = [i for i in range(30) if i % 7 == 0 and i % 50 != 49]
    assert l["deleted"] == len(newly)
    assert store.counts()["articles"] == 30
    with store.engine.connect() as c:
        from sqlalchemy import select

        from arxlive.store import articles
        rows = {r.id: r for r in c.execute(select(articles))}
    for i in newly:
        r = rows[fixtures.arxiv_id(i)]
        assert r.deleted and r.title == fixtures.record(i)["title"]
    exported = [json.loads(x)["id"] for x in open(s["export"], encoding="utf-8")]
    assert not set(exported) & {fixtures.arxiv_id(i) for i in newly}


def test_budget_exhausted_run_completes_and_reports_deferred(fakes, make_cfg, store_for):
    oai, oa = fakes(60, page_size=20)
    cfg = make_cfg(oai, oa, ARXLIVE_BUDGET_DAILY="5", ARXLIVE_BUDGET_MONTHLY="100", ARXLIVE_OPENALEX_MAX_DOIS="20")
    store = store_for(cfg)
    h, l, e, s = run_steps(cfg, store)
    assert s["api_calls_used"] == 5 and s["api_calls_left"] == 0 and s["deferred"] > 0
    assert s["enrich_note"] == "budget spent"
    done = s["enriched"] + s["unmatched"]
    assert done + s["deferred"] == expected(60)["live"]
    # the same day: nothing more; the next day: continues where it stopped, nothing twice
    assert pipeline.enrich(cfg, store, D, today=TODAY)["calls"] == 0
    total_calls = 5
    day = TODAY
    for _ in range(10):
        day += dt.timedelta(days=1)
        e2 = pipeline.enrich(cfg, store, D, today=day)
        total_calls += e2["calls"]
        if e2["deferred"] == 0:
            break
    c = store.counts()
    x = expected(60)
    assert (c["works"], c.get("status_unmatched", 0)) == (x["doi"] + x["title"], x["unmatched"])
    assert stats(oa)["calls"] == total_calls


def test_unmatched_are_retried_on_a_schedule_not_every_run(fakes, make_cfg, store_for):
    oai, oa = fakes(20, page_size=20)
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    run_steps(cfg, store)
    x = expected(20)
    assert pipeline.enrich(cfg, store, D)["calls"] == 0                        # same date
    e = pipeline.enrich(cfg, store, D + dt.timedelta(days=1))                  # due after 1 day
    assert e["due"] == x["unmatched"] and e["calls"] == 1 + x["unmatched"]
    assert pipeline.enrich(cfg, store, D + dt.timedelta(days=2))["calls"] == 0  # next due after 2 more days
    assert pipeline.enrich(cfg, store, D + dt.timedelta(days=3))["due"] == x["unmatched"]


def test_openalex_429_recovers_and_outage_defers(fakes, make_cfg, store_for):
    oai, oa = fakes(20, page_size=20)
    oa.faults.set("429=1*2")
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    h, l, e, s = run_steps(cfg, store)
    assert s["deferred"] == 0 and s["enriched"] == expected(20)["doi"] + expected(20)["title"]
    assert s["api_calls_used"] == stats(oa)["calls"]   # retries count against the budget too

    oai2, oa2 = fakes(20, page_size=20)
    oa2.faults.set("503*inf")
    cfg2 = make_cfg(oai2, oa2, ARXLIVE_DATA_DIR=str(cfg.data_dir) + "2")
    s2 = run_steps(cfg2, store_for(cfg2))[3]
    assert s2["enriched"] == 0 and s2["deferred"] == expected(20)["live"]
    assert "OpenAlex unavailable" in s2["enrich_note"]


def test_api_key_and_mailto_are_sent_and_key_never_shown(fakes, make_cfg, store_for, caplog):
    oai, oa = fakes(20, page_size=20, api_key="k-123-secret", mailto="ops@example.org")
    cfg = make_cfg(oai, oa, ARXLIVE_OPENALEX_API_KEY="k-123-secret", ARXLIVE_MAILTO="ops@example.org")
    caplog.set_level("INFO")
    s = run_steps(cfg, store_for(cfg))[3]
    assert s["enriched"] > 0
    assert "k-123-secret" not in caplog.text and "api_key=***" in caplog.text

    bad = make_cfg(oai, oa, ARXLIVE_OPENALEX_API_KEY="wrong-key-999", ARXLIVE_MAILTO="ops@example.org",
                   ARXLIVE_DATA_DIR=str(cfg.data_dir) + "2")
    with pytest.raises(pipeline.EnrichError, match="403.*ARXLIVE_OPENALEX_API_KEY") as exc:
        run_steps(bad, store_for(bad))
    assert "wrong-key-999" not in str(exc.value)


def test_set_and_from_date_filter_the_harvest(fakes, make_cfg, store_for):
    oai, oa = fakes(40, page_size=10, days=10)
    cfg = make_cfg(oai, oa, ARXLIVE_OAI_SET="cs")
    store = store_for(cfg)
    h = pipeline.harvest(cfg, store, pipeline.run_dir(cfg, D), D, from_date="2026-11-25", sleep=Sleeps())
    want = [r for r in (fixtures.record(i, days=10) for i in range(40))
            if r["datestamp"] >= "2026-11-25" and "cs" in r["sets"]]
    assert h["records"] == len(want) > 0
    assert oai_requests(oai)[0] == {"verb": "ListRecords", "metadataPrefix": "arXiv", "from": "2026-11-25",
                                    "set": "cs"}
