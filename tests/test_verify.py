"""Verdicts of fastrim verify: a faithful log passes, every kind of lie fails
or errors, never passes; malformed CCA logs get their codes."""

import dataclasses
import os
import struct

import pytest
from helpers import replay_spec, verify_path
from hypothesis import given, settings
from hypothesis import strategies as st

from fastrim.errors import LogFormatError
from fastrim.evidence import expected
from fastrim.fleetgen import synth
from fastrim.log import cca, tcg
from fastrim.rim import replay
from fastrim.store.refs import RefStore

KERNEL = bytes(range(256)) * 40 + b"tail"
INITRD = os.urandom(3 * 4096 + 100)
DTB = b"\xd0\x0d\xfe\xed" + bytes(8000)

SPEC = synth.RealmSpec(
    hash_algo=0, s2sz=41, ram_base=0x40000000, ram_size=64 << 20,
    images=(
        synth.Image("KERNEL", 0x40200000, KERNEL),
        synth.Image("INITRD", 0x48000AB0, INITRD),
        synth.Image("DTB", 0x48100000, DTB),
    ),
    pc=0x40200000, gprs=(0x48100000, 0, 0, 0, 0, 0, 0, 0), log_base=0x48200000,
)


@pytest.fixture
def fleet(tmp_path, impl):
    refs_dir = tmp_path / "refs"
    refs_dir.mkdir()
    for image in SPEC.images:
        (refs_dir / f"{image.description.lower()}.img").write_bytes(image.data)
    refs = RefStore(refs_dir, cache_dir=tmp_path / "cache")
    good = tmp_path / "good.log"
    good.write_bytes(synth.write_log(SPEC))
    rim = verify_path(str(good), refs, impl=impl).rim
    return tmp_path, refs, rim


def _verify(fleet, impl, log_bytes, spec_name="x.log", expected=True):
    tmp_path, refs, rim = fleet
    path = tmp_path / spec_name
    path.write_bytes(log_bytes)
    return verify_path(str(path), refs, rim if expected else None, impl=impl, cache_dir=tmp_path / "cache")


def test_faithful_log_passes(fleet, impl):
    verdict = _verify(fleet, impl, synth.write_log(SPEC))
    assert (verdict.status, verdict.error_code) == ("pass", None)
    assert [ref.name for _, ref in verdict.images if ref] == ["kernel.img", "initrd.img", "dtb.img"]
    assert verdict.hash_algo == "sha256" and verdict.realm.s2sz == 41


def test_without_expected_rim_the_verdict_is_unverified_with_the_rim(fleet, impl):
    verdict = _verify(fleet, impl, synth.write_log(SPEC), expected=False)
    assert verdict.status == "unverified" and verdict.rim == fleet[2]


def _moved(spec, description, delta):
    return dataclasses.replace(spec, images=tuple(
        dataclasses.replace(i, base=i.base + delta) if i.description == description else i for i in spec.images))


@pytest.mark.parametrize(
    "tampered",
    [
        _moved(SPEC, "DTB", 0x1000),  # an image logged at another address
        _moved(SPEC, "INITRD", 1),  # same granules, other offset within them
        dataclasses.replace(SPEC, s2sz=42),  # a changed parameter
        dataclasses.replace(SPEC, num_bps=4),
        dataclasses.replace(SPEC, ram_size=(64 << 20) + 4096),
        dataclasses.replace(SPEC, pc=SPEC.pc + 4),
        dataclasses.replace(SPEC, log_base=SPEC.log_base + 0x1000),
    ],
    ids=["dtb-moved", "initrd-shifted", "s2sz", "num_bps", "ram-size", "pc", "log-moved"],
)
def test_a_lie_in_the_log_fails(fleet, impl, tampered):
    verdict = _verify(fleet, impl, synth.write_log(tampered))
    assert (verdict.status, verdict.error_code) == ("fail", "rim.mismatch")


def test_a_changed_image_byte_is_an_unknown_image(fleet, impl):
    kernel = bytearray(KERNEL)
    kernel[100] ^= 1
    spec = dataclasses.replace(SPEC, images=(synth.Image("KERNEL", 0x40200000, bytes(kernel)),) + SPEC.images[1:])
    verdict = _verify(fleet, impl, synth.write_log(spec))
    assert (verdict.status, verdict.error_code) == ("error", "ref.unknown_image")
    assert "KERNEL" in verdict.detail


def _without_event(raw, predicate):
    log = tcg.parse(raw)
    event = next(e for e in log.framing.events if predicate(e))
    end = event.data_offset + event.data_size
    return (raw[: event.offset] + raw[end:]).ljust(len(raw), b"\0")


