"""Write the release archive: dist/platform-airflow-dags-<version>.tar.gz and its .sha256.

    python release/archive.py --version VERSION [--root .] [--dist dist]

The archive holds dags/, every project folder with its packed runtime, and manifest.json
(version, git sha, creation time, the sha256 of every file, the runtimes' manifests).
Tests, benchmarks, caches, local environments and anything that looks like a secret stay out.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import images

PREFIX = "platform-airflow-dags"
MANIFEST = "manifest.json"
RUNTIME_MANIFEST = "venv.manifest.json"

# Folders that never ship: tests and benchmarks, VCS, caches, environments, build output,
# Airflow state, and the runtime unpacked for local use (the packed one ships).
EXCLUDED_DIRS = {
    ".git", "tests", "bench", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
    ".venv", "venv", "build", "dist", ".airflow", "node_modules", ".extra-ca",
}
EXCLUDED_DIR_PATTERNS = ("*.egg-info",)
# Files that hold credentials never ship, wherever they are (each one left out is named).
SECRET_PATTERNS = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".pypirc", ".git-credentials",
    ".htpasswd", "credentials", "*credentials*.json", "*.secret", "secret*.json", "secret*.toml",
    "secret*.yaml", "secret*.yml", "token", "*.token",
)
EXCLUDED_FILE_PATTERNS = ("*.pyc", "*.pyo", "*.partial", ".DS_Store")


def log(message: str) -> None:
    print(f"archive: {message}", flush=True)


def is_secret(name: str) -> bool:
    return any(fnmatch.fnmatch(name.lower(), pattern) for pattern in SECRET_PATTERNS)


def is_excluded_dir(name: str) -> bool:
    return name in EXCLUDED_DIRS or any(fnmatch.fnmatch(name, p) for p in EXCLUDED_DIR_PATTERNS)


def is_excluded_file(name: str) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in EXCLUDED_FILE_PATTERNS)


def projects(root: Path) -> list[str]:
    """Top-level folders that are installable packages."""
    return sorted(p.parent.name for p in root.glob("*/pyproject.toml"))


def release_files(root: Path, folders: list[str]) -> list[Path]:
    """Every file of the given top-level folders that belongs in a release, sorted."""
    files = []
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(root / folder):
            dirnames[:] = sorted(d for d in dirnames if not is_excluded_dir(d))
            for name in sorted(filenames):
                path = Path(dirpath, name).relative_to(root)
                if is_secret(name):
                    log(f"left out {path}: it looks like a credential")
                elif not is_excluded_file(name):
                    files.append(path)
    return files


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_runtime(root: Path, project: str) -> dict:
    """The project's runtime manifest; exits when the runtime is missing or older than its inputs."""
    check = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "conda/build_runtime.py"),
                            str(root / project), "--check"])
    if check.returncode != 0:
        sys.exit(f"archive: {project} has no up-to-date runtime; run `make venv PROJECT={project}` first")
    return json.loads((root / project / RUNTIME_MANIFEST).read_text())


def git_sha(root: Path) -> str | None:
    result = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def build_manifest(root: Path, version: str, files: list[Path], runtimes: dict) -> dict:
    return {
        "version": version,
        "git_sha": git_sha(root),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "projects": sorted(runtimes),
        "runtimes": {name: {k: m[k] for k in ("project_version", "backend", "python_version",
                                                 "python_path", "inputs_hash", "archive_sha256")}
                     for name, m in runtimes.items()},
        "files": {str(path): sha256_of(root / path) for path in files},
    }


def write_archive(root: Path, files: list[Path], manifest: dict, output: Path) -> None:
    """Write to a temporary name and rename, so a reader never sees half an archive."""
    partial = output.with_name(output.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for path in files:
            tar.add(root / path, arcname=str(path), recursive=False)
        data = json.dumps(manifest, indent=2).encode() + b"\n"
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(data), int(datetime.now().timestamp()), 0o644
        tar.addfile(info, io.BytesIO(data))
    os.replace(partial, output)


def create_release_archive(root: Path, version: str, dist: Path, image_repository: str | None = None) -> Path:
    root = root.resolve()
    names = projects(root)
    runtimes = {name: check_runtime(root, name) for name in names}
    files = release_files(root, ["dags", *names])
    manifest = build_manifest(root, version, files, runtimes)
    if image_repository:
        manifest["images"] = images.manifest_entries(root, image_repository, version)
    dist.mkdir(parents=True, exist_ok=True)
    output = dist / f"{PREFIX}-{version}.tar.gz"
    write_archive(root, files, manifest, output)
    checksum = output.with_name(output.name + ".sha256")
    checksum.write_text(f"{sha256_of(output)}  {output.name}\n")
    log(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB, {len(files)} files, projects: {', '.join(names)})")
    log(f"wrote {checksum}")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", required=True, help="the release version (see release/version.py)")
    parser.add_argument("--root", type=Path, default=Path("."), help="the checkout (default: .)")
    parser.add_argument("--dist", type=Path, default=Path("dist"), help="where to write (default: dist)")
    parser.add_argument("--image-repository", help="pin the images of container projects, <repository>/<project>:<version>")
    args = parser.parse_args(argv)
    try:
        create_release_archive(args.root, args.version, args.dist, args.image_repository)
    except images.ImageError as error:
        sys.exit(f"archive: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
