"""Project images: built from the packed runtime, pinned in the release manifest, checked on deploy.

    python -m platformkit image PROJECT_DIR --repository R --version V --base-image B [--push]

A project that runs as a container (it has a Dockerfile) gets an image made of a base image and
its packed runtime, the same venv.tar.gz that is archived: `build` checks the runtime is up to
date and fits the base image, builds <R>/<project>:<V>, and with --push pushes it.

`make archive` records each image in manifest.json (`manifest_entries`):

    "images": {"<project>": {"reference": ..., "image_id": "sha256:...", "runtime_sha256": ...}}

The reference is <R>/<project>@sha256:<registry digest> once pushed. An image that was never
pushed has no registry digest, and the Docker provider looks images up by name, so it is pinned
by a tag that is its image ID, <R>/<project>:sha256-<id>, which `build` adds; deploy checks the
tag still names that image.

`make deploy` and `make rollback` call `check_available` before they switch, and the releases
bundle before a fetched release is used: every image must be on the Docker engine the DAGs use,
or be pulled from its registry by digest; otherwise nothing switches and the error names the image.

Standard library only (deploy runs with the host's python3); the engine is reached through the
`docker` CLI, which brings the credentials of `docker login` along.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

from platformkit import runtime
from platformkit.errors import PlatformError
from platformkit.files import sha256_of
from platformkit.layout import MANIFEST, RUNTIME_ARCHIVE, RUNTIME_MANIFEST
from platformkit.log import prefixed

# The label that says which runtime an image was built from (its sha256).
RUNTIME_LABEL = "platform.runtime.sha256"
# The label that says which settings it holds: {file: sha256} of the files its stages' config
# names (project.toml), which the Dockerfile copies in. Provenance hashes the release's copies, so
# an image whose copies differ is refused as one built from another runtime is.
CONFIG_LABEL = "platform.config.sha256"
LOCAL_TAG_PREFIX = "sha256-"
# <host[:port]/path/name> with a tag or a digest, as Docker spells them; never an option.
IMAGE_REFERENCE = re.compile(r"[a-z0-9][a-z0-9._-]*(:[0-9]+)?(/[a-z0-9][a-z0-9._-]*)*"
                             r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})")
IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")

log = prefixed("image")


class ImageError(PlatformError):
    """An image that cannot be built, recorded or found; names the image and what to run."""


def docker(*args: str, host: str | None = None, capture: bool = True) -> subprocess.CompletedProcess:
    """The docker CLI, against `host` (a DOCKER_HOST value) when given."""
    env = {**os.environ, "DOCKER_HOST": host} if host else None
    try:
        return subprocess.run(["docker", *args], env=env, text=True,
                              stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise ImageError("no docker CLI on PATH (make docker-engine installs one)") from None


def inspect(reference: str, host: str | None = None) -> dict | None:
    """The engine's description of an image, or None when it does not have it."""
    result = docker("image", "inspect", reference, host=host)
    if result.returncode != 0:
        if "no such image" not in result.stderr.lower():
            raise ImageError(f"the Docker engine at {host or 'the default socket'} does not answer: "
                             f"{result.stderr.strip()[-300:]}")
        return None
    return json.loads(result.stdout)[0]


def image_projects(root: Path) -> list[str]:
    """Top-level project folders that run as a container (they hold a Dockerfile)."""
    return sorted(p.parent.name for p in root.glob("*/Dockerfile") if (p.parent / "pyproject.toml").is_file())


# --- build -------------------------------------------------------------------------------------

def require_base_image(base_image: str) -> None:
    if inspect(base_image) is None and docker("pull", "--quiet", base_image).returncode != 0:
        raise ImageError(f"base image {base_image} is not on this Docker engine and cannot be pulled: run "
                         "`make docker-engine` (it builds localhost/platform-base:bookworm and makes it the "
                         "default) or pass BASE_IMAGE=<an image you can pull>")


