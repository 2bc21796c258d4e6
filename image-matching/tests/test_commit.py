"""One commit per run: a run stopped at any step leaves readers the previous run, whole, or (while
publishing) no committed run at all; the next run finishes or removes what it left."""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from imagematching import commit, generate, io, job
from imagematching.storage import Storage

SNAPSHOT = "2026-10"


class Killed(BaseException):
    """Stands for SIGKILL inside the test's process: nothing in the job catches a BaseException."""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("input")
    generate.write(generate.generate(pages=300, wikis=2, snapshot=SNAPSHOT, seed=11), root, SNAPSHOT)
    return root


@pytest.fixture(scope="module")
def committed_output(spark, inputs, tmp_path_factory) -> Path:
    """An output folder holding one committed run, dataset 'old'."""
    output = tmp_path_factory.mktemp("committed")
    run(spark, inputs, output, "old")
    return output


def run(spark, inputs, output, dataset_id, on_phase=lambda phase: None):
    return job.run(spark, job.Run(input=inputs, output=output, snapshot=SNAPSHOT, wikis=None, dataset_id=dataset_id,
                                  insertion_ts=datetime(2026, 11, 1, 3, 0, 0)), on_phase=on_phase)


def committed_dataset(spark, output: Path) -> str:
    """The committed run's dataset id, after checking that every output a reader finds through the
    marker belongs to it."""
    storage = Storage.of(spark)
    marker = commit.committed(storage, output.as_uri(), SNAPSHOT)
    summary = commit.committed_summary(storage, output.as_uri(), SNAPSHOT)
    assert sorted(summary["wikis"]) == marker["wikis"]
    for wiki in marker["wikis"]:
        rows = spark.read.parquet(str(output / f"imagerec_prod/wiki={wiki}/snapshot={SNAPSHOT}"))
        assert {r.dataset_id for r in rows.select("dataset_id").distinct().collect()} == {marker["dataset_id"]}
        with open(output / "export" / f"snapshot={SNAPSHOT}" / io.export_name(wiki, SNAPSHOT), newline="") as f:
            tsv = list(csv.DictReader(f, delimiter="\t"))
        assert len(tsv) == summary["wikis"][wiki]["export_rows"] and {r["dataset_id"] for r in tsv} == {marker["dataset_id"]}
    for kind in ("html", "json"):
        assert marker["dataset_id"] in (output / "report" / f"snapshot={SNAPSHOT}.{kind}").read_text()
    return marker["dataset_id"]


def staging_leftovers(output: Path) -> list[str]:
    """The run folders in the snapshot's staging folder."""
    staging = output / "_staging" / f"snapshot={SNAPSHOT}"
    return sorted(p.name for p in staging.iterdir()) if staging.exists() else []


# (phase the run is stopped at, what readers see then, what they see once the next run recovered)
@pytest.mark.parametrize("phase, after_kill, after_recovery", [
    ("recovered", "old", "old"),
    ("wrote imagerec_prod", "old", "old"),
    ("wrote exports", "old", "old"),
    ("wrote report", "old", "old"),
    ("staged", "old", "new"),
    ("unpublished", None, "new"),
    ("published", None, "new"),
    ("committed", "new", "new"),
])
def test_a_run_stopped_at_each_phase(spark, inputs, committed_output, tmp_path, phase, after_kill, after_recovery):
    output = tmp_path / "out"
    shutil.copytree(committed_output, output)

    def stop(reached: str) -> None:
        if reached.startswith(phase):
            raise Killed(reached)

    with pytest.raises(Killed):
        run(spark, inputs, output, "new", on_phase=stop)
    if after_kill is None:
        with pytest.raises(io.InputError, match="has no committed run"):
            commit.committed(Storage.of(spark), output.as_uri(), SNAPSHOT)
    else:
        assert committed_dataset(spark, output) == after_kill
    # The next run of the snapshot starts by recovering (its first phase), then computes its own.
    phases = []
    commit.begin(Storage.of(spark), output.as_uri(), SNAPSHOT, phases.append)
    assert phases[-1] == "recovered" and staging_leftovers(output) == []
    assert committed_dataset(spark, output) == after_recovery


def test_sigkill_while_spark_writes_leaves_the_committed_run(spark, inputs, committed_output, tmp_path):
    output = tmp_path / "out"
    shutil.copytree(committed_output, output)
    job_process = subprocess.Popen(
        [sys.executable, "-m", "imagematching", "--snapshot", SNAPSHOT, "--input", str(inputs), "--output", str(output),
         "--dataset-id", "killed", "--event-log", "off"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        for line in job_process.stderr:
            if line.strip() == "imagematching: wrote imagerec_prod":  # Spark is writing the exports now
                job_process.send_signal(signal.SIGKILL)
                break
    finally:
        job_process.kill()
        job_process.wait(timeout=60)
    assert job_process.returncode == -signal.SIGKILL
    assert committed_dataset(spark, output) == "old"
    assert staging_leftovers(output), "the killed run left its staging folder"
    run(spark, inputs, output, "next")
    assert committed_dataset(spark, output) == "next" and staging_leftovers(output) == []
