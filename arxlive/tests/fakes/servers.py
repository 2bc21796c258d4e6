"""Fake arXiv OAI-PMH and OpenAlex servers: real HTTP on 127.0.0.1, the real formats, faults on demand.

Control endpoints on both servers (for tests and demos):
  GET  /_stats          {"requests": n, "calls": n, "log": [{"path", "params", "status", "page"}...]}
  POST /_faults         body: fault specs separated by commas or newlines (replaces the current set)
  POST /_reset          clear the log, the counters and the faults

Fault spec: kind[=value][@page][*times]   (times default 1; *inf = every time)
  OAI:      503[=retry_after] 429[=retry_after] drop malformed badtoken nomatch badargument deleted
  OpenAlex: 503[=retry_after] 429[=retry_after] drop malformed 500 badworks
  `@page` applies the fault only to the n-th page of a harvest (1 = the request without token).
  `deleted` is a mode: every 7th record is then served as a deleted header.
  `badworks` is a mode: every answer's works come mistyped (see FakeOpenAlex.mangle) next to hostile
  entries (not objects, script in the id, a huge title).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import unicodedata
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from . import fixtures

OAI_KINDS = {"503", "429", "drop", "malformed", "badtoken", "nomatch", "badargument", "deleted"}
# OpenAlex refuses longer request URLs with 400 "Request URL too long".
MAX_URL_BYTES = 4094
OPENALEX_KINDS = {"503", "429", "drop", "malformed", "500", "badworks"}
MODES = {"deleted", "badworks"}


@dataclass
class Fault:
    kind: str
    value: str | None = None
    page: int | None = None
    times: float = 1

    @classmethod
    def parse(cls, spec: str, allowed: set[str]) -> Fault:
        m = re.fullmatch(r"\s*([a-z0-9]+)(?:=([^@*]+))?(?:@(\d+))?(?:\*(\d+|inf))?\s*", spec)
        if not m or m.group(1) not in allowed:
            raise ValueError(f"bad fault spec {spec!r}; kinds: {', '.join(sorted(allowed))}")
        times = float("inf") if m.group(4) == "inf" else int(m.group(4) or 1)
        return cls(m.group(1), m.group(2), int(m.group(3)) if m.group(3) else None, times)


class FaultSet:
    def __init__(self, allowed: set[str]):
        self.allowed = allowed
        self.faults: list[Fault] = []
        self.lock = threading.Lock()

    def set(self, specs: str | list[str]):
        if isinstance(specs, str):
            specs = [s for s in re.split(r"[,\n]", specs) if s.strip()]
        parsed = [Fault.parse(s, self.allowed) for s in specs]
        with self.lock:
            self.faults = parsed

    def mode(self, kind: str) -> bool:
        return any(f.kind == kind for f in self.faults)

    def take(self, page: int | None, kinds: set[str] | None = None) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.kind in MODES or (kinds and f.kind not in kinds):
                    continue
                if f.page is not None and f.page != page:
                    continue
                if f.times <= 0:
                    continue
                f.times -= 1
                return f
        return None


class _Base(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, handler, allowed):
        super().__init__(("127.0.0.1", port), handler)
        self.faults = FaultSet(allowed)
        self.log: list[dict] = []
        self.calls = 0
        self.state_lock = threading.Lock()
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    def record(self, entry: dict):
        with self.state_lock:
            self.log.append(entry)

    def reset(self):
        with self.state_lock:
            self.log.clear()
            self.calls = 0
        self.faults.set([])

    def start(self) -> _Base:
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=type(self).__name__, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_version = "arxlive-fake/0.1"

    def log_message(self, fmt, *args):  # quiet; the server keeps its own log
        pass

    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None, drop: bool = False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if drop:
            # half the promised body, then the connection goes away
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                import socket
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)

    def _control(self) -> bool:
        path = urlsplit(self.path).path
        if path == "/_stats" and self.command == "GET":
            with self.server.state_lock:
                body = json.dumps({"requests": len(self.server.log), "calls": self.server.calls,
                                   "log": list(self.server.log)}).encode()
            self._send(200, body, "application/json")
            return True
        if path in ("/_faults", "/_reset") and self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length).decode() if length else ""
            if path == "/_reset":
                self.server.reset()
            try:
                if path == "/_faults" or data.strip():
                    self.server.faults.set(data)
            except ValueError as exc:
                self._send(400, str(exc).encode(), "text/plain")
                return True
            self._send(200, b"ok\n", "text/plain")
            return True
        return False

    def do_POST(self):
        if not self._control():
            self._send(404, b"not found\n", "text/plain")


# ---------------------------------------------------------------- OAI-PMH

def _tok_encode(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).decode().rstrip("=")


def _tok_decode(t: str) -> dict | None:
    try:
        return json.loads(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None


def _oai_record_xml(rec: dict, deleted: bool) -> str:
    sets = "".join(f"<setSpec>{escape(s)}</setSpec>" for s in rec["sets"])
    status = ' status="deleted"' if deleted else ""
    header = (f"<header{status}><identifier>oai:arXiv.org:{rec['id']}</identifier>"
              f"<datestamp>{rec['datestamp']}</datestamp>{sets}</header>")
    if deleted:
        return f"<record>{header}</record>"
    authors = []
    for a in rec["authors"]:
        parts = [f"<keyname>{escape(a['keyname'])}</keyname>"]
        if a["forenames"]:
            parts.append(f"<forenames>{escape(a['forenames'])}</forenames>")
        if a["suffix"]:
            parts.append(f"<suffix>{escape(a['suffix'])}</suffix>")
        if a["affiliation"]:
            parts.append(f"<affiliation>{escape(a['affiliation'])}</affiliation>")
        authors.append("<author>" + "".join(parts) + "</author>")
    opt = ""
    for tag, key in (("comments", "comments"), ("journal-ref", "journal_ref"), ("doi", "doi"),
                     ("license", "license")):
        if rec[key]:
            opt += f"<{tag}>{escape(rec[key])}</{tag}>"
    upd = f"<updated>{rec['updated']}</updated>" if rec["updated"] else ""
    meta = (f'<arXiv xmlns="http://arxiv.org/OAI/arXiv/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="http://arxiv.org/OAI/arXiv/ http://arxiv.org/OAI/arXiv.xsd">'
            f"<id>{rec['id']}</id><created>{rec['created']}</created>{upd}"
            f"<authors>{''.join(authors)}</authors><title>{escape(rec['raw_title'])}</title>"
            f"<categories>{rec['categories']}</categories>{opt}"
            f"<abstract>{escape(rec['raw_abstract'])}</abstract></arXiv>")
    return f"<record>{header}<metadata>{meta}</metadata></record>"


class FakeOAI(_Base):
    """arXiv's OAI-PMH endpoint at /oai: ListRecords, metadataPrefix=arXiv, from/until/set, tokens."""

    def __init__(self, n_records: int, port: int = 0, page_size: int = 100,
                 base_date: dt.date = fixtures.BASE_DATE, days: int = 2):
        super().__init__(port, OAIHandler, OAI_KINDS)
        self.n = n_records
        self.page_size = page_size
        self.base_date, self.days = base_date, days
        self._records = None
        self._lists: dict[tuple, list[dict]] = {}
        self._gen_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/oai"

    def records(self) -> list[dict]:
        with self._gen_lock:
            if self._records is None:
                recs = [fixtures.record(i, self.base_date, self.days) for i in range(self.n)]
                recs.sort(key=lambda r: (r["datestamp"], r["id"]))
                self._records = recs
            return self._records

    def listing(self, frm: str | None, until: str | None, oai_set: str | None) -> list[dict]:
        key = (frm, until, oai_set)
        if key not in self._lists:
            self._lists[key] = [r for r in self.records()
                                if (not frm or r["datestamp"] >= frm) and (not until or r["datestamp"] <= until)
                                and (not oai_set or any(s == oai_set or s.startswith(oai_set + ":")
                                                        for s in r["sets"]))]
        return self._lists[key]


