"""Pure functions on tiny inputs: parsing, rules, matching, budget and back-off arithmetic, config."""

from __future__ import annotations

import datetime as dt

import pytest

from arxlive import matching, oai, records
from arxlive.config import ConfigError, describe, load_config
from arxlive.fakes.servers import Fault
from arxlive.http import backoff_delay, mask, parse_retry_after, polite_wait

# ------------------------------------------------------------------ back-off, politeness, masking


def test_backoff_is_exponential_and_capped():
    assert [backoff_delay(a, None, 2, 30, 120) for a in (1, 2, 3, 4, 5, 6)] == [2, 4, 8, 16, 30, 30]


def test_retry_after_wins_but_is_bounded():
    assert backoff_delay(1, 7, 2, 30, 120) == 7
    assert backoff_delay(3, 3600, 2, 30, 120) == 120
    assert backoff_delay(1, 0, 2, 30, 120) == 0


def test_parse_retry_after_seconds_and_date():
    assert parse_retry_after("5") == 5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


def test_polite_wait():
    assert polite_wait(None, 100.0, 3) == 0
    assert polite_wait(100.0, 101.0, 3) == 2
    assert polite_wait(100.0, 104.0, 3) == 0


def test_mask_hides_key_in_urls_and_text():
    url = "http://x/works?filter=doi:1&api_key=s3cr3t&mailto=a@b.org"
    assert mask(url, []) == "http://x/works?filter=doi:1&api_key=***&mailto=a@b.org"
    assert "s3cr3t" not in mask("error talking to s3cr3t host", ["s3cr3t"])


# ------------------------------------------------------------------ OAI-PMH

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


def test_token_is_sent_alone_with_the_verb():
    assert oai.list_records_params("2026-11-19", "cs", None) == {
        "verb": "ListRecords", "metadataPrefix": "arXiv", "from": "2026-11-19", "set": "cs"}
    assert oai.list_records_params("2026-11-19", "cs", "tok") == {"verb": "ListRecords", "resumptionToken": "tok"}


def test_identifier_to_id():
    assert oai.arxiv_id_from_identifier("oai:arXiv.org:2506.00042") == "2506.00042"
    assert oai.arxiv_id_from_identifier("oai:arXiv.org:math/0101001") == "math/0101001"


# ------------------------------------------------------------------ load rules

def test_decide():
    live = {"id": "1", "created": "2026-01-01", "updated": "2026-02-01", "datestamp": "2026-02-02"}
    assert records.decide(None, live) == records.INSERT
    assert records.decide({"version": "2026-02-01", "deleted": False}, live) == records.SKIP
    assert records.decide({"version": "2026-03-01", "deleted": False}, live) == records.SKIP
    assert records.decide({"version": "2026-01-01", "deleted": False}, live) == records.UPDATE
    gone = {"id": "1", "deleted": True, "datestamp": "2026-03-01"}
    assert records.decide({"version": "2026-02-01", "deleted": False}, gone) == records.DELETE
    assert records.decide({"version": "2026-02-01", "deleted": True}, gone) == records.SKIP
    assert records.decide({"version": "2026-02-01", "deleted": True, "datestamp": "2026-01-01"},
                          live) == records.UPDATE


def test_dedupe_keeps_newest():
    a = {"id": "1", "created": "2026-01-01", "updated": None, "datestamp": "2026-01-01"}
    b = {"id": "1", "created": "2026-01-01", "updated": "2026-02-01", "datestamp": "2026-02-01"}
    assert records.dedupe_latest([b, a]) == [b]
    assert records.dedupe_latest([a, b]) == [b]


# ------------------------------------------------------------------ matching

def test_dois():
    assert matching.normalize_doi("https://doi.org/10.1103/PhysRevD.1.2") == "10.1103/physrevd.1.2"
    assert matching.normalize_doi("not a doi") is None
    assert matching.arxiv_doi("2506.00042") == "10.48550/arxiv.2506.00042"
    assert matching.article_dois({"id": "2506.00042", "doi": "10.1103/X"}) == ["10.1103/x", "10.48550/arxiv.2506.00042"]
    assert matching.article_dois({"id": "2506.00042", "doi": "10.1/a,b"}) == ["10.48550/arxiv.2506.00042"]


