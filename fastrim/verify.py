"""Verdict stage: replay one log and compare its RIM with the attested value.

Every outcome is a Verdict, never an exception: pass, fail (rim.mismatch),
error (the log, a reference image or an input could not be used), or
unverified (no expected RIM was given; the computed RIM is still reported).
"""

import collections
import hmac
import os
import time
from dataclasses import dataclass, field

import xxhash

from . import backends, cca, replay, tcglog, token
from .errors import FastrimError, InputError
from .files import map_file, read_head

PASS, FAIL, ERROR, UNVERIFIED = "pass", "fail", "error", "unverified"
STATUSES = (PASS, FAIL, ERROR, UNVERIFIED)
REALM_FIELDS = ("flags", "s2sz", "sve_vl", "num_bps", "num_wps", "pmu_num_ctrs")


@dataclass
class Verdict:
    log: str
    status: str
    error_code: str = None
    detail: str = None
    hash_algo: str = None
    rim: bytes = None
    expected_rim: bytes = None
    rim_source: str = None  # where expected_rim came from: given, token, token-sidecar or sidecar
    vm_version: object = None  # cca.VmVersion
    realm: object = None  # cca.RealmCreate
    images: list = field(default_factory=list)  # (cca.ImageLoad, refstore.RefImage or None)
    events: int = 0
    granules: int = 0
    bytes_hashed: int = 0
    cache_hits: int = 0
    memo_hits: int = 0
    reused: bool = False  # the outcome of a byte-identical log was reused
    token: object = None  # token.TokenResult when the attested RIM came from a token
    elapsed_ms: float = 0.0
    backend: str = None

    def row(self):
        """The result row (see results.SCHEMA): flat fields, digests as bytes."""
        vmm, realm = self.vm_version, self.realm
        return {
            "log": self.log,
            "status": self.status,
            "error_code": self.error_code,
            "detail": self.detail,
            "hash_algo": self.hash_algo,
            "rim": self.rim,
            "expected_rim": self.expected_rim,
            "rim_source": self.rim_source,
            "vmm_name": vmm.name if vmm else None,
            "vmm_version": vmm.version if vmm else None,
            "ram_size": vmm.ram_size if vmm else None,
            "num_cpus": vmm.num_cpus if vmm else None,
            **{name: getattr(realm, name) if realm else None for name in REALM_FIELDS},
            "images": [
                {
                    "description": image.description,
                    "base": image.base,
                    "size": image.size,
                    "digest": image.digest,
                    "reference": ref.name if ref is not None else None,
                }
                for image, ref in self.images
            ],
            "events": self.events,
            "granules": self.granules,
            "bytes_hashed": self.bytes_hashed,
            "cache_hits": self.cache_hits,
            "memo_hits": self.memo_hits,
            "reused": self.reused,
            **_token_columns(self.token),
            "elapsed_ms": round(self.elapsed_ms, 3),
            "backend": self.backend,
        }


