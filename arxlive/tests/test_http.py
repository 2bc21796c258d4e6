"""http: the back-off schedule, Retry-After, the polite delay, masking of secrets."""

from __future__ import annotations

from arxlive.http import backoff_delay, mask, parse_retry_after, polite_wait


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


def test_mask_hides_credentials_in_any_url():
    text = "GET https://harvester:s3cr3t@oaipmh.example.org/oai?verb=ListRecords failed: http://tok@h/x"
    masked = mask(text, [])
    assert "s3cr3t" not in masked and "harvester" not in masked and "tok@" not in masked
    assert "https://***@oaipmh.example.org/oai?verb=ListRecords" in masked and "http://***@h/x" in masked
    assert mask("mailto=ops@example.org", []) == "mailto=ops@example.org"   # not a URL's user part
