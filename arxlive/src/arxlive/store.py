"""The store: SQLAlchemy 2 Core on SQLite (default), PostgreSQL or MySQL/MariaDB.

Tables: articles (keyed by arXiv id), authors, works (the matched OpenAlex work per article),
work_authorships, work_institutions, harvest_state (last successful harvest per source) and
api_budget (calls per day and per month). Upserts are portable (select the page's ids, then
insert/update in one transaction); the pipeline's lock guarantees a single writer.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from sqlalchemy import (Boolean, Column, Date, Float, ForeignKey, Integer, MetaData, String, Table, Text,
                        and_, bindparam, create_engine, delete, event, func, insert, or_, select, text,
                        update)

from . import matching, records

log = logging.getLogger("arxlive.store")

metadata = MetaData()

articles = Table(
    "articles", metadata,
    Column("id", String(64), primary_key=True),
    Column("datestamp", Date),
    Column("created", Date),
    Column("updated", Date),
    Column("version", Date),              # updated or created: what "newer" compares
    Column("title", Text),
    Column("abstract", Text),
    Column("categories", Text),
    Column("comments", Text),
    Column("journal_ref", Text),
    Column("doi", String(255)),
    Column("license", String(255)),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("enrich_status", String(16), nullable=False, default="pending"),  # pending|doi_missed|matched|unmatched
    Column("enrich_attempts", Integer, nullable=False, default=0),
    Column("enrich_next", Date),
    Column("enriched_on", Date),
)

authors = Table(
    "authors", metadata,
    Column("article_id", String(64), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("keyname", Text),
    Column("forenames", Text),
    Column("suffix", Text),
    Column("affiliation", Text),
)

works = Table(
    "works", metadata,
    Column("article_id", String(64), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("openalex_id", String(64), nullable=False),
    Column("mag_id", String(32)),
    Column("doi", String(255)),
    Column("display_name", Text),
    Column("publication_date", String(10)),
    Column("cited_by_count", Integer),
    Column("topics", Text),               # JSON list of {id, display_name, score}
    Column("matched_by", String(16)),     # doi_publisher | doi_arxiv | title
    Column("match_score", Float),
    Column("fetched_on", Date),
)

work_authorships = Table(
    "work_authorships", metadata,
    Column("article_id", String(64), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("author_id", String(64)),
    Column("name", Text),
)

work_institutions = Table(
    "work_institutions", metadata,
    Column("article_id", String(64), ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("author_position", Integer, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("openalex_id", String(64)),
    Column("ror", String(255)),
    Column("name", Text),
    Column("country_code", String(8)),
)

harvest_state = Table(
    "harvest_state", metadata,
    Column("source", String(190), primary_key=True),   # oai url + set
    Column("last_from", String(10)),                    # the from= the next harvest uses
    Column("last_run_date", String(10)),
    Column("updated_at", String(32)),
)

api_budget = Table(
    "api_budget", metadata,
    Column("period", String(8), primary_key=True),     # day | month
    Column("key", String(10), primary_key=True),       # 2026-11-20 | 2026-11
    Column("calls", Integer, nullable=False, default=0),
)


def _d(value) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, dt.date) else value


class Store:
    def __init__(self, url: str):
        self.url = url
        kwargs = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        self.engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn, _):
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA journal_mode=WAL")
                cur.close()
        self._lock_conn = None

    def create(self) -> "Store":
        metadata.create_all(self.engine)
        return self

    def close(self):
        if self._lock_conn is not None:
            self._lock_conn.close()
            self._lock_conn = None
        self.engine.dispose()

    # ------------------------------------------------------------ a lock for server databases

    def try_db_lock(self, name: str = "arxlive") -> bool | None:
        """Session-level advisory lock held until close(): PostgreSQL pg_try_advisory_lock, MySQL
        GET_LOCK. None on SQLite (the data-dir file lock covers it)."""
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            return None
        conn = self.engine.connect()
        if dialect == "postgresql":
            got = conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:n))"), {"n": name}).scalar()
        else:
            got = conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": name}).scalar() == 1
        conn.commit()
        if got:
            self._lock_conn = conn
        else:
            conn.close()
        return bool(got)

    # ------------------------------------------------------------ load

    def load_records(self, recs: list[dict]) -> dict:
        """Upsert one page of parsed records; returns counts new/updated/deleted/unchanged."""
        counts = {"new": 0, "updated": 0, "deleted": 0, "unchanged": 0}
        recs = records.dedupe_latest(recs)
        if not recs:
            return counts
        ids = [r["id"] for r in recs]
        with self.engine.begin() as conn:
            stored = {}
            for chunk in _chunks(ids, 500):
                for row in conn.execute(select(articles.c.id, articles.c.version, articles.c.datestamp,
                                               articles.c.deleted, articles.c.doi)
                                        .where(articles.c.id.in_(chunk))):
                    stored[row.id] = {"version": _iso(row.version), "datestamp": _iso(row.datestamp),
                                      "deleted": bool(row.deleted), "doi": row.doi}
            new_rows, upd_rows, del_rows, author_rows, author_ids = [], [], [], [], []
            for r in recs:
                old = stored.get(r["id"])
                action = records.decide(old, r)
                if action == records.SKIP:
                    counts["unchanged"] += 1
                    continue
                if action == records.DELETE:
                    counts["deleted"] += 1
                    del_rows.append({"b_id": r["id"], "b_datestamp": _d(r.get("datestamp"))})
                    continue
                row = _article_row(r)
                if action == records.INSERT:
                    counts["deleted" if r.get("deleted") else "new"] += 1
                    new_rows.append(row)
                else:
                    counts["updated"] += 1
                    # a new DOI may match where the old one did not: look it up again soon
                    row["reset"] = records.doi_changed(old, r)
                    upd_rows.append(row)
                    author_ids.append(r["id"])
                for pos, a in enumerate(r.get("authors") or []):
                    author_rows.append({"article_id": r["id"], "position": pos, **a})
            if new_rows:
                conn.execute(insert(articles), new_rows)
            for row in upd_rows:
                reset = row.pop("reset")
                values = {k: v for k, v in row.items() if k != "id"}
                if reset:
                    values.update(enrich_status="pending", enrich_next=None)
                conn.execute(update(articles).where(articles.c.id == row["id"]).values(**values))
            if del_rows:
                conn.execute(update(articles).where(articles.c.id == bindparam("b_id"))
                             .values(deleted=True, datestamp=bindparam("b_datestamp")), del_rows)
            for chunk in _chunks(author_ids, 500):
                conn.execute(delete(authors).where(authors.c.article_id.in_(chunk)))
            if author_rows:
                conn.execute(insert(authors), author_rows)
        return counts

    # ------------------------------------------------------------ harvest state

    def harvest_from(self, source: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(harvest_state.c.last_from)
                                .where(harvest_state.c.source == source[:190])).scalar()

    def set_harvest_from(self, source: str, last_from: str, run_date: str):
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with self.engine.begin() as conn:
            n = conn.execute(update(harvest_state).where(harvest_state.c.source == source[:190])
                             .values(last_from=last_from, last_run_date=run_date, updated_at=now)).rowcount
            if not n:
                conn.execute(insert(harvest_state).values(source=source[:190], last_from=last_from,
                                                          last_run_date=run_date, updated_at=now))

    # ------------------------------------------------------------ budget

    def budget_used(self, today: dt.date) -> tuple[int, int]:
        day, month = matching.budget_periods(today)
        with self.engine.connect() as conn:
            rows = dict(((r.period, r.key), r.calls) for r in conn.execute(select(api_budget)))
        return rows.get(("day", day), 0), rows.get(("month", month), 0)

    def take_call(self, today: dt.date, daily: int, monthly: int) -> bool:
        """Count one API call if the budget allows it (in one transaction); False when spent."""
        day, month = matching.budget_periods(today)
        with self.engine.begin() as conn:
            used = {}
            for period, key in (("day", day), ("month", month)):
                calls = conn.execute(select(api_budget.c.calls).where(
                    and_(api_budget.c.period == period, api_budget.c.key == key))).scalar()
                if calls is None:
                    conn.execute(insert(api_budget).values(period=period, key=key, calls=0))
                    calls = 0
                used[period] = calls
            if matching.calls_left(daily, monthly, used["day"], used["month"]) <= 0:
                return False
            for period, key in (("day", day), ("month", month)):
                conn.execute(update(api_budget).where(and_(api_budget.c.period == period, api_budget.c.key == key))
                             .values(calls=api_budget.c.calls + 1))
        return True

    # ------------------------------------------------------------ enrichment

    def due_for_enrichment(self, run_date: dt.date) -> tuple[list[dict], list[dict]]:
        """(need a DOI lookup, need only a title search), live articles, ordered by id."""
        cols = (articles.c.id, articles.c.title, articles.c.doi, articles.c.enrich_status,
                articles.c.enrich_attempts)
        with self.engine.connect() as conn:
            rows = conn.execute(select(*cols).where(and_(
                articles.c.deleted.is_(False),
                or_(articles.c.enrich_status.in_(("pending", "doi_missed")),
                    and_(articles.c.enrich_status == "unmatched", articles.c.enrich_next <= run_date)),
            )).order_by(articles.c.id)).all()
        doi_due = [dict(r._mapping) for r in rows if r.enrich_status in ("pending", "unmatched")]
        title_due = [dict(r._mapping) for r in rows if r.enrich_status == "doi_missed"]
        return doi_due, title_due

    def mark_doi_missed(self, ids: list[str]):
        with self.engine.begin() as conn:
            for chunk in _chunks(ids, 500):
                conn.execute(update(articles).where(articles.c.id.in_(chunk)).values(enrich_status="doi_missed"))

    def mark_unmatched(self, article_id: str, run_date: dt.date):
        with self.engine.begin() as conn:
            attempts = (conn.execute(select(articles.c.enrich_attempts).where(articles.c.id == article_id))
                        .scalar() or 0) + 1
            conn.execute(update(articles).where(articles.c.id == article_id).values(
                enrich_status="unmatched", enrich_attempts=attempts,
                enrich_next=matching.next_attempt(run_date, attempts)))

    def save_match(self, article_id: str, work: dict, matched_by: str, score: float | None, run_date: dt.date):
        w = matching.work_row(work)
        with self.engine.begin() as conn:
            for t in (work_institutions, work_authorships, works):
                conn.execute(delete(t).where(t.c.article_id == article_id))
            conn.execute(insert(works).values(
                article_id=article_id, openalex_id=w["openalex_id"] or "", mag_id=w["mag_id"], doi=w["doi"],
                display_name=w["display_name"], publication_date=w["publication_date"],
                cited_by_count=w["cited_by_count"], topics=json.dumps(w["topics"], ensure_ascii=False),
                matched_by=matched_by, match_score=score, fetched_on=run_date))
            auth = [{"article_id": article_id, "position": a["position"], "author_id": a["author_id"],
                     "name": a["name"]} for a in w["authorships"]]
            inst = [{"article_id": article_id, "author_position": a["position"], "position": i,
                     **ins} for a in w["authorships"] for i, ins in enumerate(a["institutions"])]
            if auth:
                conn.execute(insert(work_authorships), auth)
            if inst:
                conn.execute(insert(work_institutions), inst)
            conn.execute(update(articles).where(articles.c.id == article_id).values(
                enrich_status="matched", enrich_attempts=articles.c.enrich_attempts + 1,
                enrich_next=None, enriched_on=run_date))

    # ------------------------------------------------------------ export and inspection

    def iter_enriched(self, batch: int = 1000):
        """Matched live articles with their authors and work, ordered by id (for the export)."""
        with self.engine.connect() as conn:
            last = ""
            while True:
                rows = conn.execute(select(articles, works).join(works, works.c.article_id == articles.c.id)
                                    .where(and_(articles.c.deleted.is_(False), articles.c.id > last))
                                    .order_by(articles.c.id).limit(batch)).all()
                if not rows:
                    return
                ids = [r.id for r in rows]
                auth, wa, wi = {}, {}, {}
                for a in conn.execute(select(authors).where(authors.c.article_id.in_(ids))
                                      .order_by(authors.c.article_id, authors.c.position)):
                    auth.setdefault(a.article_id, []).append(
                        {"keyname": a.keyname, "forenames": a.forenames, "suffix": a.suffix,
                         "affiliation": a.affiliation})
                for i in conn.execute(select(work_institutions).where(work_institutions.c.article_id.in_(ids))
                                      .order_by(work_institutions.c.article_id, work_institutions.c.author_position,
                                                work_institutions.c.position)):
                    wi.setdefault((i.article_id, i.author_position), []).append(
                        {"openalex_id": i.openalex_id, "ror": i.ror, "name": i.name, "country_code": i.country_code})
                for a in conn.execute(select(work_authorships).where(work_authorships.c.article_id.in_(ids))
                                      .order_by(work_authorships.c.article_id, work_authorships.c.position)):
                    wa.setdefault(a.article_id, []).append(
                        {"author_id": a.author_id, "name": a.name, "institutions": wi.get((a.article_id, a.position), [])})
                for r in rows:
                    m = r._mapping
                    yield {
                        "id": r.id, "title": r.title, "abstract": r.abstract,
                        "categories": (r.categories or "").split(), "created": _iso(r.created),
                        "updated": _iso(r.updated), "datestamp": _iso(r.datestamp), "doi": r.doi,
                        "journal_ref": r.journal_ref, "comments": r.comments, "license": r.license,
                        "authors": auth.get(r.id, []),
                        "openalex": {
                            "id": m[works.c.openalex_id], "mag_id": m[works.c.mag_id], "doi": m[works.c.doi],
                            "display_name": m[works.c.display_name],
                            "publication_date": m[works.c.publication_date],
                            "cited_by_count": m[works.c.cited_by_count],
                            "topics": json.loads(m[works.c.topics] or "[]"),
                            "matched_by": m[works.c.matched_by], "match_score": m[works.c.match_score],
                            "authorships": wa.get(r.id, []),
                        },
                    }
                last = ids[-1]

    def counts(self) -> dict:
        with self.engine.connect() as conn:
            out = {t.name: conn.execute(select(func.count()).select_from(t)).scalar()
                   for t in (articles, authors, works, work_authorships, work_institutions)}
            for status, n in conn.execute(select(articles.c.enrich_status, func.count())
                                          .where(articles.c.deleted.is_(False))
                                          .group_by(articles.c.enrich_status)):
                out[f"status_{status}"] = n
            out["deleted"] = conn.execute(select(func.count()).select_from(articles)
                                          .where(articles.c.deleted.is_(True))).scalar()
        return out

    def snapshot(self) -> list[tuple]:
        """Every article row (without enrichment bookkeeping) and author row, sorted: for equality tests."""
        cols = [c for c in articles.c if c.name not in ("enrich_attempts", "enrich_next", "enriched_on")]
        with self.engine.connect() as conn:
            a = [tuple(r) for r in conn.execute(select(*cols).order_by(articles.c.id))]
            b = [tuple(r) for r in conn.execute(select(authors).order_by(authors.c.article_id, authors.c.position))]
            w = [tuple(r) for r in conn.execute(select(works).order_by(works.c.article_id))]
        return a + b + w


def _article_row(r: dict) -> dict:
    """Every column present (executemany needs the same keys); a tombstone has only id + datestamp."""
    row = {"id": r["id"], "datestamp": _d(r.get("datestamp")), "deleted": bool(r.get("deleted"))}
    live = not r.get("deleted")
    for f in records.ARTICLE_FIELDS:
        if f != "datestamp":
            v = r.get(f) if live else None
            row[f] = _d(v) if f in ("created", "updated") else v
    row["version"] = _d(records.version_of(r)) if live else None
    return row


def _chunks(items, n):
    for i in range(0, len(items), n):
        yield items[i:i + n]
