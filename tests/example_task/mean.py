r"""The config of the example task (``mean_task.py`` beside it): the one file, with that module,
that a task of one's own needs.

    python -m experiments.main --config=tests/example_task/mean.py --workdir=/tmp/mean

Named configs: default (np and irnn, 200 steps), smoke (the tests': 40 steps).
"""

from nprnn_jax import config as config_lib
from tests.example_task import mean_task  # registers the task  # noqa: F401


def named_configs():
    def default():
        config = config_lib.base_config("mean")
        config.inits = ("np", "irnn")
        config.hidden_size = 16
        config.learning_rates = (0.01,)
        config.num_seeds = 2
        config.num_steps = 200
        config.eval_every = 100
        config.test_size = 256
        config.figures = False
        return config

    def smoke():
        config = default()
        config.num_steps, config.eval_every, config.tensorboard = 40, 20, False
        return config
    return {"default": default, "smoke": smoke}


def get_config(name=None):
    named = named_configs()
    if (name or "default") not in named:
        raise ValueError(f"unknown named config {name!r}; valid: {', '.join(named)}")
    return named[name or "default"]()
