"""Build a runtime, archive a release, deploy it, roll back: on a small project in temporary folders."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from conftest import REPO, build_archive, deploy, git, live, run

BUILD = ("-m", "platformkit", "build-runtime")
ARCHIVE = ("-m", "platformkit", "archive")
DEPLOY = ("-m", "platformkit")
VERSION = ("-m", "platformkit", "version")
CANARY = "CANARY-SECRET-3f9a1c"


# --- runtime ---------------------------------------------------------------------------------

def test_runtime_manifest_describes_the_archive(source):
    manifest = json.loads((source / "hello/venv.manifest.json").read_text())
    archive = source / "hello/venv.tar.gz"
    assert manifest["project"] == "hello" and manifest["project_version"] == "0.1.0"
    assert manifest["backend"] == "venv"  # no conda on these machines
    assert manifest["python_version"] == sys.version.split()[0]
    assert manifest["archive_sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    names = {p["name"].lower() for p in manifest["packages"]}
    assert {"hello", "six"} <= names
    assert not any(name.startswith("apache-airflow") for name in names)


def test_runtime_rebuild_is_skipped_until_an_input_changes(source):
    unchanged = run(sys.executable, *BUILD, source / "hello")
    assert "up to date" in unchanged.stdout
    module = source / "hello/src/hello/__init__.py"
    original = module.read_text()
    try:
        module.write_text(original + "\n# changed\n")
        assert subprocess.run([sys.executable, *BUILD, source / "hello", "--check"]).returncode == 1
    finally:
        module.write_text(original)
    assert subprocess.run([sys.executable, *BUILD, source / "hello", "--check"]).returncode == 0


def test_runtime_runs_the_project(source, tmp_path):
    with tarfile.open(source / "hello/venv.tar.gz") as tar:
        tar.extractall(tmp_path / "venv", filter="fully_trusted")
    out = run(tmp_path / "venv/bin/python", "-m", "hello").stdout
    assert f"hello from {tmp_path / 'venv'}" in out


# --- version and archive -----------------------------------------------------------------------

def test_version_is_branch_and_sha_then_tag_then_dirty(tmp_path):
    tree = tmp_path / "repo"
    (tree).mkdir()
    (tree / "f").write_text("1")
    git(tree, "init", "-q", "-b", "feature/x")
    git(tree, "add", "f")
    git(tree, "commit", "-qm", "one")
    sha = git(tree, "rev-parse", "--short=8", "HEAD")
    version = lambda: run(sys.executable, *VERSION, tree).stdout.strip()  # noqa: E731
    assert version() == f"feature-x-{sha}"
    git(tree, "tag", "v1.2.0")
    assert version() == "v1.2.0"
    (tree / "f").write_text("2")
    assert version() == "v1.2.0-dirty"


def test_archive_holds_the_release_and_leaves_out_tests_caches_and_secrets(source, tmp_path):
    planted = [
        source / "hello/.env", source / "dags/.env", source / "hello/conf/credentials.json",
        source / "hello/id_rsa", source / "dags/service.pem",
    ]
    for path in planted:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"TOKEN={CANARY}\n")
    (source / "hello/tests").mkdir(exist_ok=True)
    (source / "hello/tests/test_x.py").write_text("")
    (source / "dags/__pycache__").mkdir(exist_ok=True)
    (source / "dags/__pycache__/x.pyc").write_bytes(b"")
    try:
        archive = build_archive(source, "v9", tmp_path)
    finally:
        for path in planted:
            path.unlink()
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("manifest.json"))
        contents = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert {"dags/hello.py", "hello/pyproject.toml", "hello/src/hello/__init__.py",
            "hello/venv.tar.gz", "hello/venv.manifest.json", "manifest.json"} <= names
    assert not [n for n in names if "tests" in n.split("/") or "__pycache__" in n or n.startswith(".git")]
    assert CANARY.encode() not in contents
    assert manifest["version"] == "v9" and manifest["git_sha"] == git(source, "rev-parse", "HEAD")
    assert manifest["files"]["dags/hello.py"] == hashlib.sha256(b"# a DAG file\n").hexdigest()
    assert set(manifest["files"]) == names - {"manifest.json"}
    checksum = (tmp_path / f"{archive.name}.sha256").read_text().split()
    assert checksum == [hashlib.sha256(archive.read_bytes()).hexdigest(), archive.name]


def test_archive_refuses_a_stale_runtime(source, tmp_path):
    module = source / "hello/src/hello/__init__.py"
    original = module.read_text()
    module.write_text(original + "\n# changed\n")
    try:
        result = subprocess.run([sys.executable, *ARCHIVE, "--root", source, "--version", "stale", "--dist", tmp_path],
                                capture_output=True, text=True)
    finally:
        module.write_text(original)
    assert result.returncode != 0
    assert "hello has no up-to-date runtime" in result.stderr
    assert not list(tmp_path.glob("*.tar.gz"))


# --- deploy and rollback -------------------------------------------------------------------------

def test_deploy_switches_current_and_unpacks_runtimes(archives, tmp_path):
    home = tmp_path / "home"
    deploy(archives["v1"], home)
    assert live(home) == "releases/v1"
    current = home / "current"
    assert (current / "dags/hello.py").is_file()
    assert json.loads((current / "manifest.json").read_text())["version"] == "v1"
    assert "hello from" in run(current / "hello/venv/bin/python", "-m", "hello").stdout
    deploy(archives["v2"], home)
    assert live(home) == "releases/v2"
    assert (home / "releases/v1").is_dir(), "the previous release is kept for rollback"


def test_rollback_goes_back_one_release_at_a_time(archives, tmp_path):
    home = tmp_path / "home"
    for version in ("v1", "v2"):
        deploy(archives[version], home)
    run(sys.executable, *DEPLOY, "rollback", "--airflow-home", home)
    assert live(home) == "releases/v1"
    again = subprocess.run([sys.executable, *DEPLOY, "rollback", "--airflow-home", home], capture_output=True, text=True)
    assert again.returncode == 1 and "no earlier release" in again.stderr
    assert live(home) == "releases/v1"


def test_old_releases_are_pruned(source, tmp_path):
    home = tmp_path / "home"
    for version in ("r1", "r2", "r3"):
        run(sys.executable, *DEPLOY, "deploy", build_archive(source, version, tmp_path / "dist"),
            "--airflow-home", home, "--keep", "2")
    # The release folders (the rest, .in-use/ among them, are dot-names).
    assert sorted(p.name for p in (home / "releases").iterdir() if p.is_dir() and not p.name.startswith(".")) == ["r2", "r3"]
    assert json.loads((home / "releases/state.json").read_text())["history"] == ["r2", "r3"]


def test_corrupted_archive_is_refused_and_live_release_untouched(archives, tmp_path):
    home = tmp_path / "home"
    deploy(archives["v1"], home)
    corrupt = tmp_path / archives["v2"].name
    data = bytearray(archives["v2"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    shutil.copy(f"{archives['v2']}.sha256", f"{corrupt}.sha256")
    result = deploy(corrupt, home, check=False)
    assert result.returncode == 1 and "checksum mismatch" in result.stderr
    assert live(home) == "releases/v1"
    assert sorted(p.name for p in (home / "releases").iterdir() if p.is_dir()) == ["v1"]


def test_tampered_file_inside_a_checksummed_archive_is_refused(archives, tmp_path):
    """The archive's own checksum can be recomputed by whoever tampers; the manifest's cannot."""
    home = tmp_path / "home"
    deploy(archives["v1"], home)
    tampered = tmp_path / "platform-airflow-dags-v2.tar.gz"
    with tarfile.open(archives["v2"]) as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name == "dags/hello.py":
                data = b"import os; os.system('evil')\n"
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    Path(f"{tampered}.sha256").write_text(f"{hashlib.sha256(tampered.read_bytes()).hexdigest()}  {tampered.name}\n")
    result = deploy(tampered, home, check=False)
    assert result.returncode == 1 and "dags/hello.py does not match its checksum" in result.stderr
    assert live(home) == "releases/v1"


def test_deploy_killed_half_way_leaves_live_release_and_next_deploy_works(source, tmp_path):
    home = tmp_path / "home"
    deploy(build_archive(source, "v1", tmp_path / "dist"), home)
    # A big file makes the unpack take long enough to be killed in the middle of it.
    big = source / "dags/big.bin"
    big.write_bytes(os.urandom(300 * 1024 * 1024))
    try:
        slow = build_archive(source, "v2", tmp_path / "dist")
    finally:
        big.unlink()
    process = subprocess.Popen([sys.executable, *DEPLOY, "deploy", str(slow), "--airflow-home", str(home)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((home / "releases").glob(".incoming-*/release/dags")):
        time.sleep(0.01)
    assert process.poll() is None, f"deploy ended before it could be killed: {process.stdout.read()}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert live(home) == "releases/v1"
    assert (home / "current/dags/hello.py").is_file()
    assert not (home / "releases/v2").exists()
    result = deploy(slow, home)
    assert "left by an interrupted deploy" in result.stdout
    assert live(home) == "releases/v2"
    assert not list((home / "releases").glob(".incoming-*"))


# --- what archive and deploy agree on ----------------------------------------------------------

@pytest.mark.parametrize("version", ["", ".", "history", "state.json", "../x", "a/b", "-v1", "v" * 129])
def test_an_invalid_version_is_refused_by_make_version_and_make_archive(version, source, tmp_path):
    if version:  # make takes VERSION= for no VERSION at all
        made = subprocess.run(["make", "-s", "-C", REPO, "version", f"VERSION={version}"], capture_output=True, text=True)
        assert made.returncode != 0 and f"version: error: invalid version {version!r}" in made.stderr
    archived = subprocess.run([sys.executable, *ARCHIVE, "--root", source, f"--version={version}", "--dist", tmp_path],
                              capture_output=True, text=True)
    assert archived.returncode == 1 and f"archive: error: invalid version {version!r}" in archived.stderr
    assert list(tmp_path.iterdir()) == []


def test_make_version_prints_a_valid_version():
    assert run("make", "-s", "-C", REPO, "version", "VERSION=v1.2.0+build.7").stdout.strip() == "v1.2.0+build.7"


def test_a_link_inside_its_project_ships_as_a_link_and_deploys(source, tmp_path):
    link = source / "hello/conf/current.toml"
    link.parent.mkdir(exist_ok=True)
    (source / "hello/conf/v2.toml").write_text("answer = 42\n")
    link.symlink_to("v2.toml")
    try:
        archive = build_archive(source, "links", tmp_path / "dist")
    finally:
        link.unlink()
        (source / "hello/conf/v2.toml").unlink()
    with tarfile.open(archive) as tar:
        member = tar.getmember("hello/conf/current.toml")
        manifest = json.load(tar.extractfile("manifest.json"))
    assert member.issym() and member.linkname == "v2.toml"
    assert manifest["links"] == {"hello/conf/current.toml": "v2.toml"}
    assert "hello/conf/current.toml" not in manifest["files"]
    home = tmp_path / "home"
    deploy(archive, home)
    assert os.readlink(home / "current/hello/conf/current.toml") == "v2.toml"
    assert (home / "current/hello/conf/current.toml").read_text() == "answer = 42\n"


@pytest.mark.parametrize("target", ["/etc/hostname", "../../dags/hello.py", "../../../outside"])
def test_a_link_leaving_its_project_stops_the_archive(target, source, tmp_path):
    link = source / "hello/escape"
    link.symlink_to(target)
    try:
        result = subprocess.run([sys.executable, *ARCHIVE, "--root", source, "--version", "esc", "--dist", tmp_path],
                                capture_output=True, text=True)
    finally:
        link.unlink()
    assert result.returncode == 1
    assert f"archive: error: hello/escape is a link to {target}, outside hello/" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_runtime_deploy_would_refuse_stops_the_archive(source, tmp_path):
    """The runtime archive is checked with the member policy before anything is written."""
    runtime = source / "hello/venv.tar.gz"
    original = runtime.read_bytes()
    manifest_file = source / "hello/venv.manifest.json"
    runtime_manifest = manifest_file.read_text()
    try:
        with tarfile.open(fileobj=io.BytesIO(original)) as src:
            members = [(m, src.extractfile(m).read() if m.isfile() else None) for m in src.getmembers()]
        with tarfile.open(runtime, "w:gz") as dst:
            for member, data in members:
                dst.addfile(member, io.BytesIO(data) if data is not None else None)
            evil = tarfile.TarInfo("bin/su")
            evil.mode = 0o4755
            dst.addfile(evil, io.BytesIO(b""))
        # Keep the runtime "up to date" for the check: only the archive changed.
        manifest = json.loads(runtime_manifest)
        manifest["archive_sha256"] = hashlib.sha256(runtime.read_bytes()).hexdigest()
        manifest["archive_bytes"] = runtime.stat().st_size
        manifest_file.write_text(json.dumps(manifest))
        result = subprocess.run([sys.executable, *ARCHIVE, "--root", source, "--version", "rt", "--dist", tmp_path],
                                capture_output=True, text=True)
    finally:
        runtime.write_bytes(original)
        manifest_file.write_text(runtime_manifest)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "archive: error: hello/venv.tar.gz would be refused by deploy: member 'bin/su'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_home_from_the_previous_deploy_rolls_back_and_gets_one_record(archives, tmp_path):
    """releases/history (one line per release) and a link switched without its line: read once."""
    home = tmp_path / "home"
    for version in ("v1", "v2"):
        deploy(archives[version], home)
    (home / "releases/state.json").unlink()
    (home / "releases/history").write_text("v1\n")  # killed between the switch to v2 and its line
    run(sys.executable, *DEPLOY, "rollback", "--airflow-home", home)
    assert live(home) == "releases/v1"
    assert json.loads((home / "releases/state.json").read_text()) == {"history": ["v1"]}
    assert not (home / "releases/history").exists()
