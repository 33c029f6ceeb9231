"""The narrow interface both backends implement, and the records and layouts
they share.

A backend module (fastrim.backend.native or fastrim.backend.fallback) provides:

``NAME``
    "cffi" or "python".
``frame(buf, max_event_size) -> Framing``
    Split a TCG event log into records without copying it; raise
    LogFormatError (via errors.framing_error) on malformed input.
    max_event_size is already checked to fit 32 bits (log.tcg.parse).
``startup_locality(buf, framing) -> int``
    The locality PCR0 starts from (H-CRTM event: 4; StartupLocality event).
``pcr_replay(buf, framing, alg, size, locality) -> (pcrs, extended) | None``
    TPM-style replay of one bank: the 24 PCR values end to end and a bit
    mask of the PCRs that received an extend; None when the hash is missing.
``rim_data(alg, rim, image, base, keep_contents) -> (rim, granules, contents)``
    RMI_DATA_CREATE for every granule of an image loaded at base.
``rim_file(alg, rim, fd, size, base, keep_contents) -> (rim, granules, contents)``
    rim_data over the first size bytes of the open file fd, read in place
    (C: mapped; Python: in pieces). A file that ends early, or is truncated
    while it is hashed, raises errors.image_truncated(), never a SIGBUS.
``rim_chain(alg, rim, ipa0, granules, contents) -> rim``
    The descriptor chain alone, from cached content hashes or unmeasured.
``hash_kernel(alg) -> str``
    What hashes granule contents for alg: a C kernel ("openssl", "sha-ni",
    "avx2", "avx512": see backend.kernels) or "hashlib" (Python). The C
    backend takes FASTRIM_HASH_KERNEL=auto|openssl|<kernel> at import; an
    unknown kernel, one this CPU cannot run, or one that fails its
    self-test is an ImportError.
``choose_kernels(cache_dir)``
    Pick the fastest self-tested kernel per algorithm (C: measured once per
    CPU model and version, remembered in cache_dir; Python: nothing to do).

rim_data and rim_chain take a TCG algorithm id of a RIM algorithm
(algorithms.RIM_ALGORITHMS) and raise InputError for any other.
"""

import enum
import struct
from typing import NamedTuple, Sequence


class LogFormat(enum.IntEnum):
    """The FR_FORMAT_* numbers of csrc/fastrim.h, with the names output uses."""

    CRYPTO_AGILE = 1
    SHA1_LEGACY = 2

    @property
    def label(self):
        return self.name.lower().replace("_", "-")


MAX_PCR = 23
PCR_COUNT = MAX_PCR + 1
PCR_NONE = 0xFFFFFFFF  # an event recorded against no PCR
MAX_SPEC_ID_ALGS = 16

GRANULE_SIZE = 4096
MEASUREMENT_SIZE = 64  # the RMM keeps every measurement in a 64-byte field

# RIM extension descriptor (rim-spec.md section 3): a type, the length 0x100,
# the current RIM at 0x10, then the type's own fields from 0x50.
DESCRIPTOR_SIZE = 0x100
DESC_DATA, DESC_REC, DESC_RIPAS = 0, 1, 2
_DESCRIPTOR_HEADER = struct.Struct("<B7xQ")


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
    """A RIM extension descriptor: the header, the 64-byte current RIM, then
    the type's fields, zero to the end."""
    header = _DESCRIPTOR_HEADER.pack(desc_type, DESCRIPTOR_SIZE) + rim
    return (header + body).ljust(DESCRIPTOR_SIZE, b"\0")
