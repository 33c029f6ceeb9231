"""Result rows as Parquet, written atomically (a temporary file renamed into
place), with digests as binary, low-cardinality strings dictionary-encoded,
and the run's facts (tool version, argv, backend) in the schema metadata."""

import pyarrow as pa
import pyarrow.parquet as pq

from ..store.files import write_atomic
from .rows import arrow_schema


def table(rows, metadata):
    """rows (dicts of the rows.arrow_schema columns) as an Arrow table, metadata (str -> str) in its schema."""
    schema = arrow_schema(metadata)
    columns = {name: [row[name] for row in rows] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema)


def write_parquet(path, rows, metadata):
    """Write rows to path atomically: readers see the old file or the whole new one."""
    data = table(rows, metadata)
    write_atomic(path, lambda f: pq.write_table(data, f, compression="zstd"))
