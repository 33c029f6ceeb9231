"""The first verify on a fresh cache directory hashes only what its log
needs: the files of each logged image's size, with the log's algorithm,
and reads the right one once for both its digest and its granules."""

import json

import pytest

from fastrim.algorithms import SHA256, SHA384, SHA512
from fastrim.fleetgen import synth
from fastrim.store.refs import RefStore
from fastrim.verifier import Context, LogSource, Settings, verify

KERNEL = bytes(range(256)) * 48 + b"kernel tail"
INITRD = b"\x5a" * 20000
DECOY = bytes(reversed(KERNEL))  # the kernel's size, another digest: it must be hashed, and refused
OTHERS = {"big-firmware.bin": b"\x11" * 300000, "unused-dtb.dtb": b"\x22" * 7000}


@pytest.mark.parametrize("hash_algo, algorithm", [(0, SHA256), (1, SHA512), (2, SHA384)])
def test_a_fresh_verify_hashes_only_the_logs_images_with_its_algorithm(tmp_path, impl, hash_algo, algorithm):
    refs_dir = tmp_path / "refs"
    refs_dir.mkdir()
    for name, data in {"a-decoy.bin": DECOY, "kernel.bin": KERNEL, "initrd.img": INITRD, **OTHERS}.items():
        (refs_dir / name).write_bytes(data)
    spec = synth.RealmSpec(hash_algo=hash_algo, images=(synth.Image("KERNEL", synth.RAM_BASE + 0x123, KERNEL),
                                                         synth.Image("INITRD", synth.RAM_BASE + (8 << 20), INITRD)),
                           log_base=synth.RAM_BASE + (16 << 20))
    log = tmp_path / "vm.log"
    log.write_bytes(synth.write_log(spec))
    cache = tmp_path / "cache"
    store = RefStore(refs_dir, cache_dir=str(cache), index=())
    assert store.hashed == 0
    verdict = verify(Context.from_settings(Settings(store, cache_dir=str(cache), backend=impl.NAME)),
                     LogSource(str(log)))
    assert verdict.status == "unverified" and verdict.error_code is None, verdict.detail
    assert [ref.name for _, ref in verdict.images if ref is not None] == ["kernel.bin", "initrd.img"]
    # Whole-file digests: the two images and the decoy of the kernel's size, nothing else, one algorithm.
    assert store.hashed_bytes == len(KERNEL) + len(DECOY) + len(INITRD)
    # Granule contents: the two images, plus the decoy when it was measured beside its digest.
    assert verdict.bytes_hashed in (len(KERNEL) + len(INITRD), len(KERNEL) + len(INITRD) + len(DECOY))
    index = json.loads(open(store.index_path, "rb").read().partition(b"\n")[2])["files"]
    assert {name: sorted(digests) for name, (_, digests) in index.items() if digests} == {
        "a-decoy.bin": [algorithm.name], "kernel.bin": [algorithm.name], "initrd.img": [algorithm.name]}
    again = RefStore(refs_dir, cache_dir=str(cache), index=())  # what was learnt is kept
    assert again.find(algorithm.tcg_id, algorithm.new(KERNEL).digest()).name == "kernel.bin"
    assert again.hashed == 0


def test_a_same_size_file_that_vanishes_or_changes_after_listing_is_skipped(tmp_path, impl):
    refs_dir = tmp_path / "refs"
    refs_dir.mkdir()
    (refs_dir / "a-other.bin").write_bytes(DECOY)  # listed first, the kernel's size
    (refs_dir / "b-gone.bin").write_bytes(DECOY[::-1])
    (refs_dir / "kernel.bin").write_bytes(KERNEL)
    spec = synth.RealmSpec(images=(synth.Image("KERNEL", synth.RAM_BASE, KERNEL),), log_base=synth.RAM_BASE + (4 << 20))
    log = tmp_path / "vm.log"
    log.write_bytes(synth.write_log(spec))
    store = RefStore(refs_dir, cache_dir=str(tmp_path / "cache"), index=())
    (refs_dir / "a-other.bin").write_bytes(b"rewritten" * 100)  # changed since it was listed
    (refs_dir / "b-gone.bin").unlink()
    verdict = verify(Context.from_settings(Settings(store, cache_dir=str(tmp_path / "cache"), backend=impl.NAME)),
                     LogSource(str(log)))
    assert (verdict.status, verdict.error_code) == ("unverified", None), verdict.detail
    assert [ref.name for _, ref in verdict.images if ref is not None] == ["kernel.bin"]
