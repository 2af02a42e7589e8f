"""The adding problem (the paper's Figure 3): the sum of two marked values of a sequence.

Declares the task (`TASK`): its settings (the marked-pair ones), its data
(`AdditionTask`), its metric and success rule, its chance level and the paper's numbers.
"""

from __future__ import annotations

import dataclasses

from nprnn_jax.tasks import base

# Figure 3: share of test sequences with |error| < 0.04, in percent (bar charts, +-2 points).
PAPER_FIGURE_3 = {
    150: {"np": 95, "irnn": 85.5, "irnn_scaled": 84, "nrnn": 85.5, "np_tanh": 84, "ornn": 8, "grnn": 8},
    200: {"np": 94.5, "irnn": 87.5, "irnn_scaled": 79, "nrnn": 67.5, "np_tanh": 73.5, "ornn": 8, "grnn": 8},
    300: {"np": 88, "irnn": 75, "irnn_scaled": 8, "nrnn": 65.5, "np_tanh": 30, "ornn": 8, "grnn": 8},
    400: {"np": 83.5, "irnn": 82, "irnn_scaled": 7.5, "nrnn": 16, "np_tanh": 7.5, "ornn": 8, "grnn": 8},
    500: {"np": 75.5, "irnn": 14.5, "irnn_scaled": 8, "nrnn": 8, "np_tanh": 8, "ornn": 8, "grnn": 8},
}


@dataclasses.dataclass(frozen=True)
class AdditionTask(base.MarkedPairTask):
    """The adding problem: target = sum of the two marked values (predicting 1: MSE ~ 0.167)."""

    name = "addition"
    mean_target = 1.0  # E[a + b] for a, b ~ U[0, 1]

    def _combine(self, a, b):
        return a + b


def _unstated(config: dict) -> list:
    out = base.marked_pair_unstated(config)
    if config.get("batch_size") != 1:
        out.append(("learning rate at batch 16", ", ".join(f"{x:g}" for x in config["learning_rates"]),
                    "the paper's 0.001 is for batch 1; 0.004 (square root) and 0.016 (linear scaling of the "
                    "summed gradient) are the usual equivalents, and the grid brackets them"))
    return out


TASK = base.register(base.marked_pair_spec(
    AdditionTask, paper_figure="Figure 3", paper_numbers=PAPER_FIGURE_3, paper_updates=1_000_000, paper_sequences=1_000_000,
    clip_note="; the value 10 is its addition setting", unstated=_unstated))