@pytest.mark.parametrize("which", ["REC_CREATE", "INIT_RIPAS", "DTB"])
def test_a_missing_event_fails(fleet, impl, which):
    raw = synth.write_log(SPEC)
    decoded = cca.decode(tcg.parse(raw))
    offset = next(s.offset for s in decoded.steps
                  if type(s.record).__name__ == {"REC_CREATE": "RecCreate", "INIT_RIPAS": "InitRipas"}.get(which)
                  or getattr(s.record, "description", None) == which)
    verdict = _verify(fleet, impl, _without_event(raw, lambda e: e.offset == offset))
    assert (verdict.status, verdict.error_code) == ("fail", "rim.mismatch")


@pytest.mark.parametrize("attested, status", [
    (lambda rim: rim + bytes(32), "pass"),  # the RMM's whole 64-byte field
    (lambda rim: rim + bytes(16), "pass"),  # padded to 48
    (lambda rim: rim + bytes(8), "fail"),  # 40 bytes: no RMM field is that wide
    (lambda rim: rim + b"\1" + bytes(31), "fail"),  # anything but zeros in the tail
    (lambda rim: rim[:31], "fail"),
    (lambda rim: rim[:31] + bytes(33), "fail"),
], ids=["zero-to-64", "zero-to-48", "zero-to-40", "non-zero-tail", "short", "short-padded"])
def test_a_padded_expected_rim_matches_only_with_a_zero_tail(fleet, impl, attested, status):
    tmp_path, refs, rim = fleet
    (tmp_path / "x.log").write_bytes(synth.write_log(SPEC))
    verdict = verify_path(str(tmp_path / "x.log"), refs, attested(rim), impl=impl)
    assert (verdict.status, verdict.error_code) == (status, None if status == "pass" else "rim.mismatch")


def test_sidecar_rim_is_read(fleet, tmp_path):
    (tmp_path / "a.log").write_bytes(b"")
    assert expected.sidecar_rim(str(tmp_path / "a.log")) is None
    (tmp_path / "a.rim").write_text(fleet[2].hex() + "\n")  # X.rim beside X.log, as design.md says
    assert expected.sidecar_rim(str(tmp_path / "a.log")) == fleet[2]
    assert expected.sidecar_path("dir/b.bin", ".rim") == "dir/b.rim"
    assert expected.sidecar_path("dir/c.evlog", ".rim") == "dir/c.evlog.rim"


def test_the_sidecar_is_read_by_verify_and_an_explicit_rim_beats_it(fleet, impl):
    tmp_path, refs, rim = fleet
    log = tmp_path / "s.log"
    log.write_bytes(synth.write_log(SPEC))
    (tmp_path / "s.rim").write_text("00" * 32)
    from_sidecar = verify_path(str(log), refs, impl=impl)
    assert (from_sidecar.status, from_sidecar.rim_source, from_sidecar.expected_rim) == ("fail", "sidecar", bytes(32))
    given = verify_path(str(log), refs, rim, impl=impl)
    assert (given.status, given.rim_source) == ("pass", "given")
    (tmp_path / "s.rim").write_text("not hex")
    broken = verify_path(str(log), refs, impl=impl)
    assert (broken.status, broken.error_code, broken.rim) == ("error", "input.bad_rim", rim)


@pytest.mark.parametrize(
    "spec, code",
    [
        (dataclasses.replace(SPEC, images=SPEC.images + (synth.Image("EXTRA", 0x40200000 + 8192, b"x" * 10),)),
         "log.granule_reused"),
        (dataclasses.replace(SPEC, log_base=0x48100000 + 4096), "log.granule_reused"),
        (dataclasses.replace(SPEC, images=(synth.Image("KERNEL", 1 << 40, KERNEL),)), "log.outside_realm"),
        (dataclasses.replace(SPEC, ram_size=1 << 40), "log.outside_realm"),
        (dataclasses.replace(SPEC, ram_base=0x40000800), "log.bad_ripas"),
        (dataclasses.replace(SPEC, hash_algo=3), "log.unsupported_hash_algo"),
    ],
    ids=["image-overlap", "log-over-dtb", "image-outside", "ram-outside", "ripas-unaligned", "hash-algo-3"],
)
def test_impossible_logs_are_errors(fleet, impl, spec, code):
    if spec.hash_algo == 3:
        raw = bytearray(synth.write_log(SPEC))
        realm = next(s for s in cca.decode(tcg.parse(bytes(raw))).steps if isinstance(s.record, cca.RealmCreate))
        raw[realm.offset + 16 + 8 + 13] = 3  # record header, tag header, then hash_algo at +13
        raw = bytes(raw)
    else:
        raw = synth.write_log(spec)
    verdict = _verify(fleet, impl, raw)
    assert (verdict.status, verdict.error_code) == ("error", code)
    assert "offset" in verdict.detail


