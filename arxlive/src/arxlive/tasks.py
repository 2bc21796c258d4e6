"""Luigi tasks: Harvest -> Load -> Enrich -> Export under RootTask.

    luigi --module arxlive.tasks RootTask --date 2026-11-20 [--production] [--from-date 2026-11-01] --local-scheduler

Each task writes its result as JSON under <data dir>/<mode>/runs/<date>/ (its Luigi target), so a
re-run of a date only runs what did not finish. RootTask has no output: it always runs and prints
the run summary. Configuration is read and checked when the first task is created: a bad value
exits 2 naming the variable; a second run on the same store exits 3 ("refusing to start").
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys

import luigi

from . import pipeline
from .config import Config, ConfigError, describe, load_config, prepare_data_dir
from .files import AlreadyRunning, DataDirLock, read_json, write_json
from .http import mask
from .store import Store

EXIT_CONFIG = 2
EXIT_LOCKED = 3

log = logging.getLogger("arxlive")


def _setup_logging():
    root = logging.getLogger()
    if not root.handlers:
        h = logging.StreamHandler(sys.stdout)
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(h)
        root.setLevel(logging.INFO)


_setup_logging()


class _Masking(logging.Filter):
    """Last line of defence: no log record carries the API key."""

    def __init__(self, secrets):
        super().__init__()
        self.secrets = secrets

    def filter(self, record):
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001
            return True
        masked = mask(msg, self.secrets)
        if masked != msg:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # tracebacks (Luigi logs a failed task's) are formatted here, masked, and cached
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info), self.secrets)
        return True


# One configuration, lock and store per process and mode.
_RUNTIME: dict[bool, tuple[Config, Store]] = {}
_LOCKS: list = []


def runtime(production: bool) -> tuple[Config, Store]:
    if production in _RUNTIME:
        return _RUNTIME[production]
    try:
        cfg = load_config(production=production)
        prepare_data_dir(cfg)
    except ConfigError as exc:
        print(f"arxlive: configuration error: {exc}", file=sys.stderr, flush=True)
        log.error("configuration error: %s", exc)
        sys.exit(EXIT_CONFIG)
    for h in logging.getLogger().handlers:
        h.addFilter(_Masking(cfg.secrets()))
    lock = DataDirLock(cfg.mode_dir / "arxlive.lock")
    try:
        lock.acquire(f"mode {cfg.mode}, argv {' '.join(sys.argv[1:])}")
    except AlreadyRunning as exc:
        print(f"arxlive: {exc}", file=sys.stderr, flush=True)
        log.error("%s", exc)
        sys.exit(EXIT_LOCKED)
    _LOCKS.append(lock)
    store = Store(cfg.store_url).create()
    if store.try_db_lock(f"arxlive-{cfg.mode}") is False:
        msg = f"another arxlive run holds the database lock of {describe(cfg)['db_url' if production else 'test_db_url']}; refusing to start"
        print(f"arxlive: {msg}", file=sys.stderr, flush=True)
        log.error("%s", msg)
        sys.exit(EXIT_LOCKED)
    log.info("arxlive %s mode, store %s, data dir %s", cfg.mode, describe(cfg)["db_url" if production else "test_db_url"]
             or "sqlite in data dir", cfg.mode_dir)
    _RUNTIME[production] = (cfg, store)
    return cfg, store


def release_all():
    """Tests that run tasks in-process call this to drop the lock and the stores."""
    for _, store in _RUNTIME.values():
        store.close()
    _RUNTIME.clear()
    while _LOCKS:
        _LOCKS.pop().release()


def _iso_date(value: str | None, name: str) -> str | None:
    if value in (None, ""):
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"--{name} must be YYYY-MM-DD, got {value!r}")
    dt.date.fromisoformat(value)
    return value


class ArxliveTask(luigi.Task):
    date = luigi.DateParameter(description="the run date (Airflow's ds)")
    production = luigi.BoolParameter(default=False, description="production store and limits")
    from_date = luigi.OptionalStrParameter(default=None, description="harvest from this date (YYYY-MM-DD)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _iso_date(self.from_date, "from-date")
        self.cfg, self.store = runtime(self.production)

    @property
    def rdir(self):
        return pipeline.run_dir(self.cfg, self.date)

    def target(self, name):
        return luigi.LocalTarget(str(self.rdir / name))

    def result(self, task_cls) -> dict:
        return read_json(self.clone(task_cls).output().path)


class Harvest(ArxliveTask):
    def output(self):
        return self.target("harvest.json")

    def run(self):
        m = pipeline.harvest(self.cfg, self.store, self.rdir, self.date, self.from_date)
        write_json(self.output().path, m)


class Load(ArxliveTask):
    def requires(self):
        return self.clone(Harvest)

    def output(self):
        return self.target("load.json")

    def run(self):
        m = pipeline.load(self.cfg, self.store, self.rdir, self.date, self.result(Harvest))
        write_json(self.output().path, m)


class Enrich(ArxliveTask):
    def requires(self):
        return self.clone(Load)

    def output(self):
        return self.target("enrich.json")

    def run(self):
        write_json(self.output().path, pipeline.enrich(self.cfg, self.store, self.date))


class Export(ArxliveTask):
    def requires(self):
        return self.clone(Enrich)

    def output(self):
        return self.target("summary.json")

    def run(self):
        s = pipeline.export(self.cfg, self.store, self.rdir, self.date, self.result(Harvest), self.result(Load),
                            self.result(Enrich))
        write_json(self.output().path, s)


class RootTask(ArxliveTask):
    """The whole chain for one date; always runs and prints the summary (no output of its own)."""

    def requires(self):
        return self.clone(Export)

    def complete(self):
        return False

    def run(self):
        summary = read_json(self.input().path)
        for line in pipeline.summary_lines(summary):
            print(line, flush=True)
