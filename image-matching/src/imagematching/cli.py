"""python -m imagematching --snapshot YYYY-MM --wikis enwiki,dewiki|all --input URI --output URI"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
import uuid
from datetime import UTC, datetime
from pathlib import Path

from imagematching import provenance, rules
from imagematching.storage import StorageError, to_uri

# Spark settings used unless the config file says otherwise. No master here: a builder setting
# would override spark-submit's --master, and without one Spark runs local[*].
DEFAULT_SPARK_CONF = {
    # Five Spark jobs per run, whatever the data's size: see conf/spark.toml.
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.autoBroadcastJoinThreshold": "-1",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="imagematching", description="Image candidates for unillustrated articles.")
    parser.add_argument("--snapshot", required=True, help="monthly snapshot, YYYY-MM")
    parser.add_argument("--wikis", default="all", help="comma-separated wiki names, or 'all' (default)")
    parser.add_argument("--input", required=True, help="root of the input datasets: a path or a Hadoop-FS URI")
    parser.add_argument("--output", required=True, help="root of the outputs: a path or a Hadoop-FS URI")
    parser.add_argument("--config", type=Path, help="TOML file with a [spark] table of Spark settings")
    parser.add_argument("--dataset-id", default=None, help="id of this run in the output (default: a new UUID)")
    parser.add_argument("--event-log", default=None,
                        help="URI of Spark's event logs (default: <output>/_spark-events; 'off' for none)")
    args = parser.parse_args(argv)
    try:  # validated before Spark starts: a bad value costs no JVM
        rules.validate_snapshot(args.snapshot)
        args.wikis = rules.parse_wikis(args.wikis)
        args.input, args.output = to_uri(args.input), to_uri(args.output)
        if args.event_log not in (None, "off"):
            args.event_log = to_uri(args.event_log)
        args.platform_facts = provenance.platform_facts()
    except (ValueError, StorageError) as error:
        parser.error(str(error))
    return args


def spark_conf(config: Path | None) -> dict[str, str]:
    conf = dict(DEFAULT_SPARK_CONF)
    if config is not None:
        with config.open("rb") as f:
            conf.update({k: str(v) for k, v in tomllib.load(f).get("spark", {}).items()})
    return conf


def log_phase(phase: str) -> None:
    print(f"imagematching: {phase}", file=sys.stderr, flush=True)


def event_log_conf(jvm, settings: dict[str, str], output: str, event_log: str | None) -> dict[str, str]:
    """Spark's event logs on, into the given URI or beside the outputs, unless the config file or
    spark-submit set them."""
    from imagematching import io

    if event_log == "off":
        return {"spark.eventLog.enabled": "false"}
    submitted = jvm.org.apache.spark.SparkConf()  # spark-submit's --conf settings and defaults
    if event_log is None and ("spark.eventLog.dir" in settings or submitted.contains("spark.eventLog.dir")):
        return {}
    return {"spark.eventLog.enabled": "true", "spark.eventLog.dir": to_uri(event_log or io.event_log_uri(output))}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Python workers run this interpreter unless spark.pyspark.python says otherwise (on a
    # cluster: ./venv/bin/python of the shipped runtime).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    from imagematching import io, job
    from imagematching.storage import Storage

    settings = spark_conf(args.config)
    try:
        output = to_uri(args.output)
        # The JVM first (spark-submit's, or a new one in a plain python): the event log folder must
        # exist before the SparkContext starts, and only Hadoop's FileSystem can create it.
        SparkContext._ensure_initialized()
        settings.update(event_log_conf(SparkContext._jvm, settings, output, args.event_log))
        if settings.get("spark.eventLog.enabled", "").lower() == "true":
            Storage.of_spark_conf(SparkContext._jvm, settings).mkdirs(settings["spark.eventLog.dir"])
    except StorageError as error:
        print(f"imagematching: error: {error}", file=sys.stderr)
        return 2
    builder = SparkSession.builder.appName(f"imagematching {args.snapshot}")
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    try:
        report = job.run(spark, job.Run(
            input=args.input, output=output, snapshot=args.snapshot, wikis=args.wikis,
            dataset_id=args.dataset_id or str(uuid.uuid4()),
            insertion_ts=datetime.now(UTC).replace(microsecond=0, tzinfo=None),
            platform_facts=args.platform_facts,
        ), on_phase=log_phase)
    except (io.InputError, StorageError) as error:
        print(f"imagematching: error: {error}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(job.format_summary(report))
    print(f"summary: {io.summary_uri(output, args.snapshot)}")
    return 0
