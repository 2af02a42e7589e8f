"""The multiplication problem (the paper's Figure 4): the product of two marked values.

Declares the task (`TASK`): its settings (the marked-pair ones), its data
(`MultiplicationTask`) and its metric (the paper's numbers for it are the study's:
`experiments.study.protocols`).
"""

from __future__ import annotations

import dataclasses

from nprnn_jax.tasks import base

@dataclasses.dataclass(frozen=True)
class MultiplicationTask(base.MarkedPairTask):
    """The multiplication problem: target = product of the marked values (predicting 0.25: MSE ~ 0.049)."""

    name = "multiplication"
    mean_target = 0.25  # E[a b] for a, b ~ U[0, 1]

    def _combine(self, a, b):
        return a * b


TASK = base.register(base.marked_pair_spec(MultiplicationTask))
