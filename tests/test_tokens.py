"""CCA attestation tokens: the public samples verify (or are refused) as
their README says, and tokens we sign ourselves around replayed RIMs give
every verdict, in verify and in batch, on both backends; EAR export."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import make_token, verify_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastrim.errors import TokenError
from fastrim.evidence import token
from fastrim.fleetgen import synth
from fastrim.output import ear
from fastrim.store.refs import RefStore

GOOD = {  # token -> (platform key file, RIM hex), from cca-token/README.md section 3a
    "ccatoken_tf-rmm_cca_token.cbor": ("cca_platform.pub", "00" * 32),
    "tfmtools_cca_token.cbor": ("cca_platform.pub", "00" * 32),
    "tfmtools_cca_token_at6e1d774.cbor": ("cca_platform.pem", "00" * 32),
    "tfmtools_cca_example_token_at3450f2a.cbor": ("cca_platform.pub", "311314ab73620350cf758834ae5c65d9e8c2dc7febe6e7d9654bbe864e300d49"),
    "tfmtools_cca_example_token.cbor": ("cca_platform.pub", "311314ab73620350cf758834ae5c65d9e8c2dc7febe6e7d9654bbe864e300d49"),
    "tfmtools_cca_example_token_legacy_at3450f2a.cbor": ("cca_platform.pub", "311314ab73620350cf758834ae5c65d9e8c2dc7febe6e7d9654bbe864e300d49"),
    "tfmtools_cca_example_token_legacy.cbor": ("cca_platform.pub", "311314ab73620350cf758834ae5c65d9e8c2dc7febe6e7d9654bbe864e300d49"),
    "ccatoken_go_testGoodCCAToken.cbor": ("ec.p256.jwk", "43" * 64),
    "ccatoken_go_testGoodLegacyCCAToken.cbor": ("ec.p256.jwk", "43" * 64),
    "services_cca-good.cbor": ("ec.p256.jwk", "43" * 64),
    "services_e2e_cca-evidence.cbor": ("ec.p256.jwk", "43" * 64),
    "services_parsec-cca_evidence.cbor": ("ec.p256.jwk", "43" * 64),
}
KEY_FILES = ["cca_platform.pub", "cca_platform.pem", "ec.p256.jwk", "alt-iak.p256.jwk"]


def corpus_key(corpus, name):
    return token.load_platform_key(corpus / "cca-token/keys" / name)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_every_good_sample_verifies_with_its_key_only(corpus, name):
    data = (corpus / "cca-token/tokens" / name).read_bytes()
    right, rim = GOOD[name]
    result = token.verify_token(data, [corpus_key(corpus, right)])
    assert result.trusted and (result.realm_signature, result.platform_signature, result.binding) == (True,) * 3
    assert result.rim.hex() == rim
    same_key = {"cca_platform.pub", "cca_platform.pem"} if right.startswith("cca_platform") else {right}
    for other in set(KEY_FILES) - same_key:
        wrong = token.verify_token(data, [corpus_key(corpus, other)])
        assert not wrong.trusted and wrong.platform_signature is False
        assert wrong.failures[0][0] == "token.platform_signature"


def test_a_realm_2_0_token_gives_its_instance_id_to_the_row(corpus):
    from fastrim.output.rows import row
    from fastrim.verifier import Verdict

    def columns(name):
        data = (corpus / "cca-token/tokens" / name).read_bytes()
        result = token.verify_token(data, [corpus_key(corpus, "cca_platform.pub")])
        assert result.trusted
        return row(Verdict("x.log", "pass", token=result))

    two = columns("tfmtools_cca_example_token.cbor")
    assert two["realm_profile"] == "tag:arm.com,2024:realm#2.0.0"
    assert two["realm_instance_id"] == bytes(range(1, 0x22))  # 0x01..0x21, cca-token/README.md section 3a
    one = columns("tfmtools_cca_example_token_at3450f2a.cbor")
    assert one["realm_profile"] == "tag:arm.com,2023:realm#1.0.0" and one["realm_instance_id"] is None


def test_the_fvp_token_has_a_good_realm_but_an_unverifiable_platform(corpus):
    data = (corpus / "cca-token/tokens/ccatoken_tf-rmm-original-fvp.cbor").read_bytes()
    result = token.verify_token(data, [corpus_key(corpus, k) for k in KEY_FILES])
    assert result.realm_signature and result.platform_signature is False and not result.binding
    assert result.rim.hex() == "7a56c95cf74d7a251a1e61c72f86026f19cb07b6fe098c47125ee6de81927474"


@pytest.mark.parametrize("name", ["ccatoken_go_testBadUnwrappedTokens.cbor", "tfmtools_cca_platform_token.cbor",
                                  "tfmtools_cca_example_platform_token.cbor"])
def test_malformed_or_bare_platform_tokens_are_refused(corpus, name):
    with pytest.raises(TokenError) as info:
        token.verify_token((corpus / "cca-token/tokens" / name).read_bytes(), [corpus_key(corpus, "ec.p256.jwk")])
    assert info.value.code == "token.malformed"


KERNEL = bytes(range(256)) * 20
SPEC = synth.RealmSpec(images=(synth.Image("KERNEL", 0x40200000, KERNEL),), pc=0x40200000, log_base=0x48200000)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    rak, platform, stranger = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP256R1()), \
        ec.generate_private_key(ec.SECP256R1())
    pem = root / "platform.pem"
    pem.write_bytes(platform.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    return rak, platform, stranger, pem


@pytest.fixture
def realm(tmp_path, impl):
    refs_dir = tmp_path / "refs"
    refs_dir.mkdir()
    (refs_dir / "kernel.bin").write_bytes(KERNEL)
    refs = RefStore(refs_dir, cache_dir=tmp_path / "cache")
    log = tmp_path / "vm.log"
    log.write_bytes(synth.write_log(SPEC))
    rim = verify_path(str(log), refs, impl=impl).rim
    return tmp_path, refs, log, rim


def verdict_cases(keys, rim):
    rak, platform, stranger, _ = keys
    return {
        "pass": (make_token(rim, rak, platform), ("pass", None)),
        "pass-399-raw-point": (make_token(rim, rak, platform, tag=399, profile=False), ("pass", None)),
        "other-rim": (make_token(b"\x01" * 32, rak, platform), ("fail", "rim.mismatch")),
        "rim-as-the-whole-64-byte-field": (make_token(rim + bytes(32), rak, platform), ("pass", None)),
        "rim-padded-to-48": (make_token(rim + bytes(16), rak, platform), ("pass", None)),
        "rim-then-not-zero": (make_token(rim + b"\x00" * 31 + b"\x01", rak, platform), ("fail", "rim.mismatch")),
        "bad-realm-signature": (make_token(rim, rak, platform, realm_signature=b"\x05" * 96),
                                ("fail", "token.realm_signature")),
        "untrusted-platform": (make_token(rim, rak, stranger), ("fail", "token.platform_signature")),
        "broken-binding": (make_token(rim, rak, platform, challenge=b"\x00" * 32), ("fail", "token.binding")),
        "undecodable": (b"\xd9\x03\x8b\xa1\x01", ("error", "token.malformed")),
    }


@pytest.mark.parametrize("case", ["pass", "pass-399-raw-point", "other-rim", "rim-as-the-whole-64-byte-field",
                                  "rim-padded-to-48", "rim-then-not-zero", "bad-realm-signature",
                                  "untrusted-platform", "broken-binding", "undecodable"])
def test_verify_with_a_token(realm, keys, impl, case):
    tmp_path, refs, log, rim = realm
    data, want = verdict_cases(keys, rim)[case]
    path = tmp_path / "vm.token"
    path.write_bytes(data)
    trust = [token.load_platform_key(keys[3])]
    explicit = verify_path(str(log), refs, token_path=str(path), platform_keys=trust, impl=impl)
    assert (explicit.status, explicit.error_code) == want
    assert explicit.rim == rim  # the replay is reported whatever the token says
    sidecar = verify_path(str(log), refs, platform_keys=trust, impl=impl)
    assert (sidecar.status, sidecar.error_code, sidecar.rim_source) == (*want, "token-sidecar")


def test_without_a_trust_anchor_a_good_token_never_passes(realm, keys, impl):
    tmp_path, refs, log, rim = realm
    (tmp_path / "vm.token").write_bytes(make_token(rim, keys[0], keys[1]))
    verdict = verify_path(str(log), refs, impl=impl)
    assert (verdict.status, verdict.error_code) == ("fail", "token.untrusted_platform")


def test_precedence_explicit_then_token_then_rim_sidecar(realm, keys, impl):
    tmp_path, refs, log, rim = realm
    trust = [token.load_platform_key(keys[3])]
    (tmp_path / "vm.rim").write_text("00" * 32)
    assert verify_path(str(log), refs, platform_keys=trust, impl=impl).rim_source == "sidecar"
    (tmp_path / "vm.token").write_bytes(make_token(rim, keys[0], keys[1]))
    by_token = verify_path(str(log), refs, platform_keys=trust, impl=impl)
    assert (by_token.status, by_token.rim_source) == ("pass", "token-sidecar")
    given = verify_path(str(log), refs, b"\x07" * 32, platform_keys=trust, impl=impl)
    assert (given.status, given.rim_source) == ("fail", "given")


@pytest.mark.parametrize("backend", ["cffi", "python"])
def test_batch_with_token_sidecars_and_ear_export(tmp_path, keys, backend):
    refs_dir, logs = tmp_path / "refs", tmp_path / "logs"
    refs_dir.mkdir()
    logs.mkdir()
    (refs_dir / "kernel.bin").write_bytes(KERNEL)
    log_bytes = synth.write_log(SPEC)
    (tmp_path / "probe.log").write_bytes(log_bytes)
    rim = verify_path(str(tmp_path / "probe.log"), RefStore(refs_dir, cache_dir=tmp_path / "c")).rim
    cases = verdict_cases(keys, rim)
    for case, (data, _) in cases.items():
        (logs / f"{case}.log").write_bytes(log_bytes)
        (logs / f"{case}.token").write_bytes(data)
    (logs / "rim-only.log").write_bytes(log_bytes)
    (logs / "rim-only.rim").write_text(rim.hex())
    out, ear_path = tmp_path / "r.parquet", tmp_path / "ear.jsonl"
    env = dict(os.environ, FASTRIM_BACKEND=backend, FASTRIM_CACHE_DIR=str(tmp_path / "cache"))
    run = subprocess.run([sys.executable, "-m", "fastrim", "batch", logs, "--refs", refs_dir, "--out", out,
                          "--platform-key", keys[3], "--ear", ear_path], capture_output=True, text=True, env=env)
    assert run.returncode == 1, run.stderr
    rows = {r["log"]: r for r in pq.read_table(out).to_pylist()}
    for case, (_, want) in cases.items():
        assert (rows[f"{case}.log"]["status"], rows[f"{case}.log"]["error_code"]) == want, case
    good = rows["pass.log"]
    assert (good["token_realm_signature"], good["token_platform_signature"], good["token_binding"]) == (True,) * 3
    assert good["realm_challenge"] == b"\x11" * 64 and good["realm_rems"] == [b"\x33" * 32] * 4
    assert good["token_platform_key"] == token.load_platform_key(keys[3]).fingerprint
    assert rows["rim-only.log"]["status"] == "pass" and rows["rim-only.log"]["rim_source"] == "sidecar"
    claims = [json.loads(line) for line in ear_path.read_text().splitlines()]
    by_log = {log: sub for c in claims for log, sub in c["submods"].items()}
    assert claims[0]["eat_profile"] == ear.EAR_PROFILE and len(by_log) == len(rows)
    assert by_log["pass.log"]["ear.status"] == "affirming"
    assert by_log["pass.log"]["ear.trustworthiness-vector"] == {"executables": 2, "instance-identity": 2}
    assert by_log["rim-only.log"]["ear.trustworthiness-vector"]["instance-identity"] == 0
    assert by_log["broken-binding.log"]["ear.status"] == "contraindicated"
    assert by_log["undecodable.log"]["fastrim.error-code"] == "token.malformed"


def test_a_bad_platform_key_file_is_a_usage_error(tmp_path):
    bad = tmp_path / "key.pem"
    bad.write_text("not a key")
    run = subprocess.run([sys.executable, "-m", "fastrim", "verify", tmp_path / "x.log", "--refs", tmp_path,
                          "--platform-key", bad], capture_output=True, text=True)
    assert run.returncode == 2 and "input.bad_key" in run.stderr


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=8),
       cut=st.integers(0, 64), tag=st.sampled_from([399, 907]), profile=st.booleans())
def test_mutated_tokens_decode_or_are_refused_never_crash(keys, flips, cut, tag, profile):
    """A token is written by the party being checked: any bytes give a result or a TokenError."""
    rak, platform, _, pem = keys
    data = bytearray(make_token(b"\x42" * 32, rak, platform, tag=tag, profile=profile))
    for position, value in flips:
        data[position % len(data)] = value
    data = bytes(data[: len(data) - cut])
    try:
        result = token.verify_token(data, [token.load_platform_key(pem)])
    except TokenError as exc:
        assert exc.code.startswith("token.")
    else:
        assert isinstance(result.rim, bytes) and (result.trusted or result.failures)
