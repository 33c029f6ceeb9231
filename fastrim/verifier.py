"""The verification context and the one pipeline every command runs:
parse the log -> decode its CCA events -> replay the RIM against the
reference store -> compare with the attested value -> a Verdict.

Every outcome is a Verdict, never an exception: pass, fail (rim.mismatch or
a token check), error (the log, a reference image or an input could not be
used), or unverified (no attested RIM; the computed RIM is still reported).
"""

import time
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

from .backend import select
from .errors import FastrimError, LogFormatError, check_int
from .evidence.expected import ExpectedSource, read_attested, same_rim
from .log import cca, tcg
from .rim.replay import ReplayOptions, RimResult, replay_rim
from .store import Caches
from .store.objects import ObjectStore

PASS, FAIL, ERROR, UNVERIFIED = "pass", "fail", "error", "unverified"
STATUSES = (PASS, FAIL, ERROR, UNVERIFIED)


class Limits(NamedTuple):
    """How much of a log fastrim reads: its size, and any one event's."""

    max_event_size: int = tcg.DEFAULT_MAX_EVENT_SIZE
    max_log_size: int = tcg.DEFAULT_MAX_LOG_SIZE

    def checked(self):
        check_int("max_event_size", self.max_event_size, 1, tcg.MAX_EVENT_SIZE_LIMIT)
        check_int("max_log_size", self.max_log_size, 1, tcg.MAX_LOG_SIZE_LIMIT)
        return self


@dataclass(frozen=True)
class Settings:
    """All a process needs to build its own Context, as plain data that
    pickles: what a batch sends to its workers. refs is an indexed store
    (store.refs.RefStore or MemoryRefStore); cache_dir None: no content
    cache, an in-memory step memo; platform_keys: (name, bytes) of each
    trust anchor's file, so that workers need not read them."""

    refs: object = None
    options: ReplayOptions = ReplayOptions()
    cache_dir: Optional[str] = None
    limits: Limits = Limits()
    backend: Optional[str] = None  # None: the live one
    platform_keys: tuple = ()
    objects: ObjectStore = ObjectStore()  # how to read the logs, sidecars and images named by URLs
    endorsements: object = None  # evidence.refvals.Endorsements from --refvals; None: no endorsement check
    golden: object = None  # rim.explain.GoldenLogs from --golden: a failing log's row says where it diverges

    def __post_init__(self):
        self.limits.checked()

    def backend_module(self):
        """The backend these settings name: backend, else the live one."""
        return select.load(self.backend) if self.backend else select.active


@dataclass
class Context:
    """What verifying a log needs, built once per process."""

    refs: object = None
    options: ReplayOptions = ReplayOptions()
    caches: Caches = Caches()
    impl: object = None  # a backend module; None: the live one
    platform_keys: tuple = ()  # evidence.token.PlatformKey
    limits: Limits = Limits()
    objects: ObjectStore = ObjectStore()
    endorsements: object = None  # evidence.refvals.Endorsements
    golden: object = None  # rim.explain.GoldenLogs

    def __post_init__(self):
        self.impl = self.impl or select.active
        self.limits.checked()

    @classmethod
    def from_settings(cls, settings):
        keys = ()
        if settings.platform_keys:
            from .evidence import token  # cryptography loads only where trust anchors are configured

            keys = tuple(token.parse_platform_key(name, raw) for name, raw in settings.platform_keys)
        caches, impl = Caches.open(settings.cache_dir), settings.backend_module()
        impl.choose_kernels(settings.cache_dir)  # the fastest granule kernels here, measured once per CPU
        return cls(settings.refs, settings.options, caches, impl, keys, settings.limits, settings.objects,
                   settings.endorsements, settings.golden)


class LogSource(NamedTuple):
    """A log to verify: its path (or its bytes in data), the name it is
    reported under (default: the path), and where its attested RIM is."""

    path: Optional[str] = None
    data: Optional[bytes] = None
    name: Optional[str] = None
    expected: ExpectedSource = ExpectedSource()


@dataclass
class Verdict:
    log: str
    status: str
    error_code: str = None
    detail: str = None
    error: FastrimError = None  # the error behind an error verdict
    hash_algo: str = None
    rim: bytes = None
    expected_rim: bytes = None
    rim_source: str = None  # where expected_rim came from: given, token, token-sidecar or sidecar
    endorsed: bool = None  # the replayed RIM is in the --refvals set; None: no set, or no RIM
    endorsed_by: str = None  # the --refvals file that endorses it
    explain: str = None  # with --golden, for a failing log: where it diverges from its configuration's golden log
    vm_version: object = None  # log.cca.VmVersion
    realm: object = None  # log.cca.RealmCreate
    images: list = field(default_factory=list)  # (log.cca.ImageLoad, store.refs.RefImage or None)
    steps: list = field(default_factory=list)  # (label, RIM after it)
    events: int = 0
    granules: int = 0
    bytes_hashed: int = 0
    cache_hits: int = 0
    memo_hits: int = 0
    reused: bool = False  # the outcome of a byte-identical log was reused
    busy: bool = False  # gave way to another process filling a cache entry: no verdict yet
    token: object = None  # evidence.token.TokenResult when the attested RIM came from a token
    elapsed_ms: float = 0.0
    backend: str = None


@dataclass
class LogOutcome:
    """What a log's bytes replay to, apart from any attested value, so that a
    byte-identical log can reuse it: the decoded facts and the replay, or the
    error that stopped them."""

    events: int = 0
    vm_version: object = None
    realm: object = None
    images: list = field(default_factory=list)  # every image the log names, with its reference or None
    result: RimResult = field(default_factory=RimResult)
    error: FastrimError = None


