"""The export's provenance sidecar: the platform's facts from the DAG, the run's params and inputs,
the export's size and sha256, times and host."""

from __future__ import annotations

import hashlib
import json

import pytest
from test_pipeline import run_steps

from arxlive import provenance

FACTS = {"release": {"version": "2026.11.1", "git_sha": "ab" * 20}, "runtime_sha256": None,
         "image": {"reference": "localhost/arxlive@sha256:" + "cd" * 32, "image_id": "sha256:" + "ef" * 32},
         "stage": {"project": "arxlive", "name": "harvest_and_enrich", "config_sha256": {"luigi.cfg": "01" * 32}}}


def test_the_export_has_its_provenance_beside_it(fakes, make_cfg, store_for, monkeypatch):
    monkeypatch.setenv(provenance.ENVIRONMENT_VARIABLE, json.dumps(FACTS))
    oai, oa = fakes(30, page_size=10)
    cfg = make_cfg(oai, oa)
    h, _, e, s = run_steps(cfg, store_for(cfg))
    export = cfg.mode_dir / "exports/articles-2026-11-20.jsonl"
    record = json.loads((cfg.mode_dir / "exports/articles-2026-11-20.jsonl.provenance.json").read_text())
    assert {k: record[k] for k in FACTS} == FACTS
    assert record["params"] == {"date": "2026-11-20", "mode": cfg.mode, "from": "2026-11-18", "until": "2026-11-20"}
    assert record["inputs"] == [
        {"uri": oai.url, "type": "oai-pmh", "set": h["set"], "from": "2026-11-18", "until": "2026-11-20", "records": 30},
        {"uri": oa.url, "type": "http-json", "calls": e["api"]["calls"]},
    ]
    assert record["outputs"] == [{"uri": export.resolve().as_uri(), "bytes": export.stat().st_size,
                                  "sha256": hashlib.sha256(export.read_bytes()).hexdigest()}]
    assert s["exported"] > 0 and record["started_at"] <= record["ended_at"] and record["host"]


def test_malformed_platform_facts_fail_before_the_export_is_written(fakes, make_cfg, store_for, monkeypatch):
    monkeypatch.setenv(provenance.ENVIRONMENT_VARIABLE, "[1, 2]")
    oai, oa = fakes(10, page_size=10)
    cfg = make_cfg(oai, oa)
    with pytest.raises(ValueError, match="PLATFORM_PROVENANCE is not a JSON object"):
        run_steps(cfg, store_for(cfg))
    assert not list((cfg.mode_dir / "exports").glob("articles-*"))


def test_user_info_never_reaches_the_record():
    assert provenance.public_url("https://user:secret@oai.example.org:8443/oai?x=1") == "https://oai.example.org:8443/oai?x=1"
