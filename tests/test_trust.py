"""The trust boundary, probed as an attacker and an unlucky operator would:
whoever can write the cache directory (but not read the cache key) cannot
make a tampered launch pass; special files and links cannot hang or
redirect fastrim; an image that changes while it is hashed leaves nothing
behind; a huge log is refused unread; a stopped worker cannot stall a
batch; a token that two decoders could read differently is malformed.
Each test here fails on fastrim before these protections."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import types

import cbor2
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import child_pids, fastrim, make_token, start_slow_batch

from fastrim import errors, verifier
from fastrim.backend import select
from fastrim.evidence import token
from fastrim.evidence.expected import ExpectedSource
from fastrim.fleetgen import fleet, synth
from fastrim.log import cca, tcg
from fastrim.rim import replay
from fastrim.store import Caches
from fastrim.store.content import ContentCache
from fastrim.store.refs import RefStore
from fastrim.store.steps import StepMemo, step_key

BACKENDS = ["cffi", "python"]
GUARD = 60  # seconds: a hang would be forever
KERNEL = bytes(range(256)) * 256 + b"kernel"  # 64 KiB and a bit
EVIL = bytes(reversed(KERNEL))
SPEC = synth.RealmSpec(images=(synth.Image("KERNEL", synth.RAM_BASE, KERNEL),),
                       log_base=synth.RAM_BASE + 2 * len(KERNEL))


@pytest.fixture
def realm(tmp_path):
    """A launch of SPEC: refs/, vm.log and the cache directory to use."""
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "kernel").write_bytes(KERNEL)
    (tmp_path / "vm.log").write_bytes(synth.write_log(SPEC))
    return tmp_path


def verify(realm, *extra, backend="cffi", rim=None):
    args = ["verify", realm / "vm.log", "--refs", realm / "refs", "--cache-dir", realm / "cache", "--json", *extra]
    if rim is not None:
        args += ["--rim", rim.hex()]
    run = fastrim(*args, backend=backend, timeout=GUARD)
    return run, (json.loads(run.stdout) if run.stdout.strip() else None)


def good_rim(realm):
    return verify(realm)[1]["rim"]


def decoded_spec():
    return cca.decode(tcg.parse(synth.write_log(SPEC)))


# ---- a cache no one else can forge -------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_a_forged_step_memo_record_never_makes_a_tampered_launch_pass(realm, backend):
    good = bytes.fromhex(good_rim(realm))
    decoded = decoded_spec()
    before_kernel = dict(replay.replay_rim(decoded, RefStore(realm / "refs")).checked().steps)["INIT_RIPAS"]
    kernel = next(s.record for s in decoded.steps if isinstance(s.record, cca.ImageLoad))
    key = step_key(decoded.realm.alg, before_kernel.ljust(64, b"\0"), kernel.base, kernel.size, kernel.digest)
    forged_after = hashlib.sha512(b"what an evil kernel gives").digest()
    # What a verifier that believed the record would compute: the attested RIM the attacker sends.
    believed = StepMemo()
    believed.put(key, forged_after)
    attested = replay.replay_rim(decoded, RefStore(realm / "refs"), caches=Caches(None, believed)).checked().rim
    assert attested != good
    steps = realm / "cache" / "steps"
    with open(steps / "steps-v2.bin", "ab") as f:  # the records an attacker can write: any checksum, not our MAC
        f.write(key + forged_after + hashlib.sha256(key + forged_after).digest())
        f.write(key + forged_after + bytes(32))
    run, row = verify(realm, backend=backend, rim=attested)
    assert (row["status"], row["error_code"]) == ("fail", "rim.mismatch"), run.stderr
    assert row["rim"] == good.hex() and "forged step-memo records" in run.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_forged_content_cache_file_never_makes_a_tampered_launch_pass(realm, backend):
    good = good_rim(realm)
    for record in (realm / "cache" / "steps").iterdir():
        record.unlink()  # so that the replay reads the content cache, not the step memo
    digest = hashlib.sha256(KERNEL).digest()
    contents = b"".join(hashlib.sha256(EVIL[i:i + 4096].ljust(4096, b"\0")).digest() for i in range(0, len(EVIL), 4096))
    forger = ContentCache(str(realm / "cache"), key=b"\x66" * 32)  # the cache's own writer, another key
    forger.put((0x000B, digest, synth.RAM_BASE % 4096), contents)
    believed = replay.replay_rim(decoded_spec(), RefStore(realm / "refs"), caches=Caches(forger)).checked().rim
    run, row = verify(realm, backend=backend, rim=believed)
    assert (row["status"], row["error_code"], row["cache_hits"]) == ("fail", "rim.mismatch", 0), run.stderr
    assert row["rim"] == good and "forged content-cache file" in run.stderr


@pytest.mark.parametrize("no_cache", [False, True], ids=["cached", "no-cache"])
def test_swapped_index_entries_never_make_a_tampered_launch_pass(tmp_path, no_cache):
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "a-good").write_bytes(KERNEL)
    (tmp_path / "refs" / "b-evil").write_bytes(EVIL)  # same size
    (tmp_path / "vm.log").write_bytes(synth.write_log(SPEC))  # logs the good kernel's digest
    evil_spec = synth.RealmSpec(images=(synth.Image("KERNEL", synth.RAM_BASE, EVIL),), log_base=SPEC.log_base)
    attested = replay.replay_rim(cca.decode(tcg.parse(synth.write_log(evil_spec))),
                                 RefStore(tmp_path / "refs")).checked().rim  # what the realm really booted
    store = RefStore(tmp_path / "refs", cache_dir=str(tmp_path / "cache"))
    raw = open(store.index_path, "rb").read()
    header, _, body = raw.partition(b"\n")
    doc = json.loads(body)
    a, b = doc["files"]["a-good"], doc["files"]["b-evil"]
    a[1], b[1] = b[1], a[1]  # the digests swapped, stamps kept
    open(store.index_path, "wb").write(header + b"\n" + json.dumps(doc).encode())
    extra = ["--no-cache"] if no_cache else []
    run = fastrim("verify", tmp_path / "vm.log", "--refs", tmp_path / "refs", "--cache-dir", tmp_path / "cache",
                  "--rim", attested.hex(), "--json", *extra, timeout=GUARD)
    row = json.loads(run.stdout)
    assert (row["status"], row["error_code"]) == ("fail", "rim.mismatch"), run.stderr
    assert [i["reference"] for i in row["images"]] == ["a-good", None]  # the LOG image is unmeasured
    if not no_cache:
        assert "forged reference index" in run.stderr


def test_the_cache_key_lives_outside_the_cache_and_is_private(realm):
    verify(realm)
    key_file = os.environ["FASTRIM_CACHE_KEY_FILE"]
    assert not key_file.startswith(str(realm / "cache"))
    assert os.stat(key_file).st_mode & 0o777 == 0o600 and os.path.getsize(key_file) == 32
    assert os.stat(realm / "cache").st_mode & 0o077 == 0


# ---- images that change underneath -------------------------------------------------------------

class _Meddling(types.ModuleType):
    """A backend whose rim_file first does something to the image file, as
    another process could while fastrim hashes it."""

    def __init__(self, impl, path, meddle):
        super().__init__(impl.__name__)
        self.__dict__.update({k: getattr(impl, k) for k in dir(impl) if not k.startswith("__") and k != "rim_file"})
        self._real, self._path, self._meddle = impl.rim_file, path, meddle

    def rim_file(self, *args):
        self._meddle(self._path)
        return self._real(*args)


def _context(realm, impl):
    refs = RefStore(realm / "refs", cache_dir=str(realm / "cache"))
    return verifier.Context(refs, caches=Caches.open(str(realm / "cache")), impl=impl)


def _verify_in_process(realm, impl, rim):
    source = verifier.LogSource(str(realm / "vm.log"), expected=ExpectedSource(rim))
    return verifier.verify(_context(realm, impl), source)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_image_changed_and_restored_while_hashed_poisons_nothing(realm, backend):
    impl = select.load(backend)
    good = replay.replay_rim(decoded_spec(), RefStore(realm / "refs"), impl=impl).checked().rim

    def change_a_granule(path):  # rewritten in place, same size: the bytes hashed next are not the indexed ones
        with open(path, "r+b") as f:
            f.write(b"\xff" * 4096)

    meddling = _Meddling(impl, realm / "refs" / "kernel", change_a_granule)
    changed = _verify_in_process(realm, meddling, good)
    assert (changed.status, changed.error_code) == ("error", "ref.changed"), changed.detail
    (realm / "refs" / "kernel").write_bytes(KERNEL)  # restored byte for byte
    again = _verify_in_process(realm, impl, good)
    assert (again.status, again.cache_hits) == ("pass", 0), "nothing of the changed bytes was cached"
    third = _verify_in_process(realm, impl, good)
    assert (third.status, third.bytes_hashed) == ("pass", 0), "the good bytes, cached by the second run"


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_image_truncated_while_hashed_is_an_error_not_a_sigbus(realm, backend):
    big = realm / "refs" / "kernel"
    impl = select.load(backend)
    meddling = _Meddling(impl, big, lambda path: os.truncate(path, 100))
    verdict = _verify_in_process(realm, meddling, None)
    assert (verdict.status, verdict.error_code) == ("error", "ref.changed"), verdict.detail


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("asked", [1 << 20, 12000], ids=["pages-past-the-end", "within-the-last-page"])
def test_a_file_shorter_than_asked_is_refused_alike(tmp_path, backend, asked):
    """The file is shorter than the size asked for: the C core must not map
    past its end (a fault, or zeros within the last page) and Python reads
    short; both refuse it the same way."""
    impl = select.load(backend)
    path = tmp_path / "short"
    path.write_bytes(b"x" * 10000)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(errors.ReferenceImageError) as info:
            impl.rim_file(0x000B, bytes(64), fd, asked, 0, True)
    finally:
        os.close(fd)
    assert info.value.code == "ref.changed"


def test_a_file_truncated_while_the_c_core_hashes_it_is_an_error_not_a_sigbus(tmp_path):
    """A real fault: another thread truncates the file while the C core hashes
    its mapping (cffi lets go of the GIL). Whether the truncation lands before
    the size check or inside the hashing, the call returns, never kills."""
    import threading

    from fastrim._native import ffi, lib

    path = tmp_path / "image"
    with open(path, "wb") as f:
        f.truncate(256 << 20)  # sparse: quick to make, a quarter of a second to hash
    fd = os.open(path, os.O_RDWR)
    try:
        cutter = threading.Timer(0.02, os.ftruncate, (fd, 4096))
        cutter.start()
        result = lib.fr_rim_file(0x000B, ffi.new("uint8_t[64]"), fd, 256 << 20, 0, ffi.NULL)
        cutter.join()
    finally:
        os.close(fd)
    assert result == lib.FR_RIM_SHORT_FILE


# ---- links and special files -------------------------------------------------------------------

def test_links_planted_for_cache_files_are_never_followed(realm):
    verify(realm)  # makes the cache's directories
    outside = realm / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_bytes(b"keep")
    cache = realm / "cache"
    steps = cache / "steps" / "steps-v2.bin"
    steps.unlink()
    os.symlink(victim, steps)
    content_dir = next((cache / "content").iterdir())
    for entry in list(content_dir.iterdir()):
        entry.unlink()
    digest = hashlib.sha256(KERNEL).digest().hex()
    os.symlink(outside / "created-by-lock", content_dir / f"{digest}-000.bin.lock")
    os.symlink(victim, content_dir / f"{digest}-000.bin")
    run, row = verify(realm)
    assert row["status"] == "unverified" and row["rim"], run.stderr
    assert victim.read_bytes() == b"keep" and not (outside / "created-by-lock").exists()
    assert os.path.islink(steps)


def test_a_linked_or_open_cache_key_is_refused_and_the_run_goes_on_uncached(realm, tmp_path):
    key = tmp_path / "keys" / "cache.key"
    key.parent.mkdir()
    os.symlink("/etc/hostname", key)
    env = dict(os.environ, FASTRIM_CACHE_KEY_FILE=str(key))
    run = subprocess.run([sys.executable, "-m", "fastrim", "verify", realm / "vm.log", "--refs", realm / "refs",
                          "--cache-dir", realm / "cache2"], capture_output=True, text=True, env=env, timeout=GUARD)
    assert run.returncode == 0 and "running without a cache" in run.stderr
    assert run.stdout.startswith("unverified rim=")


@pytest.mark.parametrize("where", ["log", "token-sidecar", "image", "steps", "content", "index", "lock", "key"])
def test_fifos_anywhere_never_hang(realm, tmp_path, where):
    verify(realm)  # the cache, its key and index exist
    cache = realm / "cache"
    digest = hashlib.sha256(KERNEL).digest().hex()
    env = dict(os.environ)
    args = ["batch", realm / "logs", "--refs", realm / "refs", "--cache-dir", cache, "--jsonl"]
    (realm / "logs").mkdir()
    (realm / "logs" / "vm.log").write_bytes((realm / "vm.log").read_bytes())
    target = {
        "log": realm / "logs" / "fifo.log",
        "token-sidecar": realm / "logs" / "vm.token",
        "image": realm / "refs" / "zz-fifo",
        "steps": cache / "steps" / "steps-v2.bin",
        "content": next((cache / "content").iterdir()) / f"{digest}-000.bin",
        "index": next((cache / "refs").iterdir()),
        "lock": next((cache / "content").iterdir()) / f"{digest}-000.bin.lock",
        "key": tmp_path / "fifo.key",
    }[where]
    if target.exists() or target.is_symlink():
        target.unlink()
    os.mkfifo(target)
    if where == "key":
        env["FASTRIM_CACHE_KEY_FILE"] = str(target)
    run = subprocess.run([sys.executable, "-m", "fastrim", *map(str, args)], capture_output=True, text=True,
                         env=env, timeout=GUARD)
    rows = {r["log"]: r for r in map(json.loads, run.stdout.splitlines())}
    assert rows["vm.log"]["status"] in ("unverified", "error"), run.stderr
    if where == "log":
        assert rows["fifo.log"]["error_code"] == "io.not_regular"
    elif where == "token-sidecar":
        assert rows["vm.log"]["error_code"] == "io.not_regular"
    else:
        assert rows["vm.log"]["status"] == "unverified", (where, rows["vm.log"])


@pytest.mark.parametrize("option", ["--platform-key", "--expected", "--token"])
def test_fifo_inputs_are_usage_errors(realm, option):
    os.mkfifo(realm / "fifo")
    command = "verify" if option == "--token" else "batch"
    args = [command, realm / "vm.log", "--refs", realm / "refs", option, realm / "fifo"]
    if command == "batch":
        args.append("--jsonl")
    run = fastrim(*args, timeout=GUARD)
    assert run.returncode == 2 and "not a regular file" in run.stderr


# ---- bounded logs and workers ------------------------------------------------------------------

# The peak RSS of this process image (VmHWM: ru_maxrss would carry the
# high-water mark of the pytest process this child was forked from).
CHILD = r"""
import sys
from fastrim import cli
def peak():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) * 1024
code = cli.main(sys.argv[1:])
print(code, peak())
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_2_gib_sparse_log_is_refused_unread(realm, backend):
    sparse = realm / "sparse.log"
    with open(sparse, "wb") as f:
        f.truncate(2 << 30)
    env = dict(os.environ, FASTRIM_BACKEND=backend)
    run = subprocess.run([sys.executable, "-c", CHILD, "verify", sparse, "--refs", realm / "refs", "--json"],
                         capture_output=True, text=True, env=env, timeout=GUARD)
    row = json.loads(run.stdout.splitlines()[0])
    code, peak = map(int, run.stdout.splitlines()[1].split())
    assert (code, row["error_code"]) == (1, "log.too_large")
    assert peak < 200 << 20, peak  # the interpreter and its libraries; reading the log would take 2 GiB more


