"""`make venv` builds a runtime inside the builder container, against a real Docker engine."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from conftest import REPO, make_variable, run

pytestmark = pytest.mark.docker

HELLO = Path(__file__).parent / "fixtures/hello"


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A checkout with the platform's build files, the hello project and this repo's platform env."""
    tree = tmp_path / "checkout"
    tree.mkdir()
    for name in ("Makefile", "conda", "platformkit", "requirements", "local.env"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tree / name)
    shutil.copytree(HELLO, tree / "hello")
    (tree / ".venv").symlink_to(REPO / ".venv")
    return tree


def test_make_venv_builds_in_the_builder_container(docker_engine, checkout, tmp_path):
    # This machine's settings (local.mk after `make docker-engine`), as make in the checkout would read them.
    builder_base = make_variable("BUILDER_BASE_IMAGE")
    make = ["make", "-C", checkout, "venv", f"BUILDER_BASE_IMAGE={builder_base}",
            f"EXTRA_CA_BUNDLE={make_variable('EXTRA_CA_BUNDLE')}"]
    built = run(*make, timeout=900)
    assert "hello: no conda" in built.stdout or "building with" in built.stdout
    manifest = json.loads((checkout / "hello/venv.manifest.json").read_text())
    assert manifest["builder"].endswith(f"docker:{builder_base}")
    assert not any(p["name"].lower().startswith("apache-airflow") for p in manifest["packages"])

    # The runtime runs in a container of the image it was built for, unpacked at another path.
    with tarfile.open(checkout / "hello/venv.tar.gz") as tar:
        tar.extractall(tmp_path / "runtime", filter="fully_trusted")
    out = run(docker_engine, "run", "--rm", "-v", f"{tmp_path / 'runtime'}:/opt/hello:ro", builder_base,
              "/opt/hello/bin/python", "-m", "hello").stdout
    assert "hello from /opt/hello" in out

    again = run(*make, timeout=900)
    assert "hello: up to date" in again.stdout
