r"""The addition problem (Hochreiter & Schmidhuber 1997; Le et al. 2015; Talathi & Vartak Sec. 4.1).

    python -m experiments.addition                       # the main job (configs/addition.py default)
    python -m experiments.addition --config=experiments/configs/addition.py:cpu_T150 \
        --workdir=workdirs/addition_T150
    python -m experiments.addition --show_config         # every setting with its value and meaning

Two values per step (a number in [0, 1], a marker); the target is the sum of the two
marked numbers. Headline metric: the share of test sequences with |error| < 0.04.
"""

if __package__ in (None, ""):  # `python experiments/<binary>.py`, the Flax examples' habit: the repo on the path
    import pathlib as _pathlib, sys as _sys  # noqa: E401
    _sys.path.insert(0, str(_pathlib.Path(__file__).resolve().parents[1]))

from experiments import common

if __name__ == "__main__":
    common.run("addition")
