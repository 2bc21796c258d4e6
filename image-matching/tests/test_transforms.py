"""Each rule of the spec on a tiny hand-written input where the rule is visible."""

from __future__ import annotations

import pytest
from conftest import entity

from imagematching import transforms
from imagematching.job import compute


def page(wiki, page_id, title=None, ns=0, redirect=False):
    return (wiki, page_id, title or f"{wiki}_{page_id}", ns, redirect)


def link(wiki, page_id, file, ns=0):
    return (wiki, page_id, file, ns)


def sitelink(item, wiki, page_id):
    return (item, wiki, page_id, 0)


def commons(page_id, title, redirect=False):
    return ("commonswiki", page_id, title, 6, redirect)


def rows(df, *columns):
    return sorted(tuple(r[c] for c in columns) for r in df.collect())


def test_wiki_size_counts_namespace0_non_redirects(frames):
    f = frames(mediawiki_page=[page("enwiki", 1), page("enwiki", 2), page("enwiki", 3),
                               page("enwiki", 4, redirect=True), page("enwiki", 5, ns=1)])
    assert rows(transforms.wiki_sizes(f["mediawiki_page"]), "wiki", "size", "threshold") == [("enwiki", 3, 3.75)]


def test_icon_is_a_file_on_more_distinct_articles_than_the_threshold(frames):
    pages = [page("enwiki", i) for i in range(1, 6)]
    links = (
        [link("enwiki", i, "Logo.svg") for i in (1, 2, 3, 4)]            # 4 > 3.75: icon
        + [link("enwiki", i, "Photo.jpg") for i in (1, 2, 3)]           # 3: not an icon
        + [link("enwiki", 1, "Photo.jpg")]                              # same page twice counts once
        + [link("enwiki", i, "Talkicon.png", ns=1) for i in range(1, 6)]  # other namespaces don't count
    )
    f = frames(mediawiki_page=pages, mediawiki_imagelinks=links)
    sizes = transforms.wiki_sizes(f["mediawiki_page"])
    assert rows(transforms.icons(f["mediawiki_imagelinks"], sizes), "wiki", "image_id") == [("enwiki", "Logo.svg")]


def test_unillustrated_articles(frames):
    f = frames(
        mediawiki_page=[page("enwiki", i) for i in range(1, 6)] + [page("enwiki", 6, redirect=True)],
        mediawiki_imagelinks=[link("enwiki", 1, "Logo.svg"), link("enwiki", 2, "Photo.jpg")],
        mediawiki_page_props=[("enwiki", 3, "page_image_free", "Lead.jpg")],
        wikidata_item_page_link=[sitelink(f"Q{i}", "enwiki", i) for i in (1, 2, 3, 5, 6)],
    )
    icon_files = f["mediawiki_imagelinks"].sparkSession.createDataFrame([("enwiki", "Logo.svg")], "wiki string, image_id string")
    result = transforms.unillustrated(f["mediawiki_page"], f["mediawiki_imagelinks"], f["mediawiki_page_props"],
                                      f["wikidata_item_page_link"], icon_files)
    # 1: only an icon; 5: nothing at all. 2 links a photo, 3 has a lead image, 4 has no item, 6 is a redirect.
    assert rows(result, "page_id", "item_id") == [(1, "Q1"), (5, "Q5")]


def test_item_properties_parse_the_claims(frames):
    f = frames(wikidata_entity=[
        entity("Q1", p18="A photo.jpg", p373="Some category", p31="Q5"),
        entity("Q2"),
        ("Q3", "item", [{"mainSnak": {"property": "P31", "datavalue": {"value": '{"id": "Q577"}'}}},
                        {"mainSnak": {"property": "P31", "datavalue": {"value": '{"id": "Q5"}'}}}]),
        ("P9", "property", []),
    ])
    result = transforms.item_properties(f["wikidata_entity"])
    assert rows(result, "item_id", "p18", "p373", "instance_of") == [
        ("Q1", "A_photo.jpg", "Some_category", "Q5"),
        ("Q2", None, None, None),
        ("Q3", None, None, "Q577"),  # the first P31
    ]


def targets(spark, *items):
    return spark.createDataFrame([("enwiki", i + 1, f"T{i}", item) for i, item in enumerate(items)],
                                 "wiki string, page_id long, page_title string, item_id string")


def test_wikidata_candidate_is_p18_unless_a_flag(spark, frames):
    f = frames(wikidata_entity=[entity("Q1", p18="Portrait.jpg"), entity("Q2", p18="FLAG of Spain.svg"), entity("Q3")])
    result = transforms.wikidata_candidates(transforms.with_item_properties(
        targets(spark, "Q1", "Q2", "Q3"), transforms.item_properties(f["wikidata_entity"])))
    assert rows(result, "page_id", "image_id", "source") == [(1, "Portrait.jpg", "wikidata")]


