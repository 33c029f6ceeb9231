"""Measurement-algorithm throughput: replaying one large image with SHA-256,
SHA-384 and SHA-512 through the verification pipeline, cold (content hashes
computed) and warm (content hashes read from the cache), and the descriptor
chain alone, next to hashlib hashing the same bytes in one call in the same
run (the single-stream limit of the machine); and the same, cold and warm,
for every granule hashing kernel of the C backend (measure_kernels).
"""

import functools
import hashlib
import os
import tempfile
import time

from .algorithms import BY_NAME, RIM_ALGORITHMS
from .backend import select
from .backend.contract import GRANULE_SIZE, MEASUREMENT_SIZE
from .evidence.expected import ExpectedSource
from .fleetgen import synth
from .store import Caches
from .store.content import ContentCache
from .store.refs import MemoryRefStore
from .verifier import Context, LogSource, verify

ALGOS = tuple(a.name for a in RIM_ALGORITHMS)
CASES = ("hashlib", "cold", "warm", "chain")


def bench_image(mib):
    """mib MiB of non-repeating bytes, cheap to make."""
    size = mib << 20
    block = b"".join(hashlib.sha512(i.to_bytes(4, "little")).digest() for i in range(1024))  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def single_image_realm(image, algo):
    """The log of a realm that loads image as its kernel (the RIM in algorithm
    algo, a name), as a LogSource, with its reference store."""
    spec = synth.RealmSpec(hash_algo=BY_NAME[algo].rmm_hash_algo, s2sz=44, ram_size=1 << 30,
                           images=(synth.Image("KERNEL", synth.RAM_BASE, image),),
                           log_base=synth.RAM_BASE + len(image) + GRANULE_SIZE)
    source = LogSource(data=synth.write_log(spec), name="bench", expected=ExpectedSource(sidecars=False))
    return source, MemoryRefStore({"kernel.bin": image})


def replay_once(context, source):
    """One pass of the pipeline; the verdict, which must carry a RIM."""
    verdict = verify(context, source)
    if verdict.rim is None:
        raise RuntimeError(f"the benchmark realm did not replay: {verdict.detail}")
    return verdict


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(algos=ALGOS, backend_names=("cffi",), mib=64, repeat=3):
    """Rows of {algo, backend, kernel, case, seconds, gb_per_s, ratio},
    ratio being throughput over hashlib's one-call throughput on the same bytes."""
    image = bench_image(mib)
    rows = []
    for algo in algos:
        limit = _best(functools.partial(hashlib.new, algo, image), repeat)
        rows.append(_row(algo, "-", "-", "hashlib", limit, len(image), limit))
        source, refs = single_image_realm(image, algo)
        for name in backend_names:
            impl = select.load(name)
            impl.choose_kernels(None)  # as a verifier would (measured here, not stored)
            kernel = impl.hash_kernel(BY_NAME[algo].tcg_id)
            with tempfile.TemporaryDirectory(prefix="fastrim-bench-") as cache_dir:
                for case, fn in _cases(impl, algo, (source, refs, image), cache_dir).items():
                    rows.append(_row(algo, name, kernel, case, _best(fn, repeat), len(image), limit))
    return rows


def measure_kernels(algos=ALGOS, mib=64, repeat=3):
    """Rows for every C kernel and algorithm: its self-test result ("passed",
    "failed", or why it cannot run here) and, when it passed, cold and warm
    replays with that kernel forced."""
    from .backend import kernels, native

    impl = select.load("cffi")
    image = bench_image(mib)
    rows = []
    try:
        for algo in algos:
            alg = BY_NAME[algo].tcg_id
            limit = _best(functools.partial(hashlib.new, algo, image), repeat)
            rows.append(_row(algo, "-", "-", "hashlib", limit, len(image), limit))
            source, refs = single_image_realm(image, algo)
            for name in kernels.NAMES:
                if not kernels.lanes(name, alg):
                    rows.append(_untimed(algo, name, "not on this CPU, or not for this algorithm"))
                    continue
                if not kernels.self_test(name, alg):
                    rows.append(_untimed(algo, name, "failed"))
                    continue
                native.set_hash_kernel(name)
                with tempfile.TemporaryDirectory(prefix="fastrim-bench-") as cache_dir:
                    cases = _cases(impl, algo, (source, refs, image), cache_dir)
                    for case in ("cold", "warm"):
                        rows.append(dict(_row(algo, "cffi", name, case, _best(cases[case], repeat), len(image), limit),
                                         selftest="passed"))
    finally:
        native.set_hash_kernel(os.environ.get("FASTRIM_HASH_KERNEL", "auto") or "auto")
    return rows


def _untimed(algo, kernel, selftest):
    return {"algo": algo, "backend": "cffi", "kernel": kernel, "case": "-", "seconds": None, "gb_per_s": None,
            "ratio": None, "selftest": selftest}


def _cases(impl, algo, realm, cache_dir):
    """cold: content hashes computed (into a new cache each time); warm: read
    from a filled cache; chain: the descriptor chain over them alone. No
    step or same-log memo: each pass replays every granule. realm is
    (LogSource, reference store, image)."""
    source, refs, image = realm

    def context(directory):
        return Context(refs, caches=Caches(ContentCache(directory)), impl=impl)

    warm = context(cache_dir)
    replay_once(warm, source)  # fills it
    alg = BY_NAME[algo].tcg_id
    start = bytes(MEASUREMENT_SIZE)
    _, granules, contents = impl.rim_data(alg, start, image, synth.RAM_BASE, True)
    return {
        "cold": lambda: replay_once(context(tempfile.mkdtemp(dir=cache_dir)), source),
        "warm": functools.partial(replay_once, warm, source),
        "chain": functools.partial(impl.rim_chain, alg, start, synth.RAM_BASE, granules, contents),
    }


def _row(algo, backend, kernel, case, seconds, size, limit):
    return {"algo": algo, "backend": backend, "kernel": kernel, "case": case, "seconds": seconds,
            "gb_per_s": size / seconds / 1e9, "ratio": limit / seconds}


def format_table(rows):
    lines = [f"{'algo':<7} {'backend':<7} {'kernel':<9} {'case':<8} {'ms':>9} {'GB/s':>7} {'x hashlib':>9}  self-test"]
    for r in rows:
        if r["seconds"] is None:
            lines.append(f"{r['algo']:<7} {r['backend']:<7} {r['kernel']:<9} {r['case']:<8} {'-':>9} {'-':>7} "
                         f"{'-':>9}  {r['selftest']}")
            continue
        lines.append(f"{r['algo']:<7} {r['backend']:<7} {r['kernel']:<9} {r['case']:<8} {r['seconds'] * 1e3:>9.2f} "
                     f"{r['gb_per_s']:>7.2f} {r['ratio']:>9.2f}  {r.get('selftest') or ''}".rstrip())
    return "\n".join(lines)
