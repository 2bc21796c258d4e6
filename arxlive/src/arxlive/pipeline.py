"""The four steps as plain functions (the Luigi tasks are thin wrappers around them).

harvest(cfg, store, run_dir, run_date, from_date)  -> manifest (pages on disk + checkpoint)
load(cfg, store, run_dir, run_date)                 -> counts
enrich(cfg, store, run_date)                        -> counts (API calls, deferred)
export(cfg, store, run_dir, run_date)               -> summary
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path

from . import matching, oai
from .config import Config
from .files import atomic_open, read_json, write_json
from .http import PermanentHTTPError, Policy, PoliteSession, RetriesExhausted, TransientError
from .openalex import BudgetSpent, OpenAlexClient
from .store import Store

log = logging.getLogger("arxlive")


class HarvestError(RuntimeError):
    pass


class EnrichError(RuntimeError):
    pass


def source_key(cfg: Config) -> str:
    return f"{cfg.oai_url}|{cfg.oai_set or ''}"


def run_dir(cfg: Config, run_date: dt.date) -> Path:
    return cfg.mode_dir / "runs" / run_date.isoformat()


def default_from(run_date: dt.date, stored: str | None, from_date: str | None) -> str:
    """--from-date wins; else the last successful harvest's date; else the day before --date."""
    if from_date:
        return from_date
    if stored:
        return stored
    return (run_date - dt.timedelta(days=1)).isoformat()


# ------------------------------------------------------------------------------------ harvest

def _check_page(body: bytes) -> oai.Page:
    try:
        return oai.parse_page(body)
    except oai.MalformedResponse as exc:
        raise TransientError(str(exc)) from None


def harvest(cfg: Config, store: Store, rdir: Path, run_date: dt.date, from_date: str | None = None,
            sleep=time.sleep) -> dict:
    """Fetch every page since `from` into rdir/pages, checkpointing after each page.

    A crash leaves pages 1..k and a checkpoint holding the token of page k+1; the next call
    resumes there. badResumptionToken: the checkpoint and pages are removed and the harvest fails
    clearly; the next run starts over from the same `from` (Load is idempotent, so nothing is
    duplicated). noRecordsMatch on the first page = nothing new.
    """
    pages_dir = rdir / "pages"
    ckpt_path = pages_dir / "checkpoint.json"
    ckpt = read_json(ckpt_path) if ckpt_path.exists() else None
    if ckpt and (ckpt.get("oai_url"), ckpt.get("set")) != (cfg.oai_url, cfg.oai_set):
        log.warning("checkpoint in %s is for another source; starting over", pages_dir)
        _clear_pages(pages_dir)
        ckpt = None
    if ckpt is None:
        frm = default_from(run_date, store.harvest_from(source_key(cfg)), from_date)
        ckpt = {"oai_url": cfg.oai_url, "set": cfg.oai_set, "from": frm, "pages": 0, "records": 0,
                "token": None, "response_date": None, "complete": False, "stopped_early": False}
        log.info("harvest from %s%s", frm, f" set {cfg.oai_set}" if cfg.oai_set else "")
    elif not ckpt["complete"]:
        log.info("resuming harvest from %s after page %d (%d records so far)", ckpt["from"], ckpt["pages"],
                 ckpt["records"])
    session = PoliteSession(Policy(cfg.max_retries, cfg.backoff_base, cfg.backoff_max, cfg.retry_after_max,
                                   cfg.http_timeout, cfg.oai_delay), sleep=sleep)
    try:
        while not ckpt["complete"]:
            if cfg.max_pages is not None and ckpt["pages"] >= cfg.max_pages:
                log.warning("test mode: stopping after %d pages (the limit without --production)", cfg.max_pages)
                ckpt.update(complete=True, stopped_early=True)
                write_json(ckpt_path, ckpt)
                break
            params = oai.list_records_params(ckpt["from"], cfg.oai_set, ckpt["token"])
            try:
                page = session.get(cfg.oai_url, params, _check_page)
            except RetriesExhausted as exc:
                raise HarvestError(f"harvest failed at page {ckpt['pages'] + 1} ({cfg.oai_url}): {exc}; "
                                   f"{ckpt['pages']} pages are kept and the next run resumes there") from None
            except PermanentHTTPError as exc:
                raise HarvestError(f"harvest failed at page {ckpt['pages'] + 1}: {exc}") from None
            if page.error_code == "noRecordsMatch" and ckpt["pages"] == 0:
                log.info("noRecordsMatch: nothing new since %s", ckpt["from"])
                ckpt.update(complete=True, response_date=page.response_date)
                write_json(ckpt_path, ckpt)
                break
            if page.error_code == "badResumptionToken":
                _clear_pages(pages_dir)
                raise HarvestError(
                    f"OAI-PMH rejected the resumptionToken of page {ckpt['pages'] + 1} (badResumptionToken: "
                    f"{page.error_message}); checkpoint and pages cleared, the next run restarts the harvest "
                    f"from {ckpt['from']}")
            if page.error_code:
                raise HarvestError(f"OAI-PMH error {page.error_code} at page {ckpt['pages'] + 1}: "
                                   f"{page.error_message} (request {params})")
            n = ckpt["pages"] + 1
            write_json(pages_dir / f"page-{n:05d}.json", {"page": n, "records": page.records})
            ckpt.update(pages=n, records=ckpt["records"] + len(page.records), token=page.token,
                        response_date=ckpt["response_date"] or page.response_date, complete=not page.token)
            write_json(ckpt_path, ckpt)  # the page is on disk before the checkpoint points past it
            size = f"/{page.complete_list_size}" if page.complete_list_size else ""
            log.info("page %d: %d records (%d%s so far)", n, len(page.records), ckpt["records"], size)
    finally:
        session.close()
    return {k: ckpt[k] for k in ("from", "set", "pages", "records", "response_date", "stopped_early")} | {
        "requests": session.attempts}


