"""Bounded resources against hostile logs, shown with memory and time limits:
declared sizes never allocate, memory grows with the input only, and logs
that would mean hashing terabytes or splitting RIPAS without end are refused
before the work starts. Each case runs in a child process on one backend,
with its peak RSS measured there and a timeout as the hang guard."""

import json
import os
import struct
import subprocess
import sys

import pytest

from fastrim.fleetgen import synth
from fastrim.log import tcg
from fastrim.tcgdefs import EV_NO_ACTION

HANG_GUARD = 120  # seconds; the unbounded work would take hours
MIB = 1 << 20

CHILD = r"""
import json, resource, sys, time
from fastrim.backend import select
from fastrim.log import cca
from fastrim import errors
from fastrim.rim import replay
from fastrim.log import tcg
impl = select.load(sys.argv[1])
data = open(sys.argv[2], "rb").read()
options = replay.ReplayOptions(**json.loads(sys.argv[3]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.process_time()
try:
    log = tcg.parse(data, impl=impl)
    events = log.events
    outcome = ["parsed", len(events)]
    if cca.is_cca_log(log):
        outcome = ["rim", replay.replay_rim(cca.decode(log), None, options=options, impl=impl).checked().rim.hex()]
except errors.FastrimError as exc:
    outcome = ["error", exc.code, exc.offset]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "rss_growth": (after - before) * 1024, "cpu": time.process_time() - started}))
"""


def run_child(tmp_path, backend, data, **options):
    path = tmp_path / "input.log"
    path.write_bytes(data)
    env = dict(os.environ, FASTRIM_BACKEND=backend)
    run = subprocess.run([sys.executable, "-c", CHILD, backend, str(path), json.dumps(options)],
                         capture_output=True, text=True, timeout=HANG_GUARD, env=env)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def spec_id(algs=((0x0B, 32),)):
    body = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 106, 2, len(algs))
    body += b"".join(struct.pack("<HH", a, s) for a, s in algs) + b"\0"
    return struct.pack("<II", 0, EV_NO_ACTION) + bytes(20) + struct.pack("<I", len(body)) + body


def record(pcr=0, event_type=3, digests=(), data=b""):
    body = b"".join(struct.pack("<H", alg) + value for alg, value in digests)
    return struct.pack("<III", pcr, event_type, len(digests)) + body + struct.pack("<I", len(data)) + data


BACKENDS = ["cffi", "python"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lie", ["event_size", "digest_count", "spec_id_count"])
def test_declared_sizes_allocate_nothing(tmp_path, backend, lie):
    if lie == "event_size":
        data = spec_id() + struct.pack("<III", 0, 3, 0) + struct.pack("<I", 0xFFFFFFF0) + b"x" * 64
    elif lie == "digest_count":
        data = spec_id() + struct.pack("<III", 0, 3, 0xFFFFFFFF) + b"\x0b\x00" + bytes(40)
    else:
        data = struct.pack("<II", 0, EV_NO_ACTION) + bytes(20) + struct.pack("<I", 40) + b"Spec ID Event03\0" \
            + struct.pack("<IBBBBI", 0, 0, 2, 106, 2, 0xFFFFFFFF) + bytes(8)
    out = run_child(tmp_path, backend, data)
    assert out["outcome"][0] == "error"
    assert out["rss_growth"] < 4 * MIB  # a 4 GiB eventSize or 2^32 digests would need gigabytes


@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_grows_with_the_input_only(tmp_path, backend):
    # 8 MiB of the smallest records a crypto-agile log can hold (16 bytes, no digests, no data).
    data = spec_id() + record() * (8 * MIB // 16)
    out = run_child(tmp_path, backend, data)
    assert out["outcome"] == ["parsed", 8 * MIB // 16 + 1]
    # Measured: 14.8x (cffi) and 19.8x (python) of the input for these records, all of it the
    # per-event objects; records that carry digests and data cost far less per byte.
    assert out["rss_growth"] < 40 * len(data), out


def cca_log(images=(), ripas=(), s2sz=48):
    spec = synth.RealmSpec(s2sz=s2sz, ram_size=64 << 20, images=tuple(images), log_base=0x100000)
    log = bytearray(synth.write_log(spec))
    if ripas:  # more INIT_RIPAS events after the last event
        end = tcg.parse(bytes(log)).end
        extra = b"".join(synth._tag(synth.TAG_INIT_RIPAS, struct.pack("<QQ", base, size)) for base, size in ripas)
        log[end:end + len(extra)] = extra
    return bytes(log)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_terabyte_image_is_refused_before_any_hashing(tmp_path, backend):
    log = cca_log(images=[synth.Image("LOG2", 1 << 40, size=1 << 40)])  # unmeasured: no reference needed
    out = run_child(tmp_path, backend, log)
    assert out["outcome"][:2] == ["error", "log.too_large_to_measure"]
    assert out["cpu"] < 10  # 2^28 descriptors would be minutes of hashing


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_flood_of_ripas_ranges_is_refused(tmp_path, backend):
    # Each range covers the realm's whole protected half with unaligned ends: ~1,500 blocks each.
    top = 1 << 47
    log = cca_log(ripas=[(0x1000, top - 0x2000)] * 1000)
    out = run_child(tmp_path, backend, log, max_ripas_blocks=100_000)
    assert out["outcome"][:2] == ["error", "log.too_large_to_measure"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_thousands_of_images_replay_in_bounded_time(tmp_path, backend):
    images = [synth.Image("LOG", 0x80000000 + i * 4096, size=4096) for i in range(1500)]
    out = run_child(tmp_path, backend, cca_log(images=images))
    assert out["outcome"][0] == "rim"
    assert out["cpu"] < 30  # the granule ledger checks overlaps in n log n
