"""One local Spark session for the suite, and tiny hand-written datasets in the data lake's schemas."""

from __future__ import annotations

import json
import os
import sys

import pytest

from imagematching import schemas


@pytest.fixture(scope="session")
def spark():
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]").appName("imagematching-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def claim(prop: str, value) -> dict:
    return {"mainSnak": {"property": prop, "datavalue": {"value": json.dumps(value)}}}


def entity(item: str, p18: str | None = None, p373: str | None = None, p31: str | None = None) -> tuple:
    claims = []
    if p18:
        claims.append(claim("P18", p18))
    if p373:
        claims.append(claim("P373", p373))
    if p31:
        claims.append(claim("P31", {"entity-type": "item", "id": p31}))
    return (item, "item", claims)


@pytest.fixture
def frames(spark):
    """frames(mediawiki_page=[...], ...) -> {dataset: DataFrame}, every dataset present (empty by default)."""
    def make(**rows):
        unknown = set(rows) - set(schemas.COLUMNS)
        assert not unknown, unknown
        return {name: spark.createDataFrame(rows.get(name, []), schemas.ddl(name)) for name in schemas.COLUMNS}
    return make
