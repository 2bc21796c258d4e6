"""Deploy a release archive into AIRFLOW_HOME, roll back, or show what is live.

    python release/deploy.py deploy ARCHIVE_PATH_OR_URL --airflow-home DIR [--keep 5]
    python release/deploy.py rollback --airflow-home DIR
    python release/deploy.py status --airflow-home DIR

Layout under AIRFLOW_HOME:

    releases/<version>/      one unpacked release (dags/, projects, unpacked runtimes, manifest.json)
    releases/state.json      {"history": [...]}: the releases that went live, oldest first; the
                             last one is live. The one record of deploys and rollbacks.
    current -> releases/<version>   what Airflow reads (dags_folder = current/dags)

A deploy prepares everything in releases/.incoming-* (checksum, unpack under one member policy,
the manifest as the whole truth, file checksums, runtimes), and only then renames it into place.
It then records the switch in state.json (one atomic rename) and points `current` at it (another).
A deploy or rollback killed before its record leaves everything as it was; one killed after it is
completed by the next deploy or rollback, which first points `current` where the record says.
So `rollback` always returns to the release that was live before the last switch.

Standard library only: it runs with the host's python3. Every refusal is one line,
`deploy: error: ...`, and exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
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

import images
from digest import sha256_of
from untrusted import MemberPolicy, Refused, download
from version import InvalidVersion, check_version

MANIFEST = "manifest.json"
STATE = "state.json"
LEGACY_HISTORY = "history"  # the record before state.json, read once and replaced
INCOMING = ".incoming-"
NEW_LINK = ".current.new"
RUNTIME_ARCHIVE = "venv.tar.gz"
# "Name: value", sent when fetching an archive by URL (e.g. "JOB-TOKEN: ..." for a GitLab
# package registry) to that URL's origin only. Read from the environment only, never printed.
AUTH_HEADER_ENV = "DEPLOY_AUTH_HEADER"


class DeployError(Exception):
    """A deploy that cannot go on; the live release is untouched."""


def log(message: str) -> None:
    print(f"deploy: {message}", flush=True)


def write_atomically(path: Path, text: str) -> None:
    """Readers, and a kill at any point, see the old content or the new one."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


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
        archive, checksum = workdir / name, workdir / f"{name}.sha256"
        log(f"fetching {source}")
        for url, target in ((source, archive), (f"{source}.sha256", checksum)):
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
    checksum = archive.with_name(archive.name + ".sha256")
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
    except InvalidVersion as error:
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
    venv = release / project / "venv"
    if os.path.lexists(venv):
        raise DeployError(f"{project}/venv is in the archive: that is where the runtime is unpacked")
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
    return manifest


# --- the releases folder ---------------------------------------------------------------------

class Releases:
    """AIRFLOW_HOME's releases/ folder, its state and the `current` link."""

    def __init__(self, airflow_home: Path):
        self.home = airflow_home.resolve()
        self.dir = self.home / "releases"
        self.current = self.home / "current"
        self.state_file = self.dir / STATE

    @contextlib.contextmanager
    def locked(self):
        """One deploy or rollback at a time; what an interrupted one left is settled first."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DeployError(f"another deploy or rollback is running in {self.dir}") from None
            self.remove_leftovers()
            self.complete_switch()
            yield

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

    def switch(self, name: str) -> None:
        """Point `current` at releases/<name> with one rename: readers see the old or the new.
        The new link has a fixed name, so a kill leaves at most that one, replaced next time."""
        link = self.home / NEW_LINK
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(Path("releases") / name)
        os.replace(link, self.current)

    def complete_switch(self) -> None:
        """A deploy or rollback killed between its record and its switch: finish the switch."""
        history = self.history()
        if history and history[-1] != self.live() and (self.dir / history[-1]).is_dir():
            log(f"completing the switch to {history[-1]} that an interrupted deploy or rollback recorded")
            self.switch(history[-1])

    def remove_leftovers(self) -> None:
        """What an interrupted deploy left behind."""
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

    def prune(self, keep: int) -> None:
        history = self.history()
        kept = set(history[-keep:]) | {self.live()}
        self.record([n for n in history if n in kept])
        for path in self.dir.iterdir():
            if path.is_dir() and not path.is_symlink() and not path.name.startswith(".") and path.name not in kept:
                log(f"removing old release {path.name}")
                shutil.rmtree(path)


def deploy(source: str, airflow_home: Path, keep: int = 5) -> str:
    releases = Releases(airflow_home)
    with releases.locked():
        incoming = Path(tempfile.mkdtemp(prefix=INCOMING, dir=releases.dir))
        try:
            archive, checksum = fetch(source, incoming)
            staged = incoming / "release"
            manifest = prepare(archive, checksum, staged)
            images.check_available(staged, manifest, error=DeployError)
            name = releases.name_for(manifest["version"], manifest)
            target = releases.dir / name
            if not target.exists():
                os.rename(staged, target)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        history = releases.history()
        if history[-1:] != [name]:
            releases.record(history + [name])
        releases.switch(name)
        releases.prune(keep)
        log(f"live: {releases.current} -> releases/{name}")
        return name


def rollback(airflow_home: Path) -> str:
    releases = Releases(airflow_home)
    with releases.locked():
        history = releases.history()
        while len(history) > 1:
            history.pop()
            if (releases.dir / history[-1]).is_dir():
                images.check_available(releases.dir / history[-1], error=DeployError)
                releases.record(history)
                releases.switch(history[-1])
                log(f"rolled back: {releases.current} -> releases/{history[-1]}")
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


def at_least_one(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("deploy", "rollback", "status"):
        command = commands.add_parser(name)
        command.add_argument("--airflow-home", type=Path, required=True)
        if name == "deploy":
            command.add_argument("archive", help="path or URL of platform-airflow-dags-<version>.tar.gz")
            command.add_argument("--keep", type=at_least_one, default=5, help="releases to keep (default 5)")
    args = parser.parse_args(argv)
    if not hasattr(tarfile, "data_filter"):
        print(f"deploy: error: Python {sys.version.split()[0]} has no tarfile extraction filters; "
              "deploy needs 3.11.4 or later", file=sys.stderr)
        return 1
    try:
        if args.command == "deploy":
            deploy(args.archive, args.airflow_home, args.keep)
        elif args.command == "rollback":
            rollback(args.airflow_home)
        else:
            status(args.airflow_home)
    except DeployError as error:
        # One line, even when it quotes a runtime's stderr.
        print(f"deploy: error: {' | '.join(str(error).splitlines())}", file=sys.stderr)
        return 1
    except OSError as error:  # the releases folder itself: a full disk, a permission
        print(f"deploy: error: {error.strerror or error}{f': {error.filename}' if error.filename else ''}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
