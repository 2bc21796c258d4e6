import os
import sys

import pytest
from pyspark.sql import SparkSession


@pytest.fixture(scope="session", autouse=True)
def spark():
    """One local Spark for the suite (the job's getOrCreate() finds it); its Python workers are
    this interpreter, which has the package (pyspark reads PYSPARK_PYTHON, not the builder's conf)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "1").getOrCreate())
    yield session
    session.stop()
