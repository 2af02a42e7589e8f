r"""Action recognition: a sequence of per-frame feature vectors -> RNN -> softmax.

The paper's pipeline for UCF101 (101 classes) on precomputed per-frame features.
Offline it runs on real action and gesture data from the UEA archive:

    python -m experiments.action_recognition --config=experiments/configs/action_recognition.py:cpu_BasicMotions \
        --workdir=workdirs/basicmotions

--config.dataset: a UEA set name read from {data_dir}/{name}_TRAIN.ts and _TEST.ts
(BasicMotions, PickupGestureWiimoteZ, GunPoint here), or "npz" for precomputed
features in {data_dir}/train.npz and test.npz (arrays features [N, T, D],
labels [N], optional lengths [N] and class_names). Variable lengths are masked.
Missing values in .ts files: trailing ones are padding (the series is shorter),
interior ones repeat the previous value. Channels are standardized with
training-set statistics (--config.normalize).
"""

if __package__ in (None, ""):  # `python experiments/<binary>.py`, the Flax examples' habit: the repo on the path
    import pathlib as _pathlib, sys as _sys  # noqa: E401
    _sys.path.insert(0, str(_pathlib.Path(__file__).resolve().parents[1]))

from experiments import common

if __name__ == "__main__":
    common.run("action_recognition")
