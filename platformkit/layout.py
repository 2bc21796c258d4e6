"""Every name of a release on disk, spelled once. dags/dagkit ships inside each release and keeps
its own copy of the names it reads (tests/test_layout.py checks the two agree).

    dist/platform-airflow-dags-<version>.tar.gz (+ .sha256)   what `make archive` writes
    $AIRFLOW_HOME/
        current -> releases/<version>    the live release
        releases/
            <version>/                   one unpacked release:
                manifest.json                version, git sha, file checksums, runtimes, images
                dags/                        the DAG files and dagkit
                <project>/venv.tar.gz        its packed runtime (+ venv.manifest.json)
                <project>/venv/              the runtime, unpacked for this host
            state.json                   the releases that went live, oldest first
            .lock                        held by a deploy, a rollback or a fetch
            .in-use/<version>            held (shared) by each task process running <version>
            .incoming-*/                 a deploy or fetch being prepared
"""

from __future__ import annotations

import re
from pathlib import Path

ARCHIVE_PREFIX = "platform-airflow-dags"
CHECKSUM_SUFFIX = ".sha256"
MANIFEST = "manifest.json"
DAGS = "dags"
RUNTIME_ARCHIVE = "venv.tar.gz"
RUNTIME_MANIFEST = "venv.manifest.json"
RUNTIME_DIR = "venv"

CURRENT = "current"
NEW_LINK = ".current.new"
RELEASES = "releases"
STATE = "state.json"
LEGACY_HISTORY = "history"  # the record before state.json, read once and replaced
LOCK = ".lock"
IN_USE = ".in-use"
INCOMING = ".incoming-"

# A version names a folder, a file and an image tag, so it is a name, never a path.
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
# Names releases/ holds besides the releases (the others start with a dot, which no version does).
RESERVED_NAMES = {STATE, LEGACY_HISTORY}


def archive_name(version: str) -> str:
    return f"{ARCHIVE_PREFIX}-{version}.tar.gz"


def checksum_path(archive: Path) -> Path:
    return archive.with_name(archive.name + CHECKSUM_SUFFIX)