def test_doi_batches_respect_the_or_limit():
    arts = [{"id": f"2611.{i:05d}", "doi": "10.1/x%d" % i if i % 2 else None} for i in range(101)]
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


def test_budget_arithmetic():
    assert matching.calls_left(100, 1000, 0, 0) == 100
    assert matching.calls_left(100, 1000, 40, 990) == 10
    assert matching.calls_left(100, 1000, 120, 0) == 0
    assert matching.budget_periods(dt.date(2026, 11, 20)) == ("2026-11-20", "2026-11")


def test_retry_schedule_backs_off():
    d = dt.date(2026, 11, 20)
    got = [(matching.next_attempt(d, n) - d).days for n in range(1, 10)]
    assert got == [1, 2, 4, 8, 16, 32, 64, 64, 64]


# ------------------------------------------------------------------ configuration

def test_defaults_point_at_the_real_services():
    cfg = load_config({}, production=True)
    assert cfg.oai_url == "https://export.arxiv.org/oai2" and cfg.openalex_url == "https://api.openalex.org"
    assert cfg.oai_delay == 3 and cfg.max_pages is None


def test_test_mode_has_small_limits_and_own_store(tmp_path):
    env = {"ARXLIVE_DATA_DIR": str(tmp_path), "ARXLIVE_BUDGET_DAILY": "100000", "ARXLIVE_DB_URL": "sqlite:///x.db"}
    test, prod = load_config(env), load_config(env, production=True)
    assert test.budget_daily <= 200 and test.max_pages == 20 and prod.budget_daily == 100000
    assert test.store_url != prod.store_url and "test" in test.store_url


@pytest.mark.parametrize("var,value", [
    ("ARXLIVE_OAI_URL", "ftp://x"), ("ARXLIVE_OPENALEX_URL", "not a url"), ("ARXLIVE_OAI_DELAY", "abc"),
    ("ARXLIVE_OAI_DELAY", "-1"), ("ARXLIVE_BUDGET_DAILY", "1.5"), ("ARXLIVE_BUDGET_MONTHLY", "many"),
    ("ARXLIVE_OAI_SET", "cs; drop table"), ("ARXLIVE_MAILTO", "nobody"), ("ARXLIVE_DB_URL", "nonsense"),
    ("ARXLIVE_DB_URL", "oracle://u@h/db"), ("ARXLIVE_OPENALEX_API_KEY", "has space"),
])
def test_bad_value_names_the_variable(var, value):
    with pytest.raises(ConfigError, match=var):
        load_config({var: value})


def test_describe_masks_secrets():
    cfg = load_config({"ARXLIVE_OPENALEX_API_KEY": "k3y", "ARXLIVE_DB_URL": "postgresql://u:pw@h/db"},
                      production=True)
    text = str(describe(cfg)) + repr(cfg)
    assert "k3y" not in text and "pw" not in text


def test_fault_specs():
    f = Fault.parse("503=2@3*4", {"503"})
    assert (f.kind, f.value, f.page, f.times) == ("503", "2", 3, 4)
    assert Fault.parse("drop*inf", {"drop"}).times == float("inf")
    with pytest.raises(ValueError):
        Fault.parse("boom", {"503"})


def test_log_filter_masks_messages_and_tracebacks():
    import io
    import logging

    from arxlive.tasks import _Masking

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.addFilter(_Masking(["s3cr3t-key"]))
    logger = logging.getLogger("arxlive.test-masking")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("GET http://x/works?api_key=%s", "s3cr3t-key")
        try:
            raise RuntimeError("failed on http://x/works?mailto=a@b.org&api_key=s3cr3t-key")
        except RuntimeError:
            logger.exception("task failed")
    finally:
        logger.removeHandler(handler)
    text = buf.getvalue()
    assert "s3cr3t-key" not in text and text.count("api_key=***") >= 2 and "RuntimeError" in text
