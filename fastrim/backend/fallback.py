"""Pure-Python backend: the bit-for-bit twin of the C core (csrc/).

Each function here follows its C counterpart rule by rule, so that both
backends give the same records, digests, error codes and offsets.
"""

import hashlib
import os
import struct

from .. import errors
from ..algorithms import BY_TCG_ID, SHA1, rim_algorithm
from ..errors import FramingFault as _F
from ..tcgdefs import EV_EFI_HCRTM_EVENT, EV_NO_ACTION
from .contract import (
    DESC_DATA,
    GRANULE_SIZE,
    MAX_PCR,
    MAX_SPEC_ID_ALGS,
    MEASUREMENT_SIZE,
    PCR_COUNT,
    PCR_NONE,
    Framing,
    LogFormat,
    RawDigest,
    RawEvent,
    descriptor,
    granule_span,
)

NAME = "python"


def hash_kernel(alg):
    return "hashlib"


def choose_kernels(cache_dir):
    """Nothing to choose: hashlib hashes every granule."""


_SPEC_ID_03 = b"Spec ID Event03\0"
_u16 = struct.Struct("<H").unpack_from
_u32 = struct.Struct("<I").unpack_from
_u32x3 = struct.Struct("<III").unpack_from


class _Fail(Exception):
    """A framing failure, turned into LogFormatError at the boundary."""


def _fail(kind, offset, value, limit):
    raise _Fail(kind, offset, value, limit)


def _padding_start(buf):
    zero_end = len(buf.rstrip(b"\x00"))
    ff_end = len(buf.rstrip(b"\xff"))
    return min(zero_end, ff_end)


def _pcr_ok(pcr):
    return pcr <= MAX_PCR or pcr == PCR_NONE


def _data_size(buf, rec, p, max_event_size):
    left = len(buf) - p
    if left < 4:
        _fail(_F.TRUNCATED, rec, 4, left)
    (size,) = _u32(buf, p)
    if size > max_event_size:
        _fail(_F.EVENT_TOO_LARGE, rec, size, max_event_size)
    if size > left - 4:
        _fail(_F.TRUNCATED, rec, size, left - 4)
    return size


def _legacy_record(buf, rec, max_event_size):
    left = len(buf) - rec
    if left < 32:
        _fail(_F.TRUNCATED, rec, 32, left)
    pcr, etype = struct.unpack_from("<II", buf, rec)
    if not _pcr_ok(pcr):
        _fail(_F.BAD_PCR, rec, pcr, MAX_PCR)
    size = _data_size(buf, rec, rec + 28, max_event_size)
    return RawEvent(rec, pcr, etype, rec + 32, size, (RawDigest(SHA1.tcg_id, rec + 8, SHA1.digest_size),))


def _spec_id(body):
    size = len(body)
    if size < 29:
        _fail(_F.BAD_SPEC_ID, 0, size, 29)
    (n,) = _u32(body, 24)
    if n == 0 or n > MAX_SPEC_ID_ALGS:
        _fail(_F.BAD_SPEC_ID, 0, n, MAX_SPEC_ID_ALGS)
    if 28 + 4 * n + 1 > size:
        _fail(_F.BAD_SPEC_ID, 0, 28 + 4 * n + 1, size)
    algs = []
    for i in range(n):
        alg, dsize = struct.unpack_from("<HH", body, 28 + 4 * i)
        known = BY_TCG_ID.get(alg)
        if alg == 0 or dsize == 0 or dsize > MEASUREMENT_SIZE or any(alg == a for a, _ in algs) \
                or (known is not None and known.pcr_replay and known.digest_size != dsize):
            _fail(_F.BAD_SPEC_ID, 0, alg, dsize)
        algs.append((alg, dsize))
    vendor = body[28 + 4 * n]
    if 28 + 4 * n + 1 + vendor > size:
        _fail(_F.BAD_SPEC_ID, 0, 28 + 4 * n + 1 + vendor, size)
    return tuple(algs)


def _agile_record(buf, rec, algs, sizes, max_event_size):
    left = len(buf) - rec
    if left < 12:
        _fail(_F.TRUNCATED, rec, 12, left)
    pcr, etype, count = _u32x3(buf, rec)
    if not _pcr_ok(pcr):
        _fail(_F.BAD_PCR, rec, pcr, MAX_PCR)
    if count > len(algs):
        _fail(_F.TOO_MANY_DIGESTS, rec, count, len(algs))
    p = rec + 12
    digests = []
    for i in range(count):
        if len(buf) - p < 2:
            _fail(_F.TRUNCATED, rec, 2, len(buf) - p)
        (alg,) = _u16(buf, p)
        dsize = sizes.get(alg, 0)
        # QEMU's EV_NO_ACTION events carry algId 0 with the size of the
        # Spec ID algorithm in the same position.
        if dsize == 0 and alg == 0 and etype == EV_NO_ACTION:
            dsize = algs[i][1]
        if dsize == 0:
            _fail(_F.UNKNOWN_ALG, rec, alg, 0)
        if len(buf) - p - 2 < dsize:
            _fail(_F.TRUNCATED, rec, dsize, len(buf) - p - 2)
        digests.append(RawDigest(alg, p + 2, dsize))
        p += 2 + dsize
    size = _data_size(buf, rec, p, max_event_size)
    return RawEvent(rec, pcr, etype, p + 4, size, tuple(digests))


def frame(buf, max_event_size):
    buf = bytes(buf)  # the C twin reads in place; here one copy keeps it simple
    try:
        return _frame(buf, max_event_size)
    except _Fail as failure:
        raise errors.framing_error(*failure.args) from None