def replay_bytes(context, data, defer_busy=False):
    """The LogOutcome of the log in data: parse, decode, replay."""
    outcome = LogOutcome()
    try:
        log = tcg.parse(data, max_event_size=context.limits.max_event_size, impl=context.impl)
        outcome.events = len(log)
        decoded = cca.decode(log)
    except FastrimError as exc:
        outcome.error = exc
        return outcome
    outcome.vm_version, outcome.realm = decoded.vm_version, decoded.realm
    if not cca.is_cca_log(log):
        outcome.images = _named_images(decoded, log, context.refs)
        outcome.error = LogFormatError(
            "this is a TPM event log with no Arm CCA realm events: `fastrim replay` shows its PCRs",
            code="log.no_realm_create")
        return outcome
    outcome.result = replay_rim(decoded, context.refs, options=context.options, caches=context.caches,
                                impl=context.impl, defer_busy=defer_busy)
    outcome.images = _named_images(decoded, log, context.refs)  # after the replay: it may have indexed them
    outcome.error = outcome.result.error
    return outcome


def _named_images(decoded, log, refs):
    """Every image the log names, with the reference image its digest finds
    (None: loaded unmeasured, or not in the store), even when the replay
    stops at the first unknown one: reasons are data."""
    alg = decoded.realm.alg if decoded.realm is not None else log.algs[0][0]  # as decode read the digests
    images = [step.record for step in decoded.steps if isinstance(step.record, cca.ImageLoad)]
    return [(image, refs.find(alg, image.digest) if refs is not None and image.digest is not None else None)
            for image in images]


def verify(context, source, defer_busy=False):
    """The Verdict for one log (a LogSource) under context. With
    defer_busy, a log whose replay would wait for another process filling
    a cache entry comes back busy (with the work done so far) instead."""
    started = time.perf_counter()
    verdict = Verdict(source.name or source.path, ERROR, backend=context.impl.NAME)
    data = None
    try:
        attested = read_attested(source.expected, source.path, context.platform_keys, context.objects)
        verdict.expected_rim, verdict.rim_source, verdict.token = attested.rim, attested.source, attested.token
        data = source.data if source.data is not None else \
            tcg.read_log(source.path, context.limits.max_log_size, context.objects)
        same_logs = context.caches.same_logs
        outcome = same_logs.get(data) if same_logs is not None else None
        if outcome is None:
            outcome = replay_bytes(context, data, defer_busy)
            if same_logs is not None and not outcome.result.busy:
                same_logs.put(data, outcome)
        else:
            verdict.reused = True
        _fill(verdict, outcome)
        if not verdict.busy:
            _endorse(verdict, context.endorsements)  # for every replayed RIM, whatever else went wrong
            for error in (outcome.error, attested.error):  # a log error first, with the RIM when there is one
                if error is not None:
                    raise error
            _compare(verdict)
    except FastrimError as exc:
        verdict.status, verdict.error_code, verdict.error = ERROR, exc.code, exc
        where = f" (at byte offset {exc.offset})" if exc.offset is not None else ""
        verdict.detail = f"{exc.args[0]}{where}"
    if context.golden is not None and verdict.status in (FAIL, ERROR) and not verdict.busy and data is not None:
        verdict.explain = _explain(context, data)
    verdict.elapsed_ms = (time.perf_counter() - started) * 1000
    return verdict


def _explain(context, data):
    """Where the log in data diverges from its configuration's golden log (None: it does not decode, or has none)."""
    try:
        log = cca.decode(tcg.parse(data, max_event_size=context.limits.max_event_size, impl=context.impl))
        return context.golden.explain(log)
    except FastrimError:
        return None


def _fill(verdict, outcome):
    verdict.events, verdict.vm_version, verdict.realm = outcome.events, outcome.vm_version, outcome.realm
    if outcome.realm is not None:
        verdict.hash_algo = outcome.realm.hash_name
    result = outcome.result
    verdict.busy = result.busy
    verdict.images, verdict.steps = outcome.images, result.steps
    if outcome.error is None and not result.busy:
        verdict.rim, verdict.granules = result.rim, result.granules
    if not verdict.reused:  # the work done for this log, even when it ended in an error; none when reused
        verdict.bytes_hashed, verdict.cache_hits, verdict.memo_hits = (
            result.bytes_hashed, result.cache_hits, result.memo_hits)


def _endorse(verdict, endorsements):
    if endorsements is not None and verdict.rim is not None:
        verdict.endorsed_by = endorsements.endorser(verdict.rim)
        verdict.endorsed = verdict.endorsed_by is not None


def _compare(verdict):
    """The verdict on a replayed log: the token's checks first, then the
    attested RIM against the replay, then the replay against the endorsed
    RIMs (a faithful log of a launch that no one endorsed still fails)."""
    expected, rim = verdict.expected_rim, verdict.rim
    if verdict.token is not None and verdict.token.failures:
        # The token's RIM is not to be believed; the first failed check says why.
        verdict.status, (verdict.error_code, verdict.detail) = FAIL, verdict.token.failures[0]
    elif expected is not None and not same_rim(expected, rim):
        verdict.status, verdict.error_code = FAIL, "rim.mismatch"
        verdict.detail = "the replayed RIM differs from the attested one" if len(expected) == len(rim) else (
            f"the attested RIM is {len(expected)} bytes, the {verdict.hash_algo} replay gives {len(rim)}"
            + (", and they differ" if len(expected) < len(rim) else ": they differ, or the rest is not zero"))
    elif verdict.endorsed is False:
        verdict.status, verdict.error_code = FAIL, "rim.not_endorsed"
        verdict.detail = "the replayed RIM is not among the endorsed reference values (--refvals)"
    elif expected is None:
        verdict.status, verdict.detail = UNVERIFIED, "no expected RIM was given"
    else:
        verdict.status = PASS
