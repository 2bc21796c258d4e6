"""A project's contract, ``<project>/project.toml``: how it runs and what its stages read and write.

    kind = "spark" | "container" | "python"
                                      spark-submit of the packed runtime, the project's image, or
                                      the packed runtime's own python (no Spark, no Docker)
    [[stages]]
    name = "..."                      the task id
    entry_point = "main.py"           spark, python: the program, relative to the project folder
    command = ["run"]                 container: the image's command, before the run's arguments
                                      (none when the image's entry point takes the arguments)
    config = ["conf/spark.toml"]      files the stage reads its settings from (relative)
    inputs = [{ name, uri, type }]    what it reads; outputs = [{ name, uri, type }]: what it writes
    args = ["--in", "{input}", ["--log", "{event_log}"], "--day", "<date>"]
                                      the entry point's or command's arguments; a nested list is
                                      left out when a location it names is empty
    local_values = { date = "..." }   what a local run (`make run`) fills the run values of args with
    mounts = { data = "/data" }       container: data locations bind-mounted at these paths

A URI or an argument may name a data location of the project's ``conf/airflow.toml`` in braces
(``{output}``), filled in here, and run values in angle brackets (``<snapshot>``), which the run
fills in: the DAG from its params and XComs, `make run` from ``local_values``. An argument or URI
may also name ``{project_dir}``, the project's folder in this release (not in a container). Each
output becomes an Airflow Asset named ``<project>/<output>``: its URI is the pattern's fixed part
(its folder before the first ``<...>``), so the UI shows lineage and a DAG can be scheduled on it.

Standard library only (airflow.sdk when the Assets are made): this runs whenever a DAG file is
parsed, and `make run` reads it too. Its classes are plain ones with ``__slots__``: the
``dataclass`` decorator generates and compiles their methods each time the module is imported,
which was ~3 ms of every parse.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path, PurePosixPath

KINDS = ("spark", "container", "python")
STAGE_KEYS = {"name", "entry_point", "command", "config", "inputs", "outputs", "args", "local_values", "mounts"}
DATA_KEYS = {"name", "uri", "type"}
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
LOCATION = re.compile(r"\{([a-z_]+)\}")
RUN_VALUE = re.compile(r"<[a-z_]+>")
RUN_VALUE_NAME = re.compile(r"<([a-z_]+)>")
# The placeholder of the project's own folder in args (a data location cannot take this name).
PROJECT_DIR = "project_dir"


class ContractError(ValueError):
    """project.toml is missing or says something dagkit cannot run; the message names the place."""


class Data:
    """One input or output of a stage."""

    __slots__ = ("name", "uri", "type")

    def __init__(self, name: str, uri: str, type: str) -> None:
        self.name = name
        self.uri = uri  # with the data locations filled in; run values still as <name>
        self.type = type

    @property
    def fixed_uri(self) -> str:
        """The URI's folder up to the first run value, as a URI (a path becomes file://)."""
        fixed = RUN_VALUE.split(self.uri, 1)[0].rsplit("/", 1)[0] if RUN_VALUE.search(self.uri) else self.uri
        return fixed if "://" in fixed else Path(fixed).as_uri()


class Stage:
    __slots__ = ("project", "name", "config", "inputs", "outputs", "entry_point", "command", "args", "local_values",
                 "mounts")

    def __init__(self, project: str, name: str, config: tuple[str, ...], inputs: tuple[Data, ...],
                 outputs: tuple[Data, ...], entry_point: str | None = None, command: tuple[str, ...] = (),
                 args: tuple[str, ...] = (), local_values: dict[str, str] | None = None,
                 mounts: dict[str, str] | None = None) -> None:
        self.project = project
        self.name = name
        self.config = config
        self.inputs = inputs
        self.outputs = outputs
        self.entry_point = entry_point
        self.command = command
        self.args = args  # locations filled in; run values still as <name>
        self.local_values = local_values or {}
        self.mounts = mounts or {}  # host folder -> path in the container

    @property
    def run_values(self) -> set[str]:
        """The names of the run values its arguments need."""
        return {name for arg in self.args for name in RUN_VALUE_NAME.findall(arg)}

    def arguments(self, values: dict[str, str]) -> list[str]:
        """The arguments with each run value filled in; ``values`` gives exactly the ones they name."""
        missing, unknown = self.run_values - set(values), set(values) - self.run_values
        if missing or unknown:
            problem = f"no value for {sorted(missing)}" if missing else f"{sorted(unknown)} are not run values of its args"
            raise ContractError(f"{self.project}/project.toml, stage {self.name}: {problem} "
                                f"(its args name: {', '.join(sorted(self.run_values)) or 'none'})")
        return [RUN_VALUE_NAME.sub(lambda m: values[m.group(1)], arg) for arg in self.args]

    def assets(self) -> list:
        """The outputs as Airflow Assets (a task's outlets)."""
        # Imported here: the local launcher reads contracts without Airflow's SDK (~1 s to import).
        from airflow.sdk import Asset

        return [Asset(name=f"{self.project}/{o.name}", uri=o.fixed_uri, group=self.project,
                      extra={"type": o.type, "pattern": o.uri})
                for o in self.outputs]


