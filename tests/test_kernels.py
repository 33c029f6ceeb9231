"""Granule hashing kernels of the C backend: every kernel this CPU has,
forced one by one, gives the bytes of hashlib and of the Python backend for
SHA-256, SHA-384 and SHA-512, any number of granules (lane remainders,
batch edges) and ragged first and last granules; the kernels this CPU lacks
are skipped by name. The self-test keeps a broken kernel out, and the
dispatcher's remembered choice holds only for this CPU and version."""

import hashlib
import json
import os
import random
import subprocess
import sys

import pytest

from fastrim.algorithms import RIM_ALGORITHMS, SHA256, SHA384, SHA512
from fastrim.backend import fallback, kernels, native

GRANULE = 4096
HASHLIB = {SHA256.tcg_id: hashlib.sha256, SHA384.tcg_id: hashlib.sha384, SHA512.tcg_id: hashlib.sha512}
ALGS = [SHA256.tcg_id, SHA384.tcg_id, SHA512.tcg_id]


def _reset():
    native.set_hash_kernel(os.environ.get("FASTRIM_HASH_KERNEL", "auto") or "auto")


@pytest.fixture(params=[(name, alg) for name in kernels.NAMES for alg in ALGS],
                ids=lambda p: f"{p[0]}-{next(a.name for a in RIM_ALGORITHMS if a.tcg_id == p[1])}")
def kernel(request):
    """Each kernel forced for each algorithm; skipped, by name, where this CPU lacks it."""
    name, alg = request.param
    if not kernels.lanes(name, alg):
        pytest.skip(f"kernel {name} does not serve this algorithm on this CPU")
    native.set_hash_kernel(name)
    yield name, alg
    _reset()


def padded_granules(image, base):
    head = base % GRANULE
    total = -(-(head + len(image)) // GRANULE) * GRANULE
    padded = bytes(head) + image + bytes(total - head - len(image))
    return [padded[i:i + GRANULE] for i in range(0, len(padded), GRANULE)]


@pytest.mark.parametrize("granules", [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 63, 64, 65, 129, 256, 321])  # 256+: chained on a second thread
def test_every_kernel_matches_hashlib_and_python(kernel, granules):
    name, alg = kernel
    assert native.hash_kernel(alg) == name
    rng = random.Random(granules * 7 + alg)
    for head, tail in ((0, 0), (1, 5), (0xAB0, 4095), (4095, 1)):
        size = max(0, granules * GRANULE - head - tail)
        image = rng.randbytes(size)
        base = 0x40000000 + head
        rim = rng.randbytes(64)
        got = native.rim_data(alg, rim, image, base, True)
        assert got == fallback.rim_data(alg, rim, image, base, True)
        assert got[2] == b"".join(HASHLIB[alg](g).digest() for g in padded_granules(image, base))


def _child(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, FASTRIM_BACKEND="auto", **env))


def test_the_environment_forces_a_kernel_and_a_bad_value_is_an_import_error():
    code = "from fastrim.backend import native; print(native.hash_kernel(11), native.hash_kernel(13))"
    assert _child(code, FASTRIM_HASH_KERNEL="openssl").stdout.split() == ["openssl", "openssl"]
    assert set(_child(code, FASTRIM_HASH_KERNEL="auto").stdout.split()) <= set(kernels.NAMES)
    bad = _child(code, FASTRIM_HASH_KERNEL="avx9000")
    assert bad.returncode != 0 and "ImportError: unknown FASTRIM_HASH_KERNEL 'avx9000'" in bad.stderr


def test_a_broken_kernel_fails_its_self_test_and_the_dispatcher_picks_another(tmp_path):
    """In a child: the kernel the dispatcher picks here, broken by the test
    hook (one flipped output bit), is rejected and another is chosen."""
    code = f"""
import logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
from fastrim.backend import kernels, native
from fastrim._native import lib
kernels.choose({str(tmp_path / 'a')!r})
first = kernels.selected(11)
lib.fr_kernel_test_break(kernels.NAMES.index(first))
kernels.force("auto")
kernels.choose({str(tmp_path / 'b')!r})
kernels.choose({str(tmp_path / 'b')!r})  # once per process: no second measurement, no second warning
print(first, kernels.selected(11), kernels.self_test(first, 11))
"""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    run = _child(code, FASTRIM_HASH_KERNEL="auto")
    first, then, passed = run.stdout.split()
    assert then != first and passed == "False", run.stderr
    assert run.stderr.count(f"hash kernel {first} failed its self-test for sha256") == 1, run.stderr


def test_the_remembered_choice_holds_only_for_this_cpu_and_version(tmp_path):
    probe = f"""
from fastrim.backend import kernels
kernels.choose({str(tmp_path)!r})
print(kernels.selected(11))
"""
    first = _child(probe, FASTRIM_HASH_KERNEL="auto")
    stored = json.loads((tmp_path / kernels.CHOICE_FILE).read_text())
    assert stored["choice"]["sha256"] == first.stdout.strip() and stored["cpu"] == kernels.cpu_model()
    # A stored choice of the right CPU and version is used as it is (here: OpenSSL, never the fastest).
    (tmp_path / kernels.CHOICE_FILE).write_text(json.dumps(dict(stored, choice={a.name: "openssl" for a in RIM_ALGORITHMS})))
    assert _child(probe, FASTRIM_HASH_KERNEL="auto").stdout.strip() == "openssl"
    only_openssl = dict(stored, choice={a.name: "openssl" for a in RIM_ALGORITHMS})
    vector = any(kernels.lanes(name, 11) for name in kernels.NAMES if name != "openssl")
    for stale in (dict(only_openssl, cpu="another CPU"), dict(only_openssl, fastrim="0.0.1"), "{not json"):
        (tmp_path / kernels.CHOICE_FILE).write_text(stale if isinstance(stale, str) else json.dumps(stale))
        again = _child(probe, FASTRIM_HASH_KERNEL="auto").stdout.strip()
        assert again != "openssl" or not vector, stale  # measured again, not read
        rewritten = json.loads((tmp_path / kernels.CHOICE_FILE).read_text())
        assert (rewritten["cpu"], rewritten["choice"]["sha256"]) == (kernels.cpu_model(), again)
