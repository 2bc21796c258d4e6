"""arxlive benchmark: Harvest+Load throughput against the fake OAI-PMH server.

    .venv/bin/python bench/bench_pipeline.py [--sizes 1000,10000,100000]

Prints a table. The fakes run in a separate process (python -m fakes, from tests/) so that server
and client do not share a GIL; OAI delay 0 (production is 3 s per page); page size 1000 like arXiv;
SQLite store in a temporary data dir. What enrichment costs is bench_enrich_year.py's subject.
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
from pathlib import Path
from types import SimpleNamespace

from arxlive import pipeline
from arxlive.config import load_config
from arxlive.store import Store

D = dt.date(2026, 11, 20)
WINDOW = (dt.date(2026, 11, 18), D)   # the fakes' records are dated 2026-11-19 and 2026-11-20
TESTS = Path(__file__).resolve().parents[1] / "tests"


def start_fakes(n: int, page_size: int = 1000):
    proc = subprocess.Popen([sys.executable, "-m", "fakes", "--records", str(n), "--page-size", str(page_size)],
                            stdout=subprocess.PIPE, text=True, cwd=TESTS)
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
    env = dict(urls, ARXLIVE_OAI_DELAY="0", ARXLIVE_DATA_DIR=str(data_dir), ARXLIVE_BACKOFF_BASE="0.01")
    cfg = load_config(env, production=True)
    (cfg.mode_dir / "runs").mkdir(parents=True, exist_ok=True)
    return cfg


@contextlib.contextmanager
def harvested(n: int):
    """Fakes serving n records, a fresh store, Harvest + Load timed; yields what the benchmark reads."""
    proc, urls = start_fakes(n)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = config(urls, tmp)
            store = Store(cfg.store_url).create()
            rdir = pipeline.run_dir(cfg, D, WINDOW)
            t0 = time.perf_counter()
            h = pipeline.harvest(cfg, rdir, WINDOW)
            t1 = time.perf_counter()
            loaded = pipeline.load(store, rdir)
            t2 = time.perf_counter()
            try:
                yield SimpleNamespace(urls=urls, cfg=cfg, store=store, harvest=h, load=loaded,
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000,100000")
    args = p.parse_args(argv)
    print(f"arxlive benchmark ({os.cpu_count()} CPUs, Python {sys.version.split()[0]}, SQLite store, fakes in a "
          "separate process, OAI delay 0, 1000 records per page)\n")
    print("Harvest + Load from the fake OAI-PMH server")
    print(f"{'records':>9} {'pages':>6} {'harvest s':>10} {'load s':>8} {'records/s':>10}")
    for n in [int(x) for x in args.sizes.split(",") if x]:
        r = bench_harvest_load(n)
        print(f"{r['n']:>9} {r['pages']:>6} {r['harvest_s']:>10.2f} {r['load_s']:>8.2f} {r['rps']:>10.0f}", flush=True)


if __name__ == "__main__":
    main()
