"""python -m fakes: run both fake servers until interrupted; prints their URLs."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading

from . import fixtures
from .servers import start_fakes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fakes", description=__doc__)
    p.add_argument("--oai-port", type=int, default=0, help="0 = any free port")
    p.add_argument("--openalex-port", type=int, default=0, help="0 = any free port")
    p.add_argument("--records", type=int, default=100)
    p.add_argument("--page-size", type=int, default=100)
    p.add_argument("--base-date", type=dt.date.fromisoformat, default=fixtures.BASE_DATE,
                   help="datestamp of the first record (default %(default)s)")
    p.add_argument("--days", type=int, default=2, help="records are spread over this many days")
    p.add_argument("--api-key", help="OpenAlex: require this api_key")
    p.add_argument("--mailto", help="OpenAlex: require this mailto")
    p.add_argument("--fault", action="append", default=[],
                   help="[oai:|openalex:]kind[=value][@page][*times], repeatable (see fakes.servers)")
    args = p.parse_args(argv)
    oai, oa = start_fakes(args.records, args.oai_port, args.openalex_port, args.page_size,
                          args.api_key, args.mailto, args.base_date, args.days)
    specs = {"oai": [], "openalex": []}
    for f in args.fault:
        target, _, spec = f.rpartition(":") if f.split(":", 1)[0] in ("oai", "openalex") else ("oai", "", f)
        specs[target or "oai"].append(spec)
    try:
        oai.faults.set(specs["oai"])
        oa.faults.set(specs["openalex"])
    except ValueError as exc:
        p.error(str(exc))
    print(f"ARXLIVE_OAI_URL={oai.url}", flush=True)
    print(f"ARXLIVE_OPENALEX_URL={oa.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    oai.stop()
    oa.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
