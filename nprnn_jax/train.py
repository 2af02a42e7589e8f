"""The training engine: a whole run is a pure function of a PRNG key.

In the PureJaxRL shape::

    trainer = make_train(config, task)
    final_state, metrics = trainer.train(key, hparams)         # one run
    grid = jax.jit(jax.vmap(jax.vmap(trainer.train, (0, None)), (None, 0)))

Every loop inside is a `lax.scan`, and the hyperparameters that vary across a
grid (learning rate, clip norm) are arrays in ``hparams`` fed to optax through
`optax.inject_hyperparams`, so a (learning rate x seed) grid is one compiled
program. `nprnn_jax.runner` executes such a grid in segments with evaluation,
checkpoints and resumption.

Data parallelism: with ``batch_axis`` set, `Trainer.step` runs inside a
`jax.shard_map` over that mesh axis; every device draws the same minibatch
(same key), keeps its own equal share of the rows, and the loss and gradients
are averaged over the devices (one all-reduce, `parallel.pmean_flat`) before the
update, so each device holds the same parameters and the run equals the
unsharded one up to float32 rounding. One run then uses every core of a CPU (or
every GPU). It needs a task loss that is a mean over examples, and
``batch_size`` a multiple of the axis size.

Divergence: a run whose loss, gradients or new parameters are not finite is
frozen at that step (its parameters and optimizer state stop changing) and
marked ``diverged``; nothing it does touches the other runs of the grid.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from nprnn_jax import parallel, rnn
from nprnn_jax.tasks import TRAIN_STREAM, Task

OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Static settings of a training run (the grid's varying ones live in `hparams`).

    Attributes:
      preset: one of `rnn.PRESETS`.
      hidden_size: N.
      batch_size: training minibatch.
      num_steps: training steps.
      eval_every: steps per segment (evaluation, checkpoint, progress).
      optimizer: one of OPTIMIZERS; "momentum" is SGD with momentum `momentum`.
      momentum: for "momentum" (and RMSprop's momentum).
      unroll: scan unroll of the recurrence.
      backward: "custom" (hand-written VJP) or "autodiff"; see `rnn.RNNConfig`.
      remat_every: rematerialize all but every k-th state (0: off); see `rnn.RNNConfig`.
      bptt_chunk: BPTT in chunks of k steps (-1: auto, 0: off); see `rnn.RNNConfig`.
      eval_batch_size: test examples run through the network at a time in `evaluate`
        (memory: a whole test set of 10,000 sequences at once held gigabytes).
    """

    preset: str = "np"
    hidden_size: int = 100
    batch_size: int = 16
    num_steps: int = 1000
    eval_every: int = 100
    optimizer: str = "sgd"
    momentum: float = 0.9
    unroll: int = 1
    backward: str = "custom"
    remat_every: int = 0
    bptt_chunk: int = -1
    eval_batch_size: int = 1000

    def __post_init__(self):
        rnn.get_preset(self.preset)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        rnn.check_backward_settings(self.backward, self.remat_every, self.bptt_chunk)
        for field in ("hidden_size", "batch_size", "num_steps", "eval_every", "unroll", "eval_batch_size"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive int; got {value!r}")
        if self.num_steps % self.eval_every:
            raise ValueError(f"num_steps={self.num_steps} must be a multiple of "
                             f"eval_every={self.eval_every} (every segment has the same length, "
                             "so the grid compiles once)")


class TrainState(NamedTuple):
    """Everything a run needs to continue: checkpoint this and nothing else."""

    params: Any
    opt_state: Any
    key: jax.Array          # raw uint32 PRNG key of the run's data stream
    step: jax.Array         # steps taken (counting frozen steps of a diverged run)
    diverged: jax.Array     # bool
    diverged_step: jax.Array  # the step at which it diverged, -1 if it has not


def hparams(learning_rate, clip_norm=1.0) -> dict:
    """The per-run hyperparameters as arrays (vmap these for a grid)."""
    return {"learning_rate": jnp.asarray(learning_rate, jnp.float32),
            "clip_norm": jnp.asarray(clip_norm, jnp.float32)}


def _base_optimizer(config: TrainConfig) -> Callable[[Any], optax.GradientTransformation]:
    if config.optimizer == "sgd":
        return lambda lr: optax.sgd(lr)
    if config.optimizer == "momentum":
        return lambda lr: optax.sgd(lr, momentum=config.momentum)
    if config.optimizer == "rmsprop":
        return lambda lr: optax.rmsprop(lr)
    return lambda lr: optax.adam(lr)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """`clip_by_global_norm` then the named optimizer, hyperparameters injected as arrays."""
    base = _base_optimizer(config)

    def build(learning_rate, clip_norm):
        return optax.chain(optax.clip_by_global_norm(clip_norm), base(learning_rate))

    return optax.inject_hyperparams(build)


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
              if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves))


