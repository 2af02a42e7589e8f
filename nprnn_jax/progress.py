"""A one-line progress bar with an ETA, for the host loop of `nprnn_jax.runner`."""

from __future__ import annotations

import math
import shutil
import sys
import time


class Progress:
    """A one-line progress bar with ETA on stderr, redrawn in place and cut to the terminal's
    width; when the stream is not a terminal, one log line per update instead."""

    def __init__(self, total: int, stream=None, enabled: bool = True):
        self.total, self.done, self.enabled = total, 0, enabled
        self.stream = stream or sys.stderr
        self.start = None
        self.timed = 0
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def begin(self):
        if self.start is None:
            self.start = time.perf_counter()

    def update(self, count: int, message: str, timed: bool = True):
        self.done += count
        if timed:
            self.timed += count
        elapsed = time.perf_counter() - (self.start or time.perf_counter())
        rate = elapsed / self.timed if self.timed else float("nan")
        eta = rate * (self.total - self.done) if self.timed else float("nan")
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if math.isfinite(eta) else "--:--:--"
        line = f"[{bar}] {self.done}/{self.total} steps, ETA {eta_text} | {message}"
        if not self.enabled:
            return
        if self.tty:
            width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)  # the last column wraps
            self.stream.write("\r" + line[:width].ljust(width))
            if self.done >= self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
