"""Granule hashing kernels of the C backend: every kernel this CPU can run
gives the bytes of hashlib and of the Python backend, for any number of
granules (lane remainders, batch edges) and ragged first and last granules."""

import hashlib
import os
import random
import subprocess
import sys

import pytest

from fastrim.algorithms import SHA256, SHA384, SHA512
from fastrim.backend import fallback, native

GRANULE = 4096


def available_kernels():
    kernels = ["openssl"]
    try:
        native.set_hash_kernel("multilane")
        kernels.append("multilane")
    except ImportError:
        pass
    finally:
        native.set_hash_kernel(os.environ.get("FASTRIM_HASH_KERNEL", "auto") or "auto")
    return kernels


@pytest.fixture(params=available_kernels())
def kernel(request):
    chosen = native.set_hash_kernel(request.param)
    yield chosen
    native.set_hash_kernel(os.environ.get("FASTRIM_HASH_KERNEL", "auto") or "auto")


def padded_granules(image, base):
    head = base % GRANULE
    total = -(-(head + len(image)) // GRANULE) * GRANULE
    padded = bytes(head) + image + bytes(total - head - len(image))
    return [padded[i:i + GRANULE] for i in range(0, len(padded), GRANULE)]


@pytest.mark.parametrize("granules", [1, 2, 3, 4, 5, 7, 9, 63, 64, 65, 129])
@pytest.mark.parametrize("alg", [SHA256.tcg_id, SHA384.tcg_id, SHA512.tcg_id])
def test_every_kernel_matches_hashlib_and_python(kernel, granules, alg):
    rng = random.Random(granules * 7 + alg)
    for head, tail in ((0, 0), (1, 5), (0xAB0, 4095), (4095, 1)):
        size = max(0, granules * GRANULE - head - tail)
        image = rng.randbytes(size)
        base = 0x40000000 + head
        rim = rng.randbytes(64)
        got = native.rim_data(alg, rim, image, base, True)
        assert got == fallback.rim_data(alg, rim, image, base, True)
        fn = {SHA256.tcg_id: hashlib.sha256, SHA384.tcg_id: hashlib.sha384, SHA512.tcg_id: hashlib.sha512}[alg]
        assert got[2] == b"".join(fn(g).digest() for g in padded_granules(image, base))


def test_the_chosen_kernel_is_the_one_reported(kernel):
    # This machine has SHA-NI (SHA-256 lanes) and AVX2 (SHA-512 lanes).
    assert native.hash_kernel(SHA256.tcg_id) == kernel
    assert native.hash_kernel(SHA512.tcg_id) == kernel


def _kernel_in_child(value):
    env = dict(os.environ, FASTRIM_HASH_KERNEL=value, FASTRIM_BACKEND="auto")
    return subprocess.run([sys.executable, "-c", "from fastrim.backend import native; print(native.hash_kernel(11))"],
                          capture_output=True, text=True, env=env)


def test_the_environment_chooses_the_kernel_and_a_bad_value_is_an_import_error():
    assert _kernel_in_child("openssl").stdout.strip() == "openssl"
    assert _kernel_in_child("auto").stdout.strip() in ("openssl", "multilane")
    bad = _kernel_in_child("avx9000")
    assert bad.returncode != 0 and "ImportError: unknown FASTRIM_HASH_KERNEL 'avx9000'" in bad.stderr
