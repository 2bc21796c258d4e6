"""Images of a release: built from the packed runtime by `make image`, pinned by `make archive`,
checked by `make deploy` and `make rollback` against a real Docker engine and a real registry.

The registry is Debian's `docker-registry` (the Distribution registry), started on 127.0.0.1 on a
free port with its storage in a temporary folder; the engine treats 127.0.0.0/8 registries as
insecure (plain HTTP) by default. Without the package these tests skip and say why; under
REQUIRE_REGISTRY=1 (CI) they fail.

They run on a small checkout: the platform's build files and the `hello` fixture, given a
Dockerfile of the same shape as arxlive's, so a runtime builds in seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, run

from platformkit import images
from platformkit.files import sha256_of

pytestmark = pytest.mark.docker

REQUIRE_REGISTRY = os.environ.get("REQUIRE_REGISTRY") == "1"
HELLO = Path(__file__).parent / "fixtures/hello"
DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ADD venv.tar.gz /opt/runtime/
ARG RUNTIME_SHA256=unknown
LABEL platform.runtime.sha256=${RUNTIME_SHA256}
USER 10001
ENTRYPOINT ["/opt/runtime/bin/python", "-m", "hello"]
"""


@pytest.fixture(scope="session")
def registry(tmp_path_factory, docker_engine) -> str:
    """host:port of a Distribution registry on loopback, for this session."""
    binary = shutil.which("docker-registry")
    if binary is None:
        reason = "no docker-registry (Debian package docker-registry; .ci/run installs it)"
        if REQUIRE_REGISTRY:
            pytest.fail(f"REQUIRE_REGISTRY=1 but {reason}")
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("registry")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (work / "config.yml").write_text(
        "version: 0.1\n"
        "log: {level: warn, accesslog: {disabled: true}}\n"
        f"storage: {{filesystem: {{rootdirectory: {work / 'storage'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n")
    log = (work / "registry.log").open("w")
    server = subprocess.Popen([binary, "serve", str(work / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://{address}/v2/", timeout=2).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"docker-registry did not start:\n{(work / 'registry.log').read_text()[-2000:]}")
            time.sleep(0.1)
    yield address
    server.terminate()
    server.wait(timeout=10)
    log.close()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory, docker_engine) -> Path:
    """A git checkout of the platform with one DAG file and `hello` as a container project, its
    runtime built in the builder container (as `make venv` does by default)."""
    tree = tmp_path_factory.mktemp("images-checkout")
    for name in ("Makefile", ".gitignore", "conda", "platformkit", "requirements"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, tree / name)
    if (REPO / "local.mk").is_file():  # this machine's base images, as `make docker-engine` set them
        shutil.copy2(REPO / "local.mk", tree / "local.mk")
    shutil.copytree(HELLO, tree / "hello", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (tree / "hello/Dockerfile").write_text(DOCKERFILE)
    (tree / "hello/.dockerignore").write_text("*\n!Dockerfile\n!venv.tar.gz\n")
    # The engine its DAG would use, written as the Docker provider takes it (two slashes).
    (tree / "hello/conf").mkdir()
    (tree / "hello/conf/airflow.toml").write_text('docker_url = "unix://var/run/docker.sock"\n')
    (tree / "dags").mkdir()
    (tree / "dags/hello.py").write_text("# a DAG file\n")
    (tree / ".venv").symlink_to(REPO / ".venv")
    git = ["git", "-C", tree, "-c", "user.name=test", "-c", "user.email=test@localhost"]
    run(*git, "init", "-q", "-b", "main")
    run(*git, "add", ".")
    run(*git, "commit", "-q", "-m", "a small checkout with a container project")
    run("make", "-C", tree, "venv", timeout=1800)
    yield tree
    # The images built from this runtime, and only those, go when the module is done.
    runtime_sha256 = json.loads((tree / "hello/venv.manifest.json").read_text())["archive_sha256"]
    built = run("docker", "images", "-q", "--filter", f"label=platform.runtime.sha256={runtime_sha256}").stdout.split()
    for image_id in sorted(set(built)):
        subprocess.run(["docker", "rmi", "--force", image_id], capture_output=True)


def make(tree: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    command = ["make", "--no-print-directory", "-C", str(tree), *args]
    if check:
        return run(*command, timeout=1800)
    return subprocess.run(command, capture_output=True, text=True, timeout=1800)


def manifest_of(archive: Path) -> dict:
    with tarfile.open(archive) as tar:
        return json.load(tar.extractfile("manifest.json"))


def release(tree: Path, version: str, repository: str, push: bool) -> Path:
    """`make image` (and push) then `make archive` under VERSION=version; the archive."""
    make(tree, "image", f"VERSION={version}", f"IMAGE_REPOSITORY={repository}", *(["PUSH=true"] if push else []))
    make(tree, "archive", f"VERSION={version}", f"IMAGE_REPOSITORY={repository}")
    return tree / "dist" / f"platform-airflow-dags-{version}.tar.gz"


def remove_image(image_id: str) -> None:
    """Remove an image this test built or pulled, every tag and digest of it."""
    run("docker", "rmi", "--force", image_id)


def deploy(tree: Path, archive: Path, home: Path, check: bool = True) -> subprocess.CompletedProcess:
    return make(tree, "deploy", f"ARCHIVE={archive}", f"AIRFLOW_HOME={home}", check=check)


def live(home: Path) -> str:
    return os.readlink(home / "current")


def test_deploy_local_build_pins_the_local_image_and_runs_it(checkout, tmp_path):
    """`make deploy-local-build` end to end with no registry: the release pins the image by its
    local ID. TEST=false: this test runs inside `make test` and must not start it again."""
    home = tmp_path / "home"
    built = make(checkout, "deploy-local-build", "TEST=false", f"AIRFLOW_HOME={home}")
    version = make(checkout, "-s", "version").stdout.strip()
    assert live(home) == f"releases/{version}", built.stdout[-3000:]
    image = json.loads((home / "current/manifest.json").read_text())["images"]["hello"]
    runtime = json.loads((home / "current/hello/venv.manifest.json").read_text())
    assert image["runtime_sha256"] == runtime["archive_sha256"]
    assert image["reference"] == f"localhost/hello:sha256-{image['image_id'].removeprefix('sha256:')}"
    assert f"{image['reference']} is on the Docker engine" in built.stdout
    assert "hello from /opt/runtime" in run("docker", "run", "--rm", image["reference"]).stdout


def test_a_pushed_image_is_pulled_by_digest_on_deploy(checkout, registry, tmp_path):
    repository = f"{registry}/platform"
    archive = release(checkout, "pushed-1", repository, push=True)
    image = manifest_of(archive)["images"]["hello"]
    assert image["reference"].startswith(f"{repository}/hello@sha256:")
    remove_image(image["image_id"])
    home = tmp_path / "home"
    deployed = deploy(checkout, archive, home)
    assert f"pulling {image['reference']}" in deployed.stdout
    assert live(home) == "releases/pushed-1"
    assert "hello from /opt/runtime" in run("docker", "run", "--rm", image["reference"]).stdout


def test_an_image_that_is_nowhere_refuses_the_deploy(checkout, registry, tmp_path):
    home = tmp_path / "home"
    first = release(checkout, "local-1", "localhost", push=False)
    deploy(checkout, first, home)
    # Built here and never pushed, then removed: no engine can have it.
    local = release(checkout, "local-2", "localhost/gone", push=False)
    image = manifest_of(local)["images"]["hello"]
    remove_image(image["image_id"])
    refused = deploy(checkout, local, home, check=False)
    assert refused.returncode != 0
    assert f"image {image['reference']} of hello is not on the Docker engine" in refused.stderr
    assert "never pushed" in refused.stderr
    # Pushed, then deleted from the registry: pulling it by digest fails.
    repository = f"{registry}/deleted"
    pushed = release(checkout, "pushed-2", repository, push=True)
    image = manifest_of(pushed)["images"]["hello"]
    remove_image(image["image_id"])
    delete = urllib.request.Request(f"http://{registry}/v2/deleted/hello/manifests/{image['reference'].split('@')[1]}",
                                    method="DELETE")
    urllib.request.urlopen(delete, timeout=10).close()
    refused = deploy(checkout, pushed, home, check=False)
    assert refused.returncode != 0
    assert f"image {image['reference']} of hello is not on the Docker engine" in refused.stderr
    assert "cannot be pulled" in refused.stderr
    assert live(home) == "releases/local-1"
    assert sorted(p.name for p in (home / "releases").iterdir() if p.is_dir()) == ["local-1"]


def test_deploy_refuses_when_the_engine_the_dags_use_does_not_answer(checkout, tmp_path):
    archive = release(checkout, "engine-1", "localhost", push=False)
    home = tmp_path / "home"
    refused = subprocess.run(["make", "--no-print-directory", "-C", str(checkout), "deploy", f"ARCHIVE={archive}",
                              f"AIRFLOW_HOME={home}"], capture_output=True, text=True, timeout=600,
                             env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert refused.returncode != 0
    assert f"the Docker engine at unix://{tmp_path}/no-engine.sock does not answer" in refused.stderr
    assert not (home / "current").exists()


def test_rollback_refuses_when_the_previous_release_s_image_is_gone(checkout, tmp_path):
    home = tmp_path / "home"
    first = release(checkout, "roll-1", "localhost/roll", push=False)
    deploy(checkout, first, home)
    second = release(checkout, "roll-2", "localhost", push=False)
    deploy(checkout, second, home)
    remove_image(manifest_of(first)["images"]["hello"]["image_id"])
    refused = make(checkout, "rollback", f"AIRFLOW_HOME={home}", check=False)
    assert refused.returncode != 0 and "localhost/roll/hello:sha256-" in refused.stderr
    assert live(home) == "releases/roll-2"


def test_a_runtime_whose_interpreter_the_base_image_lacks_is_refused(checkout, tmp_path):
    """A venv-packed runtime links to the interpreter it was built with; an image of it on a base
    without that interpreter could not start, so `make image` says what to do instead."""
    tree = tmp_path / "tree"
    shutil.copytree(checkout, tree, symlinks=True, ignore=shutil.ignore_patterns("dist"))
    manifest_path = tree / "hello/venv.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["python_path"] = "/opt/python-of-another-host/bin/python3.11"
    manifest_path.write_text(json.dumps(manifest))
    refused = make(tree, "image", "VERSION=elsewhere", check=False)
    assert refused.returncode != 0
    assert "packed with venv-pack against /opt/python-of-another-host/bin/python3.11" in refused.stderr
    assert "BUILDER_BASE_IMAGE=" in refused.stderr


def test_an_image_holding_other_settings_than_the_release_is_not_archived(checkout, tmp_path):
    """The stage's settings (project.toml's config) are copied into the image, and provenance
    hashes the release's copies: an image built before they changed is refused, naming the file."""
    tree = tmp_path / "tree"
    shutil.copytree(checkout, tree, symlinks=True, ignore=shutil.ignore_patterns("dist"))
    (tree / "hello/project.toml").write_text('kind = "container"\n[[stages]]\nname = "greet"\nconfig = ["conf/hello.toml"]\n')
    settings = tree / "hello/conf/hello.toml"
    settings.write_text('greeting = "hello"\n')
    git = ["git", "-C", tree, "-c", "user.name=test", "-c", "user.email=test@localhost"]
    run(*git, "add", "-A")
    run(*git, "commit", "-qm", "hello's settings")
    make(tree, "image", "VERSION=settings")
    settings.write_text('greeting = "good morning"\n')
    run(*git, "commit", "-qam", "other settings")
    refused = make(tree, "archive", "VERSION=settings", check=False)
    assert refused.returncode != 0
    assert "localhost/hello:settings was built from other settings than hello's conf/hello.toml" in refused.stderr
    assert "run `make image PROJECT=hello` again" in refused.stderr
    assert not (tree / "dist/platform-airflow-dags-settings.tar.gz").exists()

    make(tree, "image", "VERSION=settings")
    make(tree, "archive", "VERSION=settings")
    image = manifest_of(tree / "dist/platform-airflow-dags-settings.tar.gz")["images"]["hello"]
    labels = run("docker", "image", "inspect", "--format", "{{json .Config.Labels}}", image["image_id"]).stdout
    assert json.loads(json.loads(labels)["platform.config.sha256"]) == {"conf/hello.toml": sha256_of(settings)}


@pytest.mark.parametrize("label", ["{not json", '["conf/hello.toml"]', '{"conf/hello.toml": "0000"}', None])
def test_a_settings_label_that_is_malformed_foreign_or_missing_is_a_difference(tmp_path, label):
    """An image's labels are the engine's answer, not this checkout's word: anything but the
    label `make image` writes for the current settings is refused, naming the file."""
    (tmp_path / "venv.tar.gz").write_bytes(b"a runtime")
    (tmp_path / "project.toml").write_text('kind = "container"\n[[stages]]\nname = "greet"\nconfig = ["conf/hello.toml"]\n')
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/hello.toml").write_text('greeting = "hello"\n')
    labels = {images.RUNTIME_LABEL: sha256_of(tmp_path / "venv.tar.gz"), **({images.CONFIG_LABEL: label} if label else {})}
    assert images.differs_from({"Config": {"Labels": labels}}, tmp_path) == \
        f"other settings than {tmp_path.name}'s conf/hello.toml"
    labels[images.CONFIG_LABEL] = json.dumps({"conf/hello.toml": sha256_of(tmp_path / "conf/hello.toml")})
    assert images.differs_from({"Config": {"Labels": labels}}, tmp_path) is None


@pytest.mark.parametrize(("config", "message"), [
    ('["/etc/passwd"]', "names the config file '/etc/passwd', which is not in the project"),
    ('["../secrets.toml"]', "names the config file '../secrets.toml', which is not in the project"),
    ('["conf/missing.toml"]', "names the config file conf/missing.toml, which does not exist"),
])
def test_config_files_outside_the_project_or_missing_are_not_hashed_into_a_label(tmp_path, config, message):
    (tmp_path / "project.toml").write_text(f'kind = "container"\n[[stages]]\nname = "greet"\nconfig = {config}\n')
    with pytest.raises(images.ImageError, match=re.escape(message)):
        images.config_hashes(tmp_path)


@pytest.mark.parametrize("target, variable", [("image", "BASE_IMAGE"), ("builder-image", "BUILDER_BASE_IMAGE")])
def test_a_base_image_that_cannot_be_pulled_gives_one_line_saying_what_to_run(checkout, target, variable):
    refused = make(checkout, target, f"{variable}=localhost/no-such-base:1", check=False)
    assert refused.returncode != 0
    lines = [line for line in refused.stderr.splitlines() if "no-such-base" in line]
    assert len(lines) == 1 and "cannot be pulled: run `make docker-engine`" in lines[0], refused.stderr


def test_make_docker_engine_makes_the_local_base_image_the_default(docker_engine, tmp_path):
    """After `make docker-engine`, later make calls build on the local base image with the host's
    CAs without being told (local.mk); the command line still wins."""
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy2(REPO / "Makefile", tree / "Makefile")
    shutil.copytree(REPO / ".ci", tree / ".ci")
    # As a new user's shell: nothing of the make that runs this test, nothing set by hand.
    env = {k: v for k, v in os.environ.items()
           if k not in ("BASE_IMAGE", "BUILDER_BASE_IMAGE", "EXTRA_CA_BUNDLE", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    set_up = run("make", "-C", tree, "docker-engine", env=env, timeout=900)
    assert "wrote local.mk" in set_up.stdout

    def variable(name: str, *args: str) -> str:
        return run("make", "-s", "--no-print-directory", "-C", tree, "--eval", f"print-var: ; @echo $({name})",
                   "print-var", *args, env=env).stdout.strip()

    assert variable("BASE_IMAGE") == variable("BUILDER_BASE_IMAGE") == "localhost/platform-base:bookworm"
    assert variable("EXTRA_CA_BUNDLE") == "/etc/ssl/certs/ca-certificates.crt"
    assert variable("BASE_IMAGE", "BASE_IMAGE=example.org/base:1") == "example.org/base:1"
    assert run("git", "-C", REPO, "check-ignore", "local.mk").returncode == 0
