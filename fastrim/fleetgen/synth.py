"""Log writer: CCA measurement logs byte for byte in QEMU's layout
(hw/tpm/tpm_log.c + target/arm/kvm-rme.c, rim-spec.md section 4), from a
realm description. Used by the tests and by the synthetic fleet generator."""

import functools
import struct
from dataclasses import dataclass, field

from ..algorithms import BY_RMM, BY_TCG_ID
from ..log.cca import REALM_CREATE_LAYOUT, REALM_PARAMS, TAG_INIT_RIPAS, TAG_REALM_CREATE, TAG_REC_CREATE
from ..tcgdefs import EV_EFI_PLATFORM_FIRMWARE_BLOB2, EV_EVENT_TAG, EV_NO_ACTION, EV_POST_CODE2

LOG_SIZE = 64 << 10
RAM_BASE = 0x40000000  # where QEMU's virt machine puts RAM, and so the kernel


@dataclass(frozen=True)
class Image:
    description: str
    base: int
    data: bytes = None  # None: loaded unmeasured, like the LOG itself
    size: int = None  # only for unmeasured images

    @property
    def length(self):
        return len(self.data) if self.data is not None else self.size


@dataclass(frozen=True)
class RealmSpec:
    hash_algo: int = 0
    flags: int = 0
    s2sz: int = 41
    sve_vl: int = 0
    num_bps: int = 5
    num_wps: int = 3
    pmu_num_ctrs: int = 0
    ram_base: int = RAM_BASE
    ram_size: int = 128 << 20
    num_cpus: int = 1
    vmm_name: str = "QEMU"
    vmm_version: str = "9.1"
    images: tuple = field(default_factory=tuple)  # of Image, any order
    rec_flags: int = 1
    pc: int = RAM_BASE
    gprs: tuple = (0, 0, 0, 0, 0, 0, 0, 0)
    log_base: int = 0x44100000


def _event(pcr_type, digests, data):
    """TCG_PCR_EVENT2 at PCR 0: digests is a list of (algId, bytes)."""
    body = b"".join(struct.pack("<H", alg) + digest for alg, digest in digests)
    return struct.pack("<III", 0, pcr_type, len(digests)) + body + struct.pack("<I", len(data)) + data


def _tag(tag_id, payload):
    return _event(EV_EVENT_TAG, [], struct.pack("<II", tag_id, len(payload)) + payload)


@functools.lru_cache(maxsize=256)
def image_digest(alg, data):
    """A whole image's digest (TPM algId alg). Fleets write many logs of the
    same images: the cache keys on the bytes object, whose hash Python
    computes once."""
    return BY_TCG_ID[alg].new(data).digest()


def _image_event(alg, image):
    desc = image.description.encode()
    payload = struct.pack("<B", len(desc)) + desc + struct.pack("<QQ", image.base, image.length)
    event_type = EV_EFI_PLATFORM_FIRMWARE_BLOB2 if image.description == "FIRMWARE" else EV_POST_CODE2
    digests = [] if image.data is None else [(alg, image_digest(alg, image.data))]
    return _event(event_type, digests, payload)


def spec_id_header(alg, digest_size):
    """The legacy-format first event announcing one crypto-agile algorithm."""
    body = (
        b"Spec ID Event03\0"
        + struct.pack("<IBBBB", 0, 0, 2, 106, 2)
        + struct.pack("<IHH", 1, alg, digest_size)
        + b"\0"  # vendorInfoSize
    )
    return struct.pack("<II", 0, EV_NO_ACTION) + bytes(20) + struct.pack("<I", len(body)) + body


def write_log(spec):
    """The 64 KiB log QEMU would write for this realm."""
    alg, dsize = BY_RMM[spec.hash_algo].tcg_id, BY_RMM[spec.hash_algo].digest_size
    vm_version = (
        b"VM VERSION".ljust(16, b"\0")
        + spec.vmm_name.encode().ljust(32, b"\0")
        + spec.vmm_version.encode().ljust(40, b"\0")
        + struct.pack("<QI4xQ", spec.ram_size, spec.num_cpus, 0)
    )
    realm = REALM_CREATE_LAYOUT.pack(*(getattr(spec, name) for name, _ in REALM_PARAMS))
    parts = [
        spec_id_header(alg, dsize),
        _event(EV_NO_ACTION, [(0, bytes(dsize))], vm_version),
        _tag(TAG_REALM_CREATE, realm),
        _tag(TAG_INIT_RIPAS, struct.pack("<QQ", spec.ram_base, spec.ram_size)),
    ]
    parts += [_image_event(alg, image) for image in sorted(spec.images, key=lambda i: i.base)]
    parts.append(_tag(TAG_REC_CREATE, struct.pack("<10Q", spec.rec_flags, spec.pc, *spec.gprs)))
    parts.append(_image_event(alg, Image("LOG", spec.log_base, size=LOG_SIZE)))
    log = b"".join(parts)
    if len(log) > LOG_SIZE:
        raise ValueError(f"the log needs {len(log)} bytes, more than QEMU's {LOG_SIZE}")
    return log.ljust(LOG_SIZE, b"\0")
