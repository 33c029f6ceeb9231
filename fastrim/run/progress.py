"""A progress line on stderr for long runs; silent unless stderr is a terminal."""

import sys
import time


class Progress:
    def __init__(self, total, stream=None, enabled=None):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done = 0
        self._started = time.perf_counter()
        self._shown = 0.0

    def advance(self):
        self.done += 1
        now = time.perf_counter()
        if self.enabled and (now - self._shown > 0.1 or self.done == self.total):
            self._shown = now
            width = 30
            filled = width * self.done // max(self.total, 1)
            rate = self.done / max(now - self._started, 1e-9)
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} logs, {rate:,.0f}/s")
            self.stream.flush()

    def close(self):
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()
