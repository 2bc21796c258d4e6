"""Every project's runtime, as deployed: its own package and dependencies, nothing of Airflow or other projects."""

from __future__ import annotations

import json
import tomllib

import pytest
from conftest import REPO, run

PROJECTS = sorted(p.parent.name for p in REPO.glob("*/pyproject.toml"))
PACKAGES = {name: tomllib.loads((REPO / name / "pyproject.toml").read_text())["project"]["name"] for name in PROJECTS}


def test_there_are_projects():
    assert PROJECTS, "no project folders (a folder with a pyproject.toml) in the repository"


@pytest.mark.parametrize("project", PROJECTS)
def test_runtime_holds_the_project_and_no_airflow(deployed_release, project):
    manifest = json.loads((deployed_release.release / project / "venv.manifest.json").read_text())
    installed = {p["name"].lower().replace("_", "-") for p in manifest["packages"]}
    assert PACKAGES[project].lower() in installed
    assert not {name for name in installed if name.startswith("apache-airflow")}
    others = {PACKAGES[p].lower() for p in PROJECTS if p != project}
    assert not installed & others, f"{project}'s runtime holds other projects: {installed & others}"
    python = deployed_release.release / project / "venv/bin/python"
    probe = run(python, "-c", "import importlib.util as u; print(u.find_spec('airflow') is None)").stdout
    assert probe.strip() == "True", f"airflow is importable in {project}'s runtime"