def test_a_stopped_worker_cannot_stall_the_batch(tmp_path):
    root = tmp_path / "fleet"
    manifest = fleet.generate(str(root), vms=12, seed=3, tamper=0.0, scale=1 / 256)
    proc = start_slow_batch(root, tmp_path, tmp_path / "c", extra=("--log-timeout", "3"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    workers = []
    while len(workers) < 2 and time.monotonic() < deadline:
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            workers = child_pids(proc.pid, f.read())  # forked workers: the batch's own command line
        time.sleep(0.1)
    time.sleep(0.6)  # busy with a log
    os.kill(workers[0], signal.SIGSTOP)
    try:
        _, stderr = proc.communicate(timeout=120)
    finally:
        try:
            os.kill(workers[0], signal.SIGKILL)
        except ProcessLookupError:
            pass
    rows = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert len(rows) == len(manifest) and proc.returncode in (0, 3), stderr
    codes = [r["error_code"] for r in rows]
    assert set(codes) <= {None, "internal.timeout"} and codes.count("internal.timeout") <= 1


# ---- tokens read one way only ------------------------------------------------------------------

@pytest.fixture(scope="module")
def token_keys(tmp_path_factory):
    rak, platform = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP256R1())
    path = tmp_path_factory.mktemp("tkeys") / "platform.pem"
    path.write_bytes(platform.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    return rak, platform, token.load_platform_key(path)


@pytest.mark.parametrize("fake_first", [True, False], ids=["fake-first", "fake-last"])
def test_a_rim_claim_given_twice_is_malformed(token_keys, fake_first):
    rak, platform, anchor = token_keys
    real, fake = b"\x01" * 32, b"\x02" * 32
    data = make_token(real, rak, platform, second_rim=(fake, fake_first))
    assert token.verify_token(make_token(real, rak, platform), [anchor]).trusted  # the same token, once each
    with pytest.raises(errors.TokenError) as info:
        token.verify_token(data, [anchor])
    assert info.value.code == "token.malformed" and "same key twice" in str(info.value)


def test_a_collection_with_a_platform_entry_twice_is_malformed(token_keys):
    rak, platform, anchor = token_keys
    good = cbor2.loads(make_token(b"\x01" * 32, rak, platform, tag=399))
    entries = list(good.value.items()) + [(44234, good.value[44234])]
    body = bytes([0xA0 + len(entries)]) + b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in entries)
    data = cbor2.dumps(cbor2.CBORTag(399, None))[:-1] + body  # tag 399 around the hand-built map
    with pytest.raises(errors.TokenError) as info:
        token.verify_token(data, [anchor])
    assert "same key twice" in str(info.value)


@pytest.mark.parametrize("tail", [b"\x00", b"\xa0", b"junk"])
def test_trailing_bytes_after_a_token_are_malformed(token_keys, tail):
    rak, platform, anchor = token_keys
    data = make_token(b"\x01" * 32, rak, platform)
    assert token.verify_token(data, [anchor]).trusted
    with pytest.raises(errors.TokenError) as info:
        token.verify_token(data + tail, [anchor])
    assert "after its CBOR item" in str(info.value)


def test_indefinite_lengths_are_malformed(token_keys):
    rak, platform, anchor = token_keys
    data = make_token(b"\x01" * 32, rak, platform, tag=399)
    top = cbor2.loads(data)
    indefinite = b"\xd9\x01\x8f" + b"\xbf" + b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in top.value.items()) \
        + b"\xff"
    assert cbor2.loads(indefinite).value == top.value  # cbor2 alone would read it
    with pytest.raises(errors.TokenError) as info:
        token.verify_token(indefinite, [anchor])
    assert "indefinite-length" in str(info.value)



def test_a_map_key_that_decodes_equal_to_another_is_malformed(token_keys):
    """cbor2 reads 1 and 1.0 as one key (the last value wins): only integer and string keys are allowed."""
    rak, platform, anchor = token_keys
    good = cbor2.loads(make_token(b"\x01" * 32, rak, platform, tag=399))
    entries = list(good.value.items()) + [(44234.0, b"\x00")]
    body = bytes([0xA0 + len(entries)]) + b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in entries)
    with pytest.raises(errors.TokenError) as info:
        token.verify_token(cbor2.dumps(cbor2.CBORTag(399, None))[:-1] + body, [anchor])
    assert "not an integer or a string" in str(info.value)
