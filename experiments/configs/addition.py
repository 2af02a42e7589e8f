r"""Configs of the addition problem (the paper's Sec. 4.1, Figure 3).

    python -m experiments.addition                                            # default
    python -m experiments.addition --config=experiments/configs/addition.py:cpu_T150

Variants:
  default     the main job: np, irnn, irnn_scaled at T=50, 3 learning rates x 4 seeds,
              10,000 steps of batch 16 (160,000 sequences), a few minutes on 2 CPU cores.
  paper_T<T>  the paper's protocol exactly (METHOD.md), T in 150, 200, 300, 400, 500:
              its seven variants, SGD lr 0.001, clip 10, batch 1, a fixed pool of
              100,000 training sequences, 10 epochs (1,000,000 updates), 10,000 test
              sequences; one seed (the paper reports one run per cell).
  cpu_T<T>    the reproduction study's budget on 2 CPU cores: the seven variants plus
              irnn_le, batch 16, 20,000 steps (320,000 sequences: 32% of the paper's
              1,000,000), the same 100,000-sequence pool, learning rates 0.002, 0.008,
              0.032 (bracketing 0.004 and 0.016, the square-root and linear batch-16
              equivalents of the paper's 0.001 at batch 1), 3 seeds.
  smoke       a tiny run for the tests.
"""

from nprnn_jax import config as config_lib
from nprnn_jax import rnn

SEQ_LENS = (150, 200, 300, 400, 500)


def paper(seq_len: int, task: str = "addition"):
    config = config_lib.base_config(task)
    config.inits = rnn.PAPER_VARIANTS
    config.seq_len = seq_len
    config.optimizer = "sgd"
    config.learning_rates = (0.001,)
    config.clip_norm = 10.0
    config.batch_size = 1
    config.train_size = 100_000
    config.num_steps = 1_000_000
    config.eval_every = 20_000
    config.test_size = 10_000
    config.num_seeds = 1
    return config


def cpu(seq_len: int):
    config = paper(seq_len)
    config.inits = rnn.PAPER_VARIANTS + ("irnn_le",)
    config.batch_size = 16
    config.num_steps = 20_000
    config.eval_every = 2_000
    config.learning_rates = (0.002, 0.008, 0.032)
    config.num_seeds = 3
    return config


def smoke(task: str = "addition"):
    config = config_lib.base_config(task)
    config.inits = ("np", "irnn")
    config.hidden_size = 8
    config.seq_len = 10
    config.learning_rates = (0.01, 0.05)
    config.num_seeds = 2
    config.num_steps = 20
    config.eval_every = 10
    config.test_size = 64
    config.train_size = 64
    return config


def default(task: str = "addition"):
    config = config_lib.base_config(task)
    config.inits = ("np", "irnn", "irnn_scaled")
    config.seq_len = 50
    config.learning_rates = (0.003, 0.01, 0.03)
    config.num_seeds = 4
    config.num_steps = 10_000
    config.eval_every = 2_000
    config.clip_norm = 10.0
    return config


def variants(task: str = "addition") -> dict:
    """Name -> builder of every variant of this config file."""
    out = {"default": lambda: default(task), "smoke": lambda: smoke(task)}
    for t in SEQ_LENS:
        out[f"paper_T{t}"] = (lambda t=t: paper(t, task))
        out[f"cpu_T{t}"] = (lambda t=t: cpu(t))
    return out


def pick(variants_: dict, variant):
    name = variant or "default"
    if name not in variants_:
        raise ValueError(f"unknown config variant {name!r}; valid: {', '.join(variants_)}")
    return variants_[name]()


def get_config(variant=None):
    return pick(variants(), variant)
