"""project.toml, the contract dagkit builds a project's tasks from: the real ones parse, a bad one
is refused with a message naming the place."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "dags"))

from dagkit.contract import ContractError, parse  # noqa: E402

LOCATIONS = {"output": "/data/out", "store": "s3a://bucket/store/", "events": ""}
DEMO_DIR = Path("/release/demo")
GOOD = """
kind = "spark"
[[stages]]
name = "score"
entry_point = "main.py"
config = ["conf/spark.toml"]
inputs = [{ name = "pages", uri = "{store}/pages/snapshot=<snapshot>", type = "parquet" }]
outputs = [{ name = "scores", uri = "{output}/scores/wiki=<wiki>/snapshot=<snapshot>", type = "parquet" },
           { name = "report", uri = "{output}/report.json", type = "json" }]
args = ["--snapshot", "<snapshot>", "--in", "{store}", "--config", "{project_dir}/conf/spark.toml",
        ["--event-log", "{events}"], ["--out", "{output}"], "--id=<snapshot>-<run>"]
local_values = { snapshot = "2026-10", run = "local" }
"""
CONTAINER = """
kind = "container"
[[stages]]
name = "harvest"
command = ["run"]
args = ["--date", "<date>"]
local_values = { date = "2026-11-20" }
mounts = { output = "/data" }
"""


def test_locations_are_filled_in_and_outputs_become_assets():
    stage = parse("demo", GOOD, LOCATIONS, DEMO_DIR).stage("score")
    assert stage.entry_point == "main.py" and stage.config == ("conf/spark.toml",)
    assert stage.inputs[0].uri == "s3a://bucket/store/pages/snapshot=<snapshot>"
    assert stage.inputs[0].fixed_uri == "s3a://bucket/store/pages"
    assets = stage.assets()
    assert [(a.name, a.uri, a.group) for a in assets] == [
        ("demo/scores", "file:///data/out/scores", "demo"),
        ("demo/report", "file:///data/out/report.json", "demo"),
    ]
    assert assets[0].extra == {"type": "parquet", "pattern": "/data/out/scores/wiki=<wiki>/snapshot=<snapshot>"}


def test_args_fill_locations_leave_out_empty_options_and_take_run_values():
    stage = parse("demo", GOOD, LOCATIONS, DEMO_DIR).stage("score")
    assert stage.run_values == {"snapshot", "run"}
    assert stage.arguments({"snapshot": "{{ snapshot }}", "run": "{{ run_id }}"}) == [
        "--snapshot", "{{ snapshot }}", "--in", "s3a://bucket/store", "--config", "/release/demo/conf/spark.toml",
        "--out", "/data/out", "--id={{ snapshot }}-{{ run_id }}"]  # --event-log left out: {events} is empty
    assert stage.arguments(stage.local_values)[:2] == ["--snapshot", "2026-10"]
    with pytest.raises(ContractError, match=r"stage score: no value for \['run'\]"):
        stage.arguments({"snapshot": "2026-10"})
    with pytest.raises(ContractError, match=r"\['wiki'\] are not run values of its args"):
        stage.arguments({**stage.local_values, "wiki": "enwiki"})
    with_events = parse("demo", GOOD, {**LOCATIONS, "events": "/data/events"}, DEMO_DIR)
    assert "--event-log" in with_events.stage("score").arguments(stage.local_values)


def test_a_container_stage_mounts_its_locations():
    stage = parse("demo", CONTAINER, LOCATIONS, DEMO_DIR).stage("harvest")
    assert stage.mounts == {"/data/out": "/data"}
    assert stage.arguments(stage.local_values) == ["--date", "2026-11-20"]


def test_a_container_stage_without_command_gives_its_args_to_the_images_entry_point():
    stage = parse("demo", CONTAINER.replace('command = ["run"]\n', ""), LOCATIONS, DEMO_DIR).stage("harvest")
    assert stage.command == () and stage.arguments(stage.local_values) == ["--date", "2026-11-20"]


@pytest.mark.parametrize("project", ["image-matching", "arxlive"])
def test_the_projects_run_on_their_local_values(project):
    """A bare `make run PROJECT=x` has a value for every run value of each stage's args."""
    from dagkit import stages

    for stage in stages.contract(project).stages:
        assert stage.args and stage.arguments(stage.local_values)


@pytest.mark.parametrize("project", ["image-matching", "arxlive"])
def test_the_projects_contracts_parse(project):
    from dagkit import stages

    contract = stages.contract(project)
    assert contract.stages and all(stage.outputs for stage in contract.stages)
    for stage in contract.stages:
        for name in (*stage.config, *([stage.entry_point] if stage.entry_point else [])):
            assert (REPO / project / name).is_file(), f"{project}/project.toml names {name}, which is not there"


