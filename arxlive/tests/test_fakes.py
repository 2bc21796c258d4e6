"""The fake servers' own parsing (test code for test code: a wrong spec or query must not pass)."""

from __future__ import annotations

import json
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import urlopen

import pytest
from fakes.servers import FakeOpenAlex, Fault


def test_fault_specs():
    f = Fault.parse("503=2@3*4", {"503"})
    assert (f.kind, f.value, f.page, f.times) == ("503", "2", 3, 4)
    assert Fault.parse("drop*inf", {"drop"}).times == float("inf")
    with pytest.raises(ValueError):
        Fault.parse("boom", {"503"})


def _get(oa, **params):
    try:
        with urlopen(f"{oa.url}/works?{urlencode(params)}", timeout=10) as r:
            return r.status, json.loads(r.read())
    except HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_openalex_boolean_title_search():
    titles = ["Quantum gravity and the lattice", "Lattice gauge theory", "Sparse neural networks",
              "Dense neural networks"]
    oa = FakeOpenAlex(0).start()
    try:
        for n, t in enumerate(titles):
            oa.add_work({"id": f"https://openalex.org/W{n + 1}", "doi": None, "display_name": t})

        def names(query, **extra):
            status, body = _get(oa, filter=f"title.search:{query}", **extra)
            assert status == 200, body
            return [w["display_name"] for w in body["results"]]

        # OR-ed groups; words with no operator between them are AND-ed; stop words are ignored
        assert names("(quantum gravity) OR (sparse networks)") == [titles[0], titles[2]]
        assert names("(lattice AND theory) OR (the dense)") == [titles[1], titles[3]]
        assert names("neural NOT sparse") == [titles[3]]
        assert names('"gauge theory" OR "networks neural"') == [titles[1]]    # phrases keep their order
        # meta.count counts every match, the page holds per-page of them
        status, body = _get(oa, filter="title.search:(neural) OR (lattice)", **{"per-page": "1"})
        assert body["meta"]["count"] == 4 and len(body["results"]) == 1
        # refused as OpenAlex refuses them
        for bad in ("(quantum OR gravity", "quantum OR", "OR"):
            assert _get(oa, filter=f"title.search:{bad}")[0] == 400, bad
        status, body = _get(oa, filter="title.search:" + " OR ".join(["(lattice)"] * 500))
        assert status == 400 and body["error"] == "Request URL too long"
    finally:
        oa.stop()
