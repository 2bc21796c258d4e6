"""Deploy a release archive into AIRFLOW_HOME, roll back, or show what is live.

    python3 -m platformkit deploy ARCHIVE_PATH_OR_URL --airflow-home DIR [--keep 5] [--keep-fetched 3]
    python3 -m platformkit rollback --airflow-home DIR
    python3 -m platformkit status --airflow-home DIR

Layout under AIRFLOW_HOME (platformkit/layout.py names every path):

    releases/<version>/      one unpacked release (dags/, projects, unpacked runtimes, manifest.json)
    releases/state.json      {"history": [...]}: the releases that went live, oldest first; the
                             last one is live. The one record of deploys and rollbacks.
    current -> releases/<version>   what Airflow's releases bundle parses

A deploy prepares everything in releases/.incoming-* (checksum, unpack under one member policy,
the manifest as the whole truth, file checksums, runtimes), and only then renames it into place.
It then records the switch in state.json (one atomic rename) and points `current` at it (another).
A deploy or rollback killed before its record leaves everything as it was; one killed after it is
completed by the next deploy or rollback, which first points `current` where the record says.
So `rollback` always returns to the release that was live before the last switch.

The releases bundle (platformkit/bundle.py) adds releases a task needs the same way
(`fetch_release`), without a switch. Old releases are pruned after each deploy and fetch; the
live one and any a task process is running (`Releases.hold`) are never removed.

Standard library only: it runs with the host's python3.
"""

from __future__ import annotations

import compileall
import contextlib
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import IO

from platformkit import images
from platformkit.errors import PlatformError
from platformkit.files import Busy, acquire, sha256_of, write_atomically
from platformkit.layout import (
    CHECKSUM_SUFFIX,
    CURRENT,
    DAGS,
    IN_USE,
    INCOMING,
    LEGACY_HISTORY,
    LOCK,
    MANIFEST,
    NEW_LINK,
    RELEASES,
    RUNTIME_ARCHIVE,
    RUNTIME_DIR,
    STATE,
    checksum_path,
)
from platformkit.log import prefixed
from platformkit.untrusted import MemberPolicy, Refused, download
from platformkit.version import check_version

# "Name: value", sent when fetching an archive by URL (e.g. "JOB-TOKEN: ..." for a GitLab
# package registry) to that URL's origin only. Read from the environment only, never printed.
AUTH_HEADER_ENV = "DEPLOY_AUTH_HEADER"
KEEP = 5
# Releases fetched for tasks (never live here) kept after a deploy or fetch, the most recently
# used first: the versions of runs that may still be running, without fetching them again.
KEEP_FETCHED = 3
# How long a task process waits for a prune that is removing the release it asks for.
HOLD_WAIT_SECONDS = 600

log = prefixed("deploy")


class DeployError(PlatformError):
    """A deploy that cannot go on; the live release is untouched."""


def require_extraction_filters() -> None:
    """Debian 12's python3 (3.11.2) predates tarfile's extraction filters, which the member
    policy is built on: refuse to unpack anything there rather than unpack it unchecked."""
    if not hasattr(tarfile, "data_filter"):
        raise DeployError(f"Python {sys.version.split()[0]} has no tarfile extraction filters; "
                          "deploy needs 3.11.4 or later")


# --- fetching and verifying ------------------------------------------------------------------

def auth_header() -> dict[str, str]:
    header = os.environ.get(AUTH_HEADER_ENV)
    if not header:
        return {}
    name, _, value = header.partition(":")
    return {name.strip(): value.strip()}


def fetch(source: str, workdir: Path, credentials: dict[str, str] | None = None) -> tuple[Path, Path]:
    """The archive and its .sha256 as local files (downloaded when given a URL, with the
    credentials given, else DEPLOY_AUTH_HEADER's, sent to that URL's origin only)."""
    if "://" in source:
        credentials = auth_header() if credentials is None else credentials
        name = source.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "archive.tar.gz"
        archive = workdir / name
        checksum = checksum_path(archive)
        log(f"fetching {source}")
        for url, target in ((source, archive), (source + CHECKSUM_SUFFIX, checksum)):
            try:
                download(url, target, credentials)
            except Refused as error:
                raise DeployError(str(error)) from None
            except OSError as error:  # URLError and HTTPError are OSErrors
                raise DeployError(f"could not fetch {url}: {error}") from None
        return archive, checksum
    archive = Path(source)
    if not archive.is_file():
        raise DeployError(f"no archive at {archive}")
    checksum = checksum_path(archive)
    if not checksum.is_file():
        raise DeployError(f"no checksum file {checksum} beside the archive")
    return archive, checksum


