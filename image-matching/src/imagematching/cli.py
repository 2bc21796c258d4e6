"""python -m imagematching --snapshot YYYY-MM --wikis enwiki,dewiki|all --input DIR --output DIR"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
import uuid
from datetime import datetime, timezone
from pathlib import Path

from imagematching import rules

# Spark settings used unless the config file says otherwise. No master here: a builder setting
# would override spark-submit's --master, and without one Spark runs local[*].
DEFAULT_SPARK_CONF = {
    "spark.sql.shuffle.partitions": "16",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="imagematching", description="Image candidates for unillustrated articles.")
    parser.add_argument("--snapshot", required=True, help="monthly snapshot, YYYY-MM")
    parser.add_argument("--wikis", default="all", help="comma-separated wiki names, or 'all' (default)")
    parser.add_argument("--input", required=True, type=Path, help="root of the input datasets")
    parser.add_argument("--output", required=True, type=Path, help="root of the outputs")
    parser.add_argument("--config", type=Path, help="TOML file with a [spark] table of Spark settings")
    parser.add_argument("--dataset-id", default=None, help="id of this run in the output (default: a new UUID)")
    args = parser.parse_args(argv)
    try:  # validated before Spark starts: a bad value costs no JVM
        rules.validate_snapshot(args.snapshot)
        args.wikis = rules.parse_wikis(args.wikis)
    except ValueError as error:
        parser.error(str(error))
    return args


def spark_conf(config: Path | None) -> dict[str, str]:
    conf = dict(DEFAULT_SPARK_CONF)
    if config is not None:
        with config.open("rb") as f:
            conf.update({k: str(v) for k, v in tomllib.load(f).get("spark", {}).items()})
    return conf


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Python workers run this interpreter unless spark.pyspark.python says otherwise (on a
    # cluster: ./venv/bin/python of the shipped runtime).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from imagematching import io, job

    builder = SparkSession.builder.appName(f"imagematching {args.snapshot}")
    for key, value in spark_conf(args.config).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    try:
        report = job.run(spark, job.Run(
            input=args.input, output=args.output, snapshot=args.snapshot, wikis=args.wikis,
            dataset_id=args.dataset_id or str(uuid.uuid4()),
            insertion_ts=datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None),
        ))
    except io.InputError as error:
        print(f"imagematching: error: {error}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(job.format_summary(report))
    print(f"summary: {args.output / 'summary' / f'snapshot={args.snapshot}.json'}")
    return 0
