"""trend: the 30-day page from the kept summaries, and that it renders in headless Chromium."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import require

from arxlive import trend

D = dt.date(2026, 11, 20)


def summaries(exports: Path, days: int):
    exports.mkdir(parents=True, exist_ok=True)
    for n in range(days):
        day = D - dt.timedelta(days=n)
        (exports / f"summary-{day}.json").write_text(json.dumps({
            "date": day.isoformat(), "harvested": 100 + n, "new": 90, "enriched": 80 - n, "deferred": n % 3,
            "api_calls": 12, "api_usd": 0.0012}))
    (exports / "summary-2026-11-19.json.tmp").write_text("ignored: not a summary name")
    (exports / "summary-broken.json").write_text("{not json")


def test_page_holds_the_last_30_days_and_an_embedded_chart(tmp_path):
    summaries(tmp_path, 40)
    kept = trend.recent_summaries(tmp_path, D)
    assert [s["date"] for s in kept] == [(D - dt.timedelta(days=n)).isoformat() for n in range(29, -1, -1)]
    path = trend.write_trend(tmp_path, D, "production")
    text = path.read_text()
    png = base64.b64decode(text.split("data:image/png;base64,", 1)[1].split('"', 1)[0])
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "http" not in text.replace("data:image", "")    # self-contained: nothing to fetch
    assert text.count("<tr>") == 31 and "2026-10-22" in text and "2026-10-21" not in text


@pytest.mark.browser
def test_the_page_renders_in_headless_chromium(tmp_path):
    chromium = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p and Path(p).exists()), None)
    if chromium is None:
        require("REQUIRE_BROWSER", "no chromium on PATH (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    summaries(tmp_path, 10)
    path = trend.write_trend(tmp_path, D, "test")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        try:
            page = browser.new_page()
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            size = page.eval_on_selector("#chart", "img => [img.complete, img.naturalWidth, img.naturalHeight]")
            assert size == [True, 1000, 450]
            assert page.locator("#figures tbody tr").count() == 10
            assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
            page.screenshot(path=str(tmp_path / "trend.png"))
        finally:
            browser.close()
    assert os.path.getsize(tmp_path / "trend.png") > 10_000
