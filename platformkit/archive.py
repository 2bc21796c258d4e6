"""Write the release archive: dist/platform-airflow-dags-<version>.tar.gz and its .sha256.

    python -m platformkit archive --version VERSION [--root .] [--dist dist] [--image-repository R]

The archive holds dags/, every project folder with its packed runtime, and manifest.json
(version, git sha, creation time, the sha256 of every file, each link's target, the runtimes'
manifests). Tests, benchmarks, caches, local environments and credential files stay out.

Before anything is written, what would ship is checked the way deploy checks it:
- the version is a valid name (platformkit/version.py);
- every runtime is up to date (platformkit/runtime.py);
- every member and every runtime archive passes the member policy (platformkit/untrusted.py); a link
  ships as a link when it stays inside its project, and stops the archive when it leaves it;
- every file is scanned for secrets with detect-secrets. A finding stops the archive, naming the
  file, the line and the rule (never the value). A false positive is allowed inline with a
  `pragma: allowlist secret` comment on its line, or, in a file that cannot carry one, recorded
  in the checkout's .secrets.baseline (see the README).

Runs in the platform environment (detect-secrets), not with the host's python3 as deploy does.
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings

from platformkit import images, runtime
from platformkit.errors import PlatformError
from platformkit.files import sha256_of
from platformkit.git import git
from platformkit.layout import (
    DAGS,
    MANIFEST,
    RUNTIME_ARCHIVE,
    RUNTIME_DIR,
    RUNTIME_MANIFEST,
    archive_name,
    checksum_path,
)
from platformkit.log import prefixed
from platformkit.untrusted import MemberPolicy, Refused, check_members
from platformkit.version import check_version

SECRETS_BASELINE = ".secrets.baseline"

# Folders that never ship: tests and benchmarks, VCS, caches, environments, build output,
# Airflow state, and the runtime unpacked for local use (the packed one ships).
EXCLUDED_DIRS = {
    ".git", "tests", "bench", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
    ".venv", RUNTIME_DIR, "build", "dist", ".airflow", "node_modules", ".extra-ca",
}
EXCLUDED_DIR_PATTERNS = ("*.egg-info",)
# Files that hold credentials never ship, wherever they are (each one left out is named).
# A pattern with a "/" matches the end of the path (.aws/credentials, .docker/config.json).
SECRET_PATTERNS = (
    ".env*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", "_netrc", ".pgpass", ".pypirc",
    ".git-credentials", ".htpasswd", "credentials", "*credentials*.json", "*.secret", "secret*.json",
    "secret*.toml", "secret*.yaml", "secret*.yml", "token", "*.token", "*.tfvars", "*.tfvars.json",
    "kubeconfig*", "*.kubeconfig", ".kube/config", ".docker/config.json", "*service-account*.json",
    "*service_account*.json",
)
EXCLUDED_FILE_PATTERNS = ("*.pyc", "*.pyo", "*.partial", ".DS_Store")


log = prefixed("archive")


class ArchiveError(PlatformError):
    """What stops the archive; nothing is written."""


def is_secret(path: Path) -> bool:
    name, tail = path.name.lower(), path.as_posix().lower()
    return any(fnmatch.fnmatch(tail, f"*/{p}") or tail == p if "/" in p else fnmatch.fnmatch(name, p)
               for p in SECRET_PATTERNS)


def is_excluded_dir(name: str) -> bool:
    return name in EXCLUDED_DIRS or any(fnmatch.fnmatch(name, p) for p in EXCLUDED_DIR_PATTERNS)


def is_excluded_file(name: str) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in EXCLUDED_FILE_PATTERNS)


def projects(root: Path) -> list[str]:
    """Top-level folders that are installable packages."""
    return sorted(p.parent.name for p in root.glob("*/pyproject.toml"))


def release_files(root: Path, folders: list[str]) -> list[Path]:
    """Every file and link of the given top-level folders that belongs in a release, sorted.
    A link to a folder is one entry: its folder is not walked twice."""
    files = []
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(root / folder):
            dirnames[:] = sorted(d for d in dirnames if not is_excluded_dir(d))
            links = [d for d in dirnames if Path(dirpath, d).is_symlink()]
            dirnames[:] = [d for d in dirnames if d not in links]
            for name in sorted([*filenames, *links]):
                path = Path(dirpath, name).relative_to(root)
                if is_secret(path):
                    log(f"left out {path}: it looks like a credential")
                elif not is_excluded_file(name):
                    files.append(path)
    return files


def check_link(root: Path, path: Path) -> str:
    """The target of a link that may ship: it stays inside its project (or dags/) and exists."""
    target = os.readlink(root / path)
    folder = (root / path.parts[0]).resolve()
    resolved = (root / path).resolve()
    if os.path.isabs(target) or not resolved.is_relative_to(folder):
        raise ArchiveError(f"{path} is a link to {target}, outside {path.parts[0]}/: ship a copy or remove the link")
    if not resolved.exists():
        raise ArchiveError(f"{path} is a link to {target}, which does not exist")
    return target


def scan_for_secrets(root: Path, files: list[Path]) -> None:
    """detect-secrets over every file that ships but the runtimes `make venv` generated (their
    archive is built from the locks; their manifest is hashes); a finding not allowed inline or
    in the baseline stops the archive."""
    scanned = [str(path) for path in files if path.name not in (RUNTIME_ARCHIVE, RUNTIME_MANIFEST)]
    findings = SecretsCollection(root=str(root))
    with default_settings():
        findings.scan_files(*scanned, num_processors=1)
    # Accepted: what the baseline lists, by file, rule and hashed value (whatever line it is on).
    accepted = set()
    if (root / SECRETS_BASELINE).is_file():
        baseline = SecretsCollection.load_from_baseline(json.loads((root / SECRETS_BASELINE).read_text()))
        accepted = {(filename, secret.type, secret.secret_hash) for filename, secret in baseline}
    found = sorted((filename, secret.line_number, secret.type) for filename, secret in findings
                   if (filename, secret.type, secret.secret_hash) not in accepted)
    for filename, line, rule in found:
        print(f"archive: secret found: {filename}:{line}: {rule}", file=sys.stderr)
    if found:
        raise ArchiveError(f"{len(found)} possible secret(s) in files that would ship (listed above); remove "
                           "them, or allow a false positive with a `pragma: allowlist secret` comment on its line")


def check_runtime(root: Path, project: str) -> dict:
    """The project's runtime manifest, once its archive is up to date and passes the member policy."""
    if not runtime.is_current(root / project):
        raise ArchiveError(f"{project} has no up-to-date runtime; run `make venv PROJECT={project}` first")
    manifest = json.loads((root / project / RUNTIME_MANIFEST).read_text())
    try:
        check_members(root / project / RUNTIME_ARCHIVE, MemberPolicy(interpreter=manifest.get("python_path")))
    except Refused as error:
        raise ArchiveError(f"{project}/{RUNTIME_ARCHIVE} would be refused by deploy: member {error}") from None
    return manifest


