"""OpenAlex client: works by DOI (many per request) and by title search. Every attempt is counted."""

from __future__ import annotations

import json

from . import matching
from .config import Config
from .http import Policy, PoliteSession, TransientError

SELECT = "id,doi,ids,display_name,publication_date,cited_by_count,topics,authorships"


class BudgetSpent(Exception):
    """The persistent API budget allows no further call now."""


def _json(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TransientError(f"malformed JSON from OpenAlex: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise TransientError("OpenAlex response without a results list")
    return data


class OpenAlexClient:
    def __init__(self, cfg: Config, take_call, sleep=None):
        """take_call() -> bool counts one call against the budget (False: spent)."""
        kw = {"sleep": sleep} if sleep else {}
        self.cfg = cfg
        self.http = PoliteSession(Policy(cfg.max_retries, cfg.backoff_base, cfg.backoff_max, cfg.retry_after_max,
                                         cfg.http_timeout, 0.0), secrets=cfg.secrets(), **kw)
        self.take_call = take_call
        self.calls = 0

    def _before(self):
        if not self.take_call():
            raise BudgetSpent("API budget spent")
        self.calls += 1

    def _params(self, **extra) -> dict:
        params = dict(extra)
        params["select"] = SELECT
        if self.cfg.openalex_api_key:
            params["api_key"] = self.cfg.openalex_api_key
        if self.cfg.mailto:
            params["mailto"] = self.cfg.mailto
        return params

    def works_by_doi(self, dois: list[str]) -> list[dict]:
        params = self._params(**{"filter": "doi:" + "|".join(dois), "per-page": str(min(200, max(1, len(dois))))})
        return self.http.get(f"{self.cfg.openalex_url}/works", params, _json, self._before)["results"]

    def works_by_title(self, title: str, limit: int = 10) -> list[dict]:
        q = matching.title_query(title)
        if not q:
            return []
        params = self._params(**{"filter": f"title.search:{q}", "per-page": str(limit)})
        return self.http.get(f"{self.cfg.openalex_url}/works", params, _json, self._before)["results"]

    def close(self):
        self.http.close()
