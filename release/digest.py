"""The sha256 of a file, for every release script (archive, deploy, images): one definition, so
an archive's checksum, its manifest and deploy's verification can never disagree on how.
Standard library only: deploy runs with the host's python3."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