def require_runtime(project: Path, base_image: str) -> dict:
    """The runtime's manifest, once the runtime is up to date and its interpreter is in the base image."""
    name = project.name
    if not runtime.is_current(project):
        raise ImageError(f"{name} has no up-to-date runtime: run `make venv PROJECT={name}` first")
    manifest = json.loads((project / RUNTIME_MANIFEST).read_text())
    if sha256_of(project / RUNTIME_ARCHIVE) != manifest["archive_sha256"]:
        raise ImageError(f"{name}/{RUNTIME_ARCHIVE} does not match its {RUNTIME_MANIFEST}: "
                         f"run `make venv PROJECT={name} FORCE=true`")
    # A venv-packed runtime links to its interpreter (a conda-packed one carries it).
    python = manifest.get("python_path")
    if python and docker("run", "--rm", "--entrypoint", "test", base_image, "-x", python).returncode != 0:
        raise ImageError(
            f"{name}/{RUNTIME_ARCHIVE} was packed with venv-pack against {python}, which base image {base_image} does "
            f"not have: build the runtime in the builder on the same base (`make venv PROJECT={name}` with "
            f"BUILDER_BASE_IMAGE={base_image}, without SKIP_DOCKER=true), or with conda")
    return manifest


def config_hashes(project: Path) -> dict[str, str]:
    """{file: sha256} of the config files the project's stages name (project.toml)."""
    contract = project / "project.toml"
    stages = tomllib.loads(contract.read_text()).get("stages", []) if contract.is_file() else []
    hashes = {}
    for name in sorted({name for stage in stages for name in stage.get("config", [])}):
        if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts:
            raise ImageError(f"{project.name}/project.toml names the config file {name!r}, which is not in the project")
        if not (project / name).is_file():
            raise ImageError(f"{project.name}/project.toml names the config file {name}, which does not exist")
        hashes[name] = sha256_of(project / name)
    return hashes


def settings_label(labels: dict) -> dict | None:
    """The image's settings label as `build` writes it ({file: sha256}); None when it has none,
    or one that is not that (the engine's answer is not trusted to be JSON)."""
    try:
        held = json.loads(labels.get(CONFIG_LABEL) or "null")
    except ValueError:
        return None
    return held if isinstance(held, dict) else None


def differs_from(info: dict, project: Path) -> str | None:
    """What the image was built from that the project no longer has (its runtime or a config
    file), or None when it holds the project's current runtime and settings."""
    labels = info["Config"].get("Labels") or {}
    if labels.get(RUNTIME_LABEL) != sha256_of(project / RUNTIME_ARCHIVE):
        return f"another runtime than {project.name}/{RUNTIME_ARCHIVE}"
    held, current = settings_label(labels), config_hashes(project)
    if held != current:  # an image without the label holds no settings the project knows of
        held = held or {}
        changed = sorted(name for name in held.keys() | current.keys() if held.get(name) != current.get(name))
        return f"other settings than {project.name}'s {', '.join(changed) or 'config'}"
    return None


def build(project: Path, repository: str, version: str, base_image: str, push: bool) -> str:
    """Build <repository>/<project>:<version> from the project's runtime; returns its reference."""
    project = project.resolve()
    require_base_image(base_image)
    runtime = require_runtime(project, base_image)
    tag = f"{repository}/{project.name}:{version}"
    log(f"building {tag} from {base_image} and {project.name}/{RUNTIME_ARCHIVE} ({runtime['archive_sha256'][:12]})")
    # The version label makes each release's image its own, with its own ID, even when nothing
    # in it changed (the layers are still shared).
    built = docker("build", "--quiet", "--build-arg", f"BASE_IMAGE={base_image}",
                   "--build-arg", f"RUNTIME_SHA256={runtime['archive_sha256']}",
                   "--label", f"{CONFIG_LABEL}={json.dumps(config_hashes(project), sort_keys=True)}",
                   "--label", f"org.opencontainers.image.version={version}", "-t", tag, str(project))
    if built.returncode != 0:
        raise ImageError(f"docker build of {tag} failed:\n{built.stderr.strip()[-3000:]}")
    image_id = inspect(tag)["Id"]
    local = f"{repository}/{project.name}:{LOCAL_TAG_PREFIX}{image_id.removeprefix('sha256:')}"
    if docker("tag", tag, local).returncode != 0:
        raise ImageError(f"could not tag {tag} as {local}")
    if not push:
        log(f"built {tag} ({image_id[:19]}), not pushed")
        return local
    log(f"pushing {tag}")
    pushed = docker("push", "--quiet", tag)
    if pushed.returncode != 0:
        raise ImageError(f"docker push {tag} failed: {pushed.stderr.strip()[-1000:]}")
    reference = registry_reference(inspect(tag), f"{repository}/{project.name}")
    log(f"pushed {reference}")
    return reference