@dataclasses.dataclass(frozen=True)
class Trainer:
    """Pure functions of one run; vmap them for seeds and hyperparameters."""

    config: TrainConfig
    task: Task
    batch_axis: Optional[str] = None  # mesh axis that splits the minibatch (see the module doc)

    @property
    def rnn_config(self) -> rnn.RNNConfig:
        return rnn.RNNConfig(input_size=self.task.input_size, hidden_size=self.config.hidden_size,
                             output_size=self.task.output_size, preset=self.config.preset,
                             unroll=self.config.unroll, backward=self.config.backward,
                             remat_every=self.config.remat_every, bptt_chunk=self.config.bptt_chunk)

    def init(self, key: jax.Array, hp: dict) -> TrainState:
        """The initial state of the run with PRNG ``key`` (raw uint32[2])."""
        k_params, k_data = jax.random.split(jax.random.fold_in(key, TRAIN_STREAM))
        params = rnn.init_params(k_params, self.rnn_config)
        opt_state = make_optimizer(self.config)(**hp).init(params)
        return TrainState(params, opt_state, k_data, jnp.zeros((), jnp.int32),
                          jnp.zeros((), bool), jnp.full((), -1, jnp.int32))

    def loss(self, params, batch) -> jax.Array:
        predictions = rnn.apply(params, batch["xs"], self.rnn_config, batch.get("lengths"))
        return self.task.loss(predictions, batch)

    def step(self, state: TrainState, hp: dict, data=None):
        """One SGD step; returns (new state, training loss of the step).

        ``data`` is ``task.train_data()`` (pass it as an argument of the jitted
        program so that a data set is not baked into it as a constant).
        """
        key, k_batch = jax.random.split(state.key)
        batch = self.task.sample(k_batch, self.config.batch_size, data)
        if self.batch_axis is None:
            loss, grads = jax.value_and_grad(self.loss)(state.params, batch)
        else:
            local = parallel.local_rows(batch, self.batch_axis)
            loss, grads = jax.value_and_grad(self.loss)(state.params, local)
            loss, grads = parallel.pmean_flat((loss, grads), self.batch_axis)  # one all-reduce
        # optax.inject_hyperparams reads the values from opt_state.hyperparams.
        optimizer = make_optimizer(self.config)(**hp)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        finite = jnp.isfinite(loss) & _all_finite(grads) & _all_finite(params)
        bad = state.diverged | ~finite
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(bad, o, n), new, old)
        new_state = TrainState(
            params=keep(params, state.params),
            opt_state=keep(opt_state, state.opt_state),
            key=key,
            step=state.step + 1,
            diverged=bad,
            diverged_step=jnp.where(~state.diverged & bad, state.step, state.diverged_step),
        )
        return new_state, jnp.where(bad, jnp.nan, loss)

    def run(self, state: TrainState, hp: dict, num_steps: int, data=None):
        """``num_steps`` steps as a `lax.scan`; returns (state, mean loss of the finite steps)."""

        def body(carry, _):
            return self.step(carry, hp, data)

        state, losses = jax.lax.scan(body, state, None, length=num_steps)
        finite = jnp.isfinite(losses)
        mean_loss = jnp.sum(jnp.where(finite, losses, 0.0)) / jnp.maximum(jnp.sum(finite), 1)
        return state, jnp.where(jnp.any(finite), mean_loss, jnp.nan)

    def predict(self, params, inputs) -> jax.Array:
        """Network outputs for ``inputs`` (``xs`` and optional ``lengths``), computed
        ``eval_batch_size`` examples at a time (`lax.map`), so that memory does not grow
        with the number of examples."""
        xs, lengths = inputs["xs"], inputs.get("lengths")
        count = xs.shape[0]
        size = min(self.config.eval_batch_size, count)
        pad = (-count) % size  # < size <= count: pad with copies of the first rows
        batches = {"xs": xs} if lengths is None else {"xs": xs, "lengths": lengths}
        batches = jax.tree.map(
            lambda x: jnp.concatenate([x, x[:pad]]).reshape((-1, size) + x.shape[1:]), batches)
        outputs = jax.lax.map(
            lambda b: rnn.apply(params, b["xs"], self.rnn_config, b.get("lengths")), batches)
        return outputs.reshape((-1,) + outputs.shape[2:])[:count]

    def evaluate(self, params, test_set) -> dict:
        """Test metrics of ``params`` on the task's test set."""
        predictions = self.predict(params, test_set)
        metrics = dict(self.task.evaluate(predictions, test_set))
        metrics["test_loss"] = self.task.loss(predictions, test_set)
        return metrics

    def train(self, key: jax.Array, hp: dict, data=None):
        """The whole run: init, then `num_steps` steps in segments of `eval_every`.

        Returns (final state, per-segment mean training losses [num_segments]).
        """
        state = self.init(key, hp)
        segments = self.config.num_steps // self.config.eval_every

        def segment(carry, _):
            return self.run(carry, hp, self.config.eval_every, data)

        return jax.lax.scan(segment, state, None, length=segments)


def make_train(config: TrainConfig, task: Task, batch_axis: Optional[str] = None) -> Trainer:
    """Returns the `Trainer` of ``config`` on ``task``; ``trainer.train(key, hparams)`` is pure.

    ``batch_axis``: a mesh axis name to split each minibatch over (data parallelism
    inside one run; call the trainer's functions inside a `jax.shard_map` over it).
    """
    return Trainer(config, task, batch_axis)
