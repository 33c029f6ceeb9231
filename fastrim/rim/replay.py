"""Replay stage: rebuild the Realm Initial Measurement from decoded CCA
records exactly as the RMM computed it (rim-spec.md sections 3 and 4).

The per-granule loop runs in the backend, one call per image; the few other
descriptors (parameters, RIPAS blocks, the boot REC) are built here.
"""

import bisect
import struct
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

from ..algorithms import rim_algorithm
from ..backend import select
from ..backend.contract import DESC_REC, DESC_RIPAS, GRANULE_SIZE, MEASUREMENT_SIZE, descriptor, granule_span
from ..errors import FastrimError, FileError, LogFormatError, OptionError, ReferenceImageError, check_int
from ..log.cca import REALM_PARAMS, ImageLoad, InitRipas, RecCreate
from ..store import NO_CACHES
from ..store.content import BUSY
from ..store.steps import step_key
from . import DEFAULT_MAX_MEASURED_BYTES, DEFAULT_MAX_RIPAS_BLOCKS, MAX_LIMIT, PROFILES

_BLOCK_SHIFTS = {0: 39, 1: 30, 2: 21, 3: 12}  # RTT level -> block size (4 KiB granule)


@dataclass(frozen=True)
class ReplayOptions:
    profile: str = "1.0-rel0"
    force_lpa2: bool = False  # LPA2 hosts set flags bit0, which QEMU never logs
    bps_wps_as_counts: bool = False  # an older kernel logged counts, not count - 1
    max_measured_bytes: int = DEFAULT_MAX_MEASURED_BYTES
    max_ripas_blocks: int = DEFAULT_MAX_RIPAS_BLOCKS

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise OptionError(f"unknown RMM profile {self.profile!r}: one of {', '.join(PROFILES)}")
        check_int("max_measured_bytes", self.max_measured_bytes, 0, MAX_LIMIT)
        check_int("max_ripas_blocks", self.max_ripas_blocks, 0, MAX_LIMIT)


@dataclass
class RimResult:
    """What a replay did: the RIM, or the error that stopped it (and then
    the work done until then), or busy (it gave way to another process
    filling a cache entry it needs; nothing but the work done counts)."""

    rim: Optional[bytes] = None  # the digest only (32, 48 or 64 bytes)
    hash_algo: Optional[str] = None
    steps: list = field(default_factory=list)  # (label, RIM after it)
    images: list = field(default_factory=list)  # (ImageLoad, reference file or None)
    granules: int = 0
    bytes_hashed: int = 0
    cache_hits: int = 0  # images whose content hashes came from the content cache
    memo_hits: int = 0  # image steps whose RIM came from the step memo
    error: Optional[FastrimError] = None
    busy: bool = False

    def checked(self):
        """self, or its error raised: for callers that want the RIM or an exception."""
        if self.error is not None:
            raise self.error
        return self


def _measure(alg, message):
    """pad64(H(message)): measurements are held in 64-byte fields."""
    return rim_algorithm(alg).new(message).digest().ljust(MEASUREMENT_SIZE, b"\0")


# The REALM_CREATE flag bits each RMM defines (the rest are reserved, zero): 1.0 has LPA2 (bit 0),
# SVE (1) and PMU (2); 2.0 adds DA (3) and the MEC policy (bits 7-8).
REALM_FLAGS_1_0 = 0b111
REALM_FLAGS_2_0 = REALM_FLAGS_1_0 | 1 << 3 | 0b11 << 7
_HASH_ALGO_OFFSET = 8 * [name for name, _ in REALM_PARAMS].index("hash_algo")


