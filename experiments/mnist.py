r"""Pixel MNIST and permuted pixel MNIST (Le et al. 2015; Talathi & Vartak Sec. 4.2): 784 steps.

    python -m experiments.mnist --config=experiments/configs/mnist.py:cpu [--config.permute=true]

Data: a prepared TFDS MNIST when one exists (never downloaded), otherwise the four IDX
files in --config.data_dir (or its mnist/ folder). The whole data set lives in device
memory and is read in epochs on device. Test accuracy is on all 10,000 test images
unless --config.test_size says fewer.
"""

if __package__ in (None, ""):  # `python experiments/<binary>.py`, the Flax examples' habit: the repo on the path
    import pathlib as _pathlib, sys as _sys  # noqa: E401
    _sys.path.insert(0, str(_pathlib.Path(__file__).resolve().parents[1]))

from experiments import common

if __name__ == "__main__":
    common.run("mnist")
