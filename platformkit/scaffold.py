"""Create a project from a template: ``python3 -m platformkit new-project NAME --kind KIND``.

Writes the project folder NAME/ (a package in src/, its tests, conf/, sample input, project.toml,
pyproject.toml, environment.yml, a README; a container project's Dockerfile) and its DAG
dags/<package>.py, from platformkit/templates/: what the kinds share (_common/), then the kind's
own (<kind>/), whose file replaces a shared one of the same name (spark's counting.py, its test
and pyproject.toml). Files ending in .tmpl are rendered with string.Template (``$project`` =
NAME, ``$package`` = NAME with '_' for '-'), the others copied; a ``__package__`` in a path
becomes the package's name. Both appear complete or not at all. The locks come next (`make
new-project` runs `make lock PROJECT=NAME`: they need the package index).

Standard library only.
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path
from string import Template

from platformkit.errors import PlatformError
from platformkit.layout import DAGS
from platformkit.log import prefixed

TEMPLATES = Path(__file__).parent / "templates"
# What the kinds' projects share (the example's sample, settings, pure logic, provenance, command line,
# counting in-process); a kind's own file of the same name replaces one.
COMMON = "_common"
# Lower-case words of letters and digits joined by '-': a folder name, an Asset group, and (with
# '_' for '-') a package name and a DAG id.
NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
MAX_LENGTH = 40
# Top-level folders and packages the platform itself uses.
RESERVED = {"dags", "dagkit", "platformkit", "tests", "ops", "conda", "requirements", "dist", "build",
            "reports", "airflow", "runtimes"}

log = prefixed("new-project")


def kinds() -> list[str]:
    return sorted(p.name for p in TEMPLATES.iterdir() if p.is_dir() and p.name != COMMON)


def check(root: Path, name: str, kind: str) -> str:
    """The package name of a new project NAME of this kind; a PlatformError naming what is wrong."""
    if kind not in kinds():
        raise PlatformError(f"no template for kind {kind!r} (there are: {', '.join(kinds())})")
    if not NAME.fullmatch(name) or len(name) > MAX_LENGTH:
        raise PlatformError(f"project name {name!r} is not lower-case letters and digits in words joined by '-', "
                            f"starting with a letter, at most {MAX_LENGTH} characters (e.g. word-count)")
    package = name.replace("-", "_")
    if name in RESERVED or package in RESERVED:
        raise PlatformError(f"project name {name!r} is reserved by the platform")
    if keyword.iskeyword(package) or package in sys.stdlib_module_names:
        raise PlatformError(f"project name {name!r} would make a package {package!r} that shadows Python's own")
    for taken in (root / name, root / DAGS / f"{package}.py"):
        if os.path.lexists(taken):
            raise PlatformError(f"{taken.relative_to(root)} already exists")
    for pyproject in root.glob("*/pyproject.toml"):
        if tomllib.loads(pyproject.read_text())["project"]["name"] == package:
            raise PlatformError(f"package {package!r} is already the package of {pyproject.parent.name}/")
    return package


def render(template: Path, target: Path, values: dict[str, str]) -> None:
    if template.name.endswith(".tmpl"):
        target.with_name(target.name.removesuffix(".tmpl")).write_text(Template(template.read_text()).substitute(values))
    else:
        shutil.copyfile(template, target)


def create(root: Path, name: str, kind: str) -> Path:
    """Write NAME/ and dags/<package>.py; returns the project folder."""
    root = root.resolve()
    package = check(root, name, kind)
    values = {"project": name, "package": package}
    staging = Path(tempfile.mkdtemp(prefix=f".new-project-{name}-", dir=root))
    try:
        for source in (TEMPLATES / COMMON / "project", TEMPLATES / kind / "project"):
            for template in sorted(source.rglob("*")):
                if template.is_dir() or "__pycache__" in template.parts:
                    continue
                target = staging / "project" / str(template.relative_to(source)).replace("__package__", package)
                target.parent.mkdir(parents=True, exist_ok=True)
                render(template, target, values)
        render(TEMPLATES / kind / "dag.py.tmpl", staging / "dag.py.tmpl", values)
        os.rename(staging / "project", root / name)
        try:
            os.rename(staging / "dag.py", root / DAGS / f"{package}.py")
        except OSError:
            shutil.rmtree(root / name)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"created {name}/ ({kind}: package {package} in {name}/src, tests, conf, sample input, project.toml) "
        f"and {DAGS}/{package}.py (DAG {package})")
    return root / name
