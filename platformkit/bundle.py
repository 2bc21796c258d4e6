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
- Each task process holds its release (``Releases.hold``) while it runs. After each fetch, the
  fetched releases beyond the ``keep_fetched`` used most recently are removed, except the live one
  and those held; deploy prunes the same way.

The release store is a folder or an http(s) URL prefix; ``{version}`` in it is replaced by the
version (GitLab's generic package registry keeps each version in its own folder). Credentials
never come from the bundle config: the headers in the extra of the Airflow connection
``release_store`` (``{"headers": {"JOB-TOKEN": "..."}}``) when it exists, else
``DEPLOY_AUTH_HEADER`` from the environment, exactly as ``make deploy``; they go to the store's
origin only (a redirect elsewhere gets none). A URL holding a user or password is refused.
A fetched release goes through deploy's own ``Releases.add`` (checksum, member policy, manifest,
runtimes, and each image on this host's engine, pulled by digest if need be).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

from airflow.configuration import AIRFLOW_HOME
from airflow.dag_processing.bundles.base import BaseDagBundle, BundleVersion

from platformkit import deploy
from platformkit.errors import PlatformError
from platformkit.layout import CURRENT, DAGS, MANIFEST, archive_name
from platformkit.version import check_version

log = logging.getLogger(__name__)

# Credentials for the release store: the headers in this connection's extra.
STORE_CONN_ID = "release_store"
# The manifest's own fields shown with a version; the per-file checksums would bloat every DAG version row.
VERSION_DATA_FIELDS = ("version", "git_sha", "created_at", "projects")
# The releases this process runs, held until it exits (a task process runs one; see Releases.hold).
_held: dict[Path, object] = {}
# What every parse of a DAG file imports beyond the `airflow.*` modules the file names (those the DAG
# processor imports itself before it forks the parser: [dag_processor] parsing_pre_import_modules):
# serializing any task imports the standard provider's operators behind Airflow's own dependency
# detection and operator links (TriggerDagRunOperator, ExternalTaskSensor), a cron schedule its
# timetable, a templated operator jinja2.ext, any DAG airflow.version. ~10 ms per parse when each
# forked parser imports them; the bundle imports them once, in the processor (tests/bench_dag_processor.py).
# Only modules that do not change with a release: dagkit (in the release) must stay per parse.
PARSING_IMPORTS = (
    "airflow.providers.standard.operators.empty",
    "airflow.providers.standard.operators.trigger_dagrun",
    "airflow.providers.standard.sensors.external_task",
    "airflow.timetables.trigger",
    "airflow.version",
    "jinja2.ext",
)


def import_parsing_modules() -> None:
    """Import PARSING_IMPORTS into this process, so the parsers it forks have them. A speed-up
    only: a module that does not import is logged, as Airflow's own pre-import does, never raised
    (the bundle would not initialize, and nothing would be parsed)."""
    for module in PARSING_IMPORTS:
        try:
            importlib.import_module(module)
        except ImportError as error:
            log.warning("pre-import of %s for the DAG parsers failed: %s", module, error)


class ReleaseFetchError(PlatformError):
    """The release a task needs is not here and cannot be fetched; the task fails naming why."""


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
        raise ValueError("release_store must not hold credentials: "
                         "put them in the release_store connection or DEPLOY_AUTH_HEADER")
    return store


class ReleaseBundle(BaseDagBundle):
    """The releases of $AIRFLOW_HOME/releases as one versioned bundle (see the module doc).

    :param release_store: where published releases are fetched from: a folder or an http(s) URL
        prefix, ``{version}`` replaced by the version. Without it, a missing version fails the task.
    :param airflow_home: the AIRFLOW_HOME holding ``releases/`` and ``current`` (default: this
        process's AIRFLOW_HOME).
    :param fetch_timeout: seconds to wait for another fetch or a deploy holding the releases lock.
    :param keep_fetched: fetched releases (never live here) kept after a fetch, most recently used
        first: the versions of runs that may still be running.
    """

    supports_versioning = True

    def __init__(self, *, release_store: str | None = None, airflow_home: str | None = None,
                 fetch_timeout: float = 600, keep_fetched: int = deploy.KEEP_FETCHED, **kwargs) -> None:
        super().__init__(**kwargs)
        self.release_store = check_store(release_store) if release_store else None
        self.airflow_home = Path(airflow_home or AIRFLOW_HOME).absolute()
        self.releases = deploy.Releases(self.airflow_home)
        self.releases_dir = self.releases.dir
        self.fetch_timeout = fetch_timeout
        if keep_fetched < 0:
            raise ValueError(f"keep_fetched must be 0 or more, not {keep_fetched}")
        self.keep_fetched = keep_fetched
        if self.version is not None:
            try:
                check_version(self.version)
            except PlatformError as error:
                raise ReleaseFetchError(f"{self.version!r} is not a release version: {error}") from None
        # The live release when last refreshed (the DAG processor's view); None before any deploy.
        self._live: str | None = None

    # --- what Airflow asks ---------------------------------------------------------------------

    def initialize(self) -> None:
        if self.version is None:
            # the DAG processor's view: it forks a parser for every parse of the live release's files
            self._live = self.live_release()
            import_parsing_modules()
        else:
            self.hold(self.version)
            if not self.releases.has(self.version):
                self.fetch_release(self.version)
            # Most recently used first when fetched releases are pruned.
            os.utime(self.releases_dir / self.version)
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
        return self.releases_dir / name / DAGS if name else self.airflow_home / CURRENT / DAGS

    # --- the releases on this host ---------------------------------------------------------------

    def live_release(self) -> str | None:
        return self.releases.live()

    def archive_source(self, version: str) -> str:
        """Where the store keeps the archive of `version` (a URL or a path)."""
        if not self.release_store:
            raise ReleaseFetchError(f"release {version} is not in {self.releases_dir} and the bundle "
                                    f"{self.name!r} has no release_store to fetch it from")
        name = archive_name(version)
        prefix = self.release_store.replace("{version}", version)
        return f"{prefix.rstrip('/')}/{name}" if "://" in prefix else str(Path(prefix) / name)

    def hold(self, version: str) -> None:
        """Hold releases/<version> for the rest of this process: no prune removes it meanwhile."""
        if self.releases_dir / version not in _held:
            _held[self.releases_dir / version] = self.releases.hold(version)

    def fetch_release(self, version: str) -> None:
        """Fetch, verify and unpack one release into releases/<version>; `current` is not touched."""
        source = self.archive_source(version)
        started = time.monotonic()
        log.info("Fetching release %s from %s", version, source)
        try:
            fetched = deploy.fetch_release(self.airflow_home, version, source, store_credentials(),
                                           keep_fetched=self.keep_fetched, wait=self.fetch_timeout)
        except PlatformError as error:
            raise ReleaseFetchError(f"cannot fetch release {version}: {error}") from error
        if fetched:
            log.info("Fetched release %s into %s in %.1f s", version, self.releases_dir / version,
                     time.monotonic() - started)
        else:
            log.info("Release %s was fetched by another process meanwhile", version)
