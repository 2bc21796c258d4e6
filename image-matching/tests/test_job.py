"""The job's contract: data layout, atomic re-runs, clear errors, the exact TSV, the summary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imagematching import generate, io, job, schemas
from imagematching.storage import Storage

WIKIS = ["dewiki", "enwiki", "frwiki"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("input")
    for snapshot in ("2026-09", "2026-10"):
        generate.write(generate.generate(pages=600, wikis=3, snapshot=snapshot, seed=7), root, snapshot)
    return root


def run(spark, inputs, output, snapshot="2026-10", wikis=None, dataset_id="run-1"):
    return job.run(spark, job.Run(input=inputs, output=output, snapshot=snapshot, wikis=wikis,
                                  dataset_id=dataset_id, insertion_ts=datetime(2026, 11, 1, 3, 0, 0)))


def read(spark, output, snapshot):
    return spark.read.parquet(str(output / "imagerec_prod")).where(f"snapshot = '{snapshot}'")


def test_outputs_follow_the_layout_and_match_the_summary(spark, inputs, tmp_path):
    report = run(spark, inputs, tmp_path)
    assert sorted(report["wikis"]) == WIKIS
    for wiki in WIKIS:
        partition = tmp_path / "imagerec_prod" / f"wiki={wiki}" / "snapshot=2026-10"
        assert list(partition.glob("*.parquet")), partition
        tsv = tmp_path / "export" / "snapshot=2026-10" / f"prod-{wiki}-2026-10-wd_image_candidates.tsv"
        lines = tsv.read_text().splitlines()
        assert lines[0] == "\t".join(io.EXPORT_COLUMNS)
        assert len(lines) - 1 == report["wikis"][wiki]["export_rows"] > 0
        summary = report["wikis"][wiki]
        assert summary["unillustrated"] >= summary["with_candidates"] > 0
    rows = read(spark, tmp_path, "2026-10")
    by_rating = {r["confidence_rating"]: r["count"] for r in rows.groupBy("confidence_rating").count().collect()}
    assert sum(by_rating.get(k, 0) for k in ("high", "medium", "low")) == sum(
        sum(s["candidates"].values()) for s in report["wikis"].values())
    assert (tmp_path / "summary" / "snapshot=2026-10.json").is_file()


def test_rerun_replaces_its_snapshot_and_leaves_others(spark, inputs, tmp_path):
    run(spark, inputs, tmp_path, snapshot="2026-09", dataset_id="september")
    run(spark, inputs, tmp_path, dataset_id="first")
    first = read(spark, tmp_path, "2026-10").drop("dataset_id").collect()
    run(spark, inputs, tmp_path, dataset_id="second")
    second = read(spark, tmp_path, "2026-10")
    assert {r.dataset_id for r in second.select("dataset_id").distinct().collect()} == {"second"}
    assert sorted(second.drop("dataset_id").collect()) == sorted(first), "same rows, none duplicated"
    september = read(spark, tmp_path, "2026-09")
    assert {r.dataset_id for r in september.select("dataset_id").distinct().collect()} == {"september"}


def test_only_requested_wikis_are_written(spark, inputs, tmp_path):
    report = run(spark, inputs, tmp_path, wikis=["enwiki"])
    assert list(report["wikis"]) == ["enwiki"]
    assert [p.name for p in (tmp_path / "imagerec_prod").iterdir() if not p.name.startswith(("_", "."))] == ["wiki=enwiki"]


@pytest.mark.parametrize("break_input, message", [
    (lambda root: shutil.rmtree(root / "placeholder_images"), "dataset placeholder_images is missing"),
    (lambda root: shutil.rmtree(root / "mediawiki_page" / "snapshot=2026-10"),
     "dataset mediawiki_page has no snapshot 2026-10"),
    (lambda root: [p.unlink() for p in (root / "wikidata_entity" / "snapshot=2026-10").glob("*.parquet")],
     "dataset wikidata_entity snapshot 2026-10 holds no parquet files"),
    (lambda root: pq.write_table(pa.table({"title": ["Placeholder.png"]}),
                                 next((root / "placeholder_images" / "snapshot=2026-10").glob("*.parquet"))),
     "dataset placeholder_images snapshot 2026-10 has no column page_title"),
])
def test_broken_input_is_named_and_nothing_is_written(spark, inputs, tmp_path, break_input, message):
    broken = tmp_path / "input"
    shutil.copytree(inputs, broken)
    break_input(broken)
    with pytest.raises(io.InputError, match=message):
        run(spark, broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_wiki_is_named(spark, inputs, tmp_path):
    with pytest.raises(io.InputError, match="wiki xxwiki is not in the input"):
        run(spark, inputs, tmp_path / "out", wikis=["enwiki", "xxwiki"])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--snapshot", "2026-13"], "snapshot '2026-13' is not a month"),
    (["--snapshot", "2026-10", "--wikis", "commonswiki"], "not an article wiki name: commonswiki"),
    (["--snapshot", "2026-10", "--input", ""], "empty location"),
    (["--snapshot", "2026-10", "--input", "s3a://AKIAKEY:s3cr3t@bucket/in"],
     "credentials in the location s3a://***@bucket/in"),
    (["--snapshot", "2026-10", "--output", "hdfs://user:s3cr3t@namenode:8020/out"],
     "credentials in the location hdfs://***@namenode:8020/out"),
    (["--snapshot", "2026-10", "--event-log", "s3a://AKIAKEY:s3cr3t@bucket/events"], "credentials in the location"),
    (["--snapshot", "2026-10", "--output", "hdfs://namenode/data/../../etc"], "'..' in the location"),
    (["--snapshot", "2026-10", "--input", "file:///data/in\nimagematching: committed"], "control characters"),
])
def test_cli_rejects_bad_parameters_before_spark_starts(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "imagematching", "--input", str(tmp_path), "--output",
                             str(tmp_path / "out"), *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1].startswith("imagematching: error: "), "one line names what is wrong"
    assert "s3cr3t" not in result.stderr and "AKIAKEY" not in result.stderr, "credentials never reach a log"
    assert "SparkContext" not in result.stderr and not (tmp_path / "out").exists()


def test_probe_names_an_unknown_scheme_in_one_line(tmp_path):
    """Hadoop knows no such FileSystem: the pre-flight says so, in one line, with exit code 2."""
    result = subprocess.run([sys.executable, "-m", "imagematching.probe", "inputs", "--input", "nosuchfs://bucket/in",
                             "--snapshot", "2026-10"], capture_output=True, text=True, timeout=300)
    errors = [line for line in result.stderr.splitlines() if line.startswith("imagematching: error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-2000:]
    assert 'cannot open nosuchfs://bucket/in' in errors[0] and 'No FileSystem for scheme "nosuchfs"' in errors[0]


def test_plain_paths_resolve_and_uris_stay_as_given(tmp_path, monkeypatch):
    from imagematching.storage import to_uri

    monkeypatch.chdir(tmp_path)
    assert to_uri("a/../b/") == (tmp_path / "b").as_uri()
    assert to_uri("s3a://bucket/data/") == "s3a://bucket/data"
    abfss = "abfss://container@account.dfs.core.windows.net/x"
    assert to_uri(abfss) == abfss, "abfss's container@account is an address, not a credential"


def test_export_tsv_format(spark, tmp_path):
    rows = spark.createDataFrame([
        ("enwiki", 7, "Ada_Lovelace", "Ada.jpg", "medium", "wikipedia", "Q5", True, ["dewiki", "frwiki"], 1, "d1",
         datetime(2026, 11, 1, 3, 0, 0)),
        ("enwiki", 10, 'Say_"Hi"_\\o/ ', "Hi.jpg", "low", "commons", None, True, [], 1, "d1",
         datetime(2026, 11, 1, 3, 0, 0)),
        ("enwiki", 9, "Bare", None, None, None, None, True, [], 1, "d1", datetime(2026, 11, 1, 3, 0, 0)),
        ("enwiki", 8, "List_of_things", "L.jpg", "high", "wikidata", "Q13406463", False, [], 1, "d1",
         datetime(2026, 11, 1, 3, 0, 0)),
        ("dewiki", 8, "Liste", "L.jpg", "high", "wikidata", "Q13406463", False, [], 1, "d1",
         datetime(2026, 11, 1, 3, 0, 0)),
    ], "wiki string, page_id long, page_title string, image_id string, confidence_rating string, source string, "
       "instance_of string, is_article_page boolean, found_on array<string>, position int, dataset_id string, "
       "insertion_ts timestamp")
    staged = io.write_exports(Storage.of(spark), io.by_wiki(rows), tmp_path.as_uri(), ["dewiki", "enwiki"], "2026-10")
    header = "page_id\tpage_title\timage_id\tconfidence_rating\tsource\tdataset_id\tinsertion_ts\twiki\tfound_on\n"
    assert staged["enwiki"] == (tmp_path / "export/prod-enwiki-2026-10-wd_image_candidates.tsv").as_uri()
    assert (tmp_path / "export/prod-enwiki-2026-10-wd_image_candidates.tsv").read_text() == header + (
        "7\tAda_Lovelace\tAda.jpg\tmedium\twikipedia\td1\t2026-11-01 03:00:00\tenwiki\tdewiki,frwiki\n"
        "9\tBare\t\t\t\td1\t2026-11-01 03:00:00\tenwiki\t\n"
        '10\tSay_"Hi"_\\o/ \tHi.jpg\tlow\tcommons\td1\t2026-11-01 03:00:00\tenwiki\t\n'
    )
    # dewiki has no article rows: its export is the header line alone.
    assert (tmp_path / "export/prod-dewiki-2026-10-wd_image_candidates.tsv").read_text() == header
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"], "the parts folder is gone"


def test_generator_is_deterministic(tmp_path):
    assert generate.generate(300, 2, "2026-10", seed=3) == generate.generate(300, 2, "2026-10", seed=3)
    assert generate.generate(300, 2, "2026-10", seed=3) != generate.generate(300, 2, "2026-10", seed=4)


def test_the_generator_writes_the_schemas_the_job_reads(spark, inputs):
    """The job reads with the schemas given (schemas.ddl); the generated files must have them."""
    from pyspark.sql.types import StructType

    for dataset in io.DATASETS:
        written = spark.read.parquet(io.dataset_uri(inputs.as_uri(), dataset, "2026-10")).schema
        assert written == StructType.fromDDL(schemas.ddl(dataset)), dataset


def test_a_run_is_at_most_fifteen_spark_jobs(inputs, tmp_path):
    """Counted from the run's event log, as the Spark History Server shows them: each action,
    shuffle stage or broadcast that runs as a job of its own is one SparkListenerJobStart."""
    events = tmp_path / "events"
    config = tmp_path / "spark.toml"  # the DAG's settings, the event log readable as text
    config.write_text((Path(__file__).parents[1] / "conf" / "spark.toml").read_text()
                      + '"spark.eventLog.compress" = false\n')
    result = subprocess.run([sys.executable, "-m", "imagematching", "--snapshot", "2026-10", "--input", str(inputs),
                             "--output", str(tmp_path / "out"), "--config", str(config), "--event-log", events.as_uri()],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    starts = [json.loads(line) for log in events.rglob("events_*") for line in log.read_text().splitlines()
              if '"SparkListenerJobStart"' in line]
    assert 0 < len(starts) <= 15, len(starts)
    # no shuffle partitions in the config: chosen from the inputs' size, two per core at this size
    # (Spark's own default would be 200 tasks in every shuffle stage)
    tasks = {json.loads(line)["Stage Info"]["Number of Tasks"] for log in events.rglob("events_*")
             for line in log.read_text().splitlines() if '"SparkListenerStageSubmitted"' in line}
    assert 2 * os.cpu_count() in tasks and 200 not in tasks, tasks


def test_shuffle_partitions_follow_the_input_size():
    assert job.shuffle_partitions(0, 2) == 4
    assert job.shuffle_partitions(10 * job.PARTITION_BYTES + 1, 2) == 11
    assert job.shuffle_partitions(10 * job.PARTITION_BYTES, 8) == 16
