"""The training engine: a whole run is a pure function of a PRNG key.

In the PureJaxRL shape::

    trainer = make_train(config, task)
    final_state, metrics = trainer.train(key, hparams)         # one run
    grid = jax.jit(jax.vmap(jax.vmap(trainer.train, (0, None)), (None, 0)))

Every loop inside is a `lax.scan`, and the hyperparameters that vary across a
grid (base learning rate, clip norm, dropout rate) are arrays in ``hparams``
(the optimizer's through `optax.inject_hyperparams`), so a (hyperparameters x
seed) grid is one compiled program. `nprnn_jax.runner` executes such a grid in
segments with evaluation, checkpoints and resumption.

Learning-rate schedule: the rate of step s is ``learning_rate * lr_cut_factor **
(number of lr_cut_steps <= s)``: the run's base rate times an optax schedule
(`lr_schedule`) that `optax.inject_hyperparams` evaluates at each update, so
every base rate of a grid follows the same schedule in one program.

Training data: fresh batches from the task's generator, or, for a task with a
fixed pool (`Task.train_data`), the pool read in epochs (`tasks.epoch_indices`).

Dropout: with ``dropout=True`` the last hidden state is dropped before the
output layer at rate ``hparams["dropout"]`` (inverted dropout, the mask drawn for
the whole minibatch); a rate of 0 gives exactly the run without dropout.
Evaluation never drops.

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

from nprnn_jax import checks, parallel, rnn, tasks
from nprnn_jax.tasks import TRAIN_STREAM, Task

OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
# How the gradient is clipped at ``clip_norm``: by its global norm (`optax.clip_by_global_norm`),
# or each entry to [-clip_norm, clip_norm] (`optax.clip`, the common reading of "clip 10" in
# the RNN code of the paper's time).
CLIP_BY = ("global_norm", "value")
# The objective the gradient is taken of: the minibatch's mean loss, or its sum (the mean
# times batch_size: with SGD a step batch_size times larger, the other reading of a paper
# that does not say which). The training loss logged is the mean either way.
LOSS_REDUCTIONS = ("mean", "sum")
DROPOUT_STREAM = 5  # the dropout mask of a step: fold_in(the step's batch key, DROPOUT_STREAM)

# The engine's values: their defaults and rules, declared here and read by `nprnn_jax.config`
# (the command line's settings of the same names). The grid's (learning rates, clip norm,
# dropout rates, seeds) are the per-run `hparams` and the seed axis of `runner.Grid`.
DEFAULTS = {"hidden_size": 100, "input_init_n": "hidden", "batch_size": 16, "num_steps": 10_000,
            "eval_every": 2_000, "optimizer": "sgd", "momentum": 0.9, "lr_cut_factor": 0.1, "unroll": 1,
            "backward": "custom", "remat_every": 0, "eval_batch_size": 1000,
            "learning_rates": (0.01,), "num_seeds": 4, "clip_norm": 10.0, "clip_by": "global_norm",
            "loss_reduction": "mean", "dropout_rates": (0.0,), "seed_offset": 0}
RULES = {"hidden_size": checks.integer(1), "input_init_n": checks.one_of(rnn.INPUT_INIT_NS),
         "batch_size": checks.integer(1), "num_steps": checks.integer(1), "eval_every": checks.integer(1),
         "optimizer": checks.one_of(OPTIMIZERS), "momentum": checks.number(0, 1, high_open=True),
         "lr_cut_factor": checks.number(0, 1, low_open=True), "unroll": checks.integer(1),
         "backward": checks.one_of(rnn.BACKWARDS), "remat_every": checks.integer(0),
         "eval_batch_size": checks.integer(1),
         "learning_rates": checks.sequence(checks.number(0, low_open=True), unique=True),
         "num_seeds": checks.integer(1), "clip_norm": checks.number(0, low_open=True),
         "clip_by": checks.one_of(CLIP_BY), "loss_reduction": checks.one_of(LOSS_REDUCTIONS),
         "dropout_rates": checks.sequence(checks.number(0, 1, high_open=True), unique=True),
         "seed_offset": checks.integer(0)}
_SETTING_DEFAULT = DEFAULTS


def check_cut_steps(steps: tuple, num_steps: int, where: str = "", error=ValueError) -> tuple:
    """``steps`` if they are increasing steps in [1, num_steps), else ``error`` naming them."""
    steps = tuple(steps)
    if steps and (list(steps) != sorted(set(steps)) or steps[0] < 1 or steps[-1] >= num_steps):
        raise error(f"{where}lr_cut_steps={steps}: must be increasing steps in [1, num_steps={num_steps})")
    return steps


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Static settings of one init's runs (the grid's varying ones live in `hparams`).

    The fields are the engine's values (`DEFAULTS`, checked by `RULES`; the command line's
    settings of the same names), resolved for one init (``init``), ``lr_cut_steps`` the
    explicit steps of the cuts (empty: constant rate), and ``dropout`` whether the
    grid has dropout rates. How the recurrence runs (unroll, backward pass, chunks) is not
    here: it is the trainer's `rnn.Execution` (`make_train`), from the execution plan.
    """

    init: str = "np"
    hidden_size: int = _SETTING_DEFAULT["hidden_size"]
    input_init_n: str = _SETTING_DEFAULT["input_init_n"]
    batch_size: int = _SETTING_DEFAULT["batch_size"]
    num_steps: int = _SETTING_DEFAULT["num_steps"]
    eval_every: int = _SETTING_DEFAULT["eval_every"]
    # a name ("sgd", "momentum", "rmsprop", "adam"), a factory ``fn(learning_rate) ->
    # optax.GradientTransformation`` (the grid's learning rates and cuts apply), or an
    # `optax.GradientTransformation` used as it is (its own rate; the grid's does not apply)
    optimizer: Any = _SETTING_DEFAULT["optimizer"]
    momentum: float = _SETTING_DEFAULT["momentum"]
    lr_cut_factor: float = _SETTING_DEFAULT["lr_cut_factor"]
    lr_cut_steps: tuple = ()
    dropout: bool = False
    eval_batch_size: int = _SETTING_DEFAULT["eval_batch_size"]
    clip_by: str = _SETTING_DEFAULT["clip_by"]
    loss_reduction: str = _SETTING_DEFAULT["loss_reduction"]

    def __post_init__(self):
        rnn.get_init(self.init)
        for name in ("hidden_size", "input_init_n", "batch_size", "num_steps", "eval_every", "optimizer",
                     "momentum", "lr_cut_factor", "eval_batch_size", "clip_by", "loss_reduction"):
            if name == "optimizer" and not isinstance(self.optimizer, str):
                if not (callable(self.optimizer) or isinstance(self.optimizer, optax.GradientTransformation)):
                    raise ValueError(f"optimizer={self.optimizer!r}: give one of {', '.join(OPTIMIZERS)}, a "
                                     "factory fn(learning_rate) -> optax.GradientTransformation, or an "
                                     "optax.GradientTransformation")
                continue
            object.__setattr__(self, name, checks.checked(name, getattr(self, name), RULES[name]))
        if self.num_steps % self.eval_every:
            raise ValueError(f"num_steps={self.num_steps} must be a multiple of "
                             f"eval_every={self.eval_every} (every segment has the same length, "
                             "so the grid compiles once)")
        object.__setattr__(self, "lr_cut_steps", check_cut_steps(self.lr_cut_steps, self.num_steps))


