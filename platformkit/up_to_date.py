"""Whether a stage's outputs are up to date, from their provenance sidecars (as Luigi's
``complete()`` asks its targets): each output has a sidecar of a run with the same arguments,
whose config, runtime and inputs are still what they are now, and whose outputs still exist.

Inputs are compared the way the stage recorded them (bytes and the latest modification, as
Hadoop's local FileSystem lists a folder: checksum files hidden); an input that is not a local
path or file:// URI cannot be checked here, so its stage runs again. A container stage's input
under none of its mounts is a file of its image (a sample, a lookup table): unchanged while the
image is the same. Standard library only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

SIDECAR = "_provenance.json"
SIDECAR_SUFFIX = ".provenance.json"


def uri_path(uri: str) -> Path | None:
    """The path of a path or file:// URI; None for any other URI."""
    if "://" not in uri:
        return Path(uri)
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    return Path(unquote(parsed.path))


def local_path(uri: str, mounts: dict[str, str] | None = None) -> Path | None:
    """The path on this host of a path or file:// URI; one under a container's mount (``mounts``:
    {host folder: path in the container}), as a container stage records it, is on the host folder."""
    path = uri_path(uri)
    if path is None:
        return None
    for source, target in (mounts or {}).items():
        if path.is_relative_to(target):
            return Path(source) / path.relative_to(target)
    return path


def in_image(uri: str, mounts: dict[str, str] | None) -> bool:
    """Whether a container stage's recorded input is a file of its image: a path under none of its mounts."""
    path = uri_path(uri)
    return path is not None and not any(path.is_relative_to(target) for target in (mounts or {}).values())


def stat(path: Path) -> dict | None:
    """{bytes, modified} of a file or of a folder's files (as imagematching's Storage.stat)."""
    if not path.exists():
        return None
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()
                                            and not (p.name.startswith(".") and p.name.endswith(".crc"))]
    latest = max((p.stat().st_mtime_ns // 1_000_000 for p in files), default=0)
    return {"bytes": sum(p.stat().st_size for p in files),
            "modified": datetime.fromtimestamp(latest / 1000, UTC).isoformat(timespec="milliseconds")}


def sidecars(fixed_uri: str) -> list[Path]:
    folder = local_path(fixed_uri)
    if folder is None or not folder.is_dir():
        return []
    return sorted([*folder.rglob(SIDECAR), *folder.rglob(f"*{SIDECAR_SUFFIX}")])


def stale_because(outputs: list[tuple[str, str]], facts: dict, mounts: dict[str, str] | None = None) -> str | None:
    """Why the stage must run; None when every output is up to date.

    :param outputs: (name, fixed URI) of each of the stage's outputs
    :param facts: the provenance this run would record: the platform's facts and ``launch``
    :param mounts: a container stage's {host folder: path in the container}: the paths it recorded
    """
    for name, fixed_uri in outputs:
        records = []
        for path in sidecars(fixed_uri):
            try:
                records.append((path, json.loads(path.read_text())))
            except (OSError, ValueError):
                return f"{path} is not readable JSON"
        mine = [(path, r) for path, r in records if isinstance(r, dict) and r.get("launch") == facts["launch"]
                and r.get("stage", {}).get("name") == facts["stage"]["name"]]
        if not mine:
            return f"output {name} has no provenance of a run with these arguments"
        for path, record in mine:
            if record.get("stage", {}).get("config_sha256") != facts["stage"]["config_sha256"]:
                return f"config changed since {path}"
            if record.get("runtime_sha256") != facts["runtime_sha256"]:
                return f"runtime changed since {path}"
            for recorded in record.get("outputs", []):
                where = local_path(recorded.get("uri", ""), mounts)
                if where is None or not where.exists():
                    return f"output {recorded.get('uri')} of {path} is missing"
            inputs = record.get("inputs", [])
            if not inputs:
                return f"{path} records no inputs to compare"
            for recorded in inputs:
                if facts.get("image") and in_image(recorded.get("uri", ""), mounts):
                    if (record.get("image") or {}).get("image_id") != facts["image"]["image_id"]:
                        return f"input {recorded['uri']} is in the image, which changed since {path}"
                    continue
                where = local_path(recorded.get("uri", ""), mounts)
                if where is None or "bytes" not in recorded:
                    return f"input {recorded.get('uri')} cannot be checked here"
                current = stat(where)
                if current != {"bytes": recorded["bytes"], "modified": recorded.get("modified")}:
                    return f"input {recorded['uri']} changed ({recorded['bytes']} B, {recorded.get('modified')} -> " \
                           + (f"{current['bytes']} B, {current['modified']})" if current else "missing)")
    return None