def build_manifest(root: Path, version: str, files: list[Path], links: dict[Path, str], runtimes: dict) -> dict:
    return {
        "version": version,
        "git_sha": git(root, "rev-parse", "HEAD") or None,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "projects": sorted(runtimes),
        "runtimes": {name: {k: m[k] for k in ("project_version", "backend", "python_version",
                                                 "python_path", "inputs_hash", "archive_sha256")}
                     for name, m in runtimes.items()},
        "files": {str(path): sha256_of(root / path) for path in files},
        "links": {str(path): target for path, target in links.items()},
    }


def members(root: Path, paths: list[Path]) -> list[tarfile.TarInfo]:
    """The archive's members, with plain modes and no owner, checked by deploy's member policy."""
    policy = MemberPolicy(links_confined_to_top_folder=True)
    infos = []
    for path in paths:
        info = tarfile.TarInfo(str(path))
        st = (root / path).lstat()
        if (root / path).is_symlink():
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(root / path), 0o777
        else:
            info.size, info.mode = st.st_size, 0o755 if st.st_mode & 0o100 else 0o644
        info.mtime = int(st.st_mtime)
        try:
            policy.check(info)
        except Refused as error:
            raise ArchiveError(f"member {error}") from None
        infos.append(info)
    return infos


def write_archive(root: Path, infos: list[tarfile.TarInfo], manifest: dict, output: Path) -> None:
    """Write to a temporary name and rename, so a reader never sees half an archive."""
    partial = output.with_name(output.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for info in infos:
            if info.isreg():
                with (root / info.name).open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
        data = json.dumps(manifest, indent=2).encode() + b"\n"
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(data), int(datetime.now().timestamp()), 0o644
        tar.addfile(info, io.BytesIO(data))
    os.replace(partial, output)


def create_release_archive(root: Path, version: str, dist: Path, image_repository: str | None = None) -> Path:
    check_version(version)
    root = root.resolve()
    names = projects(root)
    runtimes = {name: check_runtime(root, name) for name in names}
    paths = release_files(root, [DAGS, *names])
    links = {path: check_link(root, path) for path in paths if (root / path).is_symlink()}
    files = [path for path in paths if path not in links]
    infos = members(root, paths)
    scan_for_secrets(root, files)
    manifest = build_manifest(root, version, files, links, runtimes)
    if image_repository:
        manifest["images"] = images.manifest_entries(root, image_repository, version)
    dist.mkdir(parents=True, exist_ok=True)
    output = dist / archive_name(version)
    write_archive(root, infos, manifest, output)
    checksum = checksum_path(output)
    checksum.write_text(f"{sha256_of(output)}  {output.name}\n")
    log(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB, {len(files)} files, projects: {', '.join(names)})")
    log(f"wrote {checksum}")
    return output

