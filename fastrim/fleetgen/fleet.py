"""Synthetic fleet: a reference store, QEMU-layout logs for varied realm
configurations with `.rim` sidecars holding the attested RIMs, a fraction of
tampered or broken cases, and a manifest of the verdict each log must get.

Realms draw their launch configuration (one per 20 realms) with skewed
popularity, as in a real fleet where many VMs share one. Tenants bring their
own guest images, so kernels and initrds are nearly as many as the
configurations. Image sizes are realistic at scale 1 (firmware 2 MiB,
kernels 24-40 MiB, initrds 16-64 MiB, DTBs 1 MiB); `scale` shrinks them.
"""

import hashlib
import json
import os
import random
import tempfile
from dataclasses import dataclass, replace

from ..evidence.expected import ExpectedSource
from ..store import Caches
from ..store.content import ContentCache
from ..store.refs import MemoryRefStore
from ..store.steps import StepMemo
from ..verifier import Context, LogSource, verify
from . import synth
from .synth import RAM_BASE

MIB = 1 << 20
TAMPER_KINDS = ("wrong_address", "unvetted_image", "wrong_rim", "truncated", "missing_sidecar")
MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class _Config:
    name: str
    spec: synth.RealmSpec


def _align_up(value, alignment):
    return -(-value // alignment) * alignment


def _image(rng, size):
    """size bytes that look random, fast: each MiB is one random MiB rotated
    by a random amount (a seeded generator alone makes ~1 GB/s at best)."""
    block = rng.randbytes(min(size, MIB))
    doubled = memoryview(block + block)
    out = bytearray(size)
    for start in range(0, size, len(block)):
        k = rng.randrange(len(block))
        part = doubled[k : k + min(len(block), size - start)]
        out[start : start + len(part)] = part
    return bytes(out)


def _catalogue(rng, builds, scale):
    """Reference images by name: two firmware builds, and `builds` kernels and initrds."""
    def size(mib_low, mib_high):
        return max(4096 + 123, int(rng.uniform(mib_low, mib_high) * MIB * scale))

    images = {}
    for i in range(2):
        images[f"firmware/QEMU_EFI-{i}.fd"] = _image(rng, max(4096, int(2 * MIB * scale)))
    for i in range(builds):
        images[f"kernel/Image-6.{i}.0"] = _image(rng, size(24, 40))
        images[f"initrd/initramfs-6.{i}.0.img"] = _image(rng, size(16, 64))
    return images


def _dtb(spec_fields, scale):
    """A stand-in DTB for one configuration: QEMU generates it from the
    machine's parameters, so equal configurations share it."""
    seed = hashlib.sha256(repr(spec_fields).encode()).digest()
    size = max(4096, int(MIB * scale))
    return (b"\xd0\x0d\xfe\xed" + seed * (size // 32 + 1))[:size]


def _configs(rng, images, count, scale):
    firmware = sorted(n for n in images if n.startswith("firmware/"))
    kernels = sorted(n for n in images if n.startswith("kernel/"))
    initrds = sorted(n for n in images if n.startswith("initrd/"))
    configs, dtbs = [], {}
    for index in range(count):
        fw = rng.choice(firmware) if rng.random() < 0.5 else None
        kernel = kernels[index % len(kernels)]  # a tenant's images, in a config or two
        initrd = initrds[index % len(initrds)] if rng.random() < 0.9 else None
        ram_size = rng.choice([1, 2, 4, 8]) << 30
        sve_vl, pmu = rng.choice([0, 3]), rng.choice([0, 6])
        draw = rng.random()  # SHA-256 for most realms, SHA-512 and SHA-384 (RMM 2.0) for some
        fields = dict(
            hash_algo=0 if draw < 0.7 else 1 if draw < 0.85 else 2, s2sz=rng.choice([40, 41, 44, 48]), sve_vl=sve_vl,
            pmu_num_ctrs=pmu, flags=(2 if sve_vl else 0) | (4 if pmu else 0),
            ram_base=RAM_BASE, ram_size=ram_size, num_cpus=rng.choice([1, 2, 4, 8]),
        )
        kernel_base = RAM_BASE + 2 * MIB
        placed = [synth.Image("KERNEL", kernel_base, images[kernel])]
        end = kernel_base + len(images[kernel])
        if initrd:
            initrd_base = RAM_BASE + 128 * MIB
            placed.append(synth.Image("INITRD", initrd_base, images[initrd]))
            end = initrd_base + len(images[initrd])
        dtb_base = _align_up(end, MIB)
        dtb_name = f"dtb/virt-{index:03d}.dtb"
        dtbs[dtb_name] = _dtb((fields, kernel, initrd), scale)
        placed.append(synth.Image("DTB", dtb_base, dtbs[dtb_name]))
        if fw:
            placed.insert(0, synth.Image("FIRMWARE", 0, images[fw]))
        spec = synth.RealmSpec(
            **fields, images=tuple(placed), pc=0 if fw else kernel_base,
            gprs=(dtb_base, 0, 0, 0, 0, 0, 0, 0), log_base=_align_up(dtb_base + len(dtbs[dtb_name]), MIB),
        )
        configs.append(_Config(f"config-{index:03d}", spec))
    return configs, dtbs


def _log(rng, spec, kind):
    """The log of a realm launched from spec, tampered as kind says."""
    if kind == "wrong_address":  # the kernel 1 MiB lower than the attested launch put it
        images = tuple(replace(i, base=i.base - MIB) if i.description == "KERNEL" else i for i in spec.images)
        return synth.write_log(replace(spec, images=images))
    if kind == "unvetted_image":  # a kernel the verifier never vetted, one bit off
        kernel = next(i for i in spec.images if i.description == "KERNEL")
        patched = bytearray(kernel.data)
        patched[rng.randrange(len(patched))] ^= 0x01
        images = tuple(replace(i, data=bytes(patched)) if i is kernel else i for i in spec.images)
        return synth.write_log(replace(spec, images=images))
    log = synth.write_log(spec)
    if kind == "truncated":  # cut inside the last event
        return log[: len(log.rstrip(b"\0")) - 5]
    return log


def generate(outdir, vms=100, seed=0, tamper=0.1, scale=1.0):
    """Write a fleet under outdir (refs/, logs/, manifest.jsonl); returns the manifest rows."""
    rng = random.Random(seed)
    count = max(3, vms // 20)
    images = _catalogue(rng, max(2, count * 4 // 5), scale)
    configs, dtbs = _configs(rng, images, count, scale)
    images.update(dtbs)
    for name, data in images.items():
        path = os.path.join(outdir, "refs", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    rims = _faithful_rims(configs, images)
    weights = [1 / (i + 1) for i in range(len(configs))]  # a few popular configurations
    os.makedirs(os.path.join(outdir, "logs"), exist_ok=True)
    manifest = []
    tampered = 0
    for vm in range(vms):
        config = rng.choices(configs, weights)[0]
        kind = None
        if rng.random() < tamper:  # the kinds in turn, so that a small fleet has each
            kind = TAMPER_KINDS[tampered % len(TAMPER_KINDS)]
            tampered += 1
        log = _log(rng, config.spec, kind)
        rim = rims[config.name]
        attested = bytes([rim[0] ^ 0xFF]) + rim[1:] if kind == "wrong_rim" else rim
        name = f"vm-{vm:05d}.log"
        path = os.path.join(outdir, "logs", name)
        with open(path, "wb") as f:
            f.write(log)
        if kind != "missing_sidecar":
            with open(path[: -len(".log")] + ".rim", "w") as f:
                f.write(attested.hex() + "\n")
        manifest.append({"log": name, "config": config.name, "case": kind or "clean",
                         **_expected_verdict(kind, rim, attested)})
    with open(os.path.join(outdir, MANIFEST), "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in manifest)
    return manifest


def _faithful_rims(configs, images):
    """{configuration name: the RIM of its faithful launch}, each image's
    content hashed once (configurations share firmware and tenant images)."""
    with tempfile.TemporaryDirectory(prefix="fastrim-synth-") as scratch:
        context = Context(MemoryRefStore(images, digest=synth.image_digest),
                          caches=Caches(ContentCache(scratch), StepMemo()))
        rims = {}
        for config in configs:
            source = LogSource(data=synth.write_log(config.spec), name=config.name,
                               expected=ExpectedSource(sidecars=False))
            verdict = verify(context, source)
            if verdict.error is not None:
                raise verdict.error  # our own faithful launch must replay
            rims[config.name] = verdict.rim
        return rims


def _expected_verdict(kind, rim, attested):
    """What a verifier must say, from the tampering done, not from a replay of the log."""
    status, code = {
        None: ("pass", None),
        "wrong_address": ("fail", "rim.mismatch"),
        "unvetted_image": ("error", "ref.unknown_image"),
        "wrong_rim": ("fail", "rim.mismatch"),
        "truncated": ("error", "log.truncated"),
        "missing_sidecar": ("unverified", None),
    }[kind]
    return {
        "status": status,
        "error_code": code,
        "expected_rim": None if kind == "missing_sidecar" else attested.hex(),
        # The RIM the log replays to, where the faithful launch's RIM is it.
        "rim": rim.hex() if kind in (None, "wrong_rim", "missing_sidecar") else None,
    }

