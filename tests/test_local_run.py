"""`make shell` and `make run` on this machine, without Airflow: image-matching's runtime and stage
(spark), arxlive's container (its image as `make image` builds it, on the Docker engine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import REPO, make_variable, remove_image_tags, run

GENERATOR_PYTHON = REPO / "image-matching/.venv/bin/python"
ARXLIVE_PYTHON = REPO / "arxlive/.venv/bin/python"
PLATFORMKIT = [sys.executable, "-m", "platformkit"]
API_KEY = "oa-key-never-in-local-logs-5c1d"


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


def platformkit(*args, airflow_home, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*PLATFORMKIT, *map(str, args)], cwd=REPO, input=stdin, capture_output=True, text=True,
                          env={**os.environ, "AIRFLOW_HOME": str(airflow_home), **(env or {})}, timeout=1200)


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


def on_a_terminal(command: list, typed: str, env: dict, timeout: float = 120) -> tuple[int, str]:
    """Run `command` with a pseudo-terminal as its stdin, stdout and stderr, type `typed` into it;
    its exit status and everything it wrote."""
    import pty
    import select

    controller, terminal = pty.openpty()
    process = subprocess.Popen(command, stdin=terminal, stdout=terminal, stderr=terminal, cwd=REPO, env=env,
                               start_new_session=True)
    os.close(terminal)
    os.write(controller, typed.encode())
    written, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([controller], [], [], 1)[0]:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: every process on it exited
                break
            if not chunk:
                break
            written += chunk
    os.close(controller)
    return process.wait(timeout=30), written.decode(errors="replace")


def test_shell_on_a_terminal_is_interactive_with_the_projects_prompt(airflow_home):
    status, written = on_a_terminal([*PLATFORMKIT, "shell", "image-matching"],
                                    "python -c 'import sys; print(\"prefix=\" + sys.prefix)'\nexit 5\n",
                                    {**os.environ, "AIRFLOW_HOME": str(airflow_home), "TERM": "dumb"})
    assert status == 5, written
    assert "shell: image-matching's runtime" in written and "exit to leave" in written, written
    assert "(image-matching) " in written, "an interactive bash with the project's prompt"
    manifest = json.loads((REPO / "image-matching/venv.manifest.json").read_text())
    assert f"prefix={REPO}/.runtimes/image-matching-{manifest['archive_sha256'][:16]}" in written


def test_unknown_project_stage_or_run_value_is_named(airflow_home):
    result = platformkit("run", "no-such-project", airflow_home=airflow_home)
    assert result.returncode == 1 and "no-such-project" in result.stderr, result.stderr
    result = platformkit("run", "--stage", "no_such_stage", "image-matching", airflow_home=airflow_home)
    assert result.returncode == 1 and "no_such_stage" in result.stderr, result.stderr
    result = platformkit("run", "--set", "no_such_value=1", "image-matching", airflow_home=airflow_home)
    assert result.returncode == 1 and "--set no_such_value: no stage" in result.stderr, result.stderr
    result = platformkit("run", "--set", "snapshot", "image-matching", airflow_home=airflow_home)
    assert result.returncode == 1 and "--set takes name=value, not 'snapshot'" in result.stderr, result.stderr
    result = platformkit("run", "--set", "snapshot=2026-09", "image-matching", "--snapshot", "2026-09",
                         airflow_home=airflow_home)
    assert result.returncode == 1 and "give one" in result.stderr, result.stderr


def test_the_contracts_args_are_the_dags_with_local_values(airflow_home, monkeypatch):
    """make run's arguments are the contract's (the DAG's task gets the same: test_dag_integrity), run values
    from project.toml's local_values or --set."""
    from platformkit import launch, stage_runtime

    monkeypatch.setenv("AIRFLOW_HOME", str(airflow_home))
    kit = stage_runtime.dagkit(REPO)
    kit.stages.contract.cache_clear()  # its locations depend on AIRFLOW_HOME
    stage = kit.stages.contract("image-matching").stage("image_matching")
    data = airflow_home / "data/image-matching"
    assert launch.arguments(kit, stage, {"wikis": "enwiki"}) == [
        "--snapshot", "2026-10", "--wikis", "enwiki", "--input", str(data / "input"), "--output", str(data / "output"),
        "--config", str(REPO / "image-matching/conf/spark.toml"), "--dataset-id", "local"]
    kit.stages.contract.cache_clear()


@pytest.mark.slow
def test_run_writes_provenance_then_skips_until_an_input_or_the_config_changes(airflow_home):
    data = airflow_home / "data/image-matching"
    first = platformkit("run", "image-matching", airflow_home=airflow_home)
    assert first.returncode == 0, first.stderr[-4000:]
    assert "image_matching: running (output imagerec_prod has no provenance" in first.stdout
    sidecar = json.loads((data / "output/export/snapshot=2026-10/_provenance.json").read_text())
    assert sidecar["launch"]["args"][:4] == ["--snapshot", "2026-10", "--wikis", "all"]
    assert sidecar["params"]["dataset_id"] == "local"
    assert sidecar["stage"]["name"] == "image_matching" and "conf/spark.toml" in sidecar["stage"]["config_sha256"]
    assert {i["uri"].rsplit("/", 2)[1] for i in sidecar["inputs"]} >= {"mediawiki_page", "wikidata_entity"}
    for wiki in sidecar["params"]["wikis"]:
        assert (data / f"output/imagerec_prod/wiki={wiki}/snapshot=2026-10/_provenance.json").is_file()
        assert (data / f"output/export/snapshot=2026-10/prod-{wiki}-2026-10-wd_image_candidates.tsv").is_file()

    again = platformkit("run", "image-matching", airflow_home=airflow_home)
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
    rerun = platformkit("run", "image-matching", airflow_home=airflow_home)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert "image_matching: running (input file://" in rerun.stdout and "mediawiki_page" in rerun.stdout
    assert "skipped" in platformkit("run", "image-matching", airflow_home=airflow_home).stdout


def test_a_container_stages_input_in_its_image_is_unchanged_while_the_image_is(tmp_path):
    from platformkit import up_to_date

    image = {"reference": "localhost/demo:v1", "image_id": "sha256:" + "a" * 64}
    launch = {"args": ["--input", "/opt/demo/sample.csv", "--output", "/data/out"]}
    facts = {"stage": {"name": "count", "config_sha256": {}}, "runtime_sha256": "r", "image": image, "launch": launch}
    (tmp_path / "out").mkdir()
    (tmp_path / "out/_provenance.json").write_text(json.dumps({
        **facts, "inputs": [{"uri": "file:///opt/demo/sample.csv", "bytes": 10, "modified": "2026-11-01T00:00:00.000+00:00"}],
        "outputs": [{"uri": "file:///data/out"}]}))
    outputs, mounts = [("out", (tmp_path / "out").as_uri())], {str(tmp_path): "/data"}
    assert up_to_date.stale_because(outputs, facts, mounts) is None
    rebuilt = {**facts, "image": {**image, "image_id": "sha256:" + "b" * 64}}
    assert up_to_date.stale_because(outputs, rebuilt, mounts).startswith(
        "input file:///opt/demo/sample.csv is in the image, which changed since")
    # what is not a path (arxlive's APIs) is never the image's; nor is a path under a mount
    assert not up_to_date.in_image("https://api.openalex.org/works", mounts)
    assert not up_to_date.in_image("file:///data/in.csv", mounts)
    # without an image (a python or spark stage) the path is this host's, which has no such file
    assert up_to_date.stale_because(outputs, {**facts, "image": None}, mounts).endswith(" -> missing)")


@pytest.fixture(scope="module")
def arxlive_image(docker_engine):
    """arxlive's image as `make image` builds it from this checkout (the runtime and layers are cached:
    seconds when nothing changed); its tags removed afterwards."""
    run("make", "-C", REPO, "image", "PROJECT=arxlive", timeout=1800)
    yield
    remove_image_tags(make_variable("IMAGE_REPOSITORY"), "arxlive", make_variable("VERSION"))


@pytest.fixture
def arxlive_home(tmp_path):
    """An AIRFLOW_HOME whose arxlive data folder is owned by another user than this one when it can be."""
    data = tmp_path / "data/arxlive"
    data.mkdir(parents=True)
    if os.geteuid() == 0:
        os.chown(data, 4321, 4321)
    return tmp_path


@pytest.fixture
def fake_services():
    """arXiv and OpenAlex on loopback (arxlive/tests/fakes); their URLs."""
    if not ARXLIVE_PYTHON.exists():
        run("make", "-C", REPO, "arxlive/.venv/.installed", timeout=900)
    server = subprocess.Popen([ARXLIVE_PYTHON, "-m", "fakes", "--records", "30", "--page-size", "25", "--api-key", API_KEY],
                              stdout=subprocess.PIPE, text=True, cwd=REPO / "arxlive/tests")
    yield dict(server.stdout.readline().strip().split("=", 1) for _ in range(2))
    server.terminate()
    server.wait(timeout=10)


@pytest.mark.docker
def test_container_shell_has_the_dags_mounts_user_and_environment_but_no_secret(arxlive_image, arxlive_home):
    data = arxlive_home / "data/arxlive"
    script = "\n".join([
        "id -u",
        "echo $ARXLIVE_DATA_DIR $ARXLIVE_OAI_SET",
        "printenv ARXLIVE_OPENALEX_API_KEY || echo no-key",
        "python -c 'import json, os; print(json.loads(os.environ[\"PLATFORM_PROVENANCE\"])[\"image\"][\"reference\"])'",
        "touch /data/from-the-shell",
        "exit 7",
    ])
    # The key is in the launcher's environment, as a developer's shell may have it: the container gets
    # it only when it is named.
    result = platformkit("shell", "arxlive", airflow_home=arxlive_home, stdin=script,
                         env={"ARXLIVE_OPENALEX_API_KEY": API_KEY})
    assert result.returncode == 7, result.stderr  # the commands' status is the shell's
    uid, data_dir, key, image = result.stdout.splitlines()
    assert uid == str(data.stat().st_uid), "the container runs as the mounted folder's owner"
    assert data_dir == "/data cs", "the DAG's environment (conf/airflow.toml)"
    assert key == "no-key"
    assert image.startswith("localhost/arxlive:") and (data / "from-the-shell").is_file()

    named = platformkit("shell", "--pass-env", "ARXLIVE_OPENALEX_API_KEY", "arxlive", airflow_home=arxlive_home,
                        stdin=f'[ "$ARXLIVE_OPENALEX_API_KEY" = "{API_KEY}" ] && echo key-given',
                        env={"ARXLIVE_OPENALEX_API_KEY": API_KEY})
    assert named.returncode == 0 and named.stdout == "key-given\n", named.stderr
    assert API_KEY not in result.stderr + named.stderr


@pytest.mark.docker
def test_container_run_writes_the_export_with_provenance_and_no_secret(arxlive_image, arxlive_home, fake_services):
    data = arxlive_home / "data/arxlive"
    env = {**fake_services, "ARXLIVE_OPENALEX_API_KEY": API_KEY, "ARXLIVE_MAILTO": "data-platform@example.org"}
    passed = [option for name in env for option in ("--pass-env", name)]
    # the fakes listen on the host's loopback
    first = platformkit("run", "--network", "host", *passed, "arxlive", airflow_home=arxlive_home, env=env)
    assert first.returncode == 0, first.stderr[-4000:]
    assert "harvest_and_enrich: running (output articles has no provenance" in first.stdout
    assert API_KEY not in first.stdout + first.stderr
    export = data / "production/exports/articles-2026-11-20.jsonl"  # project.toml's local date
    assert export.stat().st_size > 0
    sidecar = json.loads(export.with_name(export.name + ".provenance.json").read_text())
    assert sidecar["launch"]["args"] == ["--date", "2026-11-20", "--from", "", "--until", "", "--production"]
    assert sidecar["image"]["reference"].startswith("localhost/arxlive:") and sidecar["image"]["image_id"]
    manifest = json.loads((REPO / "arxlive/venv.manifest.json").read_text())
    assert sidecar["runtime_sha256"] == manifest["archive_sha256"]
    # What it read came from HTTP servers: nothing here can tell whether it changed, so it runs again.
    again = platformkit("run", "--network", "host", *passed, "arxlive", airflow_home=arxlive_home, env=env)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "harvest_and_enrich: running (input http://127.0.0.1" in again.stdout and "cannot be checked here" in again.stdout
