"""C backend: thin wrappers over fastrim._native (csrc/).

They allocate, call, check and hand back offsets; the log and image bytes are
read in place through ffi.from_buffer, never copied.
"""

import os
import struct
from collections.abc import Sequence

from .. import errors
from .._native import ffi, lib
from ..algorithms import SHA256, rim_algorithm
from . import kernels
from .contract import PCR_COUNT, Framing, LogFormat, RawDigest, RawEvent, granule_span

NAME = "cffi"

def set_hash_kernel(name):
    """auto, openssl or a kernel name (see backend.kernels.force); returns
    the kernel that now hashes SHA-256 granules."""
    kernels.force(name)
    return hash_kernel(SHA256.tcg_id)


def hash_kernel(alg):
    return kernels.selected(alg)


def choose_kernels(cache_dir):
    kernels.choose(cache_dir)


set_hash_kernel(os.environ.get("FASTRIM_HASH_KERNEL", "auto") or "auto")

# Start small, grow on demand: most logs hold a few hundred records.
_INITIAL_EVENTS = 512
# The C side writes every table entry it reports; zeroing them first is waste.
_new_uncleared = ffi.new_allocator(should_clear_after_alloc=False)


# The C tables read in bulk with struct rather than field by field through cffi.
_EVENT = struct.Struct("<QQIIIII4x")  # fr_event
_DIGEST = struct.Struct("<QHHI")  # fr_digest
if (_EVENT.size, _DIGEST.size) != (ffi.sizeof("fr_event"), ffi.sizeof("fr_digest")):
    raise ImportError("fastrim._native does not match fastrim/backend/native.py: rebuild the extension")


class _Events(Sequence):
    """The C event table, turned into RawEvent records only when read."""

    def __init__(self, events, digests, count, n_digests):
        self._events, self._digests, self._count, self._n_digests = events, digests, count, n_digests

    def __len__(self):
        return self._count

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        offset, data_offset, pcr, type_, data_size, first, n = _EVENT.unpack_from(
            ffi.buffer(self._events, self._count * _EVENT.size), index * _EVENT.size)  # fr_event
        table = ffi.buffer(self._digests, self._n_digests * _DIGEST.size)
        digests = (_DIGEST.unpack_from(table, k * _DIGEST.size) for k in range(first, first + n))
        return RawEvent(offset, pcr, type_, data_offset, data_size,
                        tuple(RawDigest(alg, at, size) for at, alg, size, _ in digests))  # fr_digest

    def __iter__(self):  # Sequence's default goes through __getitem__: slow per event
        # Unrolled, with no call per record: placement frames every log of a
        # fleet in the client, and these objects were most of its cost.
        digests = [RawDigest(alg, at, size) for at, alg, size, _ in  # fr_digest
                   _DIGEST.iter_unpack(ffi.buffer(self._digests, self._n_digests * _DIGEST.size))]
        for offset, data_offset, pcr, type_, data_size, first, n in _EVENT.iter_unpack(  # fr_event
                ffi.buffer(self._events, self._count * _EVENT.size)):
            yield RawEvent(offset, pcr, type_, data_offset, data_size, tuple(digests[first:first + n]))


def frame(buf, max_event_size):
    data = ffi.from_buffer(buf)
    length = len(data)
    res = ffi.new("fr_result *")
    ev_cap = min(_INITIAL_EVENTS, length // 12 + 2)
    dg_cap = ev_cap * 4  # up to four banks per event before the tables grow
    while True:
        events = _new_uncleared("fr_event[]", ev_cap)
        digests = _new_uncleared("fr_digest[]", dg_cap)
        err = lib.fr_frame(data, length, max_event_size, events, ev_cap, digests, dg_cap, res)
        if err != errors.FramingFault.CAPACITY:
            break
        # A record takes at least 12 bytes and a digest at least 3, so the
        # tables never grow past a small multiple of the input.
        ev_cap, dg_cap = ev_cap * 4, dg_cap * 4
    if err:
        raise errors.framing_error(err, res.err_offset, res.err_value, res.err_limit)
    algs = tuple((res.alg_ids[i], res.alg_sizes[i]) for i in range(res.n_algs))
    table = _Events(events, digests, res.n_events, res.n_digests)
    return Framing(LogFormat(res.format).label, algs, res.end, table, native=table)


def startup_locality(buf, framing):
    table = framing.native
    return lib.fr_startup_locality(ffi.from_buffer(buf), table._events, table._count)


def pcr_replay(buf, framing, alg, size, locality):
    table = framing.native
    pcrs = ffi.new("uint8_t[]", PCR_COUNT * size)
    extended = ffi.new("uint32_t *")
    rc = lib.fr_pcr_replay(
        ffi.from_buffer(buf), table._events, table._count, table._digests,
        alg, size, locality, pcrs, extended,
    )
    if rc:
        return None
    return ffi.buffer(pcrs)[:], extended[0]


def _measurement(rim):
    return ffi.new("uint8_t[64]", rim)  # not uint8_t[]: that would add a NUL


def _checked(count, alg):
    if count == lib.FR_RIM_BAD_ALG:  # rim_algorithm() lets only RIM algorithms through: a mismatch
        raise errors.InputError(f"the C core refused RIM algorithm 0x{alg:04x}", code="input.unsupported_alg")
    if count == lib.FR_RIM_SHORT_FILE:
        raise errors.image_truncated()
    if count == lib.FR_RIM_MAP_FAILED:
        raise errors.FileError("the image file could not be mapped", code="io.unreadable")
    if count < 0:
        raise errors.FastrimError("libcrypto failed while hashing", code="internal.crypto")
    return count


def rim_data(alg, rim, image, base, keep_contents):
    dlen = rim_algorithm(alg).digest_size
    state = _measurement(rim)
    data = ffi.from_buffer(image)
    granules = granule_span(base, len(data))[1]
    contents = ffi.new("uint8_t[]", granules * dlen) if keep_contents else ffi.NULL
    n = _checked(lib.fr_rim_data(alg, state, data, len(data), base, contents), alg)
    return ffi.buffer(state)[:], n, (ffi.buffer(contents)[:] if keep_contents else None)


def rim_file(alg, rim, fd, size, base, keep_contents):
    dlen = rim_algorithm(alg).digest_size
    state = _measurement(rim)
    granules = granule_span(base, size)[1]
    contents = ffi.new("uint8_t[]", granules * dlen) if keep_contents else ffi.NULL
    n = _checked(lib.fr_rim_file(alg, state, fd, size, base, contents), alg)
    return ffi.buffer(state)[:], n, (ffi.buffer(contents)[:] if keep_contents else None)


def rim_chain(alg, rim, ipa0, n, contents):
    dlen = rim_algorithm(alg).digest_size
    state = _measurement(rim)
    source = ffi.NULL
    if contents is not None:
        source = ffi.from_buffer(contents)
        if len(source) < n * dlen:  # C would read past the end
            raise errors.InputError(f"{len(source)} bytes of content hashes for {n} granules")
    _checked(lib.fr_rim_chain(alg, state, ipa0, n, source), alg)
    return ffi.buffer(state)[:]
