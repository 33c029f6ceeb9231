"""Result rows as Parquet, with digests as binary, low-cardinality strings
dictionary-encoded, and the run's facts (tool version, argv, backend) in
the schema metadata. Rows are written as they come, a row group at a time,
so that a batch's memory does not grow with its fleet; a file appears
whole or not at all (store.files.AtomicFile)."""

import os

import pyarrow as pa
import pyarrow.parquet as pq

from ..store.files import AtomicFile
from .rows import arrow_schema

ROW_GROUP_ROWS = 4096  # rows held in memory before they go to the file
PART_ROWS = 262144  # rows per file of a dataset (ParquetParts)


def table(rows, schema):
    """rows (dicts of the rows.arrow_schema columns) as an Arrow table of schema."""
    columns = {name: [row[name] for row in rows] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema)


class ParquetRows:
    """One Parquet file, written row group by row group as rows are add()ed;
    close() puts it at path, abort() leaves nothing."""

    def __init__(self, path, metadata):
        self.path = path
        self.count = 0
        self._schema = arrow_schema(metadata)
        self._rows = []
        self._target = AtomicFile(path)
        try:
            self._writer = pq.ParquetWriter(self._target.file, self._schema, compression="zstd")
        except BaseException:
            self._target.abort()
            raise

    def add(self, row):
        self._rows.append(row)
        self.count += 1
        if len(self._rows) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self):
        if self._rows:
            self._writer.write_table(table(self._rows, self._schema))
            self._rows = []

    def close(self):
        try:
            self._flush()
            self._writer.close()
        except BaseException:
            self._target.abort()
            raise
        self._target.commit()

    def abort(self):
        try:
            self._writer.close()
        except (OSError, pa.ArrowException):
            pass  # the file goes anyway
        self._target.abort()


class ParquetParts:
    """A dataset: files part-00000.parquet, part-00001.parquet, ... of up to
    PART_ROWS rows each, in directory, each with the same schema and
    metadata. Each part is whole once it is there; published(path) is called
    with each (to upload it). abort() removes the parts this run wrote."""

    def __init__(self, directory, metadata, published=None):
        self.directory = directory
        self._metadata = metadata
        self._published = published
        self._parts = []
        self._current = None

    def add(self, row):
        if self._current is None:
            path = os.path.join(self.directory, f"part-{len(self._parts):05d}.parquet")
            self._current = ParquetRows(path, self._metadata)
        self._current.add(row)
        if self._current.count >= PART_ROWS:
            self._finish_part()

    def _finish_part(self):
        part, self._current = self._current, None
        part.close()
        self._parts.append(part.path)
        if self._published is not None:
            self._published(part.path)

    def close(self):
        if self._current is not None:
            self._finish_part()

    def abort(self):
        if self._current is not None:
            self._current.abort()
            self._current = None
        for path in self._parts:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

