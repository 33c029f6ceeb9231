"""The reference store index and the content-hash cache: reuse what is
unchanged, and never trust a damaged or stale file."""

import hashlib
import os

import pytest

from fastrim.algorithms import SHA256, SHA512
from fastrim.backend import fallback
from fastrim.errors import ReferenceImageError
from fastrim.store.content import ContentCache
from fastrim.store.refs import RefStore


def test_index_rehashes_only_new_or_changed_files(tmp_path):
    refs = tmp_path / "refs"
    (refs / "sub").mkdir(parents=True)
    (refs / "a.bin").write_bytes(b"a" * 5000)
    (refs / "sub" / "b.bin").write_bytes(b"b" * 7000)
    store = RefStore(refs, cache_dir=tmp_path / "cache")
    assert (len(store), store.hashed) == (2, 2)
    assert RefStore(refs, cache_dir=tmp_path / "cache").hashed == 0
    (refs / "a.bin").write_bytes(b"A" * 5000)
    os.utime(refs / "a.bin", ns=(1, 1))
    store = RefStore(refs, cache_dir=tmp_path / "cache")
    assert store.hashed == 1
    ref = store.find(SHA512.tcg_id, hashlib.sha512(b"A" * 5000).digest())
    assert ref.name == "a.bin" and ref.size == 5000
    assert store.find(SHA256.tcg_id, hashlib.sha256(b"a" * 5000).digest()) is None
    assert store.find(SHA256.tcg_id, hashlib.sha256(b"b" * 7000).digest()).name == os.path.join("sub", "b.bin")


def test_damaged_index_is_rebuilt(tmp_path):
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "a.bin").write_bytes(b"x")
    store = RefStore(tmp_path / "refs", cache_dir=tmp_path / "cache")
    with open(store.index_path, "w") as f:
        f.write('{"version": 1, "root": "nonsense", "fil')
    assert RefStore(tmp_path / "refs", cache_dir=tmp_path / "cache").hashed == 1


KERNEL = b"kernel" * 100


@pytest.fixture
def indexed_kernel(tmp_path):
    """A store holding one indexed image: (its file, the store, its reference)."""
    (tmp_path / "refs").mkdir()
    path = tmp_path / "refs" / "k.bin"
    path.write_bytes(KERNEL)
    store = RefStore(tmp_path / "refs", cache_dir=tmp_path / "cache")
    return path, store, store.find(SHA256.tcg_id, hashlib.sha256(KERNEL).digest())


def measured(store, ref, impl=fallback):
    """The RIM of the image loaded at 0 from a zero RIM, as a replay measures it."""
    with store.open(ref) as image:
        return image.measure(impl, SHA256.tcg_id, bytes(64), 0, False)[0]


def test_image_changed_after_indexing_is_refused(indexed_kernel):
    path, store, ref = indexed_kernel
    assert measured(store, ref) == fallback.rim_data(SHA256.tcg_id, bytes(64), KERNEL, 0, False)[0]
    path.write_bytes(b"KERNEL" * 100)
    os.utime(path, ns=(5, 5))
    with pytest.raises(ReferenceImageError) as info:
        measured(store, ref)
    assert info.value.code == "ref.changed"


def test_an_image_rewritten_with_its_old_size_and_mtime_is_still_caught(indexed_kernel, tmp_path):
    path, store, ref = indexed_kernel
    st = os.stat(path)
    with open(path, "r+b") as f:  # same size, same inode
        f.write(b"KERNEL")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime back
    with pytest.raises(ReferenceImageError) as info:
        measured(store, ref)
    assert info.value.code == "ref.changed"
    again = RefStore(tmp_path / "refs", cache_dir=tmp_path / "cache")
    assert again.hashed == 1, "the index noticed the change (ctime) and hashed the file again"
    assert again.find(SHA256.tcg_id, hashlib.sha256(KERNEL).digest()) is None


KEY = (SHA256.tcg_id, hashlib.sha256(b"img").digest(), 0xAB0)
CONTENTS = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(5))


def test_cache_round_trip(tmp_path):
    cache = ContentCache(tmp_path)
    assert cache.get(KEY, 5) is None
    cache.put(KEY, CONTENTS)
    assert bytes(cache.get(KEY, 5)) == CONTENTS
    assert cache.get((SHA256.tcg_id, KEY[1], 0), 5) is None  # another offset is another entry


@pytest.mark.parametrize("damage", ["flip-payload", "truncate", "empty", "garbage-header", "wrong-count"])
def test_damaged_cache_file_is_dropped_not_trusted(tmp_path, damage):
    cache = ContentCache(tmp_path)
    cache.put(KEY, CONTENTS)
    path = cache._path(KEY)
    data = bytearray(open(path, "rb").read())
    if damage == "flip-payload":
        data[-1] ^= 0xFF
    elif damage == "truncate":
        data = data[:-7]
    elif damage == "empty":
        data = b""
    elif damage == "garbage-header":
        data[:8] = b"NOTCACHE"
    open(path, "wb").write(bytes(data))
    count = 4 if damage == "wrong-count" else 5
    assert cache.get(KEY, count) is None
    assert cache.rejected == 1 and not os.path.exists(path)


def test_indexing_in_several_processes_gives_the_same_index(tmp_path):
    (tmp_path / "refs" / "sub").mkdir(parents=True)
    for i in range(6):
        (tmp_path / "refs" / ("sub" if i % 2 else "") / f"img{i}").write_bytes(bytes([i]) * (1000 * (i + 1)))
    one = RefStore(tmp_path / "refs", cache_dir=tmp_path / "c1", jobs=1)
    two = RefStore(tmp_path / "refs", cache_dir=tmp_path / "c2", jobs=2)
    assert one.hashed == two.hashed == 6
    assert open(one.index_path).read() == open(two.index_path).read()


def test_step_memo_is_shared_between_processes_and_runs_and_checked(tmp_path):
    from fastrim.store.steps import StepMemo, step_key

    key = step_key(SHA256.tcg_id, bytes(64), 0x40000000, 4096, b"\x01" * 32)
    assert key != step_key(SHA256.tcg_id, bytes(64), 0x40000000, 4096, None)  # measured vs unmeasured
    assert key != step_key(SHA512.tcg_id, bytes(64), 0x40000000, 4096, b"\x01" * 32)
    reader, writer = StepMemo(str(tmp_path)), StepMemo(str(tmp_path))
    assert reader.get(key) is None
    writer.put(key, b"\x42" * 64)
    assert reader.get(key) == b"\x42" * 64, "a miss reads what another process appended"
    assert StepMemo(str(tmp_path)).get(key) == b"\x42" * 64, "and a later run finds it"
    path = tmp_path / "steps" / "steps-v2.bin"
    damaged = bytearray(path.read_bytes())
    damaged[40] ^= 1  # inside the stored RIM
    path.write_bytes(bytes(damaged))
    fresh = StepMemo(str(tmp_path))
    assert fresh.get(key) is None and fresh.rejected == 1
    path.write_bytes(bytes(damaged) + b"torn")  # a record cut short by a crash
    assert StepMemo(str(tmp_path)).get(key) is None and not path.exists()
