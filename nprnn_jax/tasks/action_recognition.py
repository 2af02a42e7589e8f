"""Action recognition on sequences of feature vectors (the paper's Table 3 and Figure 6).

The paper used UCF101 features; the data here are UEA multivariate time-series sets
(`nprnn_jax.datasets.load_uea`) or one's own ``train.npz``/``test.npz`` features. Declares
the task (`TASK`): its settings, its data (`sequence_task`) and its metric (the paper's
numbers for it are the study's: `experiments.study.protocols`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from nprnn_jax import checks, datasets
from nprnn_jax.tasks import base

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
))
