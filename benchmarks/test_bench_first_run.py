"""The first run: `fastrim verify LOG --refs DIR` on a fresh cache directory
(no reference index, no content cache) for a realm that loads one 1 GiB
kernel, as a whole process, next to a whole process of hashlib hashing that
image once (`python -c`), in the same run. The store holds the kernel and
other images of other sizes; verify hashes only what its log needs, with the
log's algorithm, reading the kernel once for its digest and its granules on
two cores. extra_info holds the ratio (median over the rounds of each).

Under --benchmark-disable (CI) the image is 16 MiB: the code paths are the
same, the figures are not meant to be read.
"""

import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time

import pytest

from fastrim.algorithms import BY_NAME
from fastrim.bench import bench_image
from fastrim.fleetgen import synth

ROUNDS = 5


@pytest.fixture(scope="module")
def big_image(tmp_path_factory, request):
    disabled = request.config.getoption("benchmark_disable") and not request.config.getoption("benchmark_enable")
    root = tmp_path_factory.mktemp("first-run")
    image = bench_image(16 if disabled else 1024)
    (root / "refs").mkdir()
    (root / "refs" / "kernel.bin").write_bytes(image)
    for i, size in enumerate((64 << 20, 32 << 20, 8 << 20)):  # other images a store holds
        (root / "refs" / f"other-{i}.bin").write_bytes(hashlib.sha256(bytes([i])).digest() * (size // 32))
    yield root, image
    shutil.rmtree(root)


def _log(root, image, algo):
    spec = synth.RealmSpec(hash_algo=BY_NAME[algo].rmm_hash_algo, s2sz=44, ram_size=4 << 30,
                           images=(synth.Image("KERNEL", synth.RAM_BASE, image),),
                           log_base=synth.RAM_BASE + len(image) + 4096)
    path = root / f"vm-{algo}.log"
    path.write_bytes(synth.write_log(spec))
    return path


def _time(argv, before=None):
    if before is not None:
        before()
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


@pytest.mark.parametrize("algo", ["sha256", "sha512"])
def test_first_verify_of_a_1_gib_image(benchmark, big_image, algo):
    root, image = big_image
    log, size = _log(root, image, algo), len(image)
    cache = root / "cache"

    def fresh_cache():
        shutil.rmtree(cache, ignore_errors=True)

    verify = ["-m", "fastrim", "verify", str(log), "--refs", str(root / "refs"), "--cache-dir", str(cache)]
    hashlib_once = ["-c", f"import hashlib; hashlib.file_digest(open({str(root / 'refs' / 'kernel.bin')!r}, "
                          f"'rb'), {algo!r})"]
    fresh_cache()
    subprocess.run([sys.executable, *verify], check=False, capture_output=True)  # page cache warm, as for hashlib
    rounds = ROUNDS if benchmark.enabled else 1
    benchmark.group = "first-run"
    benchmark.pedantic(_time, args=(verify, fresh_cache), rounds=rounds, iterations=1)
    if benchmark.stats:
        ours = statistics.median(benchmark.stats.stats.data)
        theirs = statistics.median(_time(hashlib_once) for _ in range(rounds))
        benchmark.extra_info["over_hashlib_process"] = ours / theirs
        print(f"\nfirst verify of a {size >> 20} MiB {algo} image / hashlib once, whole processes "
              f"(CPU {os.cpu_count()} cores): {ours / theirs:.2f}")
