"""Decode stage: the QEMU Arm CCA events of a parsed log as typed records
(rim-spec.md section 4), in log order, checked for what a real VMM writes.

The records are named tuples: built for every event of every log, they must
be cheap, and so must this module's import for a one-log command."""

import struct
from typing import NamedTuple, Optional

from ..algorithms import BY_RMM
from ..errors import LogFormatError
from ..tcgdefs import EV_EFI_PLATFORM_FIRMWARE_BLOB2, EV_EVENT_TAG, EV_NO_ACTION, EV_POST_CODE2

TAG_REALM_CREATE = 1
TAG_INIT_RIPAS = 2
TAG_REC_CREATE = 3

_VM_VERSION_SIGNATURE = b"VM VERSION\0"
_VM_VERSION_SIZE = 112
IMAGE_EVENT_TYPES = (EV_POST_CODE2, EV_EFI_PLATFORM_FIRMWARE_BLOB2)  # the events that load an image


class VmVersion(NamedTuple):
    name: str
    version: str
    ram_size: int
    num_cpus: int
    flags: int


class RealmCreate(NamedTuple):
    """The realm parameters: the one definition of their names and order
    (their widths follow in REALM_PARAMS). QEMU logs them in this order; the
    RMM measures parameter i at offset 8 * i of its parameter granule."""

    flags: int
    s2sz: int
    sve_vl: int
    num_bps: int
    num_wps: int
    pmu_num_ctrs: int
    hash_algo: int

    @property
    def algorithm(self):
        """The algorithms.HashAlgorithm of the RIM (checked by decode)."""
        return BY_RMM[self.hash_algo]

    @property
    def hash_name(self):
        return self.algorithm.name

    @property
    def alg(self):
        return self.algorithm.tcg_id


# (name, struct code) of each parameter, in RealmCreate's order: flags is 64
# bits, the others a byte. QEMU pads its struct to 16 bytes.
REALM_PARAMS = tuple(zip(RealmCreate._fields, "QBBBBBB"))
REALM_CREATE_LAYOUT = struct.Struct("<" + "".join(code for _, code in REALM_PARAMS) + "2x")


class InitRipas(NamedTuple):
    base: int
    size: int


class RecCreate(NamedTuple):
    flags: int
    pc: int
    gprs: tuple


class ImageLoad(NamedTuple):
    description: str
    base: int
    size: int
    digest: Optional[bytes]  # None for an image loaded unmeasured (the LOG)
    event_type: int


class CcaStep(NamedTuple):
    """One decoded event and where it stands in the log."""

    offset: int
    record: object


class CcaLog(NamedTuple):
    vm_version: Optional[VmVersion]  # None when the log has none
    realm: Optional[RealmCreate]  # None when the log has no REALM_CREATE
    steps: tuple  # of CcaStep, in log order, VM VERSION excluded


def _short(event, what, need):
    return LogFormatError(
        f"{what} payload is {len(event.data)} bytes, needs {need}", code="log.bad_payload", offset=event.offset
    )