def verify_checksum(archive: Path, checksum: Path) -> str:
    try:
        fields = checksum.read_text(errors="replace").split()
        actual = sha256_of(archive)
    except OSError as error:
        raise DeployError(f"cannot read {error.filename or archive}: {error.strerror or error}") from None
    expected = fields[0] if fields else ""
    if actual != expected:
        raise DeployError(f"checksum mismatch for {archive.name}: expected {expected[:64] or '(empty)'}, got {actual}")
    return actual


def unpack(archive: Path, target: Path, policy: MemberPolicy) -> None:
    """Unpack a .tar.gz through the policy, and read the gzip stream to its end so that a
    corrupt archive is named as such (the CRC is only checked there)."""
    what = archive.name if archive.name != RUNTIME_ARCHIVE else f"{archive.parent.name}/{archive.name}"
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(target, filter=policy)
            # tarfile stops at the first header it cannot read as if the archive ended there.
            while chunk := tar.fileobj.read(1 << 20):
                if chunk.strip(b"\0"):
                    raise DeployError(f"{what} is not a valid .tar.gz (corrupt or truncated): "
                                      f"unreadable tar data after {len(policy.names)} members")
    except Refused as error:
        raise DeployError(f"{what} is refused: member {error}") from None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DeployError(f"{what} is not a valid .tar.gz (corrupt or truncated): {error}") from None
    except OSError as error:
        raise DeployError(f"cannot unpack {what}: {error.strerror or error}"
                          f"{f' ({error.filename})' if error.filename else ''}") from None


def read_manifest(release: Path) -> dict:
    """manifest.json, checked for the shape deploy relies on."""
    try:
        manifest = json.loads((release / MANIFEST).read_text())
    except FileNotFoundError:
        raise DeployError(f"the archive has no {MANIFEST}: not a release archive") from None
    except (ValueError, OSError) as error:
        raise DeployError(f"{MANIFEST} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict):
        raise DeployError(f"{MANIFEST} is not a JSON object")
    try:
        check_version(manifest.get("version"))
    except PlatformError as error:
        raise DeployError(f"{MANIFEST}: {error}") from None
    for key, kind in (("files", str), ("links", str), ("runtimes", dict)):
        value = manifest.setdefault(key, {})
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, kind) for k, v in value.items()):
            raise DeployError(f"{MANIFEST}: '{key}' must map names to {kind.__name__}s")
    for project, runtime in manifest["runtimes"].items():
        if f"{project}/{RUNTIME_ARCHIVE}" not in manifest["files"]:
            raise DeployError(f"{MANIFEST}: the runtime of {project!r} has no {project}/{RUNTIME_ARCHIVE} in the files")
        python_path = runtime.get("python_path")
        # The one link allowed out of a runtime goes there: an absolute path to a Python.
        if python_path is not None and not (isinstance(python_path, str) and python_path.startswith("/")
                                            and Path(python_path).name.startswith("python")):
            raise DeployError(f"{MANIFEST}: the runtime of {project!r} has an invalid python_path {python_path!r}")
    return manifest


