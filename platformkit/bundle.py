"""Releases as a versioned Airflow DAG bundle: each DAG run keeps the release it started on.

Configured in ``[dag_processor] dag_bundle_config_list`` (local.env does it), e.g.::

    [{"name": "releases", "classpath": "platformkit.bundle.ReleaseBundle",
      "kwargs": {"release_store": "https://gitlab.example.org/api/v4/projects/42/packages/generic/platform-airflow-dags/{version}"}}]

- The DAG processor asks for no version: it parses the live release, ``releases/<name>/dags``
  where ``current`` pointed when the bundle was last refreshed, and reports that release as the
  bundle version, with its manifest (less the file list) as the version's data. Every DAG run
  records the version it was created on.
- A task asks for its run's version and runs ``releases/<version>/dags``. A host that lacks it (a
  Celery worker on another machine, or a release pruned here) fetches
  ``platform-airflow-dags-<version>.tar.gz`` and its ``.sha256`` from the release store and
  unpacks it as ``make deploy`` does (checksum, file checksums, runtimes), without switching
  ``current``. One fetch at a time per AIRFLOW_HOME, under the lock deploy takes: a second task
  process that wants the same version waits for the first and then finds it there.

The release store is a folder or an http(s) URL prefix; ``{version}`` in it is replaced by the
version (GitLab's generic package registry keeps each version in its own folder). Credentials
never come from the bundle config: the headers in the extra of the Airflow connection
``release_store`` (``{"headers": {"JOB-TOKEN": "..."}}``) when it exists, else
``DEPLOY_AUTH_HEADER`` from the environment, exactly as ``make deploy``; they go to the store's
origin only (a redirect elsewhere gets none). A URL holding a user or password is refused.
A fetched release goes through deploy's own ``prepare`` (checksum, member policy, manifest,
runtimes) and image check (each image on this host's engine, pulled by digest if need be).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from airflow.configuration import AIRFLOW_HOME
from airflow.dag_processing.bundles.base import BaseDagBundle, BundleVersion

log = logging.getLogger(__name__)

ARCHIVE_PREFIX = "platform-airflow-dags"
MANIFEST = "manifest.json"
# Credentials for the release store: the headers in this connection's extra.
STORE_CONN_ID = "release_store"
# The manifest's own fields shown with a version; the per-file checksums would bloat every DAG version row.
VERSION_DATA_FIELDS = ("version", "git_sha", "created_at", "projects")


class ReleaseFetchError(Exception):
    """The release a task needs is not here and cannot be fetched; the task fails naming why."""


@cache
def deploy_module():
    """release/deploy.py of the checkout this package is installed from (editable install): the
    one verified unpack path, shared with `make deploy`. Its folder goes on sys.path, as when it
    runs as a script, for the modules it imports beside it (untrusted, version, images)."""
    folder = Path(__file__).resolve().parents[1] / "release"
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    spec = importlib.util.spec_from_file_location("platform_release_deploy", folder / "deploy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_version(version: str) -> str:
    """The one version rule, release/version.py's (a name, never a path)."""
    try:
        return deploy_module().check_version(version)
    except deploy_module().InvalidVersion as error:
        raise ReleaseFetchError(f"{version!r} is not a release version: {error}") from None


def store_credentials() -> dict[str, str] | None:
    """The headers of the release_store connection, or None (deploy then reads DEPLOY_AUTH_HEADER)."""
    try:
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:
        return None
    try:
        conn = Connection.get(STORE_CONN_ID)
    except AirflowNotFoundException:
        return None
    except Exception as error:  # outside a task (no API to ask): the environment decides
        log.debug("no %s connection here: %s", STORE_CONN_ID, error)
        return None
    headers = (conn.extra_dejson or {}).get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ReleaseFetchError(f"the {STORE_CONN_ID} connection's extra 'headers' must map names to strings")
    return headers


def check_store(store: str) -> str:
    """A folder or an http(s) URL prefix that carries no credentials."""
    if "://" not in store:
        return store
    parts = urlsplit(store)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"release_store must be a folder or an http(s) URL, not {parts.scheme}://...")
    if parts.username or parts.password:
        raise ValueError("release_store must not hold credentials: put them in the release_store connection or DEPLOY_AUTH_HEADER")
    return store


