r"""Action recognition: a sequence of per-frame feature vectors -> RNN -> softmax.

The paper's pipeline for UCF101 (101 classes) on precomputed per-frame features.
Offline it runs on real action and gesture data from the UEA archive:

    python -m experiments.action_recognition --dataset=BasicMotions --inits=np,irnn,lstm \
        --workdir=workdirs/basicmotions

--dataset: a UEA set name read from {data_dir}/{name}_TRAIN.ts and _TEST.ts
(BasicMotions, PickupGestureWiimoteZ, GunPoint here), or "npz" for precomputed
features in {data_dir}/train.npz and test.npz (arrays features [N, T, D],
labels [N], optional lengths [N] and class_names). Variable lengths are masked.
Missing values in .ts files: trailing ones are padding (the series is shorter),
interior ones repeat the previous value. Channels are standardized with
training-set statistics (--normalize).
"""

from absl import app, flags

from experiments import common
from nprnn_jax import datasets, tasks

flags.DEFINE_string("dataset", "BasicMotions", "A UEA set name, or npz.")
flags.DEFINE_bool("normalize", True, "Standardize each channel with training-set mean and std.")

DEFAULTS = dict(inits="np,irnn,lstm", learning_rates="1e-3", num_seeds=4, num_steps=1000,
                eval_every=250, clip_norm=10.0, workdir="workdirs/action_recognition")


def build_task():
    F = flags.FLAGS
    data_dir = common.data_dir()
    if F.dataset == "npz":
        train = datasets.load_npz(data_dir / "train.npz")
        test = datasets.load_npz(data_dir / "test.npz")
        if train.class_names != test.class_names or train.features.shape[2] != test.features.shape[2]:
            raise datasets.DataError(f"{data_dir}: train.npz and test.npz differ in classes or feature size")
    else:
        train, test = datasets.load_uea(data_dir, F.dataset)
    task = tasks.sequence_task(F.dataset, train, test, test_size=F.test_size, normalize=F.normalize)
    return task, {}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    common.main(build_task, DEFAULTS, f"action recognition ({flags.FLAGS.dataset})")


if __name__ == "__main__":
    app.run(main)
