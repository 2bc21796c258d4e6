"""What happens when a task fails for good: a log line always, a webhook when one is configured.

`dagkit.default_args()` sets `on_failure_callback=task_failed` on every task. The callback runs
in the failed task's process after its last try. It writes one line that says what failed
(``TASK FAILED dag=... task=... run=... try=... error=...``) and, when the connection
``FAILURE_WEBHOOK_CONN_ID`` exists, POSTs the same facts as JSON to it (Slack-compatible: the
body has a ``text`` field). Configure it like any connection, e.g.::

    AIRFLOW_CONN_FAILURE_WEBHOOK='{"conn_type": "http", "host": "https://hooks.example.org/T000/B000"}'

Headers a receiver needs (a token) go into the connection's extra as ``{"headers": {...}}`` and
are never logged. They go to the configured URL only: a redirect is not followed (a POST cannot be
re-sent to where a redirect points without urllib turning it into a body-less GET that would
still carry the headers), and is reported as the failure to fix the connection's URL. A webhook
that cannot be reached is logged, not raised: the task has already failed, and the alert must not
hide why.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

FAILURE_WEBHOOK_CONN_ID = "failure_webhook"
log = logging.getLogger("dagkit.alerts")


def failure_facts(context) -> dict:
    """The facts of a failed task instance, from the callback's context."""
    ti = context["ti"]
    error = context.get("exception")
    return {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "map_index": ti.map_index,
        "run_id": ti.run_id,
        "try_number": ti.try_number,
        "error": f"{type(error).__name__}: {error}" if error else "unknown",
    }


def failure_line(facts: dict) -> str:
    task = facts["task_id"] + (f"[{facts['map_index']}]" if facts["map_index"] >= 0 else "")
    return (f"TASK FAILED dag={facts['dag_id']} task={task} run={facts['run_id']} "
            f"try={facts['try_number']} error={facts['error']}")


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        # Neither URL is logged: a webhook's URL is often its secret.
        raise urllib.error.HTTPError(req.full_url, code, "a redirect, not followed: set the connection "
                                     "to the URL the webhook redirects to", headers, fp)


def post_alert(url: str, headers: dict[str, str], body: bytes) -> None:
    """POST to the webhook, and nowhere else; OSError when it does not answer 2xx."""
    request = urllib.request.Request(url, body, headers, method="POST")
    with urllib.request.build_opener(NoRedirects()).open(request, timeout=10):
        pass


def task_failed(context) -> None:
    """on_failure_callback of every task (see the module's docstring)."""
    facts = failure_facts(context)
    line = failure_line(facts)
    log.error(line)

    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(FAILURE_WEBHOOK_CONN_ID)
    except AirflowNotFoundException:
        return
    url = conn.host if "://" in (conn.host or "") else conn.get_uri()
    headers = {"Content-Type": "application/json", **conn.extra_dejson.get("headers", {})}
    body = json.dumps({"text": line, **facts}).encode()
    try:
        post_alert(url, headers, body)
        log.info("failure alert sent to the %s connection", FAILURE_WEBHOOK_CONN_ID)
    except OSError as error:
        log.error("failure alert to the %s connection failed: %s", FAILURE_WEBHOOK_CONN_ID, error)
