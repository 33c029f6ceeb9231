"""The differential oracle that every fuzzer here shares: the same bytes go
through both backends — framing, PCR replay, CCA decoding, RIM replay — and
the outcomes must be identical: the same events and digests, or the same
error class, code, offset and message.

Seeds are the corpus logs and writer-generated CCA logs whose images the
in-memory reference store holds, so that mutated logs still reach the
granule hashing. mutate() changes one field of one record (sizes, counts,
algIds, tag ids, payload lengths, descriptions, addresses, padding), which
plain byte flips reach only by luck.
"""

import pathlib
import random
import struct

from fastrim import errors
from fastrim.backend import select
from fastrim.fleetgen import synth
from fastrim.log import cca, pcr, tcg
from fastrim.rim import replay
from fastrim.store.refs import MemoryRefStore
from fastrim.tcgdefs import EV_EVENT_TAG

BACKENDS = ("cffi", "python")
REGRESSIONS = pathlib.Path(__file__).parent / "fuzz" / "regressions"

# Tight limits keep each execution short; they apply to both backends alike.
OPTIONS = replay.ReplayOptions(max_measured_bytes=64 << 20, max_ripas_blocks=4096)
MAX_EVENT_SIZE = 1 << 16


def _writer_realms():
    kernel = bytes(range(256)) * 33 + b"kernel"
    initrd = b"\x5a" * 5000
    dtb = b"\xd0\x0d\xfe\xed" + bytes(3000)
    images = (synth.Image("KERNEL", 0x40200000, kernel), synth.Image("INITRD", 0x48000AB0, initrd),
              synth.Image("DTB", 0x48100000, dtb))
    specs = [
        synth.RealmSpec(hash_algo=algo, s2sz=s2sz, ram_size=64 << 20, images=images[:n], pc=0x40200000,
                        log_base=0x48200000, rec_flags=rec)
        for algo, s2sz, n, rec in ((0, 41, 3, 1), (1, 44, 2, 1), (0, 33, 1, 0), (1, 48, 0, 1))
    ]
    refs = MemoryRefStore({f"{i.description.lower()}.bin": i.data for i in images})
    return specs, refs


_SPECS, REFS = _writer_realms()


def trimmed(log):
    """A log without most of its zero padding: same outcome, faster to fuzz."""
    end = len(log.rstrip(b"\0"))
    return log[: end + 16]


def seed_logs(corpus=None):
    seeds = [trimmed(synth.write_log(spec)) for spec in _SPECS]
    if corpus is not None:
        for path in sorted(corpus.rglob("*")):
            if path.suffix in (".bin", ".log") and path.stat().st_size <= 1 << 20:
                seeds.append(trimmed(path.read_bytes()))
    return seeds


def outcome(impl, data):
    """Everything the backend-dependent stages make of data, as plain values."""
    try:
        log = tcg.parse(data, max_event_size=MAX_EVENT_SIZE, impl=impl)
        events = [tuple(e) for e in log.events]
        banks = {bank: dict(values) for bank, values in pcr.replay_pcrs(log).items()}
    except errors.FastrimError as exc:
        return ("parse", type(exc).__name__, exc.code, exc.offset, str(exc))
    try:
        if not cca.is_cca_log(log):
            return ("tcg", log.format, log.algs, events, banks)
        decoded = cca.decode(log)
        result = replay.replay_rim(decoded, REFS, options=OPTIONS, impl=impl).checked()
        rim = ("rim", result.rim, result.steps, result.granules, result.bytes_hashed)
    except errors.FastrimError as exc:
        rim = ("replay", type(exc).__name__, exc.code, exc.offset, str(exc))
    return ("cca", log.format, events, banks, rim)


def check(data):
    """AssertionError unless both backends make the same of data."""
    c_out, py_out = (outcome(select.load(name), data) for name in BACKENDS)
    assert c_out == py_out, f"backends disagree on {len(data)} bytes:\n C: {c_out!r:.600}\n Py: {py_out!r:.600}"
    return c_out


