"""OpenAlex: works by DOI (many per request) and by title search, and the check of what comes back.

Every attempt is charged to the ledger by kind before it is sent ("filter" for a DOI batch,
"search" for a title search, of one or several titles). A response is checked at this boundary:
the body must be a JSON object with a results list, and each work must have the types the Enrich
step relies on; a work that does not is logged, skipped and counted, never passed on.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field

from . import matching
from .config import Config
from .http import Policy, PoliteSession, TransientError

log = logging.getLogger("arxlive.openalex")

SELECT = "id,doi,ids,display_name,publication_date,cited_by_count,topics,authorships"
# Results asked for by a batched title search: OpenAlex's largest page (its docs: per_page up to 100).
TITLE_BATCH_PAGE = 100


class BudgetSpent(Exception):
    """The ledger allows no further call of this kind now."""


# ---------------------------------------------------------------- the schema of a work (pure)

_WORK_ID = re.compile(r"^(https://openalex\.org/)?W\d+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _opt(value, kind) -> bool:
    return value is None or (isinstance(value, kind) and not isinstance(value, bool))


def _list_of_dicts(value) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(x, dict) for x in value))


def work_problem(work) -> str | None:
    """Why a work from OpenAlex cannot be used, or None when its fields have the expected types."""
    if not isinstance(work, dict):
        return f"a {type(work).__name__}, not an object"
    if not isinstance(work.get("id"), str) or not _WORK_ID.match(work["id"]):
        return "id is not an OpenAlex work id"
    for name in ("doi", "display_name", "title"):
        if not _opt(work.get(name), str):
            return f"{name} is not a string"
    ids = work.get("ids")
    if ids is not None and not (isinstance(ids, dict) and all(_opt(v, (str, int)) for v in ids.values())):
        return "ids is not an object of strings"
    date = work.get("publication_date")
    if date is not None and not (isinstance(date, str) and _DATE.match(date)):
        return "publication_date is not YYYY-MM-DD"
    count = work.get("cited_by_count")
    if not _opt(count, int) or (count is not None and count < 0):
        return "cited_by_count is not a count"
    if not _list_of_dicts(work.get("topics")):
        return "topics is not a list of objects"
    for topic in work.get("topics") or []:
        if not (_opt(topic.get("id"), str) and _opt(topic.get("display_name"), str)
                and _opt(topic.get("score"), (int, float))):
            return "a topic has mistyped fields"
    if not _list_of_dicts(work.get("authorships")):
        return "authorships is not a list of objects"
    for a in work.get("authorships") or []:
        author = a.get("author")
        if author is not None and not (isinstance(author, dict) and _opt(author.get("id"), str)
                                       and _opt(author.get("display_name"), str)):
            return "an authorship's author has mistyped fields"
        if not _list_of_dicts(a.get("institutions")):
            return "an authorship's institutions is not a list of objects"
        for inst in a.get("institutions") or []:
            if not all(_opt(inst.get(k), str) for k in ("id", "display_name", "ror", "country_code")):
                return "an institution has mistyped fields"
    return None


@dataclass
class Works:
    """The usable works of one response, and how many were malformed."""
    works: list[dict] = field(default_factory=list)
    malformed: int = 0


def _results(body: bytes) -> list:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TransientError(f"malformed JSON from OpenAlex: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise TransientError("OpenAlex response without a results list")
    return data["results"]


def checked_works(results: list) -> Works:
    out = Works()
    for work in results:
        problem = work_problem(work)
        if problem is None:
            out.works.append(work)
        else:
            out.malformed += 1
            shown = work.get("id") if isinstance(work, dict) else None
            log.warning("skipped a malformed OpenAlex work (%s): %.200r", problem, shown)
    return out


# ---------------------------------------------------------------- the client

class OpenAlexClient:
    def __init__(self, cfg: Config, charge, sleep=time.sleep):
        """charge(kind) -> bool records one call of that kind in the ledger (False: no budget for it)."""
        self.cfg = cfg
        self.http = PoliteSession(Policy.from_config(cfg), secrets=cfg.secrets(), sleep=sleep)
        self.charge = charge

    def _params(self, **extra) -> dict:
        params = dict(extra)
        params["select"] = SELECT
        if self.cfg.openalex_api_key:
            params["api_key"] = self.cfg.openalex_api_key
        if self.cfg.mailto:
            params["mailto"] = self.cfg.mailto
        return params

    def _get(self, kind: str, params: dict) -> Works:
        def before():
            if not self.charge(kind):
                raise BudgetSpent(f"no budget left for a {kind} call")

        return checked_works(self.http.get(f"{self.cfg.openalex_url}/works", params, _results, before))

    def works_by_doi(self, dois: list[str]) -> Works:
        return self._get("filter", self._params(**{"filter": "doi:" + "|".join(dois),
                                                   "per-page": str(min(200, max(1, len(dois))))}))

    def works_by_titles(self, titles: list[str]) -> Works:
        """One search call for one title (its words, ranked by relevance) or for several: a boolean
        query `(words of title 1) OR (words of title 2) ...`, which OpenAlex's search filters accept,
        priced as one call. matching.title_batches keeps the URL under OpenAlex's 4 KB limit."""
        if len(titles) == 1:
            query, limit = matching.title_query(titles[0]), 10
        else:
            query, limit = " OR ".join(matching.title_group(t) for t in titles), TITLE_BATCH_PAGE
        return self._get("search", self._params(**{"filter": f"title.search:{query}", "per-page": str(limit)}))

    def close(self):
        self.http.close()
