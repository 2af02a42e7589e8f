"""Tasks: where a training run's batches and its fixed test set come from.

A task generates (or samples) batches on device from a PRNG key, inside the
jitted training program, so every seed has its own stream and the host never
feeds batches. Its test set is drawn once from a key kept apart from every
training key (``fold_in(PRNGKey(test_seed), TEST_STREAM)``; training keys use
``TRAIN_STREAM``).

A batch is a dict: ``xs [batch, time, input_size]``, ``ys`` (``[batch, 1]``
floats for regression, ``[batch]`` int labels for classification) and, for
variable-length tasks, ``lengths [batch]``.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import jax
import jax.numpy as jnp
import optax

TRAIN_STREAM = 1
TEST_STREAM = 2

Batch = Mapping[str, jax.Array]


class Task:
    """Interface of a task. Subclasses set the attributes and implement `sample`.

    Attributes:
      name: the task's name.
      input_size, output_size: of the network.
      loss_type: "mse" (regression) or "xent" (classification).
      metric: the name of the headline test metric (a key of `evaluate`).
      higher_is_better: whether a larger `metric` is better.
    """

    name: str
    input_size: int
    output_size: int
    loss_type: str
    metric: str
    higher_is_better: bool

    def sample(self, key: jax.Array, batch_size: int) -> Batch:
        """A training batch drawn from ``key`` (on device, jittable)."""
        raise NotImplementedError

    def test_set(self) -> Batch:
        """The fixed test set (the same arrays on every call)."""
        raise NotImplementedError

    def loss(self, predictions: jax.Array, batch: Batch) -> jax.Array:
        """Mean training loss of ``predictions [batch, output_size]``."""
        if self.loss_type == "mse":
            return jnp.mean((predictions - batch["ys"]) ** 2)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(predictions, batch["ys"]))

    def evaluate(self, predictions: jax.Array, batch: Batch) -> dict:
        """Test metrics (scalars) of ``predictions`` on ``batch``."""
        raise NotImplementedError

    def describe(self) -> dict:
        """A JSON-able description, recorded in the workdir's config."""
        return {"name": self.name, **{k: v for k, v in vars(self).items()
                                      if isinstance(v, (int, float, str, bool))}}


MARKER_PLACEMENTS = ("halves", "uniform")


@dataclasses.dataclass(frozen=True)
class _MarkedPairTask(Task):
    """Addition/multiplication of two marked values (Hochreiter & Schmidhuber; Le et al.).

    Each step carries ``[value ~ U[0, 1], marker in {0, 1}]``; exactly two steps
    are marked; the target, read at the last step, combines the two marked values.

    Marker placement: "halves" puts the first marker uniformly in the first half
    and the second in the second half; "uniform" puts both at two distinct
    positions drawn uniformly from the whole sequence.
    """

    seq_len: int = 200
    marker_placement: str = "halves"
    test_size: int = 10_000
    test_seed: int = 0
    solved_threshold: float = 0.01
    accuracy_tolerance: float = 0.04

    input_size = 2
    output_size = 1
    loss_type = "mse"
    metric = "test_mse"
    higher_is_better = False

    def __post_init__(self):
        if self.marker_placement not in MARKER_PLACEMENTS:
            raise ValueError(f"unknown marker_placement {self.marker_placement!r}; "
                             f"valid: {', '.join(MARKER_PLACEMENTS)}")
        if not isinstance(self.seq_len, int) or self.seq_len < 2:
            raise ValueError(f"seq_len must be an int >= 2; got {self.seq_len!r}")
        if not isinstance(self.test_size, int) or self.test_size < 1:
            raise ValueError(f"test_size must be a positive int; got {self.test_size!r}")

    def _combine(self, a, b):
        raise NotImplementedError

    def _one(self, key):
        k_val, k_pos = jax.random.split(key)
        values = jax.random.uniform(k_val, (self.seq_len,))
        if self.marker_placement == "halves":
            half = self.seq_len // 2
            k1, k2 = jax.random.split(k_pos)
            first = jax.random.randint(k1, (), 0, half)
            second = jax.random.randint(k2, (), half, self.seq_len)
        else:
            first, second = jax.random.choice(k_pos, self.seq_len, (2,), replace=False)
        markers = jnp.zeros((self.seq_len,)).at[first].set(1.0).at[second].set(1.0)
        xs = jnp.stack([values, markers], axis=-1)
        ys = self._combine(values[first], values[second])[None]
        return xs, ys

    def sample(self, key, batch_size):
        xs, ys = jax.vmap(self._one)(jax.random.split(key, batch_size))
        return {"xs": xs, "ys": ys}

    def test_set(self):
        key = jax.random.fold_in(jax.random.PRNGKey(self.test_seed), TEST_STREAM)
        return jax.jit(self.sample, static_argnums=1)(key, self.test_size)

    def evaluate(self, predictions, batch):
        error = predictions[:, 0] - batch["ys"][:, 0]
        mse = jnp.mean(error ** 2)
        return {"test_mse": mse,
                "test_accuracy": jnp.mean(jnp.abs(error) < self.accuracy_tolerance),
                "solved": mse < self.solved_threshold}


@dataclasses.dataclass(frozen=True)
class AdditionTask(_MarkedPairTask):
    """The adding problem: target = sum of the two marked values (predicting 1: MSE ~ 0.167)."""

    name = "addition"

    def _combine(self, a, b):
        return a + b


@dataclasses.dataclass(frozen=True)
class MultiplicationTask(_MarkedPairTask):
    """The multiplication problem: target = product of the marked values (predicting 0.25: MSE ~ 0.049)."""

    name = "multiplication"

    def _combine(self, a, b):
        return a * b