def verify_members(release: Path, manifest: dict, policy: MemberPolicy) -> None:
    """The manifest is the whole truth: members are exactly its files, its links and itself."""
    listed = {*manifest["files"], *manifest["links"], MANIFEST}
    if extra := sorted(policy.names - listed):
        raise DeployError(f"{extra[0]} is in the archive but not in the manifest"
                          + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    if missing := sorted(listed - policy.names):
        raise DeployError(f"{missing[0]} is listed in the manifest but missing from the archive")
    for name, expected in manifest["files"].items():
        path = release / name
        if name not in policy.files:
            raise DeployError(f"{name} is listed as a file but is not one in the archive")
        if sha256_of(path) != expected:
            raise DeployError(f"{name} does not match its checksum in the manifest")
    for name, target in manifest["links"].items():
        if name not in policy.links or os.readlink(release / name) != target:
            raise DeployError(f"{name} is listed as a link to {target!r} but is not one in the archive")


def unpack_runtime(release: Path, project: str, runtime: dict) -> None:
    """Unpack a project's runtime where the host runs it: <project>/venv/."""
    python_path = runtime.get("python_path")
    if python_path and not Path(python_path).exists():
        raise DeployError(f"the runtime of {project} was packed with venv-pack and needs Python "
                          f"{runtime.get('python_version')} at {python_path}, which this host does not have")
    venv = release / project / RUNTIME_DIR
    if os.path.lexists(venv):
        raise DeployError(f"{project}/{RUNTIME_DIR} is in the archive: that is where the runtime is unpacked")
    unpack(release / project / RUNTIME_ARCHIVE, venv, MemberPolicy(interpreter=python_path))
    try:
        if (venv / "bin/conda-unpack").exists():
            subprocess.run([str(venv / "bin/conda-unpack")], check=True, capture_output=True, text=True)
        smoke = subprocess.run([str(venv / "bin/python"), "-c", "import sys; print(sys.version.split()[0])"],
                               capture_output=True, text=True)
    except subprocess.CalledProcessError as error:
        raise DeployError(f"conda-unpack failed for the runtime of {project}: {error.stderr.strip()[-500:]}") from None
    except OSError as error:
        raise DeployError(f"the runtime of {project} does not start: {error}") from None
    if smoke.returncode != 0:
        raise DeployError(f"the runtime of {project} does not start: {smoke.stderr.strip()[-500:]}")


def prepare(archive: Path, checksum: Path, staged: Path) -> dict:
    """Verify an archive and unpack it into `staged` (which must not exist), runtimes included:
    everything a release needs before it can go live, and nothing more (no switch). Returns the
    manifest; raises DeployError, naming what is wrong."""
    digest = verify_checksum(archive, checksum)
    log(f"checksum ok: {archive.name} ({digest[:12]})")
    policy = MemberPolicy(links_confined_to_top_folder=True)
    unpack(archive, staged, policy)
    manifest = read_manifest(staged)
    verify_members(staged, manifest, policy)
    log(f"unpacked release {manifest['version']} ({len(manifest['files'])} files verified)")
    for project, runtime in manifest["runtimes"].items():
        unpack_runtime(staged, project, runtime)
        log(f"unpacked runtime of {project} (Python {runtime.get('python_version')}, {runtime.get('backend')})")
    compile_dags(staged)
    return manifest


def compile_dags(release: Path) -> None:
    """Compile dags/ (the DAG files and dagkit) to bytecode, as the runtimes ship theirs: the DAG
    processor imports them in a new process for every parse, and where it cannot write
    __pycache__ (a read-only release, PYTHONDONTWRITEBYTECODE) each parse would compile them again
    (~10 ms a project DAG). Written by this python3, so used by an Airflow of the same minor
    version (the platform's 3.11); another one ignores them. A DAG file that does not compile is
    left to the DAG processor, which reports it as the DAG's import error."""
    compileall.compile_dir(release / DAGS, quiet=2)


# --- the releases folder ---------------------------------------------------------------------

class Releases:
    """AIRFLOW_HOME's releases/ folder, its state and the `current` link."""

    def __init__(self, airflow_home: Path):
        self.home = airflow_home.resolve()
        self.dir = self.home / RELEASES
        self.current = self.home / CURRENT
        self.state_file = self.dir / STATE

    @contextlib.contextmanager
    def locked(self, wait: float = 0):
        """One deploy, rollback or fetch at a time (a fetch waits up to `wait` seconds); what an
        interrupted one left is settled first."""
        try:
            lock = acquire(self.dir / LOCK, wait=wait)
        except Busy:
            raise DeployError(f"another deploy, rollback or release fetch is running in {self.dir}"
                              + (f" (waited {wait:.0f} s)" if wait else "")) from None
        with lock:
            self.remove_leftovers()
            self.complete_switch()
            yield

    def hold(self, name: str) -> IO:
        """A shared lock on releases/.in-use/<name> for as long as the returned file is open: each
        task process holds the release it runs, and no prune removes a release someone holds.
        A prune unlinks the lock file of a release it removed, so the lock counts only when the
        file locked is still the one at that path."""
        path = self.dir / IN_USE / name
        while True:
            handle = acquire(path, shared=True, wait=HOLD_WAIT_SECONDS)
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                    return handle
            handle.close()

    def history(self) -> list[str]:
        """The releases that went live, oldest first; the last one is (or is becoming) live."""
        try:
            state = json.loads(self.state_file.read_text())
            return [name for name in state["history"] if isinstance(name, str)]
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError) as error:
            raise DeployError(f"{self.state_file} is damaged ({error}); fix or remove it") from None
        legacy = self.dir / LEGACY_HISTORY
        history = legacy.read_text().split() if legacy.is_file() else []
        live = self.live()
        if live and history[-1:] != [live]:
            history.append(live)  # the old record could miss the last switch
        return history

    def record(self, history: list[str]) -> None:
        """The one record of what went live, replaced in one rename."""
        write_atomically(self.state_file, json.dumps({"history": history}, indent=2) + "\n")
        with contextlib.suppress(FileNotFoundError):
            (self.dir / LEGACY_HISTORY).unlink()

    def live(self) -> str | None:
        return os.readlink(self.current).rsplit("/", 1)[-1] if self.current.is_symlink() else None

    def has(self, name: str) -> bool:
        """Whether releases/<name> is a complete release (its manifest is renamed in with it)."""
        return (self.dir / name / MANIFEST).is_file()

    def switch(self, name: str) -> None:
        """Point `current` at releases/<name> with one rename: readers see the old or the new.
        The new link has a fixed name, so a kill leaves at most that one, replaced next time."""
        link = self.home / NEW_LINK
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(Path(RELEASES) / name)
        os.replace(link, self.current)

    def complete_switch(self) -> None:
        """A deploy or rollback killed between its record and its switch: finish the switch."""
        history = self.history()
        if history and history[-1] != self.live() and (self.dir / history[-1]).is_dir():
            log(f"completing the switch to {history[-1]} that an interrupted deploy or rollback recorded")
            self.switch(history[-1])

    def remove_leftovers(self) -> None:
        """What an interrupted deploy or fetch left behind."""
        for path in self.dir.glob(f"{INCOMING}*"):
            log(f"removing {path.name}, left by an interrupted deploy")
            shutil.rmtree(path, ignore_errors=True)
        # NEW_LINK, and the per-process links of deploys before it.
        for path in [self.home / NEW_LINK, *self.home.glob(".current-*")]:
            if path.is_symlink():
                path.unlink()

    def name_for(self, version: str, manifest: dict) -> str:
        """releases/<version>, unless that holds a different build of the same version."""
        contents = {"files": manifest["files"], "links": manifest["links"]}
        try:
            existing = json.loads((self.dir / version / MANIFEST).read_text())
            if {"files": existing.get("files"), "links": existing.get("links", {})} == contents:
                return version
        except FileNotFoundError:
            if not os.path.lexists(self.dir / version):
                return version
        except ValueError:
            pass
        return f"{version}+{hashlib.sha256(json.dumps(contents, sort_keys=True).encode()).hexdigest()[:8]}"

    def add(self, source: str, credentials: dict[str, str] | None = None, version: str | None = None) -> str:
        """Fetch, verify and unpack a release archive into releases/, runtimes and images
        included (no switch); its folder name. With `version`, the archive must be that release,
        in releases/<version>. Call under `locked`."""
        incoming = Path(tempfile.mkdtemp(prefix=INCOMING, dir=self.dir))
        try:
            archive, checksum = fetch(source, incoming, credentials)
            staged = incoming / "release"
            manifest = prepare(archive, checksum, staged)
            name = self.name_for(manifest["version"], manifest)
            if version is not None and manifest["version"] != version:
                raise DeployError(f"{source} holds release {manifest['version']!r}, not {version!r}")
            if version is not None and name != version:
                raise DeployError(f"{self.dir / version} holds another build of {version}; remove it")
            images.check_available(staged, manifest)
            if not (self.dir / name).exists():
                os.rename(staged, self.dir / name)
                os.utime(self.dir / name)  # when it came: prune keeps the most recently used
            return name
        finally:
            shutil.rmtree(incoming, ignore_errors=True)

    def unpacked(self) -> list[Path]:
        """The release folders (the rest of releases/ is the state, the lock and dot-names)."""
        return [path for path in self.dir.iterdir()
                if path.is_dir() and not path.is_symlink() and not path.name.startswith(".")]

    def prune(self, keep: int | None, keep_fetched: int) -> None:
        """Remove old releases: those that went live beyond the last `keep` (None: leave them to
        deploy), and fetched ones (never live here) beyond the `keep_fetched` used most recently.
        The live release, and any a task process holds, stay."""
        history, live = self.history(), self.live()
        fetched = sorted((path for path in self.unpacked() if path.name not in history),
                         key=lambda path: path.stat().st_mtime, reverse=True)
        kept = {live, *(history if keep is None else history[-keep:]), *(p.name for p in fetched[:keep_fetched])}
        for path in self.unpacked():
            if path.name not in kept:
                self.remove_unless_held(path)
        if keep is not None:
            self.record([name for name in history if name in kept or (self.dir / name).is_dir()])

    def remove_unless_held(self, path: Path) -> None:
        lock = self.dir / IN_USE / path.name
        try:
            handle = acquire(lock)
        except Busy:
            log(f"keeping old release {path.name}: a task is running it")
            return
        with handle:
            log(f"removing old release {path.name}")
            shutil.rmtree(path)
            lock.unlink()


