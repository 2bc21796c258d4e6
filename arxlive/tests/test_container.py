"""The image: built like `make image` does, run with --network host against the fakes on loopback.

BASE_IMAGE and EXTRA_CA_BUNDLE are read from the environment like the Makefile does
(e.g. BASE_IMAGE=localhost/platform-base:bookworm EXTRA_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
where no registry is reachable); without BASE_IMAGE the Dockerfile's public default is used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import PROJECT, require, stats, summary_of

pytestmark = pytest.mark.docker

TAG = "localhost/arxlive:pytest"
PLANTED = "PLANTED-api-key-7f3c9e21d4"
RUNTIME_KEY = "runtime-api-key-55aa11"


def docker(*args, timeout=600, check=True, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


@pytest.fixture(scope="session")
def image(tmp_path_factory):
    if shutil.which("docker") is None:
        require("REQUIRE_DOCKER", "docker CLI not installed")
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        require("REQUIRE_DOCKER", "Docker engine not reachable (docker info failed)")
    base = os.environ.get("BASE_IMAGE") or "python:3.11-slim-bookworm"
    if subprocess.run(["docker", "image", "inspect", base], capture_output=True, timeout=60).returncode != 0 and \
            subprocess.run(["docker", "pull", base], capture_output=True, timeout=300).returncode != 0:
        require("REQUIRE_DOCKER", f"base image {base} is not here and cannot be pulled "
                                  "(set BASE_IMAGE, e.g. localhost/platform-base:bookworm from make docker-engine)")
    ctx = tmp_path_factory.mktemp("context")
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "requirements.lock", "luigi.cfg"):
        shutil.copy2(PROJECT / name, ctx / name)
    shutil.copytree(PROJECT / "src", ctx / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (ctx / ".extra-ca").mkdir()
    if os.environ.get("EXTRA_CA_BUNDLE"):
        shutil.copy(os.environ["EXTRA_CA_BUNDLE"], ctx / ".extra-ca" / "extra.crt")
    # credentials a careless developer left lying around must not reach the image
    (ctx / ".env").write_text(f"ARXLIVE_OPENALEX_API_KEY={PLANTED}\n")
    (ctx / "src" / "arxlive" / ".env").write_text(f"ARXLIVE_OPENALEX_API_KEY={PLANTED}\n")
    (ctx / "openalex.key").write_text(PLANTED)
    args = ["build", "-q", "-t", TAG, "--build-arg", f"BASE_IMAGE={base}"]
    docker(*args, str(ctx), timeout=900,
           env={**os.environ, "ARXLIVE_OPENALEX_API_KEY": PLANTED})
    return TAG


def run_image(image, env: dict, data: Path, *args, timeout=180):
    data.mkdir(parents=True, exist_ok=True)
    os.chmod(data, 0o777)   # the container runs as uid 10001
    cmd = ["run", "--rm", "--network", "host", "-v", f"{data}:/data"]
    for k, v in env.items():
        cmd += ["-e", f"{k}={v}"]
    return docker(*cmd, image, *args, timeout=timeout, check=False)


def container_env(oai, oa, **extra):
    env = {"ARXLIVE_OAI_URL": oai.url, "ARXLIVE_OPENALEX_URL": oa.url, "ARXLIVE_OAI_DELAY": "0",
           "ARXLIVE_BACKOFF_BASE": "0.01", "ARXLIVE_RETRY_AFTER_MAX": "0.05", "ARXLIVE_MAX_RETRIES": "2"}
    env.update(extra)
    return env


def test_container_runs_the_pipeline(image, fakes, tmp_path):
    oai, oa = fakes(40, page_size=10, api_key=RUNTIME_KEY, mailto="ops@example.org")
    env = container_env(oai, oa, ARXLIVE_OPENALEX_API_KEY=RUNTIME_KEY, ARXLIVE_MAILTO="ops@example.org")
    r = run_image(image, env, tmp_path / "data", "run", "--date", "2026-11-20", "--production")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    s = summary_of(r.stdout)   # the summary goes to stdout (the task log)
    assert (s["mode"], s["harvested"], s["deferred"]) == ("production", 40, 0)
    assert s["enriched"] > 0 and s["api_calls"] == stats(oa)["calls"]
    assert s["export"] == "/data/production/exports/articles-2026-11-20.jsonl"
    export = tmp_path / "data/production/exports/articles-2026-11-20.jsonl"
    assert len(export.read_text(encoding="utf-8").splitlines()) == s["exported"]
    assert (tmp_path / "data/production/arxlive.sqlite").exists()
    assert RUNTIME_KEY not in out and "api_key=***" in out
    # the same date again in a new container: nothing to do, no API calls
    calls = stats(oa)["calls"]
    r2 = run_image(image, env, tmp_path / "data", "run", "--date", "2026-11-20", "--production")
    assert r2.returncode == 0 and summary_of(r2.stdout)["exported"] == s["exported"]
    assert stats(oa)["calls"] == calls


def test_container_failure_exits_non_zero(image, fakes, tmp_path):
    oai, oa = fakes(10)
    oai.faults.set("badargument*inf")
    r = run_image(image, container_env(oai, oa), tmp_path / "data", "run", "--date", "2026-11-20")
    assert r.returncode == 30, r.stdout + r.stderr
    assert "badArgument" in r.stdout + r.stderr
    bad = run_image(image, container_env(oai, oa, ARXLIVE_OAI_DELAY="soon"), tmp_path / "data2",
                    "run", "--date", "2026-11-20")
    assert bad.returncode == 2 and "ARXLIVE_OAI_DELAY" in bad.stderr
    future = run_image(image, container_env(oai, oa), tmp_path / "data3", "run", "--date", "2099-01-01")
    assert future.returncode == 2 and future.stderr.startswith("arxlive: --date 2099-01-01 is in the future")


def test_image_holds_no_credentials_and_runs_as_non_root(image):
    info = json.loads(docker("image", "inspect", image).stdout)[0]
    cfg = info["Config"]
    assert cfg["User"] not in ("", "0", "root")
    assert cfg["Entrypoint"] == ["arxlive"]
    env = "\n".join(cfg.get("Env") or [])
    assert PLANTED not in env and "API_KEY" not in env and "LUIGI_CONFIG_PATH=/opt/arxlive/luigi.cfg" in env
    history = docker("history", "--no-trunc", image).stdout
    assert PLANTED not in history
    # every file of the image's filesystem
    cid = docker("create", image).stdout.strip()
    try:
        proc = subprocess.Popen(["docker", "export", cid], stdout=subprocess.PIPE)
        names, hits = [], []
        needle = PLANTED.encode()
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for m in tar:
                names.append(m.name)
                if m.isfile():
                    f = tar.extractfile(m)
                    if f is not None and needle in f.read():
                        hits.append(m.name)
        proc.wait(timeout=120)
    finally:
        docker("rm", "-f", cid, check=False)
    assert not hits, f"planted key found in {hits}"
    assert not [n for n in names if "extra-ca" in n or n.endswith("/ca.pem") or n.endswith(".env")]
    assert "opt/arxlive/luigi.cfg" in names
    # the final stage holds the venv and luigi.cfg, not the build inputs, and no test code
    assert not [n for n in names if n.startswith(("src/", "tmp/")) and not n.endswith("/")]
    ours = [n for n in names if "/site-packages/arxlive/" in n]
    assert ours and not [n for n in ours + names if "site-packages/fakes" in n or "site-packages/arxlive/tests" in n
                         or "site-packages/arxlive/fakes" in n]