def _cstring(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def decode_vm_version(event):
    """The VM VERSION EV_NO_ACTION event, or None when event is another one."""
    if event.type != EV_NO_ACTION or not event.data.startswith(_VM_VERSION_SIGNATURE):
        return None
    if len(event.data) < _VM_VERSION_SIZE:
        raise _short(event, "VM VERSION", _VM_VERSION_SIZE)
    data = event.data
    ram_size, num_cpus, flags = struct.unpack_from("<QI4xQ", data, 88)
    return VmVersion(_cstring(data[16:48]), _cstring(data[48:88]), ram_size, num_cpus, flags)


def _decode_tag(event):
    if len(event.data) < 8:
        raise _short(event, "EV_EVENT_TAG", 8)
    tag_id, size = struct.unpack_from("<II", event.data)
    if size > len(event.data) - 8:
        raise _short(event, f"tag {tag_id}", 8 + size)
    payload = event.data[8 : 8 + size]
    if tag_id == TAG_REALM_CREATE:
        if size < REALM_CREATE_LAYOUT.size:
            raise _short(event, "REALM_CREATE", 8 + REALM_CREATE_LAYOUT.size)
        return RealmCreate(*REALM_CREATE_LAYOUT.unpack_from(payload))
    if tag_id == TAG_INIT_RIPAS:
        if size < 16:
            raise _short(event, "INIT_RIPAS", 24)
        return InitRipas(*struct.unpack_from("<QQ", payload))
    if tag_id == TAG_REC_CREATE:
        if size < 80:
            raise _short(event, "REC_CREATE", 88)
        values = struct.unpack_from("<10Q", payload)
        return RecCreate(values[0], values[1], values[2:])
    return None  # another tag: kept in the parse, no effect on the RIM


def _decode_image(event, alg):
    data = event.data
    if not data:
        raise _short(event, "image", 17)
    n = data[0]
    if len(data) < 1 + n + 16:
        raise _short(event, "image", 1 + n + 16)
    # Older logs end the description with a NUL; current QEMU does not.
    description = data[1 : 1 + n].rstrip(b"\0").decode("utf-8", "replace")
    base, size = struct.unpack_from("<QQ", data, 1 + n)
    digest = event.digests.get(alg)
    if event.digests and digest is None:
        raise LogFormatError(
            f"image {description!r} has no digest for the realm's hash algorithm",
            code="log.alg_mismatch", offset=event.offset,
        )
    return ImageLoad(description, base, size, digest, event.type)


def decode_event(event, alg):
    """The CCA record one event carries, or None; alg is the image digest algorithm."""
    version = decode_vm_version(event)
    if version is not None:
        return version
    if event.type == EV_EVENT_TAG:
        return _decode_tag(event)
    if event.type in IMAGE_EVENT_TYPES:
        return _decode_image(event, alg)
    return None


def is_cca_log(log):
    """True when the log carries QEMU CCA events (tags, VM VERSION or POST_CODE2 images)."""
    for event in log.events:
        if event.type in (EV_EVENT_TAG, EV_POST_CODE2) or decode_vm_version(event):
            return True
    return False


def _check_realm(realm, offset, alg_ids):
    if realm.hash_algo not in BY_RMM:
        raise LogFormatError(
            f"REALM_CREATE hash_algo {realm.hash_algo} is not SHA-256 (0), SHA-512 (1) or SHA-384 (2)",
            code="log.unsupported_hash_algo", offset=offset,
        )
    if realm.alg not in alg_ids:
        raise LogFormatError(
            f"REALM_CREATE asks for {realm.hash_name} but the log's Spec ID event does not declare it",
            code="log.alg_mismatch", offset=offset,
        )


def decode(log):
    """The CCA records of log. Raises LogFormatError for events a real VMM
    could not have written, or written in an order the RMM would refuse."""
    vm_version = None
    realm = None
    steps = []
    for event in log.events[1:]:  # events[0] is the Spec ID header
        version = decode_vm_version(event)
        if version is not None:
            vm_version = vm_version or version
            continue
        # Image digests use the realm's algorithm; a log without REALM_CREATE
        # (it cannot be replayed) is read with its first Spec ID algorithm.
        record = decode_event(event, realm.alg if realm is not None else log.algs[0][0])
        if record is None:
            continue
        if isinstance(record, RealmCreate):
            if realm is not None:
                raise LogFormatError("a second REALM_CREATE event", code="log.duplicate_realm_create",
                                     offset=event.offset)
            _check_realm(record, event.offset, {alg for alg, _ in log.algs})
            realm = record
            early = steps[0] if steps else None
        else:
            # Images alone may stand without REALM_CREATE (such a log cannot
            # be replayed); RIPAS and REC events may not.
            early = None if realm is not None or isinstance(record, ImageLoad) else CcaStep(event.offset, record)
        if early is not None:
            raise LogFormatError(f"{type(early.record).__name__} before REALM_CREATE",
                                 code="log.out_of_order", offset=early.offset)
        steps.append(CcaStep(event.offset, record))
    return CcaLog(vm_version, realm, tuple(steps))
