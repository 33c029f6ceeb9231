"""Hand-built hostile logs: each malformed shape gets the same error class,
code and offset from both backends, with no allocation beyond the input."""

import struct

import pytest

from fastrim import errors
from fastrim.algorithms import SHA1, SHA256
from fastrim.log import pcr, tcg

SPEC_ID = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 106, 2, 2) + struct.pack(
    "<HHHH", SHA1.tcg_id, 20, SHA256.tcg_id, 32) + b"\0"
HEADER = struct.pack("<II", 0, 3) + bytes(20) + struct.pack("<I", len(SPEC_ID)) + SPEC_ID


def event2(pcr_index, event_type, digests, data, count=None):
    body = b"".join(struct.pack("<H", alg) + d for alg, d in digests)
    count = len(digests) if count is None else count
    return struct.pack("<III", pcr_index, event_type, count) + body + struct.pack("<I", len(data)) + data


GOOD = event2(0, 0x80000008, [(SHA1.tcg_id, b"\x11" * 20), (SHA256.tcg_id, b"\x22" * 32)], b"blob")


def outcome(impl, data, **kwargs):
    try:
        log = tcg.parse(data, impl=impl, **kwargs)
        return ("ok", log.format, len(log), log.end)
    except errors.LogFormatError as exc:
        return (exc.code, exc.offset)


CASES = {
    "empty": (b"", ("log.empty", 0)),
    "all-zero": (bytes(4096), ("log.empty", 0)),
    "all-ff": (b"\xff" * 100, ("log.empty", 0)),
    "short-header": (HEADER[:20], ("log.truncated", 0)),
    "text": (b"this is not an event log, honest!\n", ("log.bad_pcr", 0)),
    "header-only": (HEADER, ("ok", "crypto-agile", 1, len(HEADER))),
    "good": (HEADER + GOOD, ("ok", "crypto-agile", 2, len(HEADER + GOOD))),
    "zero-tail": (HEADER + GOOD + bytes(5000), ("ok", "crypto-agile", 2, len(HEADER + GOOD))),
    "ff-tail": (HEADER + GOOD + b"\xff" * 300, ("ok", "crypto-agile", 2, len(HEADER + GOOD))),
    "zero-record-then-garbage": (HEADER + GOOD + bytes(16) + b"junk", ("ok", "crypto-agile", 2, len(HEADER + GOOD))),
    "event-cut": (HEADER + GOOD[:-2], ("log.truncated", len(HEADER))),
    "digest-cut": (HEADER + GOOD[:20], ("log.truncated", len(HEADER))),
    "huge-event-size": (HEADER + GOOD[:-8] + struct.pack("<I", 0xFFFFFFFF) + b"blob",
                        ("log.event_too_large", len(HEADER))),
    "size-past-end": (HEADER + GOOD[:-8] + struct.pack("<I", 1000) + b"blob", ("log.truncated", len(HEADER))),
    "billion-digests": (HEADER + event2(0, 1, [], b"", count=10**9), ("log.too_many_digests", len(HEADER))),
    "unknown-alg": (HEADER + event2(0, 1, [(0x0013, b"")], b""), ("log.unknown_alg", len(HEADER))),
    "alg0-outside-no-action": (HEADER + event2(0, 1, [(0, b"\0" * 20)], b""), ("log.unknown_alg", len(HEADER))),
    "alg0-in-no-action": (HEADER + event2(0, 3, [(0, b"\0" * 20)], b"x"), ("ok", "crypto-agile", 2, None)),
    "bad-pcr": (HEADER + event2(99, 1, [], b""), ("log.bad_pcr", len(HEADER))),
    "pcr-none-kept": (HEADER + event2(0xFFFFFFFF, 1, [(SHA1.tcg_id, b"\1" * 20)], b""), ("ok", "crypto-agile", 2, None)),
    "numalgs-zero": (HEADER[:56] + struct.pack("<I", 0) + HEADER[60:], ("log.bad_spec_id", 0)),
    "vendor-past-end": (HEADER[:-1] + b"\x05", ("log.bad_spec_id", 0)),
    # a known algorithm at another size: its digests would be hashed at the wrong length
    "sha256-declared-48": (HEADER[:66] + struct.pack("<H", 48) + HEADER[68:], ("log.bad_spec_id", 0)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_shapes(impl, name):
    data, want = CASES[name]
    got = outcome(impl, data)
    if want[-1] is None:
        got = got[:-1] + (None,)
    assert got == want


def test_event_size_limit_is_configurable(impl):
    data = HEADER + event2(0, 1, [], b"x" * 5000)
    assert outcome(impl, data, max_event_size=4096)[0] == "log.event_too_large"
    assert outcome(impl, data, max_event_size=5000)[0] == "ok"


def test_pcr_none_events_are_kept_but_never_extended(impl):
    log = tcg.parse(HEADER + event2(0xFFFFFFFF, 1, [(SHA1.tcg_id, b"\1" * 20)], b"") + GOOD, impl=impl)
    assert [e.pcr for e in log.events] == [0, 0xFFFFFFFF, 0]
    banks = pcr.replay_pcrs(log)
    assert set(banks["sha1"]) == {0}


def test_events_carry_digests_and_data(impl):
    log = tcg.parse(HEADER + GOOD, impl=impl)
    event = log.events[1]
    assert event.digests == {SHA1.tcg_id: b"\x11" * 20, SHA256.tcg_id: b"\x22" * 32}
    assert (event.data, event.type_name) == (b"blob", "EV_EFI_PLATFORM_FIRMWARE_BLOB")
