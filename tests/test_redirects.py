"""Credentials never follow a redirect to another origin; https never redirects to http.

Two real HTTP servers on loopback (two ports: two origins). `origin` answers what a registry
would, `other` records whatever reaches it. Checked for deploy (platformkit/untrusted.py's download,
which deploy and later fetchers share) and for the failure webhook (dags/dagkit/alerts.py).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import REPO, live

from platformkit.untrusted import Refused, download

sys.path.insert(0, str(REPO / "dags"))
from dagkit.alerts import post_alert  # noqa: E402

DEPLOY = ("-m", "platformkit")
CREDENTIALS = {"JOB-TOKEN": "job-token-7c1e", "PRIVATE-TOKEN": "private-token-52aa",
               "Authorization": "Bearer bearer-token-90d3"}


class Server:
    """One origin: answers from `routes` (path -> (status, headers, body)), records each request."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                if length := int(self.headers.get("Content-Length") or 0):
                    self.rfile.read(length)
                server.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, headers, body = server.routes.get(self.path, (404, {}, b"not found"))
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.routes[path] = (status, {"Location": location}, b"")

    def serve_file(self, path: str, file: Path) -> None:
        self.routes[path] = (200, {}, file.read_bytes())

    def sent_credentials(self) -> list[str]:
        """The credential header values that reached this server."""
        return [v for _, _, headers in self.requests for k, v in headers.items()
                if v in CREDENTIALS.values() or k in {c.lower() for c in CREDENTIALS}]


@pytest.fixture
def origin():
    server = Server()
    yield server
    server.httpd.shutdown()


@pytest.fixture
def other():
    server = Server()
    yield server
    server.httpd.shutdown()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def tls_origin(certificate):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server = Server(tls=context)
    yield server
    server.httpd.shutdown()


def deploy_url(url: str, home: Path, header: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *DEPLOY, "deploy", url, "--airflow-home", str(home)],
                          capture_output=True, text=True, env={**os.environ, "DEPLOY_AUTH_HEADER": header, **env})


# --- deploy --------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [f"{k}: {v}" for k, v in CREDENTIALS.items()], ids=list(CREDENTIALS))
def test_deploy_sends_its_header_to_its_origin_only(header, origin, other, archives, tmp_path):
    """A registry that hands the download to object storage on another host: the archive comes
    from there, the token stays with the registry."""
    archive = archives["v1"]
    for name in (archive.name, f"{archive.name}.sha256"):
        origin.redirect(f"/packages/{name}", f"{other.url}/storage/{name}")
        other.serve_file(f"/storage/{name}", archive.with_name(name))
    result = deploy_url(f"{origin.url}/packages/{archive.name}", tmp_path / "home", header)
    assert result.returncode == 0, result.stdout + result.stderr
    assert live(tmp_path / "home") == "releases/v1"
    assert [path for _, path, _ in other.requests] == [f"/storage/{archive.name}", f"/storage/{archive.name}.sha256"]
    assert other.sent_credentials() == []
    value = header.partition(": ")[2]
    assert [h.get(header.partition(":")[0].lower()) for _, _, h in origin.requests] == [value, value]
    assert value not in result.stdout + result.stderr


def test_a_same_origin_redirect_keeps_the_header(origin, archives, tmp_path):
    archive = archives["v1"]
    for name in (archive.name, f"{archive.name}.sha256"):
        origin.redirect(f"/old/{name}", f"/new/{name}", status=301)
        origin.serve_file(f"/new/{name}", archive.with_name(name))
    result = deploy_url(f"{origin.url}/old/{archive.name}", tmp_path / "home", "JOB-TOKEN: job-token-7c1e")
    assert result.returncode == 0, result.stderr
    assert [(path, h.get("job-token")) for _, path, h in origin.requests] == [
        (f"/old/{archive.name}", "job-token-7c1e"), (f"/new/{archive.name}", "job-token-7c1e"),
        (f"/old/{archive.name}.sha256", "job-token-7c1e"), (f"/new/{archive.name}.sha256", "job-token-7c1e")]


def test_https_to_http_redirect_is_refused(tls_origin, other, certificate, archives, tmp_path):
    archive = archives["v1"]
    tls_origin.redirect(f"/{archive.name}", f"{other.url}/{archive.name}")
    other.serve_file(f"/{archive.name}", archive)
    result = deploy_url(f"{tls_origin.url}/{archive.name}", tmp_path / "home", "PRIVATE-TOKEN: private-token-52aa",
                        SSL_CERT_FILE=str(certificate[0]))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"deploy: error: refused a redirect from {tls_origin.url}/{archive.name} "
                                     f"to {other.url}/{archive.name}: https to http")
    assert other.requests == []
    assert tls_origin.requests[0][2]["private-token"] == "private-token-52aa"
    assert not (tmp_path / "home/current").exists()


def test_https_download_works_and_keeps_the_header_on_its_origin(tls_origin, certificate, archives, tmp_path):
    archive = archives["v1"]
    for name in (archive.name, f"{archive.name}.sha256"):
        tls_origin.serve_file(f"/{name}", archive.with_name(name))
    result = deploy_url(f"{tls_origin.url}/{archive.name}", tmp_path / "home", "Authorization: Bearer bearer-token-90d3",
                        SSL_CERT_FILE=str(certificate[0]))
    assert result.returncode == 0, result.stderr
    assert {h["authorization"] for _, _, h in tls_origin.requests} == {"Bearer bearer-token-90d3"}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_download_drops_every_credential_across_origins(status, origin, other, tmp_path):
    origin.redirect("/file", f"{other.url}/file", status)
    other.routes["/file"] = (200, {}, b"payload")
    download(f"{origin.url}/file", tmp_path / "file", CREDENTIALS)
    assert (tmp_path / "file").read_bytes() == b"payload"
    assert other.sent_credentials() == []
    assert {k: origin.requests[0][2].get(k.lower()) for k in CREDENTIALS} == CREDENTIALS


def test_download_refuses_other_schemes(origin, tmp_path):
    origin.redirect("/file", "ftp://127.0.0.1/file")  # urllib itself refuses file:, not ftp:
    with pytest.raises(Refused, match="not http"):
        download(f"{origin.url}/file", tmp_path / "file", CREDENTIALS)
    with pytest.raises(Refused, match="only http and https"):
        download("file:///etc/passwd", tmp_path / "file")
    assert not (tmp_path / "file").exists()


# --- the failure webhook -------------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_failure_webhook_follows_no_redirect(status, origin, other):
    origin.redirect("/hooks/platform", f"{other.url}/collect", status)
    with pytest.raises(OSError, match="a redirect, not followed"):
        post_alert(f"{origin.url}/hooks/platform", {"Content-Type": "application/json", **CREDENTIALS}, b"{}")
    assert other.requests == []
    assert [(method, path) for method, path, _ in origin.requests] == [("POST", "/hooks/platform")]
    assert origin.requests[0][2]["authorization"] == CREDENTIALS["Authorization"]


def test_failure_webhook_posts_to_its_url(origin):
    origin.routes["/hooks/platform"] = (200, {}, b"ok")
    post_alert(f"{origin.url}/hooks/platform", {"Content-Type": "application/json", "X-Token": "t"}, b'{"text": "x"}')
    assert [(m, p, h["x-token"]) for m, p, h in origin.requests] == [("POST", "/hooks/platform", "t")]