def _clear_pages(pages_dir: Path):
    if pages_dir.exists():
        for p in pages_dir.iterdir():
            p.unlink()


def iter_pages(rdir: Path):
    for p in sorted((rdir / "pages").glob("page-*.json")):
        yield read_json(p)["records"]


# ------------------------------------------------------------------------------------ load

def load(cfg: Config, store: Store, rdir: Path, run_date: dt.date, manifest: dict) -> dict:
    counts = {"new": 0, "updated": 0, "deleted": 0, "unchanged": 0}
    for recs in iter_pages(rdir):
        for k, v in store.load_records(recs).items():
            counts[k] += v
    # the next harvest starts from the day this one began (overlap is harmless: loads are idempotent)
    nxt = (manifest.get("response_date") or "")[:10] or run_date.isoformat()
    store.set_harvest_from(source_key(cfg), nxt, run_date.isoformat())
    log.info("load: %s; next harvest from %s", counts, nxt)
    return counts


# ------------------------------------------------------------------------------------ enrich

def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def enrich(cfg: Config, store: Store, run_date: dt.date, today: dt.date | None = None, sleep=None) -> dict:
    """Look up due articles in OpenAlex within the budget; the rest is deferred to later runs."""
    today = today or utc_today()
    doi_due, title_due = store.due_for_enrichment(run_date)
    out = {"due": len(doi_due) + len(title_due), "doi_matched": 0, "title_matched": 0, "unmatched": 0,
           "deferred": 0, "calls": 0, "error": None}
    client = OpenAlexClient(cfg, lambda: store.take_call(today, cfg.budget_daily, cfg.budget_monthly), sleep)
    stop = None
    try:
        batches = matching.doi_batches(doi_due, cfg.openalex_max_dois)
        for b, batch in enumerate(batches):
            dois = [d for art in batch for d in matching.article_dois(art)]
            try:
                found = client.works_by_doi(dois)
            except (BudgetSpent, RetriesExhausted) as exc:
                stop = exc
                out["deferred"] += sum(len(x) for x in batches[b:])
                break
            hits = matching.match_by_doi(batch, found)
            for art in batch:
                if art["id"] in hits:
                    work, how = hits[art["id"]]
                    store.save_match(art["id"], work, how, None, run_date)
                    out["doi_matched"] += 1
            missed = [a for a in batch if a["id"] not in hits]
            store.mark_doi_missed([a["id"] for a in missed])
            title_due.extend(missed)
        title_due.sort(key=lambda a: a["id"])
        for n, art in enumerate(title_due):
            if stop is not None:
                out["deferred"] += len(title_due) - n
                break
            if not art.get("title"):
                store.mark_unmatched(art["id"], run_date)
                out["unmatched"] += 1
                continue
            try:
                found = client.works_by_title(art["title"])
            except (BudgetSpent, RetriesExhausted) as exc:
                stop = exc
                out["deferred"] += len(title_due) - n
                break
            best = matching.best_title_match(art["title"], found, cfg.title_threshold)
            if best:
                store.save_match(art["id"], best[0], "title", best[1], run_date)
                out["title_matched"] += 1
            else:
                store.mark_unmatched(art["id"], run_date)
                out["unmatched"] += 1
    except PermanentHTTPError as exc:
        hint = " (check ARXLIVE_OPENALEX_API_KEY / ARXLIVE_MAILTO)" if exc.status in (401, 403) else ""
        raise EnrichError(f"OpenAlex refused a request: {exc}{hint}") from None
    finally:
        client.close()
    out["calls"] = client.calls
    if isinstance(stop, BudgetSpent):
        out["error"] = "budget spent"
        log.warning("API budget spent: %d articles deferred to a later run", out["deferred"])
    elif stop is not None:
        out["error"] = f"OpenAlex unavailable: {stop}"
        log.warning("OpenAlex unavailable (%s): %d articles deferred to a later run", stop, out["deferred"])
    used_day, used_month = store.budget_used(today)
    out["calls_left_today"] = max(0, cfg.budget_daily - used_day)
    out["calls_left_month"] = max(0, cfg.budget_monthly - used_month)
    out["calls_left"] = matching.calls_left(cfg.budget_daily, cfg.budget_monthly, used_day, used_month)
    log.info("enrich: %s", out)
    return out


