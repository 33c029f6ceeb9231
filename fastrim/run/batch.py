"""Batch orchestration: find every log under some directories, verify them
through an executor and gather one result row per log, always. Each log's
attested RIM is a row of --expected, else its X.token sidecar, else its
X.rim sidecar (read by the worker). The parent alone writes the output.
"""

import datetime
import os
import socket
import time
import uuid
from dataclasses import dataclass

from ..errors import FileError
from ..evidence.expected import LOG_SUFFIXES, SIDECAR_SUFFIXES, sidecar_path
from ..output.rows import run_columns
from ..store.objects import is_url
from ..verifier import STATUSES
from .work import LogFile, Task


def unique_roots(roots):
    """roots in the order given, each directory or file once however it is spelled."""
    seen, unique = set(), []
    for root in roots:
        real = root.rstrip("/") if is_url(root) else os.path.realpath(root)
        if real not in seen:
            seen.add(real)
            unique.append(root)
    return unique


def discover(roots, objects=None):
    """Every *.log / *.bin file under each root (a root may also be one log
    file: its directory is then the root), largest first. Each is named by
    its path relative to its root, and carries the root as given, so that
    two nights over the same directories give the same keys. With objects
    (store.objects.ObjectStore), a root may be a URL: the objects under it."""
    found = []
    for root in unique_roots(roots):
        if objects is not None and is_url(root):
            listed = objects.find(root, LOG_SUFFIXES + SIDECAR_SUFFIXES)
            found += [LogFile(url, root.rstrip("/"), name, size, _sidecars(name, listed))
                      for name, (url, size, _) in listed.items() if name.endswith(LOG_SUFFIXES)]
            continue
        shown = os.path.normpath(root)
        if os.path.isfile(root):
            found.append(LogFile(root, os.path.dirname(shown) or ".", os.path.basename(shown), os.path.getsize(root),
                                 _sidecars(root, os.path.exists)))
            continue
        if not os.path.isdir(root):
            raise FileError(f"{root} is neither a directory nor a file", code="io.unreadable")
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            present = set(files)
            for filename in files:
                if not filename.endswith(LOG_SUFFIXES):
                    continue
                path = os.path.join(directory, filename)
                try:
                    size = os.stat(path).st_size
                except OSError:
                    size = 0  # its worker will report it unreadable
                found.append(LogFile(path, shown, os.path.relpath(path, root), size, _sidecars(filename, present)))
    found.sort(key=lambda f: (-f.size, f.root, f.name))
    return found


def _sidecars(log_name, present):
    """The sidecar suffixes of log_name that present (a container of names, or a test) holds."""
    test = present if callable(present) else present.__contains__
    return frozenset(suffix for suffix in SIDECAR_SUFFIXES if test(sidecar_path(log_name, suffix)))


def row_key(row):
    """The stable order of rows: by root, then log."""
    return row["root"] or "", row["log"]


class InOrder:
    """Rows of some logs given back in the stable order (row_key) as soon as
    every row before them has come: what --jsonl streams."""

    def __init__(self, logs):
        self._keys = sorted((log_file.root, log_file.name) for log_file in logs)
        self._next = 0
        self._waiting = {}

    def add(self, row):
        """The rows that can go out now that row has come, in order."""
        self._waiting[row_key(row)] = row
        ready = []
        while self._next < len(self._keys) and self._keys[self._next] in self._waiting:
            ready.append(self._waiting.pop(self._keys[self._next]))
            self._next += 1
        return ready


@dataclass
class Summary:
    counts: dict  # status -> logs
    elapsed: float
    crashed: int  # logs whose worker died on them
    internal: int  # logs with an internal.* code (crashes included): fastrim failed them, not the log
    bytes_hashed: int

    @property
    def total(self):
        return sum(self.counts.values())

    def line(self):
        rate = self.total / self.elapsed if self.elapsed > 0 else 0.0
        counts = ", ".join(f"{self.counts[s]} {s}" for s in STATUSES)
        return (f"{self.total} logs in {self.elapsed:.2f} s ({rate:,.0f} logs/s): {counts}; "
                f"{self.bytes_hashed / 1e6:,.0f} MB of images hashed")


def run(logs, settings, executor, on_row, expected=None):
    """Verify logs (work.LogFile list) with settings (verifier.Settings)
    through executor (e.g. local.LocalExecutor); on_row(row) gets each
    result row as it comes, with the run's columns (output.rows.run_columns),
    and nothing here keeps it. expected maps log names to attested RIMs.
    Returns a Summary."""
    expected = expected or {}
    started = time.perf_counter()
    stamp = run_columns(str(uuid.uuid4()), datetime.datetime.now(datetime.timezone.utc), socket.gethostname())
    counts = dict.fromkeys(STATUSES, 0)
    crashed = internal = hashed = 0
    for row in executor.map(settings, (Task(log_file, expected.get(log_file.name)) for log_file in logs)):
        row.update(stamp)
        counts[row["status"]] += 1
        code = row["error_code"] or ""
        crashed += code == "internal.worker_crash"
        internal += code.startswith("internal.")
        hashed += row["bytes_hashed"]
        on_row(row)
    return Summary(counts, time.perf_counter() - started, crashed, internal, hashed)
