"""fastrim batch on a 1,000-log synthetic fleet: cold and warm cache, the
local pool with one and two worker processes, and a Dask cluster of two
workers on this machine (local:2, started once, outside the figures; each
worker's verifier process starts with the first run and is kept, with a new
context for every run, as a long-lived client's would be). Each
round is batch.run plus writing the Parquet file, in this process
(interpreter start-up is not counted).

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


EXECUTORS = ["pool-1", "pool-2", "local:2"]


@pytest.fixture(scope="module")
def executors():
    """The local pool with 1 and 2 workers, and a Dask cluster of 2 workers
    on this machine, started once (its start-up is not in the figures)."""
    from fastrim.run.cluster import DaskExecutor

    with DaskExecutor("local:2") as cluster:
        yield {"pool-1": LocalExecutor(1), "pool-2": LocalExecutor(2), "local:2": cluster}


def _batch(root, refs, logs, executor, cache_dir):
    """The rows of one run, each written to a Parquet file as it comes (as batch does)."""
    rows = []
    results = parquet.ParquetRows(str(root / "results.parquet"), {"fastrim.benchmark": "fleet"})

    def on_row(row):
        results.add(row)
        rows.append(row)  # for the figures below, not part of the run

    batch.run(logs, Settings(refs, cache_dir=cache_dir), executor, on_row)
    results.close()
    return rows


def _record(benchmark, key):
    if benchmark.stats:
        best = benchmark.stats.stats.min
        _measured[key] = best
        benchmark.extra_info["logs_per_s"] = VMS / best


def _distinct_image_bytes(rows):
    """Bytes of the distinct (algorithm, image, offset in a granule) the fleet's verifiable logs load."""
    distinct = {}
    for row in rows:
        if row["status"] != "error":
            for image in row["images"]:
                if image["digest"] is not None:
                    distinct[(row["hash_algo"], image["digest"], image["base"] % 4096)] = image["size"]
    return sum(distinct.values())


@pytest.mark.parametrize("name", EXECUTORS)
def test_fleet_cold(benchmark, fleet_dir, executors, name):
    root, refs, logs = fleet_dir
    cache = root / "cold-cache"

    def empty_cache():
        shutil.rmtree(cache, ignore_errors=True)
        os.makedirs(cache)

    benchmark.group = "fleet-cold"
    rows = benchmark.pedantic(_batch, args=(root, refs, logs, executors[name], str(cache)), setup=empty_cache,
                              rounds=2, iterations=1)
    hashed = sum(r["bytes_hashed"] for r in rows)
    assert hashed > 0
    benchmark.extra_info["hashed_over_distinct"] = hashed / _distinct_image_bytes(rows)
    _record(benchmark, ("cold", name))
    if name == "pool-2" and ("cold", "pool-1") in _measured:
        benchmark.extra_info["jobs2_speedup"] = _measured[("cold", "pool-1")] / _measured[("cold", "pool-2")]
    if name == "local:2" and ("cold", "pool-2") in _measured:
        benchmark.extra_info["cluster_over_pool"] = _measured[("cold", "pool-2")] / _measured[("cold", name)]


@pytest.mark.parametrize("name", EXECUTORS)
def test_fleet_warm(benchmark, fleet_dir, executors, name):
    root, refs, logs = fleet_dir
    cache = str(root / f"warm-cache-{name}")
    _batch(root, refs, logs, executors[name], cache)  # fills the caches
    benchmark.group = "fleet-warm"
    rows = benchmark.pedantic(_batch, args=(root, refs, logs, executors[name], cache), rounds=5, iterations=1)
    assert sum(r["bytes_hashed"] for r in rows) == 0
    _record(benchmark, ("warm", name))
    if ("cold", name) in _measured:
        benchmark.extra_info["cold_over_warm"] = _measured[("cold", name)] / _measured[("warm", name)]
    if name == "local:2" and ("warm", "pool-2") in _measured:
        benchmark.extra_info["cluster_over_pool"] = _measured[("warm", "pool-2")] / _measured[("warm", name)]


def test_fleet_cold_with_a_cache_per_worker(fleet_dir, tmp_path):
    """Each Dask worker with a cache of its own, as on hosts of their own: the
    shards' placement keeps the images hashed across the cluster near the
    distinct images' bytes (workers x that without it). Measured once."""
    from fastrim.run.cluster import DaskExecutor

    root, refs, logs = fleet_dir
    with DaskExecutor("local:2", private_caches=True) as cluster:
        rows = _batch(root, refs, logs, cluster, str(tmp_path / "cache"))
    ratio = sum(r["bytes_hashed"] for r in rows) / _distinct_image_bytes(rows)
    print(f"\nbytes hashed across 2 workers with private caches / distinct image bytes: {ratio:.3f}")
    assert ratio < 2  # a loose bound: the figure itself is printed, and reported
