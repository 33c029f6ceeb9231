"""A status line on stderr for long runs (indexing, verifying): a bar, the
count, the rate, elapsed time, an ETA and, for logs, the verdicts so far.
Silent unless stderr is a terminal: a cron job's mail holds only the summary."""

import sys
import time


def _clock(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """total items of `unit` (logs, files); total_bytes, when given, is shown as MB and MB/s."""

    def __init__(self, total, unit="logs", total_bytes=None, stream=None):
        self.total, self.unit, self.total_bytes = total, unit, total_bytes
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.done = self.done_bytes = 0
        self.counts = {}  # status -> how many, for logs
        self._started = time.perf_counter()
        self._shown = 0.0

    def advance(self, status=None, nbytes=0):
        self.done += 1
        self.done_bytes += nbytes
        if status is not None:
            self.counts[status] = self.counts.get(status, 0) + 1
        now = time.perf_counter()
        if self.enabled and (now - self._shown > 0.1 or self.done == self.total):
            self._shown = now
            self.stream.write("\r" + self.line(now - self._started) + "\x1b[K")
            self.stream.flush()

    def line(self, elapsed):
        width = 24
        filled = width * self.done // max(self.total, 1)
        if self.total_bytes:
            share, rate = self.done_bytes / self.total_bytes, f"{self.done_bytes / 1e6 / max(elapsed, 1e-9):,.0f} MB/s"
            amount = f", {self.done_bytes / 1e6:,.0f}/{self.total_bytes / 1e6:,.0f} MB"
        else:
            share, rate, amount = self.done / max(self.total, 1), f"{self.done / max(elapsed, 1e-9):,.0f}/s", ""
        eta = _clock(elapsed * (1 - share) / share) if 0 < share < 1 else "-"
        counts = "".join(f", {n} {status}" for status, n in sorted(self.counts.items()))
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {self.unit}{amount}, {rate}, "
                f"{_clock(elapsed)} elapsed, ETA {eta}{counts}")

    def close(self):
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()


def file_progress(files, nbytes):
    """The bar of indexing: files, and MB of them (store.refs.RefStore's progress)."""
    return Progress(files, "files", nbytes)
