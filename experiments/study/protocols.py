"""What the study knows of each task that the library does not: the paper's numbers, budget, bar
of success and the choices it leaves open, keyed by the task's name.

The library's task declaration (`nprnn_jax.tasks.TaskSpec`) holds what the engine needs; a task
that has nothing to do with the paper declares nothing here. The study wing (plan, page,
endpoints) reads a task's `Protocol` with `get`::

    from experiments.study import protocols
    protocols.get("addition").paper_results({"seq_len": 150})["np"]   # 95 (Figure 3)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Optional

from nprnn_jax import checks, tasks


def _paper_protocol(config: dict) -> str:
    return "paper"


def _nothing_unstated(config: dict) -> list:
    return []


def _no_data_note(config: dict, task: dict) -> str:
    return ""


@dataclasses.dataclass(frozen=True)
class Protocol:
    """The paper's side of a task.

    Attributes:
      success_threshold, success_text: the paper's bar for a successful run (a share of the
        headline metric) and that bar in words.
      chance_text: what its chance level is (the report's "Chance level" line).
      paper_updates, paper_sequences: the paper protocol's parameter updates and training
        sequences.
      paper_results: ``paper_results(config JSON) -> {variant: percent}``, the paper's numbers
        for the job's cell.
      claim: ``(baselines, claim)``: what the paper says np-RNN does against which variants.
      steps_per_sequence: ``steps_per_sequence(config JSON)``, the recurrent steps of one example
        (the cost estimate; None when they vary or are not known).
      chance: ``chance(config JSON)``, the headline metric of the best constant prediction
        computed from the config alone (None: read from the run's results).
      paper_config: the named config holding the paper's protocol for a job's config.
      paper_figure: ``(label, cells, what)`` of the paper's figure or table of this task
        (cells: its sequence lengths, ``(None,)`` for one cell), or None.
      paper_data: the paper's data set when ours differ ("" when the same).
      paper_budget: the paper's training in epochs of its data, when it is stated so ("": in
        sequences, `paper_sequences`).
      paper_grid_cells: ``{variant: cells}``, the paper's count of grid cells at the success bar
        (its Figure 6), when it gives one.
      data_note: ``data_note(config JSON, task record)``, where a verdict's data differ from the
        paper's ("" when they do not).
      clip_note: what the paper says of gradient clipping here.
      unstated: ``unstated(config JSON) -> [(what, ours, why)]``, this task's choices that the
        paper does not state.
    """

    success_threshold: float
    success_text: str
    chance_text: str
    paper_updates: int
    paper_sequences: int
    paper_results: Callable
    claim: tuple
    steps_per_sequence: Callable
    chance: Optional[Callable] = None
    paper_config: Callable = _paper_protocol
    paper_figure: Optional[tuple] = None
    paper_data: str = ""
    paper_budget: str = ""
    paper_grid_cells: Optional[dict] = None
    data_note: Callable = _no_data_note
    clip_note: str = ""
    unstated: Callable = _nothing_unstated


_PROTOCOLS: dict = {}


def declare(task: str, protocol: Protocol) -> Protocol:
    """Adds the paper's side of ``task`` (a registered task's name) to the study."""
    if task in _PROTOCOLS and _PROTOCOLS[task] is not protocol:
        raise ValueError(f"task {task!r} has two study protocols")
    _PROTOCOLS[task] = protocol
    return protocol


def names() -> tuple:
    """The tasks the study knows."""
    return tuple(_PROTOCOLS)


def get(task: str) -> Protocol:
    """The `Protocol` of ``task``, or `checks.ConfigError` naming the tasks the study knows."""
    if task not in _PROTOCOLS:
        raise checks.ConfigError(f"task={task!r}: the study has no protocol for it (the paper's numbers, "
                                 f"budget and bar); it knows {', '.join(_PROTOCOLS)}")
    return _PROTOCOLS[task]


# --- The marked-pair tasks (Figures 3 and 4) ------------------------------------------------

# Figure 3: share of test sequences with |error| < 0.04, in percent (bar charts, +-2 points).
PAPER_FIGURE_3 = {
    150: {"np": 95, "irnn": 85.5, "irnn_scaled": 84, "nrnn": 85.5, "np_tanh": 84, "ornn": 8, "grnn": 8},
    200: {"np": 94.5, "irnn": 87.5, "irnn_scaled": 79, "nrnn": 67.5, "np_tanh": 73.5, "ornn": 8, "grnn": 8},
    300: {"np": 88, "irnn": 75, "irnn_scaled": 8, "nrnn": 65.5, "np_tanh": 30, "ornn": 8, "grnn": 8},
    400: {"np": 83.5, "irnn": 82, "irnn_scaled": 7.5, "nrnn": 16, "np_tanh": 7.5, "ornn": 8, "grnn": 8},
    500: {"np": 75.5, "irnn": 14.5, "irnn_scaled": 8, "nrnn": 8, "np_tanh": 8, "ornn": 8, "grnn": 8},
}
# Figure 4: the same share for the product.
PAPER_FIGURE_4 = {
    50: {"np": 98.5, "irnn": 45, "irnn_scaled": 44.5, "nrnn": 78.5, "np_tanh": 81},
    100: {"np": 96, "irnn": 45, "irnn_scaled": 11, "nrnn": 80, "np_tanh": 85.5},
    200: {"np": 92, "irnn": 45, "irnn_scaled": 44.5, "nrnn": 70, "np_tanh": 75},
}


def marked_pair_chance(task_type):
    """The ``chance`` of a marked-pair task (a `nprnn_jax.tasks.MarkedPairTask` type): the best
    constant's share on the test set its config generates."""
    @functools.lru_cache(maxsize=None)
    def share(seq_len, test_size, test_seed, placement, tolerance):
        return task_type(seq_len=seq_len, test_size=test_size, test_seed=test_seed, marker_placement=placement,
                         accuracy_tolerance=tolerance).best_constant_metric()

    def chance(config: dict) -> float:
        return share(config["seq_len"], config["test_size"], config.get("test_seed", 0),
                     config.get("marker_placement", "halves"), config.get("accuracy_tolerance", 0.04))
    return chance


