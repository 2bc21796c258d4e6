"""Write every input dataset for one snapshot, deterministically, at a chosen scale.

    python -m imagematching.generate --pages 10000 --wikis 10 --snapshot 2026-10 --output DIR [--seed 1]

Shape of the data (all from one seeded random generator, so the same arguments give the same
files): wiki sizes follow a Zipf-like skew (the first wiki is the largest); page j of every wiki
is about item Q(j+1), so small wikis cover the popular items and other wikis' lead images exist;
a share of articles is illustrated (a lead image prop and a content file); every article links
a few icons (flags, logos) that cross the icon threshold; some articles are redirects, some
pages are in other namespaces; items have P18 (sometimes a flag), P373 (a Commons category
whose files are on Commons), and P31 (mostly human, some disambiguation pages and lists);
Commons has placeholders, redirects and extension-less names among its files.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

from imagematching.io import DATASETS
from imagematching.rules import validate_snapshot

WIKI_NAMES = ("enwiki", "dewiki", "frwiki", "eswiki", "itwiki", "plwiki", "ptwiki", "nlwiki", "svwiki", "arwiki")
ICONS = ("Flag_of_Europe.svg", "Commons-logo.svg", "Wiktionary-logo.png", "Symbol_support_vote.png")
PLACEHOLDERS = ("No_image_available.svg", "Placeholder_person.jpg", "Noimage.png")
NON_ARTICLE_ITEMS = ("Q4167410", "Q13406463", "Q577")
ILLUSTRATED_SHARE = 0.55
FILES_PER_ITEM = 3


def wiki_names(count: int) -> list[str]:
    return [*WIKI_NAMES[:count], *(f"x{i}wiki" for i in range(len(WIKI_NAMES), count))]


def wiki_sizes(total_pages: int, wikis: int) -> list[int]:
    weights = [1 / (i + 1) for i in range(wikis)]
    return [max(20, round(total_pages * w / sum(weights))) for w in weights]


def item_file(item: int, k: int) -> str:
    return f"Item_{item}_photo_{k}.jpg"


def generate(pages: int, wikis: int, snapshot: str, seed: int = 1) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    tables: dict[str, list[dict]] = {name: [] for name in DATASETS}
    page, imagelinks, props, links = (tables[n] for n in (
        "mediawiki_page", "mediawiki_imagelinks", "mediawiki_page_props", "wikidata_item_page_link"))
    sizes = wiki_sizes(pages, wikis)
    items = max(sizes)

    for wiki, size in zip(wiki_names(wikis), sizes, strict=True):
        for j in range(size):
            page_id, item = j + 1, j + 1
            redirect = rng.random() < 0.04
            namespace = 1 if rng.random() < 0.03 else 0
            title = f"{wiki}_article_{j}" if namespace == 0 else f"Talk:{wiki}_article_{j}"
            page.append(dict(wiki_db=wiki, page_id=page_id, page_title=title, page_namespace=namespace,
                             page_is_redirect=redirect))
            if namespace != 0 or redirect:
                continue
            if rng.random() < 0.9:
                links.append(dict(item_id=f"Q{item}", wiki_db=wiki, page_id=page_id, page_namespace=0))
            for icon in rng.sample(ICONS, rng.randint(0, 2)):
                imagelinks.append(dict(wiki_db=wiki, il_from=page_id, il_to=icon, il_from_namespace=0))
            if rng.random() < ILLUSTRATED_SHARE:
                lead = item_file(item, rng.randrange(FILES_PER_ITEM)) if rng.random() < 0.9 else rng.choice(PLACEHOLDERS)
                imagelinks.append(dict(wiki_db=wiki, il_from=page_id, il_to=lead, il_from_namespace=0))
                props.append(dict(wiki_db=wiki, pp_page=page_id, pp_propname=rng.choice(("page_image", "page_image_free")),
                                  pp_value=lead))

    entities, categorylinks = tables["wikidata_entity"], tables["mediawiki_categorylinks"]
    commons_id = 0

    def commons_page(title: str, redirect: bool = False) -> int:
        nonlocal commons_id
        commons_id += 1
        page.append(dict(wiki_db="commonswiki", page_id=commons_id, page_title=title, page_namespace=6,
                         page_is_redirect=redirect))
        return commons_id

    for name in (*ICONS, *PLACEHOLDERS):
        commons_page(name)
    for item in range(1, items + 1):
        claims = []
        if rng.random() < 0.4:
            image = f"Flag of item {item}.svg" if rng.random() < 0.1 else item_file(item, 0).replace("_", " ")
            claims.append(claim("P18", json.dumps(image)))
        category = f"Item {item} pictures" if rng.random() < 0.3 else None
        if category:
            claims.append(claim("P373", json.dumps(category)))
        instance = rng.choice(NON_ARTICLE_ITEMS) if rng.random() < 0.05 else "Q5"
        claims.append(claim("P31", json.dumps({"entity-type": "item", "id": instance})))
        entities.append(dict(id=f"Q{item}", typ="item", claims=claims))
        for k in range(FILES_PER_ITEM):
            file_id = commons_page(item_file(item, k), redirect=rng.random() < 0.02)
            if category:
                categorylinks.append(dict(wiki_db="commonswiki", cl_from=file_id, cl_to=category.replace(" ", "_"),
                                          cl_type="file"))
        if category:
            extra = commons_page(f"Item_{item}_scan")  # no extension: never a candidate
            categorylinks.append(dict(wiki_db="commonswiki", cl_from=extra, cl_to=category.replace(" ", "_"), cl_type="file"))
    tables["placeholder_images"] = [dict(page_title=p) for p in PLACEHOLDERS]
    return tables


def claim(prop: str, value: str) -> dict:
    return {"mainSnak": {"property": prop, "datavalue": {"value": value}}}


def write(tables: dict[str, list[dict]], output: Path, snapshot: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from imagematching.schemas import arrow_schemas

    schemas = arrow_schemas()
    for name, rows in tables.items():
        folder = output / name / f"snapshot={snapshot}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schemas[name]), folder / "part-00000.parquet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagematching.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=10_000, help="article pages over all wikis (about)")
    parser.add_argument("--wikis", type=int, default=10, help="number of wikis")
    parser.add_argument("--snapshot", required=True, help="YYYY-MM")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    validate_snapshot(args.snapshot)
    tables = generate(args.pages, args.wikis, args.snapshot, args.seed)
    write(tables, args.output, args.snapshot)
    counts = ", ".join(f"{name} {len(rows)}" for name, rows in tables.items())
    print(f"wrote snapshot {args.snapshot} to {args.output}: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