class TrainState(NamedTuple):
    """Everything a run needs to continue: checkpoint this and nothing else."""

    params: Any
    opt_state: Any
    key: jax.Array          # raw uint32 PRNG key of the run's data stream
    order_key: jax.Array    # raw uint32 PRNG key of the run's epoch orders (pool tasks)
    step: jax.Array         # steps taken (counting frozen steps of a diverged run)
    diverged: jax.Array     # bool
    diverged_step: jax.Array  # the step at which it diverged, -1 if it has not


def hparams(learning_rate, clip_norm=1.0, dropout=0.0) -> dict:
    """The per-run hyperparameters as arrays (vmap these for a grid): the base
    learning rate, the clip norm and the dropout rate, broadcast to one shape."""
    values = {"learning_rate": learning_rate, "clip_norm": clip_norm, "dropout": dropout}
    shape = jnp.broadcast_shapes(*(jnp.shape(v) for v in values.values()))
    return {k: jnp.broadcast_to(jnp.asarray(v, jnp.float32), shape) for k, v in values.items()}


def lr_schedule(config: TrainConfig) -> optax.Schedule:
    """The learning-rate multiplier of every step as an optax schedule of the update count:
    1 (constant), or ``lr_cut_factor`` multiplied in at each of ``lr_cut_steps``
    (`optax.piecewise_constant_schedule`). A run's rate is its base rate times this."""
    if not config.lr_cut_steps:
        return optax.constant_schedule(1.0)
    return optax.piecewise_constant_schedule(1.0, {step: config.lr_cut_factor for step in config.lr_cut_steps})


