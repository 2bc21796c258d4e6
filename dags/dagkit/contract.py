"""A project's contract, ``<project>/project.toml``: how it runs and what its stages read and write.

    kind = "spark" | "container" | "python"
                                      spark-submit of the packed runtime, the project's image, or
                                      the packed runtime's own python (no Spark, no Docker)
    [[stages]]
    name = "..."                      the task id
    entry_point = "main.py"           spark, python: the program, relative to the project folder
    command = ["run"]                 container: the image's command, before the run's arguments
    config = ["conf/spark.toml"]      files the stage reads its settings from (relative)
    inputs = [{ name, uri, type }]    what it reads; outputs = [{ name, uri, type }]: what it writes

A URI may name a data location of the project's ``conf/airflow.toml`` in braces (``{output}``),
filled in here, and run values in angle brackets (``<snapshot>``), which the run fills in. Each
output becomes an Airflow Asset named ``<project>/<output>``: its URI is the pattern's fixed part
(its folder before the first ``<...>``), so the UI shows lineage and a DAG can be scheduled on it.

Standard library and airflow.sdk only: this runs whenever a DAG file is parsed.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from airflow.sdk import Asset

KINDS = ("spark", "container", "python")
STAGE_KEYS = {"name", "entry_point", "command", "config", "inputs", "outputs"}
DATA_KEYS = {"name", "uri", "type"}
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
LOCATION = re.compile(r"\{([a-z_]+)\}")
RUN_VALUE = re.compile(r"<[a-z_]+>")


class ContractError(ValueError):
    """project.toml is missing or says something dagkit cannot run; the message names the place."""


@dataclass(frozen=True)
class Data:
    """One input or output of a stage."""

    name: str
    uri: str  # with the data locations filled in; run values still as <name>
    type: str

    @property
    def fixed_uri(self) -> str:
        """The URI's folder up to the first run value, as a URI (a path becomes file://)."""
        fixed = RUN_VALUE.split(self.uri, 1)[0].rsplit("/", 1)[0] if RUN_VALUE.search(self.uri) else self.uri
        return fixed if "://" in fixed else Path(fixed).as_uri()


@dataclass(frozen=True)
class Stage:
    project: str
    name: str
    config: tuple[str, ...]
    inputs: tuple[Data, ...]
    outputs: tuple[Data, ...]
    entry_point: str | None = None
    command: tuple[str, ...] = ()

    def assets(self) -> list[Asset]:
        """The outputs as Airflow Assets (a task's outlets)."""
        return [Asset(name=f"{self.project}/{o.name}", uri=o.fixed_uri, group=self.project,
                      extra={"type": o.type, "pattern": o.uri})
                for o in self.outputs]


@dataclass(frozen=True)
class Contract:
    project: str
    kind: str
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ContractError(f"{self.project}/project.toml has no stage {name!r} "
                            f"(it has: {', '.join(s.name for s in self.stages)})")


def parse(project: str, text: str, locations: dict[str, str]) -> Contract:
    """The contract in ``text``; ``locations`` fill the ``{name}`` placeholders of its URIs."""
    where = f"{project}/project.toml"
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ContractError(f"{where}: {error}") from None
    if (unknown := set(document) - {"kind", "stages"}):
        raise ContractError(f"{where}: unknown keys {sorted(unknown)}")
    kind = document.get("kind")
    if kind not in KINDS:
        raise ContractError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    tables = document.get("stages")
    if not isinstance(tables, list) or not tables:
        raise ContractError(f"{where}: no [[stages]]")
    stages = tuple(parse_stage(project, kind, table, locations, f"{where}, stage {i + 1}")
                   for i, table in enumerate(tables))
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ContractError(f"{where}: stage names repeat: {names}")
    return Contract(project, kind, stages)


def parse_stage(project: str, kind: str, table: dict, locations: dict[str, str], where: str) -> Stage:
    if not isinstance(table, dict):
        raise ContractError(f"{where}: a stage is a table")
    if (unknown := set(table) - STAGE_KEYS):
        raise ContractError(f"{where}: unknown keys {sorted(unknown)}")
    name = table.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ContractError(f"{where}: name must be a lower-case identifier, not {name!r}")
    where = f"{where} ({name})"
    entry_point, command = table.get("entry_point"), table.get("command", [])
    if kind in ("spark", "python") and not (isinstance(entry_point, str) and relative(entry_point)):
        raise ContractError(f"{where}: a {kind} stage needs entry_point, a file in the project folder")
    if kind == "container" and not (isinstance(command, list) and command and all(isinstance(c, str) for c in command)):
        raise ContractError(f"{where}: a container stage needs command, a list of strings")
    config = table.get("config", [])
    if not (isinstance(config, list) and all(isinstance(c, str) and relative(c) for c in config)):
        raise ContractError(f"{where}: config must list files in the project folder")
    return Stage(project=project, name=name, config=tuple(config), entry_point=entry_point, command=tuple(command),
                 inputs=parse_data(table.get("inputs", []), locations, f"{where} inputs"),
                 outputs=parse_data(table.get("outputs", []), locations, f"{where} outputs"))


def parse_data(entries, locations: dict[str, str], where: str) -> tuple[Data, ...]:
    if not isinstance(entries, list):
        raise ContractError(f"{where}: a list of {{ name, uri, type }}")
    data = []
    for entry in entries:
        if not (isinstance(entry, dict) and set(entry) == DATA_KEYS and all(isinstance(v, str) and v for v in entry.values())):
            raise ContractError(f"{where}: each entry is {{ name, uri, type }} (strings), not {entry!r}")
        if missing := [n for n in LOCATION.findall(entry["uri"]) if n not in locations]:
            raise ContractError(f"{where}: {entry['name']}: {{{missing[0]}}} is not a data location "
                                f"(known: {', '.join(sorted(locations))})")
        uri = LOCATION.sub(lambda m: locations[m.group(1)].rstrip("/"), entry["uri"])
        data.append(Data(entry["name"], uri, entry["type"]))
    return tuple(data)


def relative(path: str) -> bool:
    """A path inside the project folder: relative, without `..`."""
    return bool(path) and not Path(path).is_absolute() and ".." not in Path(path).parts
