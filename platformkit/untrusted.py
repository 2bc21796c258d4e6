"""Reading what comes from outside: one member policy for every archive, one redirect rule for
every download. Standard library only: deploy runs with the host's python3.

Archives (the release archive and each runtime archive inside it) are unpacked, and checked
before `make archive` writes them, through `MemberPolicy`, a tarfile extraction filter built on
tarfile's own "data" filter:

- regular files, directories and symlinks; hard links only to a file earlier in the same archive;
  devices and FIFOs are refused;
- names relative and normalised ("a/b", never "/a", "./a", "a/../b"), each name once (but a
  file may replace a file), and no member under a link of the archive (nothing is ever written
  through a link);
- no setuid, setgid or world-writable mode (refused, not silently stripped);
- a symlink points inside its own tree: the runtime for a runtime archive, the top-level folder
  (dags/ or the project) for the release archive. The one exception is a runtime's interpreter
  link (venv-pack's bin/python3.11 -> the base Python), allowed only to the path its manifest
  records.

The structural rules (names once, nothing under a link) do not depend on resolving paths, so
they hold on Pythons whose data filter predates the 2025 fixes of its path resolution.
"""

from __future__ import annotations

import fnmatch
import posixpath
import shutil
import stat
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from platformkit.errors import PlatformError

REFUSED_MODES = stat.S_ISUID | stat.S_ISGID | stat.S_IWOTH
INTERPRETER_LINK = "bin/python*"
UNPACKED_NOWHERE = "/nonexistent/check"  # a root for checks by name alone


class Refused(PlatformError):
    """What came from outside breaks a rule; the message names the member or URL."""


# --- archives --------------------------------------------------------------------------------

class MemberPolicy:
    """A tarfile extraction filter (`tar.extractall(dest, filter=policy)`) for one archive.

    `links_confined_to_top_folder`: True for the release archive (a link stays in its project).
    `interpreter`: the base Python a venv-pack runtime links to (its manifest's python_path).
    After extraction, `names` holds every member seen, to compare with a manifest.
    """

    def __init__(self, *, links_confined_to_top_folder: bool = False, interpreter: str | None = None):
        self.links_confined_to_top_folder = links_confined_to_top_folder
        self.interpreter = interpreter
        self.names: set[str] = set()
        self.files: set[str] = set()
        self.links: set[str] = set()
        self.parents: set[str] = set()

    def __call__(self, member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        try:
            return self._filter(member, dest)
        except tarfile.FilterError as error:
            raise Refused(f"{member.name!r}: {error}") from None

    def _filter(self, member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        name = member.name
        if not name or name.startswith("/") or posixpath.normpath(name) != name or name.split("/")[0] == "..":
            raise Refused(f"{name!r}: a member name must be relative and normalised")
        if name in self.names and not (member.isreg() and name in self.files):
            # venv-pack writes pyvenv.cfg twice: a file may replace a file, nothing else may.
            raise Refused(f"{name!r}: appears twice in the archive")
        parents = [posixpath.dirname(name)]
        while parents[-1]:
            parents.append(posixpath.dirname(parents[-1]))
        if under := next((p for p in parents if p in self.links), None):
            raise Refused(f"{name!r}: lies under the link {under!r}")
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise Refused(f"{name!r}: a device, FIFO or other special file")
        if not member.issym() and member.mode & REFUSED_MODES:
            raise Refused(f"{name!r}: mode {member.mode:o} (setuid, setgid or world-writable)")
        if member.issym() and name in self.parents:
            raise Refused(f"{name!r}: a link replacing a folder of the archive")
        if member.islnk() and member.linkname not in self.files:
            raise Refused(f"{name!r}: a hard link to {member.linkname!r}, not a file earlier in the archive")

        if member.issym() and self.is_interpreter_link(member):
            # The data filter checks the name and mode; the target is the one the manifest allows.
            checked = tarfile.data_filter(member.replace(linkname=".", deep=False), dest)
            checked = checked.replace(linkname=member.linkname, deep=False)
        elif not (member.issym() or member.islnk()):
            # A file or folder is never unpacked through a link (the rules above), so its path
            # resolves by name alone: the data filter checks it against a root that does not
            # exist, which spares a walk of the real folders for each of thousands of members.
            checked = tarfile.data_filter(member, UNPACKED_NOWHERE)
        else:
            checked = tarfile.data_filter(member, dest)
            if member.issym() and self.links_confined_to_top_folder:
                top, _, rest = name.partition("/")
                if not rest:
                    raise Refused(f"{name!r}: a link at the top of the release")
                tarfile.data_filter(member.replace(name=rest, deep=False), str(Path(dest, top)))

        self.names.add(name)
        self.parents.update(parents)
        if member.isreg():
            self.files.add(name)
        elif member.issym():
            self.links.add(name)
        return checked

    def check(self, member: tarfile.TarInfo) -> None:
        """The policy for a member that is not unpacked (links then resolve by name alone)."""
        self(member, UNPACKED_NOWHERE)

    def is_interpreter_link(self, member: tarfile.TarInfo) -> bool:
        return (self.interpreter is not None and member.linkname == self.interpreter
                and fnmatch.fnmatchcase(member.name, INTERPRETER_LINK) and member.name.count("/") == 1)


def check_members(archive: Path, policy: MemberPolicy) -> None:
    """Apply the policy to every member without unpacking (`make archive`, before it writes)."""
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            policy.check(member)


# --- downloads -------------------------------------------------------------------------------

def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


class SameOriginCredentials(urllib.request.HTTPRedirectHandler):
    """Follows a redirect, sending the credentials on only when it stays on the same origin.

    urllib would copy every header set with add_header to wherever a redirect points; the
    credentials are set as unredirected headers instead, and re-added here for the same origin.
    A redirect from https to anything else, or to a scheme other than http(s), is refused.
    """

    def __init__(self, credentials: dict[str, str]):
        self.credentials = credentials

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        source, target = urlsplit(req.full_url), urlsplit(newurl)
        if target.scheme.lower() not in ("http", "https"):
            raise Refused(f"refused a redirect from {req.full_url} to {newurl}: not http(s)")
        if source.scheme.lower() == "https" and target.scheme.lower() != "https":
            raise Refused(f"refused a redirect from {req.full_url} to {newurl}: https to http")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and origin(req.full_url) == origin(newurl):
            for name, value in self.credentials.items():
                new.add_unredirected_header(name, value)
        return new


def download(url: str, target: Path, credentials: dict[str, str] | None = None, timeout: float = 60) -> None:
    """GET url into target. The credentials (headers) go to url's origin only, never further.

    Raises Refused for a URL or redirect the rule forbids, OSError for a failed download.
    """
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise Refused(f"refused {url}: only http and https URLs are fetched")
    credentials = credentials or {}
    request = urllib.request.Request(url)
    for name, value in credentials.items():
        request.add_unredirected_header(name, value)
    opener = urllib.request.build_opener(SameOriginCredentials(credentials))
    with opener.open(request, timeout=timeout) as response, target.open("wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)
