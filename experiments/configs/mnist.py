r"""Configs of pixel MNIST (the paper's Sec. 4.2, Table 2): one pixel per step, 784 steps.

    python -m experiments.mnist --config=experiments/configs/mnist.py:cpu
    python -m experiments.mnist --config=experiments/configs/mnist.py:cpu --config.permute=true

Variants (np-RNN with SGD and the paper's cut schedule, IRNN with RMSprop 1e-6, in one
experiment through per_init):
  default  1,000 steps: a quick look (16,000 images, 0.27% of the paper's 6,000,000).
  paper    the paper's protocol: batch 16, 100 epochs (375,000 updates); np-RNN: SGD lr 1e-4
           for 33 epochs, 1e-5 for 33, 1e-6 to 100; IRNN: RMSprop lr 1e-6 throughout;
           clip 1 (the paper states none: ours); one seed; evaluation once per epoch.
  paper_summed_loss  the same for np-RNN alone, the objective the minibatch's summed loss
           instead of its mean (the paper states neither).
  paper_standardized  the same for np-RNN alone, on standardized pixels (mean 0, std 1; the
           background about -0.42 instead of 0; the paper does not say).
  cpu      the reproduction study's budget: 10,000 steps (160,000 images: 2.7%), the np-RNN
           cuts compressed to 33% and 66% of the steps, 2 seeds.
  smoke    a tiny run for the tests.
"""

from experiments.configs import addition
from nprnn_jax import config as config_lib

STEPS_PER_EPOCH = 60_000 // 16  # 3,750


def paper():
    config = config_lib.base_config("mnist")
    config.inits = ("np", "irnn")
    config.batch_size = 16
    config.optimizer = "sgd"
    config.learning_rates = (1e-4,)
    config.lr_schedule = "step"
    config.lr_cut_factor = 0.1
    config.lr_cut_fractions = (0.33, 0.66)  # after 33 and 66 of the 100 epochs
    config.clip_norm = 1.0
    config.num_steps = 100 * STEPS_PER_EPOCH
    config.eval_every = STEPS_PER_EPOCH
    config.num_seeds = 1
    config.test_size = 0
    config.per_init.irnn.optimizer = "rmsprop"
    config.per_init.irnn.learning_rates = (1e-6,)
    config.per_init.irnn.lr_schedule = "constant"
    return config


def paper_summed_loss():
    """The paper's protocol, np-RNN alone, with the minibatch's summed loss as the objective
    (the paper does not say mean or sum: with SGD at batch 16 the sum's steps are 16 times
    larger, before clipping at norm 1)."""
    config = paper()
    config.inits = ("np",)
    config.loss_reduction = "sum"
    return config


def paper_standardized():
    """The paper's protocol, np-RNN alone, on standardized pixels (mean 0, std 1 over the
    training pool: the background about -0.42 instead of 0; the paper does not say)."""
    config = paper()
    config.inits = ("np",)
    config.pixels = "standardized"
    return config


def cpu(num_steps: int = 10_000, num_seeds: int = 2):
    config = paper()
    config.num_steps = num_steps
    config.eval_every = num_steps // 4
    config.num_seeds = num_seeds
    return config


def smoke():
    config = cpu(num_steps=40, num_seeds=2)
    config.eval_every = 20
    config.lr_cut_fractions = (0.5, 0.75)  # steps 20 and 30
    config.hidden_size = 16
    config.test_size = 200
    config.learning_rates = (1e-3,)
    config.per_init.irnn.learning_rates = (1e-3,)
    config.figures = False  # the tests draw figures where they check them (--config.figures=true)
    return config


def named_configs():
    return {"default": lambda: cpu(num_steps=1000), "paper": paper, "paper_summed_loss": paper_summed_loss,
            "paper_standardized": paper_standardized, "cpu": cpu, "smoke": smoke}


def get_config(name=None):
    return addition.pick(named_configs(), name)
