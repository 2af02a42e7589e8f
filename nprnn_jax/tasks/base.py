"""What every task shares: the `Task` interface, the marked-pair and classification tasks,
the validation split, and `TaskSpec`, the declaration each task module registers.

Tasks: where a training run's batches and its fixed test set come from.

A task generates (or samples) batches on device from a PRNG key, inside the
jitted training program, so every seed has its own stream and the host never
feeds batches. Its test set is drawn once from a key kept apart from every
training key (``fold_in(PRNGKey(test_seed), TEST_STREAM)``; training keys use
``TRAIN_STREAM``).

A batch is a dict: ``xs [batch, time, input_size]``, ``ys`` (``[batch, 1]``
floats for regression, ``[batch]`` int labels for classification) and, for
variable-length tasks, ``lengths [batch]``.

Validation sets (for choosing a setting, never the test set): a marked-pair task
draws ``test_size`` sequences from a stream of its own
(``fold_in(PRNGKey(test_seed), VALIDATION_STREAM)``), apart from the test set and
every training key; a data set holds out training examples (`hold_out`: MNIST
its last ones, the sequence sets a share of every class), which then are not
trained on.

Training sets: a task either draws fresh examples for every step (the marked-pair
tasks by default) or holds a fixed pool of k training examples (a data set, or
``train_size=k`` generated sequences) and is read in epochs: every epoch visits
each pool example exactly once (`epoch_indices`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from typing import Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nprnn_jax import checks

TRAIN_STREAM = 1
TEST_STREAM = 2
ORDER_STREAM = 3  # a run's epoch orders: fold_in(run key, ORDER_STREAM)
POOL_STREAM = 4   # a generated training pool: fold_in(PRNGKey(data_seed), POOL_STREAM)
VALIDATION_STREAM = 6  # a generated validation set: fold_in(PRNGKey(test_seed), VALIDATION_STREAM)

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

    def train_data(self) -> dict:
        """The fixed training pool (arrays ``xs``, ``ys``, optional ``lengths``, and
        ``order``, a fixed random permutation of the pool), passed to the jitted
        program as an argument rather than baked in as constants; ``{}`` for a task
        that draws fresh examples every step."""
        return {}

    def sample(self, key: jax.Array, batch_size: int, data: Optional[dict] = None) -> Batch:
        """A batch of fresh examples drawn from ``key`` (on device, jittable), for
        tasks without a pool."""
        raise NotImplementedError

    def take(self, data: dict, indices: jax.Array) -> Batch:
        """The training batch of pool rows ``indices`` (jittable)."""
        return {k: v[indices] for k, v in data.items() if k != "order"}

    def seq_lens(self) -> tuple:
        """(training sequence length, test sequence length), padded lengths for data sets."""
        raise NotImplementedError

    def test_set(self) -> Batch:
        """The fixed test set (the same arrays on every call)."""
        raise NotImplementedError

    def validation_set(self) -> Optional[Batch]:
        """The fixed validation set, apart from the training data and the test set (None:
        this task has none)."""
        return None

    def loss(self, predictions: jax.Array, batch: Batch) -> jax.Array:
        """Mean training loss of ``predictions [batch, output_size]``."""
        if self.loss_type == "mse":
            return jnp.mean((predictions - batch["ys"]) ** 2)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(predictions, batch["ys"]))

    def evaluate(self, predictions: jax.Array, batch: Batch) -> dict:
        """Test metrics (scalars) of ``predictions`` on ``batch``."""
        raise NotImplementedError

    def constant_predictor_metric(self) -> float:
        """The headline metric on the test set of the best input-independent prediction
        (the mean target, or the most frequent class): the reference line of the plots."""
        raise NotImplementedError

    def describe(self) -> dict:
        """A JSON-able description, recorded in the workdir's config."""
        return {"name": self.name, **{k: v for k, v in vars(self).items()
                                      if isinstance(v, (int, float, str, bool))}}


