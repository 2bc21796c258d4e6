"""One run: read a snapshot, compute every target wiki's candidates in one Spark job, write, summarise."""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagematching import commit, coverage, io, provenance, rules, transforms
from imagematching.storage import Storage, join, to_uri

# Bytes of input per shuffle partition: adaptive execution's own target (its advisory partition
# size), which this job cannot use (conf/spark.toml turns adaptive execution off).
PARTITION_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Run:
    input: str | Path  # a Hadoop-FS URI; a plain path means file://
    output: str | Path
    snapshot: str
    wikis: list[str] | None  # None: every article wiki in the input
    dataset_id: str
    insertion_ts: datetime
    platform_facts: dict = field(default_factory=dict)  # the DAG's part of the provenance record


def shuffle_partitions(input_bytes: int, parallelism: int) -> int:
    """Shuffle partitions for a run over `input_bytes` of input: one per PARTITION_BYTES, and at
    least two tasks per core (`parallelism`), so that every core has work and a skewed task has
    others beside it. Fixed (adaptive execution would coalesce them), they are chosen per run:
    every one of a run's ~50 stages runs this many tasks, and a task's own cost is as large as its
    work on a small input."""
    return max(2 * parallelism, math.ceil(input_bytes / PARTITION_BYTES))


def target_sizes(pages: DataFrame, requested: list[str] | None) -> dict[str, int]:
    """{wiki: articles} of the target wikis, in order: one scan of mediawiki_page gives both the
    wikis in the input and the summary's article counts."""
    present = {r.wiki: r.size for r in transforms.wiki_sizes(pages).select("wiki", "size").collect()
               if r.wiki not in rules.NON_ARTICLE_WIKIS}
    missing = sorted(set(requested or ()) - set(present))
    if missing:
        raise io.InputError(f"wiki {', '.join(missing)} is not in the input (it has: {', '.join(sorted(present))})")
    return {wiki: present[wiki] for wiki in (sorted(present) if requested is None else requested)}


def compute(inputs: dict[str, DataFrame], wikis: list[str], snapshot: str) -> DataFrame:
    """Every step of the algorithm for the target wikis; one row per candidate (or null row)."""
    pages = inputs["mediawiki_page"]
    imagelinks = inputs["mediawiki_imagelinks"]
    page_props = inputs["mediawiki_page_props"]
    item_links = inputs["wikidata_item_page_link"]
    placeholders = inputs["placeholder_images"].select(F.col("page_title").alias("image_id"))
    in_targets = F.col("wiki_db").isin(*wikis)

    sizes = transforms.wiki_sizes(pages.where(in_targets))
    icon_files = transforms.icons(imagelinks.where(in_targets), sizes)
    unillustrated = transforms.unillustrated(
        pages.where(in_targets), imagelinks.where(in_targets), page_props.where(in_targets), item_links, icon_files)
    # The targets feed the three candidate sources and the final join: cached, so that they are
    # computed once rather than four times (run() drops the cache when the rows are written).
    targets = transforms.with_item_properties(
        unillustrated, transforms.item_properties(inputs["wikidata_entity"])).cache()
    files = transforms.commons_files(pages)
    candidates = (
        transforms.wikidata_candidates(targets)
        .unionByName(transforms.wikipedia_candidates(targets, page_props, item_links, files, placeholders))
        .unionByName(transforms.commons_candidates(
            targets, inputs["mediawiki_categorylinks"], files, placeholders, snapshot))
    )
    return transforms.recommendations(targets, transforms.best_candidates(candidates))


def summarise(rows: DataFrame, sizes: dict[str, int]) -> dict[str, dict]:
    """Per wiki: articles, unillustrated articles, those with candidates, candidates by confidence
    and by source, export rows. One aggregation (one Spark job), joined to the sizes here."""
    def count_of(column: str, value: str):
        return F.sum(F.when(F.col(column) == value, 1).otherwise(0)).alias(f"{column}_{value}")

    per_wiki = {row.wiki: row.asDict() for row in rows.groupBy("wiki").agg(
        F.countDistinct("page_id").alias("unillustrated"),
        F.countDistinct(F.when(F.col("image_id").isNotNull(), F.col("page_id"))).alias("with_candidates"),
        *[count_of("confidence_rating", r) for r in rules.RATINGS],
        *[count_of("source", s) for s in rules.SOURCE_RATING],
        F.sum(F.col("is_article_page").cast("int")).alias("export_rows"),
    ).collect()}
    summary = {}
    for wiki, size in sorted(sizes.items()):
        values = per_wiki.get(wiki, {})
        summary[wiki] = {
            "articles": size,
            "unillustrated": values.get("unillustrated", 0),
            "with_candidates": values.get("with_candidates", 0),
            "candidates": {r: values.get(f"confidence_rating_{r}", 0) for r in rules.RATINGS},
            "sources": {s: values.get(f"source_{s}", 0) for s in rules.SOURCE_RATING},
            "export_rows": values.get("export_rows", 0),
        }
    return summary


def executor_environment(spark: SparkSession) -> str:
    """The Python environment (sys.prefix) the executors run: shows which runtime they use."""
    return spark.sparkContext.parallelize([0], 1).map(lambda _: os.path.realpath(sys.prefix)).first()