class Contract:
    __slots__ = ("project", "kind", "stages")

    def __init__(self, project: str, kind: str, stages: tuple[Stage, ...]) -> None:
        self.project = project
        self.kind = kind
        self.stages = stages

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ContractError(f"{self.project}/project.toml has no stage {name!r} "
                            f"(it has: {', '.join(s.name for s in self.stages)})")


def parse(project: str, text: str, locations: dict[str, str], project_dir: Path) -> Contract:
    """The contract in ``text``; ``locations`` fill the ``{name}`` placeholders of its URIs and
    args (an empty one leaves out the nested list of args that names it), ``project_dir`` the
    ``{project_dir}`` of its args."""
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
    if PROJECT_DIR in locations:
        raise ContractError(f"{where}: {PROJECT_DIR} is not a data location's name: conf/airflow.toml must not use it")
    if kind != "container":
        locations = {**locations, PROJECT_DIR: str(project_dir)}
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
    if kind == "container" and not (isinstance(command, list) and all(isinstance(c, str) for c in command)):
        raise ContractError(f"{where}: a container stage's command is a list of strings")
    config = table.get("config", [])
    if not (isinstance(config, list) and all(isinstance(c, str) and relative(c) for c in config)):
        raise ContractError(f"{where}: config must list files in the project folder")
    stage = Stage(project=project, name=name, config=tuple(config), entry_point=entry_point, command=tuple(command),
                  inputs=parse_data(table.get("inputs", []), locations, f"{where} inputs"),
                  outputs=parse_data(table.get("outputs", []), locations, f"{where} outputs"),
                  args=parse_args(table.get("args", []), kind, locations, f"{where} args"),
                  mounts=parse_mounts(table.get("mounts", {}), kind, locations, f"{where} mounts"))
    local_values = table.get("local_values", {})
    if not (isinstance(local_values, dict) and all(isinstance(v, str) for v in local_values.values())):
        raise ContractError(f"{where}: local_values is a table of strings")
    if missing := stage.run_values - set(local_values):
        raise ContractError(f"{where}: local_values gives no value for {sorted(missing)}, which args name")
    if unknown := set(local_values) - stage.run_values:
        raise ContractError(f"{where}: local_values: {sorted(unknown)} are not run values of args")
    stage.local_values = dict(local_values)
    return stage


def parse_args(entries, kind: str, locations: dict[str, str], where: str) -> tuple[str, ...]:
    """The arguments with their locations filled in; a nested list (an option and its value) is
    left out when a location it names is empty in conf/airflow.toml."""
    if not isinstance(entries, list):
        raise ContractError(f"{where}: a list of strings")
    args = []
    for entry in entries:
        group = entry if isinstance(entry, list) else [entry]
        if not (group and all(isinstance(a, str) for a in group)):
            raise ContractError(f"{where}: each argument is a string or a list of strings, not {entry!r}")
        named = [n for a in group for n in LOCATION.findall(a)]
        if kind == "container" and PROJECT_DIR in named:
            raise ContractError(f"{where}: {{{PROJECT_DIR}}} is not in the container")
        if missing := [n for n in named if n not in locations]:
            raise ContractError(f"{where}: {{{missing[0]}}} is not a data location "
                                f"(known: {', '.join(sorted(locations))})")
        if empty := [n for n in named if not locations[n]]:
            if isinstance(entry, list):
                continue
            raise ContractError(f"{where}: {entry!r}: {{{empty[0]}}} is empty; put the option and its value "
                                "in a nested list to leave both out then")
        args += [LOCATION.sub(lambda m: locations[m.group(1)].rstrip("/"), a) for a in group]
    return tuple(args)


def parse_mounts(table, kind: str, locations: dict[str, str], where: str) -> dict[str, str]:
    """{host folder: path in the container} from {location name: path in the container}."""
    if table and kind != "container":
        raise ContractError(f"{where}: only a container stage mounts folders")
    if not isinstance(table, dict):
        raise ContractError(f"{where}: a table {{ location = \"/path/in/container\" }}")
    mounts = {}
    for name, target in table.items():
        source = locations.get(name)
        if not source or "://" in source:
            raise ContractError(f"{where}: {name} is not a data location that is a folder on this host")
        if not (isinstance(target, str) and PurePosixPath(target).is_absolute() and ".." not in PurePosixPath(target).parts):
            raise ContractError(f"{where}: {name}: the path in the container must be absolute, not {target!r}")
        mounts[source] = target
    return mounts


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
        if empty := [n for n in LOCATION.findall(entry["uri"]) if not locations[n]]:
            raise ContractError(f"{where}: {entry['name']}: {{{empty[0]}}} is empty in conf/airflow.toml")
        uri = LOCATION.sub(lambda m: locations[m.group(1)].rstrip("/"), entry["uri"])
        data.append(Data(entry["name"], uri, entry["type"]))
    return tuple(data)


def relative(path: str) -> bool:
    """A path inside the project folder: relative, without `..`."""
    return bool(path) and not Path(path).is_absolute() and ".." not in Path(path).parts
