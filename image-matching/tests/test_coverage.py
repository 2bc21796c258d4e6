"""The coverage report: the same numbers as the written rows, a self-contained page, and that the
page renders (table and chart) in headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from imagematching import coverage, generate, io, job

SNAPSHOT = "2026-10"


@pytest.fixture(scope="module")
def output(spark, tmp_path_factory) -> Path:
    """A committed run of three generated wikis."""
    inputs = tmp_path_factory.mktemp("input")
    generate.write(generate.generate(pages=600, wikis=3, snapshot=SNAPSHOT, seed=5), inputs, SNAPSHOT)
    output = tmp_path_factory.mktemp("output")
    job.run(spark, job.Run(input=inputs, output=output, snapshot=SNAPSHOT, wikis=None, dataset_id="report-run",
                           insertion_ts=datetime(2026, 11, 1, 3, 0, 0)))
    return output


def test_report_numbers_are_the_written_rows(spark, output):
    report = json.loads((output / "report" / f"snapshot={SNAPSHOT}.json").read_text())
    assert report["dataset_id"] == "report-run" and len(report["wikis"]) == 3
    rows = spark.read.parquet(str(output / "imagerec_prod")).where(f"snapshot = '{SNAPSHOT}'")
    for wiki, numbers in report["wikis"].items():
        mine = rows.where(f"wiki = '{wiki}'")
        by_source = {r["source"]: r["count"] for r in mine.groupBy("source").count().collect() if r["source"]}
        by_rating = {r["confidence_rating"]: r["count"]
                     for r in mine.groupBy("confidence_rating").count().collect() if r["confidence_rating"]}
        assert numbers["by_source"] == {s: by_source.get(s, 0) for s in coverage.SOURCES}
        assert numbers["by_confidence"] == {r: by_rating.get(r, 0) for r in ("high", "medium", "low")}
        assert numbers["unillustrated"] == mine.select("page_id").distinct().count()
        assert numbers["with_candidates"] == mine.where("image_id IS NOT NULL").select("page_id").distinct().count()
        assert numbers["articles"] > numbers["unillustrated"] >= numbers["with_candidates"] > 0
    assert report["total"]["by_source"] == {
        s: sum(w["by_source"][s] for w in report["wikis"].values()) for s in coverage.SOURCES}
    summary = json.loads((output / "summary" / f"snapshot={SNAPSHOT}.json").read_text())
    assert summary["report"] == {kind: io.report_uri(output.as_uri(), SNAPSHOT, kind) for kind in ("html", "json")}


def test_page_is_self_contained_and_escapes_names():
    """Wiki names come from the input data: markup in one is shown as text, never run."""
    hostile = '<script>alert(1)</script>wiki'
    numbers = {"articles": 10, "unillustrated": 4, "with_candidates": 2, "candidates": {"high": 1, "medium": 1, "low": 0},
               "sources": {"wikidata": 1, "wikipedia": 1, "commons": 0}}
    page = coverage.to_html(coverage.numbers({"snapshot": SNAPSHOT, "dataset_id": "d<1>", "wikis": {hostile: numbers}}))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;wiki" in page and "d&lt;1&gt;" in page
    png = base64.b64decode(page.split("data:image/png;base64,", 1)[1].split('"', 1)[0])
    assert png.startswith(b"\x89PNG")
    assert "http" not in page.replace("data:image", "")  # nothing to fetch


@pytest.mark.browser
def test_the_report_renders_in_headless_chromium(output, tmp_path):
    chromium = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p and Path(p).exists()), None)
    if chromium is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("no chromium on PATH (apt-get install chromium) (REQUIRE_BROWSER=1)")
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    page_uri = (output / "report" / f"snapshot={SNAPSHOT}.html").as_uri()
    screenshot = tmp_path / "image-matching-report.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        try:
            page = browser.new_page()
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_uri)
            complete, width, height = page.eval_on_selector(
                "#chart", "img => [img.complete, img.naturalWidth, img.naturalHeight]")
            assert complete and width == 1000 and height > 200, (width, height)
            assert page.locator("#chart").bounding_box()["width"] > 500  # laid out, not just loaded
            assert page.locator("#coverage tbody tr").count() == 3
            assert page.locator("#coverage tfoot th").inner_text() == "total"
            assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("ARTIFACTS_DIR"):
        target = Path(os.environ["ARTIFACTS_DIR"]) / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, target / screenshot.name)