def run(spark: SparkSession, job: Run, on_phase: commit.Phase = lambda phase: None) -> dict:
    """Compute and publish one snapshot; `on_phase` hears each step of the commit (the CLI logs them)."""
    rules.validate_snapshot(job.snapshot)
    started = provenance.now()
    storage = Storage.of(spark)
    source, output = to_uri(job.input), to_uri(job.output)
    inputs = io.read_inputs(spark, storage, source, job.snapshot)
    # the inputs as read: their sizes choose the shuffle partitions, and the provenance records them
    read = [{"uri": uri, **storage.stat(uri)} for uri in (io.dataset_uri(source, d, job.snapshot) for d in io.DATASETS)]
    if not spark.sparkContext.getConf().contains("spark.sql.shuffle.partitions"):  # unless configured
        spark.conf.set("spark.sql.shuffle.partitions",
                       str(shuffle_partitions(sum(i["bytes"] for i in read), spark.sparkContext.defaultParallelism)))
    sizes = target_sizes(inputs["mediawiki_page"], job.wikis)
    wikis = list(sizes)
    staging = commit.begin(storage, output, job.snapshot, on_phase)
    rows = io.by_wiki(
        compute(inputs, wikis, job.snapshot)
        .withColumn("dataset_id", F.lit(job.dataset_id))
        .withColumn("insertion_ts", F.lit(job.insertion_ts).cast("timestamp"))
    ).cache()
    staged_rows = io.write_recommendations(rows.drop("position"), staging)
    on_phase("wrote imagerec_prod")
    staged_exports = io.write_exports(storage, rows, staging, wikis, job.snapshot)
    on_phase("wrote exports")
    summary = summarise(rows, sizes)
    spark.catalog.clearCache()  # the rows and compute()'s intermediates
    for wiki in wikis:
        summary[wiki]["export"] = io.export_uri(output, wiki, job.snapshot)
    report = {
        "snapshot": job.snapshot,
        "dataset_id": job.dataset_id,
        "wikis": summary,
        "report": {kind: io.report_uri(output, job.snapshot, kind) for kind in ("html", "json")},
        "executor_environment": executor_environment(spark),
    }
    staged_summary = join(staging, "summary.json")
    storage.write_text(staged_summary, json.dumps(report, indent=2) + "\n")
    numbers = coverage.numbers(report)
    staged_report = {"html": join(staging, "report.html"), "json": join(staging, "report.json")}
    storage.write_text(staged_report["json"], coverage.to_json(numbers))
    storage.write_text(staged_report["html"], coverage.to_html(numbers))
    on_phase("wrote report")
    staged_provenance = write_provenance(storage, job, source, output, wikis, staging, staged_rows, read, started)
    moves = [
        *[(join(staged_rows, f"wiki={w}"), io.partition_uri(output, w, job.snapshot)) for w in wikis],
        (staged_provenance, join(export_folder(output, job.snapshot), provenance.SIDECAR)),
        *[(staged_exports[w], io.export_uri(output, w, job.snapshot)) for w in wikis],
        *[(staged, report["report"][kind]) for kind, staged in staged_report.items()],
        (staged_summary, io.summary_uri(output, job.snapshot)),
    ]
    marker = {"snapshot": job.snapshot, "dataset_id": job.dataset_id, "output": output, "wikis": wikis}
    commit.stage(storage, staging, moves, marker, on_phase)
    commit.publish(storage, staging, on_phase)
    return report


def export_folder(output: str, snapshot: str) -> str:
    """The folder of a snapshot's exports, as io lays them out (any wiki's file is in it)."""
    return io.export_uri(output, "any", snapshot).rsplit("/", 1)[0]


def write_provenance(storage: Storage, job: Run, source: str, output: str, wikis: list[str], staging: str,
                     staged_rows: str, inputs: list[dict], started: datetime) -> str:
    """The outputs' sidecars, staged: one in each wiki's partition folder (published with it) and
    one for the exports' folder (returned: it needs its own move)."""
    params = {"snapshot": job.snapshot, "wikis": wikis, "input": source, "output": output,
              "dataset_id": job.dataset_id}
    ended, host = provenance.now(), provenance.host()

    def write(uri: str, outputs: list[str]) -> None:
        record = provenance.record(job.platform_facts, params, inputs, outputs, started, ended, host)
        storage.write_text(uri, json.dumps(record, indent=2) + "\n")

    for wiki in wikis:
        write(join(staged_rows, f"wiki={wiki}", provenance.SIDECAR), [io.partition_uri(output, wiki, job.snapshot)])
    staged_exports = join(staging, f"export{provenance.SIDECAR}")
    write(staged_exports, [io.export_uri(output, wiki, job.snapshot) for wiki in wikis])
    return staged_exports


def format_summary(report: dict) -> str:
    lines = [f"image matching, snapshot {report['snapshot']} (dataset {report['dataset_id']})",
             f"{'wiki':<14}{'articles':>10}{'unillustr.':>12}{'with cand.':>12}{'high':>8}{'medium':>8}{'low':>8}"]
    for wiki, s in report["wikis"].items():
        c = s["candidates"]
        lines.append(f"{wiki:<14}{s['articles']:>10}{s['unillustrated']:>12}{s['with_candidates']:>12}"
                     f"{c['high']:>8}{c['medium']:>8}{c['low']:>8}")
    return "\n".join(lines)