def _tag_event(tag_id, payload):
    return struct.pack("<IIII", 0, 6, 0, 8 + len(payload)) + struct.pack("<II", tag_id, len(payload)) + payload


def _with_events_after_header(extra, spec=SPEC):
    raw = synth.write_log(spec)
    header = tcg.parse(raw).framing.events[1].offset
    return (raw[:header] + extra + raw[header:])[: len(raw)]


@pytest.mark.parametrize(
    "extra, code",
    [
        (_tag_event(2, struct.pack("<QQ", 0x40000000, 4096)), "log.out_of_order"),
        (_tag_event(1, bytes(8)), "log.bad_payload"),
        (_tag_event(3, bytes(40)), "log.bad_payload"),
        (struct.pack("<IIII", 0, 0x13, 0, 20) + b"\x03LOG" + struct.pack("<QQ", 0x40000000, 4096),
         "log.out_of_order"),
    ],
    ids=["ripas-before-realm", "short-realm-create", "short-rec", "image-before-realm"],
)
def test_misordered_or_short_events_are_log_errors(impl, extra, code):
    with pytest.raises(LogFormatError) as info:
        cca.decode(tcg.parse(_with_events_after_header(extra), impl=impl))
    assert info.value.code == code and info.value.offset is not None


def test_second_realm_create_is_an_error(impl):
    realm = struct.pack("<QBBBBBB2x", 0, 41, 0, 5, 3, 0, 0)
    raw = synth.write_log(SPEC)
    end = tcg.parse(raw).framing.events[-1]
    log = (raw[: end.data_offset + end.data_size] + _tag_event(1, realm)).ljust(len(raw), b"\0")
    with pytest.raises(LogFormatError) as info:
        cca.decode(tcg.parse(log, impl=impl))
    assert info.value.code == "log.duplicate_realm_create"


@pytest.mark.parametrize(
    "s2sz, sizes",
    [(48, [1 << 39, 1 << 30, 1 << 21, 1 << 12]), (41, [1 << 30, 1 << 21, 1 << 12]), (34, [1 << 21, 1 << 12])],
)
def test_rtt_block_sizes_follow_the_spec_examples(s2sz, sizes):
    assert replay.block_sizes(s2sz) == sizes


def test_ripas_split_of_the_spec_example():
    blocks = list(replay.ripas_blocks(0x40000000, 0x40000000 + (128 << 20), 41))
    assert len(blocks) == 64 and all(t - b == 2 << 20 for b, t in blocks)
    ragged = list(replay.ripas_blocks(0x3FFFF000, 0x80201000, 41))
    assert ragged[0] == (0x3FFFF000, 0x40000000) and ragged[1] == (0x40000000, 0x80000000)
    assert ragged[-1] == (0x80200000, 0x80201000)


def test_profiles_and_host_options_change_the_rim(impl):
    results = {}
    for name, options in {
        "rel0": replay.ReplayOptions(),
        "eac2": replay.ReplayOptions(profile="1.0-eac2"),
        "2.0": replay.ReplayOptions(profile="2.0"),
        "lpa2": replay.ReplayOptions(force_lpa2=True),
        "counts": replay.ReplayOptions(bps_wps_as_counts=True),
    }.items():
        results[name] = replay_spec(SPEC, impl, options=options).rim
    assert len(set(results.values())) == len(results)
    # bps/wps given as counts measure as count - 1
    counts = dataclasses.replace(SPEC, num_bps=SPEC.num_bps + 1, num_wps=SPEC.num_wps + 1)
    assert replay_spec(counts, impl, options=replay.ReplayOptions(bps_wps_as_counts=True)).rim == results["rel0"]


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError):
        replay.ReplayOptions(profile="3.0")


@settings(max_examples=300, deadline=None)
@given(claims=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 3)), max_size=12))
def test_the_granule_ledger_refuses_exactly_the_overlaps_a_full_scan_finds(claims):
    """The sorted ledger against the plain all-pairs check, zero-size images included."""
    ledger, seen = replay._GranuleLedger(), []
    for n, (granule, count) in enumerate(claims):
        first, end = granule * 4096, (granule + count) * 4096
        overlaps = any(first < hi and lo < end for lo, hi in seen)
        try:
            ledger.claim(first, count, f"image{n}", n)
        except LogFormatError as exc:
            assert overlaps and exc.code == "log.granule_reused"
            continue
        assert not overlaps
        seen.append((first, end))
