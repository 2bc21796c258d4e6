"""The algorithm as DataFrame transformations, one step of the spec each.

Every function takes DataFrames with the data lake's column names and returns a DataFrame;
none reads or writes anything. Columns that flow between steps: ``wiki`` (the target wiki),
``page_id``, ``page_title``, ``item_id``, ``image_id`` (a Commons file name, underscores).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from imagematching import rules

ARTICLE_NAMESPACE = 0
FILE_NAMESPACE = 6


def wiki_sizes(pages: DataFrame) -> DataFrame:
    """wiki, size (namespace-0, non-redirect pages) and the icon threshold of each wiki."""
    # One row per wiki: the plain-Python rule as a UDF costs nothing here.
    threshold = F.udf(rules.icon_threshold, "double", useArrow=False)
    return (
        articles(pages)
        .groupBy("wiki")
        .agg(F.count("*").alias("size"))
        .withColumn("threshold", threshold("size"))
    )


def articles(pages: DataFrame) -> DataFrame:
    """Namespace-0, non-redirect pages: wiki, page_id, page_title."""
    return pages.where(
        (F.col("page_namespace") == ARTICLE_NAMESPACE) & ~F.col("page_is_redirect")
    ).select(F.col("wiki_db").alias("wiki"), "page_id", "page_title")


def icons(imagelinks: DataFrame, sizes: DataFrame) -> DataFrame:
    """wiki, image_id of files linked from more than `threshold` distinct namespace-0 pages."""
    usage = (
        imagelinks.where(F.col("il_from_namespace") == ARTICLE_NAMESPACE)
        .groupBy(F.col("wiki_db").alias("wiki"), F.col("il_to").alias("image_id"))
        .agg(F.countDistinct("il_from").alias("pages"))
    )
    return usage.join(sizes, "wiki").where(F.col("pages") > F.col("threshold")).select("wiki", "image_id")


def unillustrated(
    pages: DataFrame, imagelinks: DataFrame, page_props: DataFrame, item_links: DataFrame, icon_files: DataFrame
) -> DataFrame:
    """Articles with a Wikidata item that link no non-icon file and have no lead image prop:
    wiki, page_id, page_title, item_id."""
    content_links = (
        imagelinks.select(F.col("wiki_db").alias("wiki"), F.col("il_from").alias("page_id"), F.col("il_to").alias("image_id"))
        .join(icon_files, ["wiki", "image_id"], "left_anti")
        .select("wiki", "page_id")
    )
    with_lead_image = page_props.where(F.col("pp_propname").isin(*rules.LEAD_IMAGE_PROPS)).select(
        F.col("wiki_db").alias("wiki"), F.col("pp_page").alias("page_id")
    )
    sitelinks = item_links.where(F.col("page_namespace") == ARTICLE_NAMESPACE).select(
        F.col("wiki_db").alias("wiki"), "page_id", "item_id"
    )
    return (
        articles(pages)
        .join(sitelinks, ["wiki", "page_id"])
        .join(content_links, ["wiki", "page_id"], "left_anti")
        .join(with_lead_image, ["wiki", "page_id"], "left_anti")
        .dropDuplicates(["wiki", "page_id"])
    )


def _claim_value(claims: str, prop: str):
    """The datavalue.value of the first claim of `prop` (a JSON string), or null."""
    matching = F.filter(claims, lambda c: c["mainSnak"]["property"] == prop)
    return F.try_element_at(matching, F.lit(1))["mainSnak"]["datavalue"]["value"]


def item_properties(entities: DataFrame) -> DataFrame:
    """item_id, p18 (image file), p373 (Commons category), instance_of (first P31 item id).

    Values are JSON: P18 and P373 a quoted string, P31 an object with an `id`. File and category
    names use underscores for spaces, as in MediaWiki.
    """
    def json_string(value):  # '"A b.jpg"' -> 'A b.jpg'
        return F.get_json_object(F.concat(F.lit('{"v":'), value, F.lit("}")), "$.v")

    return entities.where(F.col("typ") == "item").select(
        F.col("id").alias("item_id"),
        F.regexp_replace(json_string(_claim_value("claims", "P18")), " ", "_").alias("p18"),
        F.regexp_replace(json_string(_claim_value("claims", "P373")), " ", "_").alias("p373"),
        F.get_json_object(_claim_value("claims", "P31"), "$.id").alias("instance_of"),
    )


def with_item_properties(targets: DataFrame, properties: DataFrame) -> DataFrame:
    """The targets with their item's p18, p373 and instance_of (nulls for an item without them):
    the one join with the items, which the three candidate sources and the final rows share.
    An item appears once in wikidata_entity, so a target stays one row."""
    return targets.join(properties, "item_id", "left")


def commons_files(pages: DataFrame) -> DataFrame:
    """image_id, is_redirect, page_id of the File pages on Commons."""
    return pages.where((F.col("wiki_db") == "commonswiki") & (F.col("page_namespace") == FILE_NAMESPACE)).select(
        F.col("page_title").alias("image_id"), F.col("page_is_redirect").alias("is_redirect"), "page_id"
    )


def wikidata_candidates(targets: DataFrame) -> DataFrame:
    """The item's P18 image, unless its name contains 'flag'."""
    return (
        targets
        .where(F.col("p18").isNotNull() & ~F.lower("p18").contains("flag"))
        .select("wiki", "page_id", F.col("p18").alias("image_id"), F.lit("wikidata").alias("source"),
                F.lit(None).cast("double").alias("score"), F.array().cast("array<string>").alias("found_on"))
    )