def deploy(source: str, airflow_home: Path, keep: int = KEEP, keep_fetched: int = KEEP_FETCHED) -> str:
    require_extraction_filters()
    releases = Releases(airflow_home)
    with releases.locked():
        name = releases.add(source)
        history = releases.history()
        if history[-1:] != [name]:
            releases.record(history + [name])
        releases.switch(name)
        releases.prune(keep, keep_fetched)
        log(f"live: {releases.current} -> {RELEASES}/{name}")
        return name


def fetch_release(airflow_home: Path, version: str, source: str, credentials: dict[str, str] | None = None,
                  keep_fetched: int = KEEP_FETCHED, wait: float = 0) -> bool:
    """Make releases/<version> present for a task, from `source` (the store's archive of it),
    without a switch; then prune old fetched releases. Waits up to `wait` seconds for another
    fetch or a deploy. False when another process fetched it meanwhile."""
    require_extraction_filters()
    check_version(version)
    releases = Releases(airflow_home)
    with releases.locked(wait=wait):
        if releases.has(version):
            return False
        releases.add(source, credentials, version)
        releases.prune(None, keep_fetched)
        return True


def rollback(airflow_home: Path) -> str:
    releases = Releases(airflow_home)
    with releases.locked():
        history = releases.history()
        while len(history) > 1:
            history.pop()
            if (releases.dir / history[-1]).is_dir():
                images.check_available(releases.dir / history[-1])
                releases.record(history)
                releases.switch(history[-1])
                log(f"rolled back: {releases.current} -> {RELEASES}/{history[-1]}")
                return history[-1]
        raise DeployError("no earlier release to roll back to")


def status(airflow_home: Path) -> None:
    releases = Releases(airflow_home)
    live, history = releases.live(), releases.history()
    print(f"AIRFLOW_HOME: {releases.home}")
    print(f"live release: {live or '(none)'}")
    if history and history[-1] != live:
        print(f"  (the switch to {history[-1]} was recorded but not done: the next deploy or rollback does it)")
    for name in reversed(history):
        print(f"  {'*' if name == live else ' '} {name}")
