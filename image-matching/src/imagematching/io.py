"""Reading the inputs and writing the outputs: the data layout other tools rely on.

    <input>/<dataset>/snapshot=<YYYY-MM>/*.parquet
    <output>/imagerec_prod/wiki=<wiki>/snapshot=<YYYY-MM>/*.parquet
    <output>/export/snapshot=<YYYY-MM>/prod-<wiki>-<YYYY-MM>-wd_image_candidates.tsv
    <output>/summary/snapshot=<YYYY-MM>.json
    <output>/report/snapshot=<YYYY-MM>.html, .json      the coverage report (coverage.py)
    <output>/_committed/snapshot=<YYYY-MM>.json      the completion marker (see commit.py)

Locations are Hadoop-FS URIs (storage.py). The writers here write a run's staging folder;
commit.py moves its files to the names above.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagematching import schemas
from imagematching.storage import Storage, join

DATASETS = tuple(schemas.COLUMNS)
EXPORT_COLUMNS = (
    "page_id", "page_title", "image_id", "confidence_rating", "source", "dataset_id", "insertion_ts",
    "wiki", "found_on",
)
# The exports' partition column while Spark writes them: the TSV keeps its own `wiki` column.
EXPORT_PARTITION = "export_wiki"


class InputError(Exception):
    """The input is not there or not in the expected layout; nothing was written."""


def dataset_uri(root: str, dataset: str, snapshot: str) -> str:
    return join(root, dataset, f"snapshot={snapshot}")


def partition_uri(output: str, wiki: str, snapshot: str) -> str:
    return join(output, "imagerec_prod", f"wiki={wiki}", f"snapshot={snapshot}")


def export_name(wiki: str, snapshot: str) -> str:
    return f"prod-{wiki}-{snapshot}-wd_image_candidates.tsv"


def export_uri(output: str, wiki: str, snapshot: str) -> str:
    return join(output, "export", f"snapshot={snapshot}", export_name(wiki, snapshot))


def summary_uri(output: str, snapshot: str) -> str:
    return join(output, "summary", f"snapshot={snapshot}.json")


def report_uri(output: str, snapshot: str, kind: str) -> str:
    """The coverage report: kind 'html' (the page) or 'json' (its numbers)."""
    return join(output, "report", f"snapshot={snapshot}.{kind}")


def event_log_uri(output: str) -> str:
    """Where Spark's event logs go unless configured: beside the outputs."""
    return join(output, "_spark-events")


def check_inputs(storage: Storage, root: str, snapshot: str) -> None:
    """Fail, naming the first thing missing, before Spark reads anything."""
    if not storage.is_dir(root):
        raise InputError(f"input folder {root} does not exist")
    for dataset in DATASETS:
        if not storage.is_dir(join(root, dataset)):
            raise InputError(f"dataset {dataset} is missing: no folder {join(root, dataset)}")
        partition = dataset_uri(root, dataset, snapshot)
        if not storage.is_dir(partition):
            available = [n.removeprefix("snapshot=") for n in storage.list(join(root, dataset)) if n.startswith("snapshot=")]
            raise InputError(f"dataset {dataset} has no snapshot {snapshot} (no folder {partition}; "
                             f"it has: {', '.join(available) or 'none'})")
        files = [n for n in storage.list(partition) if n.endswith(".parquet")]
        if not files:
            raise InputError(f"dataset {dataset} snapshot {snapshot} holds no parquet files ({partition})")
        # The job reads with the schema given (schemas.py), which would turn a missing column into
        # nulls; one file's footer tells.
        present = set(storage.parquet_columns(join(partition, files[0])))
        missing = [name for name, _ in schemas.COLUMNS[dataset] if name not in present]
        if missing:
            raise InputError(f"dataset {dataset} snapshot {snapshot} has no column {', '.join(missing)} "
                             f"({join(partition, files[0])} has: {', '.join(sorted(present))})")


def read_inputs(spark: SparkSession, storage: Storage, root: str, snapshot: str) -> dict[str, DataFrame]:
    check_inputs(storage, root, snapshot)
    return {name: spark.read.schema(schemas.ddl(name)).parquet(dataset_uri(root, name, snapshot)) for name in DATASETS}


def by_wiki(rows: DataFrame) -> DataFrame:
    """The rows as the outputs lay them out: each wiki in one partition (so one task writes each
    wiki's one file), sorted by page and position. The imagerec_prod write, the exports and the
    summary all read this one shuffle."""
    return rows.repartition("wiki").sortWithinPartitions("wiki", "page_id", "position")


def write_recommendations(rows: DataFrame, staging: str) -> str:
    """The run's rows (laid out by `by_wiki`) as <staging>/imagerec_prod/wiki=<wiki>/: one file per
    wiki, one Spark write."""
    folder = join(staging, "imagerec_prod")
    rows.write.mode("errorifexists").partitionBy("wiki").parquet(folder)
    return folder


def export_rows(rows: DataFrame) -> DataFrame:
    """The TSV's columns as strings, in file order: article pages only, nulls as empty strings,
    found_on comma-joined. From rows laid out by `by_wiki`: a wiki's lines come from one task, sorted."""
    return (
        rows.where("is_article_page")
        .select(*[
            F.coalesce(F.array_join("found_on", ","), F.lit("")).alias(c) if c == "found_on"
            else F.coalesce(F.col(c).cast("string"), F.lit("")).alias(c)
            for c in EXPORT_COLUMNS
        ], F.col("wiki").alias(EXPORT_PARTITION))
    )


def write_exports(storage: Storage, rows: DataFrame, staging: str, wikis: list[str], snapshot: str) -> dict[str, str]:
    """Each wiki's TSV (header line, tab-separated, no quoting) in <staging>/export/, by executors:
    one Spark write partitioned by wiki, then each wiki's one file renamed to its contract name.
    A wiki without rows gets the header line alone. Returns {wiki: staged file}."""
    parts = join(staging, "export-parts")
    (
        export_rows(rows).write.mode("errorifexists").partitionBy(EXPORT_PARTITION)
        # Exactly the old hand-written format: no quotes around values, empty strings as nothing,
        # spaces kept.
        .options(sep="\t", header=True, quote="", escapeQuotes=False, emptyValue="", nullValue="",
                 ignoreLeadingWhiteSpace=False, ignoreTrailingWhiteSpace=False, lineSep="\n", encoding="UTF-8")
        .csv(parts)
    )
    staged = {}
    for wiki in wikis:
        folder = join(parts, f"{EXPORT_PARTITION}={wiki}")
        files = [n for n in storage.list(folder) if n.startswith("part-")]
        if len(files) > 1:
            raise RuntimeError(f"the export of {wiki} came out as {len(files)} files, not one: {folder}")
        staged[wiki] = join(staging, "export", export_name(wiki, snapshot))
        if files:
            storage.rename(join(folder, files[0]), staged[wiki])
        else:
            storage.write_text(staged[wiki], "\t".join(EXPORT_COLUMNS) + "\n")
    storage.delete(parts)
    return staged
