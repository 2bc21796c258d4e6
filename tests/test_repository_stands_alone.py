"""The repository stands alone: no documentation link or path leads out of it.

Someone who clones the repository has nothing beside it, so every link and every `../` path in
its Markdown files must resolve to something inside the checkout, and no document may name an
absolute path on the author's machine. Absolute paths are fine where they name a system or
in-container location (`/etc/ssl/...`, `/opt/runtime`, `/data`).
"""

from __future__ import annotations

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


def resolves_inside(source: Path, target: str) -> bool:
    resolved = (source.parent / target).resolve()
    return resolved.is_relative_to(ROOT) and resolved.exists()


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
            if not resolves_inside(path, token):
                found.append(f"{rel}:{number}: path {token} does not resolve inside the repository")
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
    ("Spec: `../shared/specs/arxlive.md`.", "path ../shared/specs/arxlive.md does not resolve"),
    ("Spec: `../../shared/specs/arxlive.md`.", "path ../../shared/specs/arxlive.md does not resolve"),
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
