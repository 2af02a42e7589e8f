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


TASK = base.register(base.TaskSpec(
    name="multiplication",
    settings=base.MARKED_PAIR_SETTINGS,
    build=base.MarkedPairBuild(MultiplicationTask),
    title=lambda config: f"multiplication (T={config.seq_len})",
    check=base.check_marked_pair,
    metric_text="share of test sequences within 0.04",
    success_threshold=0.5,
    success_text="share within 0.04 >= 50%",
    chance_text="the best constant prediction",
    chance=base.marked_pair_chance(MultiplicationTask),
    paper_updates=625_000,
    paper_sequences=10_000_000,
    paper_results=lambda config: PAPER_FIGURE_4.get(config["seq_len"], {}),
    paper_config=lambda config: f"paper_T{config['seq_len']}",
    paper_figure=("Figure 4", tuple(PAPER_FIGURE_4), "share of test sequences within 0.04"),
    claim=(("irnn", "irnn_scaled"), "np-RNN succeeds at least as often"),
    clip_note=" or, here, the value",
    unstated=base.marked_pair_unstated,
    steps_per_sequence=lambda config: config["seq_len"],
))
