"""A deploy or a rollback killed at any point: rollback still returns to the release that was live
before the last switch, and nothing stray is left once the next command has run.

Deploy and rollback run as real processes, SIGKILLed just before their n-th change to the file
system (os.replace, rename, symlink, unlink, mkdir, rmdir, shutil.rmtree), for n = 1, 2, ...
until one runs to its end: every point between two changes is a kill point. Changes inside the
staging folder (releases/.incoming-*/) are not counted: a kill among them is a kill while
preparing, all alike (test_release_flow kills a deploy in the middle of its unpack).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import build_archive, deploy, live

DEPLOY = ("-m", "platformkit")
# Runs `python -m platformkit`, killing it before its n-th file-system change (argv[1] = n).
KILL_AT = r"""
import os, re, runpy, shutil, signal, sys
kill_at, changes = int(sys.argv[1]), 0
def counted(change):
    def run(*args, **kwargs):
        global changes
        if not re.search(r"/\.incoming-[^/]+/", str(args[-1])):
            changes += 1
            if changes == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return change(*args, **kwargs)
    return run
for name in ("replace", "rename", "symlink", "unlink", "mkdir", "rmdir"):
    setattr(os, name, counted(getattr(os, name)))
shutil.rmtree = counted(shutil.rmtree)
sys.argv = ["platformkit", *sys.argv[2:]]
runpy.run_module("platformkit", run_name="__main__", alter_sys=True)
"""


def killed_at(n: int, *command) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", KILL_AT, str(n), *map(str, command)],
                          capture_output=True, text=True, timeout=120)


def command(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *DEPLOY, *map(str, args)], capture_output=True, text=True)


def recorded_live(home: Path) -> str:
    """What `status` says went live last: the live release, or the one a switch was recorded to."""
    out = command("status", "--airflow-home", home).stdout
    pending = re.search(r"the switch to (\S+) was recorded", out)
    return pending.group(1) if pending else re.search(r"live release: (\S+)", out).group(1)


def check_after_kill(home: Path, before: str, after: str) -> None:
    """`current` points at a complete release, the old or the new; at most the fixed new link is left."""
    assert live(home) in (f"releases/{before}", f"releases/{after}")
    assert (home / "current/manifest.json").is_file() and (home / "current/hello/venv/bin/python").exists()
    assert set(os.listdir(home)) <= {"current", "releases", ".current.new"}


def check_settled(home: Path) -> None:
    assert sorted(os.listdir(home)) == ["current", "releases"]
    assert not [p for p in os.listdir(home / "releases") if p.startswith(".") and p != ".lock"]


@pytest.fixture(scope="module")
def v3(source, tmp_path_factory) -> Path:
    return build_archive(source, "v3", tmp_path_factory.mktemp("dist-v3"))


def homes(template: Path, tmp_path: Path):
    """A fresh copy of the template AIRFLOW_HOME for each kill point."""
    n = 0
    while True:
        n += 1
        home = tmp_path / f"home-{n}"
        shutil.copytree(template, home, symlinks=True)
        yield n, home


def kill_at_every_point(template: Path, tmp_path: Path, args: tuple, before: str, after: str) -> int:
    """Run `args` (deploy or rollback, switching `before` -> `after`) killed before its 1st, 2nd,
    ... file-system change until it completes; after each kill, a rollback must return to the
    release live before the last switch. Returns how many changes the command made."""
    completed = False
    for n, home in homes(template, tmp_path):
        result = killed_at(n, *args, "--airflow-home", home)
        if result.returncode == 0:
            completed = True
            assert live(home) == f"releases/{after}"
        else:
            assert result.returncode == -9, result.stderr
            check_after_kill(home, before, after)
        # Airflow saw `after` go live: the rollback must return to the one before it. Still on
        # `before`: it depends on whether the switch was recorded (the next command completes it).
        last = after if live(home) == f"releases/{after}" else recorded_live(home)
        assert last in (before, after)
        result = command("rollback", "--airflow-home", home)
        assert result.returncode == 0, f"killed before change {n}: {result.stderr}"
        expected = {"v3": "v2", "v2": "v1"}[last]
        assert live(home) == f"releases/{expected}", f"killed before change {n}: {result.stdout}"
        check_settled(home)
        shutil.rmtree(home)
        if completed:
            return n


def test_deploy_killed_at_every_point(archives, v3, tmp_path):
    template = tmp_path / "template"
    for version in ("v1", "v2"):
        deploy(archives[version], template)
    changes = kill_at_every_point(template, tmp_path, ("deploy", v3), before="v2", after="v3")
    assert changes > 8, "the deploy made fewer changes than it must"


def test_rollback_killed_at_every_point(archives, v3, tmp_path):
    template = tmp_path / "template"
    for archive in (archives["v1"], archives["v2"], v3):
        deploy(archive, template)
    changes = kill_at_every_point(template, tmp_path, ("rollback",), before="v3", after="v2")
    assert changes > 2, "the rollback made fewer changes than it must"
