"""Measurement-algorithm throughput: replaying one large image with SHA-256
and SHA-512, cold (content hashes computed), warm (content hashes read from
the cache) and the descriptor chain alone, next to hashlib hashing the same
bytes in one call in the same run (the single-stream limit of the machine).
"""

import functools
import hashlib
import tempfile
import time

from . import backends, cca, replay, synth, tcglog
from .contentcache import ContentCache
from .framing import GRANULE_SIZE
from .refstore import MemoryRefStore

ALGOS = {"sha256": 0, "sha512": 1}  # name -> RMM hash_algo
CASES = ("hashlib", "cold", "warm", "chain")


def bench_image(mib):
    """mib MiB of non-repeating bytes, cheap to make."""
    size = mib << 20
    block = b"".join(hashlib.sha512(i.to_bytes(4, "little")).digest() for i in range(1024))  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def single_image_realm(image, hash_algo):
    """A decoded CCA log that loads image as its kernel, with its reference store."""
    spec = synth.RealmSpec(hash_algo=hash_algo, s2sz=44, ram_size=1 << 30,
                           images=(synth.Image("KERNEL", 0x40000000, image),),
                           log_base=0x40000000 + len(image) + GRANULE_SIZE)
    return cca.decode(tcglog.parse(synth.write_log(spec))), MemoryRefStore({"kernel.bin": image})


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(algos=tuple(ALGOS), backend_names=("cffi",), mib=64, repeat=3):
    """Rows of {algo, backend, kernel, case, seconds, gb_per_s, ratio},
    ratio being throughput over hashlib's one-call throughput on the same bytes."""
    image = bench_image(mib)
    rows = []
    for algo in algos:
        limit = _best(functools.partial(hashlib.new, algo, image), repeat)
        rows.append(_row(algo, "-", "-", "hashlib", limit, len(image), limit))
        decoded, refs = single_image_realm(image, ALGOS[algo])
        for name in backend_names:
            impl = backends.load(name)
            with tempfile.TemporaryDirectory(prefix="fastrim-bench-") as cache_dir:
                for case, fn in _cases(impl, decoded, refs, image, cache_dir).items():
                    rows.append(_row(algo, name, impl.hash_kernel(decoded.realm.alg), case, _best(fn, repeat),
                                     len(image), limit))
    return rows


def _cases(impl, decoded, refs, image, cache_dir):
    """cold: content hashes computed (into a new cache each time); warm: read
    from a filled cache; chain: the descriptor chain over them alone."""
    alg, rim = decoded.realm.alg, replay.initial_rim(decoded.realm)
    warm_cache = ContentCache(cache_dir)
    replay.replay(decoded, refs, cache=warm_cache, impl=impl)  # fills it
    _, _, contents = impl.rim_data(alg, rim, image, 0x40000000, True)
    return {
        "cold": lambda: replay.replay(decoded, refs, cache=ContentCache(tempfile.mkdtemp(dir=cache_dir)), impl=impl),
        "warm": lambda: replay.replay(decoded, refs, cache=warm_cache, impl=impl),
        "chain": lambda: impl.rim_chain(alg, rim, 0x40000000, len(image) // GRANULE_SIZE, contents),
    }


def _row(algo, backend, kernel, case, seconds, size, limit):
    return {"algo": algo, "backend": backend, "kernel": kernel, "case": case, "seconds": seconds,
            "gb_per_s": size / seconds / 1e9, "ratio": limit / seconds}


def format_table(rows):
    lines = [f"{'algo':<7} {'backend':<7} {'kernel':<9} {'case':<8} {'ms':>9} {'GB/s':>7} {'x hashlib':>9}"]
    for r in rows:
        lines.append(f"{r['algo']:<7} {r['backend']:<7} {r['kernel']:<9} {r['case']:<8} {r['seconds'] * 1e3:>9.2f} "
                     f"{r['gb_per_s']:>7.2f} {r['ratio']:>9.2f}")
    return "\n".join(lines)
