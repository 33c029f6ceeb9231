"""The CCA vectors of the corpus (published values, single steps, complete
QEMU-layout logs with their images), reproduced on both backends."""

import json

import pytest

from conftest import corpus_params
from fastrim.algorithms import SHA256, SHA512
from fastrim.fleetgen import synth
from fastrim.log import cca, tcg
from fastrim.log.cca import RealmCreate, RecCreate
from fastrim.rim import replay
from fastrim.store import Caches
from fastrim.store.content import ContentCache
from fastrim.store.refs import RefStore

LOGS = corpus_params("cca/vectors.json", lambda doc: sorted(doc["logs"]))
ALGS = {"sha256": SHA256.tcg_id, "sha512": SHA512.tcg_id}


@pytest.fixture(scope="module")
def vectors(corpus):
    return json.loads((corpus / "cca" / "vectors.json").read_text())


@pytest.fixture(scope="module")
def refs(corpus, tmp_path_factory):
    return RefStore(corpus / "cca", cache_dir=tmp_path_factory.mktemp("refs"))


def _realm(hash_name, **params):
    hash_algo = {"sha256": 0, "sha512": 1}[hash_name]
    return RealmCreate(params.get("flags", 0), params.get("s2sz", 48), params.get("sve_vl", 0),
                       params.get("num_bps", 1), params.get("num_wps", 1), params.get("pmu", 0), hash_algo)


@pytest.mark.parametrize("hash_name", ["sha256", "sha512"])
def test_published_realm_create_vector(vectors, hash_name):
    want = next(v for k, v in vectors["published"].items() if k.startswith("realm_create"))[hash_name]
    assert replay.initial_rim(_realm(hash_name)).hex()[: len(want)] == want


def test_published_log_with_only_realm_create(vectors, impl):
    want = next(v for k, v in vectors["published"].items() if k.startswith("log with only"))["sha256"]
    log = synth.write_log(synth.RealmSpec(s2sz=48))
    decoded = cca.decode(tcg.parse(log, impl=impl))
    only_realm = cca.CcaLog(decoded.vm_version, decoded.realm, decoded.steps[:1])
    assert replay.replay_rim(only_realm, None, impl=impl).checked().rim.hex() == want


@pytest.mark.parametrize("hash_name", ["sha256", "sha512"])
def test_single_steps(vectors, impl, hash_name):
    steps = vectors["single_step"][hash_name]
    alg = ALGS[hash_name]
    start = replay.initial_rim(_realm(hash_name))
    dlen = 32 if hash_name == "sha256" else 64
    assert start[:dlen].hex() == steps["start"].split("-> ")[-1].strip()
    measured, _, _ = impl.rim_data(alg, start, bytes(4096), 0x40000000, False)
    assert measured[:dlen].hex() == steps["data_measured ipa=0x40000000 page=4096 zero bytes"]
    unmeasured = impl.rim_chain(alg, start, 0x40000000, 1, None)
    assert unmeasured[:dlen].hex() == steps["data_unmeasured ipa=0x40000000"]
    ripas = replay.ripas_rim(alg, start, 0x40000000, 0x40200000)
    assert ripas[:dlen].hex() == steps["ripas base=0x40000000 top=0x40200000"]
    runnable = RecCreate(1, 0x40000000, (0x48000000, 0, 0, 0, 0, 0, 0, 0))
    assert replay.rec_rim(alg, start, runnable)[:dlen].hex() == next(
        v for k, v in steps.items() if k.startswith("rec runnable"))


@pytest.mark.parametrize("cached", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("name", LOGS)
def test_complete_logs_replay_to_every_step(vectors, corpus, refs, impl, tmp_path, name, cached):
    want = vectors["logs"][name]
    cache = ContentCache(tmp_path)
    decoded = cca.decode(tcg.parse((corpus / "cca" / name).read_bytes(), impl=impl))
    runs = 2 if cached else 1
    for _ in range(runs):
        result = replay.replay_rim(decoded, refs, caches=Caches(cache), impl=impl).checked()
    assert [[label, value.hex()] for label, value in result.steps] == want["steps"]
    assert result.rim.hex() == want["rim"]
    assert {image.description: ref.name for image, ref in result.images if ref} == want["images"]
    assert result.cache_hits == (len(want["images"]) if cached else 0)


def loaded_images(decoded):
    return [step.record for step in decoded.steps if isinstance(step.record, cca.ImageLoad)]


def test_every_corpus_cca_event_is_decoded(corpus, impl):
    for path in sorted((corpus / "cca").glob("*.log")):
        log = tcg.parse(path.read_bytes(), impl=impl)
        decoded = cca.decode(log)
        assert decoded.vm_version.name == "QEMU"
        kinds = [type(s.record).__name__ for s in decoded.steps]
        assert kinds[:2] == ["RealmCreate", "InitRipas"] and kinds[-2:] == ["RecCreate", "ImageLoad"]
        # header + VM VERSION + every other event became a step
        assert len(decoded.steps) == len(log) - 2


def test_veraison_log_decodes_but_cannot_be_replayed(corpus, impl):
    log = tcg.parse((corpus / "tcg/veraison-cca/realm-bootlog.bin").read_bytes(), impl=impl)
    decoded = cca.decode(log)
    assert [i.description for i in loaded_images(decoded)] == ["KERNEL", "INITRD", "DTB"]
    assert loaded_images(decoded)[0].base == 0x80000000 and loaded_images(decoded)[0].size == 0x2BA9A00
    assert replay.replay_rim(decoded, None, impl=impl).error.code == "log.no_realm_create"


def test_writer_reproduces_the_corpus_logs_byte_for_byte(vectors, corpus):
    for name, want in vectors["logs"].items():
        raw = (corpus / "cca" / name).read_bytes()
        decoded = cca.decode(tcg.parse(raw))
        realm, vm = decoded.realm, decoded.vm_version
        records = [s.record for s in decoded.steps]
        ripas = next(r for r in records if isinstance(r, cca.InitRipas))
        rec = next(r for r in records if isinstance(r, RecCreate))
        images = tuple(
            synth.Image(r.description, r.base, (corpus / "cca" / want["images"][r.description]).read_bytes())
            for r in loaded_images(decoded) if r.description != "LOG"
        )
        spec = synth.RealmSpec(
            hash_algo=realm.hash_algo, flags=realm.flags, s2sz=realm.s2sz, sve_vl=realm.sve_vl,
            num_bps=realm.num_bps, num_wps=realm.num_wps, pmu_num_ctrs=realm.pmu_num_ctrs,
            ram_base=ripas.base, ram_size=ripas.size, num_cpus=vm.num_cpus, vmm_name=vm.name,
            vmm_version=vm.version, images=images, rec_flags=rec.flags, pc=rec.pc, gprs=rec.gprs,
            log_base=loaded_images(decoded)[-1].base,
        )
        assert synth.write_log(spec) == raw, name
