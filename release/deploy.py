"""Deploy a release archive into AIRFLOW_HOME, roll back, or show what is live.

    python release/deploy.py deploy ARCHIVE_PATH_OR_URL --airflow-home DIR [--keep 5]
    python release/deploy.py rollback --airflow-home DIR
    python release/deploy.py status --airflow-home DIR

Layout under AIRFLOW_HOME:

    releases/<version>/      one unpacked release (dags/, projects, unpacked runtimes, manifest.json)
    releases/history         the releases that went live, oldest first; the last line is live
    current -> releases/<version>   what Airflow reads (dags_folder = current/dags)

A deploy prepares everything in releases/.incoming-* (checksum, unpack, file checksums,
runtimes), and only then renames it into place and switches `current` with one atomic rename.
A deploy that fails or is killed before that leaves the live release as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import images

MANIFEST = "manifest.json"
HISTORY = "history"
INCOMING = ".incoming-"
# "Name: value", sent when fetching an archive by URL (e.g. "JOB-TOKEN: ..." for a GitLab
# package registry). Read from the environment only, and never printed.
AUTH_HEADER_ENV = "DEPLOY_AUTH_HEADER"


class DeployError(Exception):
    """A deploy that cannot go on; the live release is untouched."""


def log(message: str) -> None:
    print(f"deploy: {message}", flush=True)


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# --- fetching and verifying ------------------------------------------------------------------

def download(url: str, target: Path) -> None:
    request = urllib.request.Request(url)
    if header := os.environ.get(AUTH_HEADER_ENV):
        name, _, value = header.partition(":")
        request.add_header(name.strip(), value.strip())
    try:
        with urllib.request.urlopen(request, timeout=60) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except OSError as error:  # URLError and HTTPError are OSErrors
        raise DeployError(f"could not fetch {url}: {error}") from error


def fetch(source: str, workdir: Path) -> tuple[Path, Path]:
    """The archive and its .sha256 as local files (downloaded when given a URL)."""
    if "://" in source:
        name = source.rstrip("/").rsplit("/", 1)[-1]
        archive, checksum = workdir / name, workdir / f"{name}.sha256"
        log(f"fetching {source}")
        download(source, archive)
        download(f"{source}.sha256", checksum)
        return archive, checksum
    archive = Path(source)
    if not archive.is_file():
        raise DeployError(f"no archive at {archive}")
    checksum = archive.with_name(archive.name + ".sha256")
    if not checksum.is_file():
        raise DeployError(f"no checksum file {checksum} beside the archive")
    return archive, checksum


def verify_checksum(archive: Path, checksum: Path) -> str:
    fields = checksum.read_text().split()
    expected = fields[0] if fields else ""
    actual = sha256_of(archive)
    if actual != expected:
        raise DeployError(f"checksum mismatch for {archive.name}: expected {expected or '(empty)'}, got {actual}")
    return actual


def unpack(archive: Path, target: Path) -> dict:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # The "data" filter refuses absolute paths, links out of the tree and device files.
            tar.extractall(target, filter="data")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DeployError(f"cannot unpack {archive.name}: {error}") from error
    manifest_path = target / MANIFEST
    if not manifest_path.is_file():
        raise DeployError(f"{archive.name} has no {MANIFEST}: not a release archive")
    return json.loads(manifest_path.read_text())


def verify_files(release: Path, manifest: dict) -> None:
    for name, expected in manifest["files"].items():
        path = release / name
        if not path.is_file():
            raise DeployError(f"{name} is listed in the manifest but missing from the archive")
        if sha256_of(path) != expected:
            raise DeployError(f"{name} does not match its checksum in the manifest")


def unpack_runtime(release: Path, project: str, runtime: dict) -> None:
    """Unpack a project's runtime where the host runs it: <project>/venv/."""
    python_path = runtime.get("python_path")
    if python_path and not Path(python_path).exists():
        raise DeployError(f"the runtime of {project} was packed with venv-pack and needs Python "
                          f"{runtime['python_version']} at {python_path}, which this host does not have")
    venv = release / project / "venv"
    with tarfile.open(release / project / "venv.tar.gz", "r:gz") as tar:
        tar.extractall(venv, filter="fully_trusted")  # our own packed env: it has symlinks to its Python
    if (venv / "bin/conda-unpack").exists():
        subprocess.run([str(venv / "bin/conda-unpack")], check=True)
    smoke = subprocess.run([str(venv / "bin/python"), "-c", "import sys; print(sys.version.split()[0])"],
                           capture_output=True, text=True)
    if smoke.returncode != 0:
        raise DeployError(f"the runtime of {project} does not start: {smoke.stderr.strip()[-500:]}")


