"""The input datasets' schemas, as in Wikimedia's data lake (the columns this job uses).

The job reads each dataset with its schema given (`ddl`): Spark would otherwise run one
schema-inference job per dataset. `io.check_inputs` checks first that the files have these
columns, since a given schema turns a missing column into nulls. The generator writes the same
schemas with pyarrow (`arrow_schemas`); tests/test_job.py checks that the two agree.
"""

CLAIMS = "array<struct<mainSnak: struct<property: string, datavalue: struct<value: string>>>>"

COLUMNS = {
    "mediawiki_page": (("wiki_db", "string"), ("page_id", "bigint"), ("page_title", "string"),
                       ("page_namespace", "int"), ("page_is_redirect", "boolean")),
    "mediawiki_imagelinks": (("wiki_db", "string"), ("il_from", "bigint"), ("il_to", "string"),
                             ("il_from_namespace", "int")),
    "mediawiki_page_props": (("wiki_db", "string"), ("pp_page", "bigint"), ("pp_propname", "string"),
                             ("pp_value", "string")),
    "mediawiki_categorylinks": (("wiki_db", "string"), ("cl_from", "bigint"), ("cl_to", "string"),
                                ("cl_type", "string")),
    "wikidata_item_page_link": (("item_id", "string"), ("wiki_db", "string"), ("page_id", "bigint"),
                                ("page_namespace", "int")),
    "wikidata_entity": (("id", "string"), ("typ", "string"), ("claims", CLAIMS)),
    "placeholder_images": (("page_title", "string"),),
}


def ddl(dataset: str) -> str:
    """The dataset's schema as a Spark DDL string."""
    return ", ".join(f"{name} {type_}" for name, type_ in COLUMNS[dataset])


def arrow_schemas() -> dict:
    """The same schemas for pyarrow (the generator's; pyarrow is not in the job's runtime)."""
    import pyarrow as pa

    claims = pa.list_(pa.struct([
        ("mainSnak", pa.struct([
            ("property", pa.string()),
            ("datavalue", pa.struct([("value", pa.string())])),
        ])),
    ]))
    types = {"string": pa.string(), "bigint": pa.int64(), "int": pa.int32(), "boolean": pa.bool_(), CLAIMS: claims}
    return {dataset: pa.schema([(name, types[type_]) for name, type_ in columns])
            for dataset, columns in COLUMNS.items()}
