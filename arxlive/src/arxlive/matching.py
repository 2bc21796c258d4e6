"""Pure rules of the Enrich step: DOIs, batches, title similarity, the policy and the retry schedule."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote_plus

from rapidfuzz import fuzz

# ---------------------------------------------------------------- DOIs

_DOI_PREFIXES = ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:")


def normalize_doi(doi: str | None) -> str | None:
    """Lower-case bare DOI (DOIs are case-insensitive); None when absent or not a DOI."""
    if not doi:
        return None
    d = doi.strip()
    low = d.lower()
    for p in _DOI_PREFIXES:
        if low.startswith(p):
            d = d[len(p):]
            break
    d = d.strip().lower()
    return d if d.startswith("10.") and "/" in d else None


def arxiv_doi(arxiv_id: str) -> str:
    """arXiv's own DataCite DOI: 10.48550/arXiv.<id> (normalized lower-case)."""
    return f"10.48550/arxiv.{arxiv_id}".lower()


def filter_safe(doi: str) -> bool:
    """OpenAlex filter syntax uses ',' between filters and '|' between values."""
    return "," not in doi and "|" not in doi and " " not in doi


def article_dois(article: dict) -> list[str]:
    """The DOIs to look an article up by: its publisher DOI first (if any), then arXiv's DOI."""
    out = []
    pub = normalize_doi(article.get("doi"))
    if pub and filter_safe(pub):
        out.append(pub)
    ax = arxiv_doi(article["id"])
    if filter_safe(ax) and ax not in out:
        out.append(ax)
    return out


def doi_batches(articles: list[dict], max_dois: int = 100) -> list[list[dict]]:
    """Group articles so that each request filters on at most max_dois DOIs."""
    return packed(articles, lambda art: len(article_dois(art)), max_dois)


def packed(items: list[dict], weight, limit: int, max_items: int | None = None) -> list[list[dict]]:
    """Consecutive groups of items whose weights add up to at most limit (an item heavier than
    limit goes alone), of at most max_items each."""
    batches, cur, total = [], [], 0
    for item in items:
        w = weight(item)
        if cur and (total + w > limit or (max_items is not None and len(cur) >= max_items)):
            batches.append(cur)
            cur, total = [], 0
        cur.append(item)
        total += w
    if cur:
        batches.append(cur)
    return batches


def match_by_doi(articles: list[dict], works: list[dict]) -> dict[str, tuple[dict, str]]:
    """article id -> (work, 'doi_publisher' | 'doi_arxiv'); the publisher DOI's work wins."""
    by_doi: dict[str, dict] = {}
    for w in works:
        for d in (w.get("doi"), (w.get("ids") or {}).get("doi")):
            nd = normalize_doi(d)
            if nd:
                by_doi.setdefault(nd, w)
    out = {}
    for art in articles:
        pub = normalize_doi(art.get("doi"))
        if pub and pub in by_doi:
            out[art["id"]] = (by_doi[pub], "doi_publisher")
        elif arxiv_doi(art["id"]) in by_doi:
            out[art["id"]] = (by_doi[arxiv_doi(art["id"])], "doi_arxiv")
    return out


# ---------------------------------------------------------------- titles

_TEX_CMD = re.compile(r"\\[A-Za-z]+\*?")


def normalize_title(title: str | None) -> str:
    """Comparable form: TeX commands and math markers dropped, accents folded, lower-case words."""
    if not title:
        return ""
    t = _TEX_CMD.sub(" ", title)
    t = t.replace("$", " ").replace("{", " ").replace("}", " ").replace("\\", " ")
    t = unicodedata.normalize("NFKD", t)
    t = "".join(c for c in t if not unicodedata.combining(c))
    t = re.sub(r"[^\w]+", " ", t.lower())
    return re.sub(r"\s+", " ", t).strip()


def title_query(title: str | None, max_len: int = 200) -> str:
    """A title made safe as an OpenAlex search value (no ',', '|', ':' or TeX)."""
    q = normalize_title(title)[:max_len]
    return q.rsplit(" ", 1)[0] if len(q) == max_len and " " in q else q


# Elasticsearch's English stop words, which OpenAlex's search drops from queries and titles alike.
STOP_WORDS = frozenset("a an and are as at be but by for if in into is it no not of on or such that the their "
                       "then there these they this to was will with".split())


def title_terms(title: str | None, max_words: int = 8) -> list[str]:
    """The title's longest distinct words (in title order; stop words and single letters, often
    left over from TeX, left out), for one group of a batched title search.

    In a boolean search OpenAlex requires every word of a group; a few long words already pick out
    one paper, and each word left out is one fewer that a differently typeset title can lack.
    """
    words = [w for w in dict.fromkeys(title_query(title).split()) if w not in STOP_WORDS and len(w) > 1]
    keep = set(sorted(words, key=lambda w: (-len(w), words.index(w)))[:max_words])
    return [w for w in words if w in keep]


def title_group(title: str | None) -> str:
    """One title as a group of an OR-ed title search: "(w1 w2 ...)" (words in a group are AND-ed)."""
    return "(" + " ".join(title_terms(title)) + ")"


