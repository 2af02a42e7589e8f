"""A task of one's own, outside the library (the tests' example of what a stranger writes): the
target is the mean of a sequence of uniform values, read at its last step.

One module: the task (`MeanTask`, a `nprnn_jax.tasks.Task`) and its declaration, registered by
name. Its setting ``seq_len`` is its own: another default (12) and another rule (>= 1) than the
marked-pair tasks' ``seq_len``. Its config file (``mean.py`` beside it) imports this module.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from nprnn_jax import checks, tasks


@dataclasses.dataclass(frozen=True)
class MeanTask(tasks.Task):
    seq_len: int = 12
    test_size: int = 256
    tolerance: float = 0.04

    name = "mean"
    input_size = 1
    output_size = 1
    loss_type = "mse"
    metric = "test_accuracy"
    higher_is_better = True

    def sample(self, key, batch_size, data=None):
        xs = jax.random.uniform(key, (batch_size, self.seq_len, 1))
        return {"xs": xs, "ys": xs.mean(axis=1)}

    def seq_lens(self):
        return (self.seq_len, self.seq_len)

    def _fixed(self, stream):
        return self.sample(jax.random.fold_in(jax.random.PRNGKey(0), stream), self.test_size)

    def test_set(self):
        return self._fixed(tasks.TEST_STREAM)

    def validation_set(self):
        return self._fixed(tasks.VALIDATION_STREAM)

    def evaluate(self, predictions, batch):
        error = predictions[:, 0] - batch["ys"][:, 0]
        return {"test_mse": jnp.mean(error ** 2), "test_accuracy": jnp.mean(jnp.abs(error) < self.tolerance)}

    def constant_predictor_metric(self):
        test = self.test_set()
        return float(self.evaluate(jnp.full_like(test["ys"], 0.5), test)["test_accuracy"])


TASK = tasks.register(tasks.TaskSpec(
    name="mean",
    settings=(checks.Setting("seq_len", 12, "values per sequence", checks.integer(1)),),
    build=lambda config: (MeanTask(seq_len=config.seq_len, test_size=config.test_size), {}),
    title=lambda config: f"mean of {config.seq_len} values",
    metric_text="share of test sequences within 0.04",
))
