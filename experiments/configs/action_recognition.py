r"""Configs of action recognition (the paper's Sec. 4.3, Table 3 and Figure 6).

    python -m experiments.action_recognition --config=experiments/configs/action_recognition.py:cpu_BasicMotions

Named configs:
  default     np, irnn, lstm on BasicMotions, RMSprop 1e-3, 4 seeds: a quick look.
  paper       the paper's protocol on precomputed per-frame features (dataset npz:
              {data_dir}/train.npz, test.npz; UCF101 split 1 has 9,537 training videos):
              np, irnn, irnn_scaled, lstm; RMSprop, batch 256, 70 epochs (38 steps each),
              25 at the initial rate, 30 at a tenth, 15 at a hundredth; the grid learning
              rate {1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 1e-2} x dropout {0.5, 0.7, 0.9}; one seed.
  cpu_<set>   the same protocol on a UEA set here (BasicMotions, GunPoint,
              PickupGestureWiimoteZ: 40 or 50 training cases): batch 8 or 10 (5 steps an
              epoch), 70 epochs = 350 steps, cuts after epochs 25 and 55, 3 seeds.
  smoke       a tiny run for the tests.

The paper's "dropout" values are read as drop probabilities (0.9 drops 90% of the
hidden units); the paper does not say which it means.
"""

from experiments.configs import addition
from nprnn_jax import config as config_lib

LEARNING_RATES = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 1e-2)
DROPOUT_RATES = (0.5, 0.7, 0.9)
UEA_TRAIN_SIZES = {"BasicMotions": 40, "GunPoint": 50, "PickupGestureWiimoteZ": 50}


def protocol(dataset: str, batch_size: int, steps_per_epoch: int, num_seeds: int):
    config = config_lib.base_config("action_recognition")
    config.dataset = dataset
    config.inits = ("np", "irnn", "irnn_scaled", "lstm")
    config.optimizer = "rmsprop"
    config.learning_rates = LEARNING_RATES
    config.dropout_rates = DROPOUT_RATES
    config.lr_schedule = "step"
    config.lr_cut_factor = 0.1
    config.lr_cut_steps = (25 * steps_per_epoch, 55 * steps_per_epoch)
    config.batch_size = batch_size
    config.num_steps = 70 * steps_per_epoch
    config.eval_every = 10 * steps_per_epoch
    config.num_seeds = num_seeds
    config.test_size = 0
    config.clip_norm = 10.0
    return config


def paper():
    config = protocol("npz", 256, 38, 1)
    config.eval_every = 38
    return config


def cpu(dataset: str):
    train_size = UEA_TRAIN_SIZES[dataset]
    return protocol(dataset, train_size // 5, 5, 3)


def default():
    config = config_lib.base_config("action_recognition")
    config.inits = ("np", "irnn", "lstm")
    config.optimizer = "rmsprop"
    config.learning_rates = (1e-3,)
    config.num_steps = 1000
    config.eval_every = 250
    config.test_size = 0
    return config


def smoke():
    config = cpu("BasicMotions")
    config.inits = ("np", "lstm")
    config.hidden_size = 16
    config.learning_rates = (3e-3,)
    config.dropout_rates = (0.0, 0.5)
    config.num_seeds = 2
    config.num_steps = 40
    config.eval_every = 20
    config.lr_cut_steps = (20, 30)
    config.figures = False  # the tests draw figures where they check them (--config.figures=true)
    return config


def named_configs():
    named = {"default": default, "paper": paper, "smoke": smoke}
    for dataset in UEA_TRAIN_SIZES:
        named[f"cpu_{dataset}"] = (lambda dataset=dataset: cpu(dataset))
    return named


def get_config(name=None):
    return addition.pick(named_configs(), name)
