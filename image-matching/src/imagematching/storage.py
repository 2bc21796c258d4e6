"""Files through Hadoop's FileSystem API, in the JVM that Spark runs: file://, hdfs://, s3a://, abfss://.

The job never touches the driver's disk with `pathlib` or `open`: on a cluster its input and
output live in HDFS or an object store, which only the JVM's Hadoop client can reach (with the
cluster's core-site.xml and the `spark.hadoop.*` settings). Locations are URI strings; a plain
path (``/data/out``, ``out``) means ``file://`` and is made absolute.
"""

from __future__ import annotations

import os
import re
from datetime import UTC
from pathlib import Path
from urllib.parse import urlsplit

# RFC 3986 scheme, then ':'. A Windows drive letter would match too; the job runs on Linux.
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class StorageError(Exception):
    """A location that cannot be reached or used: an unknown scheme, a refused rename."""


def to_uri(location: str | Path) -> str:
    """A Hadoop-FS URI without a trailing slash; a plain local path means file://, made absolute
    (its '..' resolved). Refused: an empty location, control characters, a password in the URI
    (they would reach logs and the run summary; they belong in the Hadoop configuration), and '..'
    in a URI. Error messages never repeat the credentials."""
    location = str(location)
    if not location.strip():
        raise StorageError("empty location: give a path or a URI such as hdfs://namenode/data")
    if any(ord(c) < 32 or ord(c) == 127 for c in location):
        raise StorageError(f"control characters in the location {location!r}")
    if not SCHEME.match(location):
        return Path(os.path.abspath(location)).as_uri()
    parts = urlsplit(location)
    # user:secret@host; abfss's container@account holds no secret and is the address itself
    if ":" in parts.netloc.rpartition("@")[0]:
        masked = f"{parts.scheme}://***@{parts.netloc.rpartition('@')[2]}{parts.path}"
        raise StorageError(f"credentials in the location {masked}: give them in the Hadoop configuration "
                           "(spark.hadoop.* or core-site.xml), never in the URI")
    if ".." in parts.path.split("/"):
        raise StorageError(f"'..' in the location {location}: give the folder itself")
    return location.rstrip("/") if location.rstrip("/").partition("://")[2] else location


def join(uri: str, *names: str) -> str:
    """uri/name/...: each name one path segment, never '..' or a separator."""
    for name in names:
        if not name or name in (".", "..") or "/" in name:
            raise StorageError(f"not a file or folder name: {name!r}")
    return "/".join([uri.rstrip("/"), *names])


class Storage:
    """One Hadoop Configuration; each call finds the FileSystem of its URI's scheme and authority
    (Hadoop caches the instances)."""

    def __init__(self, jvm, hadoop_conf):
        self._jvm = jvm
        self._conf = hadoop_conf

    @classmethod
    def of(cls, spark) -> Storage:
        """The FileSystem view of a running SparkSession (its Hadoop configuration)."""
        return cls(spark._jvm, spark._jsc.hadoopConfiguration())

    @classmethod
    def of_spark_conf(cls, jvm, settings: dict[str, str]) -> Storage:
        """A FileSystem view before (or without) a SparkContext: the Hadoop configuration Spark would
        build from these settings plus spark-submit's (``spark.hadoop.*`` included)."""
        conf = jvm.org.apache.spark.SparkConf()
        for key, value in settings.items():
            conf.set(key, value)
        return cls(jvm, jvm.org.apache.spark.deploy.SparkHadoopUtil.get().newConfiguration(conf))

    def _path(self, uri: str):
        from py4j.protocol import Py4JJavaError

        path = self._jvm.org.apache.hadoop.fs.Path(uri)
        try:
            return path, path.getFileSystem(self._conf)
        except Py4JJavaError as error:
            raise StorageError(f"cannot open {uri}: {error.java_exception.toString()}") from None

    def exists(self, uri: str) -> bool:
        path, fs = self._path(uri)
        return fs.exists(path)

    def is_dir(self, uri: str) -> bool:
        path, fs = self._path(uri)
        return fs.exists(path) and fs.getFileStatus(path).isDirectory()

    def list(self, uri: str) -> list[str]:
        """The names in a folder, sorted; empty when it does not exist."""
        path, fs = self._path(uri)
        if not fs.exists(path):
            return []
        return sorted(status.getPath().getName() for status in fs.listStatus(path))

    def stat(self, uri: str) -> dict:
        """Size in bytes of a file or a folder's files, and the latest modification time (UTC, ISO)."""
        from datetime import datetime

        path, fs = self._path(uri)
        files = fs.listFiles(path, True)
        size, latest = 0, 0
        while files.hasNext():
            status = files.next()
            size, latest = size + status.getLen(), max(latest, status.getModificationTime())
        modified = datetime.fromtimestamp(latest / 1000, UTC).isoformat(timespec="milliseconds")
        return {"bytes": size, "modified": modified}

    def mkdirs(self, uri: str) -> None:
        path, fs = self._path(uri)
        if not fs.mkdirs(path):
            raise StorageError(f"cannot create the folder {uri}")

    def delete(self, uri: str) -> None:
        """Remove a file or a folder with its contents; nothing when it does not exist."""
        path, fs = self._path(uri)
        fs.delete(path, True)

    def rename(self, source: str, target: str) -> None:
        """Move source to target, which must not exist (its parent is created)."""
        path, fs = self._path(source)
        target_path = self._jvm.org.apache.hadoop.fs.Path(target)
        fs.mkdirs(target_path.getParent())
        if not fs.rename(path, target_path):
            raise StorageError(f"cannot rename {source} to {target}")

    def replace(self, source: str, target: str) -> None:
        """Move source to target, removing what target held."""
        self.delete(target)
        self.rename(source, target)

    def write_text(self, uri: str, text: str) -> None:
        path, fs = self._path(uri)
        stream = fs.create(path, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def parquet_columns(self, uri: str) -> list[str]:
        """The top-level column names of a parquet file, from its footer (no Spark job)."""
        path, _ = self._path(uri)
        parquet = self._jvm.org.apache.parquet.hadoop
        reader = parquet.ParquetFileReader.open(parquet.util.HadoopInputFile.fromPath(path, self._conf))
        try:
            return [field.getName() for field in reader.getFileMetaData().getSchema().getFields()]
        finally:
            reader.close()

    def read_text(self, uri: str) -> str:
        path, fs = self._path(uri)
        stream = fs.open(path)
        try:
            return bytes(self._jvm.org.apache.hadoop.io.IOUtils.readFullyToByteArray(stream)).decode("utf-8")
        finally:
            stream.close()
