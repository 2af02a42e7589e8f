"""What runs: one init's grid (learning rates x dropout rates x seeds, the clip norm) and its
engine settings (`InitRun`), and which inits can train as one program (`init_groups`). How they
run (the host loop, checkpoints, writers) is `nprnn_jax.runner`'s.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Sequence

from nprnn_jax import checks
from nprnn_jax.train import DEFAULTS, RULES, TrainConfig


@dataclasses.dataclass(frozen=True)
class Grid:
    """One init's grid: learning rates x dropout rates x seeds (``seed_offset`` onwards), the clip norm."""

    learning_rates: Sequence[float] = DEFAULTS["learning_rates"]
    num_seeds: int = DEFAULTS["num_seeds"]
    clip_norm: float = DEFAULTS["clip_norm"]
    dropout_rates: Sequence[float] = DEFAULTS["dropout_rates"]
    seed_offset: int = DEFAULTS["seed_offset"]

    def __post_init__(self):
        for name in ("learning_rates", "num_seeds", "clip_norm", "dropout_rates", "seed_offset"):
            object.__setattr__(self, name, checks.checked(name, getattr(self, name), RULES[name]))

    @property
    def seeds(self) -> list:
        return list(range(self.seed_offset, self.seed_offset + self.num_seeds))

    @property
    def combos(self) -> list:
        """(learning rate, dropout rate) of each index of the grid's first axis."""
        return list(itertools.product(self.learning_rates, self.dropout_rates))


@dataclasses.dataclass(frozen=True)
class InitRun:
    """What one init runs: its name, its engine settings and its grid."""

    init: str
    train_config: TrainConfig
    grid: Grid
    log_every: int = 0  # steps per logged training loss (0: once per segment)

    def __post_init__(self):
        object.__setattr__(self, "train_config", dataclasses.replace(
            self.train_config, init=self.init, dropout=any(r > 0 for r in self.grid.dropout_rates)))

    def to_json(self) -> dict:
        """The run description config.json records: the engine's settings of this init (its
        per-init overrides applied), its grid and its logging interval."""
        def plain(value):  # a library caller's optimizer object is recorded by its name
            if isinstance(value, (tuple, list)) and not hasattr(value, "_fields"):
                return [plain(v) for v in value]
            if isinstance(value, (str, int, float, bool, type(None))):
                return value
            return getattr(value, "__module__", "") + "." + getattr(value, "__qualname__", type(value).__name__)
        return {"train": {f.name: plain(getattr(self.train_config, f.name))
                          for f in dataclasses.fields(self.train_config)},
                "grid": {f.name: plain(getattr(self.grid, f.name)) for f in dataclasses.fields(self.grid)},
                "log_every": self.log_every}


def group_key(run: InitRun):
    """What inits must share to be trained as one program: the cell (the step's code), every
    engine setting but the init, the seeds, the dropout rates and the logging interval. Their
    learning rates and clip norms may differ (they are per-run values, like a grid's)."""
    from nprnn_jax import rnn
    return (rnn.get_init(run.init).cell, dataclasses.replace(run.train_config, init="np"),
            tuple(run.grid.seeds), tuple(run.grid.dropout_rates), run.log_every)


def init_groups(runs: Sequence[InitRun]) -> list:
    """``runs`` partitioned into groups trained as one program (`group_key`), each group in
    the order of its first member, its members in ``runs``' order."""
    groups: dict = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    return list(groups.values())