def _token_columns(result):
    """What an auditor wants of the token: the checks and the realm claims."""
    claims = result.realm_claims if result is not None else {}
    return {
        "token_realm_signature": result.realm_signature if result else None,
        "token_platform_signature": result.platform_signature if result else None,
        "token_binding": result.binding if result else None,
        "token_platform_key": result.platform_key if result else None,
        "realm_profile": claims.get(token.CLAIM_PROFILE),
        "realm_challenge": claims.get(token.CLAIM_CHALLENGE),
        "realm_rpv": claims.get(token.CLAIM_RPV),
        "realm_rems": list(claims[token.CLAIM_REMS]) if token.CLAIM_REMS in claims else None,
        "realm_hash_algo": claims.get(token.CLAIM_HASH_ALGO),
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


def sidecar_path(log_path, suffix):
    """X.rim (or X.token) beside X.log or X.bin."""
    stem, ext = os.path.splitext(log_path)
    return (stem if ext in LOG_SUFFIXES else log_path) + suffix


LOG_SUFFIXES = (".log", ".bin")


def sidecar_rim(log_path):
    """The expected RIM from the sidecar X.rim of X.log, or None when there is none."""
    path = sidecar_path(log_path, ".rim")
    raw = read_head(path, 1024)
    return None if raw is None else parse_rim_hex(raw.decode("ascii", "replace"), path)


@dataclass
class Replayed:
    """What a log's bytes replay to, apart from any expected value, so that a
    byte-identical log can reuse it: the decoded facts and the replay result,
    or the error that stopped them."""

    events: int = 0
    vm_version: object = None
    realm: object = None
    result: replay.ReplayResult = None  # the work done, and the RIM unless there is an error
    error: FastrimError = None


def replay_log(data, refs, *, options, cache, memo, max_event_size, impl, work=None):
    """Replay the log in data. work (a replay.ReplayResult) is filled in as
    it goes, so that a caller that sees an exception can still count the
    bytes hashed before it."""
    replayed = Replayed(result=work if work is not None else replay.ReplayResult(None, None))
    try:
        log = tcglog.parse(data, max_event_size=max_event_size, impl=impl)
        replayed.events = len(log)
        decoded = cca.decode(log)
        replayed.vm_version, replayed.realm = decoded.vm_version, decoded.realm
        replay.replay(decoded, refs, options=options, cache=cache, memo=memo, impl=impl, work=replayed.result)
    except FastrimError as exc:
        replayed.error = exc
    return replayed


class SameLogMemo:
    """Replay outcomes of the logs this process has seen, found again by their
    bytes: fleets launch many realms from one configuration, and their logs
    are byte for byte the same. An xxh3-128 digest only picks the candidate;
    a full byte comparison decides, so a fast-hash collision cannot reuse a
    wrong outcome. Valid for one reference store and one set of options.
    Holds at most `capacity` logs of up to 1 MiB; the oldest go first."""

    def __init__(self, capacity=1024):
        self.capacity = capacity
        self._entries = collections.OrderedDict()

    def get(self, data):
        entry = self._entries.get(xxhash.xxh3_128_digest(data))
        return entry[1] if entry is not None and entry[0] == data else None

    def put(self, data, replayed):
        if isinstance(data, bytes) and len(data) <= 1 << 20:
            self._entries[xxhash.xxh3_128_digest(data)] = (data, replayed)
            if len(self._entries) > self.capacity:
                self._entries.popitem(last=False)


def verify(log_path, refs, expected_rim=None, *, token_path=None, platform_keys=(), use_sidecar=True,
           options=replay.ReplayOptions(), cache=None, memo=None, same_logs=None,
           max_event_size=tcglog.DEFAULT_MAX_EVENT_SIZE, impl=None, name=None, work=None):
    """Replay log_path against refs and compare with the attested RIM: the
    bytes expected_rim, else the RIM of the CCA token at token_path once it
    is checked against platform_keys (token.PlatformKey list), else (when
    use_sidecar is set) the token sidecar X.token, else the sidecar X.rim.
    same_logs (a SameLogMemo) reuses the outcome of a byte-identical log;
    work: see replay_log."""
    impl = impl or backends.active
    started = time.perf_counter()
    verdict = Verdict(name or log_path, ERROR, backend=impl.NAME)
    try:
        expected_error = None
        try:
            _read_expected(verdict, log_path, expected_rim, token_path, platform_keys, use_sidecar)
        except FastrimError as exc:
            expected_error = exc  # reported after any log error, with the RIM when there is one
        data = map_file(log_path)
        replayed = same_logs.get(data) if same_logs is not None else None
        if replayed is None:
            replayed = replay_log(data, refs, options=options, cache=cache, memo=memo,
                                  max_event_size=max_event_size, impl=impl, work=work)
            if same_logs is not None:
                same_logs.put(data, replayed)
        else:
            verdict.reused = True
        _fill(verdict, replayed)
        for error in (replayed.error, expected_error):
            if error is not None:
                raise error
        _compare(verdict)
    except FastrimError as exc:
        verdict.status, verdict.error_code = ERROR, exc.code
        where = f" (at byte offset {exc.offset})" if exc.offset is not None else ""
        verdict.detail = f"{exc.args[0]}{where}"
    verdict.elapsed_ms = (time.perf_counter() - started) * 1000
    return verdict


_MAX_TOKEN_SIZE = 1 << 16  # real tokens are 1-2 KiB


def _read_expected(verdict, log_path, expected_rim, token_path, platform_keys, use_sidecar):
    """Set the attested RIM and where it came from: an explicit value beats a
    sidecar, a token beats a .rim file."""
    if expected_rim is not None:
        verdict.expected_rim, verdict.rim_source = expected_rim, "given"
        return
    source = "token"
    if token_path is None and use_sidecar:
        token_path, source = sidecar_path(log_path, ".token"), "token-sidecar"
    raw = read_head(token_path, _MAX_TOKEN_SIZE + 1) if token_path is not None else None
    if raw is not None:
        verdict.rim_source = source
        if len(raw) > _MAX_TOKEN_SIZE:
            raise token.TokenError(f"{token_path} is larger than {_MAX_TOKEN_SIZE} bytes", code="token.malformed")
        verdict.token = token.verify_token(raw, platform_keys)
        verdict.expected_rim = verdict.token.rim
    elif use_sidecar:
        verdict.expected_rim = sidecar_rim(log_path)
        verdict.rim_source = "sidecar" if verdict.expected_rim is not None else None


def _fill(verdict, replayed):
    verdict.events, verdict.vm_version, verdict.realm = replayed.events, replayed.vm_version, replayed.realm
    if replayed.realm is not None:
        verdict.hash_algo = replayed.realm.hash_name
    result = replayed.result
    if replayed.error is None:
        verdict.rim, verdict.images, verdict.granules = result.rim, result.images, result.granules
    if not verdict.reused:  # the work done for this log, even when it ended in an error; none when reused
        verdict.bytes_hashed, verdict.cache_hits, verdict.memo_hits = (
            result.bytes_hashed, result.cache_hits, result.memo_hits)


def _compare(verdict):
    expected, rim = verdict.expected_rim, verdict.rim
    if verdict.token is not None and verdict.token.failures:
        # The token's RIM is not to be believed; the first failed check says why.
        verdict.status, (verdict.error_code, verdict.detail) = FAIL, verdict.token.failures[0]
    elif expected is None:
        verdict.status, verdict.detail = UNVERIFIED, "no expected RIM was given"
    elif len(expected) != len(rim):
        verdict.status, verdict.error_code = FAIL, "rim.mismatch"
        verdict.detail = f"expected a {len(expected)}-byte RIM, the {verdict.hash_algo} replay gives {len(rim)} bytes"
    elif hmac.compare_digest(expected, rim):
        verdict.status = PASS
    else:
        verdict.status, verdict.error_code = FAIL, "rim.mismatch"
        verdict.detail = "the replayed RIM differs from the attested one"
