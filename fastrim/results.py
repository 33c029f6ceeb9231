"""Output stage: result rows (verify.Verdict.row) as Parquet or JSON lines.

Parquet is written atomically (a temporary file renamed into place), with
digests as binary, low-cardinality strings dictionary-encoded, and the tool
version, argv and backend in the schema metadata.
"""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from .files import write_atomic

_DICT = pa.dictionary(pa.int32(), pa.string())

SCHEMA = pa.schema([
    pa.field("log", pa.string(), nullable=False),
    pa.field("status", _DICT, nullable=False),
    ("error_code", _DICT),
    ("detail", pa.string()),
    ("hash_algo", _DICT),
    ("rim", pa.binary()),
    ("expected_rim", pa.binary()),
    ("rim_source", _DICT),
    ("vmm_name", _DICT),
    ("vmm_version", _DICT),
    ("ram_size", pa.uint64()),
    ("num_cpus", pa.uint32()),
    ("flags", pa.uint64()),
    ("s2sz", pa.uint8()),
    ("sve_vl", pa.uint8()),
    ("num_bps", pa.uint8()),
    ("num_wps", pa.uint8()),
    ("pmu_num_ctrs", pa.uint8()),
    ("images", pa.list_(pa.struct([
        ("description", pa.string()),
        ("base", pa.uint64()),
        ("size", pa.uint64()),
        ("digest", pa.binary()),
        ("reference", pa.string()),
    ]))),
    ("events", pa.uint32()),
    ("granules", pa.uint64()),
    ("bytes_hashed", pa.uint64()),
    ("cache_hits", pa.uint32()),
    ("memo_hits", pa.uint32()),
    ("reused", pa.bool_()),
    ("token_realm_signature", pa.bool_()),
    ("token_platform_signature", pa.bool_()),
    ("token_binding", pa.bool_()),
    ("token_platform_key", pa.string()),
    ("realm_profile", _DICT),
    ("realm_challenge", pa.binary()),
    ("realm_rpv", pa.binary()),
    ("realm_rems", pa.list_(pa.binary())),
    ("realm_hash_algo", _DICT),
    ("elapsed_ms", pa.float64()),
    ("backend", _DICT),
])


def jsonable(value):
    """value with bytes as lower-case hex, for JSON output."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def json_line(row):
    return json.dumps(jsonable(row))


def table(rows, metadata):
    """rows (dicts of SCHEMA's columns) as an Arrow table, metadata (str -> str) in its schema."""
    columns = {name: [row[name] for row in rows] for name in SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=SCHEMA.with_metadata(metadata))


def write_parquet(path, rows, metadata):
    """Write rows to path atomically: readers see the old file or the whole new one."""
    data = table(rows, metadata)
    write_atomic(path, lambda f: pq.write_table(data, f, compression="zstd"))
