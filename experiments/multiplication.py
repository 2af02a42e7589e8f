r"""The multiplication problem (Talathi & Vartak Sec. 4.1): the product of the two marked values.

    python -m experiments.multiplication --config=experiments/configs/multiplication.py:cpu_T50

Same inputs and settings as `experiments.addition` (predicting 0.25 always gives MSE about 0.049).
"""

if __package__ in (None, ""):  # `python experiments/<binary>.py`, the Flax examples' habit: the repo on the path
    import pathlib as _pathlib, sys as _sys  # noqa: E401
    _sys.path.insert(0, str(_pathlib.Path(__file__).resolve().parents[1]))

from experiments import common

if __name__ == "__main__":
    common.run("multiplication")
