"""Pure rules of the Load step: what a harvested record does to the stored article."""

from __future__ import annotations

from dataclasses import dataclass, field

INSERT, UPDATE, DELETE, SKIP = "insert", "update", "delete", "skip"

ARTICLE_FIELDS = ("datestamp", "created", "updated", "title", "abstract", "categories", "comments",
                  "journal_ref", "doi", "license")


def version_of(rec: dict) -> str | None:
    """The date that orders versions of an article: `updated`, else `created` (ISO dates sort)."""
    return rec.get("updated") or rec.get("created")


def decide(stored: dict | None, rec: dict) -> str:
    """insert / update / delete / skip for one harvested record against the stored row.

    - unknown id: insert (a deleted header for an unknown id is stored as a tombstone)
    - deleted header: mark the stored article deleted (keeping its metadata) unless it already is
    - live record: update only when its version (`updated` or `created`) is newer than the stored
      one, or when it revives a deleted article with a newer datestamp; otherwise nothing changes.
    """
    if stored is None:
        return INSERT
    if rec.get("deleted"):
        return SKIP if stored.get("deleted") else DELETE
    new_v, old_v = version_of(rec), stored.get("version")
    if old_v is None or (new_v is not None and new_v > old_v):
        return UPDATE
    if stored.get("deleted") and (rec.get("datestamp") or "") > (stored.get("datestamp") or ""):
        return UPDATE
    return SKIP


def dedupe_latest(records: list[dict]) -> list[dict]:
    """One record per id (a harvest may see an id twice): the newest version, then the last seen."""
    best: dict[str, dict] = {}
    for rec in records:
        cur = best.get(rec["id"])
        if cur is None or (version_of(rec) or "", rec.get("datestamp") or "") >= (
                version_of(cur) or "", cur.get("datestamp") or ""):
            best[rec["id"]] = rec
    return list(best.values())


def doi_changed(stored: dict | None, rec: dict) -> bool:
    return stored is not None and (stored.get("doi") or "").lower() != (rec.get("doi") or "").lower()


@dataclass
class LoadPlan:
    """What one page of records does to the store: rows to insert, update or mark deleted."""
    inserts: list[dict] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)        # each with "doi_changed": re-enrich it
    deletes: list[dict] = field(default_factory=list)        # {"id", "datestamp"}
    counts: dict = field(default_factory=lambda: {"new": 0, "updated": 0, "deleted": 0, "unchanged": 0})


def plan(stored: dict[str, dict], recs: list[dict]) -> LoadPlan:
    """The plan for one page, given the stored state of its ids ({id: {version, datestamp, deleted, doi}})."""
    out = LoadPlan()
    for r in dedupe_latest(recs):
        old = stored.get(r["id"])
        action = decide(old, r)
        if action == SKIP:
            out.counts["unchanged"] += 1
        elif action == DELETE:
            out.counts["deleted"] += 1
            out.deletes.append({"id": r["id"], "datestamp": r.get("datestamp")})
        elif action == INSERT:
            out.counts["deleted" if r.get("deleted") else "new"] += 1
            out.inserts.append(r)
        else:
            out.counts["updated"] += 1
            # a new DOI may match where the old one did not: look it up again
            out.updates.append(dict(r, doi_changed=doi_changed(old, r)))
    return out
