"""The algorithm's constants and scalar rules, as plain Python (the Spark code uses the same values)."""

from __future__ import annotations

import math
import re

# Wiki size at which the icon threshold switches from linear to logarithmic.
ICON_THRESHOLD_PIVOT = 50_000

LEAD_IMAGE_PROPS = ("page_image", "page_image_free")

# Lead images from other wikis whose lower-cased name contains one of these are not candidates.
WIKIPEDIA_EXCLUDED_SUBSTRINGS = (
    ".svg", "flag", "noantimage", "no_free_image", "image_manquante", "replace_this_image",
    "disambig", "regions", "map", "default", "defaut", "falta_imagem_", "imagena", "noimage",
    "noenzyimage",
)

# Items that are instances of these are not articles (disambiguation pages, years, lists, ...).
NON_ARTICLE_INSTANCES = (
    "Q4167410", "Q577", "Q13406463", "Q3186692", "Q14795564", "Q3311614", "Q101352", "Q82799",
    "Q29964144", "Q21199", "Q28920044", "Q28920052",
)

# Confidence ratings, best first.
RATINGS = ("high", "medium", "low")
SOURCE_RATING = {"wikidata": "high", "wikipedia": "medium", "commons": "low"}
MAX_CANDIDATES = 3

# Wikis that hold media and items rather than articles: never targets.
NON_ARTICLE_WIKIS = ("commonswiki", "wikidatawiki")

SNAPSHOT_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
WIKI_PATTERN = re.compile(r"^[a-z][a-z0-9_]*wiki$")


def icon_threshold(size: int) -> float:
    """How many namespace-0 pages must link a file for it to be an icon in a wiki of this size."""
    if size >= ICON_THRESHOLD_PIVOT:
        return (math.log10(size / ICON_THRESHOLD_PIVOT) + 1) * 15
    return max(size / ICON_THRESHOLD_PIVOT * 15, 3.75)


def is_article_page(instance_of: str | None) -> bool:
    return instance_of not in NON_ARTICLE_INSTANCES


def validate_snapshot(snapshot: str) -> str:
    """A monthly snapshot, YYYY-MM; a ValueError naming it otherwise."""
    if not SNAPSHOT_PATTERN.match(snapshot or ""):
        raise ValueError(f"snapshot {snapshot!r} is not a month in the form YYYY-MM (e.g. 2026-10)")
    return snapshot


def parse_wikis(value: str) -> list[str] | None:
    """'enwiki,dewiki' -> ['dewiki', 'enwiki']; 'all' -> None (every wiki in the input)."""
    if value.strip() == "all":
        return None
    wikis = sorted({w.strip() for w in value.split(",") if w.strip()})
    if not wikis:
        raise ValueError("no wikis given: name them (enwiki,dewiki) or say 'all'")
    bad = [w for w in wikis if not WIKI_PATTERN.match(w) or w in NON_ARTICLE_WIKIS]
    if bad:
        raise ValueError(f"not an article wiki name: {', '.join(bad)} (expected names like enwiki, dewiki)")
    return wikis
