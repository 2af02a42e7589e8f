r"""The multiplication problem (Talathi & Vartak Sec. 4.1): the product of the two marked values.

    python -m experiments.multiplication --config=experiments/configs/multiplication.py:cpu_T50

Same inputs and settings as `experiments.addition` (predicting 0.25 always gives MSE about 0.049).
"""

from experiments import common

if __name__ == "__main__":
    common.run("multiplication")