def _frame(buf, max_event_size):
    pad = _padding_start(buf)
    if pad == 0:
        _fail(_F.EMPTY, 0, len(buf), 0)
    first = _legacy_record(buf, 0, max_event_size)
    events = [first]
    body = buf[first.data_offset : first.data_offset + first.data_size]
    agile = first.type == EV_NO_ACTION and body[:16] == _SPEC_ID_03
    algs = _spec_id(body) if agile else ((SHA1.tcg_id, SHA1.digest_size),)
    sizes = dict(algs)
    zero_record = b"\0" * (16 if agile else 32)
    rec = first.data_offset + first.data_size
    while rec < pad:
        if buf.startswith(zero_record, rec):
            break
        if agile:
            event = _agile_record(buf, rec, algs, sizes, max_event_size)
        else:
            event = _legacy_record(buf, rec, max_event_size)
        events.append(event)
        rec = event.data_offset + event.data_size
    fmt = LogFormat.CRYPTO_AGILE if agile else LogFormat.SHA1_LEGACY
    return Framing(fmt.label, algs, rec, events)


_STARTUP_LOCALITY = b"StartupLocality\0"


def startup_locality(buf, framing):
    locality = None
    for event in framing.events:
        if event.type == EV_EFI_HCRTM_EVENT:
            return 4
        if locality is None and event.type == EV_NO_ACTION and event.pcr == 0 and event.data_size == 17:
            data = bytes(buf[event.data_offset : event.data_offset + 17])
            if data.startswith(_STARTUP_LOCALITY):
                locality = data[16]
    return locality or 0


def pcr_replay(buf, framing, alg, size, locality):
    known = BY_TCG_ID.get(alg)
    if known is None or not known.pcr_replay or size != known.digest_size:
        return None
    try:
        known.new()
    except ValueError:  # not in this Python's OpenSSL (SM3)
        return None
    pcrs = [bytes(size)] * PCR_COUNT
    for i in range(17, 23):
        pcrs[i] = b"\xff" * size
    pcrs[0] = bytes(size - 1) + bytes([locality])
    extended = 0
    view = memoryview(buf)
    for event in framing.events:
        if event.type == EV_NO_ACTION or event.pcr > MAX_PCR:
            continue
        for digest in event.digests:
            if digest.alg == alg and digest.size == size:
                h = known.new(pcrs[event.pcr])
                h.update(view[digest.offset : digest.offset + size])
                pcrs[event.pcr] = h.digest()
                extended |= 1 << event.pcr
                break
    return b"".join(pcrs), extended


# ---- RIM: RMI_DATA_CREATE --------------------------------------------------

def _data_descriptor(rim, ipa, content):
    measured = content is not None
    fields = struct.pack("<QQ", ipa, 1 if measured else 0) + (content if measured else b"")
    return descriptor(DESC_DATA, rim, fields)


def _chain_step(hash_fn, rim, ipa, content):
    return hash_fn(_data_descriptor(rim, ipa, content)).digest().ljust(MEASUREMENT_SIZE, b"\0")


def _rim_hash(alg):
    return getattr(hashlib, rim_algorithm(alg).hashlib_name)


def rim_data(alg, rim, image, base, keep_contents):
    hash_fn = _rim_hash(alg)
    first, n = granule_span(base, len(image))
    head = base - first
    # The image with its first and last granules zero-padded: bytes of a
    # granule outside the image are zero.
    padded = bytes(head) + bytes(image) + bytes(n * GRANULE_SIZE - head - len(image))
    view = memoryview(padded)
    contents = []
    for g in range(n):
        content = hash_fn(view[g * GRANULE_SIZE : (g + 1) * GRANULE_SIZE]).digest()
        contents.append(content)
        rim = _chain_step(hash_fn, rim, first + g * GRANULE_SIZE, content)
    return rim, n, (b"".join(contents) if keep_contents else None)


_FILE_PIECE = 16 << 20  # bytes read and hashed at a time: a whole image need not fit in memory


def _pread_exactly(fd, size, offset):
    parts, got = [], 0
    while got < size:
        try:
            part = os.pread(fd, min(size - got, _FILE_PIECE), offset + got)
        except OSError as exc:  # as the C core's mapping failing: the file cannot be read
            raise errors.FileError(f"the image file could not be read: {exc.strerror or exc}",
                                   code="io.unreadable") from None
        if not part:
            raise errors.image_truncated()
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def rim_file(alg, rim, fd, size, base, keep_contents):
    # Granule-aligned pieces: each but the first starts on a granule, so
    # chaining rim_data over them is rim_data over the whole image.
    first, n = granule_span(base, size)
    contents, offset, want = [], 0, _FILE_PIECE - (base - first)
    while True:
        piece = _pread_exactly(fd, min(want, size - offset), offset)
        rim, _, part = rim_data(alg, rim, piece, base + offset, keep_contents)
        contents.append(part)
        offset, want = offset + len(piece), _FILE_PIECE
        if offset >= size:
            return rim, n, (b"".join(contents) if keep_contents else None)


def rim_chain(alg, rim, ipa0, n, contents):
    hash_fn = _rim_hash(alg)
    dlen = hash_fn().digest_size
    if contents is not None and len(contents) < n * dlen:
        raise errors.InputError(f"{len(contents)} bytes of content hashes for {n} granules")
    for g in range(n):
        content = None if contents is None else bytes(contents[g * dlen : (g + 1) * dlen])
        rim = _chain_step(hash_fn, rim, ipa0 + g * GRANULE_SIZE, content)
    return rim
