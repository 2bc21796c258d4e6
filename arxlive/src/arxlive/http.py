"""HTTP at the edge: one polite, retrying GET used by both clients.

Pure parts: `backoff_delay` (the schedule), `polite_wait`, `mask`. The retry loop is tenacity's;
the transport is requests (urllib3 underneath). urllib3's own Retry is not used for the loop
because it honours Retry-After without an upper bound and cannot retry errors that happen after
the headers (a connection dropped mid-body) or in the payload (malformed XML); one tenacity loop
covers all of them with the same bounded schedule.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

log = logging.getLogger("arxlive.http")

USER_AGENT = "arxlive/0.1 (+https://github.com/; harvesting politely)"


class TransientError(Exception):
    """Worth retrying: 503/429/5xx, dropped connection, timeout, unparsable payload."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class PermanentHTTPError(Exception):
    """A 4xx (other than 429) or similar: retrying will not help."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class RetriesExhausted(Exception):
    """The last transient error after every attempt; message says how many."""


def backoff_delay(attempt: int, retry_after: float | None, base: float, cap: float,
                  retry_after_max: float) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1).

    A server's Retry-After wins but never beyond retry_after_max; otherwise exponential
    base * 2**(attempt-1), at most cap.
    """
    if retry_after is not None and retry_after >= 0:
        return min(float(retry_after), retry_after_max)
    return min(base * (2 ** (attempt - 1)), cap)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unparsable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def polite_wait(last_request: float | None, now: float, delay: float) -> float:
    """Seconds to sleep so that requests start at least `delay` seconds apart."""
    if last_request is None:
        return 0.0
    return max(0.0, delay - (now - last_request))


def mask(text: str, secrets: list[str]) -> str:
    """Replace secret values, any api_key=... query value and any user:password@ in a URL by ***."""
    text = re.sub(r"(api_key=)[^&\s'\"]+", r"\1***", text)
    text = re.sub(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]+@", r"\1***@", text)
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


@dataclass
class Policy:
    max_attempts: int = 5
    base: float = 2.0
    cap: float = 120.0
    retry_after_max: float = 120.0
    timeout: float = 60.0
    delay: float = 0.0          # polite minimum gap between request starts

    @classmethod
    def from_config(cls, cfg, delay: float = 0.0) -> Policy:
        return cls(cfg.max_retries, cfg.backoff_base, cfg.backoff_max, cfg.retry_after_max, cfg.http_timeout, delay)


class PoliteSession:
    """One connection at a time, a minimum gap between requests, bounded retries.

    `before_attempt` is called before every HTTP attempt (the OpenAlex budget counts there);
    `check` turns a 200 response into a value or raises TransientError (e.g. malformed XML).
    """

    def __init__(self, policy: Policy, secrets: list[str] | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self.secrets = secrets or []
        self.sleep = sleep
        self.clock = clock
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.last_request: float | None = None
        self.attempts = 0

    def close(self):
        self.session.close()

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        delay = backoff_delay(state.attempt_number, getattr(exc, "retry_after", None),
                              self.policy.base, self.policy.cap, self.policy.retry_after_max)
        log.warning("attempt %d failed (%s); retrying in %.1fs", state.attempt_number, exc, delay)
        return delay

    def _once(self, url: str, params: dict, check, before_attempt):
        pause = polite_wait(self.last_request, self.clock(), self.policy.delay)
        if pause > 0:
            self.sleep(pause)
        if before_attempt is not None:
            before_attempt()
        self.last_request = self.clock()
        self.attempts += 1
        shown = mask(requests.Request("GET", url, params=params).prepare().url, self.secrets)
        log.info("GET %s", shown)
        try:
            resp = self.session.get(url, params=params, timeout=self.policy.timeout)
            body = resp.content  # a connection dropped mid-body raises here
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            raise TransientError(f"{type(exc).__name__} on {shown}: " + mask(str(exc), self.secrets)) from None
        if resp.status_code in (429, 500, 502, 503, 504):
            raise TransientError(f"HTTP {resp.status_code} from {shown}",
                                 retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                                 status=resp.status_code)
        if resp.status_code != 200:
            raise PermanentHTTPError(f"HTTP {resp.status_code} from {shown}: "
                                     + mask(body[:300].decode("utf-8", "replace"), self.secrets),
                                     status=resp.status_code)
        return check(body) if check else body

    def get(self, url: str, params: dict, check=None, before_attempt=None):
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(TransientError),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            return retrying(self._once, url, params, check, before_attempt)
        except TransientError as exc:
            raise RetriesExhausted(f"gave up after {self.policy.max_attempts} attempts: {exc}") from None
