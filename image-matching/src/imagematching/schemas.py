"""The input datasets' schemas, as in Wikimedia's data lake (the columns this job uses)."""

import pyarrow as pa

CLAIMS = pa.list_(pa.struct([
    ("mainSnak", pa.struct([
        ("property", pa.string()),
        ("datavalue", pa.struct([("value", pa.string())])),
    ])),
]))

ARROW_SCHEMAS = {
    "mediawiki_page": pa.schema([("wiki_db", pa.string()), ("page_id", pa.int64()), ("page_title", pa.string()),
                                 ("page_namespace", pa.int32()), ("page_is_redirect", pa.bool_())]),
    "mediawiki_imagelinks": pa.schema([("wiki_db", pa.string()), ("il_from", pa.int64()), ("il_to", pa.string()),
                                       ("il_from_namespace", pa.int32())]),
    "mediawiki_page_props": pa.schema([("wiki_db", pa.string()), ("pp_page", pa.int64()),
                                       ("pp_propname", pa.string()), ("pp_value", pa.string())]),
    "mediawiki_categorylinks": pa.schema([("wiki_db", pa.string()), ("cl_from", pa.int64()), ("cl_to", pa.string()),
                                          ("cl_type", pa.string())]),
    "wikidata_item_page_link": pa.schema([("item_id", pa.string()), ("wiki_db", pa.string()), ("page_id", pa.int64()),
                                          ("page_namespace", pa.int32())]),
    "wikidata_entity": pa.schema([("id", pa.string()), ("typ", pa.string()), ("claims", CLAIMS)]),
    "placeholder_images": pa.schema([("page_title", pa.string())]),
}
