"""One-log commands as whole processes, next to a bare interpreter start
(`python -c pass`) in the same run: `fastrim parse LOG` and `fastrim verify
LOG --refs DIR --rim HEX`. Attestation services call a verifier once per log,
so its start-up is most of its cost there.

As an installed package runs them: with the package's bytecode compiled
(pip does that at install time), so the child processes may read and write
__pycache__ even where PYTHONDONTWRITEBYTECODE is set. extra_info holds the
ratio to the bare start (median over the rounds of each).
"""

import compileall
import os
import pathlib
import statistics
import subprocess
import sys
import time

import pytest
from helpers import one_kernel_realm

import fastrim

ROUNDS = 30
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(argv):
    subprocess.run([sys.executable, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_ENV,
                   check=argv[0] == "-c")


def _median(argv, rounds):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        _run(argv)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@pytest.fixture(scope="module")
def one_log(tmp_path_factory):
    compileall.compile_dir(pathlib.Path(fastrim.__file__).parent, quiet=1)
    root = tmp_path_factory.mktemp("startup")
    one_kernel_realm(root, "vm.log")
    cache = str(root / "cache")
    _run(["-m", "fastrim", "index", str(root / "refs"), "--cache-dir", cache])  # verify finds it indexed
    return root, cache


@pytest.mark.parametrize("command", ["parse", "verify"])
def test_one_log_command_start(benchmark, one_log, command):
    root, cache = one_log
    argv = ["-m", "fastrim", command, str(root / "vm.log")]
    if command == "verify":
        argv += ["--refs", str(root / "refs"), "--rim", "00" * 32, "--cache-dir", cache]
    benchmark.group = "startup"
    rounds = ROUNDS if benchmark.enabled else 1
    bare = _median(["-c", "pass"], rounds)
    benchmark.pedantic(_run, (argv,), rounds=rounds, iterations=1)
    if benchmark.stats:
        benchmark.extra_info["bare_python_ms"] = bare * 1e3
        benchmark.extra_info["ratio_to_bare_python"] = benchmark.stats.stats.median / bare
