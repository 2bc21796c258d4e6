"""openalex: the schema of a work (pure) and OpenAlexClient against the fake OpenAlex."""

from __future__ import annotations

import pytest
from fakes import fixtures

from arxlive import matching
from arxlive.http import TransientError
from arxlive.openalex import BudgetSpent, OpenAlexClient, _results, checked_works, work_problem

GOOD = fixtures.works_for(0)[0]


def test_a_generated_work_passes():
    assert work_problem(GOOD) is None
    assert work_problem({"id": "W1"}) is None     # every other field may be missing or null


@pytest.mark.parametrize("change,problem", [
    ({"doi": 7}, "doi is not a string"),
    ({"id": "javascript:alert(1)"}, "id is not an OpenAlex work id"),
    ({"id": None}, "id is not an OpenAlex work id"),
    ({"ids": "W1"}, "ids is not an object"),
    ({"ids": {"mag": [1]}}, "ids is not an object"),
    ({"publication_date": "2026-11-20T00:00:00; DROP TABLE works"}, "publication_date"),
    ({"cited_by_count": "12"}, "cited_by_count"),
    ({"cited_by_count": -1}, "cited_by_count"),
    ({"cited_by_count": True}, "cited_by_count"),
    ({"display_name": {"$ne": ""}}, "display_name is not a string"),
    ({"topics": {"id": 1}}, "topics is not a list"),
    ({"topics": [{"id": 5}]}, "a topic"),
    ({"authorships": [{"author": "Ann"}]}, "author has mistyped"),
    ({"authorships": [{"institutions": "ETH"}]}, "institutions is not a list"),
    ({"authorships": [{"institutions": [{"ror": 12}]}]}, "an institution"),
])
def test_mistyped_fields_are_named(change, problem):
    assert problem in work_problem(dict(GOOD, **change))


def test_non_objects_and_bodies():
    assert work_problem("<script>") == "a str, not an object" and work_problem(None) == "a NoneType, not an object"
    works = checked_works([GOOD, {"id": "W2", "doi": 7}, "junk"])
    assert works.works == [GOOD] and works.malformed == 2
    for body in (b'{"results": {"id": "W1"}}', b"[]", b"not json", b"\xff\xfe"):
        with pytest.raises(TransientError):
            _results(body)


def test_several_titles_in_one_search_call(fakes, make_cfg):
    _, oa = fakes(10)
    charged = []
    client = OpenAlexClient(make_cfg(_, oa), lambda kind: charged.append(kind) or True, sleep=lambda s: None)
    try:
        recs = [fixtures.record(i) for i in (7, 8, 9)]     # two found only by title, one never found
        found = client.works_by_titles([r["title"] for r in recs])
        assert charged == ["search"]
        wanted = {f"https://openalex.org/W{4000000000 + i}" for i in (7, 8)}
        assert wanted <= {w["id"] for w in found.works}
        assert all(matching.best_title_match(r["title"], found.works, 90) for r in recs[:2])
        assert matching.best_title_match(recs[2]["title"], found.works, 90) is None
    finally:
        client.close()


def test_client_charges_by_kind_and_skips_malformed_works(fakes, make_cfg):
    _, oa = fakes(10)
    charged = []
    client = OpenAlexClient(make_cfg(_, oa), lambda kind: charged.append(kind) or True, sleep=lambda s: None)
    try:
        found = client.works_by_doi([f"10.48550/arxiv.{fixtures.arxiv_id(i)}" for i in range(5)])
        assert len(found.works) == 5 and found.malformed == 0
        oa.faults.set("badworks")
        found = client.works_by_titles([fixtures.record(7)["title"]])
        assert found.works == [] and found.malformed >= 3
        assert charged == ["filter", "search"]
    finally:
        client.close()
    spent = OpenAlexClient(make_cfg(_, oa), lambda kind: False, sleep=lambda s: None)
    try:
        with pytest.raises(BudgetSpent, match="no budget left for a filter call"):
            spent.works_by_doi(["10.1/x"])
    finally:
        spent.close()
