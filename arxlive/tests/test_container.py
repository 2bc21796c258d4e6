"""The image: built like `make image` does, run with --network host against the fakes on loopback.

The image is the base image plus arxlive/venv.tar.gz, which `make venv PROJECT=arxlive` builds in
the runtime builder first (nothing when it is up to date). BASE_IMAGE and EXTRA_CA_BUNDLE come
from the environment, else from the Makefile's settings (local.mk after `make docker-engine`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import PROJECT, require, stats, summary_of

pytestmark = pytest.mark.docker

REPO = PROJECT.parent
TAG = "localhost/arxlive:pytest"
PLANTED = "PLANTED-api-key-7f3c9e21d4"
RUNTIME_KEY = "runtime-api-key-55aa11"


def docker(*args, timeout=600, check=True, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def make(*args, timeout=1800) -> str:
    r = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(REPO), *args],
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"make {' '.join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="session")
def image(tmp_path_factory):
    if shutil.which("docker") is None:
        require("REQUIRE_DOCKER", "docker CLI not installed")
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        require("REQUIRE_DOCKER", "Docker engine not reachable (docker info failed)")
    base = os.environ.get("BASE_IMAGE") or make("--eval", "base-image: ; @echo $(BASE_IMAGE)", "base-image").strip()
    if subprocess.run(["docker", "image", "inspect", base], capture_output=True, timeout=60).returncode != 0 and \
            subprocess.run(["docker", "pull", base], capture_output=True, timeout=300).returncode != 0:
        require("REQUIRE_DOCKER", f"base image {base} is not here and cannot be pulled "
                                  "(run make docker-engine, which builds localhost/platform-base:bookworm)")
    make("venv", "PROJECT=arxlive")
    ctx = tmp_path_factory.mktemp("context")
    for name in ("Dockerfile", ".dockerignore", "luigi.cfg", "venv.tar.gz"):
        shutil.copy2(PROJECT / name, ctx / name)
    # credentials a careless developer left lying around must not reach the image
    shutil.copytree(PROJECT / "src", ctx / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (ctx / ".env").write_text(f"ARXLIVE_OPENALEX_API_KEY={PLANTED}\n")
    (ctx / "src" / "arxlive" / ".env").write_text(f"ARXLIVE_OPENALEX_API_KEY={PLANTED}\n")
    (ctx / "openalex.key").write_text(PLANTED)
    runtime_sha256 = hashlib.sha256((ctx / "venv.tar.gz").read_bytes()).hexdigest()
    docker("build", "-q", "-t", TAG, "--build-arg", f"BASE_IMAGE={base}",
           "--build-arg", f"RUNTIME_SHA256={runtime_sha256}", str(ctx), timeout=900,
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
    # the runtime unpacked and luigi.cfg, not the build inputs
    assert not [n for n in names if n.startswith(("src/", "tmp/")) and not n.endswith("/")]
    assert not [n for n in names if n.endswith("venv.tar.gz")]
    ours = [n for n in names if "/site-packages/arxlive/" in n]
    assert ours and not [n for n in ours + names if "site-packages/fakes" in n or "site-packages/arxlive/tests" in n
                         or "site-packages/arxlive/fakes" in n]


def test_image_runs_the_packed_runtime_with_its_bytecode(image):
    """The runtime in the image is arxlive/venv.tar.gz, unpacked as it is: no second install,
    and every module compiled, since its user cannot write a cache there."""
    labels = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]["Labels"]
    assert labels["platform.runtime.sha256"] == hashlib.sha256((PROJECT / "venv.tar.gz").read_bytes()).hexdigest()
    manifest = json.loads((PROJECT / "venv.manifest.json").read_text())
    probe = ("import importlib.metadata as m, importlib.util as u, json, os, sys, arxlive.tasks as t; "
             "print(json.dumps({'prefix': sys.prefix, 'packages': sorted(d.metadata['Name'].lower() for d in m.distributions()), "
             "'cached': os.path.exists(u.cache_from_source(t.__file__)), 'uid': os.getuid()}))")
    out = json.loads(docker("run", "--rm", "--entrypoint", "python", image, "-c", probe).stdout)
    assert out["prefix"] == "/opt/runtime" and out["uid"] == 10001
    assert out["packages"] == sorted(p["name"].lower() for p in manifest["packages"])
    assert out["cached"], "arxlive.tasks has no compiled bytecode in the image"
