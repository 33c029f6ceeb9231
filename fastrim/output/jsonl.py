"""Result rows as JSON lines: digests as lower-case hex, times in ISO 8601."""

import datetime
import json


def jsonable(value):
    """value with bytes as lower-case hex and times in ISO 8601, for JSON output."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def json_line(row):
    return json.dumps(jsonable(row))
