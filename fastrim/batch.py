"""Batch orchestration: verify every log under some directories in worker
processes and gather one result row per log, always. Each log's attested RIM
is a row of --expected, else its X.token sidecar, else its X.rim sidecar.

The parent finds the logs, hands them out largest first and alone writes the
output. Workers share the on-disk content cache and step memo, so an image's
granules are hashed once per run: a worker that needs an entry another worker
is computing puts that log back in the queue and moves on, and waits for the
entry only when the log comes round again.
"""

import csv
import json
import logging
import os
import time
from dataclasses import dataclass

from . import backends, replay, token, verify
from .contentcache import CacheBusy, ContentCache
from .errors import InputError
from .pool import WorkerCrash, WorkerPool
from .stepmemo import StepMemo

log = logging.getLogger("fastrim.batch")


@dataclass(frozen=True)
class LogFile:
    path: str
    name: str  # as reported: relative to the LOGS directory given
    size: int


def discover(roots):
    """Every *.log / *.bin file under each root (a root may also be one file),
    largest first. With several roots, names keep the root as given."""
    found = []
    for root in roots:
        if os.path.isfile(root):
            found.append(LogFile(root, root, os.path.getsize(root)))
            continue
        if not os.path.isdir(root):
            raise InputError(f"{root} is neither a directory nor a file", code="io.unreadable")
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            for filename in files:
                if not filename.endswith(verify.LOG_SUFFIXES):
                    continue
                path = os.path.join(directory, filename)
                name = os.path.relpath(path, root)
                if len(roots) > 1:
                    name = os.path.join(root, name)
                try:
                    size = os.stat(path).st_size
                except OSError:
                    size = 0  # its worker will report it unreadable
                found.append(LogFile(path, name, size))
    found.sort(key=lambda f: (-f.size, f.name))
    return found


def read_expected(path):
    """{log name: RIM bytes} from a CSV file (header with log and rim) or JSON lines."""
    try:
        with open(path, newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read --expected {path}: {exc}", code="io.unreadable") from None
    if text.lstrip().startswith("{"):
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    raise InputError(f"{path} line {number} is not JSON", code="input.bad_expected") from None
    else:
        rows = list(csv.DictReader(text.splitlines()))
    expected = {}
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("log"), str) or not isinstance(row.get("rim"), str):
            raise InputError(f"{path} row {number} needs the columns log and rim", code="input.bad_expected")
        expected[row["log"]] = verify.parse_rim_hex(row["rim"], f"{path} row {number}")
    return expected


@dataclass(frozen=True)
class _Task:
    log: LogFile
    expected_rim: bytes  # from --expected, else None: the worker reads the sidecar
    wait: bool = False  # False: give the log back rather than wait for another worker
    bytes_hashed: int = 0  # by earlier attempts that gave the log back


@dataclass(frozen=True)
class _Deferred:
    """A worker gave the log back: another worker is filling a cache entry it needs."""

    bytes_hashed: int


# Per-process worker state, set by _init_worker.
_state = {}


def _init_worker(refs, cache_dir, options, max_event_size, backend, platform_key_paths):
    _state.update(
        refs=refs, options=options, max_event_size=max_event_size, impl=backends.load(backend),
        platform_keys=[token.load_platform_key(path) for path in platform_key_paths],
        cache=ContentCache(cache_dir) if cache_dir else None,
        memo=StepMemo(cache_dir), same_logs=verify.SameLogMemo(),
    )


def _verify_task(task):
    cache = _state["cache"]
    if cache is not None:
        cache.wait = task.wait
    work = replay.ReplayResult(None, None)
    try:
        verdict = verify.verify(
            task.log.path, _state["refs"], task.expected_rim, platform_keys=_state["platform_keys"],
            options=_state["options"], cache=cache,
            memo=_state["memo"], same_logs=_state["same_logs"], max_event_size=_state["max_event_size"],
            impl=_state["impl"], name=task.log.name, work=work,
        )
    except CacheBusy:
        return _Deferred(work.bytes_hashed)
    return verdict.row()


def _internal_row(log_file, code, detail, backend):
    return verify.Verdict(log_file.name, verify.ERROR, error_code=code, detail=detail, backend=backend).row()


@dataclass
class Summary:
    counts: dict
    elapsed: float
    crashed: int
    bytes_hashed: int

    @property
    def total(self):
        return sum(self.counts.values())

    def line(self):
        rate = self.total / self.elapsed if self.elapsed > 0 else 0.0
        counts = ", ".join(f"{self.counts[s]} {s}" for s in verify.STATUSES)
        return (f"{self.total} logs in {self.elapsed:.2f} s ({rate:,.0f} logs/s): {counts}; "
                f"{self.bytes_hashed / 1e6:,.0f} MB of images hashed")


def run(logs, refs, *, jobs, expected=None, options, cache_dir, max_event_size, on_row=None, impl=None,
        platform_key_paths=()):
    """Verify logs (LogFile list) in `jobs` worker processes on backend impl.
    Tokens are checked against the platform keys in platform_key_paths (the
    workers load them: key objects do not cross process boundaries).
    Returns the rows sorted by log name and a Summary; on_row(row) sees each
    row as it comes."""
    expected = expected or {}
    backend = (impl or backends.active).NAME
    started = time.perf_counter()
    rows = []
    crashed = 0
    with WorkerPool(jobs, _verify_task, _init_worker,
                    (refs, cache_dir, options, max_event_size, backend, tuple(platform_key_paths))) as pool:
        for log_file in logs:
            pool.submit(_Task(log_file, expected.get(log_file.name)))
        for task, outcome in pool.results():
            if isinstance(outcome, _Deferred):
                pool.submit(_Task(task.log, task.expected_rim, True, task.bytes_hashed + outcome.bytes_hashed))
                continue
            if isinstance(outcome, WorkerCrash):
                crashed += 1
                log.warning("%s: %s; the batch goes on", task.log.name, outcome)
                outcome = _internal_row(task.log, "internal.worker_crash", f"{outcome} while verifying this log",
                                        backend)
            elif not isinstance(outcome, dict):  # a WorkerError
                log.warning("%s: internal error: %s", task.log.name, outcome)
                outcome = _internal_row(task.log, "internal.error", str(outcome), backend)
            outcome["bytes_hashed"] += task.bytes_hashed
            rows.append(outcome)
            if on_row is not None:
                on_row(outcome)
    rows.sort(key=lambda row: row["log"])
    counts = dict.fromkeys(verify.STATUSES, 0)
    for row in rows:
        counts[row["status"]] += 1
    hashed = sum(row["bytes_hashed"] for row in rows)
    return rows, Summary(counts, time.perf_counter() - started, crashed, hashed)