# ------------------------------------------------------------------------------------ export

SUMMARY_KEYS = ("harvested", "new", "updated", "deleted", "enriched", "unmatched", "deferred",
                "api_calls_used", "api_calls_left", "exported")


def export(cfg: Config, store: Store, rdir: Path, run_date: dt.date, harvest_m: dict, load_m: dict,
           enrich_m: dict) -> dict:
    exports = cfg.mode_dir / "exports"
    path = exports / f"articles-{run_date.isoformat()}.jsonl"
    n = 0
    with atomic_open(path) as f:
        for art in store.iter_enriched():
            f.write(json.dumps(art, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    summary = {
        "date": run_date.isoformat(),
        "mode": cfg.mode,
        "harvested": harvest_m["records"],
        "pages": harvest_m["pages"],
        "harvest_from": harvest_m["from"],
        "new": load_m["new"],
        "updated": load_m["updated"],
        "deleted": load_m["deleted"],
        "unchanged": load_m["unchanged"],
        "enriched": enrich_m["doi_matched"] + enrich_m["title_matched"],
        "enriched_by_doi": enrich_m["doi_matched"],
        "enriched_by_title": enrich_m["title_matched"],
        "unmatched": enrich_m["unmatched"],
        "deferred": enrich_m["deferred"],
        "api_calls_used": enrich_m["calls"],
        "api_calls_left": enrich_m["calls_left"],
        "api_calls_left_today": enrich_m["calls_left_today"],
        "api_calls_left_month": enrich_m["calls_left_month"],
        "enrich_note": enrich_m["error"],
        "exported": n,
        "export": str(path),
    }
    write_json(exports / f"summary-{run_date.isoformat()}.json", summary)
    return summary


def summary_lines(summary: dict) -> list[str]:
    """The lines printed at the end of a run: a readable one and a machine-readable JSON one."""
    human = ", ".join(f"{k}={summary.get(k)}" for k in SUMMARY_KEYS)
    return [f"arxlive {summary['mode']} run {summary['date']}: {human}",
            "ARXLIVE_SUMMARY " + json.dumps(summary, sort_keys=True, ensure_ascii=False)]
