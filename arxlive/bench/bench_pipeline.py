"""arxlive benchmark: Harvest+Load throughput and OpenAlex API calls, against the fake servers.

    .venv/bin/python bench/bench_pipeline.py [--sizes 1000,10000,100000] [--enrich-sizes 1000,10000]

Prints a table. The fakes run in a separate process (python -m arxlive.fakes) so that server and
client do not share a GIL; OAI delay 0 (production is 3 s per page); page size 1000 like arXiv;
SQLite store in a temporary data dir.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from types import SimpleNamespace

from arxlive import pipeline
from arxlive.config import load_config
from arxlive.store import Store

D = dt.date(2026, 11, 20)


def start_fakes(n: int, page_size: int = 1000):
    proc = subprocess.Popen([sys.executable, "-m", "arxlive.fakes", "--records", str(n), "--page-size", str(page_size)],
                            stdout=subprocess.PIPE, text=True)
    urls = {}
    while len(urls) < 2:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("fakes did not start")
        k, _, v = line.strip().partition("=")
        urls[k] = v
    # warm up: make the fake generate its records before anything is timed
    urllib.request.urlopen(urls["ARXLIVE_OAI_URL"] + "?verb=ListRecords&metadataPrefix=arXiv&from=2099-01-01",
                           timeout=600).read()
    return proc, urls


def config(urls, data_dir):
    env = dict(urls, ARXLIVE_OAI_DELAY="0", ARXLIVE_DATA_DIR=str(data_dir), ARXLIVE_BUDGET_DAILY="1000000",
               ARXLIVE_BUDGET_MONTHLY="10000000", ARXLIVE_BACKOFF_BASE="0.01")
    cfg = load_config(env, production=True)
    (cfg.mode_dir / "runs").mkdir(parents=True, exist_ok=True)
    return cfg


def openalex_calls(urls) -> int:
    import json

    with urllib.request.urlopen(urls["ARXLIVE_OPENALEX_URL"] + "/_stats", timeout=30) as r:
        return json.loads(r.read())["calls"]


@contextlib.contextmanager
def harvested(n: int):
    """Fakes serving n records, a fresh store, Harvest + Load timed; yields what the benchmarks read."""
    proc, urls = start_fakes(n)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = config(urls, tmp)
            store = Store(cfg.store_url).create()
            rdir = pipeline.run_dir(cfg, D)
            t0 = time.perf_counter()
            h = pipeline.harvest(cfg, store, rdir, D)
            t1 = time.perf_counter()
            l = pipeline.load(cfg, store, rdir, D, h)
            t2 = time.perf_counter()
            try:
                yield SimpleNamespace(urls=urls, cfg=cfg, store=store, harvest=h, load=l,
                                      harvest_s=t1 - t0, load_s=t2 - t1)
            finally:
                store.close()
    finally:
        proc.terminate()
        proc.wait()


def bench_harvest_load(n: int) -> dict:
    with harvested(n) as run:
        pass
    assert run.harvest["records"] == n, run.harvest
    return {"n": n, "pages": run.harvest["pages"], "harvest_s": run.harvest_s, "load_s": run.load_s,
            "rps": n / (run.harvest_s + run.load_s), "new": run.load["new"]}


def bench_calls(n: int) -> dict:
    with harvested(n) as run:
        cfg, store = run.cfg, run.store
        t0 = time.perf_counter()
        e1 = pipeline.enrich(cfg, store, D)
        t1 = time.perf_counter()
        e2 = pipeline.enrich(cfg, store, D)                              # same date again
        e3 = pipeline.enrich(cfg, store, D + dt.timedelta(days=1))        # next day: unmatched due
        e4 = pipeline.enrich(cfg, store, D + dt.timedelta(days=2))        # not due again until day 3
        assert openalex_calls(run.urls) == e1["calls"] + e2["calls"] + e3["calls"] + e4["calls"]
    new = run.load["new"]
    return {"n": new, "calls": e1["calls"], "old": new, "doi": e1["doi_matched"], "title": e1["title_matched"],
            "unmatched": e1["unmatched"], "rerun": e2["calls"], "day2": e3["calls"], "day3": e4["calls"],
            "enrich_s": t1 - t0,
            # the old design: every run re-queried every article that never matched, one call each
            "old_rerun": e1["unmatched"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000,100000")
    p.add_argument("--enrich-sizes", default="1000,10000")
    args = p.parse_args(argv)
    print(f"arxlive benchmark ({os.cpu_count()} CPUs, Python {sys.version.split()[0]}, SQLite store, fakes in a "
          "separate process, OAI delay 0, 1000 records per page)\n")
    print("Harvest + Load from the fake OAI-PMH server")
    print(f"{'records':>9} {'pages':>6} {'harvest s':>10} {'load s':>8} {'records/s':>10}")
    for n in [int(x) for x in args.sizes.split(",") if x]:
        r = bench_harvest_load(n)
        print(f"{r['n']:>9} {r['pages']:>6} {r['harvest_s']:>10.2f} {r['load_s']:>8.2f} {r['rps']:>10.0f}", flush=True)
    print("\nOpenAlex calls for N new articles (50% arXiv DOI, 20% publisher DOI, 20% title only, 10% no match)")
    print(f"{'new':>7} {'calls':>6} {'old design':>10} {'by DOI':>7} {'by title':>8} {'unmatched':>9} "
          f"{'re-run':>6} {'old re-run':>10} {'day+1':>6} {'day+2':>6}")
    for n in [int(x) for x in args.enrich_sizes.split(",") if x]:
        r = bench_calls(n)
        print(f"{r['n']:>7} {r['calls']:>6} {r['old']:>10} {r['doi']:>7} {r['title']:>8} {r['unmatched']:>9} "
              f"{r['rerun']:>6} {r['old_rerun']:>10} {r['day2']:>6} {r['day3']:>6}", flush=True)
    print("\ncalls = DOI batches (up to 100 DOIs per request) + one title search per DOI miss; old design = one call"
          "\nper article; re-run = same date again; old re-run = the old design re-queried every never-matched article;"
          "\nday+1/day+2 = later runs (unmatched articles are retried after 1, 2, 4, ... days, not every run).")


if __name__ == "__main__":
    main()
