"""Endorsed reference values: `fastrim refvals` writes the RIMs of golden
logs as a CCA realm CoRIM; `--refvals` reads it (and Veraison's CoRIM and
CoMID files) and fails a realm whose replayed RIM no one endorsed, on
both backends."""

import json
import random

import cbor2
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import fastrim

from fastrim.errors import InputError
from fastrim.evidence import refvals
from fastrim.fleetgen import fleet

REFVALS = "cca-token/refvals"
VALID = {  # file -> the RIMs cca-token/README.md section 4 says it holds
    "corim_cca-realm-valid.cbor": ["1d1150bb35a9d1f18620a5cc2612e54e70f150b8fa1468939d520269e913d0ff"],
    "services_corim-cca-realm-valid.cbor": ["43" * 64],
    "services_comid-cca-realm-refval.json": ["43" * 64],
    "services_e2e_comid-cca-realm-refval.json": ["43" * 64],
}
INVALID = {  # file -> what the refusal says
    "corim_cca-realm-invalid-missing-rim.cbor": "without a cca.rim digest",
    "corim_cca-realm-invalid-rim-size.cbor": "16-byte class-id",
    "services_corim-cca-platform-valid.cbor": "not the CCA realm profile",
    "services_corim-cca-realm.json": "no triples",
    "services_comid-cca-platform-ta.json": "no reference-value triple with a cca.rim",
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_the_corpus_reference_values_load(corpus, name):
    assert [rim.hex() for rim in refvals.read_refvals(corpus / REFVALS / name)] == VALID[name]


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_reference_values_are_refused_with_their_reason(corpus, name):
    with pytest.raises(InputError) as info:
        refvals.read_refvals(corpus / REFVALS / name)
    assert info.value.code == "input.bad_refvals" and INVALID[name] in str(info.value) and name in str(info.value)


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    """A fleet, its clean logs by configuration, and a CoRIM of the clean logs of all configurations but one."""
    root = tmp_path_factory.mktemp("refvals-fleet")
    manifest = fleet.generate(str(root), vms=100, seed=11, tamper=0.3, scale=1 / 256)  # SHA-256, -384 and -512 realms
    clean, sha256 = {}, set()
    for want in manifest:
        if want["case"] == "clean":
            clean.setdefault(want["config"], []).append(want["log"])
            if len(want["rim"]) == 64:
                sha256.add(want["config"])
    left_out = sorted(sha256)[0]  # so that the other configurations hold each algorithm
    endorsed = [root / "logs" / names[0] for config, names in sorted(clean.items()) if config != left_out]
    corim = root / "golden.cbor"
    run = fastrim("refvals", *endorsed, "--refs", root / "refs", "--out", corim, cache=root / "cache")
    assert run.returncode == 0, run.stderr
    return root, manifest, clean, left_out, endorsed, corim


def test_the_corim_is_the_cca_realm_profile_s_structure(golden):
    root, manifest, clean, _, endorsed, corim = golden
    top = cbor2.loads(corim.read_bytes())
    assert top.tag == 501 and set(top.value) == {0, 1, 3}
    assert top.value[3] == cbor2.CBORTag(32, "tag:arm.com,2025:cca_realm#1.0.0")
    assert len(top.value[1]) == 1 and top.value[1][0].tag == 506
    comid = cbor2.loads(top.value[1][0].value)
    assert set(comid) == {1, 4} and len(comid[1][0]) == 16 and set(comid[4]) == {0}
    want = {bytes.fromhex(w["rim"]) for w in manifest if root / "logs" / w["log"] in endorsed}
    assert len(comid[4][0]) == len(want) and {len(rim) for rim in want} == {32, 48, 64}
    iana = {32: 1, 48: 7, 64: 8}  # sha-256, sha-384, sha-512 (the replay's digest size names its algorithm)
    for environment, measurements in comid[4][0]:
        rim = environment[0][0].value
        assert environment == {0: {0: cbor2.CBORTag(560, rim)}}
        assert measurements == [{0: "cca.rim", 1: {2: [[iana[len(rim)], rim]]}}]
    assert sorted(refvals.read_refvals(corim)) == sorted(want)


def test_the_same_logs_give_the_same_bytes(golden, tmp_path):
    root, _, _, _, endorsed, corim = golden
    shuffled = list(endorsed) * 2
    random.Random(1).shuffle(shuffled)
    again = tmp_path / "again.cbor"
    assert fastrim("refvals", *shuffled, "--refs", root / "refs", "--out", again, "-q").returncode == 0
    assert again.read_bytes() == corim.read_bytes()


@pytest.mark.parametrize("backend", ["cffi", "python"])
def test_verify_against_endorsed_values(golden, tmp_path, backend):
    root, _, clean, left_out, _, corim = golden

    def verify(name, *extra):
        run = fastrim("verify", root / "logs" / name, "--refs", root / "refs", "--refvals", corim, "--json", *extra,
                      backend=backend, cache=tmp_path / "c")
        return run.returncode, json.loads(run.stdout)

    endorsed_config = clean[next(c for c in sorted(clean) if c != left_out)]
    code, row = verify(endorsed_config[-1])  # another realm of an endorsed configuration
    assert (code, row["status"], row["endorsed"], row["endorsed_by"]) == (0, "pass", True, str(corim))
    code, row = verify(clean[left_out][0])  # its sidecar agrees with the replay, but no one endorsed it
    assert (code, row["status"], row["error_code"], row["endorsed"]) == (1, "fail", "rim.not_endorsed", False)
    assert row["expected_rim"] == row["rim"]
    code, row = verify(endorsed_config[0], "--rim", "00" * 32)  # endorsed, but not what was attested
    assert (code, row["error_code"], row["endorsed"]) == (1, "rim.mismatch", True)


def test_batch_rows_say_which_file_endorsed_each_realm(golden, tmp_path):
    root, manifest, clean, left_out, _, corim = golden
    json_refvals = tmp_path / "golden.json"
    endorsed = [root / "logs" / names[0] for config, names in sorted(clean.items()) if config != left_out]
    assert fastrim("refvals", *endorsed[:1], "--refs", root / "refs", "--out", json_refvals, "--json").returncode == 0
    out = tmp_path / "r.parquet"
    run = fastrim("batch", root / "logs", "--refs", root / "refs", "--out", out, "--refvals", json_refvals,
                  "--refvals", corim, cache=tmp_path / "c")
    assert run.returncode == 1, run.stderr
    rows = {r["log"]: r for r in pq.read_table(out).to_pylist()}
    config_of = {w["log"]: w["config"] for w in manifest}
    for name in clean[left_out]:
        assert (rows[name]["status"], rows[name]["error_code"], rows[name]["endorsed"]) == \
            ("fail", "rim.not_endorsed", False)
    first = endorsed[0].name
    assert rows[first]["endorsed_by"] == str(json_refvals)  # the first file that names it
    for config, names in clean.items():
        if config != left_out:
            assert all(rows[n]["status"] == "pass" and rows[n]["endorsed"] for n in names), config
    assert any(rows[n]["endorsed_by"] == str(corim) for n in rows if config_of[n] != config_of[first]
               and rows[n]["endorsed"])
    plain = fastrim("batch", root / "logs", "--refs", root / "refs", "--out", tmp_path / "p.parquet",
                    cache=tmp_path / "c")
    assert {r["endorsed"] for r in pq.read_table(tmp_path / "p.parquet").to_pylist()} == {None}, plain.stderr


def _key_files(tmp_path):
    private = ec.generate_private_key(ec.SECP384R1())
    pem = tmp_path / "endorser.pem"
    pem.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public = tmp_path / "endorser.pub"
    public.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    return pem, public


def test_a_signed_corim_is_checked_with_the_refvals_key(golden, tmp_path, corpus):
    root, _, clean, left_out, endorsed, corim = golden
    pem, public = _key_files(tmp_path)
    signed = tmp_path / "signed.cbor"
    assert fastrim("refvals", *endorsed, "--refs", root / "refs", "--out", signed, "--sign", pem).returncode == 0
    message = cbor2.loads(signed.read_bytes())
    assert message.tag == 18 and cbor2.loads(message.value[2]) == cbor2.loads(corim.read_bytes())
    header = cbor2.loads(message.value[0])
    assert (header[1], header[3], len(header[4]), cbor2.loads(header[8])) == \
        (-35, "application/rim+cbor", 32, {0: {0: "fastrim"}})  # alg, content type, kid, corim-meta (Veraison)
    again = tmp_path / "again.cbor"
    assert fastrim("refvals", *endorsed, "--refs", root / "refs", "--out", again, "--sign", pem).returncode == 0
    assert again.read_bytes() == signed.read_bytes()  # deterministic ECDSA
    name = clean[next(c for c in sorted(clean) if c != left_out)][0]

    def verify(*extra):
        return fastrim("verify", root / "logs" / name, "--refs", root / "refs", *extra, cache=tmp_path / "c")

    assert verify("--refvals", signed, "--refvals-key", public).returncode == 0
    other = verify("--refvals", signed, "--refvals-key", corpus / "cca-token/keys/cca_platform.pub")
    assert other.returncode == 2 and "does not verify" in other.stderr and str(signed) in other.stderr
    unsigned = verify("--refvals", corim, "--refvals-key", public)
    assert unsigned.returncode == 2 and "is not signed" in unsigned.stderr
    json_file = corpus / REFVALS / "services_comid-cca-realm-refval.json"
    unsignable = verify("--refvals", json_file, "--refvals-key", public)
    assert unsignable.returncode == 2 and "carries no signature" in unsignable.stderr


def _corim_around(comid, profile=refvals.PROFILE):
    return cbor2.dumps(cbor2.CBORTag(501, {0: "x", 1: [cbor2.CBORTag(506, cbor2.dumps(comid))],
                                           3: cbor2.CBORTag(32, profile)}))


def _triple(environment, digests):
    return {4: {0: [[environment, [{0: "cca.rim", 1: {2: digests}}]]]}}


RIM = b"\x01" * 32
HOSTILE = {
    "alg-a-list": _corim_around(_triple({0: {0: cbor2.CBORTag(560, RIM)}}, [[[1], RIM]])),
    "alg-a-bool": _corim_around(_triple({0: {0: cbor2.CBORTag(560, RIM)}}, [[True, RIM]])),
    "class-id-an-int": _corim_around(_triple({0: {0: cbor2.CBORTag(560, 5)}}, [[1, RIM]])),
    "environment-a-list": _corim_around(_triple([1, 2], [[1, RIM]])),
    "digests-an-int": _corim_around(_triple({}, 5)),
    "triples-an-int": _corim_around({4: {0: 5}}),
    "tags-an-int": cbor2.dumps(cbor2.CBORTag(501, {0: "x", 1: 5, 3: cbor2.CBORTag(32, refvals.PROFILE)})),
    "no-profile": cbor2.dumps(cbor2.CBORTag(501, {0: "x", 1: [cbor2.CBORTag(506, cbor2.dumps(_triple({}, [[1, RIM]])))]})),
    "json-class-a-string": json.dumps({"triples": {"reference-values": [
        {"environment": {"class": "x"}, "measurements": [{"key": {"value": "cca.rim"}, "value": {"digests": [[1, 5]]}}]}]}}).encode(),
    "json-key-twice": b'{"triples": {}, "triples": {}}',
    "json-digests-an-int": json.dumps({"triples": {"reference-values": [
        {"measurements": [{"key": {"value": "cca.rim"}, "value": {"digests": 5}}]}]}}).encode(),
    "not-utf8": b"{\xff\xfe",
    "deep": b"[" * 100000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_refvals_file_is_an_input_error_not_a_crash(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(HOSTILE[name])
    with pytest.raises(InputError) as info:
        refvals.read_refvals(path)
    assert info.value.code == "input.bad_refvals" and name in str(info.value)


def test_a_bad_refvals_file_is_a_usage_error_naming_it(golden, tmp_path, corpus):
    root, _, clean, _, _, _ = golden
    bad = corpus / REFVALS / "corim_cca-realm-invalid-rim-size.cbor"
    for path in (bad, tmp_path / "missing.cbor"):
        run = fastrim("batch", root / "logs", "--refs", root / "refs", "--jsonl", "--refvals", path)
        assert run.returncode == 2 and str(path) in run.stderr and run.stdout == "", run.stderr


def test_a_log_that_does_not_replay_is_named_and_left_out(golden, tmp_path):
    root, manifest, _, _, endorsed, _ = golden
    broken = next(w["log"] for w in manifest if w["status"] == "error")
    out = tmp_path / "r.cbor"
    run = fastrim("refvals", endorsed[0], root / "logs" / broken, "--refs", root / "refs", "--out", out)
    assert run.returncode == 1 and broken in run.stderr and "left out" in run.stderr
    assert len(refvals.read_refvals(out)) == 1


def test_a_signing_key_on_a_curve_cose_lacks_is_a_usage_error(golden, tmp_path):
    root, _, _, _, endorsed, _ = golden
    key = tmp_path / "k1.pem"
    key.write_bytes(ec.generate_private_key(ec.SECP256K1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    run = fastrim("refvals", *endorsed, "--refs", root / "refs", "--out", tmp_path / "s.cbor", "--sign", key)
    assert run.returncode == 2 and "secp256k1" in run.stderr and not (tmp_path / "s.cbor").exists()
