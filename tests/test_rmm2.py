"""RMM 2.0 realms. SHA-384 (hash_algo 2): RIMs computed here with hashlib
straight from the descriptor layout of ../shared/docs/rim-spec.md section
3, with nothing of fastrim's replay, and compared with both backends. Realm
flags: the bits each profile defines, and no others."""

import hashlib
import struct

import pytest
from helpers import replay_spec

from fastrim.fleetgen import synth
from fastrim.log import cca, tcg

GRANULE = 4096
DESC_SIZE = 0x100
BLOCKS_S2SZ_41 = (1 << 30, 2 << 20, GRANULE)  # 1 GiB, 2 MiB, 4 KiB: the RTT levels of s2sz 41 (section 3.3)


def _h(data):
    return hashlib.sha384(data).digest().ljust(64, b"\0")  # a 48-byte digest in a 64-byte field


def _descriptor(kind, rim, fields):
    desc = bytearray(DESC_SIZE)
    struct.pack_into("<QQ", desc, 0, kind, DESC_SIZE)
    desc[0x10:0x50] = rim
    for offset, value in fields:
        desc[offset:offset + len(value)] = value
    return _h(bytes(desc))


def _initial(spec):
    params = bytearray(GRANULE)
    struct.pack_into("<Q", params, 0x000, spec.flags)
    for offset, value in ((0x008, spec.s2sz), (0x010, spec.sve_vl), (0x018, spec.num_bps), (0x020, spec.num_wps),
                          (0x028, spec.pmu_num_ctrs), (0x030, spec.hash_algo)):
        params[offset] = value
    return _h(bytes(params))


def _ripas(rim, base, size):
    top = base + size
    while base < top:
        block = next(b for b in BLOCKS_S2SZ_41 if base % b == 0 and base + b <= top)
        rim = _descriptor(2, rim, [(0x50, struct.pack("<QQ", base, base + block))])
        base += block
    return rim


def _data(rim, base, image, measured):
    first = base - base % GRANULE
    padded = bytes(base - first) + image
    padded += bytes(-len(padded) % GRANULE)
    for i in range(0, len(padded), GRANULE):
        content = hashlib.sha384(padded[i:i + GRANULE]).digest() if measured else b""
        rim = _descriptor(0, rim, [(0x50, struct.pack("<QQ", first + i, 1 if measured else 0)),
                                   (0x60, content.ljust(64, b"\0"))])
    return rim


def _rec(rim, spec):
    if not spec.rec_flags & 1:
        return rim
    page = bytearray(GRANULE)
    struct.pack_into("<Q", page, 0x000, spec.rec_flags)
    struct.pack_into("<Q", page, 0x200, spec.pc)
    struct.pack_into("<8Q", page, 0x300, *spec.gprs)
    return _descriptor(1, rim, [(0x50, _h(bytes(page)))])


def independent_rim(spec, measure_ripas=True):
    rim = _initial(spec)
    if measure_ripas:
        rim = _ripas(rim, spec.ram_base, spec.ram_size)
    for image in sorted(spec.images, key=lambda i: i.base):
        rim = _data(rim, image.base, image.data, True)
    rim = _rec(rim, spec)
    rim = _data(rim, spec.log_base, bytes(synth.LOG_SIZE), False)  # the LOG: populated unmeasured
    return rim[:48]


KERNEL = bytes(range(256)) * 40 + b"tail"
REALMS = {
    "params-only": synth.RealmSpec(hash_algo=2, s2sz=41, ram_size=1 << 30),
    "kernel-ragged": synth.RealmSpec(hash_algo=2, flags=6, sve_vl=3, pmu_num_ctrs=6, ram_size=1 << 30,
                                     images=(synth.Image("KERNEL", synth.RAM_BASE + 0x200000 + 0xAB0, KERNEL),),
                                     pc=synth.RAM_BASE + 0x200000, gprs=(0x48000000, 0, 0, 0, 0, 0, 0, 0)),
    "two-images-unaligned-ram": synth.RealmSpec(
        hash_algo=2, ram_size=(1 << 30) + (6 << 20) + 3 * GRANULE,
        images=(synth.Image("KERNEL", synth.RAM_BASE + 0x200000, KERNEL),
                synth.Image("DTB", synth.RAM_BASE + 0x8000000, b"\xd0\x0d\xfe\xed" * 300)),
        rec_flags=0),
}


@pytest.mark.parametrize("name", sorted(REALMS))
@pytest.mark.parametrize("profile", ["1.0-rel0", "2.0"])
def test_sha384_rims_are_the_spec_s(impl, name, profile):
    from fastrim.rim.replay import ReplayOptions

    spec = REALMS[name]
    result = replay_spec(spec, impl, options=ReplayOptions(profile=profile))
    assert len(result.rim) == 48
    assert result.rim == independent_rim(spec, measure_ripas=profile != "2.0")


def test_a_sha384_log_frames_with_tcg_algorithm_0x000c(impl):
    spec = REALMS["kernel-ragged"]
    log = tcg.parse(synth.write_log(spec), impl=impl)
    assert log.algs == ((0x000C, 48),)
    realm = cca.decode(log).realm
    assert (realm.hash_algo, realm.hash_name) == (2, "sha384")
    image = next(s.record for s in cca.decode(log).steps if isinstance(s.record, cca.ImageLoad) and s.record.digest)
    assert image.digest == hashlib.sha384(KERNEL).digest()


@pytest.mark.parametrize("flags, ok_under", [
    (0b111, {"1.0-rel0", "1.0-eac2", "2.0"}),  # LPA2, SVE, PMU: every RMM
    (1 << 3, {"2.0"}),  # DA
    (0b11 << 7, {"2.0"}),  # the MEC policy
    (1 << 4, set()),  # reserved everywhere
    (1 << 63, set()),
])
@pytest.mark.parametrize("profile", ["1.0-rel0", "1.0-eac2", "2.0"])
def test_realm_flags_are_those_of_the_profile(impl, flags, ok_under, profile):
    from fastrim.errors import LogFormatError
    from fastrim.rim.replay import ReplayOptions

    spec = synth.RealmSpec(hash_algo=2, flags=flags, ram_size=1 << 30)
    options = ReplayOptions(profile=profile)
    if profile in ok_under:
        result = replay_spec(spec, impl, options=options)
        if profile == "2.0":  # measured as logged
            assert result.rim == independent_rim(spec, measure_ripas=False)
    else:
        with pytest.raises(LogFormatError) as info:
            replay_spec(spec, impl, options=options)
        assert info.value.code == "log.bad_realm_params" and info.value.offset is not None
