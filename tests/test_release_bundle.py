"""platformkit.bundle.ReleaseBundle on its own: what the DAG processor sees, what a worker fetches
from a release store (a folder, or HTTP with a token), and what it refuses."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import build_probe_release, run
from services import release_store_server

from platformkit.bundle import ReleaseBundle, ReleaseFetchError

TOKEN = "store-token-7c1e"


@pytest.fixture(scope="module")
def dist(probe_checkout, tmp_path_factory) -> Path:
    """Releases v1, v2 and v3 of the probe checkout."""
    folder = tmp_path_factory.mktemp("bundle-dist")
    for version in ("v1", "v2", "v3"):
        build_probe_release(probe_checkout, version, folder)
    return folder


def archive(dist: Path, version: str) -> Path:
    return dist / f"platform-airflow-dags-{version}.tar.gz"


def checksum_file(dist: Path, version: str) -> Path:
    return dist / f"platform-airflow-dags-{version}.tar.gz.sha256"


def deploy(source: Path | str, home: Path, env: dict | None = None) -> None:
    run(sys.executable, "-m", "platformkit", "deploy", source, "--airflow-home", home,
        env={**os.environ, **(env or {})})


def bundle(home: Path, version: str | None = None, **kwargs) -> ReleaseBundle:
    return ReleaseBundle(name="releases", version=version, airflow_home=str(home), **kwargs)


def probe_text(path: Path) -> str:
    return next(line for line in (path / "release_probe.py").read_text().splitlines() if line.startswith("TEXT ="))


def test_dag_processor_sees_the_live_release_until_it_refreshes(dist, tmp_path):
    home = tmp_path / "home"
    deploy(archive(dist, "v1"), home)
    processor = bundle(home)
    processor.initialize()
    assert processor.path == home.resolve() / "releases/v1/dags"
    current = processor.get_current_version()
    assert current.version == "v1"
    assert current.data["version"] == "v1" and "created_at" in current.data and "files" not in current.data

    deploy(archive(dist, "v2"), home)
    # Parsing stays on v1, the version it reports, until Airflow refreshes the bundle.
    assert processor.path.parent.name == "v1" and processor.get_current_version().version == "v1"
    processor.refresh()
    assert processor.path == home.resolve() / "releases/v2/dags"
    assert processor.get_current_version().version == "v2"
    assert probe_text(processor.path) == 'TEXT = "release text: v2"'


def test_deploy_compiles_the_dags_so_no_parse_compiles_them(dist, tmp_path):
    """The DAG processor imports the DAG files anew for each parse; where it cannot write
    __pycache__ it would compile them each time."""
    home = tmp_path / "home"
    deploy(archive(dist, "v1"), home)
    source = home / "releases/v1/dags/release_probe.py"
    bytecode = Path(importlib.util.cache_from_source(str(source)))
    assert bytecode.is_file()
    # valid for the source as deployed: the import machinery takes it instead of compiling
    flags, mtime, size = struct.unpack("<III", bytecode.read_bytes()[4:16])
    assert flags == 0 and (mtime, size) == (int(source.stat().st_mtime) & 0xFFFFFFFF, source.stat().st_size)


def test_before_any_release_the_bundle_loads_and_has_no_version(tmp_path):
    processor = bundle(tmp_path / "empty")
    processor.initialize()
    assert processor.get_current_version() is None
    assert not processor.path.exists()


def test_a_pinned_version_present_here_is_used_without_a_store(dist, tmp_path):
    home = tmp_path / "home"
    deploy(archive(dist, "v1"), home)
    deploy(archive(dist, "v2"), home)
    task = bundle(home, "v1")
    task.initialize()
    assert task.path == home.resolve() / "releases/v1/dags"
    assert probe_text(task.path) == 'TEXT = "release text: v1"'


def test_worker_fetches_its_version_from_a_folder_store_without_switching_current(dist, tmp_path):
    worker = tmp_path / "worker"
    task = bundle(worker, "v1", release_store=str(dist))
    task.initialize()
    assert probe_text(task.path) == 'TEXT = "release text: v1"'
    release = worker / "releases/v1"
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["version"] == "v1"
    # The runtime is unpacked, as make deploy does, and it runs.
    assert run(release / "hello/venv/bin/python", "-c", "import hello, six").returncode == 0
    assert not (worker / "current").exists()
    assert sorted(p.name for p in (worker / "releases").iterdir() if not p.name.startswith(".")) == ["v1"]


def test_worker_fetches_over_http_with_the_token_from_the_environment(dist, tmp_path, monkeypatch):
    with release_store_server(tmp_path / "store", TOKEN) as store:
        store.publish(archive(dist, "v2"))
        task = bundle(tmp_path / "worker", "v2", release_store=f"{store.url}/{{version}}")
        monkeypatch.delenv("DEPLOY_AUTH_HEADER", raising=False)
        with pytest.raises(ReleaseFetchError, match="401"):
            task.initialize()
        monkeypatch.setenv("DEPLOY_AUTH_HEADER", f"JOB-TOKEN: {TOKEN}")
        task.initialize()
    assert probe_text(task.path) == 'TEXT = "release text: v2"'
    assert store.fetched("platform-airflow-dags-v2.tar.gz") == 1


def test_worker_fetches_with_the_headers_of_the_release_store_connection(dist, tmp_path, monkeypatch):
    """The connection wins over the environment, and its token is what the store accepts."""
    monkeypatch.setenv("DEPLOY_AUTH_HEADER", "JOB-TOKEN: a-stale-token")
    monkeypatch.setenv("AIRFLOW_CONN_RELEASE_STORE", json.dumps(
        {"conn_type": "http", "extra": {"headers": {"JOB-TOKEN": TOKEN}}}))
    with release_store_server(tmp_path / "store", TOKEN) as store:
        store.publish(archive(dist, "v2"))
        task = bundle(tmp_path / "worker", "v2", release_store=f"{store.url}/{{version}}")
        task.initialize()
    assert probe_text(task.path) == 'TEXT = "release text: v2"'


def test_two_task_processes_wanting_the_same_version_fetch_it_once(dist, tmp_path):
    """Both start while the store is slow to answer: one fetches, the other waits and finds it."""
    worker = tmp_path / "worker"
    script = textwrap.dedent(f"""
        from platformkit.bundle import ReleaseBundle
        bundle = ReleaseBundle(name="releases", version="v1", airflow_home={str(worker)!r},
                               release_store={'{url}/{version}'!r})
        bundle.initialize()
        print(open(bundle.path / "release_probe.py").read().count("release text: v1"))
    """)
    with release_store_server(tmp_path / "store", TOKEN, delay=1.0) as store:
        store.publish(archive(dist, "v1"))
        env = {**os.environ, "DEPLOY_AUTH_HEADER": f"JOB-TOKEN: {TOKEN}"}
        processes = [subprocess.Popen([sys.executable, "-c", script.replace("{url}", store.url)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [(p.wait(120), *p.communicate()) for p in processes]
    for code, out, err in results:
        assert code == 0 and out.strip().endswith("1"), err
    assert store.fetched("platform-airflow-dags-v1.tar.gz") == 1
    assert store.fetched("platform-airflow-dags-v1.tar.gz.sha256") == 1
    assert not list((worker / "releases").glob(".incoming-*"))


def test_a_tampered_archive_is_refused_and_leaves_nothing(dist, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    tampered = store / "platform-airflow-dags-v1.tar.gz"
    tampered.write_bytes(archive(dist, "v1").read_bytes() + b"\0")
    (store / (tampered.name + ".sha256")).write_text(checksum_file(dist, "v1").read_text())
    worker = tmp_path / "worker"
    with pytest.raises(ReleaseFetchError, match="checksum mismatch"):
        bundle(worker, "v1", release_store=str(store)).initialize()
    # The lock, and the task's hold on v1 (a file of .in-use/): no release, nothing incoming.
    assert sorted(p.name for p in (worker / "releases").iterdir()) == [".in-use", ".lock"]


def test_an_archive_of_another_version_is_refused(dist, tmp_path):
    """A store that answers v9 with v1's archive (and a matching checksum) does not make v1 into v9."""
    store = tmp_path / "store"
    store.mkdir()
    renamed = store / "platform-airflow-dags-v9.tar.gz"
    renamed.write_bytes(archive(dist, "v1").read_bytes())
    (store / (renamed.name + ".sha256")).write_text(checksum_file(dist, "v1").read_text())
    worker = tmp_path / "worker"
    with pytest.raises(ReleaseFetchError, match="holds release 'v1', not 'v9'"):
        bundle(worker, "v9", release_store=str(store)).initialize()
    assert not (worker / "releases/v9").exists() and not (worker / "releases/v1").exists()


