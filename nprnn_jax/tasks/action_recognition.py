"""Action recognition on sequences of feature vectors (the paper's Table 3 and Figure 6).

The paper used UCF101 features; the data here are UEA multivariate time-series sets
(`nprnn_jax.datasets.load_uea`) or one's own ``train.npz``/``test.npz`` features. Declares
the task (`TASK`): its settings, its data (`sequence_task`), its metric and success rule
and the paper's numbers.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from nprnn_jax import checks, datasets
from nprnn_jax.tasks import base

# Table 3: (validation accuracy, test accuracy, learning rate); Figure 6: (learning rate,
# dropout) cells of 18 at a validation accuracy >= 0.6.
PAPER_TABLE_3 = {
    "irnn_scaled": (59, 56.6, 1e-3, 0), "irnn": (71, 67, 1e-2, 1), "np": (78.6, 75.2, 1e-3, 12),
    "lstm": (80.3, 78.5, 1e-3, 13),
}


def sequence_task(name: str, train, test, test_size: Optional[int] = None, normalize: bool = True,
                  validation_size: int = 0):
    """Classification of variable-length feature sequences (`datasets.SequenceDataset`).

    With ``normalize`` every feature channel is standardized with the mean and
    standard deviation of the training set's valid (unpadded) steps; padding
    stays zero and is masked by the lengths either way. ``validation_size``: that
    many training cases, stratified by class (`hold_out`), are the validation set,
    not trained on (the statistics are the training part's).
    """
    kept, held = base.hold_out({"xs": train.features.astype(np.float32), "ys": train.labels, "lengths": train.lengths},
                          validation_size, stratified=True)
    test_set = {"xs": test.features.astype(np.float32), "ys": test.labels, "lengths": test.lengths}
    if normalize:
        def valid(part):
            return np.arange(part["xs"].shape[1])[None, :] < part["lengths"][:, None]

        steps = kept["xs"][valid(kept)].astype(np.float64)  # no overflow in the squares (values are <= 1e30)
        mean, std = steps.mean(0).astype(np.float32), (steps.std(0) + 1e-6).astype(np.float32)

        def standardize(part):
            return dict(part, xs=np.where(valid(part)[..., None], (part["xs"] - mean) / std, 0.0).astype(np.float32))

        kept, test_set = standardize(kept), standardize(test_set)
        held = None if held is None else standardize(held)
    return base.ClassificationTask(
        name, kept, test_set, num_classes=len(train.class_names), test_size=test_size,
        info={"normalize": bool(normalize), "class_names": ",".join(train.class_names)}, validation=held)


def build(config):
    directory = base.data_dir(config)
    if config.dataset == "npz":
        train = datasets.check_training_classes(datasets.load_npz(directory / "train.npz"), directory / "train.npz")
        test = datasets.load_npz(directory / "test.npz")
        if train.class_names != test.class_names or train.features.shape[2] != test.features.shape[2]:
            raise datasets.DataError(f"{directory}: train.npz and test.npz differ in classes or feature size")
    else:
        train, test = datasets.load_uea(directory, config.dataset)
    return sequence_task(config.dataset, train, test, test_size=config.test_size or None,
                         normalize=config.normalize, validation_size=config.validation_size), {}


def _data_note(config: dict, task: dict) -> str:
    if config.get("dataset") == "npz":
        return ""
    return (f"on UEA {config.get('dataset')} ({task.get('num_train')} training cases, {task.get('num_classes')} "
            f"classes, batch {config['batch_size']}), not UCF101")


def _unstated(config: dict) -> list:
    return [("dropout values", "drop probabilities (0.5 drops half of the units)",
             "the paper's {0.5, 0.7, 0.9} could be keep probabilities"),
            ("success bar", "test accuracy >= 60%", "the paper's Figure 6 threshold, on its validation group")]


_S = checks.Setting
TASK = base.register(base.TaskSpec(
    name="action_recognition",
    settings=base.DATA_SET_SETTINGS + (
        _S("dataset", "BasicMotions", "a UEA set name in data_dir/uea, or npz (train.npz/test.npz features)",
           checks.string),
        _S("normalize", True, "standardize each channel with training-set statistics", checks.boolean),
    ),
    build=build,
    title=lambda config: f"action recognition ({config.dataset})",
    metric_text="test accuracy",
    success_threshold=0.6,
    success_text="test accuracy >= 60% (the threshold of the paper's Figure 6)",
    chance_text="the most frequent test class",
    paper_updates=2_660,  # 70 epochs of UCF101's 9,537 training videos at batch 256
    paper_sequences=70 * 9_537,
    paper_results=lambda config: {k: v[1] for k, v in PAPER_TABLE_3.items()},  # test accuracy (UCF101)
    paper_data="UCF101",
    paper_budget="70 epochs of UCF101's 9,537 videos",
    paper_grid_cells={k: v[3] for k, v in PAPER_TABLE_3.items()},
    data_note=_data_note,
    claim=(("irnn", "irnn_scaled"), "np-RNN does well over more of the grid"),
    clip_note="; the value 10 is its addition setting",
    unstated=_unstated,
    steps_per_sequence=lambda config: None,  # the paper's UCF101 sequences: not stated
))
