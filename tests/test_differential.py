"""Randomised differential tests: the C and Python backends agree byte for
byte on random realms, granules, descriptors and logs."""

import hashlib

from helpers import replay_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastrim import errors
from fastrim.algorithms import SHA256, SHA384, SHA512
from fastrim.fleetgen import synth
from fastrim.log.tcg import DEFAULT_MAX_EVENT_SIZE

GRANULE = 4096
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def realms(draw):
    s2sz = draw(st.integers(33, 48))
    ram_base = 0x40000000
    protected = 1 << (s2sz - 1)
    ram_size = min(draw(st.integers(1, 2048)) * GRANULE * draw(st.sampled_from([1, 16, 512])), protected - ram_base)
    images = []
    cursor = ram_base
    for description in draw(st.lists(st.sampled_from(["FIRMWARE", "KERNEL", "INITRD", "DTB"]),
                                     max_size=3, unique=True)):
        base = cursor + draw(st.integers(0, 3)) * GRANULE + draw(st.sampled_from([0, 0, 1, 0xAB0, 4095]))
        data = draw(st.binary(min_size=0, max_size=3 * GRANULE + 7))
        images.append(synth.Image(description, base, data))
        cursor = (base + len(data) + GRANULE - 1) // GRANULE * GRANULE
    return synth.RealmSpec(
        hash_algo=draw(st.sampled_from([0, 1, 2])), flags=draw(st.integers(0, 7)), s2sz=s2sz,
        sve_vl=draw(st.integers(0, 15)), num_bps=draw(st.integers(0, 15)), num_wps=draw(st.integers(0, 15)),
        pmu_num_ctrs=draw(st.integers(0, 31)), ram_base=ram_base, ram_size=ram_size,
        images=tuple(images), rec_flags=draw(st.sampled_from([0, 1])),
        pc=draw(st.integers(0, 2**64 - 1)), gprs=tuple(draw(st.lists(st.integers(0, 2**64 - 1), min_size=8, max_size=8))),
        log_base=cursor + GRANULE,
    )


@SETTINGS
@given(spec=realms())
def test_random_realms_replay_identically_on_both_backends(both, spec):
    c_result, py_result = (replay_spec(spec, impl) for impl in both)
    assert c_result.steps == py_result.steps
    assert c_result.rim == py_result.rim
    assert len(c_result.rim) == {0: 32, 1: 64, 2: 48}[spec.hash_algo]


@SETTINGS
@given(
    alg=st.sampled_from([SHA256.tcg_id, SHA384.tcg_id, SHA512.tcg_id]),
    rim=st.binary(min_size=64, max_size=64),
    image=st.binary(max_size=5 * GRANULE),
    base=st.integers(0, 2**48),
    keep=st.booleans(),
)
def test_granule_functions_agree(both, alg, rim, image, base, keep):
    c_out, py_out = (impl.rim_data(alg, rim, image, base, keep) for impl in both)
    assert c_out == py_out
    rim_after, count, contents = c_out
    if keep:
        # the cached contents are plain content hashes of the zero-padded granules
        fn = {SHA256.tcg_id: hashlib.sha256, SHA384.tcg_id: hashlib.sha384, SHA512.tcg_id: hashlib.sha512}[alg]
        head = base % GRANULE
        padded = bytes(head) + image + bytes(count * GRANULE - head - len(image))
        assert contents == b"".join(fn(padded[i:i + GRANULE]).digest() for i in range(0, len(padded), GRANULE))
        # the chain over cached contents gives the same RIM as the fused call
        for impl in both:
            assert impl.rim_chain(alg, rim, base - head, count, contents) == rim_after


@SETTINGS
@given(alg=st.sampled_from([SHA256.tcg_id, SHA384.tcg_id, SHA512.tcg_id]), rim=st.binary(min_size=64, max_size=64),
       ipa=st.integers(0, 2**52) , n=st.integers(0, 8))
def test_unmeasured_chain_agrees(both, alg, rim, ipa, n):
    assert both[0].rim_chain(alg, rim, ipa, n, None) == both[1].rim_chain(alg, rim, ipa, n, None)


def _outcome(impl, data):
    try:
        framing = impl.frame(data, DEFAULT_MAX_EVENT_SIZE)
        return ("ok", framing.format, framing.algs, framing.end, list(framing.events))
    except errors.LogFormatError as exc:
        return (type(exc).__name__, exc.code, exc.offset, str(exc))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=realms(), flips=st.lists(st.tuples(st.integers(0, 1023), st.integers(0, 255)), max_size=6),
       cut=st.integers(0, 2048))
def test_mutated_logs_frame_identically(both, spec, flips, cut):
    log = bytearray(synth.write_log(spec))
    for position, value in flips:
        log[position] = value
    data = bytes(log[: len(log) - cut])
    assert _outcome(both[0], data) == _outcome(both[1], data)
