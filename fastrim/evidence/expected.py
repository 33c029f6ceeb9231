"""The attested RIM a log is held to, and where it came from: a value given
explicitly (--rim, a row of --expected), a CCA token (--token, or the
sidecar X.token, believed only once checked), or the sidecar X.rim holding
hex. An explicit value beats a sidecar; a token beats a .rim file."""

import hmac
import os
from dataclasses import dataclass
from typing import NamedTuple, Optional

from ..errors import FastrimError, FileError, InputError, TokenError
from ..store.files import read_bounded
from ..store.objects import head_of, is_url
from . import jsontext

LOG_SUFFIXES = (".log", ".bin")
SIDECAR_SUFFIXES = (".rim", ".token")
RIM_SIZES = (32, 48, 64)  # SHA-256, SHA-384, SHA-512; or a shorter digest zero-padded to 48 or 64
_MAX_TOKEN_SIZE = 1 << 16  # real tokens are 1-2 KiB
_MAX_RIM_FILE = 1024


def rim_forms(rim):
    """The values that are the same RIM as a replayed digest: itself, and it
    followed only by zero bytes to 48 or 64 (the RMM keeps a measurement in
    a 64-byte field, and some emitters send the whole field)."""
    return [rim.ljust(width, b"\0") for width in sorted({len(rim), 48, 64}) if width >= len(rim)]


def same_rim(attested, rim):
    """True when attested is one of rim_forms(rim), compared in constant time."""
    return any(hmac.compare_digest(attested, form) for form in rim_forms(rim))


def parse_rim_hex(text, source):
    """An expected RIM given as hex (32, 48 or 64 bytes); source names it in errors."""
    cleaned = text.strip().lower()
    if cleaned.startswith("0x"):
        cleaned = cleaned[2:]
    try:
        value = bytes.fromhex(cleaned)
    except ValueError:
        raise InputError(f"{source} is not hex", code="input.bad_rim") from None
    if len(value) not in RIM_SIZES:
        raise InputError(f"{source} holds {len(value)} bytes, not a 32-, 48- or 64-byte RIM", code="input.bad_rim")
    return value


def sidecar_path(log_path, suffix):
    """X.rim (or X.token) beside X.log or X.bin."""
    stem, ext = os.path.splitext(log_path)
    return (stem if ext in LOG_SUFFIXES else log_path) + suffix


def sidecar_rim(log_path, objects=None):
    """The expected RIM from the sidecar X.rim of X.log, or None when there is none."""
    path = sidecar_path(log_path, ".rim")
    raw = head_of(path, _MAX_RIM_FILE, objects)
    return None if raw is None else parse_rim_hex(raw.decode("ascii", "replace"), path)


class ExpectedSource(NamedTuple):
    """Where to find a log's attested RIM: rim (bytes) given, else the token
    at token_path, else (with sidecars) X.token, else X.rim."""

    rim: Optional[bytes] = None
    token_path: Optional[str] = None
    sidecars: bool = True


@dataclass
class Attested:
    """The attested RIM found (None: there is none), where it came from
    (given, token, token-sidecar or sidecar), the checked token it came in,
    and the error that stopped reading it."""

    rim: Optional[bytes] = None
    source: Optional[str] = None
    token: object = None  # evidence.token.TokenResult
    error: Optional[FastrimError] = None


def read_attested(expected, log_path, platform_keys, objects=None):
    """The Attested value for the log at log_path; a token is checked against
    platform_keys (evidence.token.PlatformKey list). With objects (an
    ObjectStore), sidecars beside a log at a URL are objects too."""
    attested = Attested()
    try:
        _read(expected, (log_path, objects), platform_keys, attested)
    except FastrimError as exc:
        attested.error = exc
    return attested


def _read(expected, where, platform_keys, attested):
    log_path, objects = where
    if expected.rim is not None:
        attested.rim, attested.source = expected.rim, "given"
        return
    token_path, source = expected.token_path, "token"
    if token_path is None and expected.sidecars:
        token_path, source = sidecar_path(log_path, ".token"), "token-sidecar"
    raw = head_of(token_path, _MAX_TOKEN_SIZE + 1, objects) if token_path is not None else None
    if raw is not None:
        attested.source = source
        if len(raw) > _MAX_TOKEN_SIZE:
            raise TokenError(f"{token_path} is larger than {_MAX_TOKEN_SIZE} bytes", code="token.malformed")
        from . import token  # here: cbor2 and cryptography load only for logs that come with a token

        attested.token = token.verify_token(raw, platform_keys)
        attested.rim = attested.token.rim
    elif expected.sidecars:
        attested.rim = sidecar_rim(log_path, objects)
        attested.source = "sidecar" if attested.rim is not None else None


_MAX_EXPECTED_FILE = 1 << 30


def read_expected_file(path, objects=None):
    """{log name: RIM bytes} from an --expected file (or object, at a URL with
    objects): CSV with a header naming the columns log and rim, or JSON lines
    with those keys."""
    import csv  # here: only batch runs read CSV

    try:
        raw = objects.read(path, _MAX_EXPECTED_FILE) if objects is not None and is_url(path) else \
            read_bounded(path, _MAX_EXPECTED_FILE)
        text = raw.decode()
    except (OSError, UnicodeDecodeError) as exc:
        raise FileError(f"cannot read --expected {path}: {exc}", code="io.unreadable") from None
    if text.lstrip().startswith("{"):
        rows = [jsontext.loads(line, f"{path} line {number}", "input.bad_expected")
                for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    else:
        rows = list(csv.DictReader(text.splitlines()))
    expected = {}
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("log"), str) or not isinstance(row.get("rim"), str):
            raise InputError(f"{path} row {number} needs the columns log and rim", code="input.bad_expected")
        expected[row["log"]] = parse_rim_hex(row["rim"], f"{path} row {number}")
    return expected
