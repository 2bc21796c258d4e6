"""`arxlive run --date YYYY-MM-DD [--from YYYY-MM-DD --until YYYY-MM-DD] [--production]`

Checks the dates and the configuration, opens the store, takes its lock, then runs the Luigi
chain with luigi.build and maps the outcome to the exit status:

  0   every task done (a spent budget or an OpenAlex outage is not a failure: see `deferred`)
  2   bad input or configuration: a date, an ARXLIVE_* variable, an unreachable store
  3   another run holds the store
  30  a task failed (its error is in the log)

Every error is one line on stderr, `arxlive: ...`, with credentials masked.
"""

from __future__ import annotations

import argparse
import logging
import sys

import luigi
from luigi.execution_summary import LuigiStatusCode
from sqlalchemy.exc import SQLAlchemyError

from . import dates
from .config import ConfigError, describe, load_config, prepare_data_dir
from .http import mask
from .lock import StoreLock, StoreLocked
from .pipeline import utc_today
from .store import Store
from .tasks import RootTask

EXIT_OK, EXIT_INPUT, EXIT_LOCKED, EXIT_FAILED = 0, 2, 3, 30

log = logging.getLogger("arxlive")


class MaskingFilter(logging.Filter):
    """Last line of defence: no log record carries a secret, in its message or its traceback."""

    def __init__(self, secrets):
        super().__init__()
        self.secrets = secrets

    def filter(self, record):
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is left to the handler
            return True
        masked = mask(msg, self.secrets)
        if masked != msg:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # tracebacks (Luigi logs a failed task's) are formatted here, masked, and cached
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info), self.secrets)
        return True


def _setup_logging(secrets: list[str]):
    # Luigi would otherwise add its own handler, which does not mask secrets.
    luigi.configuration.get_config().set("core", "no_configure_logging", "true")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="arxlive", description="arXiv harvest + OpenAlex enrichment (Luigi).")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the chain for one date",
                         description="Harvest the date's OAI-PMH window, load, enrich, export.")
    run.add_argument("--date", required=True, help="the run's date, YYYY-MM-DD (not in the future)")
    run.add_argument("--from", dest="from_date", default="",
                     help="first OAI datestamp to harvest (default: the previous scheduled day minus one)")
    run.add_argument("--until", dest="until_date", default="", help="last OAI datestamp to harvest (default: --date)")
    run.add_argument("--production", action="store_true", help="the production store and limits")
    return p


class _Fail(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def run(args) -> int:
    try:
        run_date = dates.parse_date(args.date, "--date")
        frm = dates.parse_date(args.from_date, "--from") if args.from_date else None
        until = dates.parse_date(args.until_date, "--until") if args.until_date else None
        window = dates.harvest_window(run_date, utc_today(), frm, until)
        cfg = load_config(production=args.production)
        prepare_data_dir(cfg)
    except (dates.DateError, ConfigError) as exc:
        raise _Fail(EXIT_INPUT, str(exc)) from None
    _setup_logging(cfg.secrets())
    store_name = describe(cfg)["db_url" if cfg.production else "test_db_url"] or f"SQLite in {cfg.mode_dir}"
    store = Store(cfg.store_url)
    try:
        try:
            store.create()
        except SQLAlchemyError as exc:
            raise _Fail(EXIT_INPUT, f"cannot open the store {store_name}: "
                                    f"{mask(str(exc.orig or exc).splitlines()[0], cfg.secrets())}") from None
        what = f"run {run_date}, window {window[0]}..{window[1]}, mode {cfg.mode}"
        try:
            with StoreLock(store, f"arxlive-{cfg.mode}", what):
                log.info("arxlive %s: store %s, data dir %s", what, store_name, cfg.mode_dir)
                result = luigi.build([RootTask(date=run_date, window_from=window[0], window_until=window[1],
                                               production=cfg.production)],
                                     local_scheduler=True, detailed_summary=True)
        except StoreLocked as exc:
            raise _Fail(EXIT_LOCKED, str(exc)) from None
    finally:
        store.close()
    if result.status in (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY):
        return EXIT_OK
    log.error("run %s failed: %s", run_date, result.status.value[1])
    return EXIT_FAILED


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except _Fail as exc:
        print(f"arxlive: {mask(str(exc), [])}", file=sys.stderr, flush=True)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
