"""Configuration from the environment, validated once at start.

Every value comes from an ARXLIVE_* variable (see README.md). A missing or bad value raises
ConfigError whose message names the variable. The API key is never part of a repr or log line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

# arXiv's OAI-PMH base URL (primary since March 2025; export.arxiv.org/oai2 was the old one).
DEFAULT_OAI_URL = "https://oaipmh.arxiv.org/oai"
DEFAULT_OPENALEX_URL = "https://api.openalex.org"

# Without --production: a separate store and small limits (caps applied on top of the env).
TEST_MAX_PAGES = 20
TEST_BUDGET_DAILY_USD = 0.20
TEST_BUDGET_MONTHLY_USD = 2.00

# OpenAlex's published prices per call in US dollars, read on 2026-11-27 from its "Authentication &
# Pricing" page: singleton lookups free, list/filter calls $0.10 per 1,000, searches $1 per 1,000.
# Its docs do not say how a `filter=title.search:` call is billed: it is priced as a search here.
PRICES_READ_ON = "2026-11-27"
DEFAULT_PRICES = {"filter": 0.0001, "search": 0.001, "single": 0.0}

# Titles per search call: the answer holds at most 100 works (OpenAlex's largest page) for all of them.
MAX_TITLE_SEARCH_BATCH = 50

_SET_RE = re.compile(r"^[A-Za-z][A-Za-z0-9.-]*(:[A-Za-z0-9.-]+)*$")
_MAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ConfigError(ValueError):
    """A bad or missing configuration value; the message names the variable."""


@dataclass(frozen=True)
class Config:
    oai_url: str = DEFAULT_OAI_URL
    oai_set: str | None = None
    oai_delay: float = 3.0
    openalex_url: str = DEFAULT_OPENALEX_URL
    openalex_api_key: str | None = field(default=None, repr=False)
    mailto: str | None = None
    db_url: str | None = field(default=None, repr=False)
    test_db_url: str | None = field(default=None, repr=False)
    budget_daily_usd: float = 1.0
    budget_monthly_usd: float = 30.0
    prices: dict = field(default_factory=lambda: dict(DEFAULT_PRICES))
    title_grace_days: int = 7
    title_search_cap: int = 2
    title_search_batch: int = 20
    data_dir: Path = Path("data")
    max_retries: int = 5
    backoff_base: float = 2.0
    backoff_max: float = 120.0
    retry_after_max: float = 120.0
    http_timeout: float = 60.0
    openalex_max_dois: int = 100
    title_threshold: float = 90.0
    max_pages: int | None = None
    production: bool = False

    @property
    def mode(self) -> str:
        return "production" if self.production else "test"

    @property
    def mode_dir(self) -> Path:
        return self.data_dir / self.mode

    @property
    def store_url(self) -> str:
        url = self.db_url if self.production else self.test_db_url
        return url or f"sqlite:///{(self.mode_dir / 'arxlive.sqlite').resolve()}"

    def secrets(self) -> list[str]:
        """Values no log line, file or message may show: the API key and passwords in URLs."""
        found = [self.openalex_api_key] + [urlsplit(u).password for u in (self.oai_url, self.openalex_url)]
        return [s for s in found if s]


def _url(env, name, default):
    value = env.get(name, "").strip() or default
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}={value!r} is not an http(s) URL")
    return value.rstrip("/")


def _number(env, name, default, kind=float, minimum=0):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a{'n integer' if kind is int else ' number'}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be >= {minimum}")
    return value


def _db_url(env, name):
    raw = env.get(name, "").strip()
    if not raw:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(f"{name} is not a database URL (expected e.g. sqlite:///path, "
                          "postgresql+psycopg://user@host/db, mysql+pymysql://user@host/db)") from None
    if url.get_backend_name() not in ("sqlite", "postgresql", "mysql", "mariadb"):
        raise ConfigError(f"{name}: unsupported database {url.get_backend_name()!r} "
                          "(sqlite, postgresql, mysql or mariadb)")
    return raw


def _prices(env) -> dict:
    """ARXLIVE_PRICES=filter=0.0001,search=0.001,single=0 (dollars per call; kinds left out keep the default)."""
    raw = env.get("ARXLIVE_PRICES", "").strip()
    prices = dict(DEFAULT_PRICES)
    for item in filter(None, (x.strip() for x in raw.split(","))):
        kind, _, value = item.partition("=")
        if kind.strip() not in DEFAULT_PRICES:
            raise ConfigError(f"ARXLIVE_PRICES: unknown kind {kind.strip()!r} (kinds: {', '.join(DEFAULT_PRICES)})")
        prices[kind.strip()] = _number({"ARXLIVE_PRICES": value}, "ARXLIVE_PRICES", 0.0)
    return prices


# Variables whose meaning changed: a value left over from before must not be read in the new unit.
_RENAMED = {"ARXLIVE_BUDGET_DAILY": "ARXLIVE_BUDGET_DAILY_USD", "ARXLIVE_BUDGET_MONTHLY": "ARXLIVE_BUDGET_MONTHLY_USD"}


def load_config(env=None, production: bool = False) -> Config:
    """Read and validate every ARXLIVE_* variable; raise ConfigError naming the bad one."""
    env = os.environ if env is None else env
    for old, new in _RENAMED.items():
        if env.get(old, "").strip():
            raise ConfigError(f"{old} counted calls; the budget is now in dollars: set {new} instead")
    oai_set = env.get("ARXLIVE_OAI_SET", "").strip() or None
    if oai_set is not None and not _SET_RE.match(oai_set):
        raise ConfigError(f"ARXLIVE_OAI_SET={oai_set!r} is not an OAI set spec (e.g. cs, physics:hep-th)")
    mailto = env.get("ARXLIVE_MAILTO", "").strip() or None
    if mailto is not None and not _MAIL_RE.match(mailto):
        raise ConfigError(f"ARXLIVE_MAILTO={mailto!r} is not an e-mail address")
    api_key = env.get("ARXLIVE_OPENALEX_API_KEY", "").strip() or None
    if api_key is not None and not re.fullmatch(r"[\x21-\x7e]+", api_key):
        raise ConfigError("ARXLIVE_OPENALEX_API_KEY contains spaces or non-printable characters")
    data_dir = Path(env.get("ARXLIVE_DATA_DIR", "").strip() or "data")
    cfg = Config(
        oai_url=_url(env, "ARXLIVE_OAI_URL", DEFAULT_OAI_URL),
        oai_set=oai_set,
        oai_delay=_number(env, "ARXLIVE_OAI_DELAY", 3.0),
        openalex_url=_url(env, "ARXLIVE_OPENALEX_URL", DEFAULT_OPENALEX_URL),
        openalex_api_key=api_key,
        mailto=mailto,
        db_url=_db_url(env, "ARXLIVE_DB_URL"),
        test_db_url=_db_url(env, "ARXLIVE_TEST_DB_URL"),
        budget_daily_usd=_number(env, "ARXLIVE_BUDGET_DAILY_USD", 1.0),
        budget_monthly_usd=_number(env, "ARXLIVE_BUDGET_MONTHLY_USD", 30.0),
        prices=_prices(env),
        title_grace_days=_number(env, "ARXLIVE_TITLE_GRACE_DAYS", 7, int),
        title_search_cap=_number(env, "ARXLIVE_TITLE_SEARCH_CAP", 2, int),
        title_search_batch=_number(env, "ARXLIVE_TITLE_SEARCH_BATCH", 20, int, 1),
        data_dir=data_dir,
        max_retries=_number(env, "ARXLIVE_MAX_RETRIES", 5, int, 1),
        backoff_base=_number(env, "ARXLIVE_BACKOFF_BASE", 2.0),
        backoff_max=_number(env, "ARXLIVE_BACKOFF_MAX", 120.0),
        retry_after_max=_number(env, "ARXLIVE_RETRY_AFTER_MAX", 120.0),
        http_timeout=_number(env, "ARXLIVE_HTTP_TIMEOUT", 60.0, float, 0.1),
        openalex_max_dois=_number(env, "ARXLIVE_OPENALEX_MAX_DOIS", 100, int, 1),
        title_threshold=_number(env, "ARXLIVE_TITLE_THRESHOLD", 90.0),
        production=production,
    )
    if cfg.openalex_max_dois > 100:
        raise ConfigError("ARXLIVE_OPENALEX_MAX_DOIS must be <= 100 (OpenAlex's limit of OR values)")
    if cfg.title_search_batch > MAX_TITLE_SEARCH_BATCH:
        raise ConfigError(f"ARXLIVE_TITLE_SEARCH_BATCH must be <= {MAX_TITLE_SEARCH_BATCH} "
                          "(a batched search returns at most 100 works for all its titles)")
    if cfg.title_threshold > 100:
        raise ConfigError("ARXLIVE_TITLE_THRESHOLD must be between 0 and 100")
    if not production:
        cfg = replace(cfg, max_pages=TEST_MAX_PAGES,
                      budget_daily_usd=min(cfg.budget_daily_usd, TEST_BUDGET_DAILY_USD),
                      budget_monthly_usd=min(cfg.budget_monthly_usd, TEST_BUDGET_MONTHLY_USD))
    return cfg


def prepare_data_dir(cfg: Config) -> None:
    """Create the data directories; a failure names ARXLIVE_DATA_DIR."""
    try:
        for sub in ("", "runs", "exports"):
            (cfg.mode_dir / sub).mkdir(parents=True, exist_ok=True)
        probe = cfg.mode_dir / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"ARXLIVE_DATA_DIR={str(cfg.data_dir)!r} is not writable: {exc.strerror or exc}") from None


def describe(cfg: Config) -> dict:
    """The configuration for a log line: the API key only as set / not set, URLs without credentials."""
    from .http import mask

    out = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.name == "openalex_api_key":
            value = "***" if value else None
        elif f.name in ("db_url", "test_db_url") and value:
            value = mask_db_url(value)
        elif f.name in ("oai_url", "openalex_url"):
            value = mask(value, cfg.secrets())
        out[f.name] = str(value) if isinstance(value, Path) else value
    return out


def mask_db_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
