"""The export's provenance sidecar, ``articles-<date>.jsonl.provenance.json`` beside it.

The platform's part (release, image, stage, config hashes) comes from the DAG in the
PLATFORM_PROVENANCE environment variable (dags/dagkit/provenance.py describes the record); the
export adds its params, what it read (the OAI-PMH window and records, the OpenAlex calls), the
export file's size and sha256, its times and host. URLs are recorded without their user info.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ENVIRONMENT_VARIABLE = "PLATFORM_PROVENANCE"
SUFFIX = ".provenance.json"


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def platform_facts(environ=os.environ) -> dict:
    """The DAG's part of the record; empty when run by hand. A ValueError when it is not a JSON object."""
    text = environ.get(ENVIRONMENT_VARIABLE)
    if not text:
        return {}
    try:
        facts = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{ENVIRONMENT_VARIABLE} is not JSON: {error}") from None
    if not isinstance(facts, dict):
        raise ValueError(f"{ENVIRONMENT_VARIABLE} is not a JSON object")
    return facts


def public_url(url: str) -> str:
    """The URL without user info (a password in it never reaches the sidecar)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def record(facts: dict, params: dict, inputs: list[dict], output: Path, started: datetime, ended: datetime,
           host: str) -> dict:
    """One sidecar's record, for the finished export file `output`."""
    return {**facts, "params": params, "inputs": inputs,
            "outputs": [{"uri": output.resolve().as_uri(), "bytes": output.stat().st_size, "sha256": sha256(output)}],
            "started_at": started.isoformat(timespec="seconds"), "ended_at": ended.isoformat(timespec="seconds"),
            "host": host}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def now() -> datetime:
    return datetime.now(UTC)


def host() -> str:
    # the host's own name: getfqdn() asks DNS for a reverse lookup, which stalls where none answers
    return socket.gethostname()