# --- the release manifest -------------------------------------------------------------------------

def registry_reference(info: dict, name: str) -> str | None:
    """name@sha256:<digest> when the image was pushed to (or pulled from) that repository."""
    return next((d for d in info.get("RepoDigests") or [] if d.rpartition("@")[0] == name), None)


def manifest_entries(root: Path, repository: str, version: str) -> dict:
    """The "images" entry of a release manifest: each image project's image, pinned."""
    entries = {}
    for project in image_projects(root):
        tag = f"{repository}/{project}:{version}"
        info = inspect(tag)
        if info is None:
            raise ImageError(f"no image {tag} on this Docker engine: run `make image PROJECT={project} "
                             f"VERSION={version} IMAGE_REPOSITORY={repository}` first")
        if difference := differs_from(info, root / project):
            raise ImageError(f"{tag} was built from {difference}: run `make image PROJECT={project}` again")
        runtime_sha256 = info["Config"]["Labels"][RUNTIME_LABEL]  # the archived runtime's, as just checked
        image_id = info["Id"]
        reference = registry_reference(info, f"{repository}/{project}") or \
            f"{repository}/{project}:{LOCAL_TAG_PREFIX}{image_id.removeprefix('sha256:')}"
        entries[project] = {"reference": reference, "image_id": image_id, "runtime_sha256": runtime_sha256}
    return entries


# --- deploy and rollback -----------------------------------------------------------------------------

def engine_of(release: Path, project: str) -> str | None:
    """Where the project's DAG runs its containers: DOCKER_HOST, else conf/airflow.toml's docker_url."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    config = release / project / "conf/airflow.toml"
    url = tomllib.loads(config.read_text()).get("docker_url") if config.is_file() else None
    # docker-py reads unix://var/run/docker.sock as an absolute path; the CLI wants three slashes.
    if url and url.startswith("unix://") and not url.startswith("unix:///"):
        url = "unix:///" + url.removeprefix("unix://")
    return url


def check_available(release: Path, manifest: dict | None = None) -> None:
    """Every image of the release (its manifest, else the release's manifest.json) is on the engine its
    DAG uses, pulled by digest when it is not; raises ImageError naming the first that is not."""
    if manifest is None:
        manifest = json.loads((release / MANIFEST).read_text())
    entries = manifest.get("images", {})
    if not isinstance(entries, dict):
        raise ImageError("the manifest's images is not an object")
    for project, image in sorted(entries.items()):
        # The manifest comes from an archive: what reaches the docker CLI must be a reference.
        reference = image.get("reference") if isinstance(image, dict) else None
        image_id = image.get("image_id") if isinstance(image, dict) else None
        if not (isinstance(reference, str) and IMAGE_REFERENCE.fullmatch(reference)
                and isinstance(image_id, str) and IMAGE_ID.fullmatch(image_id)):
            raise ImageError(f"the manifest's image of {project!r} is not a valid image reference and ID")
        host = engine_of(release, project)
        where = f"the Docker engine at {host or 'the default socket'}"
        info = inspect(reference, host)
        if info is None and "@sha256:" in reference:
            log(f"pulling {reference}")
            pulled = docker("pull", "--quiet", reference, host=host)
            if pulled.returncode != 0:
                raise ImageError(f"image {reference} of {project} is not on {where} and cannot be pulled: "
                                 f"{pulled.stderr.strip()[-500:]}")
            info = inspect(reference, host)
        if info is None:
            raise ImageError(f"image {reference} of {project} is not on {where}, and it was never pushed "
                             "to a registry: build it there (make image) or publish it "
                             "(make image PUSH=true IMAGE_REPOSITORY=<registry>/<path>)")
        if info["Id"] != image_id:
            raise ImageError(f"image {reference} of {project} on {where} is {info['Id']}, "
                             f"not the release's {image_id}")
        log(f"{project}: {reference} is on {where}")

