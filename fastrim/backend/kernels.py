"""Which C kernel hashes granule contents, per algorithm (csrc/kernels.c).

The C core self-tests a kernel against OpenSSL before it uses it. Here the
dispatcher measures: on first use it times every kernel that passed its
self-test on a few MiB, keeps the fastest per algorithm, and remembers the
choice in the cache directory per CPU model and fastrim version, so that
later processes only read it (and self-test their choice). No fixed
preference from cpuid flags can be right on every CPU: a SHA-NI unit with a
low issue rate loses to plain vector lanes, and the other way round.

FASTRIM_HASH_KERNEL=auto|openssl|<name> (read at import): a name forces
that kernel for the algorithms it serves; an unknown name, or one this CPU
cannot run or that fails its self-test, is an ImportError.
"""

import json
import logging
import os
import time

from .. import __version__
from .._native import ffi, lib
from ..algorithms import BY_NAME, BY_TCG_ID, RIM_ALGORITHMS
from ..errors import FastrimError

log = logging.getLogger("fastrim.kernels")

CHOICE_FILE = "kernels-v1.json"
MEASURE_GRANULES = 512  # 2 MiB per timing: long enough to beat timer noise, short enough for a first run
MEASURE_REPEAT = 2
MAX_CHOICE_FILE = 1 << 16

NAMES = tuple(ffi.string(lib.fr_kernel_name(k)).decode() for k in range(lib.fr_kernel_count()))
_INDEX = {name: k for k, name in enumerate(NAMES)}
_forced = {}  # TCG algorithm id -> kernel name, from FASTRIM_HASH_KERNEL
_chosen = False  # the dispatcher ran (or read its choice) in this process
_reported = set()  # (kernel, algorithm) whose failed self-test was logged


def selected(alg):
    """The name of the kernel hashing alg's granules now."""
    return NAMES[lib.fr_kernel_selected(alg)]


def lanes(name, alg):
    """Granules per pass of kernel name for alg on this CPU; 0: it cannot serve alg here."""
    return lib.fr_kernel_lanes(_INDEX[name], alg)


def self_test(name, alg):
    """True when kernel name passed its known-answer self-test for alg (logged once when not)."""
    passed = bool(lib.fr_kernel_selftest(_INDEX[name], alg))
    if not passed and lanes(name, alg) and (name, alg) not in _reported:
        _reported.add((name, alg))
        log.warning("hash kernel %s failed its self-test for %s on this CPU: it is not used", name,
                    BY_TCG_ID[alg].name)
    return passed


def force(name):
    """FASTRIM_HASH_KERNEL: auto (measure), openssl, or a kernel forced for the algorithms it serves."""
    global _chosen
    _forced.clear()
    _chosen = False
    for alg in RIM_ALGORITHMS:
        lib.fr_kernel_select(alg.tcg_id, -1)  # back to the default until chosen
    if name == "auto":
        return
    if name not in _INDEX:
        raise ImportError(f"unknown FASTRIM_HASH_KERNEL {name!r}: use auto or one of {', '.join(NAMES)}")
    served = [alg for alg in RIM_ALGORITHMS if lanes(name, alg.tcg_id)]
    if not served:
        raise ImportError(f"FASTRIM_HASH_KERNEL={name}: this CPU cannot run that kernel")
    for alg in served:
        if not self_test(name, alg.tcg_id) or lib.fr_kernel_select(alg.tcg_id, _INDEX[name]) != 0:
            raise ImportError(f"FASTRIM_HASH_KERNEL={name}: the kernel failed its self-test for {alg.name} "
                              "on this CPU")
        _forced[alg.tcg_id] = name


def choose(cache_dir=None):
    """Select the fastest self-tested kernel per algorithm (not forced):
    the choice stored in cache_dir when it is for this CPU and fastrim
    version and its kernels pass their self-tests here, else measured now
    (and stored). Once per process."""
    global _chosen
    if _chosen:
        return
    _chosen = True
    algs = [alg for alg in RIM_ALGORITHMS if alg.tcg_id not in _forced]
    stored = _read_choice(cache_dir)
    if stored is not None and all(_select(alg, stored.get(alg.name)) for alg in algs):
        return
    choice = {}
    for alg in algs:
        choice[alg.name] = _fastest(alg.tcg_id)
        _select(alg, choice[alg.name])
    _write_choice(cache_dir, choice)


def _select(alg, name):
    return name in _INDEX and self_test(name, alg.tcg_id) and lib.fr_kernel_select(alg.tcg_id, _INDEX[name]) == 0


def measure(alg, name, granules=MEASURE_GRANULES, repeat=MEASURE_REPEAT):
    """Best seconds of kernel name hashing `granules` granules for alg."""
    dlen = BY_TCG_ID[alg].digest_size
    data = ffi.new("uint8_t[]", bytes(range(256)) * (16 * granules))
    src = ffi.new("const uint8_t *[]", [data + 4096 * i for i in range(granules)])
    out = ffi.new("uint8_t[]", dlen * granules)
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        if lib.fr_kernel_granules(_INDEX[name], alg, src, granules, out) != 0:
            raise RuntimeError(f"hash kernel {name} failed")
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    return best


def _fastest(alg):
    candidates = [name for name in NAMES if lanes(name, alg) and self_test(name, alg)]
    return min(candidates, key=lambda name: measure(alg, name))


def cpu_model():
    """What identifies this CPU's model: vendor, family, model, stepping and name."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    keys = ("vendor_id", "cpu family", "model", "stepping", "model name")
    return " / ".join([os.uname().machine] + [fields.get(key, "?") for key in keys])


def _choice_path(cache_dir):
    return os.path.join(cache_dir, CHOICE_FILE) if cache_dir else None


def _read_choice(cache_dir):
    """{algorithm name: kernel name} stored for this CPU and version, or None
    (no file, another CPU or version, or a file that is not what we write)."""
    from ..store.files import read_head

    path = _choice_path(cache_dir)
    try:
        raw = read_head(path, MAX_CHOICE_FILE) if path else None
        doc = json.loads(raw) if raw else None
    except (FastrimError, OSError, ValueError):
        return None
    if not (isinstance(doc, dict) and doc.get("cpu") == cpu_model() and doc.get("fastrim") == __version__
            and isinstance(doc.get("choice"), dict)):
        return None
    return {alg: name for alg, name in doc["choice"].items() if alg in BY_NAME and isinstance(name, str)}


def _write_choice(cache_dir, choice):
    from ..store.files import write_atomic

    path = _choice_path(cache_dir)
    if path is None:
        return
    doc = {"cpu": cpu_model(), "fastrim": __version__, "choice": choice}
    try:
        write_atomic(path, lambda f: f.write(json.dumps(doc, indent=1, sort_keys=True).encode()))
    except (FastrimError, OSError) as exc:  # a speed hint: the run goes on without it
        log.debug("cannot keep the hash kernel choice in %s: %s", path, exc)
