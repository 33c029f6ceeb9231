"""fastrim batch on a 1,000-log synthetic fleet: cold and warm cache, one and
two worker processes. Each round is batch.run plus writing the Parquet file,
in this process (interpreter start-up is not counted).

Cold: empty content cache and step memo; the reference index is built
beforehand (`fastrim index`, a separate step that only changed images
redo), and the images sit in the OS page cache. Warm: the caches that a
previous run of the same fleet left.

The fleet (fastrim synth, in a child process): 1,000 realms, 50 launch configurations with
skewed popularity, 40 kernels (24-40 MiB) and 40 initrds (16-64 MiB), two
firmware builds, a DTB per configuration: about 2.8 GiB of images. Under
--benchmark-disable (CI) the images are scaled down 64x: the code paths are
the same, the figures are not meant to be read.

extra_info holds logs_per_s, and in the later tests jobs2_speedup (cold, jobs
1 over jobs 2) and cold_over_warm, from rounds measured in this same run.
"""

import os
import shutil
import subprocess
import sys

import pytest

from fastrim.output import parquet
from fastrim.run import batch
from fastrim.run.local import LocalExecutor
from fastrim.store.refs import RefStore
from fastrim.verifier import Settings

VMS = 1000
_measured = {}  # (cache state, jobs) -> best seconds, for the ratios


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory, request):
    disabled = request.config.getoption("benchmark_disable") and not request.config.getoption("benchmark_enable")
    scale = 1 / 64 if disabled else 1.0
    root = tmp_path_factory.mktemp("bench-fleet")
    # In a child process: generating leaves this one's heap gigabytes large,
    # and every worker fork would then pay for it.
    subprocess.run([sys.executable, "-m", "fastrim", "synth", str(root), "--vms", str(VMS), "--seed", "2026",
                    "--tamper", "0.1", "--scale", str(scale)], check=True, stdout=subprocess.DEVNULL)
    refs = RefStore(str(root / "refs"), cache_dir=str(root / "index"))
    logs = batch.discover([str(root / "logs")])
    assert len(logs) == VMS
    yield root, refs, logs
    shutil.rmtree(root)


def _batch(root, refs, logs, jobs, cache_dir):
    rows, _ = batch.run(logs, Settings(refs, cache_dir=cache_dir), LocalExecutor(jobs))
    parquet.write_parquet(str(root / "results.parquet"), rows, {"fastrim.benchmark": "fleet"})
    return rows


def _record(benchmark, key):
    if benchmark.stats:
        best = benchmark.stats.stats.min
        _measured[key] = best
        benchmark.extra_info["logs_per_s"] = VMS / best


@pytest.mark.parametrize("jobs", [1, 2])
def test_fleet_cold(benchmark, fleet_dir, jobs):
    root, refs, logs = fleet_dir
    cache = root / "cold-cache"

    def empty_cache():
        shutil.rmtree(cache, ignore_errors=True)
        os.makedirs(cache)

    benchmark.group = "fleet-cold"
    rows = benchmark.pedantic(_batch, args=(root, refs, logs, jobs, str(cache)), setup=empty_cache,
                              rounds=2, iterations=1)
    assert sum(r["bytes_hashed"] for r in rows) > 0
    _record(benchmark, ("cold", jobs))
    if jobs == 2 and ("cold", 1) in _measured:
        benchmark.extra_info["jobs2_speedup"] = _measured[("cold", 1)] / _measured[("cold", 2)]


@pytest.mark.parametrize("jobs", [1, 2])
def test_fleet_warm(benchmark, fleet_dir, jobs):
    root, refs, logs = fleet_dir
    cache = str(root / "warm-cache")
    _batch(root, refs, logs, jobs, cache)  # fills the caches
    benchmark.group = "fleet-warm"
    rows = benchmark.pedantic(_batch, args=(root, refs, logs, jobs, cache), rounds=5, iterations=1)
    assert sum(r["bytes_hashed"] for r in rows) == 0
    _record(benchmark, ("warm", jobs))
    if ("cold", jobs) in _measured:
        benchmark.extra_info["cold_over_warm"] = _measured[("cold", jobs)] / _measured[("warm", jobs)]
