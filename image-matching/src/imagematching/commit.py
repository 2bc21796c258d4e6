"""One commit per run: a run's outputs become visible together, and a killed run changes nothing
that readers trust.

    <output>/_staging/snapshot=<S>/run-<id>/           everything the run writes, under its own names
    <output>/_staging/snapshot=<S>/run-<id>/_STAGED    the list of moves and the marker, written when
                                                       the staging folder is complete
    <output>/_committed/snapshot=<S>.json              the completion marker: dataset id, wikis

Publishing removes the snapshot's marker, moves every staged file or folder to its published name
(replacing the previous run's), then writes the new marker, last. Readers trust only the marker
(`committed`): while there is none they see no committed snapshot, never a mix. A run killed
before `_STAGED` leaves the previous outputs and marker as they were; the next run of the snapshot
deletes its folder. A run killed after `_STAGED` is complete: the next run finishes its publishing
(the moves are idempotent) before it starts, so nothing half-published stays.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from imagematching import io
from imagematching.storage import Storage, join

STAGED = "_STAGED"
Phase = Callable[[str], None]


def marker_uri(output: str, snapshot: str) -> str:
    return join(output, "_committed", f"snapshot={snapshot}.json")


def staging_root(output: str, snapshot: str) -> str:
    return join(output, "_staging", f"snapshot={snapshot}")


def begin(storage: Storage, output: str, snapshot: str, on_phase: Phase) -> str:
    """Finish or remove what earlier runs of this snapshot left behind; a new staging folder."""
    root = staging_root(output, snapshot)
    for name in storage.list(root):
        leftover = join(root, name)
        if storage.exists(join(leftover, STAGED)):
            publish(storage, leftover, on_phase)
        storage.delete(leftover)
    on_phase("recovered")
    return join(root, f"run-{uuid.uuid4().hex}")


def stage(storage: Storage, staging: str, moves: list[tuple[str, str]], marker: dict, on_phase: Phase) -> None:
    """Declare the staging folder complete: from here on the run will be published, even if killed."""
    storage.write_text(join(staging, STAGED), json.dumps({"moves": moves, "marker": marker}, indent=2) + "\n")
    on_phase("staged")


def publish(storage: Storage, staging: str, on_phase: Phase) -> None:
    """Move a complete staging folder into place and write its marker last. Safe to repeat."""
    plan = json.loads(storage.read_text(join(staging, STAGED)))
    marker = plan["marker"]
    target = marker_uri(marker["output"], marker["snapshot"])
    storage.delete(target)
    on_phase("unpublished")
    for source, destination in plan["moves"]:
        if storage.exists(source):
            storage.replace(source, destination)
        on_phase(f"published {destination}")
    pending = join(staging, "marker.json")
    storage.write_text(pending, json.dumps(marker, indent=2) + "\n")
    storage.rename(pending, target)
    on_phase("committed")
    storage.delete(staging)
    on_phase("cleaned")


def committed(storage: Storage, output: str, snapshot: str) -> dict:
    """The committed run of a snapshot (its marker); an InputError when there is none."""
    uri = marker_uri(output, snapshot)
    if not storage.exists(uri):
        raise io.InputError(f"snapshot {snapshot} has no committed run in {output} (no marker {uri})")
    return json.loads(storage.read_text(uri))


def committed_summary(storage: Storage, output: str, snapshot: str) -> dict:
    """The run summary of the committed run: what the DAG logs and its exports point at."""
    marker = committed(storage, output, snapshot)
    summary = json.loads(storage.read_text(io.summary_uri(output, snapshot)))
    if summary["dataset_id"] != marker["dataset_id"]:
        raise io.InputError(f"the summary of snapshot {snapshot} is of dataset {summary['dataset_id']}, "
                            f"the committed run is {marker['dataset_id']}")
    return summary
