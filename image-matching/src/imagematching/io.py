"""Reading the inputs and writing the outputs: the data layout other tools rely on.

    <input>/<dataset>/snapshot=<YYYY-MM>/*.parquet
    <output>/imagerec_prod/wiki=<wiki>/snapshot=<YYYY-MM>/*.parquet
    <output>/export/snapshot=<YYYY-MM>/prod-<wiki>-<YYYY-MM>-wd_image_candidates.tsv
"""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

DATASETS = (
    "mediawiki_page", "mediawiki_imagelinks", "mediawiki_page_props", "mediawiki_categorylinks",
    "wikidata_item_page_link", "wikidata_entity", "placeholder_images",
)
EXPORT_COLUMNS = (
    "page_id", "page_title", "image_id", "confidence_rating", "source", "dataset_id", "insertion_ts",
    "wiki", "found_on",
)


class InputError(Exception):
    """The input is not there or not in the expected layout; nothing was written."""


def snapshot_dir(root: Path, dataset: str, snapshot: str) -> Path:
    return root / dataset / f"snapshot={snapshot}"


def check_inputs(root: Path, snapshot: str) -> None:
    """Fail, naming the first thing missing, before Spark reads anything."""
    if not root.is_dir():
        raise InputError(f"input folder {root} does not exist")
    for dataset in DATASETS:
        if not (root / dataset).is_dir():
            raise InputError(f"dataset {dataset} is missing: no folder {root / dataset}")
        partition = snapshot_dir(root, dataset, snapshot)
        if not partition.is_dir():
            available = sorted(p.name.removeprefix("snapshot=") for p in (root / dataset).glob("snapshot=*"))
            raise InputError(f"dataset {dataset} has no snapshot {snapshot} (no folder {partition}; "
                             f"it has: {', '.join(available) or 'none'})")
        if not any(partition.glob("*.parquet")):
            raise InputError(f"dataset {dataset} snapshot {snapshot} holds no parquet files ({partition})")


def read_inputs(spark: SparkSession, root: Path, snapshot: str) -> dict[str, DataFrame]:
    check_inputs(root, snapshot)
    return {name: spark.read.parquet(str(snapshot_dir(root, name, snapshot))) for name in DATASETS}


def write_recommendations(rows: DataFrame, output: Path) -> None:
    """Replace the (wiki, snapshot) partitions this run computed, and only those.

    Spark writes into a staging folder and moves the partitions into place when the job
    commits: a failed run leaves the previous output as it was, a re-run never duplicates rows.
    """
    (
        rows.write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("wiki", "snapshot")
        .parquet(str(output / "imagerec_prod"))
    )


def export_path(output: Path, wiki: str, snapshot: str) -> Path:
    return output / "export" / f"snapshot={snapshot}" / f"prod-{wiki}-{snapshot}-wd_image_candidates.tsv"


def export_rows(rows: DataFrame) -> DataFrame:
    """The TSV's columns as strings: article pages only, nulls as empty strings, found_on comma-joined."""
    return (
        rows.where("is_article_page")
        .orderBy("page_id", "position")
        .select(*[
            F.coalesce(F.array_join("found_on", ","), F.lit("")).alias(c) if c == "found_on"
            else F.coalesce(F.col(c).cast("string"), F.lit("")).alias(c)
            for c in EXPORT_COLUMNS
        ])
    )


def write_export(rows: DataFrame, path: Path) -> int:
    """Write one wiki's TSV (header line, tab-separated) to a temporary name, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    count = 0
    with partial.open("w", encoding="utf-8", newline="\n") as out:
        out.write("\t".join(EXPORT_COLUMNS) + "\n")
        for row in export_rows(rows).toLocalIterator():
            out.write("\t".join(row) + "\n")
            count += 1
    os.replace(partial, path)
    return count