def test_wikipedia_candidates_filtered_and_ranked_by_wikis(spark, frames):
    lead = {"dewiki": "Shared.jpg", "frwiki": "Shared.jpg", "itwiki": "Single.jpg", "eswiki": "Map_of_place.jpg",
            "ptwiki": "Drawing.svg", "nlwiki": "No_image_available.jpg", "svwiki": "Not_on_commons.jpg"}
    wikis = sorted(lead)
    f = frames(
        mediawiki_page=[commons(i, name) for i, name in enumerate(sorted(set(lead.values()) - {"Not_on_commons.jpg"}))],
        mediawiki_page_props=[(w, 10, "page_image", lead[w]) for w in wikis],
        wikidata_item_page_link=[sitelink("Q1", w, 10) for w in wikis],
        placeholder_images=[("No_image_available.jpg",)],
    )
    result = transforms.wikipedia_candidates(
        targets(spark, "Q1"), f["mediawiki_page_props"], f["wikidata_item_page_link"],
        transforms.commons_files(f["mediawiki_page"]),
        f["placeholder_images"].withColumnRenamed("page_title", "image_id"),
    )
    assert rows(result, "image_id", "score", "found_on") == [
        ("Shared.jpg", 2.0, ["dewiki", "frwiki"]),
        ("Single.jpg", 1.0, ["itwiki"]),
    ]


def test_commons_candidates_are_three_valid_files_chosen_per_snapshot(spark, frames):
    files = [commons(1, "A.jpg"), commons(2, "B.jpg"), commons(3, "C.png"), commons(4, "D.jpg"),
             commons(5, "Redirected.jpg", redirect=True), commons(6, "Placeholder.jpg"), commons(7, "No_extension")]
    f = frames(
        mediawiki_page=files,
        mediawiki_categorylinks=[("commonswiki", i, "Things_here", "file") for i in range(1, 8)]
        + [("commonswiki", 1, "Other", "subcat"), ("enwiki", 2, "Things_here", "file")],
        wikidata_entity=[entity("Q1", p373="Things here")],
        placeholder_images=[("Placeholder.jpg",)],
    )

    def pick(snapshot):
        result = transforms.commons_candidates(
            transforms.with_item_properties(targets(spark, "Q1"), transforms.item_properties(f["wikidata_entity"])),
            f["mediawiki_categorylinks"], transforms.commons_files(f["mediawiki_page"]),
            f["placeholder_images"].withColumnRenamed("page_title", "image_id"),
            snapshot)
        return [r.image_id for r in result.orderBy("score", ascending=False).collect()]

    chosen = pick("2026-10")
    assert len(chosen) == 3 and set(chosen) <= {"A.jpg", "B.jpg", "C.png", "D.jpg"}
    assert pick("2026-10") == chosen, "a re-run of a snapshot picks the same files in the same order"
    assert any(pick(s) != chosen for s in ("2026-11", "2026-12", "2027-01", "2027-02")), "months pick afresh"


def test_best_candidates_keep_a_file_once_under_its_best_source_and_top_three(spark):
    candidates = spark.createDataFrame([
        ("enwiki", 1, "Same.jpg", "commons", -1.0, []),
        ("enwiki", 1, "Same.jpg", "wikidata", None, []),
        ("enwiki", 1, "Popular.jpg", "wikipedia", 3.0, ["dewiki", "frwiki", "itwiki"]),
        ("enwiki", 1, "Rare.jpg", "wikipedia", 1.0, ["dewiki"]),
        ("enwiki", 1, "Cat.jpg", "commons", -2.0, []),
    ], "wiki string, page_id long, image_id string, source string, score double, found_on array<string>")
    result = transforms.best_candidates(candidates)
    assert rows(result, "position", "image_id", "source") == [
        (1, "Same.jpg", "wikidata"), (2, "Popular.jpg", "wikipedia"), (3, "Rare.jpg", "wikipedia")]


def test_compute_end_to_end_with_null_row_and_article_flag(frames):
    f = frames(
        mediawiki_page=[page("enwiki", 1, "Person"), page("enwiki", 2, "Disambig"), page("enwiki", 3, "Bare"),
                        page("dewiki", 1), commons(100, "Portrait.jpg")],
        wikidata_item_page_link=[sitelink("Q1", "enwiki", 1), sitelink("Q2", "enwiki", 2), sitelink("Q3", "enwiki", 3),
                                 sitelink("Q1", "dewiki", 1)],
        mediawiki_page_props=[("dewiki", 1, "page_image", "Portrait.jpg")],
        mediawiki_imagelinks=[link("dewiki", 1, "Portrait.jpg")],
        wikidata_entity=[entity("Q1", p18="Portrait.jpg", p31="Q5"), entity("Q2", p18="Amb.jpg", p31="Q4167410"),
                         entity("Q3", p31="Q5")],
    )
    result = compute(f, ["enwiki"], "2026-10")
    assert rows(result, "page_title", "image_id", "confidence_rating", "source", "is_article_page", "found_on") == [
        ("Bare", None, None, None, True, []),                     # no candidate: one null row
        ("Disambig", "Amb.jpg", "high", "wikidata", False, []),   # not an article page
        ("Person", "Portrait.jpg", "high", "wikidata", True, []),  # wikidata beats dewiki's lead image
    ]


@pytest.mark.parametrize("wikis", [["enwiki"], ["enwiki", "dewiki"]])
def test_compute_is_deterministic(frames, wikis):
    f = frames(
        mediawiki_page=[page("enwiki", 1), page("dewiki", 1)] + [commons(i, f"F{i}.jpg") for i in range(10, 16)],
        mediawiki_categorylinks=[("commonswiki", i, "Cat", "file") for i in range(10, 16)],
        wikidata_item_page_link=[sitelink("Q1", "enwiki", 1), sitelink("Q1", "dewiki", 1)],
        wikidata_entity=[entity("Q1", p373="Cat")],
    )
    first = rows(compute(f, wikis, "2026-10"), "wiki", "page_id", "image_id", "position")
    assert first == rows(compute(f, wikis, "2026-10"), "wiki", "page_id", "image_id", "position")
    assert len(first) == 3 * len(wikis)
