"""The recurrent networks of the paper as pure JAX functions.

Parameters are a plain dict (a pytree); ``init_params(key, config)`` makes
them and ``apply(params, xs, config, lengths=None)`` runs the network,
many-to-one::

    h_t = f(x_t W_hx + h_{t-1} W_hh + b_h),   h_0 = 0        (sRNN)
    y   = h_T W_hy + b_y

The input projection ``x_t W_hx + b_h`` for all timesteps is one matmul before
the recurrence; only ``h_{t-1} W_hh`` and the nonlinearity run inside
`jax.lax.scan`. The LSTM baseline follows the same pattern with its four gates.

Shapes: ``xs: [batch, time, input_size]``, ``lengths: [batch]`` (int), output
``[batch, output_size]``. Kernels are ``[fan_in, fan_out]``.

Variable lengths: with ``lengths`` the state stops changing after step
``lengths[b]`` of each example, so a padded sequence gives exactly the result
of the same sequence run alone at its own length (the padding goes at the end).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import jax
import jax.numpy as jnp

from nprnn_jax import bptt
from nprnn_jax import initializers as inits

Params = dict


@dataclasses.dataclass(frozen=True)
class Init:
    """How one variant initializes and runs.

    Attributes:
      cell: "relu" or "tanh" (Elman sRNN) or "lstm".
      recurrent_init: initializer of ``W_hh`` (None for the LSTM, whose
        recurrent kernel is one orthogonal block per gate).
      description: one line for docs and results tables.
      input_init: initializer of ``W_hx`` ([input_size, hidden_size]); None means
        the paper's weights shared by all its variants: random-walk scaled
        normal, std ``alpha / sqrt(N)`` with N read as `RNNConfig.input_init_n` says.
      output_init: initializer of ``W_hy`` ([hidden_size, output_size]); None
        means the paper's Glorot normal (not truncated).
      output_bias_init: initializer of ``b_y``; None means zeros (the paper's).
    """

    cell: str
    recurrent_init: Optional[inits.Initializer]
    description: str
    input_init: Optional[inits.Initializer] = None
    output_init: Optional[inits.Initializer] = None
    output_bias_init: Optional[inits.Initializer] = None


# W_hy of the paper's variants: Glorot normal, N(0, 2 / (fan_in + fan_out)), not
# truncated (METHOD.md); jax's own variance_scaling builder gives it.
glorot_normal_untruncated = jax.nn.initializers.variance_scaling(1.0, "fan_avg", "normal")
# Le et al. 2015 (IRNN): weights other than W_hh drawn from N(0, 0.001^2).
_le2015_normal = jax.nn.initializers.normal(0.001)


def _uniform_symmetric(limit: float) -> inits.Initializer:
    """U(-limit, limit)."""
    def init(key, shape, dtype=jnp.float32, out_sharding=None):
        del out_sharding
        return jax.random.uniform(key, shape, dtype, -limit, limit)
    return init


# The np-RNN start of a public benchmark implementation (the reg-PLRNN code of Schmidt et al.,
# ICLR 2021, hidden 40), as measured from its initial weights: W_hx ~ N(0, 0.0033^2),
# W_hy ~ N(0, 0.049^2), b_y ~ U(-0.158, 0.158) (1/sqrt(40), a PyTorch Linear's default bias).
PLRNN_START = {"W_hx_std": 0.0033, "W_hy_std": 0.049, "b_y_limit": 0.158}

INITS: Mapping[str, Init] = {
    # The paper's seven variants (Table 1): the same W_hx, W_hy and zero biases,
    # only W_hh and the nonlinearity differ.
    "np": Init("relu", inits.np_init(add_identity=True),
                 "np-RNN: ReLU, W_hh = (R^T R/N + I)/lambda_max (Talathi & Vartak Eq. 9)"),
    "irnn": Init("relu", inits.identity(1.0), "IRNN: ReLU, W_hh = I"),
    "irnn_scaled": Init("relu", inits.identity(0.01), "iRNN: ReLU, W_hh = 0.01 I"),
    "nrnn": Init("relu", inits.nrnn_init(),
                   "nRNN: ReLU, W_hh Gaussian scaled to spectral radius 1 (not positive definite)"),
    "ornn": Init("relu", jax.nn.initializers.orthogonal(), "oRNN: ReLU, W_hh random orthogonal"),
    "grnn": Init("relu", inits.gaussian(), "gRNN: ReLU, W_hh ~ N(0, 1/N)"),
    "np_tanh": Init("tanh", inits.np_init(add_identity=True), "np-tanhRNN: tanh with the np W_hh"),
    # Ours: np without the "+ I" of Eq. 9, with the paper's other weights.
    "np_no_identity": Init("relu", inits.np_init(add_identity=False),
                             "np-RNN without + I: W_hh = (R^T R/N)/lambda_max"),
    # Le et al.'s own IRNN baseline: W_hx, W_hy ~ N(0, 0.001^2).
    "irnn_le": Init("relu", inits.identity(1.0), "IRNN as Le et al.: W_hh = I, other weights N(0, 0.001^2)",
                      _le2015_normal, _le2015_normal),
    "irnn_scaled_le": Init("relu", inits.identity(0.01),
                             "iRNN with Le et al.'s weights: W_hh = 0.01 I, other weights N(0, 0.001^2)",
                             _le2015_normal, _le2015_normal),
    # np-RNN with the other weights of a public np-RNN baseline implementation (PLRNN_START).
    "np_plrnn": Init("relu", inits.np_init(add_identity=True),
                       "np-RNN with a public baseline code's start: W_hx ~ N(0, 0.0033^2), W_hy ~ N(0, 0.049^2), "
                       "b_y ~ U(-0.158, 0.158)", jax.nn.initializers.normal(PLRNN_START["W_hx_std"]),
                       jax.nn.initializers.normal(PLRNN_START["W_hy_std"]),
                       _uniform_symmetric(PLRNN_START["b_y_limit"])),
    # Standard baselines with their libraries' defaults.
    "tanh": Init("tanh", jax.nn.initializers.orthogonal(),
                   "tanh RNN: orthogonal W_hh, Glorot-uniform W_hx, W_hy (Keras SimpleRNN defaults)",
                   jax.nn.initializers.glorot_uniform(), jax.nn.initializers.glorot_uniform()),
    "lstm": Init("lstm", None, "LSTM: Glorot-uniform input, orthogonal recurrent, forget-gate bias 1",
                   jax.nn.initializers.glorot_uniform(), jax.nn.initializers.glorot_uniform()),
}

#: The paper's seven variants (Table 1), in its order.
PAPER_VARIANTS = ("np", "irnn", "irnn_scaled", "nrnn", "ornn", "grnn", "np_tanh")


def get_init(name: str) -> Init:
    """Returns the init called ``name``; ``ValueError`` listing the valid names."""
    if name not in INITS:
        raise ValueError(
            f"unknown init {name!r}; valid inits: {', '.join(INITS)}"
        )
    return INITS[name]


BACKWARDS = ("custom", "autodiff")
INPUT_INIT_NS = ("hidden", "input")


@dataclasses.dataclass(frozen=True)
class RNNConfig:
    """Static description of a network (hashable, so it can be a jit static arg).

    Attributes:
      input_size: features per timestep (0: not given; `modules.LinenRNN` then takes it
        from its inputs, the pure functions need it).
      hidden_size: N, the number of hidden units (100 in the paper).
      output_size: regression outputs or classes.
      init: one of `INITS` (the variant: its cell and initializers).
      input_init_n: the N of the paper's ``W_hx`` std ``alpha / sqrt(N)``:
        "hidden" (the hidden size, our default) or "input" (the input size, the
        random-walk paper's and TF's reading). Inits with their own ``W_hx``
        ignore it.
    """

    input_size: int = 0
    hidden_size: int = 100
    output_size: int = 1
    init: str = "np"
    input_init_n: str = "hidden"

    def __post_init__(self):
        get_init(self.init)
        if self.input_init_n not in INPUT_INIT_NS:
            raise ValueError(f"RNNConfig.input_init_n: unknown value {self.input_init_n!r}; "
                             f"valid: {', '.join(INPUT_INIT_NS)}")
        for field in ("input_size", "hidden_size", "output_size"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < (0 if field == "input_size" else 1):
                raise ValueError(f"RNNConfig.{field} must be a positive int; got {value!r}")

    @property
    def cell(self) -> str:
        return get_init(self.init).cell


@dataclasses.dataclass(frozen=True)
class Execution:
    """How the recurrence runs: speed and memory only, not what it computes (the results are
    the same up to float rounding). An argument of `apply`, `final_hidden` and
    `hidden_states` beside the network's `RNNConfig`; the engine gets it from the execution
    plan (`parallel.ExecutionPlan.recurrence`).

    Attributes:
      unroll: `lax.scan` unroll factor.
      backward: how the sRNN recurrence is differentiated: "custom" (the hand-written VJP of
        `nprnn_jax.bptt`, weight gradients as one matmul after the backward scan) or
        "autodiff" (`jax.grad` of the plain scan). The LSTM always uses autodiff.
      remat_every: if > 0, keep only every k-th state for the backward pass and recompute
        the rest, for long sequences in bounded memory; k must divide the sequence length.
        With backward="custom" the input projection is done chunk by chunk too
        (`bptt.final_state_chunked`: no ``[T, B, N]`` array); with "autodiff",
        `jax.checkpoint` of chunked scans (`bptt.final_state_remat`). Many-to-one sRNN only.
      bptt_chunk: with backward="custom", many-to-one sRNN and no remat: k > 0 runs the
        forward and backward passes in chunks of k steps (all states kept, nothing
        recomputed; k must divide T); 0: one pass. `parallel.execution_plan` picks it per
        backend.
    """

    unroll: int = 1
    backward: str = "custom"
    remat_every: int = 0
    bptt_chunk: int = 0

    def __post_init__(self):
        if not isinstance(self.unroll, int) or isinstance(self.unroll, bool) or self.unroll < 1:
            raise ValueError(f"Execution.unroll must be a positive int; got {self.unroll!r}")
        if self.backward not in BACKWARDS:
            raise ValueError(f"Execution.backward: unknown value {self.backward!r}; valid: {', '.join(BACKWARDS)}")
        if not isinstance(self.remat_every, int) or self.remat_every < 0:
            raise ValueError(f"Execution.remat_every must be an int >= 0; got {self.remat_every!r}")
        if not isinstance(self.bptt_chunk, int) or self.bptt_chunk < 0:
            raise ValueError(f"Execution.bptt_chunk must be 0 (off) or a positive int; got {self.bptt_chunk!r}")

    def check_length(self, num_steps: int):
        """Raises unless the chunk lengths divide a sequence of ``num_steps`` steps."""
        if self.remat_every:
            bptt.check_remat_every(self.remat_every, num_steps)
        if self.bptt_chunk and num_steps % self.bptt_chunk:
            raise ValueError(f"bptt_chunk={self.bptt_chunk} must divide the sequence length {num_steps} "
                             "(or be 0 for one pass; the binaries' -1 picks a divisor)")


DEFAULT_EXECUTION = Execution()


def _lstm_recurrent_init(key, shape, dtype=jnp.float32):
    """``W_h [N, 4N]``: one orthogonal N x N block per gate."""
    n = shape[0]
    orthogonal = jax.nn.initializers.orthogonal()
    return jnp.concatenate([orthogonal(k, (n, n), dtype) for k in jax.random.split(key, 4)], axis=1)


def _lstm_bias_init(key, shape, dtype=jnp.float32):
    """``b [4N]``: zeros, except the forget gate's bias, which is 1."""
    del key
    n = shape[0] // 4
    return jnp.zeros(shape, dtype).at[n:2 * n].set(1.0)


def param_specs(config: RNNConfig) -> dict:
    """``{name: (initializer, shape)}`` of every parameter, in a fixed order.

    The one place that says which weight gets which initializer: `init_params`
    and the Flax modules both read it. `init_params` (and `modules.NNXRNN`, which
    calls it with the key its ``rngs`` hand out) folds one key per name into the
    given key (`PARAM_KEY_IDS`); Flax
    Linen splits its own keys per parameter, so `modules.LinenRNN` draws from the
    same initializers but not the same values for a given key.

    sRNN: ``W_hx [I, N]``, ``W_hh [N, N]``, ``b_h [N]``, ``W_hy [N, O]``, ``b_y [O]``.
    LSTM: ``W_x [I, 4N]``, ``W_h [N, 4N]``, ``b [4N]`` (gates i, f, g, o; the
    forget-gate bias is 1), ``W_hy``, ``b_y``.
    """
    spec = get_init(config.init)
    n, i, o = config.hidden_size, config.input_size, config.output_size
    if not i:
        raise ValueError("RNNConfig.input_size=0: give the input size (modules.LinenRNN takes it from its inputs)")
    zeros = jax.nn.initializers.zeros
    input_init = spec.input_init or inits.random_walk_normal(
        "fan_out" if config.input_init_n == "hidden" else "fan_in")
    output_init = spec.output_init or glorot_normal_untruncated
    if spec.cell == "lstm":
        specs = {"W_x": (input_init, (i, 4 * n)),
                 "W_h": (_lstm_recurrent_init, (n, 4 * n)),
                 "b": (_lstm_bias_init, (4 * n,))}
    else:
        specs = {"W_hx": (input_init, (i, n)),
                 "W_hh": (spec.recurrent_init, (n, n)),
                 "b_h": (zeros, (n,))}
    specs["W_hy"] = (output_init, (n, o))
    specs["b_y"] = (spec.output_bias_init or zeros, (o,))
    return specs


PARAM_KEY_IDS = {"W_hx": 0, "W_x": 0, "W_hh": 1, "W_h": 1, "b_h": 2, "b": 2, "W_hy": 3, "b_y": 4}


def init_params(key: jax.Array, config: RNNConfig, dtype=jnp.float32) -> Params:
    """Initial parameters for ``config`` as a dict of arrays (see `param_specs`).

    Each parameter's key is ``jax.random.fold_in(key, PARAM_KEY_IDS[name])``.
    Works under `jit` and `vmap` over ``key`` (many seeds at once).
    """
    return {name: init(jax.random.fold_in(key, PARAM_KEY_IDS[name]), shape, dtype)
            for name, (init, shape) in param_specs(config).items()}


def _check_inputs(params: Params, xs: jax.Array, config: RNNConfig, lengths):
    if xs.ndim != 3:
        raise ValueError(
            f"xs must have shape [batch, time, input_size]; got shape {xs.shape}"
        )
    if xs.shape[-1] != config.input_size:
        raise ValueError(
            f"xs has {xs.shape[-1]} features per step (shape {xs.shape}); the "
            f"config expects input_size={config.input_size}"
        )
    if lengths is not None and (jnp.ndim(lengths) != 1 or jnp.shape(lengths)[0] != xs.shape[0]):
        raise ValueError(
            f"lengths must have shape [batch] = [{xs.shape[0]}]; got shape {jnp.shape(lengths)}"
        )
    expected = {"W_hy", "b_y"} | ({"W_x", "W_h", "b"} if config.cell == "lstm" else {"W_hx", "W_hh", "b_h"})
    if set(params) != expected:
        raise ValueError(
            f"params have keys {sorted(params)}; init {config.init!r} needs {sorted(expected)}"
        )


def _step_mask(lengths, num_steps):
    """[time, batch, 1] booleans: True where step t < lengths[b]."""
    if lengths is None:
        return None
    t = jnp.arange(num_steps)[:, None]
    return (t < jnp.asarray(lengths)[None, :])[..., None]


def _project(xs_tm, w_in, bias):
    return xs_tm @ w_in + bias  # the input projection: one matmul for all steps


# How the last state of a many-to-one sRNN is computed and differentiated, by
# (backward, mode): mode is "remat" (remat_every > 0), "chunked" (bptt_chunk > 0)
# or "whole". Each entry takes (xs_tm, w_in, bias, w_rec, cell, mask, execution).
_FINAL_STATE = {
    ("custom", "remat"): lambda xs, w_in, b, w, cell, m, e: bptt.final_state_chunked(
        xs, w_in, b, w, cell, m, e.unroll, e.remat_every),
    ("autodiff", "remat"): lambda xs, w_in, b, w, cell, m, e: bptt.final_state_remat(
        _project(xs, w_in, b), w, cell, m, e.unroll, e.remat_every),
    ("custom", "chunked"): lambda xs, w_in, b, w, cell, m, e: bptt.final_state_chunked(
        xs, w_in, b, w, cell, m, e.unroll, e.bptt_chunk, recompute=False),
    ("custom", "whole"): lambda xs, w_in, b, w, cell, m, e: bptt.final_state(
        _project(xs, w_in, b), w, cell, m, e.unroll),
    ("autodiff", "whole"): lambda xs, w_in, b, w, cell, m, e: bptt.final_state_autodiff(
        _project(xs, w_in, b), w, cell, m, e.unroll),
}
_FINAL_STATE[("autodiff", "chunked")] = _FINAL_STATE[("autodiff", "whole")]  # chunks: a custom-VJP path
# All states (hidden_states): the hand-written VJP or autodiff.
_ALL_STATES = {"custom": bptt.recurrence, "autodiff": bptt.recurrence_autodiff}


def _lstm(projected, w_rec, n, mask, unroll, collect):
    def step(carry, inputs):
        z, m = inputs
        h, c = carry
        z = z + h @ w_rec
        i_gate = jax.nn.sigmoid(z[..., :n])
        f_gate = jax.nn.sigmoid(z[..., n:2 * n])
        g = jnp.tanh(z[..., 2 * n:3 * n])
        o_gate = jax.nn.sigmoid(z[..., 3 * n:])
        c_new = f_gate * c + i_gate * g
        new = (o_gate * jnp.tanh(c_new), c_new)
        if m is not None:
            new = jax.tree.map(lambda a, b: jnp.where(m, a, b), new, carry)
        return new, (new[0] if collect else None)

    h0 = jnp.zeros_like(projected[0, :, :n])  # zeros_like keeps shard_map's varying axes
    (h_last, _), hs = jax.lax.scan(step, (h0, h0), (projected, mask), unroll=unroll)
    return h_last, hs


def _run(params: Params, xs: jax.Array, config: RNNConfig, lengths, collect: bool, execution: Execution):
    """Scans the recurrence; returns (last hidden state, all states or None), time-major."""
    _check_inputs(params, xs, config, lengths)
    if not isinstance(execution, Execution):
        raise TypeError(f"execution must be an rnn.Execution; got {type(execution).__name__}")
    xs_tm = jnp.swapaxes(xs, 0, 1)  # [time, batch, input]
    mask = _step_mask(lengths, xs.shape[1])
    if config.cell == "lstm":
        if execution.remat_every:
            raise ValueError("remat_every is implemented for the sRNN inits, not the LSTM")
        return _lstm(_project(xs_tm, params["W_x"], params["b"]), params["W_h"], config.hidden_size,
                     mask, execution.unroll, collect)
    w_in, w_rec, bias = params["W_hx"], params["W_hh"], params["b_h"]
    if collect:
        hs = _ALL_STATES[execution.backward](_project(xs_tm, w_in, bias), w_rec, config.cell, mask,
                                             execution.unroll)
        return hs[-1], hs
    mode = "remat" if execution.remat_every else "chunked" if execution.bptt_chunk else "whole"
    execution.check_length(xs.shape[1])
    return _FINAL_STATE[(execution.backward, mode)](xs_tm, w_in, bias, w_rec, config.cell, mask, execution), None


def hidden_states(params: Params, xs: jax.Array, config: RNNConfig, lengths=None,
                  execution: Execution = DEFAULT_EXECUTION) -> jax.Array:
    """All hidden states ``h_1..h_T``, ``[batch, time, hidden]``.

    For an LSTM the hidden state is ``h`` (not the cell). With ``lengths`` the
    state of an example is frozen after its last step.
    """
    _, hs = _run(params, xs, config, lengths, True, execution)
    return jnp.swapaxes(hs, 0, 1)


def final_hidden(params: Params, xs: jax.Array, config: RNNConfig, lengths=None,
                 execution: Execution = DEFAULT_EXECUTION) -> jax.Array:
    """The last hidden state (``h_{lengths[b]}`` per example), ``[batch, hidden]``."""
    h_last, _ = _run(params, xs, config, lengths, False, execution)
    return h_last


def apply(params: Params, xs: jax.Array, config: RNNConfig, lengths=None,
          execution: Execution = DEFAULT_EXECUTION) -> jax.Array:
    """Runs the network many-to-one: ``y = h_T W_hy + b_y``, ``[batch, output_size]``.

    Args:
      params: from `init_params` (or any dict with the same keys and shapes).
      xs: ``[batch, time, input_size]``.
      config: the `RNNConfig` (what the network is).
      lengths: optional ``[batch]`` int lengths of padded sequences.
      execution: how the recurrence runs (`Execution`: unroll, backward pass, chunks); speed
        and memory only.
    """
    return readout(params, final_hidden(params, xs, config, lengths, execution))


def readout(params: Params, h: jax.Array) -> jax.Array:
    """The output layer ``y = h W_hy + b_y`` of hidden states ``h [..., hidden]``."""
    return h @ params["W_hy"] + params["b_y"]
