"""The release version of a checkout, and the one rule every version follows.

    python3 -m platformkit version [REPO]          the version of the checkout at REPO (default .)
    python3 -m platformkit version --check VERSION  VERSION itself, if it is a valid version name

The git tag on HEAD if there is one, else ``<branch>-<short sha>``; ``-dirty`` is appended when
tracked files have uncommitted changes. Characters that are not safe in a file name or an image
tag become ``-``.

A version names a folder (releases/<version>/), a file and an image tag, so it is a name, never
a path: letters, digits, ``.``, ``_``, ``+`` and ``-``, starting with a letter or a digit, at most
128 characters, and not a name the releases folder uses itself. `make version`, `make archive`,
deploy and the releases bundle all check it with `check_version`.
"""

from __future__ import annotations

import re
from pathlib import Path

from platformkit.errors import PlatformError
from platformkit.git import git
from platformkit.layout import RESERVED_NAMES, VERSION_PATTERN

SHA_LENGTH = 8


class InvalidVersion(PlatformError):
    pass


def check_version(version: str) -> str:
    """The version itself, or InvalidVersion saying what is wrong with it."""
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise InvalidVersion(f"invalid version {version!r}: use letters, digits, '.', '_', '+' and '-', "
                             "starting with a letter or digit, at most 128 characters")
    if version in RESERVED_NAMES:
        raise InvalidVersion(f"invalid version {version!r}: a name the releases folder uses itself")
    return version


def release_version(repo: Path) -> str:
    sha = git(repo, "rev-parse", f"--short={SHA_LENGTH}", "HEAD")
    if not sha:
        raise PlatformError(f"{repo} is not a git checkout with a commit; set VERSION=... to name the release")
    tag = git(repo, "describe", "--tags", "--exact-match", "HEAD")
    branch = git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    # A long branch name is shortened so that the sha and "-dirty" still fit in 128 characters.
    branch = branch[:128 - len(sha) - len("--dirty")] if branch and branch != "HEAD" else "detached"
    version = tag or f"{branch}-{sha}"
    if git(repo, "status", "--porcelain", "--untracked-files=no"):
        version += "-dirty"
    # Image tags allow [A-Za-z0-9_.-] and must not start with . or -.
    return check_version(re.sub(r"[^A-Za-z0-9_.-]", "-", version).lstrip(".-"))
