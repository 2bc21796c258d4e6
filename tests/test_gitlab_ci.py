"""The GitLab CI file: valid against GitLab's schema, and its jobs run under gitlab-ci-local.

gitlab-ci-local (npm) runs the jobs here with the shell executor, in a small checkout made for
the test (the platform files, the `hello` fixture as its one project, a git tag): `build` runs
`make venv SKIP_DOCKER=true` and `make archive` for real, `publish` uploads to a stand-in for
GitLab's generic package registry on loopback, and the manual `deploy` fetches the package back
from it and deploys it into a fresh AIRFLOW_HOME. `make test` itself is not run in it (that
would run the whole suite twice).

gitlab-ci-local is installed by .ci/gitlab-ci-local.sh into .cache/gitlab-ci-local/. Without
npm or rsync these tests skip and say why; under REQUIRE_GITLAB_CI_LOCAL=1 (CI) they fail.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from conftest import REPO, VENV_BIN, run

CI_FILE = REPO / ".gitlab-ci.yml"
REQUIRE = os.environ.get("REQUIRE_GITLAB_CI_LOCAL") == "1"
TAG = "v0.0.0-test"
TOKEN = "test-token-0f3c9a"
PACKAGE = "platform-airflow-dags"
# What the small checkout is made of: everything the build, publish and deploy jobs touch.
CHECKOUT_FILES = ("Makefile", ".gitlab-ci.yml", ".gitignore", ".secrets.baseline")
CHECKOUT_DIRS = ("platformkit", "conda", "requirements", "dags")


def ci() -> dict:
    return yaml.safe_load(CI_FILE.read_text())


# --- without gitlab-ci-local -----------------------------------------------------------------

def test_the_ci_file_passes_gitlab_s_schema():
    result = subprocess.run([VENV_BIN / "check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", CI_FILE],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_stages_and_what_each_job_runs():
    config = ci()
    assert config["stages"] == ["test", "build", "publish", "release", "deploy"]
    jobs = {name: job for name, job in config.items() if isinstance(job, dict) and "script" in job}
    assert {name: job["stage"] for name, job in jobs.items()} == {
        "lint": "test", "test": "test", "build": "build", "publish": "publish", "release": "release", "deploy": "deploy"}
    assert "make test JUNIT_DIR=reports" in jobs["test"]["script"]
    assert jobs["lint"]["script"] == ["make lint"]
    assert "condaforge/miniforge3" in jobs["build"]["image"]
    assert "make venv SKIP_DOCKER=true" in jobs["build"]["script"]
    # Images are built from the runtimes just built, pushed to this project's registry, and the
    # archive pins them.
    build = "\n".join(jobs["build"]["script"])
    assert 'make image SKIP_DOCKER=true PUSH=true IMAGE_REPOSITORY="$CI_REGISTRY_IMAGE"' in build
    assert build.index("make venv") < build.index("make image") < build.index("make archive")
    assert 'make archive IMAGE_REPOSITORY="$CI_REGISTRY_IMAGE"' in build
    assert any("docker login --username gitlab-ci-token --password-stdin" in line
               for line in jobs["build"]["before_script"])
    assert jobs["build"]["artifacts"]["reports"]["dotenv"] == "dist/build.env"
    # publish and deploy: tags and the default branch only; deploy waits for a person.
    for name in ("publish", "deploy"):
        conditions = [rule["if"] for rule in jobs[name]["rules"]]
        assert conditions == ["$CI_COMMIT_TAG", "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"], name
    assert all(rule.get("when") == "manual" for rule in jobs["deploy"]["rules"])
    assert jobs["deploy"]["tags"] == ["airflow-host"]


def test_the_gitlab_conventions():
    jobs = {name: job for name, job in ci().items() if isinstance(job, dict) and "script" in job}
    # JUnit reports, kept when the tests fail.
    assert jobs["test"]["artifacts"]["when"] == "always"
    assert jobs["test"]["artifacts"]["reports"]["junit"] == "reports/*.xml"
    # The test job requires what .ci/run requires.
    required = set(re.findall(r"(REQUIRE_[A-Z_]+)=1", (REPO / ".ci/run").read_text()))
    assert required and {k for k, v in jobs["test"]["variables"].items() if k.startswith("REQUIRE_") and v == "1"} == required
    # A release on tags, linking the package that publish uploaded.
    assert [rule["if"] for rule in jobs["release"]["rules"]] == ["$CI_COMMIT_TAG"]
    link = jobs["release"]["release"]["assets"]["links"][0]
    assert link["url"] == "$PACKAGE_URL" and link["link_type"] == "package"
    assert jobs["release"]["release"]["tag_name"] == "$CI_COMMIT_TAG"
    # The deploy environment has a URL and a tier.
    environment = jobs["deploy"]["environment"]
    assert environment["url"] == "$AIRFLOW_URL" and environment["deployment_tier"] == "production"
    # Every image is pinned to a version: none is :latest or untagged.
    for name, job in jobs.items():
        if "image" in job:
            assert re.search(r":[0-9v][^:/]*$", job["image"]) and not job["image"].endswith(":latest"), name


def test_the_deploy_job_needs_no_airflow():
    """make deploy and make status run `python3 -m platformkit` with the host's python3: nothing of
    the platform environment (Airflow) is installed first, and what the CLI imports for them is
    the standard library and platformkit only."""
    dry = run("make", "-n", "-C", REPO, "deploy", "status", "ARCHIVE=x.tar.gz", "AIRFLOW_HOME=/nowhere",
              "PYTHON=python3").stdout
    assert "pip" not in dry and ".venv" not in dry, dry
    assert "python3 -m platformkit deploy x.tar.gz" in dry and "python3 -m platformkit status" in dry, dry
    # As `python3 -m platformkit` from the checkout, which puts the working folder first on sys.path.
    probe = ("import sys; sys.path.insert(0, ''); import platformkit.cli; "
             "print(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names) - {'platformkit', '__main__'}))")
    # -S: without site-packages, an import of anything outside the standard library fails.
    assert run(sys.executable, "-I", "-S", "-c", probe, cwd=REPO).stdout.strip() == "[]"
    status = run(sys.executable, "-I", "-S", "-c", "import sys, runpy; sys.path.insert(0, ''); "
                 "sys.argv = ['platformkit', 'status', '--airflow-home', '/nowhere']; "
                 "runpy.run_module('platformkit', run_name='__main__')", cwd=REPO)
    assert "live release: (none)" in status.stdout


@pytest.mark.skipif(shutil.which("dash") is None, reason="no dash to check POSIX shell syntax")
def test_every_script_line_is_posix_shell():
    """Jobs may run under sh (alpine's busybox, a runner without bash): no bash-only syntax."""
    for name, job in ci().items():
        if isinstance(job, dict) and "script" in job:
            for line in [*job.get("before_script", []), *job["script"]]:
                check = subprocess.run(["dash", "-n", "-c", line], capture_output=True, text=True)
                assert check.returncode == 0, f"{name}: {line}\n{check.stderr}"


def test_the_ci_file_holds_no_credentials():
    text = CI_FILE.read_text()
    # Tokens are only ever referenced as variables.
    for line in text.splitlines():
        if "TOKEN" in line and not line.lstrip().startswith("#"):
            assert "$CI_JOB_TOKEN" in line or "${CI_JOB_TOKEN}" in line, line
    for marker in ("glpat-", "glcbt-", "-----BEGIN", "password:", "PRIVATE-TOKEN"):
        assert marker not in text


# --- gitlab-ci-local -------------------------------------------------------------------------

def unavailable(reason: str):
    if REQUIRE:
        pytest.fail(f"REQUIRE_GITLAB_CI_LOCAL=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def gitlab_ci_local() -> dict[str, str]:
    """The environment in which `gitlab-ci-local` (and the Node 22 it needs) is first on PATH."""
    # The script says what is missing: npm (only to install), rsync, or a Node 22.
    install = subprocess.run(["bash", REPO / ".ci/gitlab-ci-local.sh"], capture_output=True, text=True, timeout=600)
    if install.returncode != 0:
        unavailable(f"gitlab-ci-local could not be installed:\n{install.stderr[-3000:]}")
    bin_dir = Path(install.stdout.strip().splitlines()[-1]) / "node_modules" / ".bin"
    # The jobs run make: nothing of the make that runs these tests may leak into them.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    probe = subprocess.run(["gitlab-ci-local", "--version"], env=env, capture_output=True, text=True)
    if probe.returncode != 0:
        unavailable(f"gitlab-ci-local does not start: {probe.stderr[-2000:]}")
    return env


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A small git checkout of the platform: its files, the `hello` fixture as the one project,
    tagged TAG, and the platform environment of this checkout (so the build job does not
    install Airflow again)."""
    tree = tmp_path_factory.mktemp("gitlab-ci-checkout")
    for name in CHECKOUT_FILES:
        shutil.copy2(REPO / name, tree / name)
    for name in CHECKOUT_DIRS:
        shutil.copytree(REPO / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "tests/fixtures/hello", tree / "hello", ignore=shutil.ignore_patterns("__pycache__"))
    platform_venv = VENV_BIN.parent
    (tree / ".venv").symlink_to(platform_venv)
    with (tree / ".gitignore").open("a") as ignore:
        ignore.write(".venv\n.gitlab-ci-local/\n")  # a link, which ".venv/" does not match
    # make reinstalls .venv when the lock is newer than .venv/.installed: it is not.
    installed = platform_venv / ".installed"
    if installed.exists():
        stamp = installed.stat().st_mtime - 60
        os.utime(tree / "requirements/platform.lock", (stamp, stamp))
    git = ["git", "-C", tree, "-c", "user.name=test", "-c", "user.email=test@localhost"]
    run(*git, "init", "-q", "-b", "main")
    run(*git, "add", ".")
    run(*git, "commit", "-q", "-m", "a small checkout of the platform")
    run(*git, "tag", TAG)
    return tree


def gcl(env: dict[str, str], cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return run("gitlab-ci-local", *args, cwd=cwd, env=env, timeout=timeout)


def listed_jobs(output: str) -> dict[str, tuple[str, str]]:
    """job name -> (stage, when), from the table of `gitlab-ci-local --list`."""
    lines = output.splitlines()
    header = next(line for line in lines if line.startswith("name "))
    columns = [header.index(title) for title in ("description", "stage", "when", "allow_failure")]
    jobs = {}
    for line in lines[lines.index(header) + 1:]:
        if line.strip():
            name = line[:columns[0]].strip()
            jobs[name] = (line[columns[1]:columns[2]].strip(), line[columns[2]:columns[3]].strip())
    return jobs


def test_gitlab_ci_local_lists_the_stages_and_honours_the_rules(gitlab_ci_local, checkout):
    on_tag = gcl(gitlab_ci_local, checkout, "--list", "--variable", f"CI_COMMIT_TAG={TAG}")
    assert listed_jobs(on_tag.stdout) == {
        "test": ("test", "on_success"), "build": ("build", "on_success"),
        "publish": ("publish", "on_success"), "release": ("release", "on_success"),
        "deploy": ("deploy", "manual")}
    # A feature branch without a tag builds, but neither publishes nor deploys.
    branch = gcl(gitlab_ci_local, checkout, "--list", "--variable", "CI_COMMIT_BRANCH=feature",
                 "--variable", "CI_COMMIT_REF_NAME=feature", "--unset-variable", "CI_COMMIT_TAG")
    assert listed_jobs(branch.stdout) == {"test": ("test", "on_success"), "build": ("build", "on_success")}


def test_gitlab_ci_local_renders_the_pipeline(gitlab_ci_local, checkout):
    preview = yaml.safe_load(gcl(gitlab_ci_local, checkout, "--preview").stdout.split("---", 1)[-1])
    assert [s for s in preview["stages"] if not s.startswith(".")] == ["test", "build", "publish", "release", "deploy"]
    assert preview["deploy"]["tags"] == ["airflow-host"]


class Registry(http.server.ThreadingHTTPServer):
    """A stand-in for GitLab's generic package registry: stores PUTs, serves them back on GET,
    and remembers the JOB-TOKEN header of every request."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        super().__init__(("127.0.0.1", 0), RegistryHandler)


class RegistryHandler(http.server.BaseHTTPRequestHandler):
    server: Registry

    def log_message(self, *args):
        pass

    def do_PUT(self):
        self.server.requests.append(("PUT", self.path, self.headers.get("JOB-TOKEN")))
        self.server.files[self.path] = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        body = b'{"message":"201 Created"}'
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.server.requests.append(("GET", self.path, self.headers.get("JOB-TOKEN")))
        body = self.server.files.get(self.path)
        if body is None or self.headers.get("JOB-TOKEN") != TOKEN:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def registry():
    server = Registry()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_build_publish_and_deploy_run_under_gitlab_ci_local(gitlab_ci_local, checkout, registry, tmp_path):
    airflow_home = tmp_path / "airflow-home"
    api = f"http://127.0.0.1:{registry.server_port}/api/v4"
    result = gcl(
        gitlab_ci_local, checkout,
        "--force-shell-executor", "--manual", "deploy", "build", "publish", "deploy",
        "--variable", f"CI_API_V4_URL={api}", "--variable", f"CI_JOB_TOKEN={TOKEN}",
        "--variable", "CI_PROJECT_ID=1", "--variable", f"CI_COMMIT_TAG={TAG}",
        "--variable", f"DEPLOY_AIRFLOW_HOME={airflow_home}",
        # The small checkout has no container project: nothing to log in to a registry for.
        "--unset-variable", "CI_REGISTRY",
        timeout=900,
    )
    log = result.stdout + result.stderr

    # build: the archive and its checksum, in the job's working tree, under the tag's version.
    archive = checkout / "dist" / f"{PACKAGE}-{TAG}.tar.gz"
    checksum = archive.with_name(archive.name + ".sha256")
    assert archive.is_file() and checksum.is_file(), log[-4000:]
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert checksum.read_text().split() == [digest, archive.name]
    assert (checkout / "hello/venv.tar.gz").is_file()

    # publish: both files PUT to the generic package path, with the job token, bytes intact.
    base = f"/api/v4/projects/1/packages/generic/{PACKAGE}/{TAG}"
    puts = [(path, token) for method, path, token in registry.requests if method == "PUT"]
    assert puts == [(f"{base}/{archive.name}", TOKEN), (f"{base}/{checksum.name}", TOKEN)]
    assert registry.files[f"{base}/{archive.name}"] == archive.read_bytes()
    assert registry.files[f"{base}/{checksum.name}"] == checksum.read_bytes()

    # deploy: fetched from the package URL with the job token, and live in AIRFLOW_HOME.
    gets = [(path, token) for method, path, token in registry.requests if method == "GET"]
    assert gets == [(f"{base}/{archive.name}", TOKEN), (f"{base}/{checksum.name}", TOKEN)]
    live = (airflow_home / "current").resolve()
    assert live == (airflow_home / "releases" / TAG).resolve()
    assert (live / "hello/venv/bin/python").exists()
    assert (live / "dags").is_dir()
    # The token is sent, never printed.
    assert TOKEN not in log


def test_a_branch_build_on_a_detached_head_is_named_after_the_branch(gitlab_ci_local, checkout, tmp_path):
    """GitLab checks out a detached HEAD; the build names the release <branch slug>-<short sha>,
    as `make version` does on a developer's branch, and hands that name on in its dotenv report."""
    tree = tmp_path / "detached"
    shutil.copytree(checkout, tree, symlinks=True, ignore=shutil.ignore_patterns(".gitlab-ci-local", "dist"))
    git = ["git", "-C", tree]
    run(*git, "tag", "-d", TAG)
    run(*git, "checkout", "-q", "--detach")
    sha = run(*git, "rev-parse", "--short=8", "HEAD").stdout.strip()
    gcl(gitlab_ci_local, tree, "--force-shell-executor", "build", "--unset-variable", "CI_COMMIT_TAG",
        "--variable", "CI_COMMIT_REF_SLUG=feature-x", "--ignore-predefined-vars", "CI_COMMIT_REF_SLUG")
    version = f"feature-x-{sha}"
    assert (tree / "dist" / f"{PACKAGE}-{version}.tar.gz").is_file()
    assert (tree / "dist/build.env").read_text().strip() == f"VERSION={version}"