# Values that sit on the edges of the checks.
INTERESTING = (0, 1, 2, 3, 4, 7, 8, 11, 12, 16, 20, 31, 32, 33, 48, 63, 64, 65, 127, 128, 255, 256, 4095, 4096,
               4097, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
ALG_IDS = (0x0004, 0x000B, 0x000C, 0x000D, 0x0012, 0x0000, 0xFFFF, 0x0001)


def _records(data):
    """(offset, pcr/type/count/alg/size field offsets) of the records the Python backend frames."""
    try:
        framing = select.load("python").frame(data, MAX_EVENT_SIZE)
    except errors.FastrimError as exc:
        return [], exc.offset or 0
    return list(framing.events), framing.end


def mutate(data, rng=random):
    """One field-aware change to data (or a byte-level one when nothing frames)."""
    out = bytearray(data)
    events, end = _records(bytes(out))
    if not events or rng.random() < 0.15:
        return _byte_mutation(out, rng, end)
    event = rng.choice(events)
    value32 = rng.choice(INTERESTING) if rng.random() < 0.8 else rng.getrandbits(32)
    choice = rng.randrange(9)
    if choice == 0:  # PCR index
        struct.pack_into("<I", out, event.offset, rng.choice((0, 7, 16, 23, 24, 0xFFFFFFFF, value32)))
    elif choice == 1:  # event type
        struct.pack_into("<I", out, event.offset + 4, rng.choice((3, 6, 0x80000008, 0x80000010, 0x0B, value32)))
    elif choice == 2 and event.digests:  # digest count (crypto-agile: right after the type)
        struct.pack_into("<I", out, event.offset + 8, value32)
    elif choice == 3 and event.digests:  # an algId
        digest = rng.choice(event.digests)
        struct.pack_into("<H", out, digest.offset - 2, rng.choice(ALG_IDS))
    elif choice == 4:  # eventSize
        struct.pack_into("<I", out, event.data_offset - 4, value32)
    elif choice in (5, 6, 7) and event.data_size >= 8:
        _payload_mutation(out, event, rng, value32, choice)
    elif choice == 8:  # padding after the last record
        tail = rng.choice((b"\xff" * 8, b"\x00" * 8, b"\x01", struct.pack("<I", value32)))
        out[end:end] = tail
    else:
        return _byte_mutation(out, rng, end)
    return bytes(out)


def _payload_mutation(out, event, rng, value32, choice):
    start = event.data_offset
    if choice == 5:  # tag id / image description length / payload length
        field = rng.choice((0, 4)) if event.type == EV_EVENT_TAG else 0
        if field == 0 and event.type != EV_EVENT_TAG:
            out[start] = value32 & 0xFF
        else:
            struct.pack_into("<I", out, start + field, rng.choice((1, 2, 3, 4, 0x45564D20, value32)))
    elif choice == 6:  # a 64-bit payload value: base, size, IPA, flags
        offset = start + rng.randrange(0, max(1, event.data_size - 7))
        value64 = rng.choice((0, 1, 4095, 4096, 1 << 32, 1 << 40, (1 << 52) - 4096, 2**64 - 1, rng.getrandbits(64)))
        struct.pack_into("<Q", out, offset, value64)
    else:  # a description or VM VERSION text byte
        out[start + rng.randrange(event.data_size)] = rng.choice((0, 0x2F, 0x2E, 0xFF, 0x41, rng.getrandbits(8)))


def regression_inputs():
    """Every input a fuzzer ever failed on, kept in tests/fuzz/regressions/."""
    return sorted(p for p in REGRESSIONS.iterdir() if not p.name.startswith("."))


def _byte_mutation(out, rng, end):
    if len(out) < 4:
        out.extend(bytes(4 - len(out)))
    kind = rng.randrange(4)
    if kind == 0:
        out[rng.randrange(len(out))] = rng.getrandbits(8)
    elif kind == 1:
        del out[rng.randrange(len(out)):]
    elif kind == 2:
        position = rng.randrange(len(out))
        out[position:position] = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 9)))
    else:
        position = rng.randrange(max(1, min(end + 8, len(out))))
        struct.pack_into("<I", out, min(position, max(0, len(out) - 4)), rng.choice(INTERESTING))
    return bytes(out)