@pytest.mark.parametrize(("text", "message"), [
    ("kind = 'spark'\n[[stages]]\nname = 'a'\n", "a spark stage needs entry_point"),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = '../../etc/passwd'\n", "a spark stage needs entry_point"),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = '/bin/sh'\n", "a spark stage needs entry_point"),
    ("kind = 'container'\n[[stages]]\nname = 'a'\ncommand = 'run'\n", "a container stage's command is a list of strings"),
    ("kind = 'python'\n[[stages]]\nname = 'a'\ncommand = ['run']\n", "a python stage needs entry_point"),
    ("kind = 'lambda'\n[[stages]]\nname = 'a'\n", "kind must be one of spark, container, python, not 'lambda'"),
    ("kind = 'spark'\n", "no [[stages]]"),
    ("kind = 'spark'\nstage = 1\n", "unknown keys ['stage']"),
    ("kind = 'spark'\n[[stages]]\nname = 'Bad Name'\n", "name must be a lower-case identifier"),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = 'm.py'\n[[stages]]\nname = 'a'\nentry_point = 'm.py'\n",
     "stage names repeat"),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = 'm.py'\nconfig = ['/etc/shadow']\n",
     "config must list files in the project folder"),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = 'm.py'\n"
     "outputs = [{ name = 'o', uri = '{nowhere}/x', type = 'tsv' }]\n",
     "o: {nowhere} is not a data location (known: events, output, project_dir, store)"),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = 'm.py'\noutputs = [{ name = 'o', uri = '/x' }]\n",
     "each entry is { name, uri, type }"),
    ("kind = 'spark'\n[[stages]\n", "demo/project.toml: "),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = 'm.py'\nargs = ['--x', '<day>']\n",
     "local_values gives no value for ['day'], which args name"),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = 'm.py'\nargs = ['<day>']\nlocal_values = { day = 1 }\n",
     "local_values is a table of strings"),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = 'm.py'\nlocal_values = { day = '1' }\n",
     "local_values: ['day'] are not run values of args"),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = 'm.py'\nargs = '--x'\n", "args: a list of strings"),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = 'm.py'\nargs = [['--x', 1]]\n",
     "each argument is a string or a list of strings"),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = 'm.py'\nargs = ['{nowhere}']\n",
     "args: {nowhere} is not a data location"),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = 'm.py'\nargs = ['--log', '{events}']\n",
     "{events} is empty; put the option and its value in a nested list"),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = 'm.py'\nmounts = { output = '/data' }\n",
     "only a container stage mounts folders"),
    ("kind = 'container'\n[[stages]]\nname = 'a'\ncommand = ['run']\nmounts = { store = '/data' }\n",
     "store is not a data location that is a folder on this host"),
    ("kind = 'container'\n[[stages]]\nname = 'a'\ncommand = ['run']\nmounts = { output = 'data/../etc' }\n",
     "the path in the container must be absolute"),
    ("kind = 'container'\n[[stages]]\nname = 'a'\ncommand = ['run']\nargs = ['{project_dir}/x']\n",
     "{project_dir} is not in the container"),
    ("kind = 'spark'\n[[stages]]\nname = 'a'\nentry_point = 'm.py'\n"
     "outputs = [{ name = 'o', uri = '{events}/x', type = 'tsv' }]\n", "o: {events} is empty in conf/airflow.toml"),
])
def test_a_bad_contract_is_refused_naming_what_is_wrong(text, message):
    with pytest.raises(ContractError) as error:
        parse("demo", text, LOCATIONS, DEMO_DIR)
    assert message in str(error.value)
    assert str(error.value).startswith("demo/project.toml")


def test_an_unknown_stage_is_named_with_the_ones_there_are():
    with pytest.raises(ContractError, match=r"no stage 'rank' \(it has: score\)"):
        parse("demo", GOOD, LOCATIONS, DEMO_DIR).stage("rank")


def test_a_stage_is_run_only_by_the_operator_of_its_kind():
    from dagkit import stages

    with pytest.raises(ContractError, match="kind is 'container'; this operator runs 'spark' stages"):
        stages.spark_submit("arxlive", "harvest_and_enrich")


def test_the_platform_facts_name_the_stage_and_hash_its_config():
    import hashlib
    import json

    from dagkit import provenance, stages

    stage = stages.contract("image-matching").stage("image_matching")
    facts = json.loads(provenance.environment(stage)[provenance.ENVIRONMENT_VARIABLE])
    assert facts["stage"] == {"project": "image-matching", "name": "image_matching", "config_sha256": {
        "conf/spark.toml": hashlib.sha256((REPO / "image-matching/conf/spark.toml").read_bytes()).hexdigest()}}
    assert facts["release"]["version"] == "dev"  # a checkout has no release manifest


@pytest.mark.parametrize("location", ["s3a://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/in", "hdfs://etl:hunter2@namenode:8020/in"])
def test_a_data_location_with_a_password_is_refused_without_repeating_it(location):
    import dagkit

    with pytest.raises(ValueError, match=r"credentials in the data location \w+://\*\*\*@") as refused:
        dagkit.data_location(location)
    secret = location.partition("://")[2].partition("@")[0].partition(":")[2]
    assert secret not in str(refused.value)


def test_data_locations_without_a_password_are_kept_or_placed(monkeypatch, tmp_path):
    import dagkit

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert dagkit.data_location("abfss://container@account.dfs.core.windows.net/in") == \
        "abfss://container@account.dfs.core.windows.net/in"
    assert dagkit.data_location("s3a://bucket/in") == "s3a://bucket/in"
    assert dagkit.data_location("image-matching/in") == str(tmp_path / "data" / "image-matching" / "in")


def test_a_python_stage_runs_its_entry_point_as_python_would_and_gives_the_operator_its_argv_back(tmp_path, capsys):
    """dagkit.stages.run_entry_point is what ExternalPythonOperator runs in the runtime's python."""
    from dagkit.stages import run_entry_point

    entry_point = tmp_path / "main.py"
    entry_point.write_text("import sys\nprint(sys.argv[1:], __name__)\nsys.exit(int(sys.argv[1]))\n")
    script_argv = list(sys.argv)
    run_entry_point(str(entry_point), "0", "--x")  # sys.exit(0) is success
    assert capsys.readouterr().out == "['0', '--x'] __main__\n"
    with pytest.raises(SystemExit) as failed:
        run_entry_point(str(entry_point), "3")
    assert failed.value.code == 3
    assert sys.argv == script_argv
