r"""Pixel MNIST and permuted pixel MNIST (Le et al. 2015): one pixel per step, 784 steps.

    python -m experiments.mnist --inits=np,irnn --learning_rates=1e-3 --num_seeds=2 \
        --num_steps=2000 --workdir=workdirs/mnist [--permute]

Data: a prepared TFDS MNIST when one exists (never downloaded), otherwise the
four IDX files in --data_dir (or its mnist/ folder). The whole data set lives
in device memory and batches are sampled on device. Test accuracy is on all
10,000 test images unless --test_size says fewer.
"""

import json

from absl import app, flags

from experiments import common
from nprnn_jax import datasets, tasks

flags.DEFINE_bool("permute", False, "Apply a fixed random permutation to the 784 pixel positions.")
flags.DEFINE_integer("permutation_seed", 0, "Seed of the permutation (recorded in permutation.json).")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data dir to look for a prepared MNIST (default: TFDS's).")

DEFAULTS = dict(inits="np,irnn", learning_rates="1e-3", num_seeds=2, num_steps=1000, eval_every=250,
                clip_norm=1.0, workdir="workdirs/mnist")


def build_task():
    F = flags.FLAGS
    data_dir = common.data_dir()
    train_images, train_labels = datasets.load_mnist(data_dir, "train", F.tfds_data_dir)
    test_images, test_labels = datasets.load_mnist(data_dir, "test", F.tfds_data_dir)
    task = tasks.mnist_task(train_images, train_labels, test_images, test_labels, permute=F.permute,
                            permutation_seed=F.permutation_seed, test_size=F.test_size)
    extra = {}
    if F.permute:
        extra["permutation.json"] = json.dumps({"seed": F.permutation_seed,
                                                "permutation": task.permutation.tolist()}) + "\n"
    return task, extra


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    common.main(build_task, DEFAULTS, "permuted pixel MNIST" if flags.FLAGS.permute else "pixel MNIST")


if __name__ == "__main__":
    app.run(main)
