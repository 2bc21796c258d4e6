"""Each output folder of a run holds _provenance.json: the platform's facts, the params, the inputs
as read, the times and the host; published by the run's commit, with the data."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from imagematching import generate, io, job, provenance

FACTS = {"release": {"version": "2026.11.1", "git_sha": "ab" * 20}, "runtime_sha256": "cd" * 32, "image": None,
         "stage": {"project": "image-matching", "name": "image_matching", "config_sha256": {"conf/spark.toml": "ef" * 32}}}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("input")
    generate.write(generate.generate(pages=300, wikis=2, snapshot="2026-10", seed=3), root, "2026-10")
    return root


def test_every_output_folder_has_its_provenance(spark, inputs, tmp_path):
    report = job.run(spark, job.Run(input=inputs, output=tmp_path, snapshot="2026-10", wikis=None, dataset_id="run-7",
                                    insertion_ts=datetime(2026, 11, 1, 3), platform_facts=FACTS))
    wikis = sorted(report["wikis"])
    sidecars = {wiki: tmp_path / f"imagerec_prod/wiki={wiki}/snapshot=2026-10/_provenance.json" for wiki in wikis}
    sidecars["export"] = tmp_path / "export/snapshot=2026-10/_provenance.json"
    for name, path in sidecars.items():
        record = json.loads(path.read_text())
        assert {k: record[k] for k in FACTS} == FACTS, name
        assert record["params"] == {"snapshot": "2026-10", "wikis": wikis, "input": inputs.as_uri(),
                                    "output": tmp_path.as_uri(), "dataset_id": "run-7"}
        assert [i["uri"] for i in record["inputs"]] == [f"file://{inputs}/{d}/snapshot=2026-10" for d in io.DATASETS]
        for entry in record["inputs"]:
            folder = inputs / entry["uri"].removeprefix(f"file://{inputs}/")
            assert entry["bytes"] == sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) > 0
            assert datetime.fromisoformat(entry["modified"])
        assert record["started_at"] <= record["ended_at"] and record["host"]
    assert json.loads(sidecars["export"].read_text())["outputs"] == [
        {"uri": f"file://{tmp_path}/export/snapshot=2026-10/prod-{w}-2026-10-wd_image_candidates.tsv"} for w in wikis]
    # Parquet readers skip the sidecar (its name starts with "_").
    assert spark.read.parquet(str(tmp_path / "imagerec_prod")).count() > 0


@pytest.mark.parametrize(("value", "message"), [("{not json", "is not JSON"), ("[1, 2]", "is not a JSON object")])
def test_malformed_platform_facts_are_refused(value, message):
    with pytest.raises(ValueError, match=message):
        provenance.platform_facts({provenance.ENVIRONMENT_VARIABLE: value})
