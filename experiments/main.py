r"""Every task's binary: the config names its task.

    python -m experiments.main                          # the main job (configs/addition.py default)
    python -m experiments.main --config=experiments/configs/mnist.py:cpu --workdir=workdirs/mnist
    python -m experiments.main --config=experiments/configs/addition.py:paper_T150 --show_config
    python -m experiments.main --config=my_project/copy_config.py   # a task of one's own

A config file (``get_config(name=None)`` returning an `ml_collections.ConfigDict`) sets
``config.task`` and every setting it changes; a task of one's own is one module that registers
it (`nprnn_jax.tasks.register`) and one config file that imports that module. The config
files found in ``experiments/configs`` are the paper's tasks; ``python -m
experiments.<task>`` is the same binary with that task's config file as its default.
"""

if __package__ in (None, ""):  # `python experiments/main.py`, the Flax examples' habit: the repo on the path
    import pathlib as _pathlib, sys as _sys  # noqa: E401
    _sys.path.insert(0, str(_pathlib.Path(__file__).resolve().parents[1]))

from experiments import common

if __name__ == "__main__":
    common.run()