def initial_rim(realm, options=ReplayOptions()):
    """RMI_REALM_CREATE: the RIM starts as the hash of the measured parameters."""
    params = bytearray(GRANULE_SIZE)
    if options.profile == "1.0-eac2":
        params[_HASH_ALGO_OFFSET] = realm.hash_algo  # RMM 1.0-eac2 measured only hash_algo
    else:
        flags = realm.flags | (1 if options.force_lpa2 else 0)
        bps, wps = realm.num_bps, realm.num_wps
        if options.bps_wps_as_counts:
            bps, wps = max(bps - 1, 0), max(wps - 1, 0)
        values = realm._replace(flags=flags, num_bps=bps, num_wps=wps)._asdict()
        for i, (name, code) in enumerate(REALM_PARAMS):
            struct.pack_into("<" + code, params, 8 * i, values[name])
    return _measure(realm.alg, bytes(params))


def block_sizes(s2sz):
    """RTT block sizes usable at INIT_RIPAS time for an IPA width, largest first."""
    table_bits = s2sz - 12
    levels = -(-table_bits // 9)
    if table_bits - 9 * (levels - 1) <= 4:
        levels -= 1  # KVM concatenates root tables that would resolve <= 4 bits
    return [1 << _BLOCK_SHIFTS[level] for level in range(4 - levels, 4)]


def ripas_blocks(base, top, s2sz):
    """The greedy split of [base, top) into the largest naturally aligned blocks."""
    sizes = block_sizes(s2sz)
    addr = base
    while addr < top:
        size = next(s for s in sizes if addr % s == 0 and addr + s <= top)
        yield addr, addr + size
        addr += size


def ripas_rim(alg, rim, base, top):
    return _measure(alg, descriptor(DESC_RIPAS, rim, struct.pack("<QQ", base, top)))


def rec_rim(alg, rim, rec):
    params = bytearray(GRANULE_SIZE)
    struct.pack_into("<Q", params, 0x000, rec.flags)
    struct.pack_into("<Q", params, 0x200, rec.pc)
    struct.pack_into("<8Q", params, 0x300, *rec.gprs)
    content = _measure(alg, bytes(params))
    return _measure(alg, descriptor(DESC_REC, rim, content))


def _check_range(what, offset, base, size, realm):
    protected = 1 << (realm.s2sz - 1)
    if base >= protected or size > protected - base:
        raise LogFormatError(
            f"{what} [0x{base:x}, +0x{size:x}) is outside the realm's protected range [0, 0x{protected:x})",
            code="log.outside_realm", offset=offset,
        )


def _check_ripas(ripas, offset, realm):
    if ripas.base % GRANULE_SIZE or ripas.size % GRANULE_SIZE:
        raise LogFormatError(
            f"INIT_RIPAS [0x{ripas.base:x}, +0x{ripas.size:x}) is not granule aligned",
            code="log.bad_ripas", offset=offset,
        )
    _check_range("INIT_RIPAS", offset, ripas.base, ripas.size, realm)


class _GranuleLedger:
    """The RMM creates a granule once: no two images may share one. Ranges
    are kept sorted, so a log of thousands of images costs n log n."""

    def __init__(self):
        self._starts = []
        self._ranges = []

    def claim(self, first, count, image, offset):
        end = first + count * GRANULE_SIZE
        # Walk back from the last range starting before end. Ranges of one
        # granule or more are disjoint, so the first such that ends at or
        # before first closes the search; an empty range (a zero-size image
        # at a granule boundary) is a point that may sit anywhere between.
        for j in range(bisect.bisect_left(self._starts, end) - 1, -1, -1):
            lo, hi, other = self._ranges[j]
            if first < hi and lo < end:
                raise LogFormatError(
                    f"image {image!r} reuses granules of {other!r} in [0x{max(lo, first):x}, 0x{min(hi, end):x})",
                    code="log.granule_reused", offset=offset,
                )
            if lo < hi <= first:
                break
        i = bisect.bisect_left(self._starts, first)
        self._starts.insert(i, first)
        self._ranges.insert(i, (first, end, image))


def replay_rim(cca_log, refs=None, *, options=ReplayOptions(), caches=NO_CACHES, impl=None, defer_busy=False):
    """Replay a decoded CCA log. refs finds reference images by digest
    (see store.refs); caches (store.Caches) may hold content hashes and
    the RIM after image steps. With defer_busy, a replay that needs a
    content-cache entry another process is filling stops and says busy.

    Returns a RimResult: its error is a LogFormatError for a log no real
    realm could have produced, a ReferenceImageError when an image is not
    in the reference store.
    """
    result = RimResult()
    try:
        _replay(cca_log, refs, _Replay(options, caches, impl or select.active, defer_busy), result)
    except FastrimError as exc:
        result.error = exc
    return result


class _Replay(NamedTuple):
    """How one replay runs, handed down to its image steps."""

    options: ReplayOptions
    caches: object  # store.Caches
    impl: object
    defer_busy: bool


def _replay(cca_log, refs, how, result):
    realm = cca_log.realm
    options = how.options
    if realm is None:
        raise LogFormatError("the log has no REALM_CREATE event", code="log.no_realm_create", offset=None)
    if not 16 < realm.s2sz <= 52:
        raise LogFormatError(f"REALM_CREATE s2sz {realm.s2sz} is out of range", code="log.bad_realm_params",
                             offset=cca_log.steps[0].offset)
    defined = REALM_FLAGS_2_0 if options.profile == "2.0" else REALM_FLAGS_1_0
    if realm.flags & ~defined:
        raise LogFormatError(f"REALM_CREATE flags 0x{realm.flags:x} set bits the RMM {options.profile} profile reserves "
                             f"(0x{realm.flags & ~defined:x}): no such RMM could have created this realm",
                             code="log.bad_realm_params", offset=cca_log.steps[0].offset)
    alg = realm.alg
    dlen = realm.algorithm.digest_size
    rim = initial_rim(realm, options)
    result.hash_algo, result.steps = realm.hash_name, [("REALM_CREATE", rim[:dlen])]
    ledger = _GranuleLedger()
    measured_bytes = ripas_count = 0
    for step in cca_log.steps[1:]:  # decode put REALM_CREATE first, and only there
        record = step.record
        if isinstance(record, InitRipas):
            _check_ripas(record, step.offset, realm)
            if options.profile != "2.0":  # RMM 2.0 no longer measures INIT_RIPAS
                for base, top in ripas_blocks(record.base, record.base + record.size, realm.s2sz):
                    ripas_count += 1
                    if ripas_count > options.max_ripas_blocks:
                        raise LogFormatError(
                            f"the log's INIT_RIPAS events split into more than {options.max_ripas_blocks} blocks",
                            code="log.too_large_to_measure", offset=step.offset,
                        )
                    rim = ripas_rim(alg, rim, base, top)
            label = "INIT_RIPAS"
        elif isinstance(record, RecCreate):
            if record.flags & 1 or options.profile == "1.0-eac2":
                rim = rec_rim(alg, rim, record)
            label = "REC_CREATE"
        else:  # ImageLoad: decode yields nothing else after REALM_CREATE
            _check_range(f"image {record.description!r}", step.offset, record.base, record.size, realm)
            measured_bytes += record.size
            if measured_bytes > options.max_measured_bytes:
                raise LogFormatError(
                    f"the log loads more than {options.max_measured_bytes} bytes of images",
                    code="log.too_large_to_measure", offset=step.offset,
                )
            first, count = granule_span(record.base, record.size)
            ledger.claim(first, count, record.description, step.offset)
            rim = _replay_image(how, alg, rim, _Located(record, step.offset, refs), result)
            if rim is BUSY:
                result.busy = True
                return
            result.granules += count
            label = record.description
        result.steps.append((label, rim[:dlen]))
    result.rim = rim[:dlen]


class _Located(NamedTuple):
    """An image step: the logged image, where its event is, the store to find it in."""

    image: ImageLoad
    offset: int
    refs: object


def _replay_image(how, alg, rim, step, result):
    """The RIM after one image, from the memo when this step was seen before.
    The image must be a vetted reference even then: a hit only skips hashing."""
    image, ref, after = step.image, None, None
    if image.digest is not None:
        ref, after = _find_ref(how, alg, rim, step, result) if step.refs is not None else (None, None)
        if ref is None:
            raise ReferenceImageError(
                f"no reference image for {image.description} with digest {image.digest.hex()}",
                code="ref.unknown_image", offset=step.offset,
            )
        if ref.size != image.size:
            raise LogFormatError(
                f"{image.description} is logged as {image.size} bytes but its reference image "
                f"{ref.name} has {ref.size}",
                code="log.size_mismatch", offset=step.offset,
            )
    result.images.append((image, ref))
    memo = how.caches.steps
    key = step_key(alg, rim, image.base, image.size, image.digest) if memo is not None else None
    if after is None:  # not measured while it was found
        after = memo.get(key) if key is not None else None
        if after is not None:
            result.memo_hits += 1
            return after
        after = _hash_image(how, alg, rim, step, ref, result)
    if key is not None and after is not BUSY:
        memo.put(key, after)
    return after


def _find_ref(how, alg, rim, step, result):
    """(the reference image of a logged digest, the RIM after it or None).
    When the store has not hashed the files of the image's size with alg
    yet and this step is in no cache, each such file is measured from the
    logged base while its whole-file digest is computed beside it (two
    cores, one read of the file): the one whose digest is the logged one
    gives the RIM at once. Otherwise the store hashes them (find)."""
    refs, image = step.refs, step.image
    ref = refs.find(alg, image.digest)
    if ref is not None:
        return ref, None
    candidates = refs.candidates(alg, image.size)
    if not candidates or _step_cached(how, alg, rim, image):
        return refs.find(alg, image.digest, image.size), None
    for candidate in candidates:
        try:
            with refs.open(candidate) as data:
                after, _, contents, digest = data.measure_with_digest(how.impl, alg, rim, image.base,
                                                                      how.caches.content is not None)
        except (ReferenceImageError, FileError):
            continue  # gone, changed or unreadable since it was listed: find() below hashes it again, or drops it
        result.bytes_hashed += image.size
        refs.learn(candidate, alg, digest)
        if digest == image.digest:
            if how.caches.content is not None:
                how.caches.content.put((alg, image.digest, image.base % GRANULE_SIZE), contents)
            return candidate, after
    return refs.find(alg, image.digest, image.size), None


def _step_cached(how, alg, rim, image):
    """True when the step memo or the content cache holds this image step."""
    memo, cache = how.caches.steps, how.caches.content
    if memo is not None and memo.get(step_key(alg, rim, image.base, image.size, image.digest)) is not None:
        return True
    key = (alg, image.digest, image.base % GRANULE_SIZE)
    return cache is not None and cache.get(key, granule_span(image.base, image.size)[1]) is not None


def _hash_image(how, alg, rim, step, ref, result):
    image, impl, cache = step.image, how.impl, how.caches.content
    first, count = granule_span(image.base, image.size)
    if ref is None:  # loaded unmeasured
        return impl.rim_chain(alg, rim, first, count, None)
    if cache is None:
        result.bytes_hashed += image.size
        with step.refs.open(ref) as data:
            return data.measure(impl, alg, rim, image.base, False)[0]
    key = (alg, image.digest, image.base % GRANULE_SIZE)
    contents = cache.get(key, count)
    if contents is None:
        lock = cache.lock(key, wait=not how.defer_busy)
        if lock is BUSY:
            return BUSY
        with lock:
            contents = cache.get(key, count)  # another process may have filled it meanwhile
            if contents is None:
                result.bytes_hashed += image.size
                with step.refs.open(ref) as data:
                    rim, _, contents = data.measure(impl, alg, rim, image.base, True)
                cache.put(key, contents)  # only now: an image that changed while hashed raised, and left nothing
                return rim
    result.cache_hits += 1
    return impl.rim_chain(alg, rim, first, count, contents)