@pytest.mark.parametrize("version", ["../v1", "/tmp/x", "history", ".hidden", "", "v1/../../x", "a" * 200])
def test_a_version_that_is_not_a_name_is_refused(version, tmp_path):
    with pytest.raises(ReleaseFetchError, match="is not a release version"):
        bundle(tmp_path / "worker", version, release_store=str(tmp_path))


@pytest.mark.parametrize("store, message", [
    ("https://user:secret@store.example.org/{version}", "must not hold credentials"),
    ("ftp://store.example.org/{version}", "must be a folder or an http"),
    ("file:///srv/releases", "must be a folder or an http"),
])
def test_a_store_url_with_credentials_or_another_scheme_is_refused(store, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        bundle(tmp_path / "worker", "v1", release_store=store)


def test_a_missing_version_without_a_store_fails_naming_what_to_configure(tmp_path):
    with pytest.raises(ReleaseFetchError, match="has no release_store to fetch it from"):
        bundle(tmp_path / "worker", "v9").initialize()


def test_a_version_the_store_lacks_fails_naming_the_url(dist, tmp_path, monkeypatch):
    monkeypatch.setenv("DEPLOY_AUTH_HEADER", f"JOB-TOKEN: {TOKEN}")
    (tmp_path / "store").mkdir()
    with release_store_server(tmp_path / "store", TOKEN) as store:
        with pytest.raises(ReleaseFetchError, match=r"could not fetch http://127\.0\.0\.1:\d+/v9/platform-airflow-dags-v9\.tar\.gz"):
            bundle(tmp_path / "worker", "v9", release_store=f"{store.url}/{{version}}").initialize()



# --- pruning fetched releases ---------------------------------------------------------------

# A task process: its bundle fetches the version if need be, then holds it until stdin closes.
TASK = textwrap.dedent("""
    import sys
    from platformkit.bundle import ReleaseBundle
    home, version, store, keep = sys.argv[1:]
    bundle = ReleaseBundle(name="releases", version=version, airflow_home=home, release_store=store,
                           keep_fetched=int(keep))
    bundle.initialize()
    print(bundle.path, flush=True)
    sys.stdin.read()
""")


class Task:
    """A task process running `version` on the worker at `home` until it is ended."""

    def __init__(self, home: Path, version: str, store: Path, keep_fetched: int):
        self.process = subprocess.Popen([sys.executable, "-c", TASK, str(home), version, str(store), str(keep_fetched)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Its bundle's path, after the fetch's own log lines.
        for line in self.process.stdout:
            if line.strip().endswith(f"releases/{version}/dags"):
                return
        self.process.kill()
        pytest.fail(f"the task on {version} did not start: {self.process.stderr.read()[-3000:]}")

    def end(self) -> None:
        self.process.stdin.close()
        assert self.process.wait(60) == 0, self.process.stderr.read()


def released(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "releases").iterdir() if p.is_dir() and not p.name.startswith("."))


def test_fetched_releases_are_pruned_to_the_most_recently_used_but_never_one_a_task_runs(dist, tmp_path):
    worker = tmp_path / "worker"
    long_task = Task(worker, "v1", dist, keep_fetched=1)
    Task(worker, "v2", dist, keep_fetched=1).end()
    # v3's fetch keeps one fetched release, itself: v2 goes, v1 stays while its task runs.
    Task(worker, "v3", dist, keep_fetched=1).end()
    assert released(worker) == ["v1", "v3"]
    long_task.end()
    # v2 again (a run on it still had tasks to start): fetched back, then v1 and v3 go.
    Task(worker, "v2", dist, keep_fetched=1).end()
    assert released(worker) == ["v2"]
    assert probe_text(worker / "releases/v2/dags") == 'TEXT = "release text: v2"'
    assert sorted(p.name for p in (worker / "releases/.in-use").iterdir()) == ["v2"]


def test_a_task_start_on_a_present_release_makes_it_the_most_recently_used(dist, tmp_path):
    worker = tmp_path / "worker"
    for version in ("v1", "v2"):
        Task(worker, version, dist, keep_fetched=2).end()
    Task(worker, "v1", dist, keep_fetched=2).end()  # present: used, not fetched
    Task(worker, "v3", dist, keep_fetched=2).end()
    assert released(worker) == ["v1", "v3"]


def test_the_live_release_and_deployed_ones_are_not_pruned_by_a_fetch(dist, tmp_path):
    home = tmp_path / "home"
    deploy(archive(dist, "v1"), home)
    Task(home, "v2", dist, keep_fetched=0).end()
    Task(home, "v3", dist, keep_fetched=0).end()
    # v2 went at v3's fetch; v3 stayed, held by the task that fetched it.
    assert released(home) == ["v1", "v3"]
    assert os.readlink(home / "current") == "releases/v1"


def test_deploy_prunes_fetched_releases_too_but_not_one_a_task_runs(dist, tmp_path):
    home = tmp_path / "home"
    deploy(archive(dist, "v1"), home)
    running = Task(home, "v2", dist, keep_fetched=3)
    run(sys.executable, "-m", "platformkit", "deploy", archive(dist, "v3"), "--airflow-home", home, "--keep", "1",
        "--keep-fetched", "0")
    assert released(home) == ["v2", "v3"]
    running.end()
    deployed = run(sys.executable, "-m", "platformkit", "deploy", archive(dist, "v3"), "--airflow-home", home,
                   "--keep", "1", "--keep-fetched", "0")
    assert "removing old release v2" in deployed.stdout
    assert released(home) == ["v3"]