# OpenAlex refuses request URLs over 4,094 bytes; this leaves room for the rest of the URL.
TITLE_QUERY_MAX_BYTES = 3000


def title_batches(articles: list[dict], max_titles: int,
                  max_bytes: int = TITLE_QUERY_MAX_BYTES) -> list[list[dict]]:
    """Group articles (each with a searchable title) so that one search asks for at most
    max_titles titles in a URL-encoded query of at most max_bytes."""
    return packed(articles, lambda art: len(quote_plus(title_group(art["title"]))) + len(quote_plus(" OR ")),
                  max_bytes, max_titles)


def title_similarity(a: str | None, b: str | None) -> float:
    """0..100: rapidfuzz token_sort_ratio of the normalized titles."""
    na, nb = normalize_title(a), normalize_title(b)
    if not na or not nb:
        return 0.0
    return float(fuzz.token_sort_ratio(na, nb))


def _numbers(title: str | None) -> set[str]:
    return {t for t in normalize_title(title).split() if any(c.isdigit() for c in t)}


def best_title_match(title: str, works: list[dict], threshold: float) -> tuple[dict, float] | None:
    """The most similar work at or above the threshold, or None.

    Titles that differ only in numbers ("... Part 1" / "... Part 2", "SU(2)" / "SU(3)") are
    different papers however similar the rest is: the numbers must be the same.
    """
    best = None
    nums = _numbers(title)
    for w in works:
        other = w.get("display_name") or w.get("title")
        if _numbers(other) != nums:
            continue
        score = title_similarity(title, other)
        if score >= threshold and (best is None or score > best[1]):
            best = (w, score)
    return best


# ---------------------------------------------------------------- works

def _short(openalex_url: str | None) -> str | None:
    return openalex_url.rsplit("/", 1)[-1] if openalex_url else None


def work_row(work: dict) -> dict:
    """The stored form of an OpenAlex work: ids, counts, topics, authorships with institutions."""
    ids = work.get("ids") or {}
    mag = ids.get("mag")
    authorships = []
    for pos, a in enumerate(work.get("authorships") or []):
        author = a.get("author") or {}
        insts = [{
            "openalex_id": _short(i.get("id")),
            "ror": i.get("ror"),
            "name": i.get("display_name"),
            "country_code": i.get("country_code"),
        } for i in (a.get("institutions") or [])]
        authorships.append({"position": pos, "author_id": _short(author.get("id")),
                            "name": author.get("display_name"), "institutions": insts})
    return {
        "openalex_id": _short(work.get("id") or ids.get("openalex")),
        "mag_id": str(mag) if mag not in (None, "") else None,
        "doi": normalize_doi(work.get("doi") or ids.get("doi")),
        "display_name": work.get("display_name") or work.get("title"),
        "publication_date": work.get("publication_date"),
        "cited_by_count": int(work.get("cited_by_count") or 0),
        "topics": [{"id": _short(t.get("id")), "display_name": t.get("display_name"), "score": t.get("score")}
                   for t in (work.get("topics") or [])],
        "authorships": authorships,
    }


# ---------------------------------------------------------------- the enrichment policy

@dataclass(frozen=True)
class EnrichPolicy:
    """Which due articles get which lookups, and in what order.

    grace_days: a title search only for an article at least this old (by `created`): OpenAlex
      indexes a new preprint days late, and arXiv's DataCite DOI then finds it almost for free.
    title_cap: title searches over an article's lifetime (None: no cap).
    new_first: articles never looked up go before retries when the budget is short.
    title_batch: titles asked for in one search call (OR-ed groups); a search is priced per call.
    """
    grace_days: int = 7
    title_cap: int | None = 2
    new_first: bool = True
    title_batch: int = 20


def order_due(articles: list[dict], policy: EnrichPolicy) -> list[dict]:
    """New articles first (then retries, the longest-waiting first), or simply by id."""
    if not policy.new_first:
        return sorted(articles, key=lambda a: a["id"])
    return sorted(articles, key=lambda a: (a["enrich_status"] != "pending", a.get("enrich_next") or dt.date.min,
                                           a["id"]))


def title_search_due(article: dict, run_date: dt.date, policy: EnrichPolicy) -> bool:
    """Whether an article that no DOI matched gets a title search in this run."""
    if not title_terms(article.get("title")):
        return False
    if policy.title_cap is not None and (article.get("title_searches") or 0) >= policy.title_cap:
        return False
    born = article.get("created") or article.get("datestamp")
    return born is None or (run_date - born).days >= policy.grace_days


RETRY_BASE_DAYS = 1
RETRY_MAX_DAYS = 64


def next_attempt(run_date: dt.date, attempts: int, base_days: int = RETRY_BASE_DAYS,
                 max_days: int = RETRY_MAX_DAYS) -> dt.date:
    """When an unmatched article is looked up again: 1, 2, 4, 8, ... days after the n-th miss, capped.

    (OpenAlex usually indexes a new arXiv preprint within days; a publisher DOI can appear
    months later, so misses keep being retried by DOI, ever more rarely.)
    """
    days = min(base_days * 2 ** max(0, attempts - 1), max_days)
    return run_date + dt.timedelta(days=days)
