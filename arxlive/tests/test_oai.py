"""oai: parsing OAI-PMH pages (pure), and OaiClient against the fake arXiv server."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import stats

from arxlive import oai

OAI_PAGE = """<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">
<responseDate>2026-11-20T03:00:01Z</responseDate>
<request verb="ListRecords" metadataPrefix="arXiv">http://export.arxiv.org/oai2</request>
<ListRecords>
<record><header><identifier>oai:arXiv.org:2506.00042</identifier><datestamp>2026-11-19</datestamp>
<setSpec>cs</setSpec><setSpec>physics:hep-th</setSpec></header>
<metadata><arXiv xmlns="http://arxiv.org/OAI/arXiv/"><id>2506.00042</id><created>2025-06-01</created>
<updated>2025-07-02</updated><authors><author><keyname>Erdős</keyname><forenames>Pál</forenames>
<suffix>Jr</suffix><affiliation>Rényi Institute</affiliation><affiliation>ELTE</affiliation></author>
<author><keyname>Smith</keyname></author></authors>
<title>On $\\mathcal{O}(n)$ bounds for the
  Schrödinger   equation</title><categories>cs.LG hep-th</categories>
<comments>12 pages</comments><journal-ref>Phys. Rev. D 1 (2025)</journal-ref><doi>10.1103/PhysRevD.1.2</doi>
<license>http://creativecommons.org/licenses/by/4.0/</license>
<abstract>  We prove
a bound.
</abstract></arXiv></metadata></record>
<record><header status="deleted"><identifier>oai:arXiv.org:hep-th/9901001</identifier>
<datestamp>2026-11-19</datestamp></header></record>
<resumptionToken cursor="0" completeListSize="2500">6960524|1001</resumptionToken>
</ListRecords></OAI-PMH>""".encode()


def test_parse_page_fields_tex_non_ascii_line_breaks():
    page = oai.parse_page(OAI_PAGE)
    assert page.token == "6960524|1001" and page.complete_list_size == 2500
    assert page.response_date == "2026-11-20T03:00:01Z"
    rec, gone = page.records
    assert rec["id"] == "2506.00042" and rec["sets"] == ["cs", "physics:hep-th"]
    assert rec["title"] == "On $\\mathcal{O}(n)$ bounds for the Schrödinger equation"
    assert rec["abstract"] == "We prove a bound."
    assert rec["authors"][0] == {"keyname": "Erdős", "forenames": "Pál", "suffix": "Jr",
                                 "affiliation": "Rényi Institute; ELTE"}
    assert rec["authors"][1] == {"keyname": "Smith", "forenames": None, "suffix": None, "affiliation": None}
    assert (rec["created"], rec["updated"], rec["doi"]) == ("2025-06-01", "2025-07-02", "10.1103/PhysRevD.1.2")
    assert rec["journal_ref"] == "Phys. Rev. D 1 (2025)" and not rec["deleted"]
    assert gone == {"id": "hep-th/9901001", "datestamp": "2026-11-19", "sets": [], "deleted": True}


def test_last_page_has_empty_token():
    body = OAI_PAGE.replace(b">6960524|1001</resumptionToken>", b"></resumptionToken>")
    assert oai.parse_page(body).token is None


def test_parse_error_and_malformed():
    err = oai.parse_page(b'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><responseDate>x</responseDate>'
                         b'<error code="noRecordsMatch">none</error></OAI-PMH>')
    assert (err.error_code, err.records) == ("noRecordsMatch", [])
    with pytest.raises(oai.MalformedResponse):
        oai.parse_page(OAI_PAGE[: len(OAI_PAGE) // 2])
    with pytest.raises(oai.MalformedResponse):
        oai.parse_page(b"<html><body>busy</body></html>")


def test_entities_are_not_expanded():
    evil = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><error code="x">&e;</error></OAI-PMH>')
    page = oai.parse_page(evil)
    assert "root:" not in (page.error_message or "")


def test_window_and_token_parameters():
    assert oai.list_records_params(("2026-11-18", "2026-11-20"), "cs", None) == {
        "verb": "ListRecords", "metadataPrefix": "arXiv", "from": "2026-11-18", "until": "2026-11-20", "set": "cs"}
    assert oai.list_records_params(("2026-11-18", "2026-11-20"), "cs", "tok") == {
        "verb": "ListRecords", "resumptionToken": "tok"}


def test_identifier_to_id():
    assert oai.arxiv_id_from_identifier("oai:arXiv.org:2506.00042") == "2506.00042"
    assert oai.arxiv_id_from_identifier("oai:arXiv.org:math/0101001") == "math/0101001"


def test_client_pages_through_a_window_of_the_fake(fakes, make_cfg):
    server, _ = fakes(40, page_size=10, days=4)
    client = oai.OaiClient(make_cfg(server, _), sleep=lambda s: None)
    window = (dt.date(2026, 11, 20), dt.date(2026, 11, 21))
    try:
        page, ids = client.list_records(window, None), []
        while True:
            ids += [r["id"] for r in page.records]
            if not page.token:
                break
            page = client.list_records(window, page.token)
    finally:
        client.close()
    assert len(ids) == len(set(ids)) == 20           # days 2 and 3 of 4: half the records
    first = stats(server)["log"][0]["params"]
    assert (first["from"], first["until"]) == ("2026-11-20", "2026-11-21")