class OAIHandler(_Handler):
    def do_GET(self):
        if self._control():
            return
        parts = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        srv: FakeOAI = self.server
        token = params.get("resumptionToken")
        tok = _tok_decode(token) if token else None
        page = (tok["c"] // srv.page_size + 1) if tok and "c" in tok else 1
        status = 200
        try:
            if parts.path != "/oai":
                status = 404
                return self._send(404, b"not found\n", "text/plain")
            fault = srv.faults.take(page)
            if fault and fault.kind in ("503", "429"):
                status = int(fault.kind)
                headers = {"Retry-After": fault.value or "1"}
                return self._send(status, b"<html><body>Retry later</body></html>", "text/html", headers)
            body_xml, status = self._list_records(params, token, tok, fault)
            body = body_xml.encode("utf-8")
            if fault and fault.kind == "malformed":
                body = body[: len(body) * 2 // 3]  # truncated mid-element: not well-formed
            self._send(200, body, "text/xml; charset=utf-8", drop=bool(fault and fault.kind == "drop"))
        finally:
            srv.record({"path": parts.path, "params": params, "status": status, "page": page})

    def _envelope(self, params: dict, inner: str) -> str:
        srv: FakeOAI = self.server
        attrs = "".join(f' {k}="{escape(v)}"' for k, v in params.items() if k in (
            "verb", "metadataPrefix", "from", "until", "set", "resumptionToken"))
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                'xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/ '
                'http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">\n'
                f"<responseDate>{now}</responseDate>\n<request{attrs}>{escape(srv.url)}</request>\n{inner}\n</OAI-PMH>\n")

    def _error(self, params, code, msg):
        return self._envelope(params, f'<error code="{code}">{escape(msg)}</error>'), 200

    def _list_records(self, params, token, tok, fault):
        srv: FakeOAI = self.server
        if params.get("verb") != "ListRecords":
            return self._error(params, "badVerb", "only ListRecords is implemented by this fake")
        if fault and fault.kind == "badargument":
            return self._error(params, "badArgument", "Illegal argument (fault injected)")
        if token is not None:
            if set(params) != {"verb", "resumptionToken"}:
                return self._error(params, "badArgument", "resumptionToken is an exclusive argument")
            if tok is None or (fault and fault.kind == "badtoken"):
                return self._error(params, "badResumptionToken", f"Invalid or expired resumptionToken {token}")
            frm, until, oai_set, cursor = tok.get("f"), tok.get("u"), tok.get("s"), tok["c"]
        else:
            if params.get("metadataPrefix") != "arXiv":
                return self._error(params, "cannotDisseminateFormat", "metadataPrefix must be arXiv here")
            frm, until, oai_set, cursor = params.get("from"), params.get("until"), params.get("set"), 0
            for d in (frm, until):
                if d and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", d):
                    return self._error(params, "badArgument", f"bad date {d}")
        if fault and fault.kind == "nomatch":
            return self._error(params, "noRecordsMatch", "No records match (fault injected)")
        listing = srv.listing(frm, until, oai_set)
        if not listing:
            return self._error(params, "noRecordsMatch", "No records match the request")
        chunk = listing[cursor: cursor + srv.page_size]
        deleted_mode = srv.faults.mode("deleted")
        recs = "".join(_oai_record_xml(r, r["deleted"] or (deleted_mode and r["i"] % 7 == 0)) for r in chunk)
        nxt = cursor + srv.page_size
        size = len(listing)
        if nxt < size:
            new_tok = _tok_encode({"f": frm, "u": until, "s": oai_set, "c": nxt})
            rt = f'<resumptionToken cursor="{cursor}" completeListSize="{size}">{new_tok}</resumptionToken>'
        else:
            rt = f'<resumptionToken cursor="{cursor}" completeListSize="{size}"/>'
        return self._envelope(params, f"<ListRecords>{recs}{rt}</ListRecords>"), 200


# ---------------------------------------------------------------- OpenAlex

def _words(s: str) -> list[str]:
    s = unicodedata.normalize("NFKD", s or "")
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    return [w for w in re.split(r"[^\w]+", s) if w]


class FakeOpenAlex(_Base):
    """GET /works with filter=doi:A|B, filter=title.search:..., search=..., per-page, api_key, mailto."""

    def __init__(self, n_records: int, port: int = 0, api_key: str | None = None, mailto: str | None = None,
                 base_date: dt.date = fixtures.BASE_DATE, days: int = 2):
        super().__init__(port, OpenAlexHandler, OPENALEX_KINDS)
        self.api_key, self.mailto = api_key, mailto
        self.by_doi: dict[str, dict] = {}
        self.index: dict[str, set[int]] = {}
        self.works: list[dict] = []
        # visible(work) -> bool: which works OpenAlex has indexed "now" (the benchmark's clock); all by default
        self.visible = lambda work: True
        for i in range(n_records):
            for w in fixtures.works_for(i, base_date, days):
                self.add_work(w)
        self.kinds: dict[str, int] = {}

    def add_work(self, w: dict):
        n = len(self.works)
        self.works.append(w)
        if w["doi"]:
            self.by_doi[w["doi"].lower().removeprefix("https://doi.org/")] = w
        for word in set(_words(w["display_name"])):
            self.index.setdefault(word, set()).add(n)

    @staticmethod
    def mangle(results: list) -> list:
        """The `badworks` answer: each work with one field of the wrong type, and hostile entries."""
        wrong = [("doi", 7), ("ids", "W1"), ("publication_date", "yesterday"), ("cited_by_count", "many"),
                 ("authorships", [{"author": "Ann", "institutions": []}]), ("topics", {"id": 1})]
        out = [dict(w, **dict([wrong[n % len(wrong)]])) for n, w in enumerate(results)]
        return out + ["<script>alert(1)</script>", None,
                      {"id": "javascript:alert(1)", "display_name": "x" * 100000, "doi": "10.1/x"}]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def search(self, query: str) -> list[dict]:
        """Every visible work the query finds, best first: a boolean query (see BooleanQuery) by its
        rules, other text by relevance (works holding at least a third of its words)."""
        if BooleanQuery.applies(query):
            return [self.works[n] for n in sorted(BooleanQuery(self, query).evaluate())
                    if self.visible(self.works[n])]
        q = set(_words(query))
        if not q:
            return []
        hits: dict[int, int] = {}
        for w in q:
            for n in self.index.get(w, ()):
                hits[n] = hits.get(n, 0) + 1
        ranked = sorted((n for n, c in hits.items() if c >= max(1, len(q) // 3) and self.visible(self.works[n])),
                        key=lambda n: (-hits[n], n))
        return [self.works[n] for n in ranked]


# Elasticsearch's English stop words: OpenAlex's search ignores them in a query.
STOP_WORDS = frozenset("a an and are as at be but by for if in into is it no not of on or such that the their "
                       "then there these they this to was will with".split())
_BOOL_TOKEN = re.compile(r'\(|\)|"[^"]*"|[^\s()"]+')


class QueryError(ValueError):
    """A boolean query OpenAlex would refuse (unbalanced parentheses, a dangling operator)."""


class BooleanQuery:
    """OpenAlex's boolean search syntax: AND, OR, NOT (upper case), parentheses, "phrases";
    words with no operator between them are AND-ed. Evaluated over the fake's word index."""

    def __init__(self, srv: FakeOpenAlex, query: str):
        self.srv, self.tokens, self.pos = srv, _BOOL_TOKEN.findall(query), 0

    @staticmethod
    def applies(query: str) -> bool:
        return any(t in ("AND", "OR", "NOT") for t in _BOOL_TOKEN.findall(query))

    # A term of stop words only constrains nothing (OpenAlex drops it): None below, not an empty set.

    def evaluate(self) -> set[int]:
        hits = self._or()
        if self.pos != len(self.tokens):
            raise QueryError(f"unexpected {self.tokens[self.pos]!r} in the boolean query")
        return hits or set()

    def _peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _or(self) -> set[int] | None:
        hits = self._and()
        while self._peek() == "OR":
            self.pos += 1
            more = self._and()
            hits = more if hits is None else hits if more is None else hits | more
        return hits

    def _and(self) -> set[int] | None:
        hits = self._not()
        while self._peek() not in (None, ")", "OR"):
            if self._peek() == "AND":
                self.pos += 1
            more = self._not()
            hits = more if hits is None else hits if more is None else hits & more
        return hits

    def _not(self) -> set[int] | None:
        if self._peek() == "NOT":
            self.pos += 1
            hits = self._not()
            return None if hits is None else set(range(len(self.srv.works))) - hits
        return self._term()

    def _term(self) -> set[int] | None:
        tok = self._peek()
        if tok in (None, ")", "AND", "OR"):
            raise QueryError("a boolean operator without a term")
        self.pos += 1
        if tok == "(":
            hits = self._or()
            if self._peek() != ")":
                raise QueryError("unbalanced parentheses in the boolean query")
            self.pos += 1
            return hits
        words = [w for w in _words(tok.strip('"')) if w not in STOP_WORDS]
        if not words:
            return None
        hits = set.intersection(*(self.srv.index.get(w, set()) for w in words))
        if tok.startswith('"'):    # a phrase: its words next to each other, in order
            phrase = " ".join(words)
            hits = {n for n in hits if f" {phrase} " in " " + " ".join(
                w for w in _words(self.srv.works[n]["display_name"]) if w not in STOP_WORDS) + " "}
        return hits


class OpenAlexHandler(_Handler):
    def do_GET(self):
        if self._control():
            return
        parts = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        srv: FakeOpenAlex = self.server
        status = 200
        shown = {k: ("***" if k == "api_key" else v) for k, v in params.items()}
        try:
            if parts.path != "/works":
                status = 404
                return self._send(404, b'{"error": "not found"}', "application/json")
            size = len(f"http://{self.headers.get('Host', '')}{self.path}".encode())
            if size > MAX_URL_BYTES:
                status = 400
                message = f"Your request URL is {size} bytes, over the {MAX_URL_BYTES}-byte limit"
                return self._send(400, json.dumps({"error": "Request URL too long", "message": message}).encode(),
                                  "application/json")
            with srv.state_lock:
                srv.calls += 1
            if srv.api_key and params.get("api_key") != srv.api_key:
                status = 403
                return self._send(403, b'{"error": "Forbidden", "message": "invalid api_key"}', "application/json")
            if srv.mailto and params.get("mailto") != srv.mailto:
                status = 400
                return self._send(400, b'{"error": "mailto required"}', "application/json")
            fault = srv.faults.take(None)
            if fault and fault.kind in ("503", "429", "500"):
                status = int(fault.kind)
                headers = {"Retry-After": fault.value} if fault.value else {}
                return self._send(status, b'{"error": "slow down"}', "application/json", headers)
            try:
                per_page = int(params.get("per-page", params.get("per_page", "25")))
            except ValueError:
                per_page = 0
            if not 1 <= per_page <= 200:
                status = 400
                return self._send(400, b'{"error": "per-page must be between 1 and 200"}', "application/json")
            try:
                results, kind = self._query(params)
            except QueryError as exc:
                results, kind = f"Invalid query: {exc}", None
            if kind is None:
                status = 400
                return self._send(400, json.dumps({"error": results}).encode(), "application/json")
            with srv.state_lock:
                srv.kinds[kind] = srv.kinds.get(kind, 0) + 1
            count, results = len(results), results[:per_page]
            if srv.faults.mode("badworks"):
                results = srv.mangle(results)
            body = json.dumps({"meta": {"count": count, "db_response_time_ms": 1, "page": 1,
                                        "per_page": per_page}, "results": results,
                               "group_by": []}, ensure_ascii=False).encode()
            if fault and fault.kind == "malformed":
                body = body[: len(body) // 2]
            self._send(200, body, "application/json", drop=bool(fault and fault.kind == "drop"))
        finally:
            srv.record({"path": parts.path, "params": shown, "status": status, "page": None})

    def _query(self, params):
        srv: FakeOpenAlex = self.server
        if "search" in params:
            return srv.search(params["search"]), "search"
        flt = params.get("filter", "")
        if not flt:
            return list(srv.works), "list"
        key, _, value = flt.partition(":")
        if "," in value:
            return "this fake supports one filter at a time", None
        if key == "doi":
            vals = value.split("|")
            if len(vals) > 100:
                return "Maximum of 100 values in an OR filter", None
            out = []
            for v in vals:
                w = srv.by_doi.get(v.strip().lower().removeprefix("https://doi.org/"))
                if w is not None and w not in out and srv.visible(w):
                    out.append(w)
            return out, "doi"
        if key in ("title.search", "display_name.search"):
            return srv.search(value), "title"
        return f"unsupported filter {key}", None


def start_fakes(n_records: int, oai_port: int = 0, openalex_port: int = 0, page_size: int = 100,
                api_key: str | None = None, mailto: str | None = None,
                base_date: dt.date = fixtures.BASE_DATE, days: int = 2) -> tuple[FakeOAI, FakeOpenAlex]:
    oai = FakeOAI(n_records, oai_port, page_size, base_date, days).start()
    oa = FakeOpenAlex(n_records, openalex_port, api_key, mailto, base_date, days).start()
    return oai, oa
