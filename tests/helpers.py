"""Shared test helpers: in-memory reference stores and realm builders."""

from fastrim import verifier
from fastrim.evidence.expected import ExpectedSource
from fastrim.fleetgen import synth
from fastrim.log import cca, tcg
from fastrim.rim import replay
from fastrim.store import Caches
from fastrim.store.content import ContentCache
from fastrim.store.refs import MemoryRefStore


def fastrim(*args, backend="cffi", cache=None, **popen_args):
    """The fastrim command in a child process on one backend (cache: its FASTRIM_CACHE_DIR)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, FASTRIM_BACKEND=backend)
    if cache:
        env["FASTRIM_CACHE_DIR"] = str(cache)
    return subprocess.run([sys.executable, "-m", "fastrim", *map(str, args)], capture_output=True, text=True, env=env,
                          **popen_args)


def MemoryRefs(images):
    """A reference store in memory holding the measured images of a spec."""
    return MemoryRefStore({i.description.lower() + ".bin": i.data for i in images if i.data is not None})


def replay_spec(spec, impl, refs=None, log=None, **kwargs):
    """Write spec as a log (or take log) and replay it on impl; raises the replay's error."""
    raw = synth.write_log(spec) if log is None else log
    decoded = cca.decode(tcg.parse(raw, impl=impl))
    refs = refs if refs is not None else MemoryRefs(spec.images)
    return replay.replay_rim(decoded, refs, impl=impl, **kwargs).checked()


def one_kernel_realm(root, log_name):
    """root/refs holding one small kernel, and root/log_name, the log of a realm that loads it."""
    kernel = bytes(range(256)) * 64
    spec = synth.RealmSpec(images=(synth.Image("KERNEL", synth.RAM_BASE, kernel),),
                           log_base=synth.RAM_BASE + 2 * len(kernel))
    (root / "refs").mkdir()
    (root / "refs" / "kernel").write_bytes(kernel)
    (root / log_name).parent.mkdir(parents=True, exist_ok=True)
    (root / log_name).write_bytes(synth.write_log(spec))


def verify_path(path, refs, rim=None, *, token_path=None, platform_keys=(), impl=None, cache_dir=None):
    """The pipeline on one log file, as `fastrim verify` runs it: the attested
    RIM is rim, else the token at token_path, else the sidecars."""
    caches = Caches(ContentCache(str(cache_dir)) if cache_dir else None)
    context = verifier.Context(refs, caches=caches, impl=impl, platform_keys=tuple(platform_keys))
    source = verifier.LogSource(str(path), expected=ExpectedSource(rim, token_path))
    return verifier.verify(context, source)


def make_token(rim, rak, platform_key, *, tag=907, profile=True, challenge=None, realm_signature=None,
               second_rim=None):
    """A CCA attestation token around rim, signed with our own test keys:
    rak (P-384 private key) signs the realm token (ES384), platform_key
    (P-256) the platform token (ES256). challenge overrides the binding;
    realm_signature overrides the realm token's signature. second_rim =
    (value, first): the realm claims map holds the RIM claim twice, value
    before (first) or after the real one, all signed."""
    import hashlib

    import cbor2
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    def encode(claims):
        if second_rim is None:
            return cbor2.dumps(claims)
        value, first = second_rim
        entries = [(k, v) for k, v in claims.items()]
        entries.insert(0 if first else len(entries), (44238, value))
        return bytes([0xA0 + len(entries)]) + b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in entries)

    def sign1(key, alg, hash_type, size, claims, signature=None):
        protected = cbor2.dumps({1: alg})
        payload = encode(claims) if 44238 in claims else cbor2.dumps(claims)
        if signature is None:
            der = key.sign(cbor2.dumps(["Signature1", protected, b"", payload]), ec.ECDSA(hash_type()))
            r, s = utils.decode_dss_signature(der)
            signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, signature]))

    numbers = rak.public_key().public_numbers()
    if profile:
        rak_claim = cbor2.dumps({1: 2, -1: 2, -2: numbers.x.to_bytes(48, "big"), -3: numbers.y.to_bytes(48, "big")})
    else:
        rak_claim = rak.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
    realm = {10: b"\x11" * 64, 44235: b"\x22" * 64, 44236: "sha-256", 44237: rak_claim, 44238: rim,
             44239: [b"\x33" * 32] * 4, 44240: "sha-256"}
    if profile:
        realm[265] = "tag:arm.com,2023:realm#1.0.0"
    platform = {265: "tag:arm.com,2023:cca_platform#1.0.0",
                10: challenge if challenge is not None else hashlib.sha256(rak_claim).digest()}
    realm_token = sign1(rak, -35, hashes.SHA384, 48, realm, realm_signature)
    platform_token = sign1(platform_key, -7, hashes.SHA256, 32, platform)
    if tag == 907:
        return cbor2.dumps(cbor2.CBORTag(907, {44234: [263, platform_token], 44241: [263, realm_token]}))
    return cbor2.dumps(cbor2.CBORTag(399, {44234: platform_token, 44241: realm_token}))


SLOW_BATCH = """
import sys, time
from fastrim import cli
from fastrim.run import work
real_verify = work.verify
work.verify = lambda *args, **kwargs: (time.sleep(0.4), real_verify(*args, **kwargs))[1]
sys.exit(cli.main(sys.argv[1:]))
"""


def start_slow_batch(fleet_root, out_dir, cache_dir, extra=(), **popen_args):
    """fastrim batch over a synth fleet (writing out_dir/r.parquet) in a
    child process whose (forked) workers take 0.4 s a log: still running
    when a test interrupts it."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", SLOW_BATCH, "batch", fleet_root / "logs", "--refs",
                             fleet_root / "refs", "--out", out_dir / "r.parquet", "--jobs", "2",
                             "--cache-dir", cache_dir, *extra], **popen_args)


def child_pids(pid, marker=None):
    """The processes whose parent is pid (and whose command line holds marker, when given), from /proc."""
    import os

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if parent == pid and (marker is None or marker in command):
            found.append(int(entry))
    return found


RUN_VOLATILE = {"elapsed_ms", "cache_hits", "memo_hits", "reused", "bytes_hashed", "run_id", "run_at"}


def stable_rows(table, ignore=()):
    """The rows of a results table (pyarrow, or a list of row dicts) without
    the columns that differ from run to run (and ignore's), by key: a file
    holds rows in the order their logs finished."""
    drop = RUN_VOLATILE | set(ignore)
    rows = [{k: v for k, v in row.items() if k not in drop} for row in
            (table if isinstance(table, list) else table.to_pylist())]
    return sorted(rows, key=lambda row: (row.get("root") or "", row["log"]))
