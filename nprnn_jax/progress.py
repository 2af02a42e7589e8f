"""Progress of a run, for the host loop of `nprnn_jax.runner`: one bar per init.

On a terminal a `tqdm` bar, redrawn in place and fitted to the terminal's width (80
columns included), with the metrics first::

    np (1/3) accuracy 0.568, loss 0.123  45%|#######         | 00:12<00:15, 380step/s

Elsewhere (a log file) one plain line per evaluation with the same content. ``enabled=False``
(processes other than 0 of a multi-host run) writes nothing.
"""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """The progress of the inits of one experiment, one after another."""

    BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}, {rate_fmt}"

    def __init__(self, num_inits: int, stream=None, enabled: bool = True):
        self.num_inits, self.enabled = num_inits, enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar, self.index = None, 0

    def start(self, init: str, num_steps: int, start_step: int = 0, count: int = 1):
        """Begins ``init``'s bar at ``start_step`` of ``num_steps`` (a resumed run starts there);
        ``count`` > 1: ``init`` names that many inits trained together (one program)."""
        self.close()
        first = self.index + 1
        self.index += count
        self.init, self.num_steps, self.step = init, num_steps, start_step
        self.started, self.first_step = time.perf_counter(), start_step
        which = str(self.index) if count == 1 else f"{first}-{self.index}"
        self.label = f"{init} ({which}/{self.num_inits})"
        if not self.enabled:
            return
        if self.tty:
            import shutil

            from tqdm import tqdm
            # the terminal's width less its last column (which wraps); tqdm shrinks the bar, then cuts
            width = max(40, shutil.get_terminal_size((100, 24)).columns - 1)
            # until the first segment returns (it includes XLA's compilation) the bar says so
            self.bar = tqdm(total=num_steps, initial=start_step, desc=f"{self.label} compiling", file=self.stream,
                            unit="step",
                            unit_scale=True, ncols=width, bar_format=self.BAR_FORMAT, leave=True, mininterval=0)
        else:
            self.stream.write(f"{self.label}: {'resumed at step ' + str(start_step) if start_step else 'start'}, "
                              f"{num_steps} steps; compiling\n")
            self.stream.flush()

    def update(self, steps: int, metrics: str):
        """``steps`` more steps done; ``metrics`` (e.g. "accuracy 0.57, loss 0.12") shown first."""
        self.step += steps
        first = self.step - steps == self.first_step
        note = f"1st segment incl. compile {time.perf_counter() - self.started:.0f}s"
        if not self.enabled:
            return
        if first and self.bar is None:  # the first segment holds XLA's compilation: say how long it took
            metrics += f" ({note})"
        if self.bar is not None:
            if first:
                self.bar.write(f"{self.label}: {note}", file=self.stream)
            self.bar.set_description_str(f"{self.label} {metrics}", refresh=False)
            self.bar.update(steps)
            return
        elapsed = time.perf_counter() - self.started
        done = self.step - self.first_step
        rate = done / elapsed if elapsed > 0 else float("nan")
        remaining = (self.num_steps - self.step) / rate if done and rate > 0 else 0.0
        self.stream.write(f"{self.label} {metrics} | step {self.step}/{self.num_steps} "
                          f"[{_clock(elapsed)}<{_clock(remaining)}, {rate:.0f} step/s]\n")
        self.stream.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
