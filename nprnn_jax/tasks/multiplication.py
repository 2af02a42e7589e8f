"""The multiplication problem (the paper's Figure 4): the product of two marked values.

Declares the task (`TASK`): its settings (the marked-pair ones), its data
(`MultiplicationTask`), its metric and success rule, its chance level and the paper's numbers.
"""

from __future__ import annotations

import dataclasses

from nprnn_jax.tasks import base

# Figure 4: share of test sequences with |error| < 0.04, in percent (bar charts, +-2 points).
PAPER_FIGURE_4 = {
    50: {"np": 98.5, "irnn": 45, "irnn_scaled": 44.5, "nrnn": 78.5, "np_tanh": 81},
    100: {"np": 96, "irnn": 45, "irnn_scaled": 11, "nrnn": 80, "np_tanh": 85.5},
    200: {"np": 92, "irnn": 45, "irnn_scaled": 44.5, "nrnn": 70, "np_tanh": 75},
}


@dataclasses.dataclass(frozen=True)
class MultiplicationTask(base.MarkedPairTask):
    """The multiplication problem: target = product of the marked values (predicting 0.25: MSE ~ 0.049)."""

    name = "multiplication"
    mean_target = 0.25  # E[a b] for a, b ~ U[0, 1]

    def _combine(self, a, b):
        return a * b


TASK = base.register(base.marked_pair_spec(
    MultiplicationTask, paper_figure="Figure 4", paper_numbers=PAPER_FIGURE_4, paper_updates=625_000, paper_sequences=10_000_000,
    clip_note=" or, here, the value"))
