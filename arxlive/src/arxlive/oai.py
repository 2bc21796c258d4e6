"""OAI-PMH ListRecords with metadataPrefix=arXiv: request parameters and response parsing (pure), and
OaiClient, which sends them over one polite connection (built from the config like OpenAlexClient)."""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field

from lxml import etree

from .config import Config
from .http import Policy, PoliteSession, TransientError

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
ARXIV_NS = "http://arxiv.org/OAI/arXiv/"
NS = {"o": OAI_NS, "a": ARXIV_NS}

# No DTDs, no entities, no network: the payload is data, not instructions.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


class MalformedResponse(ValueError):
    """The body is not the OAI-PMH XML we expect (retryable: a truncated or garbled page)."""


@dataclass
class Page:
    records: list[dict]
    token: str | None                # None or "" = last page
    response_date: str | None
    error_code: str | None = None
    error_message: str | None = None
    complete_list_size: int | None = None
    cursor: int | None = None
    raw_size: int = 0
    extra: dict = field(default_factory=dict)


def list_records_params(window: tuple[str, str], oai_set: str | None, token: str | None) -> dict:
    """The query of one ListRecords request for the datestamps from..until (inclusive, as OAI-PMH
    defines them); a resumptionToken goes alone with the verb."""
    if token:
        return {"verb": "ListRecords", "resumptionToken": token}
    params = {"verb": "ListRecords", "metadataPrefix": "arXiv", "from": window[0], "until": window[1]}
    if oai_set:
        params["set"] = oai_set
    return params


def clean_text(text: str | None) -> str | None:
    """Collapse line breaks and runs of blanks (titles/abstracts are hard-wrapped); keep TeX."""
    if text is None:
        return None
    text = re.sub(r"\s+", " ", text).strip()
    return text or None


def arxiv_id_from_identifier(identifier: str) -> str:
    """oai:arXiv.org:2506.00042 -> 2506.00042 ; oai:arXiv.org:hep-th/9901001 -> hep-th/9901001."""
    prefix = "oai:arXiv.org:"
    return identifier[len(prefix):] if identifier.startswith(prefix) else identifier.rsplit(":", 1)[-1]


def _text(el, path):
    found = el.find(path, NS)
    return None if found is None else clean_text("".join(found.itertext()))


def parse_record(rec) -> dict:
    header = rec.find("o:header", NS)
    identifier = _text(header, "o:identifier") or ""
    out = {
        "id": arxiv_id_from_identifier(identifier),
        "datestamp": _text(header, "o:datestamp"),
        "sets": [clean_text(s.text) for s in header.findall("o:setSpec", NS) if s.text],
        "deleted": header.get("status") == "deleted",
    }
    meta = rec.find("o:metadata/a:arXiv", NS)
    if out["deleted"] or meta is None:
        out["deleted"] = True
        return out
    authors = []
    for a in meta.findall("a:authors/a:author", NS):
        affs = [clean_text("".join(x.itertext())) for x in a.findall("a:affiliation", NS)]
        authors.append({
            "keyname": _text(a, "a:keyname"),
            "forenames": _text(a, "a:forenames"),
            "suffix": _text(a, "a:suffix"),
            "affiliation": "; ".join(x for x in affs if x) or None,
        })
    out.update({
        "id": _text(meta, "a:id") or out["id"],
        "created": _text(meta, "a:created"),
        "updated": _text(meta, "a:updated"),
        "title": _text(meta, "a:title"),
        "abstract": _text(meta, "a:abstract"),
        "categories": _text(meta, "a:categories"),
        "comments": _text(meta, "a:comments"),
        "journal_ref": _text(meta, "a:journal-ref"),
        "doi": _text(meta, "a:doi"),
        "license": _text(meta, "a:license"),
        "authors": authors,
    })
    return out


def parse_page(body: bytes) -> Page:
    """Parse one OAI-PMH response. Raises MalformedResponse when it is not OAI-PMH XML."""
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedResponse(f"malformed XML ({len(body)} bytes): {exc}") from None
    if root.tag != f"{{{OAI_NS}}}OAI-PMH":
        raise MalformedResponse(f"not an OAI-PMH document (root element {root.tag!r})")
    response_date = _text(root, "o:responseDate")
    err = root.find("o:error", NS)
    if err is not None:
        return Page([], None, response_date, err.get("code"), clean_text("".join(err.itertext())),
                    raw_size=len(body))
    lr = root.find("o:ListRecords", NS)
    if lr is None:
        raise MalformedResponse("OAI-PMH response without ListRecords or error")
    records = [parse_record(r) for r in lr.findall("o:record", NS)]
    tok = lr.find("o:resumptionToken", NS)
    token, size, cursor = None, None, None
    if tok is not None:
        token = (tok.text or "").strip() or None
        size = int(tok.get("completeListSize")) if (tok.get("completeListSize") or "").isdigit() else None
        cursor = int(tok.get("cursor")) if (tok.get("cursor") or "").isdigit() else None
    return Page(records, token, response_date, complete_list_size=size, cursor=cursor, raw_size=len(body))


def _checked_page(body: bytes) -> Page:
    try:
        return parse_page(body)
    except MalformedResponse as exc:
        raise TransientError(str(exc)) from None  # a truncated or garbled page is worth another try


class OaiClient:
    """ListRecords pages from the configured endpoint and set, at least ARXLIVE_OAI_DELAY apart."""

    def __init__(self, cfg: Config, sleep=time.sleep):
        self.url, self.oai_set = cfg.oai_url, cfg.oai_set
        self.http = PoliteSession(Policy.from_config(cfg, cfg.oai_delay), secrets=cfg.secrets(), sleep=sleep)

    @property
    def requests(self) -> int:
        return self.http.attempts

    def list_records(self, window: tuple[dt.date, dt.date], token: str | None) -> Page:
        """One page: the first of the window (token None) or the one a resumptionToken names."""
        params = list_records_params((window[0].isoformat(), window[1].isoformat()), self.oai_set, token)
        return self.http.get(self.url, params, _checked_page)

    def close(self):
        self.http.close()
