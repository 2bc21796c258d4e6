"""`make archive` ships no secret: credential files stay out, a secret in any other file stops it.

Secrets are planted in the small `hello` checkout (and removed after each test). A finding names
the file, the line and the rule, never the value, and nothing is written to dist/.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import build_archive

ARCHIVE = ("-m", "platformkit", "archive")
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1xq8Jb3Wm0r\n-----END RSA PRIVATE KEY-----\n"
JWT = ("eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpjaSJ9"
       ".c2lnbmF0dXJlLXZhbHVlLWhlcmU")


@pytest.fixture
def plant(source):
    """plant(path, text): a file in the checkout for this test only."""
    planted = []

    def write(path: str, text: str) -> Path:
        file = source / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
        planted.append(file)
        return file

    yield write
    for file in planted:
        file.unlink()


def archive(source: Path, dist: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *ARCHIVE, "--root", source, "--version", "s1", "--dist", dist],
                          capture_output=True, text=True)


# (file, content, secret value, the finding as printed: file:line: rule)
FINDINGS = [
    ("dags/aws.py", 'import os\n\nAWS_SECRET_ACCESS_KEY = "q7Rk2VnB9xLp4WzT1mYc8HdJ3sQf6GaE0uNi5oKb"\n',
     "q7Rk2VnB9xLp4WzT1mYc8HdJ3sQf6GaE0uNi5oKb", "dags/aws.py:3: Secret Keyword"),
    ("hello/conf/notes.txt", "the deploy token: glpat-Zx8Kq2Lm9Wn4Rt7Yp1Vb\n", "glpat-Zx8Kq2Lm9Wn4Rt7Yp1Vb",
     "hello/conf/notes.txt:1: GitLab Token"),
    ("hello/conf/sa.json", json.dumps({"type": "service_account", "project_id": "p", "private_key": PRIVATE_KEY,
                                       "client_email": "ci@p.iam.gserviceaccount.com"}, indent=2),
     "MIIEowIBAAKCAQEA1xq8Jb3Wm0r", "hello/conf/sa.json:4: Private Key"),
    ("hello/conf/server.crt", PRIVATE_KEY, "MIIEowIBAAKCAQEA1xq8Jb3Wm0r", "hello/conf/server.crt:1: Private Key"),
    ("dags/.npmrc", "//registry.example.org/:_authToken=npm_Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcVbN9m\n",
     "npm_Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcVbN9m", "dags/.npmrc:1: NPM tokens"),
    ("hello/conf/cluster.yaml", f"apiVersion: v1\nkind: Config\nusers:\n- name: ci\n  user:\n    token: {JWT}\n",
     JWT, "hello/conf/cluster.yaml:6: JSON Web Token"),
    ("hello/conf/db.toml", '[store]\ndb_password = "Hk3nW9qZ2vLx7RtP"\n', "Hk3nW9qZ2vLx7RtP",
     "hello/conf/db.toml:2: Secret Keyword"),
]


@pytest.mark.parametrize("path, content, value, finding", FINDINGS, ids=[f[0] for f in FINDINGS])
def test_a_secret_stops_the_archive_naming_file_line_and_rule(path, content, value, finding, source, plant, tmp_path):
    plant(path, content)
    result = archive(source, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"archive: secret found: {finding}" in result.stderr.splitlines()
    assert result.stderr.strip().splitlines()[-1].startswith("archive: error: ")
    assert "Traceback" not in output
    assert value not in output
    assert list(tmp_path.iterdir()) == [], "nothing is written"


# Files that hold credentials by what they are: left out (and named), whatever they contain.
CREDENTIAL_FILES = ["hello/.pgpass", "dags/.netrc", "hello/conf/kubeconfig", "hello/.kube/config",
                    "hello/my-service-account.json", "hello/.aws/credentials", "hello/.docker/config.json",
                    "hello/infra/prod.tfvars", "dags/.env", "hello/.env.production", "hello/.envrc",
                    "hello/conf/tls.key", "hello/conf/tls.pem", "hello/id_ed25519"]


def test_credential_files_are_left_out_and_named(source, plant, tmp_path):
    canary = "CANARY-7d2e9f-not-a-real-secret"
    for path in CREDENTIAL_FILES:
        plant(path, f"{canary}\n")
    output = build_archive(source, "s2", tmp_path)
    with tarfile.open(output) as tar:
        names = set(tar.getnames())
        contents = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert not set(CREDENTIAL_FILES) & names
    assert canary.encode() not in contents


def test_left_out_files_are_named(source, plant, tmp_path):
    plant("hello/.aws/credentials", "[default]\n")
    result = archive(source, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "archive: left out hello/.aws/credentials: it looks like a credential" in result.stdout


def test_a_false_positive_is_allowed_inline(source, plant, tmp_path):
    plant("dags/allowed.py", 'EXAMPLE_PASSWORD = "Hk3nW9qZ2vLx7RtP"  # pragma: allowlist secret\n')
    plant("hello/docs.md", "`postgresql://user:Hk3nW9qZ2vLx7RtP@db/app` <!-- pragma: allowlist secret -->\n")
    result = archive(source, tmp_path)
    assert result.returncode == 0, result.stderr
    with tarfile.open(tmp_path / "platform-airflow-dags-s1.tar.gz") as tar:
        assert {"dags/allowed.py", "hello/docs.md"} <= set(tar.getnames())


def test_a_false_positive_in_the_baseline_is_allowed(source, plant, tmp_path):
    """The checkout's .secrets.baseline (detect-secrets' own format, written by its CLI) accepts
    findings it lists, by file and hashed value; any other finding still stops the archive."""
    plant("hello/docs.md", "connect with postgresql://user:Hk3nW9qZ2vLx7RtP@db/app\n")
    detect_secrets = Path(sys.executable).with_name("detect-secrets")
    baseline = subprocess.run([detect_secrets, "scan", "hello/docs.md"], cwd=source, capture_output=True,
                              text=True, check=True).stdout
    assert "hello/docs.md" in baseline and "Hk3nW9qZ2vLx7RtP" not in baseline
    assert archive(source, tmp_path).returncode == 1
    plant(".secrets.baseline", baseline)
    assert archive(source, tmp_path).returncode == 0
    plant("dags/other.py", 'password = "Zq8mP3vR6tW1yK4n"\n')
    result = archive(source, tmp_path / "again")
    assert result.returncode == 1 and "archive: secret found: dags/other.py:1: Secret Keyword" in result.stderr
