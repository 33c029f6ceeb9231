"""Verdict stage: replay one log and compare its RIM with the attested value.

Every outcome is a Verdict, never an exception: pass, fail (rim.mismatch),
error (the log, a reference image or an input could not be used), or
unverified (no expected RIM was given; the computed RIM is still reported).
"""

import hmac
import os
import time
from dataclasses import dataclass, field

from . import backends, cca, replay, tcglog
from .errors import FastrimError, InputError
from .files import map_file

PASS, FAIL, ERROR, UNVERIFIED = "pass", "fail", "error", "unverified"


@dataclass
class Verdict:
    log: str
    status: str
    error_code: str = None
    detail: str = None
    hash_algo: str = None
    rim: bytes = None
    expected_rim: bytes = None
    vm_version: object = None  # cca.VmVersion
    realm: object = None  # cca.RealmCreate
    images: list = field(default_factory=list)  # (cca.ImageLoad, refstore.RefImage or None)
    events: int = 0
    granules: int = 0
    bytes_hashed: int = 0
    cache_hits: int = 0
    elapsed_ms: float = 0.0
    backend: str = None

    def as_dict(self):
        """Plain JSON-ready values, digests as lower-case hex."""
        realm = None
        if self.realm is not None:
            realm = {k: getattr(self.realm, k) for k in
                     ("flags", "s2sz", "sve_vl", "num_bps", "num_wps", "pmu_num_ctrs", "hash_algo")}
        vmm = None
        if self.vm_version is not None:
            vmm = {"name": self.vm_version.name, "version": self.vm_version.version,
                   "ram_size": self.vm_version.ram_size, "num_cpus": self.vm_version.num_cpus}
        return {
            "log": self.log,
            "status": self.status,
            "error_code": self.error_code,
            "detail": self.detail,
            "hash_algo": self.hash_algo,
            "rim": self.rim.hex() if self.rim is not None else None,
            "expected_rim": self.expected_rim.hex() if self.expected_rim is not None else None,
            "vmm": vmm,
            "realm": realm,
            "images": [
                {
                    "description": image.description,
                    "base": image.base,
                    "size": image.size,
                    "digest": image.digest.hex() if image.digest is not None else None,
                    "reference": ref.name if ref is not None else None,
                }
                for image, ref in self.images
            ],
            "events": self.events,
            "granules": self.granules,
            "bytes_hashed": self.bytes_hashed,
            "cache_hits": self.cache_hits,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "backend": self.backend,
        }


def parse_rim_hex(text, source):
    """An expected RIM given as hex (32 or 64 bytes)."""
    cleaned = text.strip().lower()
    if cleaned.startswith("0x"):
        cleaned = cleaned[2:]
    try:
        value = bytes.fromhex(cleaned)
    except ValueError:
        raise InputError(f"{source} is not hex", code="input.bad_rim") from None
    if len(value) not in (32, 64):
        raise InputError(f"{source} holds {len(value)} bytes, not a 32- or 64-byte RIM", code="input.bad_rim")
    return value


def sidecar_rim(log_path):
    """The expected RIM from the sidecar file LOG.rim, or None when there is none."""
    path = log_path + ".rim"
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            text = f.read(1024)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}", code="io.unreadable") from None
    return parse_rim_hex(text, path)


def verify(log_path, refs, expected_rim=None, *, options=replay.ReplayOptions(), cache=None,
           max_event_size=tcglog.DEFAULT_MAX_EVENT_SIZE, impl=None, name=None):
    """Replay log_path against refs and compare with expected_rim (bytes or None)."""
    impl = impl or backends.active
    started = time.perf_counter()
    verdict = Verdict(name or log_path, ERROR, expected_rim=expected_rim, backend=impl.NAME)
    try:
        log = tcglog.parse(map_file(log_path), max_event_size=max_event_size, impl=impl)
        verdict.events = len(log)
        decoded = cca.decode(log)
        verdict.vm_version, verdict.realm = decoded.vm_version, decoded.realm
        if decoded.realm is not None:
            verdict.hash_algo = decoded.realm.hash_name
        result = replay.replay(decoded, refs, options=options, cache=cache, impl=impl)
        verdict.rim, verdict.images = result.rim, result.images
        verdict.granules, verdict.bytes_hashed = result.granules, result.bytes_hashed
        verdict.cache_hits = result.cache_hits
        _compare(verdict)
    except FastrimError as exc:
        verdict.status, verdict.error_code = ERROR, exc.code
        where = f" (at byte offset {exc.offset})" if exc.offset is not None else ""
        verdict.detail = f"{exc.args[0]}{where}"
    verdict.elapsed_ms = (time.perf_counter() - started) * 1000
    return verdict


def _compare(verdict):
    expected, rim = verdict.expected_rim, verdict.rim
    if expected is None:
        verdict.status, verdict.detail = UNVERIFIED, "no expected RIM was given"
    elif len(expected) != len(rim):
        verdict.status, verdict.error_code = FAIL, "rim.mismatch"
        verdict.detail = f"expected a {len(expected)}-byte RIM, the {verdict.hash_algo} replay gives {len(rim)} bytes"
    elif hmac.compare_digest(expected, rim):
        verdict.status = PASS
    else:
        verdict.status, verdict.error_code = FAIL, "rim.mismatch"
        verdict.detail = "the replayed RIM differs from the attested one"
