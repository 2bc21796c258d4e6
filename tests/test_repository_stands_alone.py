"""The repository stands alone: no documentation link or path leads out of it.

Someone who clones the repository has nothing beside it, so every link in its Markdown files
must resolve to a file inside the checkout, no `../` path may climb out of it, and no document
may name an absolute path on the author's machine. Absolute paths are fine where they name a system or
in-container location (`/etc/ssl/...`, `/opt/runtime`, `/data`).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Absolute locations a document may name: the system's, and those inside containers and images.
SYSTEM_ROOTS = ("/etc/", "/usr/", "/opt/", "/var/", "/tmp/", "/data", "/src", "/proc/", "/dev/",
                "/bin/", "/sbin/", "/lib/", "/run/", "/srv/", "/home/airflow", "/tmp",
                "/path/")  # the last: the usual placeholder, /path/to/file

MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
# A path token: starts after a quote, backtick, bracket or space and climbs out with ../ or is absolute.
PARENT_PATH = re.compile(r"""(?:^|[\s`'"(=])((?:\.\./)+[\w.-][\w./-]*)""")
ABSOLUTE_PATH = re.compile(r"""(?:^|[\s`'"(=])(/[A-Za-z][\w.-]*/[\w./-]*)""")


def tracked_documents() -> list[Path]:
    names = subprocess.run(["git", "-C", str(ROOT), "ls-files", "*.md"], capture_output=True, text=True,
                           check=True).stdout.split()
    return [ROOT / name for name in names]


def stays_inside(source: Path, target: str) -> bool:
    """Lexically: a link in the checkout (.venv/bin/python) may point anywhere on this machine."""
    return Path(os.path.normpath(source.parent / target)).is_relative_to(ROOT)


def resolves_inside(source: Path, target: str) -> bool:
    return stays_inside(source, target) and os.path.lexists(os.path.normpath(source.parent / target))


def is_built_here(source: Path, target: str) -> bool:
    """A path git ignores (.venv/, dist/): made by `make`, so absent from a fresh clone."""
    path = os.path.normpath(source.parent / target)
    return subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", path], capture_output=True).returncode == 0


def problems_in(path: Path) -> list[str]:
    found = []
    text = path.read_text(errors="replace")
    rel = path.relative_to(ROOT)
    for number, line in enumerate(text.splitlines(), 1):
        for target in MARKDOWN_LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL, or an anchor on the same page
            if not resolves_inside(path, target.split("#", 1)[0]):
                found.append(f"{rel}:{number}: link to {target} does not resolve inside the repository")
        for token in PARENT_PATH.findall(line):
            if not stays_inside(path, token):
                found.append(f"{rel}:{number}: path {token} leaves the repository")
            elif not (resolves_inside(path, token) or is_built_here(path, token)):
                found.append(f"{rel}:{number}: path {token} is not in the repository")
        for token in ABSOLUTE_PATH.findall(line):
            if not token.startswith(SYSTEM_ROOTS):
                found.append(f"{rel}:{number}: absolute path {token} names a place outside the repository")
    return found


def test_no_link_or_path_leaves_the_repository():
    documents = tracked_documents()
    assert ROOT / "README.md" in documents, "found no tracked README.md: is this a checkout?"
    problems = [problem for path in documents for problem in problems_in(path)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("line, expected", [
    ("Spec: `../../shared/specs/arxlive.md`.", "path ../../shared/specs/arxlive.md leaves the repository"),
    ("Spec: `../shared/specs/arxlive.md`.", "path ../shared/specs/arxlive.md is not in the repository"),
    ("See [the spec](../shared/specs/x.md).", "does not resolve inside the repository"),
    ("See [the spec](../../shared/specs/x.md).", "does not resolve inside the repository"),
    ("Spec: `/work/shared/specs/arxlive.md`.", "names a place outside the repository"),
    ("See [missing](docs/nothing-here.md).", "does not resolve inside the repository"),
])
def test_the_check_finds_each_kind_of_escape(tmp_path, line, expected, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "project").mkdir()
    doc = tmp_path / "project/README.md"
    doc.write_text(f"# x\n\n{line}\n")
    assert any(expected in problem for problem in problems_in(doc))


def test_the_check_accepts_links_and_system_paths_that_stay(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "project/docs").mkdir(parents=True)
    (tmp_path / "project/docs/data.md").write_text("# data\n")
    doc = tmp_path / "project/README.md"
    doc.write_text("See [data](docs/data.md#contract), [top](../README.md), https://example.org/x,\n"
                   "`/etc/ssl/certs/ca-certificates.crt` and `/opt/runtime/bin/python`.\n")
    (tmp_path / "README.md").write_text("# top\n")
    assert problems_in(doc) == []
