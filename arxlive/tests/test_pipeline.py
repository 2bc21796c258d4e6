"""The steps against the fake servers (real HTTP, in-process), on a SQLite store.

Each fault ends recovered or in a clear failure, with nothing lost or duplicated.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import stats
from fakes import fixtures

from arxlive import pipeline

D = dt.date(2026, 11, 20)
TODAY = dt.date(2026, 11, 20)
WINDOW = (dt.date(2026, 11, 18), D)   # D's default window (a Friday: back to Thursday, minus a day)


class Sleeps(list):
    def __call__(self, s):
        self.append(s)


def run_steps(cfg, store, date=D, window=WINDOW, today=TODAY, sleep=None):
    rdir = pipeline.run_dir(cfg, date, window)
    h = pipeline.harvest(cfg, rdir, window, sleep=Sleeps() if sleep is None else sleep)
    loaded = pipeline.load(store, rdir)
    e = pipeline.enrich(cfg, store, date, today=today, sleep=Sleeps() if sleep is None else sleep)
    s = pipeline.export(cfg, store, date, h, loaded, e)
    return h, loaded, e, s


def harvest(cfg, window=WINDOW, sleep=None):
    return pipeline.harvest(cfg, pipeline.run_dir(cfg, D, window), window, sleep=Sleeps() if sleep is None else sleep)


def expected(n):
    recs = [fixtures.record(i) for i in range(n)]
    live = [r for r in recs if not r["deleted"]]
    kinds = [fixtures.kind(r["i"]) for r in live]
    return {"records": n, "live": len(live), "deleted": n - len(live),
            "doi": sum(k in ("arxiv_doi", "publisher") for k in kinds),
            "title": kinds.count("title"), "unmatched": kinds.count("unmatched")}


def oai_requests(oai):
    return [e["params"] for e in stats(oai)["log"] if e["path"] == "/oai"]


def test_full_run_counts_and_export(fakes, make_cfg, store_for):
    oai, oa = fakes(60, page_size=10)
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    h, loaded, e, s = run_steps(cfg, store)
    x = expected(60)
    assert (h["records"], h["pages"]) == (60, 6)
    assert (loaded["new"], loaded["deleted"], loaded["updated"]) == (x["live"], x["deleted"], 0)
    assert (e["doi_matched"], e["title_matched"], e["unmatched"], e["deferred"]) == (
        x["doi"], x["title"], x["unmatched"], 0)
    # one DOI request for the whole batch, then one search call for the titles of all the DOI misses
    misses = x["title"] + x["unmatched"]
    assert 1 < misses <= 20
    assert e["api"]["calls"] == 2 == stats(oa)["calls"]
    assert e["api"]["by_kind"] == {"filter": {"calls": 1, "usd": 0.0001}, "search": {"calls": 1, "usd": 0.001}}
    search = [r["params"] for r in stats(oa)["log"] if r["params"].get("filter", "").startswith("title.search:")]
    assert len(search) == 1 and search[0]["filter"].count(") OR (") == misses - 1
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
    assert reqs[0] == {"verb": "ListRecords", "metadataPrefix": "arXiv", "from": "2026-11-18", "until": "2026-11-20"}
    assert all(set(r) == {"verb", "resumptionToken"} for r in reqs[1:])


def test_same_date_twice_same_rows_and_no_enrichment_calls(fakes, make_cfg, store_for):
    oai, oa = fakes(60, page_size=10)
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    run_steps(cfg, store)
    before, calls = store.snapshot(), stats(oa)["calls"]
    export = open(pipeline.export(cfg, store, D, *run_steps(cfg, store)[:3])["export"], "rb").read()
    for p in pipeline.run_dir(cfg, D, WINDOW).glob("pages/*"):
        p.unlink()
    # the same date again, harvesting the same records again
    h, loaded, e, s = run_steps(cfg, store)
    assert store.snapshot() == before
    assert (loaded["new"], loaded["updated"], loaded["unchanged"]) == (0, 0, 60)
    assert e["api"]["calls"] == 0 and stats(oa)["calls"] == calls
    assert open(s["export"], "rb").read() == export


def test_503_with_retry_after_is_honoured_within_bounds(fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    oai.faults.set("503=30@2*2")
    cfg = make_cfg(oai, oa, ARXLIVE_RETRY_AFTER_MAX="5")
    store_for(cfg)
    sleeps = Sleeps()
    h = harvest(cfg, sleep=sleeps)
    assert h["records"] == 30 and h["requests"] == 5
    assert sleeps == [5, 5]  # Retry-After: 30 capped at ARXLIVE_RETRY_AFTER_MAX


def test_polite_delay_between_requests(fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    cfg = make_cfg(oai, oa, ARXLIVE_OAI_DELAY="3")
    store_for(cfg)
    sleeps = Sleeps()
    harvest(cfg, sleep=sleeps)
    assert len(sleeps) == 2 and all(2.5 < s <= 3 for s in sleeps)


@pytest.mark.parametrize("fault", ["429@2", "drop@2", "malformed@2", "503@1*2", "drop@3*2"])
def test_transient_faults_recover_without_loss_or_duplicates(fault, fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    oai.faults.set(fault)
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    h, loaded, e, s = run_steps(cfg, store)
    assert h["records"] == 30 and h["pages"] == 3
    assert loaded["new"] + loaded["deleted"] == 30 and store.counts()["articles"] == 30


def test_persistent_malformed_xml_is_a_clear_failure(fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    oai.faults.set("malformed@2*inf")
    cfg = make_cfg(oai, oa)
    store_for(cfg)
    with pytest.raises(pipeline.StepError, match=r"page 2 .*gave up after 3 attempts.*malformed XML"):
        harvest(cfg)


def test_crash_mid_harvest_resumes_from_the_next_page(fakes, make_cfg, store_for):
    oai, oa = fakes(50, page_size=10)
    oai.faults.set("drop@3*inf")   # the connection dies on page 3 every time: the run fails there
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    rdir = pipeline.run_dir(cfg, D, WINDOW)
    with pytest.raises(pipeline.StepError, match="2 pages are kept"):
        harvest(cfg)
    page3_token = oai_requests(oai)[-1]["resumptionToken"]
    oai.reset()
    h = harvest(cfg)
    reqs = oai_requests(oai)
    assert reqs[0] == {"verb": "ListRecords", "resumptionToken": page3_token}
    assert len(reqs) == 3 and h["pages"] == 5 and h["records"] == 50
    loaded = pipeline.load(store, rdir)
    ids = [r["id"] for recs in pipeline.iter_pages(rdir) for r in recs]
    assert len(ids) == len(set(ids)) == 50 and loaded["new"] + loaded["deleted"] == 50


def test_bad_resumption_token_fails_clearly_and_next_run_restarts(fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    oai.faults.set("badtoken@2")
    cfg = make_cfg(oai, oa)
    store_for(cfg)
    rdir = pipeline.run_dir(cfg, D, WINDOW)
    with pytest.raises(pipeline.StepError, match=r"badResumptionToken.*restarts the harvest of 2026-11-18\.\.2026-11-20"):
        harvest(cfg)
    assert not list((rdir / "pages").glob("*"))
    oai.reset()
    h = harvest(cfg)
    assert h["records"] == 30 and "resumptionToken" not in oai_requests(oai)[0]


def test_no_records_match_is_nothing_new(fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    oai.faults.set("nomatch")
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    h, loaded, e, s = run_steps(cfg, store)
    assert (h["records"], s["new"], s["api_calls"], s["exported"]) == (0, 0, 0, 0)


def test_bad_argument_is_a_clear_failure(fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    oai.faults.set("badargument*inf")
    cfg = make_cfg(oai, oa)
    with pytest.raises(pipeline.StepError, match="OAI-PMH error badArgument at page 1"):
        harvest(cfg)


def test_deleted_records_are_marked_not_lost(fakes, make_cfg, store_for):
    oai, oa = fakes(30, page_size=10)
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    run_steps(cfg, store)
    oai.faults.set("deleted")   # every 7th record now comes as a deleted header
    d2 = D + dt.timedelta(days=1)
    h, loaded, e, s = run_steps(cfg, store, date=d2, window=(dt.date(2026, 11, 19), d2))
    newly = [i for i in range(30) if i % 7 == 0 and i % 50 != 49]
    assert loaded["deleted"] == len(newly)
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
    # room for the DOI batches ($0.0001 each) and 5 title searches ($0.001 each) a day, one title each
    cfg = make_cfg(oai, oa, ARXLIVE_BUDGET_DAILY_USD="0.0054", ARXLIVE_BUDGET_MONTHLY_USD="1",
                   ARXLIVE_OPENALEX_MAX_DOIS="20", ARXLIVE_TITLE_SEARCH_BATCH="1")
    store = store_for(cfg)
    h, loaded, e, s = run_steps(cfg, store)
    assert s["api_by_kind"]["search"]["calls"] == 5 and s["api_usd_left_today"] < 0.001 and s["deferred"] > 0
    assert s["enrich_note"] == "budget spent" and s["api_usd"] == round(sum(
        k["usd"] for k in s["api_by_kind"].values()), 6)
    done = s["enriched"] + s["unmatched"]
    assert done + s["deferred"] == expected(60)["live"]
    # the same day: no more searches; the next days: continue where it stopped, nothing twice
    assert "search" not in pipeline.enrich(cfg, store, D, today=TODAY)["api"]["by_kind"]
    day = TODAY
    for _ in range(10):
        day += dt.timedelta(days=1)
        if pipeline.enrich(cfg, store, D, today=day)["deferred"] == 0:
            break
    c = store.counts()
    x = expected(60)
    assert (c["works"], c.get("status_unmatched", 0)) == (x["doi"] + x["title"], x["unmatched"])
    with store.engine.connect() as conn:
        from sqlalchemy import func, select

        from arxlive.store import api_ledger
        assert conn.execute(select(func.sum(api_ledger.c.calls))).scalar() == stats(oa)["calls"]


def test_unmatched_are_retried_on_a_schedule_and_searched_at_most_twice(fakes, make_cfg, store_for):
    oai, oa = fakes(20, page_size=20)
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    run_steps(cfg, store)
    x = expected(20)
    assert pipeline.enrich(cfg, store, D)["api"]["calls"] == 0                     # same date
    e = pipeline.enrich(cfg, store, D + dt.timedelta(days=1))                      # due after 1 day
    assert e["due"] == x["unmatched"] and e["api"]["by_kind"] == {             # a DOI batch, 2nd searches
        "filter": {"calls": 1, "usd": 0.0001}, "search": {"calls": 1, "usd": 0.001}}
    assert pipeline.enrich(cfg, store, D + dt.timedelta(days=2))["api"]["calls"] == 0  # due after 2 more
    e = pipeline.enrich(cfg, store, D + dt.timedelta(days=3))
    assert e["due"] == x["unmatched"] and e["api"]["by_kind"] == {"filter": {"calls": 1, "usd": 0.0001}}


def test_title_search_waits_for_the_grace_period(fakes, make_cfg, store_for):
    oai, oa = fakes(20, page_size=20)
    cfg = make_cfg(oai, oa, ARXLIVE_TITLE_GRACE_DAYS="1000")   # every fixture is younger than that
    store = store_for(cfg)
    s = run_steps(cfg, store)[3]
    x = expected(20)
    assert s["api_by_kind"] == {"filter": {"calls": 1, "usd": 0.0001}}
    assert (s["enriched"], s["unmatched"]) == (x["doi"], x["title"] + x["unmatched"])


def test_openalex_429_recovers_and_outage_defers(fakes, make_cfg, store_for):
    oai, oa = fakes(20, page_size=20)
    oa.faults.set("429=1*2")
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    h, loaded, e, s = run_steps(cfg, store)
    assert s["deferred"] == 0 and s["enriched"] == expected(20)["doi"] + expected(20)["title"]
    assert s["api_calls"] == stats(oa)["calls"]   # retries count against the budget too

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
    with pytest.raises(pipeline.StepError, match="403.*ARXLIVE_OPENALEX_API_KEY") as exc:
        run_steps(bad, store_for(bad))
    assert "wrong-key-999" not in str(exc.value)


def test_set_and_window_filter_the_harvest(fakes, make_cfg, store_for):
    oai, oa = fakes(40, page_size=10, days=10)
    cfg = make_cfg(oai, oa, ARXLIVE_OAI_SET="cs")
    window = (dt.date(2026, 11, 25), dt.date(2026, 11, 26))
    h = harvest(cfg, window)
    want = [r for r in (fixtures.record(i, days=10) for i in range(40))
            if "2026-11-25" <= r["datestamp"] <= "2026-11-26" and "cs" in r["sets"]]
    assert h["records"] == len(want) > 0
    assert oai_requests(oai)[0] == {"verb": "ListRecords", "metadataPrefix": "arXiv", "from": "2026-11-25",
                                    "until": "2026-11-26", "set": "cs"}


def test_malformed_and_hostile_works_are_skipped_and_counted(fakes, make_cfg, store_for, caplog):
    oai, oa = fakes(20, page_size=20)
    oa.faults.set("badworks")
    cfg = make_cfg(oai, oa)
    store = store_for(cfg)
    caplog.set_level("WARNING")
    s = run_steps(cfg, store)[3]
    # every work came mistyped: nothing matched, nothing stored, every answer's junk counted
    assert s["enriched"] == 0 and store.counts()["works"] == 0 and s["malformed"] > 0
    assert s["unmatched"] == expected(20)["live"] and s["deferred"] == 0
    assert "skipped a malformed OpenAlex work" in caplog.text and "Traceback" not in caplog.text
    assert "x" * 1000 not in caplog.text      # a huge hostile value is not copied into the log


def test_credentials_in_the_oai_url_are_never_written(fakes, make_cfg, store_for, caplog):
    oai, oa = fakes(20, page_size=10)
    url = oai.url.replace("http://", "http://harvester:pa55-w0rd@")
    cfg = make_cfg(oai, oa, ARXLIVE_OAI_URL=url)
    store = store_for(cfg)
    caplog.set_level("INFO")
    h, loaded, e, s = run_steps(cfg, store)
    assert h["records"] == 20
    written = caplog.text + "".join(p.read_text() for p in cfg.mode_dir.rglob("*.json*"))
    assert "pa55-w0rd" not in written and "harvester" not in written
    assert "pa55-w0rd" not in str(store.snapshot())
    oai.faults.set("503*inf")
    with pytest.raises(pipeline.StepError) as exc:
        harvest(cfg, (dt.date(2026, 11, 19), dt.date(2026, 11, 19)))
    assert "pa55-w0rd" not in str(exc.value) and "***@" in str(exc.value)