def marked_pair_unstated(config: dict) -> list:
    placement = config.get("marker_placement", "halves")
    return [("marker placement", placement + (": one marker in each half" if placement == "halves" else ": anywhere"),
             "not stated")]


def marked_pair_protocol(task_type, *, paper_figure: str, paper_numbers: dict, paper_updates: int,
                         paper_sequences: int, clip_note: str, unstated: Callable = None) -> Protocol:
    """The `Protocol` of a marked-pair task: what those tasks share, and the paper's numbers
    ``{T: {variant: percent}}`` of its figure."""
    return Protocol(
        success_threshold=0.5, success_text="share within 0.04 >= 50%", chance_text="the best constant prediction",
        chance=marked_pair_chance(task_type), paper_updates=paper_updates, paper_sequences=paper_sequences,
        paper_results=lambda config: paper_numbers.get(config["seq_len"], {}),
        paper_config=lambda config: f"paper_T{config['seq_len']}",
        paper_figure=(paper_figure, tuple(paper_numbers), "share of test sequences within 0.04"),
        claim=(("irnn", "irnn_scaled"), "np-RNN succeeds at least as often"), clip_note=clip_note,
        unstated=unstated or marked_pair_unstated, steps_per_sequence=lambda config: config["seq_len"])


def _addition_unstated(config: dict) -> list:
    out = marked_pair_unstated(config)
    if config.get("batch_size") != 1:
        out.append(("learning rate at batch 16", ", ".join(f"{x:g}" for x in config["learning_rates"]),
                    "the paper's 0.001 is for batch 1; 0.004 (square root) and 0.016 (linear scaling of the "
                    "summed gradient) are the usual equivalents, and the grid brackets them"))
    return out