def wikipedia_candidates(
    targets: DataFrame, page_props: DataFrame, item_links: DataFrame, files: DataFrame, placeholders: DataFrame
) -> DataFrame:
    """Lead images of the same item's pages in other wikis, ranked by how many wikis use them."""
    lead_images = (
        page_props.where(F.col("pp_propname").isin(*rules.LEAD_IMAGE_PROPS))
        .select(F.col("wiki_db").alias("other_wiki"), F.col("pp_page").alias("other_page"), F.col("pp_value").alias("image_id"))
        .join(
            item_links.where(F.col("page_namespace") == ARTICLE_NAMESPACE).select(
                F.col("wiki_db").alias("other_wiki"), F.col("page_id").alias("other_page"), "item_id"),
            ["other_wiki", "other_page"],
        )
        .select("item_id", "other_wiki", "image_id")
        .distinct()
    )
    name = F.lower("image_id")
    excluded = F.lit(False)
    for part in rules.WIKIPEDIA_EXCLUDED_SUBSTRINGS:
        excluded = excluded | name.contains(part)
    usable = (
        lead_images.where(~excluded)
        .join(files.select("image_id"), "image_id", "left_semi")
        .join(placeholders, "image_id", "left_anti")
    )
    return (
        targets.join(usable, "item_id")
        .where(F.col("other_wiki") != F.col("wiki"))
        .groupBy("wiki", "page_id", "image_id")
        .agg(F.count("*").cast("double").alias("score"), F.array_sort(F.collect_set("other_wiki")).alias("found_on"))
        .select("wiki", "page_id", "image_id", F.lit("wikipedia").alias("source"), "score", "found_on")
    )


def commons_candidates(
    targets: DataFrame, categorylinks: DataFrame, files: DataFrame, placeholders: DataFrame, snapshot: str,
) -> DataFrame:
    """Files in the item's P373 Commons category, up to three, chosen by a hash of the snapshot
    and the file name: the same answer on every run of a snapshot, a fresh pick the next month."""
    in_category = (
        categorylinks.where((F.col("wiki_db") == "commonswiki") & (F.col("cl_type") == "file"))
        .select(F.col("cl_from").alias("page_id"), F.col("cl_to").alias("p373"))
        .join(files.where(~F.col("is_redirect")), "page_id")
        .where(F.col("image_id").rlike(r"\.[A-Za-z0-9]+$"))
        .join(placeholders, "image_id", "left_anti")
        .select("p373", "image_id")
        .distinct()
    )
    pick = Window.partitionBy("wiki", "page_id").orderBy(F.xxhash64(F.lit(snapshot), "image_id"), "image_id")
    return (
        targets.where(F.col("p373").isNotNull())
        .join(in_category, "p373")
        .withColumn("pick", F.row_number().over(pick))
        .where(F.col("pick") <= rules.MAX_CANDIDATES)
        .select("wiki", "page_id", "image_id", F.lit("commons").alias("source"),
                (-F.col("pick")).cast("double").alias("score"), F.array().cast("array<string>").alias("found_on"))
    )


def best_candidates(candidates: DataFrame) -> DataFrame:
    """Each file once per article under its best source, then the best three per article:
    wikidata before wikipedia (more wikis first) before commons; ties by file name."""
    rank = F.when(F.col("source") == "wikidata", 0).when(F.col("source") == "wikipedia", 1).otherwise(2)
    # One shuffle for both windows: rows clustered by (wiki, page_id) are clustered by
    # (wiki, page_id, image_id) too, and the final join with the targets is on the same keys.
    ranked = candidates.repartition("wiki", "page_id").withColumn("source_rank", rank)
    per_file = Window.partitionBy("wiki", "page_id", "image_id").orderBy("source_rank", F.desc("score"))
    per_page = Window.partitionBy("wiki", "page_id").orderBy("source_rank", F.desc("score"), "image_id")
    return (
        ranked.withColumn("n", F.row_number().over(per_file)).where(F.col("n") == 1)
        .withColumn("position", F.row_number().over(per_page)).where(F.col("position") <= rules.MAX_CANDIDATES)
        .select("wiki", "page_id", "image_id", "source", "found_on", "position")
    )


def recommendations(targets: DataFrame, best: DataFrame) -> DataFrame:
    """One row per candidate, and one row with null image fields for an article without any."""
    rating = F.create_map(*[F.lit(x) for pair in rules.SOURCE_RATING.items() for x in pair])
    return (
        targets.join(best, ["wiki", "page_id"], "left")
        .select(
            "wiki", "page_id", "page_title", "image_id",
            rating[F.col("source")].alias("confidence_rating"),
            "source", "instance_of",
            (~F.coalesce(F.col("instance_of").isin(*rules.NON_ARTICLE_INSTANCES), F.lit(False))).alias("is_article_page"),
            F.coalesce("found_on", F.array().cast("array<string>")).alias("found_on"),
            F.coalesce("position", F.lit(1)).alias("position"),
        )
    )
