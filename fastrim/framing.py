"""The narrow interface both backends implement, and the records they share.

A backend module (fastrim._cffi or fastrim.fallback) provides:

``frame(buf, max_event_size) -> Framing``
    Split a TCG event log into records without copying it; raise
    LogFormatError (via errors.framing_error) on malformed input.
``startup_locality(buf, framing) -> int``
    The locality PCR0 starts from (H-CRTM event: 4; StartupLocality event).
``pcr_replay(buf, framing, alg, size, locality) -> (pcrs, extended) | None``
    TPM-style replay of one bank: the 24 PCR values end to end and a bit
    mask of the PCRs that received an extend; None when the hash is missing.
``rim_data(alg, rim, image, base, keep_contents) -> (rim, granules, contents)``
    RMI_DATA_CREATE for every granule of an image loaded at base.
``rim_chain(alg, rim, ipa0, granules, contents) -> rim``
    The descriptor chain alone, from cached content hashes or unmeasured.
``hash_kernel(alg) -> str``
    What hashes granule contents for alg: "openssl", "multilane" (C) or
    "hashlib" (Python). The C backend takes FASTRIM_HASH_KERNEL=auto|openssl|
    multilane at import; an unknown value, or multilane on a CPU with neither
    the x86 SHA extensions nor AVX2, is an ImportError.
"""

import struct
from typing import NamedTuple, Sequence

FORMAT_CRYPTO_AGILE = "crypto-agile"
FORMAT_SHA1_LEGACY = "sha1-legacy"

# Same values as FR_FORMAT_* in csrc/fastrim.h.
FORMAT_NAMES = {1: FORMAT_CRYPTO_AGILE, 2: FORMAT_SHA1_LEGACY}

GRANULE_SIZE = 4096
DESCRIPTOR_SIZE = 0x100
MEASUREMENT_SIZE = 64
DESC_DATA, DESC_REC, DESC_RIPAS = 0, 1, 2  # RIM descriptor types


class RawDigest(NamedTuple):
    alg: int
    offset: int
    size: int


class RawEvent(NamedTuple):
    offset: int
    pcr: int
    type: int
    data_offset: int
    data_size: int
    digests: tuple  # of RawDigest


class Framing(NamedTuple):
    format: str
    algs: tuple  # of (algId, digest size), from the Spec ID event
    end: int  # offset where the log ended
    events: Sequence[RawEvent]
    native: object = None  # the backend's own tables, for its pcr_replay


def granule_span(base, size):
    """First granule address and granule count covered by [base, base+size)."""
    first = base & ~(GRANULE_SIZE - 1)
    return first, (base - first + size + GRANULE_SIZE - 1) // GRANULE_SIZE


def descriptor(desc_type, rim, body):
    """A RIM extension descriptor: type, length 0x100, the 64-byte current
    RIM, then the type's fields from 0x50, zero to the end."""
    header = struct.pack("<B7xQ", desc_type, DESCRIPTOR_SIZE) + rim
    return (header + body).ljust(DESCRIPTOR_SIZE, b"\0")
