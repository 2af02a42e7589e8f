"""Pixel MNIST and permuted pixel MNIST (the paper's Table 2): one pixel per step, 784 steps.

Declares the task (`TASK`): its settings, its data (`mnist_task`, read by
`nprnn_jax.datasets.load_mnist`, never downloaded) and its metric (the paper's numbers for it
are the study's: `experiments.study.protocols`).
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np

from nprnn_jax import checks, datasets
from nprnn_jax.tasks import base

PIXELS = ("unit", "standardized")


def mnist_task(images, labels, test_images, test_labels, permute: bool = False,
               permutation_seed: int = 0, test_size: Optional[int] = None, validation_size: int = 0,
               pixels: str = "unit"):
    """Pixel MNIST: one pixel per step (784 steps, row-major), pixels in [0, 1].

    ``pixels``: "unit", x / 255 in [0, 1] (the background exactly 0); "standardized",
    (x / 255 - mean) / std with the mean and std of the training pool's pixels (the validation
    images left out), so the background is about -0.42. The paper does not say which.

    ``validation_size``: the last that many training images are the validation set and
    are not trained on (5,000 is the usual split).

    With ``permute`` a fixed random permutation of the 784 positions (drawn from
    ``permutation_seed``) is applied to every image: permuted pixel MNIST. The
    permutation is `task.permutation` (recorded in the workdir by the binary).
    """
    if pixels not in PIXELS:
        raise ValueError(f"pixels={pixels!r}: one of {', '.join(PIXELS)}")
    flat = np.asarray(images, np.uint8).reshape(len(images), 784)
    test_flat = np.asarray(test_images, np.uint8).reshape(len(test_images), 784)
    permutation = None
    if permute:
        permutation = np.random.default_rng(permutation_seed).permutation(784)
        flat, test_flat = flat[:, permutation], test_flat[:, permutation]
    train, validation = base.hold_out({"xs": flat[..., None], "ys": np.asarray(labels)}, validation_size,
                                 stratified=False)
    scale, shift, info = 1.0 / 255.0, 0.0, {}
    if pixels == "standardized":
        unit = train["xs"].astype(np.float64) / 255.0
        mean, std = float(unit.mean()), float(unit.std())
        scale, shift = 1.0 / (255.0 * std), -mean / std
        info = {"pixels": pixels, "pixel_mean": mean, "pixel_std": std}
    task = base.ClassificationTask(
        "pmnist" if permute else "mnist", train,
        {"xs": test_flat[..., None], "ys": np.asarray(test_labels)},
        num_classes=10, scale=scale, shift=shift, test_size=test_size,
        info={"permute": bool(permute), "permutation_seed": permutation_seed if permute else None, **info},
        validation=validation)
    task.permutation = permutation
    return task


def build(config):
    directory = base.data_dir(config)
    train_images, train_labels = datasets.load_mnist(directory, "train", config.tfds_data_dir or None)
    test_images, test_labels = datasets.load_mnist(directory, "test", config.tfds_data_dir or None)
    task = mnist_task(train_images, train_labels, test_images, test_labels, permute=config.permute,
                      permutation_seed=config.permutation_seed, test_size=config.test_size or None,
                      validation_size=config.validation_size, pixels=config.pixels)
    extra = {}
    if config.permute:
        extra["permutation.json"] = json.dumps({"seed": config.permutation_seed,
                                                "permutation": task.permutation.tolist()}) + "\n"
    return task, extra


_S = checks.Setting
TASK = base.register(base.TaskSpec(
    name="mnist",
    settings=base.DATA_SET_SETTINGS + (
        _S("permute", False, "permuted pixel MNIST (a fixed permutation of the 784 positions)", checks.boolean),
        _S("permutation_seed", 0, "seed of the permutation", checks.integer(0)),
        _S("pixels", "unit", "pixel values: unit (x/255 in [0, 1], the background 0) or standardized (mean 0, "
           "std 1 over the training pool's pixels, the background about -0.42); the paper does not say",
           checks.one_of(PIXELS)),
        _S("tfds_data_dir", "", "a TFDS data dir holding a prepared MNIST (never downloaded)", checks.string,
           location=True),
    ),
    build=build,
    title=lambda config: "permuted pixel MNIST" if config.permute else "pixel MNIST",
    metric_text="test accuracy",
))
