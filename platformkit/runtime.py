"""Build a project's packed runtime: <project>/venv.tar.gz and its manifest venv.manifest.json.

    python3 -m platformkit build-runtime PROJECT_DIR [--force]   build, unless the inputs are unchanged
    python3 -m platformkit build-runtime PROJECT_DIR --check     exit 1 when the runtime is missing or stale

The runtime holds the project and its dependencies only, with their compiled bytecode. Two
backends, one shape:

* conda   (conda, mamba or micromamba on PATH): an environment from environment.yml, packed by
          conda-pack. It carries the interpreter, so the target needs no Python of its own.
* venv    (the fallback): a venv from requirements.lock, packed by venv-pack. It does not carry
          the interpreter: the target needs the same Python at the same path (the manifest
          records it, and `make deploy` checks it).

Standard library only: this runs inside the builder container (conda/Dockerfile, the checkout
mounted as its working folder) as well as on the host. `make archive` and `make image` call
`is_current` before they ship a runtime.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from platformkit.errors import PlatformError
from platformkit.files import sha256_of
from platformkit.layout import RUNTIME_ARCHIVE as ARCHIVE
from platformkit.layout import RUNTIME_DIR
from platformkit.layout import RUNTIME_MANIFEST as MANIFEST
from platformkit.log import prefixed

# What a runtime is made of; a change to any of these files means a rebuild.
INPUT_FILES = ("pyproject.toml", "environment.yml", "requirements.lock")
INPUT_DIRS = ("src",)
CONDA_FRONTENDS = ("micromamba", "mamba", "conda")


log = prefixed("runtime")


class RuntimeBuildError(PlatformError):
    """A runtime that cannot be built here; names what is missing."""


def input_files(project: Path) -> list[Path]:
    files = [project / name for name in INPUT_FILES if (project / name).is_file()]
    for name in INPUT_DIRS:
        files += sorted(
            p for p in (project / name).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p)
        )
    return files


def inputs_hash(project: Path, builder: str) -> str:
    """A digest of everything the runtime is built from, and of where it is built."""
    digest = hashlib.sha256(builder.encode())
    digest.update(Path(__file__).read_bytes())
    for path in input_files(project):
        digest.update(str(path.relative_to(project)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def conda_frontend() -> str | None:
    return next((name for name in CONDA_FRONTENDS if shutil.which(name)), None)


def builder_identity(backend: str) -> str:
    # In the builder container RUNTIME_BUILDER names its image; on the host, the interpreter.
    where = os.environ.get("RUNTIME_BUILDER") or f"host:{os.path.realpath(sys._base_executable)}"
    return f"{backend}@{where}"


def read_manifest(project: Path) -> dict | None:
    path = project / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def is_up_to_date(project: Path, digest: str) -> bool:
    manifest = read_manifest(project)
    archive = project / ARCHIVE
    return (
        manifest is not None
        and manifest.get("inputs_hash") == digest
        and archive.is_file()
        and archive.stat().st_size == manifest.get("archive_bytes")
    )


def run(*command: str | Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], check=True, **kwargs)


def create_conda_env(frontend: str, project: Path, env: Path) -> None:
    run(frontend, "env", "create", "--yes", "--quiet", "-p", env, "-f", project / "environment.yml")


def create_venv(project: Path, env: Path) -> None:
    run(sys.executable, "-m", "venv", env)
    run(env / "bin/python", "-m", "pip", "install", "--quiet", "--no-input", "-r", project / "requirements.lock")


def install_project(project: Path, env: Path, workdir: Path) -> None:
    # Build from a copy: a build inside the source tree would leave build/ and *.egg-info behind.
    source = workdir / "source"
    shutil.copytree(project, source, ignore=shutil.ignore_patterns(
        ".venv", RUNTIME_DIR, ARCHIVE, MANIFEST, "tests", "bench", "__pycache__", "*.egg-info", "build"))
    run(env / "bin/python", "-m", "pip", "install", "--quiet", "--no-input", "--no-deps", source)


def remove_build_tools(project: Path, env: Path) -> None:
    """pip, setuptools and wheel come with every venv but nothing runs them in a runtime; they
    stay only when the lock asks for them."""
    locked = {line.split("==")[0].strip().lower() for line in (project / "requirements.lock").read_text().splitlines()}
    present = {p["name"].lower() for p in installed_packages(env)}
    unneeded = [name for name in ("setuptools", "wheel", "pip") if name in present and name not in locked]
    run(env / "bin/python", "-m", "pip", "uninstall", "--quiet", "--yes", *unneeded)


def installed_packages(env: Path) -> list[dict]:
    # importlib.metadata rather than `pip list`: the runtime may hold no pip. Isolated (-I), so
    # the working folder (a checkout with its own *.egg-info) is not searched as well.
    probe = "import importlib.metadata as m, json; " \
            "print(json.dumps([[d.metadata['Name'], d.version] for d in m.distributions()]))"
    listing = json.loads(run(env / "bin/python", "-I", "-c", probe, capture_output=True, text=True).stdout)
    return sorted(({"name": name, "version": version} for name, version in listing), key=lambda p: p["name"].lower())


def interpreter(env: Path) -> dict:
    probe = "import json, os, sys; print(json.dumps({'version': sys.version.split()[0], " \
            "'base': os.path.realpath(sys._base_executable)}))"
    return json.loads(run(env / "bin/python", "-c", probe, capture_output=True, text=True).stdout)


def compile_bytecode(env: Path) -> None:
    """Compile every module now, so the runtime ships its bytecode: where it is unpacked (an
    image, a read-only release) no process could write the cache, and each would compile what
    it imports at every start. Modules that do not compile (test data, other Pythons' code)
    cannot be imported either, so compileall's failure for them is no reason to stop."""
    subprocess.run([str(env / "bin/python"), "-m", "compileall", "-q", "-j", "0", str(env / "lib")],
                   stdout=subprocess.DEVNULL, check=False)


def pack(backend: str, env: Path, output: Path) -> None:
    if backend == "conda":
        packer = shutil.which("conda-pack")
        if packer is None:
            raise RuntimeBuildError("conda found but conda-pack is not installed (conda install -n base conda-pack)")
        run(packer, "--quiet", "-p", env, "-o", output)
    else:
        packer = shutil.which("venv-pack") or Path(sys.executable).with_name("venv-pack")
        run(packer, "--quiet", "-p", env, "-o", output)


def build(project: Path, backend: str, frontend: str | None, digest: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="runtime-") as tmp:
        workdir = Path(tmp)
        env = workdir / "env"
        if backend == "conda":
            create_conda_env(frontend, project, env)
        else:
            create_venv(project, env)
        install_project(project, env, workdir)
        if backend == "venv":
            remove_build_tools(project, env)
        compile_bytecode(env)
        packed = workdir / ARCHIVE
        pack(backend, env, packed)
        python = interpreter(env)
        metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
        manifest = {
            "project": project.name,
            "package": metadata["name"],
            "project_version": metadata["version"],
            "python_version": python["version"],
            # venv-pack does not carry the interpreter: the target must have this one.
            "python_path": python["base"] if backend == "venv" else None,
            "backend": backend,
            "builder": builder_identity(backend),
            "inputs_hash": digest,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "archive_sha256": sha256_of(packed),
            "archive_bytes": packed.stat().st_size,
            "packages": installed_packages(env),
        }
        # The archive first, the manifest last: a manifest always describes a complete archive.
        packed.chmod(0o644)  # tempfile made it private; it is no secret
        shutil.move(packed, project / f".{ARCHIVE}.partial")
        os.replace(project / f".{ARCHIVE}.partial", project / ARCHIVE)
        (project / f".{MANIFEST}.partial").write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(project / f".{MANIFEST}.partial", project / MANIFEST)
        return manifest


def project_folder(project: Path) -> Path:
    project = project.resolve()
    if not (project / "pyproject.toml").is_file():
        raise RuntimeBuildError(f"{project} is not a project folder (no pyproject.toml)")
    return project


def is_current(project: Path) -> bool:
    """Whether the project's runtime is built and its inputs unchanged since (says which not)."""
    project = project_folder(project)
    manifest = read_manifest(project)
    if manifest is None or not (project / ARCHIVE).is_file():
        log(f"{project.name}: no runtime built (make venv PROJECT={project.name})")
        return False
    if not is_up_to_date(project, inputs_hash(project, manifest["builder"])):
        log(f"{project.name}: runtime is stale, its inputs changed (make venv PROJECT={project.name})")
        return False
    log(f"{project.name}: up to date")
    return True


def build_runtime(project: Path, force: bool = False) -> None:
    """Build the project's runtime with conda when there is one, else venv; nothing to do when
    its inputs are unchanged (unless forced)."""
    project = project_folder(project)
    frontend = conda_frontend()
    backend = "conda" if frontend else "venv"
    digest = inputs_hash(project, builder_identity(backend))
    if is_up_to_date(project, digest) and not force:
        log(f"{project.name}: up to date ({digest[:12]})")
        return
    if backend == "venv":
        log(f"{project.name}: no conda, mamba or micromamba found; building with venv + venv-pack "
            f"(the target needs Python {sys.version.split()[0]} at {os.path.realpath(sys._base_executable)})")
    else:
        log(f"{project.name}: building with {frontend} + conda-pack")
    manifest = build(project, backend, frontend, digest)
    log(f"{project.name}: wrote {project.name}/{ARCHIVE} ({manifest['archive_bytes'] / 1e6:.2f} MB, "
        f"{len(manifest['packages'])} packages, Python {manifest['python_version']})")
