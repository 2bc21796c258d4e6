"""The output's provenance sidecar (`_provenance.json` in the output folder): what produced it.

The platform's part (release, runtime, stage, config hashes) comes from the DAG in the
PLATFORM_PROVENANCE environment variable (dags/dagkit/provenance.py describes the record); the
stage adds its params, the input it read (URI, bytes, latest modification), its times and host.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

ENVIRONMENT_VARIABLE = "PLATFORM_PROVENANCE"
SIDECAR = "_provenance.json"


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


def stat(path: Path) -> dict:
    """An input file as the record names it: URI, bytes and modification time (in milliseconds,
    as `make run` compares it to decide whether the stage is up to date)."""
    info = path.stat()
    modified = datetime.fromtimestamp(info.st_mtime_ns // 1_000_000 / 1000, UTC)
    return {"uri": path.resolve().as_uri(), "bytes": info.st_size, "modified": modified.isoformat(timespec="milliseconds")}


def record(facts: dict, params: dict, inputs: list[dict], outputs: list[str], started: datetime,
           ended: datetime) -> dict:
    """One sidecar's record."""
    return {**facts, "params": params, "inputs": inputs, "outputs": [{"uri": uri} for uri in outputs],
            "started_at": started.isoformat(timespec="seconds"), "ended_at": ended.isoformat(timespec="seconds"),
            "host": socket.gethostname()}


def now() -> datetime:
    return datetime.now(UTC)