def learning_rate_at(config: TrainConfig, base_rate, step) -> jax.Array:
    """The learning rate of step ``step`` (0-based) for base rate ``base_rate``."""
    return jnp.asarray(base_rate, jnp.float32) * lr_schedule(config)(jnp.asarray(step, jnp.int32))


def _base_optimizer(config: TrainConfig) -> Callable[[Any], optax.GradientTransformation]:
    if isinstance(config.optimizer, optax.GradientTransformation):
        return lambda lr: config.optimizer
    if callable(config.optimizer):
        return config.optimizer
    if config.optimizer == "sgd":
        return lambda lr: optax.sgd(lr)
    if config.optimizer == "momentum":
        return lambda lr: optax.sgd(lr, momentum=config.momentum)
    if config.optimizer == "rmsprop":
        return lambda lr: optax.rmsprop(lr)
    return lambda lr: optax.adam(lr)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Clipping (`optax.clip_by_global_norm`, or `optax.clip` per entry with ``clip_by="value"``)
    then the named optimizer, hyperparameters injected as arrays."""
    base = _base_optimizer(config)
    clip = optax.clip if config.clip_by == "value" else optax.clip_by_global_norm

    def build(learning_rate, clip_norm):
        return optax.chain(clip(clip_norm), base(learning_rate))

    return optax.inject_hyperparams(build)


def legacy_layout(state: TrainState) -> TrainState:
    """``state`` in the layout of checkpoints written before the schedule was an optax schedule
    (up to 7e5892f): the same, without the schedule's own count in ``opt_state``
    (``hyperparams_states``). A restore template for such checkpoints; see `from_legacy_layout`."""
    return state._replace(opt_state=state.opt_state._replace(hyperparams_states={}))


def from_legacy_layout(restored: TrainState, template: TrainState) -> TrainState:
    """A state restored with `legacy_layout(template)`, in ``template``'s (today's) layout. The
    schedule's count is the optimizer's update count (both count every update and stop together
    when a run diverges), so the resumed run continues exactly as the old engine would have."""
    count = restored.opt_state.count
    # A copy each: one buffer in two places of a state would be donated twice to the next segment.
    wrapped = {name: value._replace(count=jnp.copy(count)) for name, value in template.opt_state.hyperparams_states.items()}
    return restored._replace(opt_state=restored.opt_state._replace(hyperparams_states=wrapped))


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
              if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves))


def initial_params(key: jax.Array, rnn_config: rnn.RNNConfig) -> dict:
    """The network parameters a run with PRNG ``key`` (raw uint32[2]) starts from."""
    k_params, _ = jax.random.split(jax.random.fold_in(key, TRAIN_STREAM))
    return rnn.init_params(k_params, rnn_config)


@dataclasses.dataclass(frozen=True)
class Trainer:
    """Pure functions of one run; vmap them for seeds and hyperparameters."""

    config: TrainConfig
    task: Task
    batch_axis: Optional[str] = None  # mesh axis that splits the minibatch (see the module doc)
    execution: rnn.Execution = rnn.DEFAULT_EXECUTION  # how the recurrence runs (speed only)

    @property
    def rnn_config(self) -> rnn.RNNConfig:
        return rnn.RNNConfig(input_size=self.task.input_size, hidden_size=self.config.hidden_size,
                             output_size=self.task.output_size, init=self.config.init,
                             input_init_n=self.config.input_init_n)

    def init(self, key: jax.Array, hp: dict) -> TrainState:
        """The initial state of the run with PRNG ``key`` (raw uint32[2])."""
        k_params, k_data = jax.random.split(jax.random.fold_in(key, TRAIN_STREAM))
        params = initial_params(key, self.rnn_config)
        opt_state = self._optimizer(hp).init(params)
        return TrainState(params, opt_state, k_data, jax.random.fold_in(key, tasks.ORDER_STREAM),
                          jnp.zeros((), jnp.int32), jnp.zeros((), bool), jnp.full((), -1, jnp.int32))

    def _optimizer(self, hp):
        # The run's rate at each update, evaluated by optax.inject_hyperparams at its own update
        # count (the step, for a run that has not diverged; a diverged run is frozen).
        return make_optimizer(self.config)(
            learning_rate=lambda count: learning_rate_at(self.config, hp["learning_rate"], count),
            clip_norm=hp["clip_norm"])

    def loss(self, params, batch) -> jax.Array:
        """Mean training loss; ``batch["keep"]`` (if present) scales the last hidden state (dropout)."""
        h = rnn.final_hidden(params, batch["xs"], self.rnn_config, batch.get("lengths"), self.execution)
        if "keep" in batch:
            h = h * batch["keep"]
        return self.task.loss(rnn.readout(params, h), batch)

    def batch(self, state: TrainState, k_batch, hp: dict, data=None) -> dict:
        """The training batch of ``state``'s step: pool rows in epochs, or fresh examples;
        with dropout, ``keep``: the inverted-dropout scale of every hidden unit."""
        if data:
            batch = self.task.take(data, tasks.epoch_indices(state.order_key, state.step,
                                                             self.config.batch_size, data["order"]))
        else:
            batch = self.task.sample(k_batch, self.config.batch_size, data)
        if self.config.dropout:
            rate = hp["dropout"]
            draw = jax.random.uniform(jax.random.fold_in(k_batch, DROPOUT_STREAM),
                                      (self.config.batch_size, self.config.hidden_size))
            batch = dict(batch, keep=jnp.where(draw >= rate, 1.0 / (1.0 - rate), 0.0))
        return batch

    def step(self, state: TrainState, hp: dict, data=None):
        """One step; returns (new state, training loss of the step).

        ``data`` is ``task.train_data()`` (pass it as an argument of the jitted
        program so that a data set is not baked into it as a constant).
        """
        key, k_batch = jax.random.split(state.key)
        batch = self.batch(state, k_batch, hp, data)
        if self.batch_axis is None:
            loss, grads = jax.value_and_grad(self.loss)(state.params, batch)
        else:
            local = parallel.local_rows(batch, self.batch_axis)
            loss, grads = jax.value_and_grad(self.loss)(state.params, local)
            loss, grads = parallel.pmean_flat((loss, grads), self.batch_axis)  # one all-reduce
        if self.config.loss_reduction == "sum":
            # the gradient of the whole minibatch's summed loss: the mean's times batch_size
            # (the loss logged stays the mean)
            grads = jax.tree.map(lambda g: g * self.config.batch_size, grads)
        # The scheduled rate of this update stays readable in opt_state.hyperparams after it.
        updates, opt_state = self._optimizer(hp).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        finite = jnp.isfinite(loss) & _all_finite(grads) & _all_finite(params)
        bad = state.diverged | ~finite
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(bad, o, n), new, old)
        new_state = TrainState(
            params=keep(params, state.params),
            opt_state=keep(opt_state, state.opt_state),
            key=key,
            order_key=state.order_key,
            step=state.step + 1,
            diverged=bad,
            diverged_step=jnp.where(~state.diverged & bad, state.step, state.diverged_step),
        )
        return new_state, jnp.where(bad, jnp.nan, loss)

    def run(self, state: TrainState, hp: dict, num_steps: int, data=None, log_every: Optional[int] = None):
        """``num_steps`` steps as a `lax.scan`; returns (state, mean loss of the finite steps),
        or with ``log_every`` (a divisor of ``num_steps``) the mean loss of each block of
        ``log_every`` steps, ``[num_steps // log_every]`` (NaN for a block with no finite step)."""

        def body(carry, _):
            return self.step(carry, hp, data)

        state, losses = jax.lax.scan(body, state, None, length=num_steps)
        blocks = losses.reshape(-1, log_every or num_steps)
        finite = jnp.isfinite(blocks)
        means = jnp.sum(jnp.where(finite, blocks, 0.0), -1) / jnp.maximum(jnp.sum(finite, -1), 1)
        means = jnp.where(jnp.any(finite, -1), means, jnp.nan)
        return state, (means if log_every else means[0])

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
            lambda b: rnn.apply(params, b["xs"], self.rnn_config, b.get("lengths"), self.execution), batches)
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


def make_train(config: TrainConfig, task: Task, batch_axis: Optional[str] = None,
               execution: rnn.Execution = rnn.DEFAULT_EXECUTION) -> Trainer:
    """Returns the `Trainer` of ``config`` on ``task``; ``trainer.train(key, hparams)`` is pure.

    ``batch_axis``: a mesh axis name to split each minibatch over (data parallelism
    inside one run; call the trainer's functions inside a `jax.shard_map` over it).
    ``execution``: how the recurrence runs (`rnn.Execution`; speed only), the execution
    plan's `recurrence` in an experiment.
    """
    for length in task.seq_lens():
        execution.check_length(length)
    return Trainer(config, task, batch_axis, execution)
