"""matching: DOIs, batches, titles, works, the enrichment policy and the retry schedule (pure)."""

from __future__ import annotations

import datetime as dt

from arxlive import matching


def test_dois():
    assert matching.normalize_doi("https://doi.org/10.1103/PhysRevD.1.2") == "10.1103/physrevd.1.2"
    assert matching.normalize_doi("not a doi") is None
    assert matching.arxiv_doi("2506.00042") == "10.48550/arxiv.2506.00042"
    assert matching.article_dois({"id": "2506.00042", "doi": "10.1103/X"}) == ["10.1103/x", "10.48550/arxiv.2506.00042"]
    assert matching.article_dois({"id": "2506.00042", "doi": "10.1/a,b"}) == ["10.48550/arxiv.2506.00042"]


def test_doi_batches_respect_the_or_limit():
    arts = [{"id": f"2611.{i:05d}", "doi": f"10.1/x{i}" if i % 2 else None} for i in range(101)]
    batches = matching.doi_batches(arts, 100)
    assert [a for b in batches for a in b] == arts
    assert all(sum(len(matching.article_dois(a)) for a in b) <= 100 for b in batches)
    assert len(batches) == 2


def test_match_by_doi_prefers_publisher():
    art = {"id": "2506.00042", "doi": "10.1103/X"}
    w_ax = {"id": "W1", "doi": "https://doi.org/10.48550/arxiv.2506.00042"}
    w_pub = {"id": "W2", "doi": "https://doi.org/10.1103/x"}
    assert matching.match_by_doi([art], [w_ax, w_pub])["2506.00042"] == (w_pub, "doi_publisher")
    assert matching.match_by_doi([art], [w_ax])["2506.00042"] == (w_ax, "doi_arxiv")
    assert matching.match_by_doi([art], []) == {}


def test_titles():
    ours = "On $\\mathcal{O}(n)$ bounds for the Schrödinger equation"
    assert matching.normalize_title(ours) == "on o n bounds for the schrodinger equation"
    assert matching.title_similarity(ours, "ON O(N) BOUNDS FOR THE SCHRODINGER EQUATION") == 100
    assert matching.title_similarity(ours, "On bounds: a survey of unrelated methods") < 70
    assert "," not in matching.title_query("A, B | C: D") and ":" not in matching.title_query("A: B")
    works = [{"display_name": "On bounds: a survey"}, {"display_name": "On O(n) bounds for the Schrodinger equation"}]
    best = matching.best_title_match(ours, works, 90)
    assert best[0] is works[1] and best[1] >= 90
    assert matching.best_title_match(ours, works[:1], 90) is None
    # similar titles with different numbers are different papers
    part = [{"display_name": "Lectures on gauge theory and the renormalization group, part 2"}]
    assert matching.title_similarity("Lectures on gauge theory and the renormalization group, part 1",
                                     part[0]["display_name"]) > 90
    assert matching.best_title_match("Lectures on gauge theory and the renormalization group, part 1", part, 90) is None


def test_title_groups_and_batches():
    title = "On $\\mathcal{O}(n)$ bounds for the Schrödinger equation: a renormalization-group approach"
    # stop words (OpenAlex drops them) and TeX's single letters left out, in title order
    assert matching.title_terms(title) == ["bounds", "schrodinger", "equation", "renormalization", "group",
                                           "approach"]
    # at most the 8 longest words
    long = " ".join(f"w{'o' * (n % 5)}rd{n:02d}" for n in range(20))
    terms = matching.title_terms(long)
    assert len(terms) == 8 and all(len(t) >= 8 for t in terms) and terms == sorted(terms, key=long.index)
    # no filter or boolean syntax leaks in: ',', '|', ':', parentheses, an upper-case OR
    assert matching.title_group("Aa, Bb | Cc: (Dd) OR Ee") == "(aa bb cc dd ee)"
    assert matching.title_terms("The $\\alpha$") == [] and matching.title_terms(None) == []
    arts = [{"title": f"Title number {n} about renormalization"} for n in range(45)]
    assert [len(b) for b in matching.title_batches(arts, 20)] == [20, 20, 5]
    # a batch also stays under OpenAlex's URL limit, whatever the count allows
    big = [{"title": " ".join(f"{'x' * 30}{n}{k}" for k in range(8))} for n in range(40)]
    batches = matching.title_batches(big, 50)
    assert len(batches) > 1 and sum(map(len, batches)) == 40
    from urllib.parse import quote_plus
    assert all(len(quote_plus(" OR ".join(matching.title_group(a["title"]) for a in b)))
               <= matching.TITLE_QUERY_MAX_BYTES for b in batches)


def test_work_row():
    w = {"id": "https://openalex.org/W1", "doi": "https://doi.org/10.1/X", "ids": {"mag": 123},
         "display_name": "T", "cited_by_count": 5,
         "topics": [{"id": "https://openalex.org/T1", "display_name": "Topic", "score": 0.9}],
         "authorships": [{"author": {"id": "https://openalex.org/A1", "display_name": "Ann"},
                          "institutions": [{"id": "https://openalex.org/I1", "display_name": "ETH",
                                            "ror": "https://ror.org/05a28rw58", "country_code": "CH"}]}]}
    row = matching.work_row(w)
    assert (row["openalex_id"], row["mag_id"], row["doi"], row["cited_by_count"]) == ("W1", "123", "10.1/x", 5)
    assert row["topics"] == [{"id": "T1", "display_name": "Topic", "score": 0.9}]
    assert row["authorships"][0]["institutions"][0] == {"openalex_id": "I1", "ror": "https://ror.org/05a28rw58",
                                                       "name": "ETH", "country_code": "CH"}


def test_retry_schedule_backs_off():
    d = dt.date(2026, 11, 20)
    got = [(matching.next_attempt(d, n) - d).days for n in range(1, 10)]
    assert got == [1, 2, 4, 8, 16, 32, 64, 64, 64]


def test_title_search_waits_for_the_grace_period_and_is_capped():
    policy = matching.EnrichPolicy(grace_days=7, title_cap=2)
    d = dt.date(2026, 11, 20)
    art = {"title": "A title", "created": d - dt.timedelta(days=3), "title_searches": 0}
    assert not matching.title_search_due(art, d, policy)                       # 3 days old: DOI may come
    assert matching.title_search_due(dict(art, created=d - dt.timedelta(days=7)), d, policy)
    old = dict(art, created=d - dt.timedelta(days=30))
    assert matching.title_search_due(dict(old, title_searches=1), d, policy)
    assert not matching.title_search_due(dict(old, title_searches=2), d, policy)  # the lifetime cap
    assert not matching.title_search_due(dict(old, title=None), d, policy)
    assert matching.title_search_due(dict(old, title_searches=9), d, matching.EnrichPolicy(0, None))


def test_new_articles_go_before_retries():
    arts = [{"id": "1", "enrich_status": "unmatched", "enrich_next": dt.date(2026, 11, 2)},
            {"id": "2", "enrich_status": "unmatched", "enrich_next": dt.date(2026, 11, 1)},
            {"id": "3", "enrich_status": "pending", "enrich_next": None}]
    assert [a["id"] for a in matching.order_due(arts, matching.EnrichPolicy())] == ["3", "2", "1"]
    assert [a["id"] for a in matching.order_due(arts, matching.EnrichPolicy(new_first=False))] == ["1", "2", "3"]
