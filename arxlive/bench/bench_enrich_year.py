"""arxlive benchmark: a year of scheduled runs against the fake OpenAlex, today's policy beside the new one.

    .venv/bin/python bench/bench_enrich_year.py [--per-day 50] [--days 365]

Every scheduled day (Sunday to Thursday) brings --per-day new articles; each run enriches what is
due, over real HTTP against the fake OpenAlex in this process, on a SQLite store of its own per
policy, with a budget large enough never to defer. The fake's clock follows the simulated day:
a work becomes findable only once OpenAlex would have indexed it. The mix (why: see README):

  10%  carry a publisher DOI OpenAlex already has (found on day 0)
  85%  found by arXiv's DataCite DOI 10.48550/arXiv.<id>, 2-5 days after their datestamp
   3%  found only by title (OpenAlex merged them into a work with another DOI), also 2-5 days late
   2%  never found

Policies: today's (a title search for every DOI miss at once, one title per call, no cap, old retries
first), the new one with one title per search call, and the new default (grace 7 days, 2 searches per
article, up to 20 titles per search call).

Prints calls and dollars per 1,000 articles for the first run and for all runs (--days), by kind,
and how many articles each policy matched by the end (a cheaper policy must not match fewer).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the fakes live beside the tests

from fakes import fixtures  # noqa: E402
from fakes.servers import FakeOAI, FakeOpenAlex  # noqa: E402

from arxlive import dates, pipeline, records  # noqa: E402
from arxlive.config import load_config, prepare_data_dir  # noqa: E402
from arxlive.matching import EnrichPolicy  # noqa: E402
from arxlive.store import Store  # noqa: E402

START = dt.date(2026, 1, 4)   # a Sunday
POLICIES = {
    "today": EnrichPolicy(grace_days=0, title_cap=None, new_first=False, title_batch=1),
    "new, 1 title a call": dataclasses.replace(EnrichPolicy(), title_batch=1),
    "new (default)": EnrichPolicy(),
}


def kind(i: int) -> tuple[str, int]:
    """(kind, indexing lag in days) of article i, fixed by a seeded draw."""
    rnd = random.Random(i * 7919 + 1)
    x, lag = rnd.random(), rnd.randint(2, 5)
    if x < 0.10:
        return "publisher", 0
    if x < 0.95:
        return "datacite", lag
    if x < 0.98:
        return "title", lag
    return "never", lag


def article(i: int, day: dt.date) -> dict:
    rec = fixtures.record(i, day, 1)
    rec = {k: v for k, v in rec.items() if k not in ("i", "raw_title", "raw_abstract")}
    rec.update(id=f"{day:%y%m}.{i:05d}", datestamp=day.isoformat(), created=day.isoformat(), updated=None,
               deleted=False, doi=f"10.1103/physrev.{i}" if kind(i)[0] == "publisher" else None)
    return rec


def work(i: int, rec: dict) -> dict | None:
    k = kind(i)[0]
    if k == "never":
        return None
    doi = {"publisher": rec["doi"], "datacite": f"10.48550/arxiv.{rec['id']}", "title": f"10.5555/other.{i}"}[k]
    title = rec["title"].upper() if k == "title" else rec["title"]
    wid = f"https://openalex.org/W{4000000000 + i}"
    return {"id": wid, "doi": f"https://doi.org/{doi}", "ids": {"openalex": wid}, "display_name": title,
            "publication_date": rec["created"], "cited_by_count": 0, "topics": [], "authorships": []}


def simulate(policy: EnrichPolicy, days: int, per_day: int, oa: FakeOpenAlex, urls: dict) -> dict:
    clock = {"today": START}
    indexed_on = {}
    oa.visible = lambda w: indexed_on[w["id"]] <= clock["today"]
    out = {"articles": 0, "first": None, "by_kind": {}, "matched": 0, "runs": 0}
    # the store in memory-backed /dev/shm when there is one: the benchmark measures calls, not fsyncs
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as tmp:
        env = dict(urls, ARXLIVE_DATA_DIR=tmp, ARXLIVE_BUDGET_DAILY_USD="1000", ARXLIVE_BUDGET_MONTHLY_USD="100000")
        cfg = load_config(env, production=True)
        prepare_data_dir(cfg)
        store = Store(cfg.store_url).create()
        try:
            n = 0
            for d in range(days):
                day = START + dt.timedelta(days=d)
                if day.weekday() not in dates.RUN_WEEKDAYS:
                    continue
                clock["today"] = day
                recs = [article(i, day) for i in range(n, n + per_day)]
                for i, rec in enumerate(recs, start=n):
                    w = work(i, rec)
                    if w is not None and w["id"] not in indexed_on:
                        indexed_on[w["id"]] = day + dt.timedelta(days=kind(i)[1])
                        oa.add_work(w)
                n += per_day
                store.apply(records.plan(store.stored_states([r["id"] for r in recs]), recs))
                api = pipeline.enrich(cfg, store, day, today=day, sleep=lambda s: None, policy=policy)["api"]
                for k, v in api["by_kind"].items():
                    acc = out["by_kind"].setdefault(k, [0, 0.0])
                    acc[0] += v["calls"]
                    acc[1] += v["usd"]
                if out["first"] is None:
                    out["first"] = (api["calls"], api["usd"], per_day)
                out["runs"] += 1
            out["articles"] = n
            out["matched"] = store.counts()["works"]
        finally:
            store.close()
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-day", type=int, default=50, help="new articles per scheduled day")
    p.add_argument("--days", type=int, default=365)
    args = p.parse_args(argv)
    oai = FakeOAI(0).start()            # unused by Enrich, but the config names one
    rows = {}
    try:
        for name, policy in POLICIES.items():
            oa = FakeOpenAlex(0).start()
            try:
                t0 = time.perf_counter()
                rows[name] = simulate(policy, args.days, args.per_day, oa, {
                    "ARXLIVE_OAI_URL": oai.url, "ARXLIVE_OPENALEX_URL": oa.url})
                rows[name]["seconds"] = time.perf_counter() - t0
            finally:
                oa.stop()
    finally:
        oai.stop()
    r0 = rows["today"]
    print(f"arxlive enrichment over {args.days} days: {r0['runs']} runs (Sunday to Thursday), {args.per_day} new "
          f"articles each, {r0['articles']} in all; prices filter $0.0001, search $0.001\n")
    head = (f"{'policy':<22} {'first run':>22} {'all runs':>34} {'matched':>9} {'cheaper':>8}\n"
            f"{'':<22} {'calls/1k':>10} {'$/1k':>11} {'filter/1k':>10} {'search/1k':>10} {'$/1k':>12} {'':>9} {'':>8}")
    print(head)
    base = sum(u for _, u in r0["by_kind"].values())
    for name, r in rows.items():
        k = 1000 / r["articles"]
        usd = sum(u for _, u in r["by_kind"].values())
        calls0, usd0, n0 = r["first"]
        print(f"{name:<22} {calls0 * 1000 / n0:>10.1f} {usd0 * 1000 / n0:>11.4f} "
              f"{r['by_kind'].get('filter', [0, 0])[0] * k:>10.1f} {r['by_kind'].get('search', [0, 0])[0] * k:>10.1f} "
              f"{usd * k:>12.4f} {r['matched'] / r['articles']:>8.1%} {base / usd if usd else float('inf'):>7.1f}x")
    print("\nfirst run = the first day's run, per 1,000 of its new articles; all runs = every call of every run, "
          "per 1,000 articles\nharvested in the period; matched = share of articles with an OpenAlex work at the end; "
          "cheaper = today's dollars / this policy's.")


if __name__ == "__main__":
    main()
