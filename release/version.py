"""Print the release version of a checkout.

The git tag on HEAD if there is one, else ``<branch>-<short sha>``; ``-dirty`` is appended when
tracked files have uncommitted changes. Characters that are not safe in a file name or an image
tag become ``-``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def release_version(repo: Path) -> str:
    sha = git(repo, "rev-parse", "--short=8", "HEAD")
    if not sha:
        sys.exit(f"version: {repo} is not a git checkout with a commit; set VERSION=... to name the release")
    tag = git(repo, "describe", "--tags", "--exact-match", "HEAD")
    branch = git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    version = tag or f"{branch if branch and branch != 'HEAD' else 'detached'}-{sha}"
    if git(repo, "status", "--porcelain", "--untracked-files=no"):
        version += "-dirty"
    # Image tags allow [A-Za-z0-9_.-] and must not start with . or -.
    return re.sub(r"[^A-Za-z0-9_.-]", "-", version).lstrip(".-")


if __name__ == "__main__":
    print(release_version(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
