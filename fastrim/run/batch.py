"""Batch orchestration: find every log under some directories, verify them
through an executor and gather one result row per log, always. Each log's
attested RIM is a row of --expected, else its X.token sidecar, else its
X.rim sidecar (read by the worker). The parent alone writes the output.
"""

import os
import time
from dataclasses import dataclass

from ..errors import FileError
from ..evidence.expected import LOG_SUFFIXES
from ..verifier import STATUSES
from .work import LogFile, Task


def discover(roots):
    """Every *.log / *.bin file under each root (a root may also be one file),
    largest first. With several roots, names keep the root as given."""
    found = []
    for root in roots:
        if os.path.isfile(root):
            found.append(LogFile(root, root, os.path.getsize(root)))
            continue
        if not os.path.isdir(root):
            raise FileError(f"{root} is neither a directory nor a file", code="io.unreadable")
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            for filename in files:
                if not filename.endswith(LOG_SUFFIXES):
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
        counts = ", ".join(f"{self.counts[s]} {s}" for s in STATUSES)
        return (f"{self.total} logs in {self.elapsed:.2f} s ({rate:,.0f} logs/s): {counts}; "
                f"{self.bytes_hashed / 1e6:,.0f} MB of images hashed")


def run(logs, settings, executor, expected=None, on_row=None):
    """Verify logs (work.LogFile list) with settings (verifier.Settings)
    through executor (e.g. local.LocalExecutor). expected maps log names
    to attested RIMs. Returns the rows sorted by log name and a Summary;
    on_row(row) sees each row as it comes."""
    expected = expected or {}
    started = time.perf_counter()
    rows = []
    for row in executor.map(settings, (Task(log_file, expected.get(log_file.name)) for log_file in logs)):
        rows.append(row)
        if on_row is not None:
            on_row(row)
    rows.sort(key=lambda row: row["log"])
    counts = dict.fromkeys(STATUSES, 0)
    for row in rows:
        counts[row["status"]] += 1
    crashed = sum(1 for row in rows if row["error_code"] == "internal.worker_crash")
    hashed = sum(row["bytes_hashed"] for row in rows)
    return rows, Summary(counts, time.perf_counter() - started, crashed, hashed)
