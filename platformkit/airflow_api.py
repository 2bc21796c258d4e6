"""A small client of Airflow 3's REST API (/api/v2) for the ops scripts and the platform tests.

It logs in with the simple auth manager's token endpoint (POST /auth/token) and turns what can
go wrong into one `AirflowError` whose message says what happened and where: Airflow not
reachable (naming the URL), authentication refused, an unknown object, a rejected request.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import requests

DEFAULT_URL = "http://localhost:8080"
DEFAULT_USER = "admin"


class AirflowError(Exception):
    """A failure to report to the user as one line, without a traceback."""


class NotFound(AirflowError):
    """HTTP 404: the DAG, run or backfill asked for does not exist."""


def generated_password(user: str, airflow_home: str | None = None) -> str | None:
    """The simple auth manager's generated password of `user`, if the file holds one."""
    home = Path(airflow_home or os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    path = home / "simple_auth_manager_passwords.json.generated"
    try:
        return json.loads(path.read_text()).get(user)
    except (OSError, ValueError):
        return None


def detail(response: requests.Response) -> str:
    """The error text of an API response: FastAPI's `detail`, flattened."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason
    found = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(found, list):  # validation errors: [{"loc": [...], "msg": "..."}]
        return "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in found)
    if isinstance(found, dict) and "reason" in found:
        return str(found["reason"])
    return str(found)


class AirflowAPI:
    def __init__(self, url: str, username: str, password: str | None, timeout: float = 30):
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self.session = requests.Session()

    def _send(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.ConnectionError:
            raise AirflowError(f"Airflow is not reachable at {self.url} (is it running? `make airflow` starts one)") from None
        except requests.Timeout:
            raise AirflowError(f"Airflow at {self.url} did not answer within {self.timeout:.0f} s") from None

    def login(self) -> None:
        if self.password is None:
            raise AirflowError(
                f"no password for user {self.username!r}: pass --password, set AIRFLOW_API_PASSWORD, or set "
                f"AIRFLOW_HOME to the Airflow whose simple_auth_manager_passwords.json.generated holds it")
        response = self._send("POST", "/auth/token", json={"username": self.username, "password": self.password})
        if response.status_code in (401, 403):
            raise AirflowError(f"authentication failed at {self.url} for user {self.username!r}: {detail(response)}")
        if response.status_code == 404:
            raise AirflowError(f"{self.url} has no /auth/token: is it an Airflow 3 API server with the simple auth manager?")
        if not response.ok:
            raise AirflowError(f"login at {self.url} failed: HTTP {response.status_code}: {detail(response)}")
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def call(self, method: str, path: str, retries: int = 5, **kwargs) -> dict:
        """One request under /api/v2; logs in on first use and again once if the token expired.

        HTTP 503 is retried: with SQLite (the embedded default) Airflow answers it when the database
        is locked by another component, and the request changed nothing."""
        if "Authorization" not in self.session.headers:
            self.login()
        for attempt in range(1, retries + 1):
            response = self._send(method, "/api/v2" + path, **kwargs)
            if response.status_code == 401:
                self.login()
                response = self._send(method, "/api/v2" + path, **kwargs)
            if response.status_code != 503 or attempt == retries:
                break
            print(f"Airflow is busy ({method} {path}: {detail(response)}); retrying in {attempt} s", file=sys.stderr)
            time.sleep(attempt)
        if response.status_code == 403:
            raise AirflowError(f"user {self.username!r} may not {method} {path}: {detail(response)}")
        if response.status_code == 404:
            raise NotFound(detail(response))
        if not response.ok:
            raise AirflowError(f"{method} {path}: HTTP {response.status_code}: {detail(response)}")
        return response.json()

    def get(self, path: str, **params) -> dict:
        return self.call("GET", path, params=params or None)

    def post(self, path: str, body: dict) -> dict:
        return self.call("POST", path, json=body)

    def patch(self, path: str, body: dict) -> dict:
        return self.call("PATCH", path, json=body)
