"""The adding problem (the paper's Figure 3): the sum of two marked values of a sequence.

Declares the task (`TASK`): its settings (the marked-pair ones), its data (`AdditionTask`) and
its metric (the paper's numbers for it are the study's: `experiments.study.protocols`).
"""

from __future__ import annotations

import dataclasses

from nprnn_jax.tasks import base

@dataclasses.dataclass(frozen=True)
class AdditionTask(base.MarkedPairTask):
    """The adding problem: target = sum of the two marked values (predicting 1: MSE ~ 0.167)."""

    name = "addition"
    mean_target = 1.0  # E[a + b] for a, b ~ U[0, 1]

    def _combine(self, a, b):
        return a + b


TASK = base.register(base.marked_pair_spec(AdditionTask))
