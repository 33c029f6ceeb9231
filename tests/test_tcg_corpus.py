"""The public TCG corpus: every file gets its expected outcome on both backends."""

import json

import pytest

from conftest import corpus_params
from fastrim import errors
from fastrim.log import pcr, tcg

NAMES = corpus_params("tcg/EXPECTED.json", lambda doc: sorted(doc["logs"]))


@pytest.fixture(scope="module")
def expected(corpus):
    return json.loads((corpus / "tcg" / "EXPECTED.json").read_text())["logs"]


def _hex_banks(banks):
    return {bank: {str(i): value.hex() for i, value in pcrs.items()} for bank, pcrs in banks.items()}


@pytest.mark.parametrize("name", NAMES)
def test_corpus_log_gets_its_expected_outcome(impl, corpus, expected, name):
    want = expected[name]
    data = (corpus / "tcg" / name).read_bytes()
    if want["expect"] == "reject":
        with pytest.raises(errors.LogFormatError) as info:
            tcg.parse(data, impl=impl)
        assert info.value.code.startswith("log.") and info.value.offset is not None
        return
    try:
        log = tcg.parse(data, impl=impl)
    except errors.LogFormatError:
        assert want["expect"] == "either"
        return
    banks = pcr.replay_pcrs(log)
    if want["expect"] == "either":
        return
    assert log.format == want["format"]
    assert log.bank_names == want["banks"]
    assert _hex_banks(banks) == want.get("pcrs", {})
    if "startup_locality" in want:
        assert pcr.startup_locality(log) == want["startup_locality"]


def test_all_55_good_logs_are_accepted(impl, corpus, expected):
    accepted = 0
    for name, want in expected.items():
        if want["expect"] == "ok":
            tcg.parse((corpus / "tcg" / name).read_bytes(), impl=impl)
            accepted += 1
    assert accepted == 55


@pytest.mark.parametrize("name", NAMES)
def test_backends_frame_corpus_identically(both, corpus, name):
    data = (corpus / "tcg" / name).read_bytes()
    outcomes = []
    for impl in both:
        try:
            framing = impl.frame(data, tcg.DEFAULT_MAX_EVENT_SIZE)
            outcomes.append((framing.format, framing.algs, framing.end, list(framing.events)))
        except errors.LogFormatError as exc:
            outcomes.append((type(exc), exc.code, exc.offset, str(exc)))
    assert outcomes[0] == outcomes[1]


def test_truncated_log_reports_the_record_offset(impl, corpus):
    with pytest.raises(errors.LogFormatError) as info:
        tcg.parse((corpus / "tcg/synthetic/mut-truncated-mid-event.bin").read_bytes(), impl=impl)
    assert (info.value.code, info.value.offset) == ("log.truncated", 861)


@pytest.mark.parametrize(
    "name, code",
    [
        ("synthetic/mut-digestcount-huge.bin", "log.too_many_digests"),
        ("synthetic/mut-eventsize-overflow.bin", "log.event_too_large"),
        ("synthetic/mut-specid-numalgs-huge.bin", "log.bad_spec_id"),
        ("synthetic/mut-unknown-algid.bin", "log.unknown_alg"),
        ("keylime/binary_bios_measurements-empty", "log.empty"),
    ],
)
def test_malformed_corpus_logs_get_specific_codes(impl, corpus, name, code):
    with pytest.raises(errors.LogFormatError) as info:
        tcg.parse((corpus / "tcg" / name).read_bytes(), impl=impl)
    assert info.value.code == code


def test_padding_tails_end_the_log_where_the_log_ends(impl, corpus):
    plain = pcr.replay_pcrs(tcg.parse((corpus / "tcg/tpm2-tools/event-sd-boot-fedora37.bin").read_bytes(), impl=impl))
    for tail in ("mut-trailing-zeros.bin", "mut-trailing-ff.bin"):
        log = tcg.parse((corpus / "tcg/synthetic" / tail).read_bytes(), impl=impl)
        assert log.end == 2611
        assert pcr.replay_pcrs(log) == plain
