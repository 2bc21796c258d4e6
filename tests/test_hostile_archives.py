"""Hostile and broken release archives: each is refused with one line, and changes nothing.

Every case starts from a real release of the small `hello` checkout and changes it the way an
attacker (or a broken disk) would. Each must exit 1 with one `deploy: error:` line naming what is
wrong, leave `current` where it was, write nothing outside AIRFLOW_HOME (a sentinel folder beside
it stays empty), and leave nothing under releases/ once the next good deploy has run.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import deploy, live

PYTHON_PATH = os.path.realpath(sys._base_executable)


def member(name: str, data: bytes, **attrs) -> tuple[tarfile.TarInfo, bytes | None]:
    """A tar member (mode 0644 unless `attrs` say otherwise) and its content; only a regular
    file has content."""
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    if not info.isreg():
        info.size = 0
    return info, data if info.isreg() else None


class Release:
    """A release archive's members and manifest, to change and write back."""

    def __init__(self, archive: Path):
        with tarfile.open(archive) as tar:
            self.members = [(m, tar.extractfile(m).read() if m.isfile() else None)
                            for m in tar.getmembers() if m.name != "manifest.json"]
            self.manifest = json.load(tar.extractfile("manifest.json"))

    def add(self, name: str, data: bytes = b"x = 1\n", *, listed: bool = True, **attrs) -> None:
        """A member; listed in the manifest (files or links) unless told otherwise, so that the
        policy, not the manifest, is what refuses it."""
        info, content = member(name, data, **attrs)
        self.members.append((info, content))
        if listed and info.issym():
            self.manifest["links"][name] = info.linkname
        elif listed and not info.isdir():
            self.manifest["files"][name] = hashlib.sha256(data).hexdigest()

    def runtime(self, edit) -> None:
        """Change hello/venv.tar.gz with edit(members) and list its new checksum."""
        index = next(i for i, (m, _) in enumerate(self.members) if m.name == "hello/venv.tar.gz")
        info, data = self.members[index]
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]
        edit(members)
        packed = io.BytesIO()
        with tarfile.open(fileobj=packed, mode="w:gz") as tar:
            for m, content in members:
                tar.addfile(m, io.BytesIO(content) if content is not None else None)
        info.size = len(packed.getvalue())
        self.members[index] = (info, packed.getvalue())
        self.manifest["files"]["hello/venv.tar.gz"] = hashlib.sha256(packed.getvalue()).hexdigest()

    def tar_bytes(self, manifest_bytes: bytes | None = None) -> bytes:
        data = manifest_bytes if manifest_bytes is not None else json.dumps(self.manifest).encode()
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            for info, content in self.members:
                tar.addfile(info, io.BytesIO(content) if content is not None else None)
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        return out.getvalue()

    def write(self, path: Path, raw: bytes | None = None) -> Path:
        """The archive as deploy fetches it: .tar.gz beside a matching .sha256 (whoever tampers
        with an archive can recompute that)."""
        path.write_bytes(raw if raw is not None else gzip.compress(self.tar_bytes()))
        Path(f"{path}.sha256").write_text(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
        return path


def runtime_member(name: str, data: bytes = b"x", **attrs):
    def edit(members):
        members.append(member(name, data, **attrs))
    return edit


def set_version(version):
    def edit(r: Release, sentinel: Path):
        r.manifest["version"] = version
    return edit


# Each case: (id, change to the v2 release, text the error must hold). `sentinel` is a folder
# beside AIRFLOW_HOME (AIRFLOW_HOME = <tmp>/home; the release unpacks into
# <tmp>/home/releases/.incoming-*/release, its runtime into .../release/hello/venv).
SYM, LNK, CHR, FIFO, DIR = tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE, tarfile.DIRTYPE
CASES = [
    ("dot-dot name", lambda r, s: r.add("../../../../sentinel/x"), "must be relative and normalised"),
    ("absolute name", lambda r, s: r.add(f"{s}/abs"), "must be relative and normalised"),
    ("non-normalised name", lambda r, s: r.add("dags/./x.py"), "must be relative and normalised"),
    ("absolute link out", lambda r, s: (r.add("dags/out", type=SYM, linkname=str(s)), r.add("dags/out/x.py")),
     "dags/out"),
    ("relative link out", lambda r, s: (r.add("dags/out", type=SYM, linkname="../../../../../sentinel"),
                                        r.add("dags/out/x.py")), "dags/out"),
    ("link out of its project", lambda r, s: r.add("hello/dags", type=SYM, linkname="../dags"), "hello/dags"),
    ("link at the top", lambda r, s: r.add("evil", type=SYM, linkname="dags"), "a link at the top"),
    ("file under an inner link", lambda r, s: (r.add("dags/in", type=SYM, linkname="."), r.add("dags/in/x.py")),
     "lies under the link"),
    ("link replacing a file", lambda r, s: r.add("dags/hello.py", type=SYM, linkname="../hello/pyproject.toml",
                                                 listed=False), "appears twice"),
    ("hard link out", lambda r, s: r.add("dags/passwd", type=LNK, linkname="/etc/passwd"), "hard link"),
    ("hard link to a later member", lambda r, s: r.add("dags/h", type=LNK, linkname="dags/zz.py"), "hard link"),
    ("character device", lambda r, s: r.add("dags/null", type=CHR, devmajor=1, devminor=3), "special file"),
    ("fifo", lambda r, s: r.add("dags/fifo", type=FIFO), "special file"),
    ("setuid file", lambda r, s: r.add("dags/suid.py", mode=0o4755), "setuid"),
    ("setgid file", lambda r, s: r.add("dags/sgid.py", mode=0o2755), "setuid, setgid"),
    ("world-writable file", lambda r, s: r.add("dags/ww.py", mode=0o666), "world-writable"),
    ("world-writable folder", lambda r, s: r.add("dags/open", type=DIR, mode=0o777), "world-writable"),
    ("member not in the manifest", lambda r, s: r.add("dags/x.py", listed=False),
     "dags/x.py is in the archive but not in the manifest"),
    ("folder not in the manifest", lambda r, s: r.add("dags/extra", type=DIR, mode=0o755),
     "dags/extra is in the archive but not in the manifest"),
    ("member missing", lambda r, s: r.manifest["files"].update({"dags/gone.py": "0" * 64}),
     "dags/gone.py is listed in the manifest but missing"),
    ("link listed as a file", lambda r, s: (r.add("dags/l.py", type=SYM, linkname="hello.py", listed=False),
                                            r.manifest["files"].update({"dags/l.py": "0" * 64})),
     "dags/l.py is listed as a file"),
    ("link with another target", lambda r, s: (r.add("dags/l.py", type=SYM, linkname="hello.py"),
                                               r.manifest["links"].update({"dags/l.py": "other.py"})),
     "dags/l.py is listed as a link"),
    ("version history", set_version("history"), "invalid version 'history'"),
    ("version dot", set_version("."), "invalid version '.'"),
    ("version empty", set_version(""), "invalid version ''"),
    ("version path", set_version("../x"), "invalid version '../x'"),
    ("version with a slash", set_version("a/b"), "invalid version 'a/b'"),
    ("version not a string", set_version(["v2"]), "invalid version"),
    ("files not a mapping", lambda r, s: r.manifest.update({"files": ["dags/hello.py"]}), "'files' must map"),
    ("runtime of a missing project", lambda r, s: r.manifest["runtimes"].update({"../x": {}}), "has no ../x/venv.tar.gz"),
    ("python_path not a Python", lambda r, s: r.manifest["runtimes"]["hello"].update({"python_path": "/bin/sh"}),
     "invalid python_path '/bin/sh'"),
    ("image reference that is an option", lambda r, s: r.manifest.update(
        {"images": {"hello": {"reference": "--help", "image_id": "sha256:" + "0" * 64}}}),
        "not a valid image reference"),
    ("images not a mapping", lambda r, s: r.manifest.update({"images": ["x"]}), "images is not an object"),
    ("runtime folder in the release", lambda r, s: r.add("hello/venv/bin/python"), "hello/venv is in the archive"),
    # Inside a runtime archive (hello/venv.tar.gz), unpacked into <release>/hello/venv.
    ("runtime: dot-dot name", lambda r, s: r.runtime(runtime_member("../../../../../../sentinel/x")),
     "hello/venv.tar.gz is refused"),
    ("runtime: absolute name", lambda r, s: r.runtime(runtime_member(f"{s}/abs")), "must be relative"),
    ("runtime: link out, then a file through it",
     lambda r, s: r.runtime(lambda m: (runtime_member("lib/out", type=SYM, linkname=str(s))(m),
                                       runtime_member("lib/out/x")(m))), "lib/out"),
    ("runtime: interpreter link to another program",
     lambda r, s: r.runtime(lambda m: [i.__setattr__("linkname", "/bin/sh") for i, _ in m
                                       if i.name == "bin/python3.11"]), "bin/python3.11"),
    ("runtime: the interpreter's target under another name",
     lambda r, s: r.runtime(runtime_member("lib/python", type=SYM, linkname=PYTHON_PATH)), "lib/python"),
    ("runtime: interpreter-named link deeper", lambda r, s: r.runtime(
        runtime_member("lib/bin/python3", type=SYM, linkname=PYTHON_PATH)), "lib/bin/python3"),
    ("runtime: setuid", lambda r, s: r.runtime(runtime_member("bin/su", mode=0o4755)), "setuid"),
    ("runtime: device", lambda r, s: r.runtime(runtime_member("dev/sda", type=tarfile.BLKTYPE)), "special file"),
    ("runtime: hard link out", lambda r, s: r.runtime(runtime_member("x", type=LNK, linkname="/etc/shadow")),
     "hard link"),
    ("runtime: not gzip", lambda r, s: (
        setattr(r, "members", [(m, b"not a tar" if m.name == "hello/venv.tar.gz" else d) for m, d in r.members]),
        [setattr(m, "size", 9) for m, _ in r.members if m.name == "hello/venv.tar.gz"],
        r.manifest["files"].update({"hello/venv.tar.gz": hashlib.sha256(b"not a tar").hexdigest()})),
     "hello/venv.tar.gz is not a valid .tar.gz"),
]


@pytest.fixture(scope="module")
def deployed_v1(archives, tmp_path_factory) -> Path:
    """An AIRFLOW_HOME with v1 live, copied for each case."""
    home = tmp_path_factory.mktemp("template") / "home"
    deploy(archives["v1"], home)
    return home


@pytest.fixture
def home(deployed_v1, tmp_path) -> Path:
    """<tmp>/home with v1 live, beside <tmp>/sentinel (must stay empty) and <tmp>/in (the archives)."""
    home = tmp_path / "home"
    shutil.copytree(deployed_v1, home, symlinks=True)
    (tmp_path / "sentinel").mkdir()
    (tmp_path / "in").mkdir()
    return home


def assert_refused(result: subprocess.CompletedProcess, expected: str, home: Path, archives) -> None:
    """One error line; nothing changed; nothing outside; the next good deploy leaves nothing behind."""
    sentinel = home.parent / "sentinel"
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deploy: error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert live(home) == "releases/v1"
    assert sorted(os.listdir(home.parent)) == ["home", "in", "sentinel"]
    assert not list(sentinel.iterdir())
    deploy(archives["v2"], home)
    assert live(home) == "releases/v2"
    assert sorted(p.name for p in (home / "releases").iterdir()) == [".lock", "state.json", "v1", "v2"]
    assert sorted(p.name for p in home.iterdir()) == ["current", "releases"]


@pytest.mark.parametrize("change, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_archive_is_refused(change, expected, home, archives):
    release = Release(archives["v2"])
    change(release, home.parent / "sentinel")
    hostile = release.write(home.parent / "in/platform-airflow-dags-v2.tar.gz")
    assert_refused(deploy(hostile, home, check=False), expected, home, archives)


def test_corrupt_gzip_with_a_matching_checksum_is_named_corrupt(home, archives):
    data = bytearray(archives["v2"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt = Release(archives["v2"]).write(home.parent / "in/corrupt.tar.gz", bytes(data))
    assert_refused(deploy(corrupt, home, check=False), "not a valid .tar.gz (corrupt or truncated)", home, archives)


def test_truncated_archive_is_named_corrupt(home, archives):
    data = archives["v2"].read_bytes()
    truncated = Release(archives["v2"]).write(home.parent / "in/truncated.tar.gz", data[: len(data) * 2 // 3])
    assert_refused(deploy(truncated, home, check=False), "not a valid .tar.gz", home, archives)


def test_tar_data_corrupt_inside_a_valid_gzip_is_named_corrupt(home, archives):
    release = Release(archives["v2"])
    raw = bytearray(release.tar_bytes())
    third = tarfile.open(fileobj=io.BytesIO(bytes(raw))).getmembers()[2]
    raw[third.offset + 100] ^= 0xFF  # its header's mode: tarfile would take it for the end of the archive
    broken = release.write(home.parent / "in/broken.tar.gz", gzip.compress(bytes(raw)))
    assert_refused(deploy(broken, home, check=False), "not a valid .tar.gz (corrupt or truncated): unreadable tar data",
                   home, archives)


def test_an_uncompressed_tar_is_refused(home, archives):
    release = Release(archives["v2"])
    plain = release.write(home.parent / "in/plain.tar.gz", release.tar_bytes())
    assert_refused(deploy(plain, home, check=False), "not a valid .tar.gz", home, archives)


def test_bad_manifest_json_is_one_line(home, archives):
    release = Release(archives["v2"])
    bad = release.write(home.parent / "in/bad.tar.gz", gzip.compress(release.tar_bytes(b'{"version": "v2", "files": {')))
    assert_refused(deploy(bad, home, check=False), "manifest.json is not valid JSON", home, archives)


def test_an_archive_without_manifest_is_not_a_release(home, archives):
    release = Release(archives["v2"])
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info, content in release.members:
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    archive = release.write(home.parent / "in/nomanifest.tar.gz", gzip.compress(raw.getvalue()))
    assert_refused(deploy(archive, home, check=False), "has no manifest.json: not a release archive", home, archives)


def test_unreadable_archive_is_one_line(home, archives):
    """Every read of /proc/self/mem at offset 0 fails (EIO), as a bad disk's would; tests run as
    root, whom file modes do not stop."""
    link = home.parent / "in/unreadable.tar.gz"
    link.symlink_to("/proc/self/mem")
    Path(f"{link}.sha256").write_text("0" * 64 + "  unreadable.tar.gz\n")
    result = deploy(link, home, check=False)
    link.unlink()
    assert_refused(result, "cannot read", home, archives)


def test_full_disk_during_the_runtime_unpack_is_one_line(archives, tmp_path):
    """AIRFLOW_HOME on a tmpfs with room for the release but not for its unpacked runtime."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    release = Release(archives["v2"])
    release.runtime(runtime_member("lib/big.bin", os.urandom(2 << 20)))  # incompressible: 2 MB packed too
    big = release.write(tmp_path / "platform-airflow-dags-v2.tar.gz")
    home = tmp_path / "home"
    home.mkdir()
    # Room for the unpacked release (2 MB of it the packed runtime), not for the runtime unpacked.
    size = sum(m.size for m, _ in release.members) + (1 << 20)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(home)], check=True)
    try:
        result = deploy(big, home, check=False)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "unpacked release v2" in result.stdout, "the disk must fill during the runtime, not before"
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith("deploy: error: cannot unpack hello/venv.tar.gz: No space left on device"), lines
        assert not (home / "current").exists()
        assert sorted(p.name for p in (home / "releases").iterdir()) == [".lock"]
    finally:
        subprocess.run(["umount", str(home)], check=True)


def test_a_python_without_extraction_filters_is_refused_with_one_line(archives, tmp_path):
    """Debian 12's /usr/bin/python3 (3.11.2) predates tarfile's filters: deploy says so."""
    probe = "import runpy, sys, tarfile; del tarfile.data_filter; sys.argv = ['platformkit', *sys.argv[1:]]; " \
            "runpy.run_module('platformkit', run_name='__main__', alter_sys=True)"
    result = subprocess.run([sys.executable, "-c", probe, "deploy", str(archives["v1"]),
                             "--airflow-home", str(tmp_path / "home")], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("deploy: error: Python") and "extraction filters" in result.stderr
    assert not (tmp_path / "home").exists()
