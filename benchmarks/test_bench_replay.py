"""Cold and warm RIM replay of a 256 MiB image, SHA-256 and SHA-512, per
backend, next to hashlib hashing the same bytes in one call (the
single-stream limit of this machine). The ratio is in extra_info.

FASTRIM_BENCH_MIB shrinks the image (the Python backend at 256 MiB takes
minutes; CI runs every benchmark once with --benchmark-disable).
"""

import hashlib
import os
import time

import pytest

from fastrim import bench
from fastrim.algorithms import BY_NAME
from fastrim.store import Caches
from fastrim.store.content import ContentCache
from fastrim.verifier import Context

IMAGE_MIB = int(os.environ.get("FASTRIM_BENCH_MIB", "256"))


@pytest.fixture(scope="module")
def image():
    size = IMAGE_MIB << 20
    return (hashlib.sha256(b"fastrim").digest() * (size // 32 + 1))[:size]


@pytest.mark.parametrize("algo", ["sha256", "sha512"])
def test_hashlib_one_call_limit(benchmark, image, algo):
    benchmark.group = f"replay-{algo}"
    benchmark.pedantic(lambda: hashlib.new(algo, image).digest(), rounds=3, iterations=1)
    benchmark.extra_info["gb_per_s"] = len(image) / benchmark.stats.stats.min / 1e9 if benchmark.stats else None


@pytest.mark.parametrize("algo", ["sha256", "sha512"])
def test_cold_replay(benchmark, impl, image, algo):
    """The pipeline with no cache at all: every granule hashed."""
    benchmark.group = f"replay-{algo}"
    source, refs = bench.single_image_realm(image, algo)
    context = Context(refs, impl=impl)
    limit = min(_time(lambda: hashlib.new(algo, image).digest()) for _ in range(3))
    rounds = 3 if impl.NAME == "cffi" else 1
    benchmark.pedantic(bench.replay_once, (context, source), rounds=rounds, iterations=1)
    benchmark.extra_info["kernel"] = impl.hash_kernel(BY_NAME[algo].tcg_id)
    if benchmark.stats:
        benchmark.extra_info["ratio_to_hashlib"] = limit / benchmark.stats.stats.min


@pytest.mark.parametrize("algo", ["sha256", "sha512"])
def test_warm_replay(benchmark, impl, image, algo, tmp_path):
    """The pipeline with the content cache filled: descriptors only."""
    benchmark.group = f"replay-{algo}"
    source, refs = bench.single_image_realm(image, algo)
    context = Context(refs, caches=Caches(ContentCache(tmp_path)), impl=impl)
    cold = _time(lambda: bench.replay_once(context, source))
    verdict = benchmark.pedantic(bench.replay_once, (context, source), rounds=3, iterations=1)
    assert verdict.cache_hits == 1
    if benchmark.stats:
        benchmark.extra_info["cold_over_warm"] = cold / benchmark.stats.stats.min


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
