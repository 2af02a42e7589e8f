"""Where a grid's metrics go: one writer interface, fanned out to every output.

The host loop (`nprnn_jax.runner`) hands each evaluation's rows to a `MetricWriter`
and never touches a file; `create` builds the writer of a workdir:

- `JsonlWriter`: ``metrics.jsonl`` (one row per run per evaluation) and
  ``train_loss.jsonl`` (the training loss of every ``log_every`` block), fsynced
  appends; on resume it drops what an interrupted run wrote after its checkpoint;
- `TensorBoardWriter`: event files under ``tensorboard/<init>/<run>/``;
- `MultiWriter`: several of them, in order;
- `MetricWriter` itself writes nothing: what every process but process 0 of a
  multi-host run gets.

A row is a dict of `nprnn_jax.workdir.rows`: ``init``, ``learning_rate``, ``dropout``,
``seed``, ``step``, ``train_loss``, the test metrics and ``diverged``. In the spirit
of clu's ``metric_writers``, smaller: a new output is one class with these four methods.
"""

from __future__ import annotations

import pathlib
from typing import Optional, Sequence

from nprnn_jax import workdir as workdir_lib


class MetricWriter:
    """The interface; this base writes nothing."""

    def resume(self, init: str, start: int) -> None:
        """``init``'s runs continue from step ``start`` (0: from the beginning): forget what
        was written after it."""

    def write(self, init: str, rows: list, loss_rows: Optional[list] = None) -> None:
        """The rows of one evaluation of ``init``'s runs; ``loss_rows``: the training loss of
        each ``log_every`` block of the segment it ends (None at step 0)."""

    def finish(self, init: str) -> None:
        """``init``'s runs are done (a writer may close what it holds for them)."""

    def close(self) -> None:
        """Flushes and closes everything (the writer may not be used after)."""


class JsonlWriter(MetricWriter):
    """``metrics.jsonl`` and ``train_loss.jsonl`` of a workdir."""

    def __init__(self, workdir: pathlib.Path):
        self.metrics = pathlib.Path(workdir) / "metrics.jsonl"
        self.train_loss = pathlib.Path(workdir) / "train_loss.jsonl"

    def resume(self, init, start):
        # at step 0 nothing is kept, not even an interrupted run's step-0 rows
        workdir_lib.truncate_metrics(self.metrics, init, start if start else -1)
        workdir_lib.truncate_metrics(self.train_loss, init, start)

    def write(self, init, rows, loss_rows=None):
        workdir_lib.append_metrics(self.metrics, rows)
        if loss_rows is not None:
            workdir_lib.append_metrics(self.train_loss, loss_rows)


class _EventFiles:
    """TensorBoard event files of one init's runs, one folder per run under
    ``tensorboard/<init>/lr=<lr>,dropout=<rate>,seed=<seed>`` (tensorboardX: a small
    event-file writer that needs no TensorFlow). Resuming from step ``start`` drops the
    events after it that an interrupted run had written (``purge_step``)."""

    def __init__(self, workdir: pathlib.Path, init: str, start: int):
        self.root = workdir / "tensorboard" / init
        self.start, self.writers, self.init = start, {}, init

    def write(self, rows: list, skip: tuple = ()):
        """Each row's numbers as scalars at its step (tags in ``skip`` left out)."""
        for row in rows:
            key = (row["learning_rate"], row.get("dropout", 0.0), row["seed"])
            if key not in self.writers:
                from tensorboardX import SummaryWriter
                name = f"lr={key[0]:g},dropout={key[1]:g},seed={key[2]}"
                writer = SummaryWriter(str(self.root / name), purge_step=self.start + 1 if self.start else None)
                if not self.start:  # the run's setting, for TensorBoard's HParams dashboard (once per run)
                    from tensorboardX.summary import hparams
                    for summary in hparams({"init": self.init, "learning_rate": key[0], "dropout": key[1],
                                            "seed": key[2]},
                                           {tag: None for tag in row if tag.startswith(("test_", "train_"))}):
                        writer._get_file_writer().add_summary(summary)
                self.writers[key] = writer
            for tag, value in row.items():
                if tag in ("init", "learning_rate", "dropout", "seed", "step", "diverged") + skip or value is None:
                    continue
                self.writers[key].add_scalar(tag, float(value), row["step"])

    def close(self):
        for writer in self.writers.values():
            writer.close()


class TensorBoardWriter(MetricWriter):
    """TensorBoard event files, one folder per run (`_EventFiles`)."""

    def __init__(self, workdir: pathlib.Path):
        self.workdir, self.boards = pathlib.Path(workdir), {}

    def resume(self, init, start):
        if init in self.boards:
            self.boards[init].close()
        self.boards[init] = _EventFiles(self.workdir, init, start)

    def write(self, init, rows, loss_rows=None):
        board = self.boards[init]
        if loss_rows is None:
            board.write(rows)
        else:
            board.write(loss_rows)
            board.write(rows, skip=("train_loss",))  # the segment's mean: the blocks above

    def finish(self, init):
        board = self.boards.pop(init, None)
        if board is not None:
            board.close()  # one open event file per run: released before the next init's

    def close(self):
        for board in self.boards.values():
            board.close()
        self.boards = {}


class MultiWriter(MetricWriter):
    """Every call passed to each writer, in order."""

    def __init__(self, writers: Sequence[MetricWriter]):
        self.writers = list(writers)

    def resume(self, init, start):
        for writer in self.writers:
            writer.resume(init, start)

    def write(self, init, rows, loss_rows=None):
        for writer in self.writers:
            writer.write(init, rows, loss_rows)

    def finish(self, init):
        for writer in self.writers:
            writer.finish(init)

    def close(self):
        for writer in self.writers:
            writer.close()


def create(workdir, *, tensorboard: bool, main: bool) -> MetricWriter:
    """The writer of ``workdir``: the JSON lines files, and TensorBoard if asked; nothing
    outside process 0 (``main=False``)."""
    if not main:
        return MetricWriter()
    return MultiWriter([JsonlWriter(workdir)] + ([TensorBoardWriter(workdir)] if tensorboard else []))
