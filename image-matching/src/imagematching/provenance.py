"""The outputs' provenance sidecars (`_provenance.json` in each output folder): what produced them.

The platform's part (release, runtime, image, stage, config hashes) comes from the DAG in the
PLATFORM_PROVENANCE environment variable (dags/dagkit/provenance.py describes the record); this
run adds its params, the inputs it read (URI, bytes, latest modification), its times and host.
The job writes the sidecars into its staging folder, so the commit publishes them with the data.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime

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


def record(facts: dict, params: dict, inputs: list[dict], outputs: list[str], started: datetime,
           ended: datetime, host: str) -> dict:
    """One sidecar's record."""
    return {**facts, "params": params, "inputs": inputs, "outputs": [{"uri": uri} for uri in outputs],
            "started_at": started.isoformat(timespec="seconds"), "ended_at": ended.isoformat(timespec="seconds"),
            "host": host}


def now() -> datetime:
    return datetime.now(UTC)


def host() -> str:
    # the host's own name: getfqdn() asks DNS for a reverse lookup, which stalls where none answers
    return socket.gethostname()
