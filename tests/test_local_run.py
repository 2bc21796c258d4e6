"""`make shell` and `make run`: image-matching's runtime and stage on this machine, without Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, run

GENERATOR_PYTHON = REPO / "image-matching/.venv/bin/python"
PLATFORMKIT = [sys.executable, "-m", "platformkit"]


@pytest.fixture(scope="module")
def runtime():
    """image-matching's packed runtime, built as `make venv` builds it (nothing when current)."""
    run("make", "-C", REPO, "venv", "PROJECT=image-matching", timeout=1800)


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory, runtime):
    """An AIRFLOW_HOME whose data folder holds generated inputs, where conf/airflow.toml points."""
    if not GENERATOR_PYTHON.exists():
        run("make", "-C", REPO, "image-matching/.venv/.installed", timeout=900)
    home = tmp_path_factory.mktemp("local-run-home")
    run(GENERATOR_PYTHON, "-m", "imagematching.generate", "--pages", "300", "--wikis", "2",
        "--snapshot", "2026-10", "--output", home / "data/image-matching/input")
    return home


def platformkit(*args, airflow_home, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*PLATFORMKIT, *map(str, args)], cwd=REPO, input=stdin, capture_output=True, text=True,
                          env={**os.environ, "AIRFLOW_HOME": str(airflow_home)}, timeout=1200)


def test_shell_runs_stdin_in_the_unpacked_runtime_with_spark(airflow_home):
    script = "\n".join([
        "python -c 'import sys; print(sys.prefix)'",
        "python -c 'import pyspark, imagematching; print(pyspark.__version__)'",
        "python -c 'import json, os; print(json.loads(os.environ[\"PLATFORM_PROVENANCE\"])[\"runtime_sha256\"])'",
        "exit 7",
    ])
    result = platformkit("shell", "image-matching", airflow_home=airflow_home, stdin=script)
    assert result.returncode == 7, result.stderr  # the commands' status is the shell's
    prefix, spark_version, runtime_sha256 = result.stdout.split()
    manifest = json.loads((REPO / "image-matching/venv.manifest.json").read_text())
    assert prefix == str(REPO / ".runtimes" / f"image-matching-{manifest['archive_sha256'][:16]}")
    assert runtime_sha256 == manifest["archive_sha256"]
    import pyspark

    assert spark_version == pyspark.__version__, "the Spark of the DAG's spark-submit"


def test_unknown_project_or_stage_is_named(airflow_home):
    result = platformkit("run", "no-such-project", airflow_home=airflow_home)
    assert result.returncode == 1 and "no-such-project" in result.stderr, result.stderr
    result = platformkit("run", "--stage", "no_such_stage", "image-matching", airflow_home=airflow_home)
    assert result.returncode == 1 and "no_such_stage" in result.stderr, result.stderr


@pytest.mark.slow
def test_run_writes_provenance_then_skips_until_an_input_or_the_config_changes(airflow_home):
    data = airflow_home / "data/image-matching"
    args = ["--snapshot", "2026-10", "--input", data / "input", "--output", data / "output"]

    first = platformkit("run", "image-matching", *args, airflow_home=airflow_home)
    assert first.returncode == 0, first.stderr[-4000:]
    assert "image_matching: running (output imagerec_prod has no provenance" in first.stdout
    sidecar = json.loads((data / "output/export/snapshot=2026-10/_provenance.json").read_text())
    assert sidecar["launch"]["args"] == [str(a) for a in args]
    assert sidecar["stage"]["name"] == "image_matching" and "conf/spark.toml" in sidecar["stage"]["config_sha256"]
    assert {i["uri"].rsplit("/", 2)[1] for i in sidecar["inputs"]} >= {"mediawiki_page", "wikidata_entity"}
    for wiki in sidecar["params"]["wikis"]:
        assert (data / f"output/imagerec_prod/wiki={wiki}/snapshot=2026-10/_provenance.json").is_file()
        assert (data / f"output/export/snapshot=2026-10/prod-{wiki}-2026-10-wd_image_candidates.tsv").is_file()

    again = platformkit("run", "image-matching", *args, airflow_home=airflow_home)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "image_matching: skipped (up to date)" in again.stdout

    # The config's hash is the platform's (dagkit.provenance); a changed file is seen as changed.
    from platformkit import up_to_date

    changed_config = {**sidecar, "stage": {**sidecar["stage"], "config_sha256": {"conf/spark.toml": "0" * 64}}}
    outputs = [("export", (data / "output/export").as_uri())]
    assert up_to_date.stale_because(outputs, sidecar) is None
    assert up_to_date.stale_because(outputs, changed_config).startswith("config changed since")

    page = next((data / "input/mediawiki_page/snapshot=2026-10").rglob("*.parquet"))
    os.utime(page, ns=(page.stat().st_atime_ns, page.stat().st_mtime_ns + 5_000_000_000))
    rerun = platformkit("run", "image-matching", *args, airflow_home=airflow_home)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert "image_matching: running (input file://" in rerun.stdout and "mediawiki_page" in rerun.stdout
    assert "skipped" in platformkit("run", "image-matching", *args, airflow_home=airflow_home).stdout
