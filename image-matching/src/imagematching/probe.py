"""What the DAG checks without a Spark job: the inputs before a run, the committed run after it.

    python -m imagematching.probe inputs --input URI --snapshot YYYY-MM
    python -m imagematching.probe committed --output URI --snapshot YYYY-MM

Both go through the job's own FileSystem code (storage.py, io.check_inputs, commit.committed_summary)
in a JVM without a SparkContext: seconds, not a Spark application. `committed` prints the committed
run's summary as JSON. Exit code 0: fine; 2: missing or inconsistent, the reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys

from imagematching import rules
from imagematching.storage import StorageError, to_uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagematching.probe", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("inputs", "committed"))
    parser.add_argument("--snapshot", required=True, help="YYYY-MM")
    parser.add_argument("--input", help="root of the input datasets (inputs)")
    parser.add_argument("--output", help="root of the outputs (committed)")
    args = parser.parse_args(argv)
    location = args.input if args.what == "inputs" else args.output
    if not location:
        parser.error(f"{args.what} needs --{'input' if args.what == 'inputs' else 'output'}")
    try:
        rules.validate_snapshot(args.snapshot)
        location = to_uri(location)
    except (ValueError, StorageError) as error:
        parser.error(str(error))
    from pyspark.java_gateway import launch_gateway

    from imagematching import commit, io
    from imagematching.storage import Storage

    gateway = launch_gateway()
    try:
        storage = Storage.of_spark_conf(gateway.jvm, {})
        if args.what == "inputs":
            io.check_inputs(storage, location, args.snapshot)
            print(f"snapshot {args.snapshot}: every input dataset is there")
        else:
            print(json.dumps(commit.committed_summary(storage, location, args.snapshot)))
    except (io.InputError, StorageError) as error:
        print(f"imagematching: error: {error}", file=sys.stderr)
        return 2
    finally:
        gateway.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
