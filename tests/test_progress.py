import io
import os
import re

from nprnn_jax.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_bar_fits_80_columns_with_the_metric_first(monkeypatch):
    monkeypatch.setattr("shutil.get_terminal_size", lambda fallback=None: os.terminal_size((80, 30)))
    monkeypatch.setenv("COLUMNS", "80")
    stream = Terminal()
    progress = Progress(3, stream)
    progress.start("irnn_scaled", 1_000_000)
    progress.update(500_000, "accuracy 0.568, loss 0.123")
    progress.close()
    redraws = [r.rstrip("\n") for r in re.split("[\r\n]", stream.getvalue()) if r.strip()]
    last = redraws[-1]
    assert len(last) <= 80, last
    assert last.startswith("irnn_scaled (1/3) accuracy 0.568, loss 0.123"), last
    assert "irnn_scaled (1/3) compiling" in stream.getvalue()  # before the first segment returned
    assert " 50%|" in last and last.endswith("step/s") and "<" in last


def test_log_lines_when_not_a_terminal_count_each_inits_own_steps():
    stream = io.StringIO()
    progress = Progress(2, stream)
    progress.start("np", 100)
    progress.update(50, "test_accuracy 0.5")
    progress.start("irnn", 100, start_step=40)
    progress.update(60, "test_accuracy 0.9")
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0] == "np (1/2): start, 100 steps; compiling"
    assert lines[1].startswith("np (1/2) test_accuracy 0.5 (1st segment incl. compile 0s) | step 50/100 [0:00:00<")
    assert lines[2] == "irnn (2/2): resumed at step 40, 100 steps; compiling"
    assert lines[3].startswith("irnn (2/2) test_accuracy 0.9 (1st segment incl. compile 0s) | step 100/100 [") \
        and "step/s]" in lines[3]


def test_disabled_progress_writes_nothing():
    stream = Terminal()
    progress = Progress(1, stream, enabled=False)
    progress.start("np", 10)
    progress.update(10, "x")
    progress.close()
    assert stream.getvalue() == ""


def test_the_progress_line_shows_the_median_so_one_unstable_rate_does_not_dominate():
    from types import SimpleNamespace
    from nprnn_jax import runner
    task = SimpleNamespace(metric="test_accuracy")
    rows = [{"diverged": False, "test_accuracy": a, "train_loss": l}
            for a, l in ((0.9, 0.01), (0.8, 0.02), (0.1, 591.0))] + [
        {"diverged": True, "test_accuracy": None, "train_loss": None}]
    assert runner._progress_message(rows, task) == "median accuracy 0.8, loss 0.02, 1 diverged"
    assert runner._progress_message(rows[:1], task) == "accuracy 0.9, loss 0.01"
