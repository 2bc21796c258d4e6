"""The store: tables and queries, SQLAlchemy 2 Core on SQLite (default), PostgreSQL or MySQL/MariaDB.

Tables: articles (keyed by arXiv id), authors, works (the matched OpenAlex work per article),
work_authorships, work_institutions, api_ledger (calls and micro-dollars per UTC day and kind) and
run_lock (the run that holds the store). What a record does to a stored article is decided in
`records`, what to look up in `matching`, what a call costs in `ledger`: this module only reads
and writes rows. Upserts are portable (select the page's ids, then insert/update in one
transaction); the run lock guarantees a single writer.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from . import records

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
    Column("title_searches", Integer, nullable=False, default=0),
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

api_ledger = Table(
    "api_ledger", metadata,
    Column("day", String(10), primary_key=True),       # UTC day of the call: 2026-11-20
    Column("kind", String(16), primary_key=True),      # filter | search | single
    Column("calls", Integer, nullable=False, default=0),
    Column("cost_micro", BigInteger, nullable=False, default=0),
)

run_lock = Table(
    "run_lock", metadata,
    Column("name", String(64), primary_key=True),      # arxlive-<mode>
    Column("owner", String(190), nullable=False),      # host:pid:start, unique per run
    Column("host", String(190), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started", String(32), nullable=False),
    Column("heartbeat", Float, nullable=False),        # epoch seconds of the holder's last beat
    Column("what", Text),
)

# Columns added after a store was first created: (table, column, DDL type and default).
_ADDED_COLUMNS = (("articles", "title_searches", "INTEGER NOT NULL DEFAULT 0"),)


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

    def create(self) -> Store:
        metadata.create_all(self.engine)
        have = inspect(self.engine)
        with self.engine.begin() as conn:
            for table, column, ddl in _ADDED_COLUMNS:
                if column not in {c["name"] for c in have.get_columns(table)}:
                    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))
        return self

    def close(self):
        self.engine.dispose()

    # ------------------------------------------------------------ load

    def stored_states(self, ids: list[str]) -> dict[str, dict]:
        """{id: {version, datestamp, deleted, doi}} of the stored articles among ids."""
        out = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(ids, 500):
                for row in conn.execute(select(articles.c.id, articles.c.version, articles.c.datestamp,
                                               articles.c.deleted, articles.c.doi)
                                        .where(articles.c.id.in_(chunk))):
                    out[row.id] = {"version": _iso(row.version), "datestamp": _iso(row.datestamp),
                                   "deleted": bool(row.deleted), "doi": row.doi}
        return out

    def apply(self, plan: records.LoadPlan):
        """Write one page's plan in one transaction."""
        with self.engine.begin() as conn:
            if plan.inserts:
                conn.execute(insert(articles), [_article_row(r) for r in plan.inserts])
            for r in plan.updates:
                values = {k: v for k, v in _article_row(r).items() if k != "id"}
                if r["doi_changed"]:
                    values.update(enrich_status="pending", enrich_next=None)
                conn.execute(update(articles).where(articles.c.id == r["id"]).values(**values))
            if plan.deletes:
                conn.execute(update(articles).where(articles.c.id == bindparam("b_id"))
                             .values(deleted=True, datestamp=bindparam("b_datestamp")),
                             [{"b_id": d["id"], "b_datestamp": _d(d["datestamp"])} for d in plan.deletes])
            for chunk in _chunks([r["id"] for r in plan.updates], 500):
                conn.execute(delete(authors).where(authors.c.article_id.in_(chunk)))
            author_rows = [{"article_id": r["id"], "position": pos, **a}
                           for r in plan.inserts + plan.updates for pos, a in enumerate(r.get("authors") or [])]
            if author_rows:
                conn.execute(insert(authors), author_rows)

    # ------------------------------------------------------------ the API ledger

    def ledger_spent(self, day: str, month: str) -> tuple[int, int]:
        """Micro-dollars spent on `day` and in `month` (YYYY-MM)."""
        with self.engine.connect() as conn:
            spent_day = conn.execute(select(func.coalesce(func.sum(api_ledger.c.cost_micro), 0))
                                     .where(api_ledger.c.day == day)).scalar()
            spent_month = conn.execute(select(func.coalesce(func.sum(api_ledger.c.cost_micro), 0))
                                       .where(api_ledger.c.day.like(f"{month}-%"))).scalar()
        return int(spent_day), int(spent_month)

    def ledger_add(self, day: str, kind: str, cost_micro: int):
        with self.engine.begin() as conn:
            n = conn.execute(update(api_ledger).where(and_(api_ledger.c.day == day, api_ledger.c.kind == kind))
                             .values(calls=api_ledger.c.calls + 1,
                                     cost_micro=api_ledger.c.cost_micro + cost_micro)).rowcount
            if not n:
                conn.execute(insert(api_ledger).values(day=day, kind=kind, calls=1, cost_micro=cost_micro))

    # ------------------------------------------------------------ enrichment

    def due_articles(self, run_date: dt.date) -> list[dict]:
        """Live articles never looked up, or unmatched and due by run_date."""
        cols = (articles.c.id, articles.c.title, articles.c.doi, articles.c.created, articles.c.datestamp,
                articles.c.enrich_status, articles.c.enrich_attempts, articles.c.enrich_next,
                articles.c.title_searches)
        with self.engine.connect() as conn:
            rows = conn.execute(select(*cols).where(and_(
                articles.c.deleted.is_(False),
                or_(articles.c.enrich_status == "pending",
                    and_(articles.c.enrich_status == "unmatched", articles.c.enrich_next <= run_date)),
            )).order_by(articles.c.id)).all()
        return [dict(r._mapping) for r in rows]

    def mark_unmatched(self, article_id: str, next_date: dt.date, searched: bool):
        with self.engine.begin() as conn:
            conn.execute(update(articles).where(articles.c.id == article_id).values(
                enrich_status="unmatched", enrich_attempts=articles.c.enrich_attempts + 1,
                enrich_next=next_date, title_searches=articles.c.title_searches + int(searched)))

    def save_match(self, article_id: str, w: dict, matched_by: str, score: float | None, run_date: dt.date,
                   searched: bool):
        """Store the matched work `w` (matching.work_row's form) in place of any earlier one."""
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
                enrich_next=None, enriched_on=run_date, title_searches=articles.c.title_searches + int(searched)))

    # ------------------------------------------------------------ the run lock

    def lock_insert(self, row: dict) -> bool:
        """Create the lock row; False when another row holds the name."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(run_lock).values(**row))
            return True
        except IntegrityError:
            return False

    def lock_holder(self, name: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(run_lock).where(run_lock.c.name == name)).first()
        return dict(row._mapping) if row else None

    def lock_replace(self, name: str, old_owner: str, row: dict) -> bool:
        """Take the row over from old_owner; False when it changed hands meanwhile."""
        with self.engine.begin() as conn:
            return conn.execute(update(run_lock).where(and_(run_lock.c.name == name, run_lock.c.owner == old_owner))
                                .values(**row)).rowcount == 1

    def lock_beat(self, name: str, owner: str, now: float) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(update(run_lock).where(and_(run_lock.c.name == name, run_lock.c.owner == owner))
                                .values(heartbeat=now)).rowcount == 1

    def lock_delete(self, name: str, owner: str):
        with self.engine.begin() as conn:
            conn.execute(delete(run_lock).where(and_(run_lock.c.name == name, run_lock.c.owner == owner)))

    def advisory_lock(self, name: str):
        """A session-level advisory lock on a server database (PostgreSQL pg_try_advisory_lock, MySQL
        GET_LOCK): the open connection that holds it, or None when another session does. The server
        releases it when that connection ends, so a dead run cannot leave it behind."""
        conn = self.engine.connect()
        if self.engine.dialect.name == "postgresql":
            got = conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:n))"), {"n": name}).scalar()
        else:
            got = conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": name}).scalar() == 1
        conn.commit()
        if got:
            return conn
        conn.close()
        return None

    def advisory_unlock(self, conn, name: str):
        """Release the lock and the connection (which goes back to the pool: the lock must not go with it)."""
        if self.engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": name})
        else:
            conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})
        conn.commit()
        conn.close()

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
        cols = [c for c in articles.c if c.name not in ("enrich_attempts", "enrich_next", "enriched_on", "title_searches")]
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