class ReleaseBundle(BaseDagBundle):
    """The releases of $AIRFLOW_HOME/releases as one versioned bundle (see the module doc).

    :param release_store: where published releases are fetched from: a folder or an http(s) URL
        prefix, ``{version}`` replaced by the version. Without it, a missing version fails the task.
    :param airflow_home: the AIRFLOW_HOME holding ``releases/`` and ``current`` (default: this
        process's AIRFLOW_HOME).
    :param fetch_timeout: seconds to wait for another fetch or a deploy holding the releases lock.
    """

    supports_versioning = True

    def __init__(self, *, release_store: str | None = None, airflow_home: str | None = None,
                 fetch_timeout: float = 600, **kwargs) -> None:
        super().__init__(**kwargs)
        self.release_store = check_store(release_store) if release_store else None
        self.airflow_home = Path(airflow_home or AIRFLOW_HOME).absolute()
        self.releases_dir = self.airflow_home / "releases"
        self.fetch_timeout = fetch_timeout
        if self.version is not None:
            check_version(self.version)
        # The live release when last refreshed (the DAG processor's view); None before any deploy.
        self._live: str | None = None

    # --- what Airflow asks ---------------------------------------------------------------------

    def initialize(self) -> None:
        if self.version is None:
            self._live = self.live_release()
        elif not self.has_release(self.version):
            self.fetch_release(self.version)
        super().initialize()

    def refresh(self) -> None:
        """Look at `current` again: a deploy may have switched it."""
        if self.version is None:
            self._live = self.live_release()

    def get_current_version(self) -> BundleVersion | None:
        name = self.version or self._live or self.live_release()
        if name is None:
            return None
        manifest = self.releases_dir / name / MANIFEST
        data = json.loads(manifest.read_text()) if manifest.is_file() else {}
        return BundleVersion(version=name, data={k: data[k] for k in VERSION_DATA_FIELDS if k in data})

    @property
    def path(self) -> Path:
        name = self.version or self._live or self.live_release()
        # Before any deploy there is nothing to parse; Airflow warns that the path does not exist.
        return self.releases_dir / name / "dags" if name else self.airflow_home / "current" / "dags"

    # --- the releases on this host ---------------------------------------------------------------

    def live_release(self) -> str | None:
        current = self.airflow_home / "current"
        return os.readlink(current).rsplit("/", 1)[-1] if current.is_symlink() else None

    def has_release(self, version: str) -> bool:
        return (self.releases_dir / version / MANIFEST).is_file()

    def archive_source(self, version: str) -> str:
        """Where the store keeps the archive of `version` (a URL or a path)."""
        if not self.release_store:
            raise ReleaseFetchError(f"release {version} is not in {self.releases_dir} and the bundle "
                                    f"{self.name!r} has no release_store to fetch it from")
        name = f"{ARCHIVE_PREFIX}-{version}.tar.gz"
        prefix = self.release_store.replace("{version}", version)
        return f"{prefix.rstrip('/')}/{name}" if "://" in prefix else str(Path(prefix) / name)

    @contextlib.contextmanager
    def releases_locked(self):
        """The lock `make deploy` takes, waited for: one fetch or deploy at a time in releases/."""
        self.releases_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.fetch_timeout
        with open(self.releases_dir / ".lock", "w") as lock:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ReleaseFetchError(f"{self.releases_dir} stayed locked by another fetch or deploy "
                                                f"for {self.fetch_timeout:.0f} s") from None
                    time.sleep(0.2)
            yield

    def fetch_release(self, version: str) -> None:
        """Fetch, verify and unpack one release into releases/<version>; `current` is not touched."""
        check_version(version)
        source = self.archive_source(version)
        deploy = deploy_module()
        with self.releases_locked():
            if self.has_release(version):  # another process fetched it while this one waited
                return
            started = time.monotonic()
            log.info("Fetching release %s from %s", version, source)
            releases = deploy.Releases(self.airflow_home)
            releases.remove_leftovers()
            incoming = Path(tempfile.mkdtemp(prefix=deploy.INCOMING, dir=self.releases_dir))
            try:
                archive, checksum = deploy.fetch(source, incoming, store_credentials())
                staged = incoming / "release"
                manifest = deploy.prepare(archive, checksum, staged)
                if manifest.get("version") != version:
                    raise ReleaseFetchError(f"{source} holds release {manifest.get('version')!r}, not {version!r}")
                deploy.images.check_available(staged, manifest, error=deploy.DeployError)
                os.rename(staged, self.releases_dir / version)
            except deploy.DeployError as error:
                raise ReleaseFetchError(f"cannot fetch release {version}: {error}") from error
            finally:
                shutil.rmtree(incoming, ignore_errors=True)
            log.info("Fetched release %s into %s in %.1f s", version, self.releases_dir / version,
                     time.monotonic() - started)