# --- the releases folder ---------------------------------------------------------------------

class Releases:
    """AIRFLOW_HOME's releases/ folder, its history and the `current` link."""

    def __init__(self, airflow_home: Path):
        self.home = airflow_home.resolve()
        self.dir = self.home / "releases"
        self.current = self.home / "current"
        self.history_file = self.dir / HISTORY

    @contextlib.contextmanager
    def locked(self):
        """One deploy or rollback at a time."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DeployError(f"another deploy or rollback is running in {self.dir}") from None
            yield

    def history(self) -> list[str]:
        return self.history_file.read_text().split() if self.history_file.is_file() else []

    def write_history(self, names: list[str]) -> None:
        partial = self.history_file.with_name(HISTORY + ".partial")
        partial.write_text("".join(f"{n}\n" for n in names))
        os.replace(partial, self.history_file)

    def live(self) -> str | None:
        return os.readlink(self.current).rsplit("/", 1)[-1] if self.current.is_symlink() else None

    def switch(self, name: str) -> None:
        """Point `current` at releases/<name> with one rename: readers see the old or the new."""
        link = self.home / f".current-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(Path("releases") / name)
        os.replace(link, self.current)

    def remove_leftovers(self) -> None:
        """What an interrupted deploy left behind."""
        for path in self.dir.glob(f"{INCOMING}*"):
            log(f"removing {path.name}, left by an interrupted deploy")
            shutil.rmtree(path, ignore_errors=True)

    def name_for(self, version: str, manifest: dict) -> str:
        """releases/<version>, unless that holds a different build of the same version."""
        existing = self.dir / version / MANIFEST
        if not existing.is_file() or json.loads(existing.read_text())["files"] == manifest["files"]:
            return version
        return f"{version}+{hashlib.sha256(json.dumps(manifest['files'], sort_keys=True).encode()).hexdigest()[:8]}"

    def prune(self, keep: int) -> None:
        history = self.history()
        kept = set(history[-keep:]) | {self.live()}
        for path in self.dir.iterdir():
            if path.is_dir() and not path.name.startswith(".") and path.name not in kept:
                log(f"removing old release {path.name}")
                shutil.rmtree(path)
        self.write_history([n for n in history if n in kept])


def deploy(source: str, airflow_home: Path, keep: int = 5) -> str:
    releases = Releases(airflow_home)
    with releases.locked():
        releases.remove_leftovers()
        incoming = Path(tempfile.mkdtemp(prefix=INCOMING, dir=releases.dir))
        try:
            archive, checksum = fetch(source, incoming)
            digest = verify_checksum(archive, checksum)
            log(f"checksum ok: {archive.name} ({digest[:12]})")
            staged = incoming / "release"
            manifest = unpack(archive, staged)
            verify_files(staged, manifest)
            log(f"unpacked release {manifest['version']} ({len(manifest['files'])} files verified)")
            for project, runtime in manifest.get("runtimes", {}).items():
                unpack_runtime(staged, project, runtime)
                log(f"unpacked runtime of {project} (Python {runtime['python_version']}, {runtime['backend']})")
            images.check_available(staged, manifest, error=DeployError)
            name = releases.name_for(manifest["version"], manifest)
            target = releases.dir / name
            if not target.exists():
                os.rename(staged, target)
            releases.switch(name)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        history = releases.history()
        if not history or history[-1] != name:
            releases.write_history(history + [name])
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
                releases.switch(history[-1])
                releases.write_history(history)
                log(f"rolled back: {releases.current} -> releases/{history[-1]}")
                return history[-1]
        raise DeployError("no earlier release to roll back to")


def status(airflow_home: Path) -> None:
    releases = Releases(airflow_home)
    live = releases.live()
    print(f"AIRFLOW_HOME: {releases.home}")
    print(f"live release: {live or '(none)'}")
    for name in reversed(releases.history()):
        print(f"  {'*' if name == live else ' '} {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("deploy", "rollback", "status"):
        command = commands.add_parser(name)
        command.add_argument("--airflow-home", type=Path, required=True)
        if name == "deploy":
            command.add_argument("archive", help="path or URL of platform-airflow-dags-<version>.tar.gz")
            command.add_argument("--keep", type=int, default=5, help="releases to keep (default 5)")
    args = parser.parse_args(argv)
    try:
        if args.command == "deploy":
            deploy(args.archive, args.airflow_home, args.keep)
        elif args.command == "rollback":
            rollback(args.airflow_home)
        else:
            status(args.airflow_home)
    except DeployError as error:
        print(f"deploy: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