declare("addition", marked_pair_protocol(
    tasks.AdditionTask, paper_figure="Figure 3", paper_numbers=PAPER_FIGURE_3, paper_updates=1_000_000,
    paper_sequences=1_000_000, clip_note="; the value 10 is its addition setting", unstated=_addition_unstated))
declare("multiplication", marked_pair_protocol(
    tasks.MultiplicationTask, paper_figure="Figure 4", paper_numbers=PAPER_FIGURE_4, paper_updates=625_000,
    paper_sequences=10_000_000, clip_note=" or, here, the value"))


# --- Pixel MNIST (Table 2) ----------------------------------------------------------------

PAPER_TABLE_2 = {"np": 92, "irnn": 83}  # test accuracy after 100 epochs, in percent


def _mnist_unstated(config: dict) -> list:
    pixels = config.get("pixels", "unit")
    return [("pixel values", "x / 255 in [0, 1], the background exactly 0" if pixels == "unit" else
             "standardized: mean 0, std 1 over the training pool's pixels, the background about -0.42",
             "the paper does not say how the pixels are scaled")]

declare("mnist", Protocol(
    success_threshold=0.5,
    success_text="test accuracy >= 50%",
    chance_text="the most frequent test class",
    paper_updates=375_000,
    paper_sequences=6_000_000,
    paper_results=lambda config: PAPER_TABLE_2,
    paper_figure=("Table 2", (None,), "test accuracy"),
    claim=(("irnn",), "np-RNN reaches a higher accuracy"),
    clip_note=" or, here, the value",
    steps_per_sequence=lambda config: 784,
    unstated=_mnist_unstated,
))


# --- Action recognition (Table 3, Figure 6) -------------------------------------------------

# Table 3: (validation accuracy, test accuracy, learning rate); Figure 6: (learning rate,
# dropout) cells of 18 at a validation accuracy >= 0.6.
PAPER_TABLE_3 = {
    "irnn_scaled": (59, 56.6, 1e-3, 0), "irnn": (71, 67, 1e-2, 1), "np": (78.6, 75.2, 1e-3, 12),
    "lstm": (80.3, 78.5, 1e-3, 13),
}


def _action_data_note(config: dict, task: dict) -> str:
    if config.get("dataset") == "npz":
        return ""
    return (f"on UEA {config.get('dataset')} ({task.get('num_train')} training cases, {task.get('num_classes')} "
            f"classes, batch {config['batch_size']}), not UCF101")


def _action_unstated(config: dict) -> list:
    return [("dropout values", "drop probabilities (0.5 drops half of the units)",
             "the paper's {0.5, 0.7, 0.9} could be keep probabilities"),
            ("success bar", "test accuracy >= 60%", "the paper's Figure 6 threshold, on its validation group")]


declare("action_recognition", Protocol(
    success_threshold=0.6,
    success_text="test accuracy >= 60% (the threshold of the paper's Figure 6)",
    chance_text="the most frequent test class",
    paper_updates=2_660,  # 70 epochs of UCF101's 9,537 training videos at batch 256
    paper_sequences=70 * 9_537,
    paper_results=lambda config: {k: v[1] for k, v in PAPER_TABLE_3.items()},  # test accuracy (UCF101)
    paper_data="UCF101",
    paper_budget="70 epochs of UCF101's 9,537 videos",
    paper_grid_cells={k: v[3] for k, v in PAPER_TABLE_3.items()},
    data_note=_action_data_note,
    claim=(("irnn", "irnn_scaled"), "np-RNN does well over more of the grid"),
    clip_note="; the value 10 is its addition setting",
    unstated=_action_unstated,
    steps_per_sequence=lambda config: None,  # the paper's UCF101 sequences: not stated
))
