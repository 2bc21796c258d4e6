"""Provenance: what produced a stage's output, in a sidecar beside it.

Each output of a stage gets ``_provenance.json`` in its folder (a folder output) or
``<file>.provenance.json`` beside it (a file output), written by the stage when it writes the
output. One record::

    {"release": {"version", "git_sha"}, "runtime_sha256", "image",
     "stage": {"project", "name", "config_sha256": {file: sha256}},
     "params": {...}, "inputs": [{"uri", "bytes", "modified"} or {"uri", ...what was read}],
     "outputs": [{"uri", ...}], "started_at", "ended_at", "host"}

The platform's part (release, runtime, image, stage and config) is known when the DAG is parsed:
`platform_facts` gives it, and the DAG passes it to the stage as the ``PLATFORM_PROVENANCE``
environment variable (JSON, nothing secret). The stage adds what only it knows (its params,
the inputs it read, its times, its host) and writes the sidecar at its own edge.

Standard library only: the DAG processor imports this with the DAG files.
"""

from __future__ import annotations

import hashlib
import json

import dagkit
from dagkit.contract import Stage

ENVIRONMENT_VARIABLE = "PLATFORM_PROVENANCE"


def platform_facts(stage: Stage) -> dict:
    """The platform's part of a stage's provenance record, from the release's manifest (or the
    checkout's runtime manifest) and the stage's config files."""
    manifest = dagkit.release_manifest()
    project = stage.project
    runtime = manifest.get("runtimes", {}).get(project) or checkout_runtime(project)
    image = manifest.get("images", {}).get(project, {})
    folder = dagkit.project_dir(project)
    return {
        "release": {"version": dagkit.release_version(), "git_sha": manifest.get("git_sha")},
        "runtime_sha256": runtime.get("archive_sha256"),
        "image": {"reference": image.get("reference"), "image_id": image.get("image_id")} if image else None,
        "stage": {"project": project, "name": stage.name,
                  "config_sha256": {name: file_sha256(folder / name) for name in stage.config}},
    }


def environment(stage: Stage) -> dict[str, str]:
    """The environment variable that hands `platform_facts` to the stage."""
    return {ENVIRONMENT_VARIABLE: json.dumps(platform_facts(stage), sort_keys=True)}


def checkout_runtime(project: str) -> dict:
    """A source checkout has no release manifest: the runtime's own manifest, once built."""
    path = dagkit.project_dir(project) / dagkit.RUNTIME_MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def file_sha256(path) -> str:
    # Config files are small: read whole.
    return hashlib.sha256(path.read_bytes()).hexdigest()
