import io
import os

from nprnn_jax.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_fits_the_terminal_width(monkeypatch):
    monkeypatch.setattr("shutil.get_terminal_size", lambda fallback=None: os.terminal_size((100, 30)))
    stream = Terminal()
    progress = Progress(1000, stream)
    progress.begin()
    progress.update(500, "np step 500, train_loss 0.1234, test_accuracy 0.5678, " + "x" * 80)
    progress.update(500, "np step 1000")
    redraws = stream.getvalue().split("\r")[1:]
    assert len(redraws) == 2 and all(len(r.rstrip("\n")) == 99 for r in redraws)
    assert redraws[0].startswith("[############------------] 500/1000 steps, ETA")
    assert stream.getvalue().endswith("\n")  # a finished bar ends its line


def test_progress_writes_log_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(100, stream)
    progress.begin()
    progress.update(50, "half")
    progress.update(50, "done")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue() and lines[1].endswith("| done")
