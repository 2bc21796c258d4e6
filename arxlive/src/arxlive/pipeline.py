"""The four steps as plain functions (the Luigi tasks are thin wrappers around them).

harvest(cfg, rdir, window)                  -> manifest (pages on disk + checkpoint)
load(store, rdir)                           -> counts
enrich(cfg, store, run_date, today)         -> counts, calls and dollars by kind
export(cfg, store, run_date, ...)           -> summary (+ the 30-day trend page)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path

from . import matching, provenance, records
from .config import Config
from .files import atomic_write, read_json, write_json
from .http import PermanentHTTPError, RetriesExhausted, mask
from .ledger import Ledger
from .oai import OaiClient
from .openalex import BudgetSpent, OpenAlexClient
from .store import Store
from .trend import trend_path, write_trend

log = logging.getLogger("arxlive")


class StepError(RuntimeError):
    """A step failed for a reason the message names (the task fails; exit 30)."""


def run_dir(cfg: Config, run_date: dt.date, window: tuple[dt.date, dt.date]) -> Path:
    """runs/<date>/<from>..<until>: a run of the same date over another window keeps its own files."""
    return cfg.mode_dir / "runs" / run_date.isoformat() / f"{window[0]}..{window[1]}"


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


# ------------------------------------------------------------------------------------ harvest

def harvest(cfg: Config, rdir: Path, window: tuple[dt.date, dt.date], sleep=time.sleep) -> dict:
    """Fetch every page of the window into rdir/pages, checkpointing after each page.

    A crash leaves pages 1..k and a checkpoint holding the token of page k+1; the next call
    resumes there. badResumptionToken: the checkpoint and pages are removed and the harvest fails
    clearly; the next run starts the window over (Load is idempotent, so nothing is duplicated).
    noRecordsMatch on the first page = nothing in the window.
    """
    pages_dir = rdir / "pages"
    ckpt_path = pages_dir / "checkpoint.json"
    # the checkpoint names its source without credentials: it is a file anyone may read
    source = {"oai_url": mask(cfg.oai_url, cfg.secrets()), "set": cfg.oai_set}
    ckpt = read_json(ckpt_path) if ckpt_path.exists() else None
    if ckpt and {k: ckpt.get(k) for k in source} != source:
        log.warning("checkpoint in %s is for another source; starting over", pages_dir)
        _clear_pages(pages_dir)
        ckpt = None
    if ckpt is None:
        ckpt = {**source, "from": window[0].isoformat(), "until": window[1].isoformat(), "pages": 0, "records": 0,
                "token": None, "complete": False, "stopped_early": False}
        log.info("harvest %s..%s%s", window[0], window[1], f" set {cfg.oai_set}" if cfg.oai_set else "")
    elif not ckpt["complete"]:
        log.info("resuming harvest of %s..%s after page %d (%d records so far)", ckpt["from"], ckpt["until"],
                 ckpt["pages"], ckpt["records"])
    client = OaiClient(cfg, sleep=sleep)
    try:
        while not ckpt["complete"]:
            if cfg.max_pages is not None and ckpt["pages"] >= cfg.max_pages:
                log.warning("test mode: stopping after %d pages (the limit without --production)", cfg.max_pages)
                ckpt.update(complete=True, stopped_early=True)
                write_json(ckpt_path, ckpt)
                break
            n = ckpt["pages"] + 1
            try:
                page = client.list_records(window, ckpt["token"])
            except RetriesExhausted as exc:
                raise StepError(f"harvest failed at page {n} ({source['oai_url']}): {exc}; "
                                f"{ckpt['pages']} pages are kept and the next run resumes there") from None
            except PermanentHTTPError as exc:
                raise StepError(f"harvest failed at page {n}: {exc}") from None
            if page.error_code == "noRecordsMatch" and ckpt["pages"] == 0:
                log.info("noRecordsMatch: no records in %s..%s", window[0], window[1])
                ckpt.update(complete=True)
                write_json(ckpt_path, ckpt)
                break
            if page.error_code == "badResumptionToken":
                _clear_pages(pages_dir)
                raise StepError(
                    f"OAI-PMH rejected the resumptionToken of page {n} (badResumptionToken: {page.error_message}); "
                    f"checkpoint and pages cleared, the next run restarts the harvest of {window[0]}..{window[1]}")
            if page.error_code:
                raise StepError(f"OAI-PMH error {page.error_code} at page {n}: {page.error_message}")
            write_json(pages_dir / f"page-{n:05d}.json", {"page": n, "records": page.records})
            ckpt.update(pages=n, records=ckpt["records"] + len(page.records), token=page.token,
                        complete=not page.token)
            write_json(ckpt_path, ckpt)  # the page is on disk before the checkpoint points past it
            size = f"/{page.complete_list_size}" if page.complete_list_size else ""
            log.info("page %d: %d records (%d%s so far)", n, len(page.records), ckpt["records"], size)
    finally:
        client.close()
    return {k: ckpt[k] for k in ("from", "until", "set", "pages", "records", "stopped_early")} | {
        "requests": client.requests}


def _clear_pages(pages_dir: Path):
    if pages_dir.exists():
        for p in pages_dir.iterdir():
            p.unlink()


def iter_pages(rdir: Path):
    for p in sorted((rdir / "pages").glob("page-*.json")):
        yield read_json(p)["records"]


# ------------------------------------------------------------------------------------ load

def load(store: Store, rdir: Path) -> dict:
    counts = {"new": 0, "updated": 0, "deleted": 0, "unchanged": 0}
    for recs in iter_pages(rdir):
        plan = records.plan(store.stored_states([r["id"] for r in recs]), recs)
        store.apply(plan)
        for k, v in plan.counts.items():
            counts[k] += v
    log.info("load: %s", counts)
    return counts


# ------------------------------------------------------------------------------------ enrich

def enrich(cfg: Config, store: Store, run_date: dt.date, today: dt.date | None = None, sleep=time.sleep,
           policy: matching.EnrichPolicy | None = None) -> dict:
    """Look up due articles in OpenAlex within the budget; the rest is deferred to later runs.

    DOI batches first (new articles before retries), then title searches for the DOI misses that
    the policy allows, several titles per search call; every miss is retried later on the back-off
    schedule.
    """
    policy = policy or matching.EnrichPolicy(cfg.title_grace_days, cfg.title_search_cap,
                                             title_batch=cfg.title_search_batch)
    ledger = Ledger(store, cfg.prices, cfg.budget_daily_usd, cfg.budget_monthly_usd, today or utc_today())
    due = matching.order_due(store.due_articles(run_date), policy)
    out = {"due": len(due), "doi_matched": 0, "title_matched": 0, "unmatched": 0, "deferred": 0,
           "malformed": 0, "error": None}
    client = OpenAlexClient(cfg, ledger.charge, sleep)
    stop = None
    try:
        missed = []
        batches = matching.doi_batches(due, cfg.openalex_max_dois)
        for b, batch in enumerate(batches):
            try:
                found = client.works_by_doi([d for art in batch for d in matching.article_dois(art)])
            except (BudgetSpent, RetriesExhausted) as exc:
                stop = exc
                out["deferred"] += sum(len(x) for x in batches[b:])
                break
            out["malformed"] += found.malformed
            hits = matching.match_by_doi(batch, found.works)
            for art in batch:
                if art["id"] in hits:
                    work, how = hits[art["id"]]
                    store.save_match(art["id"], matching.work_row(work), how, None, run_date, searched=False)
                    out["doi_matched"] += 1
                else:
                    missed.append(art)
        # title searches for the DOI misses the policy allows, several titles per call
        to_search = [a for a in missed if matching.title_search_due(a, run_date, policy)]
        best, searched = {}, set()
        for batch in matching.title_batches(to_search, policy.title_batch):
            if stop is not None:
                break
            try:
                found = client.works_by_titles([art["title"] for art in batch])
            except (BudgetSpent, RetriesExhausted) as exc:
                stop = exc
                break
            out["malformed"] += found.malformed
            for art in batch:
                searched.add(art["id"])
                hit = matching.best_title_match(art["title"], found.works, cfg.title_threshold)
                if hit:
                    best[art["id"]] = hit
        due_search = {a["id"] for a in to_search}
        for art in missed:
            if art["id"] in best:
                work, score = best[art["id"]]
                store.save_match(art["id"], matching.work_row(work), "title", score, run_date, searched=True)
                out["title_matched"] += 1
            elif art["id"] in due_search and art["id"] not in searched:
                out["deferred"] += 1      # still due: the next run looks it up again
            else:
                nxt = matching.next_attempt(run_date, art["enrich_attempts"] + 1)
                store.mark_unmatched(art["id"], nxt, art["id"] in searched)
                out["unmatched"] += 1
    except PermanentHTTPError as exc:
        hint = " (check ARXLIVE_OPENALEX_API_KEY / ARXLIVE_MAILTO)" if exc.status in (401, 403) else ""
        raise StepError(f"OpenAlex refused a request: {exc}{hint}") from None
    finally:
        client.close()
    if isinstance(stop, BudgetSpent):
        out["error"] = "budget spent"
        log.warning("API budget spent: %d articles deferred to a later run", out["deferred"])
    elif stop is not None:
        out["error"] = f"OpenAlex unavailable: {stop}"
        log.warning("OpenAlex unavailable (%s): %d articles deferred to a later run", stop, out["deferred"])
    out["api"] = ledger.summary()
    log.info("enrich: %s", out)
    return out


# ------------------------------------------------------------------------------------ export

SUMMARY_KEYS = ("harvested", "new", "updated", "deleted", "enriched", "unmatched", "deferred", "malformed",
                "api_calls", "api_usd", "api_usd_left_today", "api_usd_left_month", "exported")


def export(cfg: Config, store: Store, run_date: dt.date, harvest_m: dict, load_m: dict, enrich_m: dict) -> dict:
    facts = provenance.platform_facts()  # before writing: malformed facts must not leave an export without one
    started = provenance.now()
    exports = cfg.mode_dir / "exports"
    path = exports / f"articles-{run_date.isoformat()}.jsonl"
    n = 0
    with atomic_write(path) as f:
        for art in store.iter_enriched():
            f.write(json.dumps(art, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    api = enrich_m["api"]
    # Beside the export, once it is complete; the record holds the export's sha256, so a sidecar
    # left from an earlier run of the date (a kill between the two renames) does not match it.
    write_json(provenance.sidecar(path), provenance.record(
        facts,
        params={"date": run_date.isoformat(), "mode": cfg.mode, "from": harvest_m["from"], "until": harvest_m["until"]},
        inputs=[{"uri": provenance.public_url(cfg.oai_url), "type": "oai-pmh", "set": harvest_m["set"],
                 "from": harvest_m["from"], "until": harvest_m["until"], "records": harvest_m["records"]},
                {"uri": provenance.public_url(cfg.openalex_url), "type": "http-json", "calls": api["calls"]}],
        output=path, started=started, ended=provenance.now(), host=provenance.host()))
    summary = {
        "date": run_date.isoformat(),
        "mode": cfg.mode,
        "harvest_from": harvest_m["from"],
        "harvest_until": harvest_m["until"],
        "harvested": harvest_m["records"],
        "pages": harvest_m["pages"],
        "new": load_m["new"],
        "updated": load_m["updated"],
        "deleted": load_m["deleted"],
        "unchanged": load_m["unchanged"],
        "enriched": enrich_m["doi_matched"] + enrich_m["title_matched"],
        "enriched_by_doi": enrich_m["doi_matched"],
        "enriched_by_title": enrich_m["title_matched"],
        "unmatched": enrich_m["unmatched"],
        "deferred": enrich_m["deferred"],
        "malformed": enrich_m["malformed"],
        "api_calls": api["calls"],
        "api_usd": api["usd"],
        "api_by_kind": api["by_kind"],
        "api_usd_left_today": api["left_today_usd"],
        "api_usd_left_month": api["left_month_usd"],
        "enrich_note": enrich_m["error"],
        "exported": n,
        "export": str(path),
        "trend": str(trend_path(exports, run_date)),
    }
    write_json(exports / f"summary-{run_date.isoformat()}.json", summary)
    # the trend includes this run's summary, so it is drawn after that is written
    write_trend(exports, run_date, cfg.mode)
    log.info("trend of the last 30 days: %s", summary["trend"])
    return summary


def summary_lines(summary: dict) -> list[str]:
    """The lines printed at the end of a run: a readable one and a machine-readable JSON one."""
    human = ", ".join(f"{k}={summary.get(k)}" for k in SUMMARY_KEYS)
    kinds = "; ".join(f"{k}: {v['calls']} calls ${v['usd']:.4f}" for k, v in summary["api_by_kind"].items())
    return [f"arxlive {summary['mode']} run {summary['date']}: {human}" + (f" ({kinds})" if kinds else ""),
            "ARXLIVE_SUMMARY " + json.dumps(summary, sort_keys=True, ensure_ascii=False)]