def _pool_units(pool_size: int) -> np.ndarray:
    """Multipliers a with gcd(a, k) = 1 (so ``i -> a i + b mod k`` is a bijection of
    [0, k)), small enough that ``a * i`` fits in int32."""
    limit = max(2, min(pool_size, (2 ** 31 - 1) // max(pool_size, 1)))
    units = [a for a in range(1, limit) if math.gcd(a, pool_size) == 1]
    return np.asarray(units or [1], np.int32)


def epoch_indices(order_key: jax.Array, step: jax.Array, batch_size: int, order: jax.Array) -> jax.Array:
    """Pool rows of the training batch at ``step`` when a run reads its pool in epochs.

    Example ``j`` of the batch is the ``g = step * batch_size + j``-th draw of the
    run: epoch ``e = g // k``, position ``i = g % k`` (k the pool size), row
    ``order[(a_e i + b_e) mod k]`` where ``a_e`` (coprime to k) and ``b_e`` are
    drawn from ``fold_in(order_key, e)``. Every epoch is a permutation of the pool
    (a fixed random permutation composed with a per-run, per-epoch random affine
    bijection), at O(batch) cost per step instead of an O(k log k) shuffle.
    """
    k = order.shape[0]
    units = jnp.asarray(_pool_units(k))
    draws = step * batch_size + jnp.arange(batch_size)
    epoch, position = draws // k, draws % k
    keys = jax.vmap(lambda e: jax.random.fold_in(order_key, e))(epoch)
    a = units[jax.vmap(lambda kk: jax.random.randint(kk, (), 0, units.shape[0]))(keys)]
    b = jax.vmap(lambda kk: jax.random.randint(jax.random.fold_in(kk, 1), (), 0, k))(keys)
    return order[((a * position) % k + b) % k]


MARKER_PLACEMENTS = ("halves", "uniform", "first10")


@dataclasses.dataclass(frozen=True)
class MarkedPairTask(Task):
    """Addition/multiplication of two marked values (Hochreiter & Schmidhuber; Le et al.).

    Each step carries ``[value ~ U[0, 1], marker in {0, 1}]``; exactly two steps
    are marked; the target, read at the last step, combines the two marked values.

    Marker placement: "halves" puts the first marker uniformly in the first half
    and the second in the second half; "uniform" puts both at two distinct
    positions drawn uniformly from the whole sequence; "first10" is Hochreiter and
    Schmidhuber's (1997): the first marker uniformly in the first 10 steps, the second
    uniformly in the first half at another step (both in the first half: the target
    must be carried over at least the second half).

    Training data: fresh sequences every step (``train_size=0``), or a fixed pool
    of ``train_size`` sequences drawn from ``data_seed`` (the paper: 100,000, seen
    for several epochs); the test set comes from ``test_seed`` on another stream.

    Metrics (the paper's): ``test_accuracy``, the share of test sequences whose
    absolute error is below ``accuracy_tolerance`` (0.04), the headline;
    ``success``, whether that share is at least ``success_share``; ``test_mse``.
    """

    seq_len: int = 200
    marker_placement: str = "halves"
    test_size: int = 10_000
    test_seed: int = 0
    train_size: int = 0
    data_seed: int = 0
    accuracy_tolerance: float = 0.04
    success_share: float = 0.5

    input_size = 2
    output_size = 1
    loss_type = "mse"
    metric = "test_accuracy"
    higher_is_better = True

    def __post_init__(self):
        if self.marker_placement not in MARKER_PLACEMENTS:
            raise ValueError(f"unknown marker_placement {self.marker_placement!r}; "
                             f"valid: {', '.join(MARKER_PLACEMENTS)}")
        if not isinstance(self.seq_len, int) or self.seq_len < 2:
            raise ValueError(f"seq_len must be an int >= 2; got {self.seq_len!r}")
        if self.marker_placement == "first10" and self.seq_len < 4:
            raise ValueError(f"marker_placement='first10' needs seq_len >= 4 (two steps in the first half); "
                             f"got {self.seq_len}")
        if not isinstance(self.test_size, int) or self.test_size < 1:
            raise ValueError(f"test_size must be a positive int; got {self.test_size!r}")
        if not isinstance(self.train_size, int) or self.train_size < 0:
            raise ValueError(f"train_size must be an int >= 0 (0: fresh sequences every step); "
                             f"got {self.train_size!r}")

    # A subclass sets its name, ``mean_target`` (the mean of its target: the constant
    # predictor's value) and ``_combine`` (the target of the two marked values).
    # (class attributes, not fields: `describe`, recorded in config.json, is unchanged)
    mean_target = 0.0

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
        elif self.marker_placement == "first10":
            half = self.seq_len // 2
            k1, k2 = jax.random.split(k_pos)
            first = jax.random.randint(k1, (), 0, min(10, half))
            # uniform over the first half without ``first``: draw from half - 1 steps, skip it
            second = jax.random.randint(k2, (), 0, half - 1)
            second = second + (second >= first)
        else:
            first, second = jax.random.choice(k_pos, self.seq_len, (2,), replace=False)
        markers = jnp.zeros((self.seq_len,)).at[first].set(1.0).at[second].set(1.0)
        xs = jnp.stack([values, markers], axis=-1)
        ys = self._combine(values[first], values[second])[None]
        return xs, ys

    def sample(self, key, batch_size, data=None):
        del data
        xs, ys = jax.vmap(self._one)(jax.random.split(key, batch_size))
        return {"xs": xs, "ys": ys}

    def _fixed_set(self, stream: int):
        """``test_size`` sequences drawn from ``fold_in(PRNGKey(test_seed), stream)``."""
        key = jax.random.fold_in(jax.random.PRNGKey(self.test_seed), stream)
        return jax.jit(self.sample, static_argnums=1)(key, self.test_size)

    def test_set(self):
        return self._fixed_set(TEST_STREAM)

    def validation_set(self):
        return self._fixed_set(VALIDATION_STREAM)

    def train_data(self):
        if not self.train_size:
            return {}
        key = jax.random.fold_in(jax.random.PRNGKey(self.data_seed), POOL_STREAM)
        pool = dict(jax.jit(self.sample, static_argnums=1)(key, self.train_size))
        pool["order"] = jnp.asarray(np.random.default_rng(self.data_seed).permutation(self.train_size),
                                    jnp.int32)
        return pool

    def seq_lens(self):
        return (self.seq_len, self.seq_len)

    def best_constant_metric(self) -> float:
        """The headline metric of the best constant prediction on the test set (`best_constant_share`:
        28% for multiplication, where the mean predictor scores 11%)."""
        return best_constant_share(np.asarray(self.test_set()["ys"]), self.accuracy_tolerance)

    def constant_predictor_metric(self):
        test = self.test_set()
        predictions = jnp.full_like(test["ys"], self.mean_target)
        return float(self.evaluate(predictions, test)[self.metric])

    def evaluate(self, predictions, batch):
        error = predictions[:, 0] - batch["ys"][:, 0]
        share = jnp.mean(jnp.abs(error) < self.accuracy_tolerance)
        return {"test_mse": jnp.mean(error ** 2), "test_accuracy": share,
                "success": share >= self.success_share}


def best_constant_share(targets, tolerance: float) -> float:
    """The share of ``targets`` within ``tolerance`` of the best constant prediction: the
    most targets any window ``[c - tolerance, c + tolerance)`` holds (the chance level of the
    marked-pair tasks' headline metric; the mean is not the best constant for a skewed
    target such as the product of two uniforms)."""
    values = np.sort(np.asarray(targets, np.float64).reshape(-1))
    if values.size == 0:
        raise ValueError("no targets")
    ends = np.searchsorted(values, values + 2 * tolerance, side="left")
    return float(np.max(ends - np.arange(values.size)) / values.size)


def data_fingerprint(*splits) -> str:
    """SHA-256 of the arrays of ``splits`` (dicts of arrays: names, dtypes, shapes and bytes):
    what a run's results depend on, whatever file or reader they came from."""
    import hashlib

    digest = hashlib.sha256()
    for split in splits:
        for name in sorted(split):
            array = np.ascontiguousarray(np.asarray(split[name]))
            digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


class ClassificationTask(Task):
    """Classification of sequences held in device memory; batches sampled on device.

    Args:
      name: the task's name.
      train, test: dicts of NumPy arrays: ``xs [N, T, D]`` (any numeric dtype,
        multiplied by ``scale`` and cast to float32 when sampled), ``ys [N]``
        int labels and optionally ``lengths [N]`` (variable-length, masked).
      num_classes: output size.
      scale: factor applied to ``xs`` (1/255 for uint8 pixels).
      shift: added to ``xs`` after ``scale`` (0: none; standardized pixels: minus mean / std).
      test_size: evaluate on the first ``test_size`` test examples (None: all).
      validation: a dict like ``test``, held out of the training data (`hold_out`), or None.
    """

    loss_type = "xent"
    metric = "test_accuracy"
    higher_is_better = True

    def __init__(self, name: str, train: dict, test: dict, num_classes: int, scale: float = 1.0,
                 test_size: Optional[int] = None, info: Optional[dict] = None,
                 validation: Optional[dict] = None, shift: float = 0.0):
        self.name = name
        self.num_classes = int(num_classes)
        self.output_size = self.num_classes
        self.input_size = int(train["xs"].shape[-1])
        self.scale = float(scale)
        self.shift = float(shift)
        if test_size is not None:
            if test_size < 1:
                raise ValueError(f"test_size must be a positive int; got {test_size}")
            if test_size > test["xs"].shape[0]:
                raise ValueError(f"test_size={test_size}: the {name} test set has {test['xs'].shape[0]} examples "
                                 "(test_size=0 evaluates all of them)")
            test = {k: v[:test_size] for k, v in test.items()}
        self.num_train = int(train["xs"].shape[0])
        self.num_test = int(test["xs"].shape[0])
        self.seq_len = int(train["xs"].shape[1])
        self.info = dict(info or {})
        if validation is not None:
            self.info["num_validation"] = int(validation["xs"].shape[0])
        self.fingerprint = data_fingerprint(train, test)
        self._validation = validation
        self._train = {k: jnp.asarray(v) for k, v in train.items()}
        # A fixed random base order of the pool (data files are often sorted by class).
        self._train["order"] = jnp.asarray(np.random.default_rng(0).permutation(self.num_train), jnp.int32)
        self._test = test

    def describe(self):
        return {"name": self.name, "num_classes": self.num_classes, "input_size": self.input_size,
                "seq_len": self.seq_len, "num_train": self.num_train, "num_test": self.num_test,
                "scale": self.scale, "data_sha256": self.fingerprint, **self.info}

    def _prepare(self, batch):
        batch = dict(batch)
        batch["xs"] = jnp.asarray(batch["xs"]).astype(jnp.float32) * self.scale
        if self.shift:
            batch["xs"] = batch["xs"] + self.shift
        batch["ys"] = jnp.asarray(batch["ys"]).astype(jnp.int32)
        return batch

    def train_data(self):
        return self._train

    def take(self, data, indices):
        return self._prepare(super().take(data, indices))

    def seq_lens(self):
        return (self.seq_len, int(self._test["xs"].shape[1]))

    def test_set(self):
        return self._prepare(self._test)

    def validation_set(self):
        return None if self._validation is None else self._prepare(self._validation)

    def evaluate(self, predictions, batch):
        return {"test_accuracy": jnp.mean(jnp.argmax(predictions, -1) == batch["ys"])}

    def constant_predictor_metric(self):
        counts = np.bincount(np.asarray(self._test["ys"]).astype(int), minlength=self.num_classes)
        return float(counts.max() / counts.sum())


def hold_out(train: dict, size: int, stratified: bool) -> tuple:
    """``(training part, validation part)`` of the arrays ``train`` (``ys`` the labels):
    ``size`` examples held out, the last ``size`` ones, or with ``stratified`` a share of
    every class in proportion to its count (largest remainders; within a class its last
    examples in a fixed random order). Every class keeps at least one training example.
    ``size=0``: ``(train, None)``."""
    count = int(np.asarray(train["ys"]).shape[0])
    if size == 0:
        return train, None
    if not 0 < size < count:
        raise ValueError(f"validation_size={size}: must be below the {count} training examples")
    labels = np.asarray(train["ys"]).astype(int)
    if stratified:
        classes, counts = np.unique(labels, return_counts=True)
        exact = counts * size / count
        take = np.floor(exact).astype(int)
        for i in np.argsort(-(exact - take), kind="stable")[: size - take.sum()]:
            take[i] += 1
        order = np.random.default_rng(0).permutation(count)
        held = np.concatenate([order[labels[order] == c][counts[i] - take[i]:] for i, c in enumerate(classes)])
        starved = [int(c) for i, c in enumerate(classes) if take[i] >= counts[i]]
    else:
        held = np.arange(count - size, count)
        starved = sorted(set(labels.tolist()) - set(labels[: count - size].tolist()))
    if starved:
        raise ValueError(f"validation_size={size}: class(es) {starved} would have no training example left; "
                         "hold out fewer")
    keep = np.setdiff1d(np.arange(count), held)
    held = np.sort(held)
    return ({k: np.asarray(v)[keep] for k, v in train.items()}, {k: np.asarray(v)[held] for k, v in train.items()})


# --- A task declares itself --------------------------------------------------------------

def _no_check(config) -> Optional[str]:
    return None


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What the engine, the configuration and the binaries know of a task, declared by its
    module (`nprnn_jax.tasks.addition` and the others, or a module of one's own) and
    `register`-ed by name. The paper's side of a task (its numbers, budget, bar of success)
    is the study's, not the library's (`experiments.study.protocols`).

    Attributes:
      name: the task's name (``config.task``).
      settings: its own settings (`checks.Setting`), besides the common ones
        (`nprnn_jax.config`); their names are its own: two tasks may each declare ``seq_len``
        with their own default and rule.
      build: ``build(config) -> (Task, {file name: text})``, the task of a validated config
        and the extra files its workdir records.
      title: ``title(config)``, the task in words (report titles).
      metric_text: the headline metric (``test_accuracy``) in words (axes, tables).
      check: ``check(config)``, a rule between its settings (None when fine, else the
        message), after every setting's own rule.
    """

    name: str
    settings: tuple
    build: Callable
    title: Callable
    metric_text: str
    check: Callable = _no_check


_REGISTRY: dict = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Adds ``spec`` to the tasks every binary, the config and the report know."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"task {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def names() -> tuple:
    """The registered tasks' names."""
    return tuple(_REGISTRY)


def get(name: str) -> TaskSpec:
    """The `TaskSpec` of ``name``, or `checks.ConfigError` naming it and the known tasks."""
    if name not in _REGISTRY:
        raise checks.ConfigError(f"task={name!r}: unknown value; allowed: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


# --- Settings shared by several tasks (each task lists the groups it has) ------------------

_S = checks.Setting
MARKED_PAIR_SETTINGS = (
    _S("seq_len", 50, "sequence length T", checks.integer(2)),
    _S("marker_placement", "halves", "halves (one marker per half), uniform, or first10 (Hochreiter & Schmidhuber: "
       "the first in the first 10 steps, the second in the first half)", checks.one_of(MARKER_PLACEMENTS)),
    _S("train_size", 0, "fixed pool of training sequences read in epochs (0: fresh sequences every step)",
       checks.integer(0)),
    _S("data_seed", 0, "seed of the training pool (train_size > 0)", checks.integer(0)),
    _S("test_seed", 0, "seed of the fixed test set (a stream apart from training)", checks.integer(0)),
    _S("accuracy_tolerance", 0.04, "a test sequence is correct when |error| < this (the paper: 0.04)",
       checks.number(0, low_open=True)),
    _S("success_share", 0.5, "a run succeeds when its share of correct test sequences is >= this",
       checks.number(0, 1)),
)
DATA_SET_SETTINGS = (
    _S("validation_size", 0, "training examples held out to choose the best setting on, not trained on "
       "(MNIST: the last ones, 5000 usual; action recognition: stratified by class); the marked-pair tasks "
       "always have a validation set (test_size sequences of their own stream)", checks.integer(0)),
    _S("data_dir", "", "data folder (empty: $NPRNN_DATA_DIR, else ../shared/data)", checks.string, location=True),
)


def check_marked_pair(config) -> Optional[str]:
    """The marked-pair tasks' rules between settings."""
    if config.test_size < 1:
        return f"test_size={config.test_size}: must be >= 1 for {config.task} (sequences are generated)"
    if config.train_size and config.train_size < config.batch_size:
        return (f"train_size={config.train_size} must be 0 (fresh sequences) or at least "
                f"batch_size={config.batch_size}")
    return None


@dataclasses.dataclass(frozen=True)
class MarkedPairBuild:
    """The ``build`` of a marked-pair task: ``task_type`` (a `MarkedPairTask`) from the config."""

    task_type: type

    def __call__(self, config):
        return self.task_type(seq_len=config.seq_len, marker_placement=config.marker_placement,
                              test_size=config.test_size, test_seed=config.test_seed, train_size=config.train_size,
                              data_seed=config.data_seed, accuracy_tolerance=config.accuracy_tolerance,
                              success_share=config.success_share), {}


def marked_pair_spec(task_type) -> TaskSpec:
    """The `TaskSpec` of a marked-pair task (``task_type``, a `MarkedPairTask`)."""
    name = task_type.name
    return TaskSpec(
        name=name, settings=MARKED_PAIR_SETTINGS, build=MarkedPairBuild(task_type),
        title=lambda config: f"{name} (T={config.seq_len})", check=check_marked_pair,
        metric_text="share of test sequences within 0.04")


# Where the data are looked for when neither config.data_dir nor $NPRNN_DATA_DIR says:
# beside a source checkout (this file's ../../../shared/data), then ../shared/data from the
# current directory.
DEFAULT_DATA_DIRS = (pathlib.Path(__file__).resolve().parents[3] / "shared" / "data",
                     pathlib.Path("../shared/data"))


def data_dir(config):
    """``config.data_dir``, else $NPRNN_DATA_DIR, else the first of `DEFAULT_DATA_DIRS` that
    exists (`checks.ConfigError` when none does)."""
    given = config.data_dir or os.environ.get("NPRNN_DATA_DIR")
    candidates = [pathlib.Path(given)] if given else list(DEFAULT_DATA_DIRS)
    for path in candidates:
        if path.is_dir():
            return path
    raise checks.ConfigError(
        f"data directory {' or '.join(repr(str(p)) for p in candidates)} not found "
        "(set --config.data_dir or NPRNN_DATA_DIR; README 'Data' says where to get the data)")
