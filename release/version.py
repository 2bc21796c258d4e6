"""Print the release version of a checkout, or check one.

    python release/version.py [REPO]          the version of the checkout at REPO (default .)
    python release/version.py --check VERSION  VERSION itself, if it is a valid version name

The git tag on HEAD if there is one, else ``<branch>-<short sha>``; ``-dirty`` is appended when
tracked files have uncommitted changes. Characters that are not safe in a file name or an image
tag become ``-``.

A version names a folder (releases/<version>/), a file and an image tag, so it is a name, never
a path: letters, digits, ``.``, ``_``, ``+`` and ``-``, starting with a letter or a digit, at most
128 characters, and not a name the releases folder uses itself. `make version`, `make archive`
and deploy all check it with `check_version`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
# Names that releases/ holds besides the releases (see release/deploy.py).
RESERVED = {"history", "state.json"}
SHA_LENGTH = 8


class InvalidVersion(ValueError):
    pass


def check_version(version: str) -> str:
    """The version itself, or InvalidVersion saying what is wrong with it."""
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise InvalidVersion(f"invalid version {version!r}: use letters, digits, '.', '_', '+' and '-', "
                             "starting with a letter or digit, at most 128 characters")
    if version in RESERVED:
        raise InvalidVersion(f"invalid version {version!r}: a name the releases folder uses itself")
    return version


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def release_version(repo: Path) -> str:
    sha = git(repo, "rev-parse", f"--short={SHA_LENGTH}", "HEAD")
    if not sha:
        sys.exit(f"version: {repo} is not a git checkout with a commit; set VERSION=... to name the release")
    tag = git(repo, "describe", "--tags", "--exact-match", "HEAD")
    branch = git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    # A long branch name is shortened so that the sha and "-dirty" still fit in 128 characters.
    branch = branch[:128 - len(sha) - len("--dirty")] if branch and branch != "HEAD" else "detached"
    version = tag or f"{branch}-{sha}"
    if git(repo, "status", "--porcelain", "--untracked-files=no"):
        version += "-dirty"
    # Image tags allow [A-Za-z0-9_.-] and must not start with . or -.
    return re.sub(r"[^A-Za-z0-9_.-]", "-", version).lstrip(".-")


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["--check"] and len(argv) == 2:
            print(check_version(argv[1]))
        else:
            print(check_version(release_version(Path(argv[0] if argv else "."))))
    except InvalidVersion as error:
        print(f"version: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
